// SqliteStore's life cycle (Open, threads, shutdown), its pool of read connections and the pair
// reads; the other jobs live beside it (tenant_tables.cc, group_commit.cc, checkpointer.cc).
// Thread-safe: each connection has one user at a time, the pool is guarded by readers_mu_.
#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include "store/codec.h"
#include "store/sqlite/history_rows.h"
#include "store/sqlite/read_only.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_db.h"

namespace callgate {

namespace {

// The stored state of a pair and its encoding ("" for a pair never written). `key` may name the
// pair by any of its user's ids; `aliased` says whether it named it by another than the one its
// row is keyed by (such a read must not be cached under `key`: writes to the pair do not move
// that key's change counter).
StoreResult<PairState> ReadPair(SqliteDb& db, const PairKey& key, std::string& encoded,
                                bool& aliased) {
  aliased = false;
  encoded.clear();
  // The pair's own row first: the one lookup of every read of a pair named by its key.
  Stmt stmt(db, "SELECT state FROM pairs WHERE channel_id = ?1 AND destination = ?2");
  if (!stmt.ok()) return StoreError::kUnavailable;
  int rc = stmt.Bind(1, key.channel_id).Bind(2, key.user.text()).Step();
  if (rc == SQLITE_DONE) {
    Stmt linked(db,
                "SELECT state FROM pairs WHERE channel_id = ?1 AND destination = "
                "(SELECT canonical FROM user_links WHERE scope = " CALLGATE_SQL_SCOPE
                " AND alias = ?2)");
    if (!linked.ok()) return StoreError::kUnavailable;
    rc = linked.Bind(1, key.channel_id).Bind(2, key.user.text()).Step();
    if (rc == SQLITE_DONE) return PairState{};
    if (rc != SQLITE_ROW) return StoreErrorOf(rc);
    aliased = true;
    encoded.assign(linked.Blob(0));
  } else if (rc != SQLITE_ROW) {
    return StoreErrorOf(rc);
  } else {
    encoded.assign(stmt.Blob(0));
  }
  auto state = DecodePairState(encoded);
  if (!state) return StoreError::kInvalid;
  return std::move(*state);
}

}  // namespace

SqliteStore::Reader::Reader(SqliteStore* store, std::unique_ptr<SqliteDb> db, std::uint64_t epoch)
    : store_(store), db_(std::move(db)), epoch_(epoch) {}

SqliteStore::Reader::Reader(Reader&& other) noexcept
    : store_(std::exchange(other.store_, nullptr)),
      db_(std::move(other.db_)),
      epoch_(other.epoch_) {}

SqliteStore::Reader::~Reader() {
  if (!store_) return;  // moved from
  std::lock_guard lock(store_->readers_mu_);
  if (db_ && epoch_ == store_->readers_epoch_) {
    store_->idle_readers_.push_back(std::move(db_));
  } else {
    db_.reset();  // the pool was emptied since it was taken: closed before it counts as back
  }
  if (--store_->readers_out_ == 0 && store_->readers_paused_) store_->readers_cv_.notify_all();
}

SqliteStore::SqliteStore(Options options)
    : options_(std::move(options)), cache_(options_.cache_bytes) {}

StoreResult<PairState> SqliteStore::ReadThroughCache(SqliteDb& db, const PairKey& key) {
  // The state's encoding, from the cache or the file. Lives as long as its thread and is reused
  // by every read on it (what it holds matters only within one call), so that a read allocates
  // nothing once the buffer has grown to the largest state the thread has read.
  thread_local std::string encoded;
  // A read-only store without a counters file cannot tell when a cached state goes stale, and a
  // connection reading the file alone may read a stale one (read_only.h): such reads load from
  // the file, as with the cache off.
  const ChangeCounters* counters = counters_.get();
  bool aliased = false;
  if (!counters || db.reads_file_alone()) return ReadPair(db, key, encoded, aliased);
  const std::string& cache_key = CacheKey(key);  // this thread's buffer; no other CacheKey below
  const std::uint64_t hash = PairHash(cache_key);
  const std::size_t bucket = ChangeCounters::Bucket(hash);
  const std::uint64_t before = counters->Load(bucket);
  if (ChangeCounters::Stable(before) && cache_.Get(cache_key, hash, before, encoded)) {
    if (encoded.empty()) return PairState{};
    if (auto state = DecodePairState(encoded)) return std::move(*state);
  }
  auto state = ReadPair(db, key, encoded, aliased);
  // Cached only if no commit to this bucket began meanwhile (pair_cache.h), and only under the
  // key the pair's writes move the counter of (a link moves those of all the user's ids).
  if (state.ok() && !aliased && ChangeCounters::Stable(before) &&
      counters->Load(bucket) == before) {
    cache_.Put(cache_key, hash, before, encoded);
  }
  return state;
}

Result<std::unique_ptr<SqliteStore>, std::string> SqliteStore::Open(const Options& options) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(options));
  const std::string& path = options.path;
  if (auto side = OpenWriteSide(path)) {
    store->Install(std::move(*side));
  } else {
    // Read-only only when something cannot be written: any other failure (a foreign layout, a
    // corrupt file) is the answer, as is a directory without a store (nothing to serve).
    std::string not_writable = NotWritable(path);
    if (not_writable.empty()) return side.error();
    auto reader = OpenReadOnlyConnection(path);
    if (!reader) return reader.error() + ", and " + not_writable;
    store->read_only_reason_ = std::move(not_writable);
    // The counters file mapped read-only, not left out: other processes may write the file
    // through another mount (a read-only bind mount beside a writable one), and a cache is exact
    // only if it sees their commits; and a tenant change they make moves the generation this
    // process reloads tenants on. Without the file (nobody has written here with a cache), no
    // cache: every read loads from the file.
    if (auto counters = ChangeCounters::OpenReadOnly(path + "-changes")) {
      store->counters_.Set(std::move(*counters));
    }
    store->readers_read_only_ = true;
    store->wal_seen_ = FileExists(path + "-wal");
    store->idle_readers_.push_back(std::move(*reader));
    store->reopener_ = std::thread([s = store.get()] { s->ReopenLoop(); });
  }
  store->writer_ = std::thread([s = store.get()] { s->WriterLoop(); });
  return store;
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lock(reopen_mu_);
    reopen_stopping_ = true;
  }
  reopen_cv_.notify_all();
  if (reopener_.joinable()) reopener_.join();
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard lock(checkpoint_mu_);
    checkpoint_stopping_ = true;
  }
  checkpoint_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
}

