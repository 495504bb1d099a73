// SqliteStore's group commit: the writer thread takes every queued pair update, runs them all in
// one IMMEDIATE transaction on writer_db_ and commits once. Everything here runs on the writer
// thread; commit_mu_ and the shared change counters order it with checkpoints and other writers.
#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "store/codec.h"
#include "store/sqlite/history_rows.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_store.h"

namespace callgate {

namespace {

// A pair as the writer sees it: its id (0 while it has no row) and its state.
struct StoredPair {
  std::int64_t pair_id = 0;
  PairState state;
};

StoreResult<StoredPair> ReadStoredPair(SqliteDb& db, const PairKey& key) {
  Stmt stmt(db, "SELECT pair_id, state FROM pairs WHERE channel_id = ?1 AND destination = ?2");
  if (!stmt.ok()) return StoreError::kUnavailable;
  const int rc = stmt.Bind(1, key.channel_id).Bind(2, key.user.text()).Step();
  if (rc == SQLITE_DONE) return StoredPair{};
  if (rc != SQLITE_ROW) return StoreErrorOf(rc);
  auto state = DecodePairState(stmt.Blob(1));
  if (!state || stmt.Int(0) <= 0) return StoreError::kInvalid;
  return StoredPair{stmt.Int(0), std::move(*state)};
}

// The id that keys the pairs of `key`'s user in its channel's scope (CALLGATE_SQL_CANONICAL).
StoreResult<std::string> CanonicalUser(SqliteDb& db, const PairKey& key) {
  Stmt stmt(db, "SELECT " CALLGATE_SQL_CANONICAL);
  if (!stmt.ok()) return StoreError::kUnavailable;
  const int rc = stmt.Bind(1, key.channel_id).Bind(2, key.user.text()).Step();
  if (rc != SQLITE_ROW) return StoreErrorOf(rc);
  return stmt.Text(0);
}

// The pair's idempotency record under `key`, if it has one.
StoreResult<std::optional<IdempotencyRecord>> ReadRecord(SqliteDb& db, std::int64_t pair_id,
                                                         const std::string& key) {
  Stmt stmt(db, "SELECT at, result_id FROM idempotency WHERE pair_id = ?1 AND key = ?2");
  if (!stmt.ok()) return StoreError::kUnavailable;
  const int rc = stmt.Bind(1, pair_id).BindBlob(2, key.data(), key.size()).Step();
  if (rc == SQLITE_DONE) return std::optional<IdempotencyRecord>();
  if (rc != SQLITE_ROW) return StoreErrorOf(rc);
  auto result_id = UnpackId(stmt.Blob(1));
  if (!result_id) return StoreError::kInvalid;
  return std::optional(IdempotencyRecord{FromUnixMillis(stmt.Int(0)), std::move(*result_id)});
}

StoreStatus WriteRecord(SqliteDb& db, std::int64_t pair_id, const std::string& key,
                        const IdempotencyRecord& record) {
  Stmt upsert(db,
              "INSERT INTO idempotency (pair_id, key, at, result_id) VALUES (?1, ?2, ?3, ?4) "
              "ON CONFLICT DO UPDATE SET at = excluded.at, result_id = excluded.result_id");
  const std::string result_id = PackId(record.result_id);
  return Done(upsert.Bind(1, pair_id)
                  .BindBlob(2, key.data(), key.size())
                  .Bind(3, ToUnixMillis(record.at))
                  .BindBlob(4, result_id.data(), result_id.size()));
}

// Writes what one mutation changed of pair `pair_id`; `is_new`: the pair has no row yet.
// `next_seq` numbers history entries (see NextSeq).
template <class NextSeq>
StoreStatus WritePair(SqliteDb& db, const PairKey& key, std::int64_t pair_id, bool is_new,
                      const std::string* blob, const std::vector<HistoryEntry>& history,
                      NextSeq&& next_seq) {
  if (blob) {
    StoreStatus status = Ok{};
    if (is_new) {
      Stmt insert(db,
                  "INSERT INTO pairs (channel_id, destination, pair_id, state) "
                  "VALUES (?1, ?2, ?3, ?4)");
      status = Done(insert.Bind(1, key.channel_id)
                        .Bind(2, key.user.text())
                        .Bind(3, pair_id)
                        .BindBlob(4, blob->data(), blob->size()));
    } else {
      Stmt update(db, "UPDATE pairs SET state = ?3 WHERE channel_id = ?1 AND destination = ?2");
      status = Done(update.Bind(1, key.channel_id)
                        .Bind(2, key.user.text())
                        .BindBlob(3, blob->data(), blob->size()));
    }
    if (!status.ok()) return status;
  }
  for (const HistoryEntry& e : history) {
    // The stored key is derived from the event, so the entry's key must be the event's.
    if (e.event_key != EventKey(e.event)) return StoreError::kInvalid;
    // One entry per event key; an earlier version of the same fact replaces a later one, as the
    // pair state merges it (min of times), so history does not depend on delivery order.
    Stmt insert(db,
                "INSERT INTO history (pair_id, event_key, seq, at, source, event) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO UPDATE SET at = excluded.at, "
                "source = excluded.source, event = excluded.event WHERE excluded.at < history.at");
    const std::string event_key = EncodeEventKey(e.event);
    const std::string details = EncodeEventDetails(e.event);
    StoreStatus status = Done(insert.Bind(1, pair_id)
                                  .BindBlob(2, event_key.data(), event_key.size())
                                  .Bind(3, next_seq())
                                  .Bind(4, ToUnixMillis(EventTime(e.event)))
                                  .Bind(5, static_cast<std::int64_t>(e.source))
                                  .BindBlob(6, details.data(), details.size()));
    if (!status.ok()) return status;
  }
  return Ok{};
}

// A state a batch wrote: its change-counter hash and its encoding.
struct EncodedState {
  std::uint64_t hash = 0;
  std::string blob;
};

// The change-counter buckets of `states` and of the hashes in `moved`, each once, in increasing
// order.
std::vector<std::size_t> BucketsOf(const std::map<std::string, EncodedState>& states,
                                   const std::vector<std::uint64_t>& moved) {
  std::vector<std::size_t> buckets;
  for (const auto& [key, state] : states) buckets.push_back(ChangeCounters::Bucket(state.hash));
  for (const std::uint64_t hash : moved) buckets.push_back(ChangeCounters::Bucket(hash));
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  return buckets;
}

}  // namespace

// What one batch has written so far.
struct SqliteStore::BatchWrites {
  // A pair written twice in one batch: the second mutation must see the first's result. The
  // writer reads the file, never the cache: SQLite's write lock is what makes a mutation atomic.
  std::map<PairKey, StoredPair> pairs;
  // States written, by cache key: published to the change counters and the cache on commit.
  std::map<std::string, EncodedState> states;
  // Hashes of cache keys whose reads a link changed (the ids of a user): their counters move.
  std::vector<std::uint64_t> moved;
};

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
    // The checkpointer fell far behind (starved of CPU, or held up by readers): copy here, as
    // SQLite's own checkpoints do, waiting for a pass in progress, so the WAL stays bounded.
    if (wal_pages_ / 4 >= options_.checkpoint_pages) {
      sqlite3_wal_checkpoint_v2(writer_db_->raw(), nullptr, SQLITE_CHECKPOINT_FULL, nullptr,
                                nullptr);
      wal_pages_ = 0;
    }
  }
}

