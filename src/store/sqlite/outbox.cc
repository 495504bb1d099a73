// SqliteStore's notification outbox (store/outbox.h) on the `outbox` table (schema.cc). Rows are
// written by the group commit inside the pair write's savepoint, so they commit with the change;
// claims and settlements run short IMMEDIATE transactions on the tenant connection, so any
// process on the file may deliver, and SQLite's write lock makes a claim exclusive.
// Thread-safe.
#include <utility>

#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_store.h"

namespace callgate {

namespace {

constexpr std::int64_t kUnsettled = 0, kDelivered = 1, kDropped = 2;

}  // namespace

void SqliteStore::SetNotifier(Notifier notifier) { notifier_.Set(std::move(notifier)); }

StoreStatus SqliteStore::WriteOutbox(SqliteDb& db, const PairKey& key, const PairState& before,
                                     const PairState& after,
                                     const std::vector<HistoryEntry>& history) {
  const std::shared_ptr<const Notifier> notifier = notifier_.Get();
  if (!notifier || !notifier->MayNotify(key)) return Ok{};
  for (Notification& n : notifier->derive(key, before, after, history)) {
    const OutboxItem item = MakeOutboxItem(key, std::move(n));
    const Notification& note = item.notification;
    // An id already there (derived again) keeps its row, settled or not.
    Stmt insert(db,
                "INSERT OR IGNORE INTO outbox (event_id, channel_id, user_id, type, occurred_at, "
                "due_at, granted, reason, rule, cause_id, retry_at) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?6)");
    const StoreStatus status = Done(insert.Bind(1, item.event_id)
                                        .Bind(2, key.channel_id)
                                        .Bind(3, key.user.text())
                                        .Bind(4, static_cast<std::int64_t>(note.type))
                                        .Bind(5, ToUnixMillis(note.occurred_at))
                                        .Bind(6, ToUnixMillis(note.due_at))
                                        .Bind(7, static_cast<std::int64_t>(note.granted))
                                        .Bind(8, note.reason)
                                        .Bind(9, std::int64_t{note.rule})
                                        .Bind(10, note.cause_id));
    if (!status.ok()) return status;
  }
  return Ok{};
}

StoreResult<std::vector<OutboxItem>> SqliteStore::ClaimDue(Instant now, const std::string& owner,
                                                           Millis lease, int limit) {
  if (!writable()) return StoreError::kUnavailable;
  const std::int64_t now_ms = ToUnixMillis(now);
  {
    // Most polls find nothing due: a pooled read answers that without the write lock.
    Reader reader = AcquireReader();
    if (!reader.get()) return StoreError::kUnavailable;
    Stmt any(*reader.get(),
             "SELECT 1 FROM outbox WHERE state = 0 AND retry_at <= ?1 AND due_at <= ?1 "
             "AND lease_until <= ?1 LIMIT 1");
    const int rc = any.Bind(1, now_ms).Step();
    if (rc == SQLITE_DONE) return std::vector<OutboxItem>();
    if (rc != SQLITE_ROW) return StoreErrorOf(rc);
  }
  std::lock_guard lock(tenant_mu_);
  SqliteDb& db = *tenant_db_;
  if (!db.Exec("BEGIN IMMEDIATE")) return StoreError::kUnavailable;
  const auto purge_now = std::chrono::steady_clock::now();
  if (purge_now >= next_outbox_purge_) {
    // Settled rows past their retention, a bounded number a minute (as idempotency records).
    next_outbox_purge_ = purge_now + std::chrono::minutes(1);
    Stmt purge(db,
               "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE state <> 0 AND "
               "settled_at < ?1 LIMIT 10000)");
    (void)Done(purge.Bind(1, ToUnixMillis(now - kSettledRetention)));
  }
  std::vector<std::pair<std::int64_t, OutboxItem>> claimed;
  int rc;
  {
    // Each pair's first unsettled row (by due time, then commit order), if it is claimable.
    Stmt due(db,
             "SELECT seq, event_id, channel_id, user_id, type, occurred_at, due_at, granted, "
             "reason, rule, cause_id, attempts FROM outbox o WHERE state = 0 AND retry_at <= ?1 "
             "AND due_at <= ?1 AND lease_until <= ?1 AND NOT EXISTS (SELECT 1 FROM outbox p "
             "WHERE p.channel_id = o.channel_id AND p.user_id = o.user_id AND p.state = 0 AND "
             "(p.due_at < o.due_at OR (p.due_at = o.due_at AND p.seq < o.seq))) "
             "ORDER BY due_at, seq LIMIT ?2");
    due.Bind(1, now_ms).Bind(2, std::int64_t{limit});
    while ((rc = due.Step()) == SQLITE_ROW) {
      OutboxItem item{due.Text(1), {due.Text(2), UserId::FromText(due.Text(3))}, {}};
      Notification& n = item.notification;
      n.type = static_cast<NotificationType>(due.Int(4));
      n.occurred_at = FromUnixMillis(due.Int(5));
      n.due_at = FromUnixMillis(due.Int(6));
      n.granted = static_cast<PermissionStatus>(due.Int(7));
      n.reason = due.Text(8);
      n.rule = static_cast<int>(due.Int(9));
      n.cause_id = due.Text(10);
      item.attempts = static_cast<int>(due.Int(11));
      claimed.emplace_back(due.Int(0), std::move(item));
    }
  }
  StoreStatus status = rc == SQLITE_DONE ? StoreStatus(Ok{}) : StoreStatus(StoreErrorOf(rc));
  for (const auto& [seq, item] : claimed) {
    if (!status.ok()) break;
    Stmt lease_it(db, "UPDATE outbox SET lease_owner = ?2, lease_until = ?3 WHERE seq = ?1");
    status = Done(lease_it.Bind(1, seq).Bind(2, owner).Bind(3, ToUnixMillis(now + lease)));
  }
  if (!status.ok() || !db.Exec("COMMIT")) {
    db.Exec("ROLLBACK");
    return status.ok() ? StoreError::kUnavailable : status.error();
  }
  std::vector<OutboxItem> items;
  items.reserve(claimed.size());
  for (auto& [seq, item] : claimed) items.push_back(std::move(item));
  return items;
}

StoreStatus SqliteStore::Settle(const std::string& event_id, const std::string& owner,
                                Settlement settlement, Instant now, Instant retry_at) {
  if (!writable()) return StoreError::kUnavailable;
  std::lock_guard lock(tenant_mu_);
  SqliteDb& db = *tenant_db_;
  // Only while the lease holds: past it another process may have claimed the row.
  const char* sql = nullptr;
  switch (settlement) {
    case Settlement::kDelivered:
    case Settlement::kDropped:
      sql =
          "UPDATE outbox SET state = ?4, settled_at = ?3, lease_owner = '', lease_until = 0 "
          "WHERE event_id = ?1 AND lease_owner = ?2 AND state = 0 AND lease_until > ?3";
      break;
    case Settlement::kRetry:
      sql =
          "UPDATE outbox SET attempts = attempts + 1, retry_at = ?5, lease_owner = '', "
          "lease_until = 0 WHERE event_id = ?1 AND lease_owner = ?2 AND state = 0 AND "
          "lease_until > ?3";
      break;
  }
  Stmt update(db, sql);
  update.Bind(1, event_id).Bind(2, owner).Bind(3, ToUnixMillis(now));
  if (settlement != Settlement::kRetry) {
    update.Bind(4, settlement == Settlement::kDelivered ? kDelivered : kDropped);
  } else {
    update.Bind(5, ToUnixMillis(retry_at));
  }
  const StoreStatus status = Done(update);
  if (!status.ok()) return status;
  if (sqlite3_changes(db.raw()) == 0) return StoreError::kNotFound;
  return Ok{};
}

StoreResult<std::int64_t> SqliteStore::PendingCount() {
  Reader reader = AcquireReader();
  if (!reader.get()) return StoreError::kUnavailable;
  Stmt count(*reader.get(), "SELECT count(*) FROM outbox WHERE state = ?1");
  const int rc = count.Bind(1, kUnsettled).Step();
  if (rc != SQLITE_ROW) return StoreErrorOf(rc);
  return count.Int(0);
}

}  // namespace callgate
