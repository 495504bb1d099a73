// RedisClusterStore: the pairs and tenants of any number of callgate processes, in one Redis
// Cluster (issue 11). The ledger's rules stay in C++: an update runs its mutation on the decoded
// state, then one fixed, rule-free script (store/redis/scripts.cc) commits it in one round trip if
// the pair's version token is still the one the mutation started from. Thread-safe; update and
// link callbacks run on the Redis client's I/O thread or the store's link thread.
//
// Keys (store/redis/keys.h). A pair is three keys sharing one {hash tag}, hex of a hash of
// (channel, user id): "p" (encoded state, version token, last seq, trimmed horizon, tombstone),
// "h" (history: packed event key -> time, seq, source, details: one entry per key, the earliest
// version), "i" (idempotency records, expiring kIdempotencyRetention after the last one). The
// version token is 8 random bytes, never a counter: a failover may roll a counter back to a value
// a stale process still holds (ABA). Tenants live in one slot, "{tenants}".
//
// Updates. Operations on one pair are queued per process: one in flight, the next starting from
// the state and token the previous commit produced, so only other processes' commits make a
// commit retry; a conflict answers with the current token, state and record, so a retry costs
// one round trip; retries are bounded (then kUnavailable). So that one process's fast stream of
// commits cannot starve another's (the winner is always a step ahead), a loser claims the pair
// for 100 ms: others' commits are refused meanwhile and retry after a short back-off. A refused
// mutation decided on a cached state is confirmed by the same script in check-only mode, so nothing
// is decided on stale state. Every write waits for a replica (Durability::kReplica); any client
// failure is kUnavailable, and a write whose outcome is unknown is never re-sent by the store
// (callers' ids make their own retries safe).
//
// Reads. LoadPair reads the pair and, in parallel on the scope's link map, the id's link: one
// round trip unless the id is an alias (then the canonical pair is read too). Always from the
// masters, never from a cache: a read never decides on state older than the last acknowledged
// commit. The asynchronous reads (ReadsAreRemote) do the same without blocking: their commands go
// out from the caller's thread and their callbacks run on the client's I/O thread, pipelined with
// every other command; a tombstone or an alias's link is followed from there with one more round
// trip. The status read (LoadPairAsync) reads the pair alone first and the link only if the pair
// holds nothing: a stored pair costs one command; a pair that holds data answers as it is even
// while a link of its id is pending (as before the link began: its caller has not been answered). A
// pending link (the rare case below) must be completed before anything is read through it, with
// blocking commands: that read moves to the link thread, which runs the synchronous read.
// LoadPairsAsync reads the links of all its ids with one HMGET per scope, beside one read per pair.
//
// User links (LinkUser): the ids of one user live in different slots, so a link is a protocol of
// steps, each atomic, whose intermediate states every reader and writer handles:
//   1. BeginLink (the scope's link map, one slot): the group's smallest id becomes canonical;
//      every other id is mapped to it, marked pending ("!canonical").
//   2. For every channel of the scope: the pairs held under the group's ids are read with their
//      tokens, folded (FoldHistories: by event key, earliest version; records merged) into the
//      canonical pair by a version-checked replace, then each alias pair becomes a tombstone
//      pointing at the canonical id by a version-checked write (also where it had no data, which
//      fences a writer that resolved the id before step 1).
//   3. EndLink: the pending marks go.
// Crash cases: after 1, an alias pair still holds its own data and takes writes (nothing is lost:
// step 2 folds whatever it holds when it runs); any process that reads the id and finds the mark
// pending runs steps 2-3 itself (LoadPair and batch reads inline, a writer that consults the link
// map on the link thread; not a status read of a pair that holds data, above). Within 2, a pair
// folded but not yet tombstoned is folded again by the completion: folding is idempotent, since
// entries are keyed by event. A writer that finds a tombstone follows it; one that finds no pair
// consults the link map before creating it, and the tombstone write (expecting no pair) fences the
// race. LinkUser answers only after step 3.
//
// Tenants. Every change is one script on the {tenants} slot that bumps a generation counter.
// TenantChanges() reads a local counter that a background poll (every tenant_poll_interval) moves
// after reloading the scopes of channels; each process records the generation it has seen and a
// heartbeat in a hash in that slot, and a change made through the store waits (up to
// propagation_timeout) until every process with a fresh heartbeat has seen it, warning if some
// did not: once an admin command has returned, every server honours it on its next request. A
// process whose own poll is older than the freshness window polls inline before answering.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "redis/cluster_client.h"
#include "store/outbox.h"
#include "store/pair_store.h"
#include "store/redis/keys.h"
#include "tenants/tenant_store.h"