// One group commit: BeginBatch, ApplyWrite for each write, CommitAndPublish. If the batch does
// not commit, every caller gets kUnavailable and no pair id is adopted.
void SqliteStore::CommitBatch(std::vector<Write>& batch) {
  if (!writable()) {  // opened read-only, and not (yet) writable again (read_only.cc)
    Complete(batch, std::vector<StoreStatus>(batch.size(), StoreError::kUnavailable));
    return;
  }
  SqliteDb& db = *writer_db_;
  std::vector<StoreStatus> results(batch.size(), StoreError::kUnavailable);
  // What commit_observer is told, once the batch committed.
  const auto started = std::chrono::steady_clock::now();
  std::chrono::nanoseconds commit_time{};
  std::optional<CommitStats> committed;
  {
    // Held from the first statement to the commit; callers are answered after it is released.
    std::lock_guard commit(commit_mu_);
    if (BeginBatch(db)) {
      PairIds::Batch pair_ids = pair_ids_.Begin();  // adopted if the batch commits
      PurgeExpiredRecords(db);
      BatchWrites written;
      bool in_transaction = true;
      for (std::size_t i = 0; i < batch.size() && in_transaction; ++i) {
        results[i] = ApplyWrite(db, batch[i], pair_ids, written);
        // Some errors (SQLITE_FULL, SQLITE_IOERR) roll the whole transaction back: the writes
        // after it would each commit on their own, unacknowledged and unpublished. Stop instead.
        in_transaction = sqlite3_get_autocommit(db.raw()) == 0;
      }
      if (!in_transaction) {
        counters_->Unlock();  // nothing of the batch committed, so nothing to publish
        results.assign(batch.size(), StoreError::kUnavailable);
      } else if (CommitAndPublish(db, written, commit_time)) {
        pair_ids_.Commit(pair_ids);
        committed = {batch.size(), std::chrono::steady_clock::now() - started, commit_time};
      } else {
        results.assign(batch.size(), StoreError::kUnavailable);
      }
    }
  }
  // Observed before the callers are answered: a caller that reads the metrics after its answer
  // finds its commit counted.
  if (committed && options_.commit_observer) options_.commit_observer(*committed);
  Complete(batch, results);
}