SqliteStore::Reader SqliteStore::AcquireReader() {
  std::uint64_t epoch;
  bool read_only;
  {
    std::unique_lock lock(readers_mu_);
    if (readers_paused_) readers_cv_.wait(lock, [this] { return !readers_paused_; });
    ++readers_out_;
    epoch = readers_epoch_;
    if (!idle_readers_.empty()) {
      auto db = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return Reader(this, std::move(db), epoch);
    }
    read_only = readers_read_only_;
  }
  auto db = read_only ? OpenReadOnlyConnection(options_.path) : OpenConnection(options_.path);
  return Reader(this, db ? std::move(*db) : nullptr, epoch);
}

StoreResult<PairState> SqliteStore::LoadPair(const PairKey& key) {
  Reader reader = AcquireReader();
  if (!reader.get()) return StoreError::kUnavailable;
  return ReadThroughCache(*reader.get(), key);
}

StoreStatus ReadHistoryRows(Stmt& s, std::vector<HistoryEntry>& out) {
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    auto event = DecodeEvent(s.Blob(1), FromUnixMillis(s.Int(2)), s.Blob(4));
    const std::int64_t source = s.Int(3);
    if (!event || source < 0 || source > static_cast<std::int64_t>(EventSource::kDerived)) {
      return StoreError::kInvalid;
    }
    std::string event_key = EventKey(*event);
    out.push_back(
        {std::move(event_key), static_cast<EventSource>(source), std::move(*event), s.Int(0)});
  }
  return rc == SQLITE_DONE ? StoreStatus(Ok{}) : StoreStatus(StoreErrorOf(rc));
}

