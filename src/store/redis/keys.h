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
};
PairKeys KeysOf(std::string_view prefix, const PairKey& key);

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
