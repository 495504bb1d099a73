// The storage interface, in domain words. A Store keeps tenants and, per (channel, destination)
// pair, the permission ledger state plus an append-only history. Backends: MemoryStore (tests),
// SqliteStore (default, durable), and later a Redis Cluster one — which is why a pair update is
// a mutation function the store runs atomically (and may re-run on an optimistic-version
// conflict) rather than a lock the caller holds.
//
// All methods are thread-safe. Update's callback runs exactly once, on a store-owned thread or
// inline, after the change is durable (or has failed).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ledger.h"
#include "core/result.h"
#include "tenants/tenants.h"

namespace callgate {

enum class StoreError {
  kNotFound,       // a referenced tenant object does not exist
  kAlreadyExists,  // the id (or phone_number_id) is taken
  kInvalid,        // the data could not be decoded or violates a constraint
  kUnavailable,    // I/O failure, lock timeout, store closed
};

std::string_view StoreErrorName(StoreError error);

template <class T>
using StoreResult = Result<T, StoreError>;
struct Ok {};
using StoreStatus = StoreResult<Ok>;

struct PairKey {
  std::string channel_id;
  std::string destination;  // E.164, "+" and digits

  friend bool operator==(const PairKey&, const PairKey&) = default;
};

enum class EventSource { kWebhook, kApi, kAdmin };
std::string_view EventSourceName(EventSource source);

// One entry of a pair's history: an applied event, how it arrived, and a key unique per pair —
// appending an entry whose key is already there keeps one entry (the store's event
// de-duplication): the version with the earlier event time, as the pair state merges facts, so
// the history reads the same whatever order deliveries came in. The event itself is kept so the
// history can be folded again (notices).
struct HistoryEntry {
  // Must be EventKey(event), e.g. "terminate:<wacid>": stores derive what they keep from the
  // event and refuse (kInvalid) an update whose entries say otherwise.
  std::string event_key;
  EventSource source = EventSource::kApi;
  Event event;
  std::int64_t seq = 0;  // assigned by the store, increasing per store
};

// Runs under the store's per-pair atomicity: reads and changes `state`, appends to `history`.
// It may run more than once (on a conflict), so it must only touch its arguments and captures it
// owns. Returning false discards all its changes (e.g. an enforcement check refused).
using PairMutation = std::function<bool(PairState& state, std::vector<HistoryEntry>& history)>;
using UpdateDone = std::function<void(StoreStatus status)>;

class Store {
 public:
  virtual ~Store() = default;

  // Tenants.
  virtual StoreStatus CreateAccount(const Account& account) = 0;
  virtual StoreStatus CreateSubaccount(const Subaccount& subaccount) = 0;
  virtual StoreStatus CreateChannel(const Channel& channel) = 0;
  virtual StoreStatus SetCallbackPermission(const std::string& channel_id, bool enabled) = 0;
  virtual StoreStatus AddApiKey(const ApiKey& key) = 0;
  virtual StoreStatus RevokeApiKey(const std::string& key_id, Instant at) = 0;
  // Increases whenever tenants change (in this or another process sharing the store).
  virtual StoreResult<std::uint64_t> TenantGeneration() = 0;
  virtual StoreResult<TenantSnapshot> LoadTenants() = 0;

  // Pairs. A pair never written reads as an empty PairState.
  virtual StoreResult<PairState> LoadPair(const PairKey& key) = 0;
  virtual void UpdatePair(const PairKey& key, PairMutation mutation, UpdateDone done) = 0;
  // History entries with seq < before_seq (all if 0), newest first, at most `limit`.
  virtual StoreResult<std::vector<HistoryEntry>> LoadHistory(const PairKey& key,
                                                             std::int64_t before_seq,
                                                             int limit) = 0;
};

// Applies `event` and, if it changed the state, records it in `history`: what every writer of
// events does inside a PairMutation.
ApplyOutcome ApplyAndRecord(PairState& state, std::vector<HistoryEntry>& history,
                            const Event& event, EventSource source, LimitsProfile profile);

// Blocks until the update is durable: for tools and tests, not for the request path.
StoreStatus UpdatePairSync(Store& store, const PairKey& key, PairMutation mutation);

}  // namespace callgate
