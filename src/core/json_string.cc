#include "core/json_string.h"

#include <cstdint>

#include "core/swar.h"

namespace callgate {

namespace {

// Whether any of the 8 bytes of `w` needs a look: a control character, '"', '\\' or a byte of a
// multi-byte sequence. Almost every string written (ids, routes, messages) has none.
bool NeedsLook(std::uint64_t w) {
  using namespace swar;
  return (Below(w, 0x20) | Equal(w, '"') | Equal(w, '\\') | High(w)) != 0;
}

// The length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF) that starts at s[i] with a byte >= 0x80; 0 if there is none.
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto continuation = [&](std::size_t k) { return (byte(k) & 0xc0) == 0x80; };
  const unsigned char lead = byte(0);
  const std::size_t left = s.size() - i;
  if (lead >= 0xc2 && lead <= 0xdf) return left >= 2 && continuation(1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    if (left < 3 || !continuation(1) || !continuation(2)) return 0;
    if (lead == 0xe0 && byte(1) < 0xa0) return 0;   // overlong
    if (lead == 0xed && byte(1) >= 0xa0) return 0;  // a surrogate
    return 3;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    if (left < 4 || !continuation(1) || !continuation(2) || !continuation(3)) return 0;
    if (lead == 0xf0 && byte(1) < 0x90) return 0;   // overlong
    if (lead == 0xf4 && byte(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;  // a continuation byte, or a lead byte no well-formed sequence starts with
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view text) {
  constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  // Most strings need no escaping: copy runs of plain characters in one append.
  std::size_t run = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i + 8 <= text.size() && !NeedsLook(swar::Load(text, i))) i += 8;
    if (i == text.size()) break;
    const auto u = static_cast<unsigned char>(text[i]);
    if (u >= 0x20 && u < 0x80 && u != '"' && u != '\\') {
      ++i;
      continue;
    }
    if (u >= 0x80) {
      if (const std::size_t length = Utf8SequenceLength(text, i); length > 0) {
        i += length;
        continue;
      }
    }
    out.append(text.data() + run, i - run);
    if (u == '"' || u == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(u));
    } else if (u < 0x20) {
      const char escape[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 0xf]};
      out.append(escape, sizeof escape);
    } else {
      out.append("\\ufffd");
    }
    run = ++i;
  }
  out.append(text.data() + run, text.size() - run);
  out.push_back('"');
}

}  // namespace callgate