namespace callgate {

struct RedisStoreOptions {
  std::vector<redis::Endpoint> seeds;
  std::string key_prefix = "cg:";  // tests isolate themselves on one cluster with their own
  std::chrono::milliseconds command_timeout{2000};
  std::chrono::milliseconds replica_timeout{500};
  std::chrono::milliseconds tenant_poll_interval{50};
  // A tenant change waits this long at most for every live process to have seen it.
  std::chrono::milliseconds propagation_timeout{2000};
  // A process whose heartbeat is older than this is not waited for.
  std::chrono::milliseconds heartbeat_freshness{1000};
  // Whether this process records what it has seen (serving processes); the admin CLI need not.
  bool report_seen = true;
  int max_attempts = 32;  // commits of one update before it gives up (kUnavailable)
  // Told when a tenant change was not seen in time by every live process. Default: stderr.
  std::function<void(const std::string&)> warn;
  // redis::ClientOptions::completion_scope: where update and read callbacks run.
  std::function<void(const std::function<void()>&)> completion_scope;
};

class RedisClusterStore final : public TenantStore, public PairStore, public NotificationOutbox {
 public:
  static Result<std::unique_ptr<RedisClusterStore>, std::string> Open(RedisStoreOptions options);
  ~RedisClusterStore() override;  // waits for every queued update and link to finish

  StoreStatus CreateAccount(const Account& account) override;
  StoreStatus CreateSubaccount(const Subaccount& subaccount) override;
  StoreStatus CreateChannel(const Channel& channel) override;
  StoreStatus SetCallbackPermission(const std::string& channel_id, bool enabled) override;
  StoreStatus AddApiKey(const ApiKey& key) override;
  StoreStatus RevokeApiKey(const std::string& key_id, Instant at) override;
  // Notification targets are kept with the tenants.
  StoreStatus SetNotifyTarget(const std::string& account_id,
                              const std::optional<NotifyTarget>& target) override;
  StoreResult<std::uint64_t> TenantGeneration() override;
  std::uint64_t TenantChanges() override;
  StoreResult<TenantSnapshot> LoadTenants() override;

  StoreStatus ProbeWrite() override;
  StoreResult<PairState> LoadPair(const PairKey& key) override;
  bool ReadsAreRemote() const override { return true; }
  void LoadPairAsync(const PairKey& key, PairLoaded done) override;
  void LoadPairsAsync(std::vector<PairKey> keys, PairsLoaded done) override;
  void LoadHistoryUntilAsync(const PairKey& key, Instant until, int count,
                             HistoryLoaded done) override;
  void UpdateIdempotent(const PairKey& key, std::string idempotency_key,
                        IdempotentMutation mutation, UpdateDone done) override;
  StoreResult<std::vector<HistoryEntry>> LoadHistory(const PairKey& key, std::int64_t before_seq,
                                                     int limit) override;
  StoreResult<std::vector<HistoryEntry>> LoadHistoryUntil(const PairKey& key, Instant until,
                                                          int count) override;
  void LinkUser(UserLink link, UpdateDone done) override;

