// SqliteStore: the default, embedded, durable backend: one SQLite file in WAL mode with
// synchronous=FULL, so an acknowledged write survives kill -9 (and power loss, as far as the
// disk honours fsync).
//
// Pair updates go through one writer thread that takes every queued mutation, runs them all in
// one IMMEDIATE transaction and commits once: group commit, so throughput is not capped by the
// fsync rate. Reads use a pool of connections and never block on the writer (WAL). A checkpointer
// thread copies committed WAL pages into the database once the WAL holds `checkpoint_pages`, so
// commits never wait for a checkpoint (see CheckpointerLoop).
// Several processes may share the file: writes serialise on SQLite's write lock, and each
// transaction re-reads what it changes (and reserves new pair ids under that lock), so pair
// updates stay atomic across processes.
//
// Layout (storage layout 8, schema.h; layouts 4 to 7 are upgraded in place, any other is
// refused, never converted): each pair has one row in `pairs`, found by (channel, destination),
// holding an integer pair id and the encoded PairState; its history rows are keyed by (pair id,
// packed event key), so they sit together and new pairs append; its idempotency records are rows
// keyed by (pair id, key), purged after kIdempotencyRetention. Ids inside the blobs and keys are
// packed losslessly (store/codec.h); an event's id and time are stored once. store/sqlite/schema.cc
// has the schema.
//
// Pair reads go through a cache of encoded states that other processes' commits invalidate
// through shared change counters (store/sqlite/pair_cache.h, the file "<path>-changes"): a hit
// costs no system call, and a cached state is never older than the pair's last commit in any
// process.
//
// A store whose directory or files cannot be written (a read-only mount) opens read-only and
// serves reads from what is on disk; every write fails with kUnavailable until the directory can
// be written again, which a thread notices within a second: the store then finishes opening for
// writing by itself (store/sqlite/read_only.h).
//
// Thread-safe. Update callbacks run on the writer thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store/outbox.h"
#include "store/pair_store.h"
#include "store/sqlite/pair_cache.h"
#include "store/sqlite/pair_ids.h"
#include "tenants/tenant_store.h"

struct sqlite3;

namespace callgate {

class SqliteDb;  // one connection with its prepared statements (sqlite_db.h)

// One group commit, as the writer thread reports it to SqliteStore::Options::commit_observer.
struct CommitStats {
  std::size_t writes = 0;  // queued writes the batch took (refused or empty mutations included)
  // From the writer taking its locks (commit_mu_, the change counters', SQLite's write lock) to
  // the batch committed and published: waiting for them, running every write, committing.
  std::chrono::nanoseconds duration{};
  // The COMMIT statement alone: SQLite writes the batch's pages to the WAL and fsyncs it there
  // (synchronous=FULL), so this is the commit's write and fsync time.
  std::chrono::nanoseconds commit{};
};

class SqliteStore final : public TenantStore, public PairStore, public NotificationOutbox {
 public:
  struct Options {
    std::string path;
    int max_batch = 1024;                              // mutations per group commit
    std::size_t cache_bytes = std::size_t{256} << 20;  // pair state cache; 0 disables it
    // WAL pages that start a background checkpoint. A page changed several times between two
    // checkpoints is copied once, so larger means fewer bytes written (and a larger WAL file).
    int checkpoint_pages = 16384;
    // Runs `deliver`, which calls the UpdateDone callbacks of one commit on the writer thread;
    // e.g. inside a batch that wakes the callers' threads once (main.cpp wires the HTTP
    // server's). Unset: `deliver` is called directly.
    std::function<void(const std::function<void()>& deliver)> completion_scope;
    // Told, on a store thread, a line for the operator when a store opened read-only becomes
    // writable. Unset: nobody is told.
    std::function<void(const std::string& line)> notice;
    // Told of every batch that committed, on the writer thread, after its callers were answered
    // (the metrics). Unset: nobody is told.
    std::function<void(const CommitStats&)> commit_observer;
  };

  // Opens (creating if needed) the database and starts the writer. When the directory or the
  // files cannot be written but the database exists in the current layout, opens read-only
  // (read_only_reason() says why) and keeps trying to open for writing, once a second. Error: a
  // readable reason (e.g. a read-only directory without a database: nothing to serve).
  static Result<std::unique_ptr<SqliteStore>, std::string> Open(const Options& options);
  ~SqliteStore() override;  // finishes queued updates, then stops the writer