// Takes the change counters' lock, then SQLite's write lock (BEGIN IMMEDIATE), in that order.
// Writers of every process take turns here, so the change counters tell readers exactly when
// a commit may be in flight (pair_cache.h). On success the counters stay locked until
// CommitAndPublish; on failure nothing is held.
bool SqliteStore::BeginBatch(SqliteDb& db) {
  if (!counters_->Lock()) return false;
  if (db.Run("BEGIN IMMEDIATE")) return true;
  counters_->Unlock();
  return false;
}

// Runs one write's mutation on its pair as the batch has it so far and stores what changed, all
// or nothing (a savepoint); records in `written` what the batch will publish. Returns the
// write's own result; a refused or empty mutation is Ok and stores nothing.
StoreStatus SqliteStore::ApplyWrite(SqliteDb& db, const Write& w, PairIds::Batch& pair_ids,
                                    BatchWrites& written) {
  if (w.link) return ApplyLink(db, *w.link, written);
  // The pair as the batch has it so far, found by the id its row is keyed by: `key` names it by
  // any id of its user (an id without a row of its own is looked up among the user links).
  PairKey key = w.key;
  StoredPair current;
  for (bool resolved = false;;) {
    if (const auto it = written.pairs.find(key); it != written.pairs.end()) {
      current = it->second;
    } else if (auto loaded = ReadStoredPair(db, key); loaded.ok()) {
      current = std::move(*loaded);
    } else {
      return loaded.error();
    }
    if (current.pair_id != 0 || resolved) break;
    auto canonical = CanonicalUser(db, key);
    if (!canonical.ok()) return canonical.error();
    if (*canonical == key.user.text()) break;
    key.user = UserId::FromText(std::move(*canonical));
    resolved = true;
  }
  // Reading the writer's connection inside the batch sees what earlier writes of it stored.
  std::optional<IdempotencyRecord> found;
  if (!w.idempotency_key.empty() && current.pair_id != 0) {
    auto record = ReadRecord(db, current.pair_id, w.idempotency_key);
    if (!record.ok()) return record.error();
    found = std::move(*record);
  }
  PairState next = current.state;
  std::vector<HistoryEntry> history;
  std::optional<IdempotencyRecord> record = found;
  if (!w.mutation(next, history, record)) return Ok{};
  const bool new_record = !w.idempotency_key.empty() && record && record != found;
  const bool is_new = current.pair_id == 0;
  if (is_new && next == current.state && history.empty() && !new_record) {
    return Ok{};  // nothing to store
  }
  std::int64_t pair_id = current.pair_id;
  if (is_new) {
    // Before the savepoint: a block reserved here must outlive this write's rollback (pair_ids.h).
    auto allocated = pair_ids.Allocate(db);
    if (!allocated.ok()) return allocated.error();
    pair_id = *allocated;
  }
  // Each write is all or nothing inside the batch.
  if (!db.Run("SAVEPOINT write")) return StoreError::kUnavailable;
  const bool store_state = is_new || next != current.state;
  std::string blob = store_state ? EncodePairState(next) : std::string();
  StoreStatus status = WritePair(db, key, pair_id, is_new, store_state ? &blob : nullptr, history,
                                 [this] { return NextSeq(); });
  if (status.ok() && new_record) status = WriteRecord(db, pair_id, w.idempotency_key, *record);
  if (status.ok() && (next != current.state || !history.empty())) {
    status = WriteOutbox(db, key, current.state, next, history);
  }
  if (!status.ok()) {
    db.Run("ROLLBACK TO write");  // an allocated pair id stays unused: ids may have gaps
  } else {
    written.pairs[key] = {pair_id, std::move(next)};
    if (store_state) {
      const std::string& cache_key = CacheKey(key);  // copied into the map before reuse
      written.states[cache_key] = {PairHash(cache_key), std::move(blob)};
    }
  }
  db.Run("RELEASE write");
  return status;
}

