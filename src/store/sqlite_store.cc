#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>

#include "store/codec.h"

namespace callgate {

// One connection and its cached prepared statements. Not thread-safe: one user at a time.
class SqliteDb {
 public:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  ~SqliteDb() {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  bool Exec(const char* sql) {
    return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  // Runs one statement from the cache (no re-parse): transaction control on the write path.
  bool Run(const char* sql) {
    sqlite3_stmt* stmt = Statement(sql);
    if (!stmt) return false;
    const int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW;
  }
  std::string Error() const { return sqlite3_errmsg(db_); }
  sqlite3_stmt* Statement(const char* sql) {
    auto [it, inserted] = statements_.try_emplace(sql, nullptr);
    if (inserted && sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &it->second,
                                       nullptr) != SQLITE_OK) {
      statements_.erase(it);
      return nullptr;
    }
    return it->second;
  }

 private:
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> statements_;  // keyed by literal address
};

namespace {

// Bump on any change to the tables or to the blob encodings (store/codec.cc).
constexpr std::int64_t kSchemaVersion = 3;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta VALUES ('tenant_generation', 0);
CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS subaccounts (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS channels (
  id TEXT PRIMARY KEY,
  subaccount_id TEXT NOT NULL REFERENCES subaccounts(id),
  phone_number_id TEXT NOT NULL UNIQUE,
  callback_permission INTEGER NOT NULL,
  limits_profile INTEGER NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
  key_id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  secret_sha256 BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER);
CREATE TABLE IF NOT EXISTS pairs (
  channel_id TEXT NOT NULL,
  destination TEXT NOT NULL,
  version INTEGER NOT NULL,
  state BLOB NOT NULL,
  PRIMARY KEY (channel_id, destination)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
  channel_id TEXT NOT NULL,
  destination TEXT NOT NULL,
  event_key TEXT NOT NULL,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  source INTEGER NOT NULL,
  event BLOB NOT NULL,
  PRIMARY KEY (channel_id, destination, event_key)) WITHOUT ROWID;
)sql";

// Binds, steps and resets a cached statement. Bind indexes start at 1.
class Stmt {
 public:
  Stmt(SqliteDb& db, const char* sql) : stmt_(db.Statement(sql)) {}
  ~Stmt() {
    if (stmt_) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  Stmt& Bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& Bind(int i, std::int64_t value) {
    sqlite3_bind_int64(stmt_, i, value);
    return *this;
  }
  Stmt& BindBlob(int i, const void* data, std::size_t size) {
    sqlite3_bind_blob(stmt_, i, data, static_cast<int>(size), SQLITE_STATIC);
    return *this;
  }
  Stmt& BindNull(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  int Step() { return stmt_ ? sqlite3_step(stmt_) : SQLITE_ERROR; }

  std::string Text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  std::string_view Blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string_view();
  }
  std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool Null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3_stmt* stmt_;
};

StoreError ErrorOf(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return StoreError::kAlreadyExists;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return StoreError::kInvalid;
    default:
      return StoreError::kUnavailable;
  }
}

// Runs a statement expected to finish in one step (INSERT/UPDATE).
StoreStatus Done(Stmt& stmt) {
  const int rc = stmt.Step();
  return rc == SQLITE_DONE ? StoreStatus(Ok{}) : StoreStatus(ErrorOf(rc));
}

bool Exists(SqliteDb& db, const char* sql, std::string_view id) {
  Stmt stmt(db, sql);
  return stmt.Bind(1, id).Step() == SQLITE_ROW;
}

// The stored state of a pair and its encoding ("" for a pair never written).
StoreResult<PairState> ReadPair(SqliteDb& db, const PairKey& key, std::string& encoded) {
  Stmt stmt(db, "SELECT state FROM pairs WHERE channel_id = ?1 AND destination = ?2");
  if (!stmt.ok()) return StoreError::kUnavailable;
  const int rc = stmt.Bind(1, key.channel_id).Bind(2, key.destination).Step();
  encoded.clear();
  if (rc == SQLITE_DONE) return PairState{};
  if (rc != SQLITE_ROW) return ErrorOf(rc);
  encoded.assign(stmt.Blob(0));
  auto state = DecodePairState(encoded);
  if (!state) return StoreError::kInvalid;
  return std::move(*state);
}

// The cache's key of a pair: unambiguous, as a destination holds no NUL.
const std::string& CacheKey(const PairKey& key) {
  thread_local std::string buffer;
  buffer.assign(key.channel_id).push_back('\0');
  buffer.append(key.destination);
  return buffer;
}

// `next_seq` numbers history entries: increasing within a process, and across processes and
// restarts roughly in time order (it never falls behind the clock in microseconds).
template <class NextSeq>
StoreStatus WritePair(SqliteDb& db, const PairKey& key, const std::string* blob,
                      const std::vector<HistoryEntry>& history, NextSeq&& next_seq) {
  if (blob) {
    Stmt upsert(db,
                "INSERT INTO pairs (channel_id, destination, version, state) "
                "VALUES (?1, ?2, 1, ?3) ON CONFLICT DO UPDATE SET "
                "version = version + 1, state = excluded.state");
    StoreStatus status = Done(upsert.Bind(1, key.channel_id)
                                  .Bind(2, key.destination)
                                  .BindBlob(3, blob->data(), blob->size()));
    if (!status.ok()) return status;
  }
  for (const HistoryEntry& e : history) {
    // One entry per event key; an earlier version of the same fact replaces a later one, as the
    // pair state merges it (min of times), so history does not depend on delivery order.
    Stmt insert(db,
                "INSERT INTO history (channel_id, destination, event_key, seq, at, source, event) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO UPDATE SET at = excluded.at, "
                "source = excluded.source, event = excluded.event WHERE excluded.at < history.at");
    const std::string event = EncodeEvent(e.event);
    StoreStatus status = Done(insert.Bind(1, key.channel_id)
                                  .Bind(2, key.destination)
                                  .Bind(3, e.event_key)
                                  .Bind(4, next_seq())
                                  .Bind(5, ToUnixMillis(EventTime(e.event)))
                                  .Bind(6, static_cast<std::int64_t>(e.source))
                                  .BindBlob(7, event.data(), event.size()));
    if (!status.ok()) return status;
  }
  return Ok{};
}

}  // namespace

class SqliteStore::Reader {
 public:
  Reader(SqliteStore* store, std::unique_ptr<SqliteDb> db) : store_(store), db_(std::move(db)) {}
  Reader(Reader&&) = default;
  ~Reader() {
    if (db_) {
      std::lock_guard lock(store_->readers_mu_);
      store_->idle_readers_.push_back(std::move(db_));
    }
  }
  SqliteDb* get() const { return db_.get(); }

