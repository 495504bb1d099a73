// SqliteStore's tenant tables: accounts, subaccounts, channels and API keys (the tenant methods of
// sqlite_store.h). Writes run one at a time on the store's tenant connection (tenant_mu_); reads
// take a pooled reader. Thread-safe.
#include <cstring>

#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_store.h"

namespace callgate {

template <class Body>
StoreStatus SqliteStore::TenantWrite(Body&& body) {
  if (!writable()) return StoreError::kUnavailable;  // opened read-only (read_only.cc)
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
  counters_->BumpTenantGeneration();  // after the commit: whoever sees it move can load it
  return status;
}

// Also moved when the read pool is emptied (ResetReadersLocked): readers of a read-only store
// may have read tenants older than the generation they saw move. A read-only store without a
// counters file counts no generation: nobody writes there with callgate.
std::uint64_t SqliteStore::TenantChanges() {
  const ChangeCounters* counters = counters_.get();
  return (counters ? counters->TenantGeneration() : 0) +
         reader_resets_.load(std::memory_order_acquire);
}

// On the tenant connection: a write transaction, a WAL append and its fsync, like any commit,
// to a row nothing reads. Fails when the file or the disk cannot take writes.
StoreStatus SqliteStore::ProbeWrite() {
  if (!writable()) return StoreError::kUnavailable;  // opened read-only (read_only.cc)
  std::lock_guard lock(tenant_mu_);
  SqliteDb& db = *tenant_db_;
  if (!db.Exec("BEGIN IMMEDIATE")) return StoreError::kUnavailable;
  Stmt probe(db, "INSERT OR REPLACE INTO meta (key, value) VALUES ('write_probe', ?1)");
  StoreStatus status = Done(probe.Bind(1, std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count()));
  if (!status.ok() || !db.Exec("COMMIT")) {
    db.Exec("ROLLBACK");
    return status.ok() ? StoreStatus(StoreError::kUnavailable) : status;
  }
  return Ok{};
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

StoreStatus SqliteStore::SetNotifyTarget(const std::string& account_id,
                                         const std::optional<NotifyTarget>& target) {
  return TenantWrite([&](SqliteDb& db) -> StoreStatus {
    if (!Exists(db, "SELECT 1 FROM accounts WHERE id = ?1", account_id)) {
      return StoreError::kNotFound;
    }
    if (!target) {
      Stmt clear(db, "DELETE FROM notify_targets WHERE account_id = ?1");
      return Done(clear.Bind(1, account_id));
    }
    Stmt upsert(db,
                "INSERT OR REPLACE INTO notify_targets (account_id, url, secret, previous_secret, "
                "previous_until, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    upsert.Bind(1, account_id)
        .Bind(2, target->url)
        .Bind(3, target->secret)
        .Bind(4, target->previous_secret)
        .Bind(6, ToUnixMillis(target->updated_at));
    if (target->previous_until) upsert.Bind(5, ToUnixMillis(*target->previous_until));
    return Done(upsert);
  });
}

StoreResult<std::uint64_t> SqliteStore::TenantGeneration() {
  Reader reader = AcquireReader();
  if (!reader.get()) return StoreError::kUnavailable;
  Stmt stmt(*reader.get(), "SELECT value FROM meta WHERE key = 'tenant_generation'");
  const int rc = stmt.Step();
  if (rc != SQLITE_ROW) return StoreErrorOf(rc);
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
  if (rc == SQLITE_DONE) {
    Stmt s(db,
           "SELECT account_id, url, secret, previous_secret, previous_until, updated_at "
           "FROM notify_targets");
    while ((rc = s.Step()) == SQLITE_ROW) {
      NotifyTarget target{s.Text(1), s.Text(2), s.Text(3), std::nullopt, FromUnixMillis(s.Int(5))};
      if (!s.Null(4)) target.previous_until = FromUnixMillis(s.Int(4));
      snap.notify_targets.emplace(s.Text(0), std::move(target));
    }
  }
  db.Exec("COMMIT");
  if (rc != SQLITE_DONE) return StoreErrorOf(rc);
  return snap;
}

}  // namespace callgate