namespace {

// Runs `sql` (binding ?1 and ?2 as given) and collects the first column of every row.
StoreResult<std::vector<std::string>> Column(SqliteDb& db, const char* sql, std::string_view a,
                                             std::string_view b = {}) {
  Stmt stmt(db, sql);
  if (!stmt.ok()) return StoreError::kUnavailable;
  stmt.Bind(1, a);
  if (!b.empty()) stmt.Bind(2, b);
  std::vector<std::string> out;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) out.push_back(stmt.Text(0));
  if (rc != SQLITE_DONE) return StoreErrorOf(rc);
  return out;
}

}  // namespace

// A link, in the batch's transaction (all or nothing: a savepoint). The user's group is the ids
// given, the canonical ids they resolve to and every id linked to one of those; its smallest id
// becomes the canonical one. On each channel of the scope, the pairs held under the group's old
// canonical ids are folded into one (FoldHistories) under the new one: its history is the union,
// the idempotency records move to it, the other rows go. Then user_links points every other id
// of the group at it, and the counters of every (channel, id) of the group move, so that no read
// keeps a state cached under an id whose pair changed.
StoreStatus SqliteStore::ApplyLink(SqliteDb& db, const UserLink& link, BatchWrites& written) {
  // A merge reuses the ids of the pairs it folds: it allocates none.
  auto scope = Column(db, "SELECT " CALLGATE_SQL_SCOPE, link.channel_id);
  if (!scope.ok()) return scope.error();
  if (scope->size() != 1) return StoreError::kUnavailable;
  const std::string& scope_id = scope->front();
  std::set<std::string> canonical, group;
  for (const UserId& id : link.ids) {
    auto resolved = CanonicalUser(db, {link.channel_id, id});
    if (!resolved.ok()) return resolved.error();
    canonical.insert(*resolved);
    group.insert(id.text());
  }
  for (const std::string& id : canonical) {
    auto aliases = Column(db, "SELECT alias FROM user_links WHERE scope = ?1 AND canonical = ?2",
                          scope_id, id);
    if (!aliases.ok()) return aliases.error();
    group.insert(aliases->begin(), aliases->end());
  }
  group.insert(canonical.begin(), canonical.end());
  const std::string winner = *group.begin();  // the smallest: a phone number before a BSUID
  // Every id given already resolves to the smallest id of its group: known, nothing to write.
  if (canonical.size() == 1 && *canonical.begin() == winner) return Ok{};

  // The scope's channels and their limits (the one channel, for a scope the file does not know).
  std::vector<std::pair<std::string, LimitsProfile>> channels;
  {
    Stmt stmt(db,
              "SELECT c.id, c.limits_profile FROM channels c JOIN subaccounts s ON s.id = "
              "c.subaccount_id WHERE s.account_id = ?1");
    if (!stmt.ok()) return StoreError::kUnavailable;
    stmt.Bind(1, scope_id);
    int rc;
    while ((rc = stmt.Step()) == SQLITE_ROW) {
      channels.emplace_back(stmt.Text(0), static_cast<LimitsProfile>(stmt.Int(1)));
    }
    if (rc != SQLITE_DONE) return StoreErrorOf(rc);
    if (channels.empty()) channels.emplace_back(link.channel_id, LimitsProfile{});
  }

  if (!db.Run("SAVEPOINT link")) return StoreError::kUnavailable;
  StoreStatus status = Ok{};
  BatchWrites changed;  // merged into `written` if the link commits
  for (const auto& [channel_id, limits] : channels) {
    if (!status.ok()) break;
    const PairKey target{channel_id, UserId::FromText(winner)};
    std::vector<std::pair<PairKey, StoredPair>> held;
    for (const std::string& id : canonical) {
      const PairKey key{channel_id, UserId::FromText(id)};
      if (const auto it = written.pairs.find(key); it != written.pairs.end()) {
        held.emplace_back(key, it->second);
      } else if (auto loaded = ReadStoredPair(db, key); !loaded.ok()) {
        status = loaded.error();
      } else if (loaded->pair_id != 0) {
        held.emplace_back(key, std::move(*loaded));
      }
    }
    if (!status.ok()) break;
    if (held.empty() || (held.size() == 1 && held[0].first == target)) continue;
    std::vector<HistoryEntry> entries;
    for (const auto& [key, pair] : held) {
      Stmt rows(db, "SELECT seq, event_key, at, source, event FROM history WHERE pair_id = ?1");
      rows.Bind(1, pair.pair_id);
      if (status = ReadHistoryRows(rows, entries); !status.ok()) break;
    }
    if (!status.ok()) break;
    FoldedPair folded = FoldHistories(std::move(entries), limits);
    // The target's row: its own if it has one, else the first held pair's, renamed.
    auto kept =
        std::find_if(held.begin(), held.end(), [&](const auto& p) { return p.first == target; });
    if (kept == held.end()) {
      kept = held.begin();
      Stmt rename(db,
                  "UPDATE pairs SET destination = ?3 WHERE channel_id = ?1 AND destination = ?2");
      status = Done(rename.Bind(1, channel_id).Bind(2, kept->first.user.text()).Bind(3, winner));
    }
    const std::int64_t target_id = kept->second.pair_id;
    for (const auto& [key, pair] : held) {
      if (!status.ok()) break;
      Stmt clear(db, "DELETE FROM history WHERE pair_id = ?1");
      status = Done(clear.Bind(1, pair.pair_id));
      if (!status.ok() || pair.pair_id == target_id) continue;
      Stmt move(db,
                "INSERT INTO idempotency (pair_id, key, at, result_id) SELECT ?1, key, at, "
                "result_id FROM idempotency WHERE pair_id = ?2 ON CONFLICT DO UPDATE SET at = "
                "excluded.at, result_id = excluded.result_id WHERE excluded.at < idempotency.at");
      status = Done(move.Bind(1, target_id).Bind(2, pair.pair_id));
      if (!status.ok()) break;
      Stmt drop_records(db, "DELETE FROM idempotency WHERE pair_id = ?1");
      status = Done(drop_records.Bind(1, pair.pair_id));
      if (!status.ok()) break;
      Stmt drop(db, "DELETE FROM pairs WHERE channel_id = ?1 AND destination = ?2");
      status = Done(drop.Bind(1, channel_id).Bind(2, key.user.text()));
    }
    if (!status.ok()) break;
    const std::string blob = EncodePairState(folded.state);
    // Stored as any write stores a pair: the folded entries keep their seq, derived ones get one.
    std::size_t next_entry = 0;
    status = WritePair(db, target, target_id, /*is_new=*/false, &blob, folded.history, [&] {
      const std::int64_t seq = folded.history[next_entry++].seq;
      return seq != 0 ? seq : NextSeq();
    });
    if (!status.ok()) break;
    for (const auto& [key, pair] : held) changed.pairs[key] = {};  // gone (or replaced below)
    changed.pairs[target] = {target_id, std::move(folded.state)};
    const std::string& cache_key = CacheKey(target);
    changed.states[cache_key] = {PairHash(cache_key), blob};
  }
  for (const std::string& id : group) {
    if (!status.ok()) break;
    if (id == winner) {
      Stmt unlink(db, "DELETE FROM user_links WHERE scope = ?1 AND alias = ?2");
      status = Done(unlink.Bind(1, scope_id).Bind(2, id));
    } else {
      Stmt upsert(db,
                  "INSERT INTO user_links (scope, alias, canonical) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT DO UPDATE SET canonical = excluded.canonical");
      status = Done(upsert.Bind(1, scope_id).Bind(2, id).Bind(3, winner));
    }
  }
  if (!status.ok()) {
    db.Run("ROLLBACK TO link");
    db.Run("RELEASE link");
    return status;
  }
  db.Run("RELEASE link");
  // Publish: every (channel, id) of the group may read differently now.
  for (const auto& [key, pair] : changed.pairs) {
    if (pair.pair_id == 0) {
      written.pairs.erase(key);
    } else {
      written.pairs[key] = pair;
    }
  }
  for (const auto& [channel_id, limits] : channels) {
    for (const std::string& id : group) {
      const std::string& cache_key = CacheKey({channel_id, UserId::FromText(id)});
      written.states.erase(cache_key);
      written.moved.push_back(PairHash(cache_key));
    }
  }
  for (auto& [cache_key, state] : changed.states) written.states[cache_key] = std::move(state);
  return Ok{};
}