  // Why Open opened read-only; empty if it opened for writing. Set once, by Open.
  const std::string& read_only_reason() const { return read_only_reason_; }
  // Whether writes can commit: false from a read-only Open until the store could open for writing.
  bool writable() const { return writable_.load(std::memory_order_acquire); }
  // The pair cache's lookups since the store opened.
  PairCacheStats cache_stats() const { return cache_.stats(); }

  StoreStatus CreateAccount(const Account& account) override;
  StoreStatus CreateSubaccount(const Subaccount& subaccount) override;
  StoreStatus CreateChannel(const Channel& channel) override;
  StoreStatus SetCallbackPermission(const std::string& channel_id, bool enabled) override;
  StoreStatus AddApiKey(const ApiKey& key) override;
  StoreStatus RevokeApiKey(const std::string& key_id, Instant at) override;
  StoreStatus SetNotifyTarget(const std::string& account_id,
                              const std::optional<NotifyTarget>& target) override;
  StoreResult<std::uint64_t> TenantGeneration() override;
  std::uint64_t TenantChanges() override;
  StoreResult<TenantSnapshot> LoadTenants() override;

  StoreStatus ProbeWrite() override;
  StoreResult<PairState> LoadPair(const PairKey& key) override;
  void UpdateIdempotent(const PairKey& key, std::string idempotency_key,
                        IdempotentMutation mutation, UpdateDone done) override;
  StoreResult<std::vector<HistoryEntry>> LoadHistory(const PairKey& key, std::int64_t before_seq,
                                                     int limit) override;
  StoreResult<std::vector<HistoryEntry>> LoadHistoryUntil(const PairKey& key, Instant until,
                                                          int count) override;
  void LinkUser(UserLink link, UpdateDone done) override;
  NotificationOutbox* outbox() override { return this; }

  // The outbox (outbox.cc): rows written by the group commit, in the batch's transaction;
  // claims and settlements on the tenant connection, which any process may run.
  void SetNotifier(Notifier notifier) override;
  StoreResult<std::vector<OutboxItem>> ClaimDue(Instant now, const std::string& owner, Millis lease,
                                                int limit) override;
  StoreStatus Settle(const std::string& event_id, const std::string& owner, Settlement settlement,
                     Instant now, Instant retry_at) override;
  StoreResult<std::int64_t> PendingCount() override;

 private:
  // A pair update, or (link set) a user link, which the writer runs in turn with the updates.
  struct Write {
    PairKey key;
    std::string idempotency_key;  // empty: none
    IdempotentMutation mutation;
    UpdateDone done;
    std::optional<UserLink> link;
  };
  // A pooled read connection, returned to the pool on destruction unless the pool was emptied
  // meanwhile (sqlite_store.cc).
  class Reader {
   public:
    Reader(SqliteStore* store, std::unique_ptr<SqliteDb> db, std::uint64_t epoch);
    Reader(Reader&& other) noexcept;
    ~Reader();
    SqliteDb* get() const { return db_.get(); }

   private:
    SqliteStore* store_;
    std::unique_ptr<SqliteDb> db_;
    std::uint64_t epoch_;  // the pool's epoch it was taken in
  };
  // The shared change counters in use: read-only (or none) while the store is, replaced once by
  // a writable mapping of the same file when the store becomes writable. Every mapping stays
  // mapped until the store closes, so a reader may keep using the one it loaded.
  class Counters {
   public:
    ChangeCounters* operator->() const { return current_.load(std::memory_order_acquire); }
    ChangeCounters* get() const { return current_.load(std::memory_order_acquire); }
    void Set(std::unique_ptr<ChangeCounters> counters);  // one thread at a time

   private:
    std::atomic<ChangeCounters*> current_{nullptr};
    std::vector<std::unique_ptr<ChangeCounters>> mapped_;
  };
  // What a store needs to write: the change counters and its three writing connections.
  struct WriteSide {
    std::unique_ptr<ChangeCounters> counters;
    std::unique_ptr<SqliteDb> tenant_db, writer_db, checkpoint_db;
  };

  explicit SqliteStore(Options options);
  Reader AcquireReader();

  // The read-only mode (read_only.cc). OpenWriteSide opens everything a writing store needs;
  // Install hands it to the store and starts the checkpointer (before the writer thread starts,
  // or from the reopener once the read-only readers are closed). ReopenLoop, on the reopener
  // thread, tries once a second until the store can write.
  static Result<WriteSide, std::string> OpenWriteSide(const std::string& path);
  void Install(WriteSide side);
  void ReopenLoop();
  // One attempt: closes the pool's read-only connections (SQLite shares a file's shared-memory
  // index among the connections of a process, so a writable connection opened beside a
  // read-only one could not write), then opens for writing; on failure the readers open
  // read-only again. Returns whether the store is writable now.
  bool TryBecomeWritable();
  // Empties the pool: readers taken before are closed when returned. Needs readers_mu_.
  void ResetReadersLocked();

