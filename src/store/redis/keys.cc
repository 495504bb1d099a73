#include "store/redis/keys.h"

#include "store/codec.h"

namespace callgate::redis_keys {
namespace {

std::uint64_t Fnv1a(std::string_view text, std::uint64_t basis) {
  std::uint64_t h = basis;
  for (const unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

void AppendHex(std::string& out, std::uint64_t value, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out += kHex[(value >> (4 * i)) & 0xf];
}

// Signed, big-endian, `bytes` wide: what Lua's struct.unpack('>iN') reads.
void AppendInt(std::string& out, std::int64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    out += static_cast<char>(static_cast<std::uint64_t>(value) >> (8 * i) & 0xff);
  }
}

std::int64_t ReadInt(std::string_view in, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | static_cast<unsigned char>(in[i]);
  const int shift = 64 - 8 * bytes;
  return static_cast<std::int64_t>(v << shift) >> shift;  // sign-extend
}

constexpr int kTimeBytes = 6, kSeqBytes = 7;

}  // namespace

std::string Tag(std::string_view text) {
  std::string out;
  out.reserve(24);
  AppendHex(out, Fnv1a(text, 0xcbf29ce484222325ULL), 16);
  AppendHex(out, Fnv1a(text, 0x84222325cbf29ce4ULL) >> 32, 8);
  return out;
}

PairKeys KeysOf(std::string_view prefix, const PairKey& key) {
  std::string text = key.channel_id;
  text += '\x1f';  // never inside an id
  text += key.user.text();
  std::string base(prefix);
  base += '{';
  base += Tag(text);
  base += "}:";
  return {base + "p", base + "h", base + "i", base + "c"};
}

std::string LinksKey(std::string_view prefix, std::string_view scope) {
  std::string text = "links\x1f";
  text += scope;
  std::string key(prefix);
  key += '{';
  key += Tag(text);
  key += "}:l";
  return key;
}

TenantKeys TenantKeysOf(std::string_view prefix) {
  const std::string base = std::string(prefix) + "{tenants}:";
  return {base + "a", base + "s",   base + "c",    base + "n",     base + "cb", base + "k",
          base + "r", base + "gen", base + "seen", base + "probe", base + "nt"};
}

std::string HistoryRest(const HistoryEntry& entry) {
  std::string rest(1, static_cast<char>(entry.source));
  rest += EncodeEventDetails(entry.event);
  return rest;
}

std::optional<HistoryEntry> DecodeHistory(std::string_view field, std::string_view value) {
  if (value.size() < kTimeBytes + kSeqBytes + 1) return std::nullopt;
  const Instant at = FromUnixMillis(ReadInt(value, kTimeBytes));
  const std::int64_t seq = ReadInt(value.substr(kTimeBytes), kSeqBytes);
  const auto source = static_cast<unsigned char>(value[kTimeBytes + kSeqBytes]);
  if (source > static_cast<unsigned char>(EventSource::kDerived)) return std::nullopt;
  auto event = DecodeEvent(field, at, value.substr(kTimeBytes + kSeqBytes + 1));
  if (!event) return std::nullopt;
  std::string event_key = EventKey(*event);
  return HistoryEntry{std::move(event_key), static_cast<EventSource>(source), std::move(*event),
                      seq};
}

std::string PackRecord(const IdempotencyRecord& record) {
  std::string out;
  AppendInt(out, ToUnixMillis(record.at), kTimeBytes);
  out += PackId(record.result_id);
  return out;
}

std::optional<IdempotencyRecord> UnpackRecord(std::string_view value) {
  if (value.size() < kTimeBytes) return std::nullopt;
  auto id = UnpackId(value.substr(kTimeBytes));
  if (!id) return std::nullopt;
  return IdempotencyRecord{FromUnixMillis(ReadInt(value, kTimeBytes)), std::move(*id)};
}

}  // namespace callgate::redis_keys