// Commits (or, if COMMIT fails, rolls back) the batch that BeginBatch began, and ends it: every
// bucket the batch wrote is odd from before COMMIT until after it (BeginChange, COMMIT,
// EndChange), the committed states go into the cache, and only then is the counters' lock
// released. Returns whether the batch committed.
bool SqliteStore::CommitAndPublish(SqliteDb& db, const BatchWrites& written,
                                   std::chrono::nanoseconds& commit_time) {
  const std::vector<std::size_t> buckets = BucketsOf(written.states, written.moved);
  for (const std::size_t bucket : buckets) counters_->BeginChange(bucket);
  const auto commit_started = std::chrono::steady_clock::now();
  const bool committed = db.Run("COMMIT");
  commit_time = std::chrono::steady_clock::now() - commit_started;
  if (!committed) db.Run("ROLLBACK");
  for (const std::size_t bucket : buckets) counters_->EndChange(bucket);
  // Write through: no other writer can commit before the lock is released.
  for (const auto& [cache_key, state] : written.states) {
    if (!committed) break;
    cache_.Put(cache_key, state.hash, counters_->Load(ChangeCounters::Bucket(state.hash)),
               state.blob);
  }
  counters_->Unlock();
  return committed;
}

void SqliteStore::PurgeExpiredRecords(SqliteDb& db) {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_purge_) return;
  next_purge_ = now + std::chrono::minutes(1);
  const auto cutoff = std::chrono::system_clock::now() - kIdempotencyRetention;
  // At most 10k rows a minute, so a backlog never makes one commit slow; a failure leaves the
  // rows for the next pass (they are ignored when read anyway: see pairs/reserve.cc).
  Stmt purge(db,
             "DELETE FROM idempotency WHERE (pair_id, key) IN (SELECT pair_id, key FROM "
             "idempotency WHERE at < ?1 LIMIT 10000)");
  (void)Done(purge.Bind(1, std::chrono::duration_cast<Millis>(cutoff.time_since_epoch()).count()));
}

// History entries are numbered by `seq`: increasing within a process, and across processes and
// restarts roughly in time order (it never falls behind the clock in microseconds, counted from
// 2025-01-01 so the numbers take 6 bytes on disk, not 8, until 2029).
std::int64_t SqliteStore::NextSeq() {
  const std::int64_t micros = std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count() -
                              kSeqEpochMicros;
  last_seq_ = std::max(last_seq_ + 1, micros);
  return last_seq_;
}

void SqliteStore::Complete(std::vector<Write>& batch, const std::vector<StoreStatus>& results) {
  auto deliver = [&] {
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(results[i]);
  };
  if (options_.completion_scope) {
    options_.completion_scope(deliver);
  } else {
    deliver();
  }
}

}  // namespace callgate