 private:
  SqliteStore* store_;
  std::unique_ptr<SqliteDb> db_;
};

SqliteStore::SqliteStore(Options options)
    : options_(std::move(options)), cache_(options_.cache_bytes) {}

StoreResult<PairState> SqliteStore::ReadThroughCache(SqliteDb& db, const PairKey& key) {
  const std::string& cache_key = CacheKey(key);
  const std::size_t bucket = ChangeCounters::Bucket(cache_key);
  const std::uint64_t before = counters_->Load(bucket);
  thread_local std::string encoded;
  if (ChangeCounters::Stable(before) && cache_.Get(cache_key, before, encoded)) {
    if (encoded.empty()) return PairState{};
    if (auto state = DecodePairState(encoded)) return std::move(*state);
  }
  auto state = ReadPair(db, key, encoded);
  // Cached only if no commit to this bucket began meanwhile (pair_cache.h).
  if (state.ok() && ChangeCounters::Stable(before) && counters_->Load(bucket) == before) {
    cache_.Put(cache_key, before, encoded);
  }
  return state;
}

Result<std::unique_ptr<SqliteDb>, std::string> SqliteStore::Connect() {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(options_.path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto db = std::make_unique<SqliteDb>(raw);
  if (rc != SQLITE_OK) return "cannot open " + options_.path + ": " + db->Error();
  sqlite3_busy_timeout(raw, 10000);
  // Reads map the file (no pread per page) and keep up to 64 MiB of pages per connection: with a
  // million pairs the default 2 MiB cache sent 15 % of a status request's CPU to pread.
  if (!db->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                "PRAGMA mmap_size=1073741824; PRAGMA cache_size=-65536;")) {
    return "cannot configure " + options_.path + ": " + db->Error();
  }
  return db;
}

Result<std::unique_ptr<SqliteStore>, std::string> SqliteStore::Open(const Options& options) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(options));
  auto tenant_db = store->Connect();
  if (!tenant_db) return tenant_db.error();
  SqliteDb& db = **tenant_db;
  if (!db.Exec("BEGIN IMMEDIATE")) return "cannot lock " + options.path + ": " + db.Error();
  // The file's layout version: a file from another layout is refused, never misread.
  std::int64_t version = 0;
  {
    Stmt stmt(db, "PRAGMA user_version");
    if (stmt.Step() == SQLITE_ROW) version = stmt.Int(0);
  }
  if (version != 0 && version != kSchemaVersion) {
    db.Exec("ROLLBACK");
    return options.path + " has storage layout " + std::to_string(version) +
           "; this callgate reads layout " + std::to_string(kSchemaVersion);
  }
  if (!db.Exec(kSchema) ||
      !db.Exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str()) ||
      !db.Exec("COMMIT")) {
    return "cannot create schema in " + options.path + ": " + db.Error();
  }
  auto counters = ChangeCounters::Open(options.path + "-changes");
  if (!counters) return counters.error();
  store->counters_ = std::move(*counters);
  store->tenant_db_ = std::move(*tenant_db);
  auto writer_db = store->Connect();
  if (!writer_db) return writer_db.error();
  store->writer_db_ = std::move(*writer_db);
  store->writer_ = std::thread([s = store.get()] { s->WriterLoop(); });
  return store;
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

