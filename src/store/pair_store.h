// PairStore: the storage seam of the pair ledgers, in domain words. Per (channel, user) pair it
// keeps the ledger state (core/ledger.h) and an append-only history of the events applied.
// Backends: SqliteStore (store/sqlite, the default, durable), MemoryStore (store/memory, tests),
// and later a Redis Cluster one — which is why a change is a mutation the store runs atomically
// (and may re-run on an optimistic-version conflict) rather than a lock the caller holds.
//
// Use UpdatePair<R> (below): it runs a mutation that returns its result and hands that result to
// the caller once the change is durable. An update made under an idempotency key also reads and
// writes the pair's record under that key, kept beside the pair rather than in its state
// (UpdatePairIdempotent). All methods are thread-safe.
//
// Reads. LoadPair and the history reads block until they have their answer: right where reads are
// local (SQLite's cache and file, memory: microseconds). Where they cross the network
// (ReadsAreRemote(): Redis Cluster), the request path reads through LoadPairAsync,
// LoadPairsAsync and LoadHistoryUntilAsync instead, so that a server thread keeps serving other
// connections while its reads are in flight, and many reads share the round trip. Their callback
// runs exactly once, inline (before the call returns) or on a store-owned thread, never while the
// store holds a lock the caller could need; it gets what the blocking read would have returned.
// The defaults here are the blocking read, inline: what a local store wants.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/ledger.h"
#include "core/store_error.h"
#include "core/user_id.h"

namespace callgate {

// How an event reached the pair's history. The numbers are stored: never renumber.
enum class EventSource : std::uint8_t {
  kWebhook = 0,
  kApi = 1,
  kDerived = 2,  // a NoticeFinalized: derived by the ledger
};
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

// The first result of a request made under an idempotency key, returned again to a retry. Kept
// per pair and key beside the pair's state, so a pair's past requests do not weigh on reading or
// changing it; a store may forget a record once it is kIdempotencyRetention old.
struct IdempotencyRecord {
  Instant at;             // when the request was first answered
  std::string result_id;  // what it created (a request or authorisation id)

  friend bool operator==(const IdempotencyRecord&, const IdempotencyRecord&) = default;
};
constexpr Millis kIdempotencyRetention = std::chrono::hours(24);

// What a typed mutation returns: its result for the caller, and whether its changes to the state
// and history are to be written (false discards them, e.g. an enforcement check refused).
template <class R>
struct Mutated {
  R result;
  bool write = true;
};

// The type-erased mutation backends run: reads and changes `state`, appends to `history`, returns
// whether to write. It may run more than once (on a conflict), so it must only touch its
// arguments and what it owns. Callers use UpdatePair<R>, which builds one.
using PairMutation = std::function<bool(PairState& state, std::vector<HistoryEntry>& history)>;
// The same, for an update made under an idempotency key: `record` comes in as the pair's record
// under that key (nullopt if it has none) and, if the mutation changed it and returns true, is
// stored with the change, in the same commit.
using IdempotentMutation = std::function<bool(PairState& state, std::vector<HistoryEntry>& history,
                                              std::optional<IdempotencyRecord>& record)>;
using UpdateDone = std::function<void(StoreStatus status)>;
using PairLoaded = std::function<void(StoreResult<PairState> state)>;
// The states of several pairs, in the order their keys were given.
using PairsLoaded = std::function<void(std::vector<StoreResult<PairState>> states)>;
using HistoryLoaded = std::function<void(StoreResult<std::vector<HistoryEntry>> entries)>;

// Ids that name one user (docs/rules.md §7: a phone number, a BSUID, a parent BSUID), learnt
// together on `channel_id`. Links hold per scope: the account that owns the channel (a channel
// the store does not know is a scope of its own).
struct UserLink {
  std::string channel_id;
  std::vector<UserId> ids;  // two or more
};

// A pair's facts folded again from its history: what one pair holding every fact of
// `entries` (the histories of one or more pairs, in any order) has — its state and history.
// Entries are de-duplicated by event key (the earliest version kept, as a pair keeps one) and
// applied in event-time order from an empty state; derived entries (kDerived) are derived again.
// How two ledgers of one user merge exactly, whatever order their events came in.
struct FoldedPair {
  PairState state;
  std::vector<HistoryEntry> history;  // seq: the entry's own, 0 for derived ones
};
FoldedPair FoldHistories(std::vector<HistoryEntry> entries, LimitsProfile profile);

// What LoadHistoryUntil answers, cut from a pair's whole history (any order): the entries with
// EventTime <= until, latest first, `count` of them and every other entry at the time of the last
// one. For backends that read the whole history anyway (memory, Redis).
std::vector<HistoryEntry> CutHistoryUntil(std::vector<HistoryEntry> entries, Instant until,
                                          int count);

class NotificationOutbox;  // store/outbox.h

class PairStore {
 public:
  virtual ~PairStore() = default;

  // Commits a change that alters nothing anyone reads, durably, as every pair write is committed:
  // whether the store can take writes now (readiness). Synchronous.
  virtual StoreStatus ProbeWrite() = 0;