  // Group commit (group_commit.cc), writer thread only.
  struct BatchWrites;  // what one batch has written so far
  void WriterLoop();
  // Commits `batch` in one transaction; answers every caller once commit_mu_ is released.
  void CommitBatch(std::vector<Write>& batch);
  // Its steps: take the counters' lock and SQLite's write lock; run one write in a savepoint;
  // commit, move the change counters around the commit, fill the cache and unlock.
  bool BeginBatch(SqliteDb& db);
  StoreStatus ApplyWrite(SqliteDb& db, const Write& write, PairIds::Batch& pair_ids,
                         BatchWrites& written);
  // A link (in group_commit.cc): merges the user's pairs on every channel of the scope, updates
  // user_links, and notes in `written` every cache key whose reads it changed.
  StoreStatus ApplyLink(SqliteDb& db, const UserLink& link, BatchWrites& written);
  void Enqueue(Write write);
  // `commit_time`: how long the COMMIT statement took.
  bool CommitAndPublish(SqliteDb& db, const BatchWrites& written,
                        std::chrono::nanoseconds& commit_time);
  std::int64_t NextSeq();  // the next history entry's seq
  // Stores the notifications of one pair change (outbox.cc), inside the write's savepoint.
  StoreStatus WriteOutbox(SqliteDb& db, const PairKey& key, const PairState& before,
                          const PairState& after, const std::vector<HistoryEntry>& history);
  // Deletes idempotency records past kIdempotencyRetention, a bounded number at most once a
  // minute, inside the batch's transaction.
  void PurgeExpiredRecords(SqliteDb& db);
  // Calls every write's done with its result (one per write), inside the completion scope.
  void Complete(std::vector<Write>& batch, const std::vector<StoreStatus>& results);

  void CheckpointerLoop();
  // The writer connection's WAL hook: notes the WAL's size and wakes the checkpointer.
  static int OnWalCommit(void* store, sqlite3* db, const char* name, int pages);
  // Runs `body` in an IMMEDIATE transaction on the tenant connection and bumps the generation
  // (tenant_tables.cc).
  template <class Body>
  StoreStatus TenantWrite(Body&& body);

  // The cached, else stored, state of a pair; `db` reads on a miss.
  StoreResult<PairState> ReadThroughCache(SqliteDb& db, const PairKey& key);

  Options options_;
  Counters counters_;
  PairCache cache_;

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<SqliteDb>> idle_readers_;
  // Pool state, guarded by readers_mu_: readers taken and not yet returned; the epoch, moved
  // when the pool is emptied (a reader of an older epoch is closed when returned); whether new
  // connections open read-only; whether taking a reader waits (while TryBecomeWritable runs).
  std::size_t readers_out_ = 0;
  std::uint64_t readers_epoch_ = 0;
  bool readers_read_only_ = false;
  bool readers_paused_ = false;
  std::condition_variable readers_cv_;
  std::atomic<std::uint64_t> reader_resets_{0};  // moved with the epoch, read without the lock

  std::string read_only_reason_;       // set once by Open
  std::atomic<bool> writable_{false};  // set (once) after everything writing needs is installed
  bool wal_seen_ = false;              // reopener thread: a -wal file existed at the last reset
  std::mutex reopen_mu_;
  std::condition_variable reopen_cv_;
  bool reopen_stopping_ = false;
  std::thread reopener_;

  NotifierSlot notifier_;
  std::chrono::steady_clock::time_point next_outbox_purge_{};  // under tenant_mu_

  std::mutex tenant_mu_;
  std::unique_ptr<SqliteDb> tenant_db_;

  std::unique_ptr<SqliteDb> writer_db_;  // only the writer thread touches it
  std::mutex commit_mu_;  // held by a commit, and by the checkpointer finishing a checkpoint
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Write> queue_;
  bool stopping_ = false;
  std::int64_t last_seq_ = 0;                           // writer thread only
  std::chrono::steady_clock::time_point next_purge_{};  // writer thread only
  PairIds pair_ids_;                                    // writer thread only
  std::thread writer_;

  std::unique_ptr<SqliteDb> checkpoint_db_;  // only the checkpointer thread touches it
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_due_ = false;
  int wal_pages_ = 0;  // after the last commit (writer thread only)
  bool checkpoint_stopping_ = false;
  std::thread checkpointer_;
};

}  // namespace callgate