SqliteStore::Reader SqliteStore::AcquireReader() {
  {
    std::lock_guard lock(readers_mu_);
    if (!idle_readers_.empty()) {
      auto db = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return Reader(this, std::move(db));
    }
  }
  auto db = Connect();
  return Reader(this, db ? std::move(*db) : nullptr);
}

template <class Body>
StoreStatus SqliteStore::TenantWrite(Body&& body) {
  std::lock_guard lock(tenant_mu_);
  SqliteDb& db = *tenant_db_;
  if (!db.Exec("BEGIN IMMEDIATE")) return StoreError::kUnavailable;
  StoreStatus status = body(db);
  if (status.ok()) {
    Stmt bump(db, "UPDATE meta SET value = value + 1 WHERE key = 'tenant_generation'");
    status = Done(bump);
  }
  if (!status.ok() || !db.Exec("COMMIT")) {
    db.Exec("ROLLBACK");
    return status.ok() ? StoreStatus(StoreError::kUnavailable) : status;
  }
  return status;
}

StoreStatus SqliteStore::CreateAccount(const Account& account) {
  return TenantWrite([&](SqliteDb& db) -> StoreStatus {
    if (Exists(db, "SELECT 1 FROM accounts WHERE id = ?1", account.id)) {
      return StoreError::kAlreadyExists;
    }
    Stmt stmt(db, "INSERT INTO accounts (id, created_at) VALUES (?1, ?2)");
    return Done(stmt.Bind(1, account.id).Bind(2, ToUnixMillis(account.created_at)));
  });
}

