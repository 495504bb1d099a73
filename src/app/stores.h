// Stores: the store a `callgate serve` or `callgate admin` process runs on, chosen by its flags —
// the embedded SQLite store in a data directory (the default) or a Redis Cluster — opened and
// owned here, and seen by the rest of the service only through its two interfaces (PairStore,
// TenantStore). Thread-safe as its backend is.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "store/pair_store.h"
#include "store/sqlite/sqlite_store.h"
#include "tenants/tenant_store.h"

namespace callgate {

struct StoreConfig {
  std::string data_dir = "./data";                               // holds callgate.db
  std::size_t cache_bytes = SqliteStore::Options{}.cache_bytes;  // pair-state cache; 0: off
};

class Stores {
 public:
  // Opens (creating if needed) the store `config` names. Error: a readable reason.
  static Result<std::unique_ptr<Stores>, std::string> Open(
      const StoreConfig& config, std::function<void(const CommitStats&)> commit_observer = {});

  PairStore& pairs() { return *pairs_; }
  TenantStore& tenants() { return *tenants_; }
  // The SQLite store, when that is what runs (its cache statistics, read-only state); else null.
  SqliteStore* sqlite() { return sqlite_.get(); }
  // Why the store takes no writes now (empty if it does): said at start, and by admin writes.
  std::string read_only_reason() const;
  // What the log says is served: "data directory DIR".
  const std::string& description() const { return description_; }

 private:
  Stores() = default;

  std::unique_ptr<SqliteStore> sqlite_;
  PairStore* pairs_ = nullptr;
  TenantStore* tenants_ = nullptr;
  std::string description_;
};

}  // namespace callgate