  // A pair never written reads as an empty PairState.
  virtual StoreResult<PairState> LoadPair(const PairKey& key) = 0;
  // Whether a read waits on the network (then callers on a request path read asynchronously).
  virtual bool ReadsAreRemote() const { return false; }
  // LoadPair without blocking: `done` gets what LoadPair would return (see "Reads" above).
  virtual void LoadPairAsync(const PairKey& key, PairLoaded done) { done(LoadPair(key)); }
  // LoadPair of every key, the reads in flight together: `done` runs once, with one result per
  // key, in key order (a key given twice is read twice).
  virtual void LoadPairsAsync(std::vector<PairKey> keys, PairsLoaded done);
  // Runs `mutation` atomically on the pair and its record under `idempotency_key` (none if
  // empty); `done` runs exactly once, on a store-owned thread or inline, after the change is
  // durable (or has failed). Prefer UpdatePairIdempotent<R>.
  virtual void UpdateIdempotent(const PairKey& key, std::string idempotency_key,
                                IdempotentMutation mutation, UpdateDone done) = 0;
  // The same without an idempotency key. Prefer UpdatePair<R>.
  void Update(const PairKey& key, PairMutation mutation, UpdateDone done);
  // History entries with seq < before_seq (all if 0), newest first, at most `limit`.
  virtual StoreResult<std::vector<HistoryEntry>> LoadHistory(const PairKey& key,
                                                             std::int64_t before_seq,
                                                             int limit) = 0;
  // Links `link.ids` in the scope of `link.channel_id` (UserLink), atomically with every pair
  // update: from the commit on, every id of the user's linked ids (those given, and those linked
  // to any of them before) names one pair per channel of the scope — keyed by the smallest id
  // text (a phone number before any BSUID) — and pairs that existed under several of them are
  // merged into it (FoldHistories; idempotency records kept). Reads, updates and history by any
  // of the ids reach that pair. `done` as for UpdateIdempotent.
  virtual void LinkUser(UserLink link, UpdateDone done) = 0;
  // The entries with EventTime <= until, latest first by that time: `count` of them (all, if
  // fewer) and every other entry at the time of the last one, so that equal times are never
  // split between two reads. Order among equal times is unspecified. What history pages read.
  virtual StoreResult<std::vector<HistoryEntry>> LoadHistoryUntil(const PairKey& key, Instant until,
                                                                  int count) = 0;
  // LoadHistoryUntil without blocking: `done` as for LoadPairAsync.
  virtual void LoadHistoryUntilAsync(const PairKey& key, Instant until, int count,
                                     HistoryLoaded done) {
    done(LoadHistoryUntil(key, until, count));
  }
  // The backend's notification outbox (store/outbox.h), committed with its pair changes; null
  // for a backend that keeps none yet (Redis Cluster).
  virtual NotificationOutbox* outbox() { return nullptr; }
};

// The result type of a mutation `F`: R for a mutation returning Mutated<R>.
template <class F>
using MutationResult =
    decltype(std::declval<std::invoke_result_t<F&, PairState&, std::vector<HistoryEntry>&>>()
                 .result);
template <class F>
using IdempotentMutationResult =
    decltype(std::declval<std::invoke_result_t<F&, PairState&, std::vector<HistoryEntry>&,
                                               std::optional<IdempotencyRecord>&>>()
                 .result);

// The typed read-modify-write of one pair and its record under `idempotency_key`:
// `mutate(state, history, record) -> Mutated<R>` runs under the pair's atomicity (perhaps more
// than once); `done` gets the result of the run that was committed, or the store's error.
template <class F, class R = IdempotentMutationResult<F>>
void UpdatePairIdempotent(PairStore& store, const PairKey& key, std::string idempotency_key,
                          F mutate, std::function<void(StoreResult<R>)> done) {
  // The last run's result, handed from the store's thread to `done`: the one seam that carries
  // a result out of a re-runnable mutation.
  auto result = std::make_shared<std::optional<R>>();
  store.UpdateIdempotent(
      key, std::move(idempotency_key),
      [result, mutate = std::move(mutate)](PairState& state, std::vector<HistoryEntry>& history,
                                           std::optional<IdempotencyRecord>& record) {
        Mutated<R> mutated = mutate(state, history, record);
        *result = std::move(mutated.result);
        return mutated.write;
      },
      [result, done = std::move(done)](StoreStatus status) {
        if (!status.ok()) return done(status.error());
        done(std::move(**result));
      });
}

// The same without an idempotency key: `mutate(state, history) -> Mutated<R>`.
template <class F, class R = MutationResult<F>>
void UpdatePair(PairStore& store, const PairKey& key, F mutate,
                std::function<void(StoreResult<R>)> done) {
  UpdatePairIdempotent(
      store, key, std::string(),
      [mutate = std::move(mutate)](PairState& state, std::vector<HistoryEntry>& history,
                                   std::optional<IdempotencyRecord>&) {
        return mutate(state, history);
      },
      std::move(done));
}

// Blocks until the update is durable: for tools and tests, not for the request path.
template <class F, class R = MutationResult<F>>
StoreResult<R> UpdatePairSync(PairStore& store, const PairKey& key, F mutate) {
  std::promise<StoreResult<R>> promise;
  auto future = promise.get_future();
  UpdatePair(store, key, std::move(mutate),
             std::function<void(StoreResult<R>)>(
                 [&promise](StoreResult<R> result) { promise.set_value(std::move(result)); }));
  return future.get();
}

// Blocks until an untyped update (a mutation returning whether to write) is durable.
StoreStatus UpdatePairSync(PairStore& store, const PairKey& key, PairMutation mutation);

// Records the notices compaction finalized (NoticeFinalized, source kDerived).
void RecordFinalized(std::vector<HistoryEntry>& history, const std::vector<Notice>& finalized);

// Applies `event` and, if it changed the state, records it in `history` with the notices it
// finalized: what every writer of events does inside a mutation.
ApplyOutcome ApplyAndRecord(PairState& state, std::vector<HistoryEntry>& history,
                            const Event& event, EventSource source, LimitsProfile profile);

}  // namespace callgate