StoreStatus SqliteStore::CreateSubaccount(const Subaccount& sub) {
  return TenantWrite([&](SqliteDb& db) -> StoreStatus {
    if (!Exists(db, "SELECT 1 FROM accounts WHERE id = ?1", sub.account_id)) {
      return StoreError::kNotFound;
    }
    if (Exists(db, "SELECT 1 FROM subaccounts WHERE id = ?1", sub.id)) {
      return StoreError::kAlreadyExists;
    }
    Stmt stmt(db, "INSERT INTO subaccounts (id, account_id, created_at) VALUES (?1, ?2, ?3)");
    return Done(stmt.Bind(1, sub.id).Bind(2, sub.account_id).Bind(3, ToUnixMillis(sub.created_at)));
  });
}

StoreStatus SqliteStore::CreateChannel(const Channel& ch) {
  return TenantWrite([&](SqliteDb& db) -> StoreStatus {
    if (!Exists(db, "SELECT 1 FROM subaccounts WHERE id = ?1", ch.subaccount_id)) {
      return StoreError::kNotFound;
    }
    if (Exists(db, "SELECT 1 FROM channels WHERE id = ?1", ch.id) ||
        Exists(db, "SELECT 1 FROM channels WHERE phone_number_id = ?1", ch.phone_number_id)) {
      return StoreError::kAlreadyExists;
    }
    Stmt stmt(db,
              "INSERT INTO channels (id, subaccount_id, phone_number_id, callback_permission, "
              "limits_profile, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    return Done(stmt.Bind(1, ch.id)
                    .Bind(2, ch.subaccount_id)
                    .Bind(3, ch.phone_number_id)
                    .Bind(4, std::int64_t{ch.callback_permission_enabled})
                    .Bind(5, static_cast<std::int64_t>(ch.limits))
                    .Bind(6, ToUnixMillis(ch.created_at)));
  });
}

StoreStatus SqliteStore::SetCallbackPermission(const std::string& channel_id, bool enabled) {
  return TenantWrite([&](SqliteDb& db) -> StoreStatus {
    if (!Exists(db, "SELECT 1 FROM channels WHERE id = ?1", channel_id)) {
      return StoreError::kNotFound;
    }
    Stmt stmt(db, "UPDATE channels SET callback_permission = ?2 WHERE id = ?1");
    return Done(stmt.Bind(1, channel_id).Bind(2, std::int64_t{enabled}));
  });
}

StoreStatus SqliteStore::AddApiKey(const ApiKey& key) {
  return TenantWrite([&](SqliteDb& db) -> StoreStatus {
    if (!Exists(db, "SELECT 1 FROM accounts WHERE id = ?1", key.account_id)) {
      return StoreError::kNotFound;
    }
    if (Exists(db, "SELECT 1 FROM api_keys WHERE key_id = ?1", key.key_id)) {
      return StoreError::kAlreadyExists;
    }
    Stmt stmt(db,
              "INSERT INTO api_keys (key_id, account_id, secret_sha256, created_at) "
              "VALUES (?1, ?2, ?3, ?4)");
    return Done(stmt.Bind(1, key.key_id)
                    .Bind(2, key.account_id)
                    .BindBlob(3, key.secret_hash.data(), key.secret_hash.size())
                    .Bind(4, ToUnixMillis(key.created_at)));
  });
}

StoreStatus SqliteStore::RevokeApiKey(const std::string& key_id, Instant at) {
  return TenantWrite([&](SqliteDb& db) -> StoreStatus {
    if (!Exists(db, "SELECT 1 FROM api_keys WHERE key_id = ?1", key_id)) {
      return StoreError::kNotFound;
    }
    Stmt stmt(db, "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE key_id = ?1");
    return Done(stmt.Bind(1, key_id).Bind(2, ToUnixMillis(at)));
  });
}

