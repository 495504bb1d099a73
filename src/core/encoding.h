// Hex and base64: the project's one implementation of each text encoding of bytes. Abseil does
// the encoding; this adds the validation Abseil (20220623) leaves out: absl::HexStringToBytes
// accepts any character, and absl::Base64Unescape skips whitespace, takes padding or none, and
// ignores stray low bits, so several texts decode to the same bytes. Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace callgate {

// Lower-case hex, two digits per byte.
std::string HexEncode(std::string_view bytes);

// The bytes `hex` spells, digits of either case; nullopt if its length is odd or a character is
// not a hex digit.
std::optional<std::string> HexDecode(std::string_view hex);

// Base64 with the RFC 4648 §4 alphabet ('+', '/'), with or without '=' padding.
enum class Base64Padding { kNone, kPadded };

std::string Base64Encode(std::string_view bytes, Base64Padding padding);

// The bytes that Base64Encode(bytes, padding) turns into exactly `text`; nullopt if there are
// none (a character outside the alphabet, whitespace, padding other than `padding` asks for,
// stray low bits in the last character). So two different texts never decode to the same bytes.
std::optional<std::string> Base64DecodeExact(std::string_view text, Base64Padding padding);

// Base64url (RFC 4648 §5 alphabet: '-', '_'), without padding.
std::string Base64UrlEncode(std::string_view bytes);

}  // namespace callgate