StoreResult<std::vector<HistoryEntry>> SqliteStore::LoadHistory(const PairKey& key,
                                                                std::int64_t before_seq,
                                                                int limit) {
  Reader reader = AcquireReader();
  if (!reader.get()) return StoreError::kUnavailable;
  Stmt s(
      *reader.get(),
      "SELECT seq, event_key, at, source, event FROM history WHERE pair_id = "
      "(SELECT pair_id FROM pairs WHERE channel_id = ?1 AND destination = " CALLGATE_SQL_CANONICAL
      ") "
      "AND (?3 = 0 OR seq < ?3) ORDER BY seq DESC LIMIT ?4");
  s.Bind(1, key.channel_id).Bind(2, key.user.text()).Bind(3, before_seq).Bind(4, limit);
  std::vector<HistoryEntry> out;
  if (auto status = ReadHistoryRows(s, out); !status.ok()) return status.error();
  return out;
}

// SQLite finds a pair's rows by the key prefix (pair_id) and keeps the `count` latest in a
// bounded sorter: rows it passes over are neither decoded nor returned. Rows at the time of the
// last one kept are then read whole, so equal times are never split.
StoreResult<std::vector<HistoryEntry>> SqliteStore::LoadHistoryUntil(const PairKey& key,
                                                                     Instant until, int count) {
  Reader reader = AcquireReader();
  if (!reader.get()) return StoreError::kUnavailable;
  SqliteDb& db = *reader.get();
  if (!db.Exec("BEGIN")) return StoreError::kUnavailable;  // both queries on one snapshot
  std::vector<HistoryEntry> out;
  StoreStatus status = Ok{};
  {
    Stmt latest(
        db,
        "SELECT seq, event_key, at, source, event FROM history WHERE pair_id = "
        "(SELECT pair_id FROM pairs WHERE channel_id = ?1 AND destination = " CALLGATE_SQL_CANONICAL
        ") "
        "AND at <= ?3 ORDER BY at DESC LIMIT ?4");
    latest.Bind(1, key.channel_id)
        .Bind(2, key.user.text())
        .Bind(3, ToUnixMillis(until))
        .Bind(4, count);
    status = ReadHistoryRows(latest, out);
  }
  if (status.ok() && static_cast<int>(out.size()) == count && count > 0) {
    const Instant last = EventTime(out.back().event);
    std::erase_if(out, [&](const HistoryEntry& e) { return EventTime(e.event) == last; });
    Stmt ties(
        db,
        "SELECT seq, event_key, at, source, event FROM history WHERE pair_id = "
        "(SELECT pair_id FROM pairs WHERE channel_id = ?1 AND destination = " CALLGATE_SQL_CANONICAL
        ") "
        "AND at = ?3");
    ties.Bind(1, key.channel_id).Bind(2, key.user.text()).Bind(3, ToUnixMillis(last));
    status = ReadHistoryRows(ties, out);
  }
  db.Exec("COMMIT");
  if (!status.ok()) return status.error();
  return out;
}

void SqliteStore::UpdateIdempotent(const PairKey& key, std::string idempotency_key,
                                   IdempotentMutation mutation, UpdateDone done) {
  Enqueue({key, std::move(idempotency_key), std::move(mutation), std::move(done)});
}

void SqliteStore::LinkUser(UserLink link, UpdateDone done) {
  // The key names the channel the link was learnt on; the writer reads only `link`.
  PairKey key{link.channel_id, link.ids.empty() ? UserId::Bsuid("") : link.ids.front()};
  Enqueue({std::move(key), {}, nullptr, std::move(done), std::move(link)});
}

void SqliteStore::Enqueue(Write write) {
  {
    std::lock_guard lock(queue_mu_);
    if (!stopping_) {
      queue_.push_back(std::move(write));
      queue_cv_.notify_one();
      return;
    }
  }
  write.done(StoreError::kUnavailable);
}

}  // namespace callgate
