// The SQLite backend's schema text, connection settings and storage-layout guard (schema.h).
// Stateless: every function works on the connection it is given. Thread-safe.
#include "store/sqlite/schema.h"

#include "store/sqlite/upgrade.h"

namespace callgate {

namespace {

// The pair tables, laid out for few bytes per pair (bench/seed.cc measures them) and few pages
// touched per write:
// - pairs: one row per (channel, destination): its pair_id and its encoded PairState. The only
//   table keyed by the text key. Pair ids are handed out from meta.next_pair_id (see
//   pair_ids.h), increasing with a pair's first write within each writing process.
// - history: one row per (pair, event key). Keyed by pair_id, so a pair's entries share a page
//   and a new pair's entries append at the end of the tree (full pages) instead of landing at
//   random. event_key is the packed kind + id (EncodeEventKey), at the event time (the
//   de-duplication keeps the earliest), event the remaining fields (EncodeEventDetails); the
//   id and the time are not repeated inside the blob. seq orders the history (see group_commit.cc).
// - idempotency: one row per (pair, idempotency key) of a request made under one: when it was
//   first answered and the packed id it created. Beside the pair, not in its state, so a busy
//   pair's retries-to-be do not weigh on its reads and writes; purged by `at` after
//   kIdempotencyRetention (store/pair_store.h).
// - user_links: per scope (an account), each id of a user that is not the id its pairs are keyed
//   by (the canonical one, the smallest of the user's ids), and that id. Read only when a pair
//   is named by an id with no pair row of its own (CALLGATE_SQL_CANONICAL).
// - notify_targets: per account, where its notifications go and the secrets that sign them
//   (kept: HMAC needs them; tenants/tenants.h NotifyTarget).
// - outbox: one row per notification (store/outbox.h), written in the commit of the pair change
//   that caused it; seq (the rowid) is commit order. state 0 is unsettled, 1 delivered, 2
//   dropped; settled rows stay kSettledRetention so a re-derivation finds its id and adds
//   nothing. outbox_heads finds a pair's first unsettled row; outbox_due the claimable ones.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta VALUES ('tenant_generation', 0);
INSERT OR IGNORE INTO meta VALUES ('next_pair_id', 1);
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
  pair_id INTEGER NOT NULL,
  state BLOB NOT NULL,
  PRIMARY KEY (channel_id, destination)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
  pair_id INTEGER NOT NULL,
  event_key BLOB NOT NULL,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  source INTEGER NOT NULL,
  event BLOB NOT NULL,
  PRIMARY KEY (pair_id, event_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
  pair_id INTEGER NOT NULL,
  key BLOB NOT NULL,
  at INTEGER NOT NULL,
  result_id BLOB NOT NULL,
  PRIMARY KEY (pair_id, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_by_time ON idempotency (at);
CREATE TABLE IF NOT EXISTS user_links (
  scope TEXT NOT NULL,
  alias TEXT NOT NULL,
  canonical TEXT NOT NULL,
  PRIMARY KEY (scope, alias)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS user_links_by_canonical ON user_links (scope, canonical);
CREATE TABLE IF NOT EXISTS notify_targets (
  account_id TEXT PRIMARY KEY REFERENCES accounts(id),
  url TEXT NOT NULL,
  secret TEXT NOT NULL,
  previous_secret TEXT NOT NULL,
  previous_until INTEGER,
  updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  channel_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  type INTEGER NOT NULL,
  occurred_at INTEGER NOT NULL,
  due_at INTEGER NOT NULL,
  granted INTEGER NOT NULL,
  reason TEXT NOT NULL,
  rule INTEGER NOT NULL,
  cause_id TEXT NOT NULL,
  state INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  retry_at INTEGER NOT NULL,
  lease_owner TEXT NOT NULL DEFAULT '',
  lease_until INTEGER NOT NULL DEFAULT 0,
  settled_at INTEGER);
CREATE INDEX IF NOT EXISTS outbox_heads ON outbox (channel_id, user_id, state, due_at, seq);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, retry_at);
CREATE INDEX IF NOT EXISTS outbox_settled ON outbox (state, settled_at);
)sql";

}  // namespace

Result<std::unique_ptr<SqliteDb>, std::string> OpenConnection(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto db = std::make_unique<SqliteDb>(raw);
  if (rc != SQLITE_OK) return "cannot open " + path + ": " + db->Error();
  sqlite3_busy_timeout(raw, 10000);
  // Reads map the file (no pread per page) and keep up to 64 MiB of pages per connection: with a
  // million pairs the default 2 MiB cache sent 15 % of a status request's CPU to pread.
  // Checkpoints are the checkpointer thread's (CheckpointerLoop), never a committing thread's.
  if (!db->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                "PRAGMA mmap_size=1073741824; PRAGMA cache_size=-65536; "
                "PRAGMA wal_autocheckpoint=0;")) {
    return "cannot configure " + path + ": " + db->Error();
  }
  return db;
}

namespace {

// The file's layout version (PRAGMA user_version); 0 for a new file.
std::int64_t LayoutVersion(SqliteDb& db) {
  Stmt stmt(db, "PRAGMA user_version");
  return stmt.Step() == SQLITE_ROW ? stmt.Int(0) : 0;
}

}  // namespace

Result<Ok, std::string> EnsureLayout(SqliteDb& db, const std::string& path, Instant now) {
  // A file of the current layout is only read: opening needs neither the write lock nor a byte
  // of free disk, so a store still starts (and serves reads) while the disk is full.
  if (LayoutVersion(db) == kSchemaVersion) return Ok{};
  if (!db.Exec("BEGIN IMMEDIATE")) return "cannot lock " + path + ": " + db.Error();
  // Read again under the lock: another process may have created or upgraded the file meanwhile.
  // A file from another layout is refused, never misread.
  const std::int64_t version = LayoutVersion(db);
  if (version != 0 && (version < 4 || version > kSchemaVersion)) {
    db.Exec("ROLLBACK");
    return path + " has storage layout " + std::to_string(version) +
           "; this callgate reads layout " + std::to_string(kSchemaVersion) +
           " (and upgrades layouts 4 to 7 in place) and does not convert other layouts";
  }
  if (!db.Exec(kSchema)) {
    db.Exec("ROLLBACK");
    return "cannot create schema in " + path + ": " + db.Error();
  }
  // Each upgrade step in turn, all in this transaction (6 to 7 and 7 to 8: the schema's new
  // tables).
  Result<Ok, std::string> upgraded = Ok{};
  if (version == 4) upgraded = UpgradeLayout4To5(db, now);
  if (upgraded && (version == 4 || version == 5)) upgraded = UpgradeLayout5To6(db);
  if (!upgraded) {
    db.Exec("ROLLBACK");
    return "cannot upgrade " + path + " from storage layout " + std::to_string(version) + ": " +
           upgraded.error();
  }
  if (!db.Exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str()) ||
      !db.Exec("COMMIT")) {
    db.Exec("ROLLBACK");
    return "cannot create schema in " + path + ": " + db.Error();
  }
  return Ok{};
}

}  // namespace callgate