StoreResult<std::uint64_t> SqliteStore::TenantGeneration() {
  Reader reader = AcquireReader();
  if (!reader.get()) return StoreError::kUnavailable;
  Stmt stmt(*reader.get(), "SELECT value FROM meta WHERE key = 'tenant_generation'");
  const int rc = stmt.Step();
  if (rc != SQLITE_ROW) return ErrorOf(rc);
  return static_cast<std::uint64_t>(stmt.Int(0));
}

StoreResult<TenantSnapshot> SqliteStore::LoadTenants() {
  Reader reader = AcquireReader();
  if (!reader.get()) return StoreError::kUnavailable;
  SqliteDb& db = *reader.get();
  TenantSnapshot snap;
  if (!db.Exec("BEGIN")) return StoreError::kUnavailable;  // one consistent read snapshot
  int rc = SQLITE_DONE;
  {
    Stmt s(db, "SELECT id, created_at FROM accounts");
    while ((rc = s.Step()) == SQLITE_ROW) {
      Account a{s.Text(0), FromUnixMillis(s.Int(1))};
      snap.accounts.emplace(a.id, a);
    }
  }
  if (rc == SQLITE_DONE) {
    Stmt s(db, "SELECT id, account_id, created_at FROM subaccounts");
    while ((rc = s.Step()) == SQLITE_ROW) {
      Subaccount sub{s.Text(0), s.Text(1), FromUnixMillis(s.Int(2))};
      snap.subaccounts.emplace(sub.id, sub);
    }
  }
  if (rc == SQLITE_DONE) {
    Stmt s(db,
           "SELECT id, subaccount_id, phone_number_id, callback_permission, limits_profile, "
           "created_at FROM channels");
    while ((rc = s.Step()) == SQLITE_ROW) {
      Channel ch{s.Text(0),
                 s.Text(1),
                 s.Text(2),
                 s.Int(3) != 0,
                 s.Int(4) == 1 ? LimitsProfile::kSandbox : LimitsProfile::kProduction,
                 FromUnixMillis(s.Int(5))};
      snap.channel_by_phone_number_id.emplace(ch.phone_number_id, ch.id);
      snap.channels.emplace(ch.id, std::move(ch));
    }
  }
  if (rc == SQLITE_DONE) {
    Stmt s(db, "SELECT key_id, account_id, secret_sha256, created_at, revoked_at FROM api_keys");
    while ((rc = s.Step()) == SQLITE_ROW) {
      ApiKey key{s.Text(0), s.Text(1), {}, FromUnixMillis(s.Int(3)), std::nullopt};
      const std::string_view hash = s.Blob(2);
      if (hash.size() != key.secret_hash.size()) continue;  // unreadable: never matches
      std::memcpy(key.secret_hash.data(), hash.data(), hash.size());
      if (!s.Null(4)) key.revoked_at = FromUnixMillis(s.Int(4));
      snap.api_keys.emplace(key.key_id, std::move(key));
    }
  }
  db.Exec("COMMIT");
  if (rc != SQLITE_DONE) return ErrorOf(rc);
  return snap;
}

StoreResult<PairState> SqliteStore::LoadPair(const PairKey& key) {
  Reader reader = AcquireReader();
  if (!reader.get()) return StoreError::kUnavailable;
  return ReadThroughCache(*reader.get(), key);
}

StoreResult<std::vector<HistoryEntry>> SqliteStore::LoadHistory(const PairKey& key,
                                                                std::int64_t before_seq,
                                                                int limit) {
  Reader reader = AcquireReader();
  if (!reader.get()) return StoreError::kUnavailable;
  Stmt s(*reader.get(),
         "SELECT seq, event_key, source, event FROM history "
         "WHERE channel_id = ?1 AND destination = ?2 AND (?3 = 0 OR seq < ?3) "
         "ORDER BY seq DESC LIMIT ?4");
  s.Bind(1, key.channel_id).Bind(2, key.destination).Bind(3, before_seq).Bind(4, limit);
  std::vector<HistoryEntry> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    auto event = DecodeEvent(s.Blob(3));
    if (!event) return StoreError::kInvalid;
    out.push_back({s.Text(1), static_cast<EventSource>(s.Int(2)), std::move(*event), s.Int(0)});
  }
  if (rc != SQLITE_DONE) return ErrorOf(rc);
  return out;
}

