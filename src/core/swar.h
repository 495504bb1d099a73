// Byte tests on eight bytes at once (SWAR: SIMD within a register), for scanners that skip plain
// text a word at a time: JSON escaping (core/json_string.cc), log text (log/format.cc). Each says
// whether ANY byte of the word matches: exact for that question (a borrow can only spread above
// a byte that matches). Pure.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace callgate::swar {

inline constexpr std::uint64_t kOnes = 0x0101010101010101;
inline constexpr std::uint64_t kHighs = 0x8080808080808080;

// The high bit of a byte's lane is set where the byte is zero (and maybe above one that is).
constexpr std::uint64_t Zero(std::uint64_t w) { return (w - kOnes) & ~w & kHighs; }
// ... where the byte equals `c`.
constexpr std::uint64_t Equal(std::uint64_t w, unsigned char c) { return Zero(w ^ (kOnes * c)); }
// ... where the byte is below `n` (n <= 0x80).
constexpr std::uint64_t Below(std::uint64_t w, unsigned char n) {
  return (w - kOnes * n) & ~w & kHighs;
}
// ... where the byte is 0x80 or above (not ASCII).
constexpr std::uint64_t High(std::uint64_t w) { return w & kHighs; }

// The eight bytes of `s` from `at` (at + 8 <= s.size()).
inline std::uint64_t Load(std::string_view s, std::size_t at) {
  std::uint64_t w;
  std::memcpy(&w, s.data() + at, sizeof w);
  return w;
}

}  // namespace callgate::swar
