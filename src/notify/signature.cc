#include "notify/signature.h"

#include <openssl/crypto.h>

#include <charconv>

#include "ingest/signature.h"

namespace callgate {

namespace {

// The hex HMAC-SHA256 of "<t>.<body>": Meta's signature without its "sha256=".
std::string Mac(std::int64_t t, std::string_view body, std::string_view secret) {
  std::string signed_text = std::to_string(t);
  signed_text += '.';
  signed_text += body;
  std::string header = SignMetaPayload(signed_text, secret);
  constexpr std::string_view kPrefix = "sha256=";
  return header.starts_with(kPrefix) ? header.substr(kPrefix.size()) : std::string();
}

}  // namespace

std::string SignNotification(std::int64_t unix_seconds, std::string_view body,
                             const std::vector<std::string>& secrets) {
  std::string header = "t=" + std::to_string(unix_seconds);
  for (const std::string& secret : secrets) header += ",v1=" + Mac(unix_seconds, body, secret);
  return header;
}

bool VerifyNotificationSignature(std::string_view header, std::string_view body,
                                 std::string_view secret, std::int64_t now_seconds,
                                 std::int64_t tolerance_seconds) {
  std::int64_t t = -1;
  std::vector<std::string_view> macs;
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    const std::string_view part = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (part.starts_with("t=")) {
      const auto [end, ec] = std::from_chars(part.data() + 2, part.data() + part.size(), t);
      if (ec != std::errc() || end != part.data() + part.size()) return false;
    } else if (part.starts_with("v1=")) {
      macs.push_back(part.substr(3));
    }
  }
  if (t < 0 || t < now_seconds - tolerance_seconds || t > now_seconds + tolerance_seconds) {
    return false;
  }
  const std::string expected = Mac(t, body, secret);
  bool found = false;
  for (const std::string_view mac : macs) {
    found |= mac.size() == expected.size() &&
             CRYPTO_memcmp(mac.data(), expected.data(), expected.size()) == 0;
  }
  return found && !expected.empty();
}

}  // namespace callgate