  // The notification outbox (outbox.cc): items go in with the pair commit that causes them, in
  // the pair's slot, with its slot's index.
  NotificationOutbox* outbox() override { return this; }
  void SetNotifier(Notifier notifier) override;
  StoreResult<std::vector<OutboxItem>> ClaimDue(Instant now, const std::string& owner, Millis lease,
                                                int limit) override;
  StoreStatus Settle(const std::string& event_id, const std::string& owner, Settlement settlement,
                     Instant now, Instant retry_at) override;
  StoreResult<std::int64_t> PendingCount() override;

  // Step 1 of a link alone, as a crash right after it leaves it (tests of the completion).
  StoreStatus BeginLinkOnly(const UserLink& link);
  // Commits that found the pair changed by someone else (each cost one more round trip).
  std::uint64_t conflicts() const { return conflicts_.load(std::memory_order_relaxed); }
  // The processes that had not seen the last tenant change made here when it returned.
  int last_lagging_processes() const { return last_lagging_.load(); }
  redis::ClusterClient& client() { return *client_; }
  const std::string& key_prefix() const { return options_.key_prefix; }

 private:
  struct Op;
  struct Slot;
  struct Resolved;
  struct ReadStep;
  using ResolvedDone = std::function<void(StoreResult<Resolved>&&)>;

  explicit RedisClusterStore(RedisStoreOptions options);

  // Scopes and limits of the channels this process knows (moved by the tenant poll).
  std::string ScopeOf(const std::string& channel_id);
  LimitsProfile LimitsOf(const std::string& channel_id);
  std::string NewToken();

