// SqliteDb's statement cache and the result-code helpers (sqlite_db.h). A SqliteDb owns its
// connection and statements; not thread-safe. The free functions keep no state.
#include "store/sqlite/sqlite_db.h"

namespace callgate {

SqliteDb::~SqliteDb() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

sqlite3_stmt* SqliteDb::Statement(const char* sql) {
  auto [it, inserted] = statements_.try_emplace(sql, nullptr);
  if (inserted && sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &it->second,
                                     nullptr) != SQLITE_OK) {
    statements_.erase(it);
    return nullptr;
  }
  return it->second;
}

StoreError StoreErrorOf(int rc) {
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

StoreStatus Done(Stmt& stmt) {
  const int rc = stmt.Step();
  return rc == SQLITE_DONE ? StoreStatus(Ok{}) : StoreStatus(StoreErrorOf(rc));
}

bool Exists(SqliteDb& db, const char* sql, std::string_view id) {
  Stmt stmt(db, sql);
  return stmt.Bind(1, id).Step() == SQLITE_ROW;
}

}  // namespace callgate
