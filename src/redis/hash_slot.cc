// HashSlot: Redis Cluster's key → slot function (the cluster spec's CRC16-XMODEM of the key, or
// of its first non-empty {hash tag}, mod 16384).
#include <array>
#include <cstdint>
#include <string_view>

#include "redis/cluster_client.h"

namespace callgate::redis {
namespace {

// CRC16-XMODEM (polynomial 0x1021, initial value 0), one table built at compile time.
constexpr std::array<std::uint16_t, 256> MakeCrc16Table() {
  std::array<std::uint16_t, 256> table{};
  for (unsigned i = 0; i < 256; ++i) {
    std::uint16_t crc = static_cast<std::uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<std::uint16_t>(crc << 1);
    }
    table[i] = crc;
  }
  return table;
}
constexpr std::array<std::uint16_t, 256> kCrc16Table = MakeCrc16Table();

std::uint16_t Crc16(std::string_view data) {
  std::uint16_t crc = 0;
  for (unsigned char c : data) {
    crc = static_cast<std::uint16_t>((crc << 8) ^ kCrc16Table[((crc >> 8) ^ c) & 0xff]);
  }
  return crc;
}

}  // namespace

std::uint16_t HashSlot(std::string_view key) {
  // Only the first '{' counts, and only if a '}' follows it with something in between: so
  // "foo{}{bar}" hashes whole and "foo{{bar}}zap" hashes "{bar", exactly as the server does.
  if (std::size_t open = key.find('{'); open != std::string_view::npos) {
    if (std::size_t close = key.find('}', open + 1);
        close != std::string_view::npos && close != open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & 16383;
}

}  // namespace callgate::redis
