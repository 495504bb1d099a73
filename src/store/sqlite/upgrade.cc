#include "store/sqlite/upgrade.h"

#include <algorithm>
#include <vector>

#include "store/codec.h"
#include "store/pair_store.h"
#include "store/sqlite/schema.h"

namespace callgate {

namespace {

struct CompactedPair {
  std::int64_t pair_id;
  PairState state;
  LimitsProfile limits;
};

// The compacted pairs: only they have notices that the state can no longer give.
Result<std::vector<CompactedPair>, std::string> CompactedPairs(SqliteDb& db) {
  std::vector<CompactedPair> pairs;
  Stmt s(db,
         "SELECT p.pair_id, p.state, COALESCE(c.limits_profile, 0) FROM pairs p "
         "LEFT JOIN channels c ON c.id = p.channel_id");
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    auto state = DecodePairState(s.Blob(1));
    if (!state) return "pair " + std::to_string(s.Int(0)) + " has an unreadable state";
    if (!state->base.horizon) continue;
    pairs.push_back({s.Int(0), std::move(*state),
                     s.Int(2) == 1 ? LimitsProfile::kSandbox : LimitsProfile::kProduction});
  }
  if (rc != SQLITE_DONE) return "cannot read pairs: " + db.Error();
  return pairs;
}

// The notices `pair`'s whole history gives that its state no longer does.
Result<std::vector<Notice>, std::string> LostNotices(SqliteDb& db, const CompactedPair& pair,
                                                     Instant now) {
  PairState whole;
  Stmt s(db, "SELECT event_key, at, event FROM history WHERE pair_id = ?1");
  s.Bind(1, pair.pair_id);
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    auto event = DecodeEvent(s.Blob(0), FromUnixMillis(s.Int(1)), s.Blob(2));
    if (!event) return "pair " + std::to_string(pair.pair_id) + " has an unreadable event";
    (void)Merge(whole, *event);
  }
  if (rc != SQLITE_DONE) return "cannot read history: " + db.Error();
  std::vector<Notice> lost = Notices(whole, now, pair.limits);
  for (const Notice& live : Notices(pair.state, now, pair.limits)) {
    if (const auto it = std::find(lost.begin(), lost.end(), live); it != lost.end()) lost.erase(it);
  }
  return lost;
}

}  // namespace

Result<Ok, std::string> UpgradeLayout4To5(SqliteDb& db, Instant now) {
  auto pairs = CompactedPairs(db);
  if (!pairs) return pairs.error();
  for (const CompactedPair& pair : *pairs) {
    auto lost = LostNotices(db, pair, now);
    if (!lost) return lost.error();
    for (const Notice& notice : *lost) {
      const Event event = Finalized(notice);
      const std::string key = EncodeEventKey(event);
      const std::string details = EncodeEventDetails(event);
      // seq orders LoadHistory: numbered from the notice's own time, as NextSeq numbers entries.
      Stmt insert(db,
                  "INSERT OR IGNORE INTO history (pair_id, event_key, seq, at, source, event) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
      insert.Bind(1, pair.pair_id)
          .BindBlob(2, key.data(), key.size())
          .Bind(3, ToUnixMillis(notice.at) * 1000 - kSeqEpochMicros)
          .Bind(4, ToUnixMillis(notice.at))
          .Bind(5, static_cast<std::int64_t>(EventSource::kDerived))
          .BindBlob(6, details.data(), details.size());
      if (insert.Step() != SQLITE_DONE) return "cannot record a notice: " + db.Error();
    }
  }
  return Ok{};
}

Result<Ok, std::string> UpgradeLayout5To6(SqliteDb& db) {
  struct Moved {
    std::string channel_id, destination;  // the pairs table's key
    std::int64_t pair_id;
    std::string state;
    EmbeddedRecords records;
  };
  std::vector<Moved> moved;
  {
    Stmt s(db, "SELECT channel_id, destination, pair_id, state FROM pairs");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      EmbeddedRecords records;
      auto state = DecodePairState(s.Blob(3), &records);
      if (!state) return "pair " + std::to_string(s.Int(2)) + " has an unreadable state";
      if (records.empty()) continue;
      moved.push_back({std::string(s.Text(0)), std::string(s.Text(1)), s.Int(2),
                       EncodePairState(*state), std::move(records)});
    }
    if (rc != SQLITE_DONE) return "cannot read pairs: " + db.Error();
  }
  for (const Moved& pair : moved) {
    Stmt update(db, "UPDATE pairs SET state = ?3 WHERE channel_id = ?1 AND destination = ?2");
    update.Bind(1, pair.channel_id)
        .Bind(2, pair.destination)
        .BindBlob(3, pair.state.data(), pair.state.size());
    if (update.Step() != SQLITE_DONE) return "cannot rewrite a pair: " + db.Error();
    for (const auto& [key, record] : pair.records) {
      const std::string result_id = PackId(record.result_id);
      Stmt insert(db,
                  "INSERT OR REPLACE INTO idempotency (pair_id, key, at, result_id) "
                  "VALUES (?1, ?2, ?3, ?4)");
      insert.Bind(1, pair.pair_id)
          .BindBlob(2, key.data(), key.size())
          .Bind(3, ToUnixMillis(record.at))
          .BindBlob(4, result_id.data(), result_id.size());
      if (insert.Step() != SQLITE_DONE) return "cannot move a record: " + db.Error();
    }
  }
  return Ok{};
}

}  // namespace callgate
