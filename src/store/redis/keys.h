// Where RedisClusterStore keeps things in the cluster: the key of every piece, and the values
// packed into them that are not the store codec's (history entries, idempotency records). Every
// key of one pair shares one {hash tag}, so one script sees all of them; the tag is hex of a hash
// of (channel, user), so ids never appear inside braces. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/user_id.h"
#include "store/outbox.h"
#include "store/pair_store.h"

namespace callgate::redis_keys {

// 24 hex digits (96 bits of two FNV-1a passes) of the text: stable across builds and processes,
// and wide enough that two pairs sharing one (which would share keys) is out of reach.
std::string Tag(std::string_view text);

struct PairKeys {
  std::string pair;     // string: version token, last seq, trimmed horizon and encoded state,
                        // or a tombstone naming the canonical id (layout: scripts.cc)
  std::string history;  // hash: packed event key -> PackHistoryValue
  std::string records;  // hash: idempotency key -> PackRecord; expires kIdempotencyRetention
                        // after its last record
  std::string claim;    // string, 100 ms: the process that lost a commit and goes next
  std::string outbox;   // hash: event id -> outbox item (scripts.cc, kOutboxCodec); "#" counts
};
PairKeys KeysOf(std::string_view prefix, const PairKey& key);
// What every key of the pair starts with ("<prefix>{<tag>}:"); a key is it plus "p", "h", "i",
// "c" or "o" as above. For callers that need one or two of the keys, not all five.
std::string KeyBase(std::string_view prefix, const PairKey& key);

// The notification outbox beside the pairs. Each slot has an index (a sorted set: the outbox keys
// of that slot's pairs with unsettled items, scored by when their first one is ready), so that a
// pair's commit updates it in the same script; its key carries a tag that hashes to that slot.
// The hint (one sorted set in slot {outbox}: slot number -> the earliest time its index may have
// something ready) tells the deliverers which indexes to look at; it is only a hint — never later
// than the truth once a commit's follow-up or a deliverer's re-check has run, and rebuilt from
// every index now and then (outbox.cc).
std::string SlotIndexKey(std::string_view prefix, std::uint16_t slot);
std::string OutboxHintKey(std::string_view prefix);

// An outbox item's value after the header the scripts read: what only C++ reads of it.
std::string PackOutboxRest(const OutboxItem& item);
// The item a stored (event id, value) holds, its header included; nullopt if unreadable.
std::optional<OutboxItem> UnpackOutboxItem(std::string_view event_id, std::string_view value);

// The user links of one scope (an account, or "#<channel>" for a channel nobody knows): a hash,
// "a:<id>" -> canonical id ("!" before it while the link's merge is pending), "m:<canonical>" ->
// its aliases, space-separated.
std::string LinksKey(std::string_view prefix, std::string_view scope);

// The tenant keys, all in one slot ({tenants}), in the order the tenant scripts take them.
struct TenantKeys {
  std::string accounts, subaccounts, channels, phone_numbers, callbacks, api_keys, revocations,
      generation, seen, probe, notify_targets;
};
TenantKeys TenantKeysOf(std::string_view prefix);

// A history entry's value, after the 13 bytes (6 of time, 7 of seq, big-endian) the commit
// script writes before it: the source byte, then the event's details (codec.h).
std::string HistoryRest(const HistoryEntry& entry);
// Decodes a stored history entry (field, value) into an entry; nullopt if unreadable.
std::optional<HistoryEntry> DecodeHistory(std::string_view field, std::string_view value);

// An idempotency record's value: its time (6 bytes, big-endian, as the scripts read it), then the
// packed result id.
std::string PackRecord(const IdempotencyRecord& record);
std::optional<IdempotencyRecord> UnpackRecord(std::string_view value);

}  // namespace callgate::redis_keys