void SqliteStore::UpdatePair(const PairKey& key, PairMutation mutation, UpdateDone done) {
  {
    std::lock_guard lock(queue_mu_);
    if (!stopping_) {
      queue_.push_back({key, std::move(mutation), std::move(done)});
      queue_cv_.notify_one();
      return;
    }
  }
  done(StoreError::kUnavailable);
}

void SqliteStore::WriterLoop() {
  std::vector<Write> batch;
  for (;;) {
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      while (!queue_.empty() && static_cast<int>(batch.size()) < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    CommitBatch(batch);
    batch.clear();
  }
}

void SqliteStore::CommitBatch(std::vector<Write>& batch) {
  SqliteDb& db = *writer_db_;
  auto fail_all = [&](StoreError error) {
    for (Write& w : batch) w.done(error);
  };
  // Writers of every process take turns here, so the change counters tell readers exactly when
  // a commit may be in flight (pair_cache.h).
  if (!counters_->Lock()) return fail_all(StoreError::kUnavailable);
  if (!db.Run("BEGIN IMMEDIATE")) {
    counters_->Unlock();
    return fail_all(StoreError::kUnavailable);
  }

  // A pair written twice in one batch: the second mutation must see the first's result.
  struct Written {
    PairState state;
    std::string encoded;
  };
  std::map<std::pair<std::string, std::string>, Written> written;
  std::vector<StoreStatus> results(batch.size(), Ok{});
  std::string scratch;  // the writer reads the file, never the cache: SQLite's lock is the truth
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Write& w = batch[i];
    const auto map_key = std::make_pair(w.key.channel_id, w.key.destination);
    PairState current;
    if (const auto it = written.find(map_key); it != written.end()) {
      current = it->second.state;
    } else if (auto loaded = ReadPair(db, w.key, scratch); loaded.ok()) {
      current = std::move(*loaded);
    } else {
      results[i] = loaded.error();
      continue;
    }
    PairState next = current;
    std::vector<HistoryEntry> history;
    if (!w.mutation(next, history)) continue;
    // Each write is all or nothing inside the batch.
    if (!db.Run("SAVEPOINT write")) {
      results[i] = StoreError::kUnavailable;
      continue;
    }
    const bool changed = next != current;
    std::string encoded = changed ? EncodePairState(next) : std::string();
    results[i] = WritePair(db, w.key, changed ? &encoded : nullptr, history, [this] {
      const std::int64_t micros = std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
      last_seq_ = std::max(last_seq_ + 1, micros);
      return last_seq_;
    });
    if (!results[i].ok()) {
      db.Run("ROLLBACK TO write");
    } else if (changed) {
      written[map_key] = {std::move(next), std::move(encoded)};
    }
    db.Run("RELEASE write");
  }
  std::vector<std::size_t> buckets;
  for (const auto& [map_key, w] : written) {
    buckets.push_back(ChangeCounters::Bucket(CacheKey({map_key.first, map_key.second})));
  }
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  for (const std::size_t bucket : buckets) counters_->BeginChange(bucket);
  const bool committed = db.Run("COMMIT");
  if (!committed) db.Run("ROLLBACK");
  for (const std::size_t bucket : buckets) counters_->EndChange(bucket);
  // Write through: no other writer can commit before the lock is released.
  for (const auto& [map_key, w] : written) {
    if (!committed) break;
    const std::string& cache_key = CacheKey({map_key.first, map_key.second});
    cache_.Put(cache_key, counters_->Load(ChangeCounters::Bucket(cache_key)), w.encoded);
  }
  counters_->Unlock();
  if (!committed) return fail_all(StoreError::kUnavailable);
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(results[i]);
}

}  // namespace callgate