  // --- pair updates (redis_cluster_store.cc) ---
  void Start(const std::string& slot_key);
  void Load(const std::string& slot_key, std::shared_ptr<Op> op, PairKey target, int hops);
  void Attempt(const std::string& slot_key, std::shared_ptr<Op> op, std::string seen_record,
               bool fresh);
  void OnConflict(const std::string& slot_key, std::shared_ptr<Op> op, const redis::Reply& reply);
  // Runs `fn` on the timer thread after `delay` (a retry backing off from another's claim).
  void After(std::chrono::milliseconds delay, std::function<void()> fn);
  void TimerLoop();
  void Finish(const std::string& slot_key, const std::shared_ptr<Op>& op, StoreStatus status,
              bool forget);
  // One read of the keys of `target`'s pair, answered in ReadPair's shape ({token, state,
  // tombstone, record[, history]}): for mode "s", plain GET (and HGET of `record_key`) pipelined
  // in one round trip; otherwise the ReadPair script. Builds only the keys it sends.
  void ReadPairKeys(const PairKey& target, const char* mode, const std::string& record_key,
                    redis::CommandDone done);
  // Reads a pair (mode "s") or a pair and its history ("h") by any of its user's ids, following
  // tombstones and links; completes a pending link it finds. Synchronous.
  StoreResult<Resolved> ReadResolved(const PairKey& key, const char* mode);
  // What one read of `target` says (ReadPair's reply and its id's link): the pair, or the id to
  // read next, or a pending link to complete first (unless `completed`).
  static ReadStep Examine(const PairKey& target, const char* mode, const redis::Reply& pair,
                          const redis::Reply& link, bool completed);
  // ReadResolved without blocking (Reads, above): `done` runs once, on the I/O or link thread;
  // the caller counts the read (ReadBegins, then ReadEnds once `done` has answered).
  void ReadResolvedAsync(const PairKey& key, const char* mode, ResolvedDone done);
  // Reads `target` for a read of `key`, `hops` links or tombstones in.
  void ReadFrom(PairKey key, PairKey target, const char* mode, int hops, ResolvedDone done);
  // Goes on from one read's replies (on the I/O thread): done, another read, or the link thread.
  void Continue(PairKey key, const PairKey& target, const char* mode, int hops,
                const redis::CommandResult& pair, const redis::CommandResult& link,
                ResolvedDone done);
  // An asynchronous read begins and ends: the destructor waits for those in flight.
  void ReadBegins() { reads_in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void ReadEnds();

  // --- links (links.cc) ---
  struct LinkJob {
    std::string scope;
    std::vector<std::string> ids;  // a LinkUser's ids; empty for a completion of `canonical`
    std::string canonical;
    std::vector<std::string> channels;  // the channel a scope of its own names
    UpdateDone done;
    std::function<void()> work;  // instead of a link: a read that must block (Reads, above)
  };
  void LinkLoop();
  void PostCompletion(const std::string& channel_id, const std::string& canonical);
  StoreStatus RunLink(const std::string& channel_id, const std::vector<std::string>& ids);
  StoreStatus CompleteLink(const std::string& channel_id, std::string canonical);
  StoreStatus MergeChannel(const std::string& channel_id, LimitsProfile limits,
                           const std::string& canonical, const std::vector<std::string>& aliases);
  std::vector<std::pair<std::string, LimitsProfile>> ChannelsOfScope(const std::string& channel);

  // --- the outbox (outbox.cc) ---
  // After a commit that added items due from `due_ms` on: the hint learns the slot (best effort:
  // the sweep finds what a crash left out).
  void HintSlot(std::uint16_t slot, std::int64_t due_ms);
  // Sets the hint of `slot` to what its index says after a claim or settlement (`next`: the
  // index's next ready time, "" when empty), then reads the index again so that a commit racing
  // with this write is never hidden.
  void RehintSlot(std::uint16_t slot, const std::string& next);
  // Reads every slot's index into the hint.
  StoreStatus SweepOutbox();
  struct Claimed {
    std::string outbox;  // the pair's outbox key
    std::uint16_t slot;
    Instant lease_until;
    std::string owner;
  };
  std::mutex outbox_mu_;
  NotifierSlot notifier_;
  std::unordered_map<std::string, Claimed> claimed_;    // by event id; outbox_mu_
  std::chrono::steady_clock::time_point next_sweep_{};  // outbox_mu_

  // --- tenants (tenants.cc) ---
  StoreStatus TenantWriteOp(std::vector<std::string> args);
  void PollLoop();
  bool PollOnce();
  void InstallScopes(const TenantSnapshot& snapshot);

  RedisStoreOptions options_;
  std::unique_ptr<redis::ClusterClient> client_;
  std::string process_id_;

  std::mutex rng_mu_;
  std::mt19937_64 rng_;

  std::mutex mu_;  // guards slots_ and in_flight_
  std::condition_variable idle_cv_;
  std::unordered_map<std::string, Slot> slots_;  // by channel + '\x1f' + user id, as given
  std::size_t in_flight_ = 0;                    // slots with an operation running
  std::atomic<std::size_t> reads_in_flight_{0};  // asynchronous reads not yet answered
  std::atomic<std::uint64_t> conflicts_{0};
  std::atomic<std::uint64_t> next_op_{0};

  std::mutex scopes_mu_;
  std::unordered_map<std::string, std::pair<std::string, LimitsProfile>> scopes_;  // channel ->

  std::atomic<std::uint64_t> tenant_changes_{0};
  std::atomic<std::int64_t> last_poll_ms_{0};  // steady clock, ms
  std::atomic<int> last_lagging_{0};
  std::mutex poll_mu_;  // one poll at a time (the thread, or an inline one)
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread poller_;

  struct Timed {
    std::chrono::steady_clock::time_point at;
    std::function<void()> fn;
    bool operator>(const Timed& other) const { return at > other.at; }
  };
  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  std::vector<Timed> timers_;  // a min-heap by time
  bool timer_stopping_ = false;
  std::thread timer_;

  std::mutex link_mu_;
  std::condition_variable link_cv_;
  std::deque<LinkJob> link_jobs_;
  std::set<std::string> pending_completions_;  // channel + '\x1f' + canonical, queued
  bool link_stopping_ = false;
  std::thread linker_;
};

}  // namespace callgate
