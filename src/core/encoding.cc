#include "core/encoding.h"

#include <absl/strings/ascii.h>
#include <absl/strings/escaping.h>
#include <absl/strings/string_view.h>

#include <algorithm>

namespace callgate {
namespace {

// Debian's Abseil is built with its own string_view, not std::string_view.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

std::string HexEncode(std::string_view bytes) { return absl::BytesToHexString(Absl(bytes)); }

std::optional<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0 ||
      !std::all_of(hex.begin(), hex.end(), [](char c) { return absl::ascii_isxdigit(c); })) {
    return std::nullopt;
  }
  return absl::HexStringToBytes(Absl(hex));
}

std::string Base64Encode(std::string_view bytes, Base64Padding padding) {
  std::string text = absl::Base64Escape(Absl(bytes));
  if (padding == Base64Padding::kNone) {
    while (!text.empty() && text.back() == '=') text.pop_back();
  }
  return text;
}

std::optional<std::string> Base64DecodeExact(std::string_view text, Base64Padding padding) {
  std::string bytes;
  // Abseil's decoder is lenient; only the text the encoder would write back is accepted.
  if (!absl::Base64Unescape(Absl(text), &bytes) || Base64Encode(bytes, padding) != text) {
    return std::nullopt;
  }
  return bytes;
}

std::string Base64UrlEncode(std::string_view bytes) {
  return absl::WebSafeBase64Escape(Absl(bytes));
}

}  // namespace callgate
