// SqliteDb: one SQLite connection and its cached prepared statements; Stmt: one use of a cached
// statement; and how SQLite's result codes become StoreErrors. A SqliteDb owns its connection and
// statements. Not thread-safe: one user at a time (SqliteStore hands each connection to one).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/store_error.h"
#include "core/user_id.h"

namespace callgate {

// One connection and its cached prepared statements. Not thread-safe: one user at a time.
class SqliteDb {
 public:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  ~SqliteDb();
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
  sqlite3* raw() const { return db_; }
  // Whether the connection reads the database file alone, without its WAL (a read-only store's
  // connection opened `immutable`, store/sqlite/read_only.h): what it reads may be older than
  // another process's last commit, so it must not be cached.
  bool reads_file_alone() const { return reads_file_alone_; }
  void set_reads_file_alone() { reads_file_alone_ = true; }
  // The prepared statement for `sql`, a string literal (cached by its address); null if it does
  // not prepare.
  sqlite3_stmt* Statement(const char* sql);

 private:
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> statements_;  // keyed by literal address
  bool reads_file_alone_ = false;
};

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

// The StoreError for a failed SQLite result code.
StoreError StoreErrorOf(int rc);

// Runs a statement expected to finish in one step (INSERT/UPDATE).
StoreStatus Done(Stmt& stmt);

// Whether `sql`, a query with one parameter, finds a row for `id`.
bool Exists(SqliteDb& db, const char* sql, std::string_view id);

}  // namespace callgate
