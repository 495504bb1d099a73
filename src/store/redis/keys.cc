#include "store/redis/keys.h"

#include <array>

#include "redis/cluster_client.h"
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

std::string KeyBase(std::string_view prefix, const PairKey& key) {
  std::string text = key.channel_id;
  text += '\x1f';  // never inside an id
  text += key.user.text();
  std::string base(prefix);
  base += '{';
  base += Tag(text);
  base += "}:";
  return base;
}

PairKeys KeysOf(std::string_view prefix, const PairKey& key) {
  const std::string base = KeyBase(prefix, key);
  return {base + "p", base + "h", base + "i", base + "c", base + "o"};
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

std::string SlotIndexKey(std::string_view prefix, std::uint16_t slot) {
  // For each slot, the first base-36 numeral (0, 1, …) that hashes to it: ~170k CRC16s of short
  // strings, once per process.
  static const std::array<std::string, 16384> tags = [] {
    std::array<std::string, 16384> found;
    std::size_t left = found.size();
    for (std::uint64_t i = 0; left > 0; ++i) {
      std::string tag;
      for (std::uint64_t v = i;; v /= 36) {
        tag.insert(tag.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36]);
        if (v < 36) break;
      }
      std::string& slot_tag = found[redis::HashSlot(tag)];
      if (slot_tag.empty()) {
        slot_tag = std::move(tag);
        --left;
      }
    }
    return found;
  }();
  std::string key(prefix);
  key += '{';
  key += tags[slot & 16383];  // at most 4 characters: never a pair's or a scope's 24-digit tag
  key += "}:ox";
  return key;
}

std::string OutboxHintKey(std::string_view prefix) { return std::string(prefix) + "{outbox}:hint"; }

namespace {

void AppendText(std::string& out, std::string_view text) {
  AppendInt(out, static_cast<std::int64_t>(text.size()), 2);
  out += text;
}

bool ReadText(std::string_view& in, std::string& out) {
  if (in.size() < 2) return false;
  const auto size = static_cast<std::size_t>(ReadInt(in, 2));
  if (in.size() < 2 + size) return false;
  out.assign(in.substr(2, size));
  in.remove_prefix(2 + size);
  return true;
}

// The header the scripts write (scripts.cc, kOutboxCodec).
constexpr std::size_t kOutboxHeader = 7 + 6 + 6 + 6 + 6 + 2 + 1;

}  // namespace

std::string PackOutboxRest(const OutboxItem& item) {
  const Notification& n = item.notification;
  std::string out;
  out += static_cast<char>(n.type);
  AppendInt(out, ToUnixMillis(n.occurred_at), kTimeBytes);
  out += static_cast<char>(n.granted);
  AppendInt(out, n.rule, 2);
  AppendText(out, n.reason);
  AppendText(out, n.cause_id);
  AppendText(out, item.pair.channel_id);
  AppendText(out, item.pair.user.text());
  return out;
}

std::optional<OutboxItem> UnpackOutboxItem(std::string_view event_id, std::string_view value) {
  // The header: seq(7) due(6) retry(6) lease(6) settled(6) attempts(2) state(1), then the owner.
  if (value.size() < kOutboxHeader + 1) return std::nullopt;
  Notification n;
  n.due_at = FromUnixMillis(ReadInt(value.substr(7), kTimeBytes));
  const auto attempts = static_cast<int>(ReadInt(value.substr(7 + 4 * 6), 2));
  const auto owner = static_cast<unsigned char>(value[kOutboxHeader]);
  if (value.size() < kOutboxHeader + 1 + owner) return std::nullopt;
  std::string_view rest = value.substr(kOutboxHeader + 1 + owner);
  if (rest.size() < 1 + kTimeBytes + 1 + 2) return std::nullopt;
  const auto type = static_cast<unsigned char>(rest[0]);
  if (type >= kNotificationTypeCount) return std::nullopt;
  n.type = static_cast<NotificationType>(type);
  n.occurred_at = FromUnixMillis(ReadInt(rest.substr(1), kTimeBytes));
  const auto granted = static_cast<unsigned char>(rest[1 + kTimeBytes]);
  if (granted > static_cast<unsigned char>(PermissionStatus::kPermanent)) return std::nullopt;
  n.granted = static_cast<PermissionStatus>(granted);
  n.rule = static_cast<int>(ReadInt(rest.substr(2 + kTimeBytes), 2));
  rest.remove_prefix(4 + kTimeBytes);
  std::string channel, user;
  if (!ReadText(rest, n.reason) || !ReadText(rest, n.cause_id) || !ReadText(rest, channel) ||
      !ReadText(rest, user) || !rest.empty()) {
    return std::nullopt;
  }
  return OutboxItem{std::string(event_id), PairKey{std::move(channel), UserId::FromText(user)},
                    std::move(n), attempts};
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
