// SqliteStore beyond the shared contract: durability across close, kill -9 and several
// instances on one file, and how it treats bytes it cannot read.
#include "store/sqlite/sqlite_store.h"

#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/encoding.h"
#include "store/codec.h"
#include "store/store_test_util.h"

namespace callgate {
namespace {

const PairKey kPair{"ch-1", UserId::Phone("+15551230001")};

std::unique_ptr<SqliteStore> OpenOrFail(
    const std::string& path, std::size_t cache_bytes = SqliteStore::Options{}.cache_bytes) {
  auto store = SqliteStore::Open({.path = path, .cache_bytes = cache_bytes});
  EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error());
  return store.ok() ? std::move(*store) : nullptr;
}

// A plain connection for looking at (or damaging) the file behind the store's back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errmsg(db_);
    }
    sqlite3_busy_timeout(db_, 10000);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // The first column of the first row, as text.
  std::string Query(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }

  void SetStateBlob(const PairKey& key, const std::string& bytes) {
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db_,
                                 "UPDATE pairs SET state = ?1 WHERE channel_id = ?2 AND "
                                 "destination = ?3",
                                 -1, &stmt, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db_);
    sqlite3_bind_blob(stmt, 1, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 2, key.channel_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt, 3, key.user.text().c_str(), -1, SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    EXPECT_EQ(sqlite3_changes(db_), 1);
  }

  void Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (error ? error : "?");
    }
    sqlite3_free(error);
  }

  std::string StateBlob(const PairKey& key) {
    return Query("SELECT hex(state) FROM pairs WHERE channel_id = '" + key.channel_id +
                 "' AND destination = '" + key.user.text() + "'");
  }

 private:
  sqlite3* db_ = nullptr;
};

TEST(SqliteStoreTest, OpenReportsAnUnopenablePath) {
  TempDir dir;
  auto store = SqliteStore::Open({.path = dir.File("no-such-dir/store.db")});
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().find("no-such-dir/store.db"), std::string::npos) << store.error();
}

TEST(SqliteStoreTest, FileIsInWalMode) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  ASSERT_NE(OpenOrFail(path), nullptr);
  RawDb raw(path);
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");
}

// Issue 9: opening wrote to the file (schema statements and the layout stamp in a write
// transaction) even when it was current, so a store could not start on a full disk. Opening a
// current file now needs no write: it succeeds while another connection holds the write lock.
TEST(SqliteStoreTest, OpeningACurrentFileWritesNothing) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  { ASSERT_NE(OpenOrFail(path), nullptr); }
  RawDb writer(path);
  writer.Exec("BEGIN IMMEDIATE");
  const auto started = std::chrono::steady_clock::now();
  auto store = SqliteStore::Open({.path = path});
  ASSERT_TRUE(store.ok()) << store.error();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_TRUE((*store)->LoadPair(kPair).ok());  // and reads are served
  writer.Exec("ROLLBACK");
}

TEST(SqliteStoreTest, FileOfAnotherStorageLayoutIsRefusedNotMisread) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  ASSERT_NE(OpenOrFail(path), nullptr);
  RawDb(path).Query("PRAGMA user_version = 99");
  auto store = SqliteStore::Open({.path = path});
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().find("layout 99"), std::string::npos) << store.error();
}

// A file written by an older layout (3: text keys in history, ids inside the event blobs) is
// refused as it is, never read as the current layout nor converted behind the operator's back.
TEST(SqliteStoreTest, FileOfLayout3IsRefusedAndLeftAlone) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "PRAGMA journal_mode=WAL;"
                           "CREATE TABLE pairs (channel_id TEXT NOT NULL, destination TEXT NOT "
                           "NULL, version INTEGER NOT NULL, state BLOB NOT NULL, PRIMARY KEY "
                           "(channel_id, destination)) WITHOUT ROWID;"
                           "CREATE TABLE history (channel_id TEXT NOT NULL, destination TEXT NOT "
                           "NULL, event_key TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT "
                           "NULL, source INTEGER NOT NULL, event BLOB NOT NULL, PRIMARY KEY "
                           "(channel_id, destination, event_key)) WITHOUT ROWID;"
                           "INSERT INTO pairs VALUES ('ch-1', '+15551230001', 1, x'0100000000');"
                           "PRAGMA user_version = 3;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  auto store = SqliteStore::Open({.path = path});
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().find(path + " has storage layout 3"), std::string::npos) << store.error();
  EXPECT_NE(store.error().find("reads layout 8"), std::string::npos) << store.error();
  RawDb raw(path);
  EXPECT_EQ(raw.Query("PRAGMA user_version"), "3");
  EXPECT_EQ(raw.Query("SELECT group_concat(name) FROM pragma_table_info('pairs')"),
            "channel_id,destination,version,state");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM pairs"), "1");
}

// What a history row holds: the packed key (kind + the UUID's 16 bytes), and no second copy of
// the id or the time in the event blob; the entry still reads back in full.
// Layout 4 did not record the notices compaction finalizes (it folded the whole history at every
// read). Such a file is upgraded in place, in one transaction, to what a layout-5 writer leaves.
TEST(SqliteStoreTest, FileOfLayout4IsUpgradedWithTheNoticesCompactionFinalized) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto day = [](int d) { return kT0 + std::chrono::hours(24 * d); };
  const std::vector<Event> events = {
      PermissionReplied{"wamid.m1", day(0), true, false, std::nullopt, ReplySource::kUserAction},
      CallTerminated{"c1", day(1), CallDirection::kBusinessInitiated, false, std::nullopt},
      CallTerminated{"c2", day(2), CallDirection::kBusinessInitiated, false, std::nullopt},
      CallTerminated{"c3", day(3), CallDirection::kBusinessInitiated, false, std::nullopt},
      CallTerminated{"c4", day(4), CallDirection::kBusinessInitiated, false, std::nullopt},
      PermissionRequested{"r1", day(20)},
  };
  auto derived = [](SqliteStore& store) {
    std::vector<std::pair<std::string, std::int64_t>> out;
    auto history = store.LoadHistory(kPair, 0, 1000);
    EXPECT_TRUE(history.ok());
    if (!history.ok()) return out;
    for (const HistoryEntry& entry : *history) {
      if (entry.source == EventSource::kDerived) {
        out.emplace_back(entry.event_key, ToUnixMillis(EventTime(entry.event)));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  std::vector<std::pair<std::string, std::int64_t>> recorded;
  {
    auto store = OpenOrFail(path);
    ASSERT_NE(store, nullptr);
    for (const Event& event : events) {
      ASSERT_TRUE(UpdatePairSync(*store, kPair, [event](PairState& state, auto& history) {
                    (void)ApplyAndRecord(state, history, event, EventSource::kWebhook,
                                         LimitsProfile::kProduction);
                    return true;
                  }).ok());
    }
    recorded = derived(*store);
    // The reconsider notice after c2 and the auto-revocation after c4.
    ASSERT_EQ(recorded.size(), 2u);
  }
  {
    RawDb raw(path);
    raw.Query("DELETE FROM history WHERE source = 2");
    raw.Query("PRAGMA user_version = 4");
  }
  auto store = OpenOrFail(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(derived(*store), recorded);
  EXPECT_EQ(RawDb(path).Query("PRAGMA user_version"), "8");
}

// Layout 6 had no user links. Such a file gains the empty table in place; its pairs read as
// before and take links.
// A file of the current layout holding one pair (request r1 at kT0), then turned into a file of
// an older layout by `sql` (dropping the tables that layout lacked, setting user_version).
void WriteOnePairAsOlderLayout(const std::string& path, const std::vector<std::string>& sql) {
  {
    auto store = OpenOrFail(path);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(UpdatePairSync(*store, kPair, Request("r1", kT0)).ok());
  }
  RawDb raw(path);
  for (const std::string& statement : sql) raw.Query(statement);
}

TEST(SqliteStoreTest, FileOfLayout6IsUpgradedAndItsPairsTakeLinks) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  WriteOnePairAsOlderLayout(path, {"DROP TABLE user_links", "DROP TABLE outbox",
                                   "DROP TABLE notify_targets", "PRAGMA user_version = 6"});
  auto store = OpenOrFail(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawDb(path).Query("PRAGMA user_version"), "8");
  const UserId bsuid = UserId::Bsuid("US.42");
  std::promise<StoreStatus> linked;
  store->LinkUser({kPair.channel_id, {kPair.user, bsuid}},
                  [&linked](StoreStatus status) { linked.set_value(status); });
  ASSERT_TRUE(linked.get_future().get().ok());
  const auto state = store->LoadPair({kPair.channel_id, bsuid});
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->requests.size(), 1u);
}

// Layout 7 had no notification tables: such a file gains them, empty, and keeps its pairs.
TEST(SqliteStoreTest, FileOfLayout7IsUpgradedWithTheNotificationTables) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  WriteOnePairAsOlderLayout(
      path, {"DROP TABLE outbox", "DROP TABLE notify_targets", "PRAGMA user_version = 7"});
  auto store = OpenOrFail(path);
  ASSERT_NE(store, nullptr);
  RawDb raw(path);
  EXPECT_EQ(raw.Query("PRAGMA user_version"), "8");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM outbox"), "0");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM notify_targets"), "0");
  EXPECT_EQ(store->LoadPair(kPair)->requests.size(), 1u);
}

// Layout 5 kept idempotency records inside the pair states. Such a file is upgraded in place:
// the records move to their own table, the states are rewritten without them.
TEST(SqliteStoreTest, FileOfLayout5IsUpgradedWithItsRecordsMovedOutOfTheStates) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  const PairKey plain{"ch-1", UserId::Phone("+15551230002")};
  {
    auto store = OpenOrFail(path);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(UpdatePairSync(*store, kPair, Request("r1", kT0)).ok());
    ASSERT_TRUE(UpdatePairSync(*store, plain, Request("r2", kT0)).ok());
  }
  {
    RawDb raw(path);
    raw.Query("UPDATE pairs SET state = X'" + std::string(kLayout5StateHex) +
              "' WHERE destination = '" + kPair.user.text() + "'");
    raw.Query("DROP TABLE idempotency");
    raw.Query("PRAGMA user_version = 5");
  }
  auto store = OpenOrFail(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawDb(path).Query("PRAGMA user_version"), "8");
  // Read as the current layout reads, which refuses a state with records inside: they were moved
  // out.
  const auto upgraded = store->LoadPair(kPair);
  ASSERT_TRUE(upgraded.ok());
  EXPECT_EQ(*upgraded, GoldenState());
  // The record, read as the writer reads it (before any write, which would purge it: it is
  // from 2023).
  const auto& [key, record] = kLayout5Record;
  EXPECT_EQ(RawDb(path).Query(
                "SELECT count(*) || ':' || CAST(i.key AS TEXT) || ':' || i.at || ':' "
                "|| lower(hex(i.result_id)) FROM idempotency i JOIN pairs p USING (pair_id) "
                "WHERE p.destination = '" +
                kPair.user.text() + "'"),
            "1:" + key + ":" + std::to_string(ToUnixMillis(record.at)) + ":" +
                HexEncode(PackId(record.result_id)));
}

// Records past kIdempotencyRetention are purged by the writer (at most once a minute: the first
// batch after opening purges).
TEST(SqliteStoreTest, ExpiredIdempotencyRecordsArePurged) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  const Instant now = std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
  {
    auto store = OpenOrFail(path);
    ASSERT_NE(store, nullptr);
    ASSERT_EQ(
        UpdateUnderKey(*store, kPair, "calls:old",
                       RequestOnce("r1", now - kIdempotencyRetention - std::chrono::hours(1))),
        std::nullopt);
    ASSERT_EQ(UpdateUnderKey(*store, kPair, "calls:new", RequestOnce("r2", now)), std::nullopt);
    EXPECT_EQ(RawDb(path).Query("SELECT count(*) FROM idempotency"), "2");
  }
  auto store = OpenOrFail(path);
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(UpdateUnderKey(*store, kPair, "calls:other", RequestOnce("r3", now)), std::nullopt);
  EXPECT_EQ(RawDb(path).Query("SELECT group_concat(key, ',') FROM (SELECT CAST(key AS TEXT) AS "
                              "key FROM idempotency ORDER BY key)"),
            "calls:new,calls:other");
}

TEST(SqliteStoreTest, HistoryRowHoldsTheIdOnce) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto store = OpenOrFail(path);
  ASSERT_NE(store, nullptr);
  const std::string id = "5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a5b";
  ASSERT_TRUE(UpdatePairSync(*store, kPair, Request(id, kT0)).ok());
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT length(event_key) || ',' || length(event) FROM history"), "17,0");
  EXPECT_EQ(raw.Query("SELECT at FROM history"), std::to_string(ToUnixMillis(kT0)));
  auto history = store->LoadHistory(kPair, 0, 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ(history->front().event_key, "req:" + id);
  EXPECT_TRUE(SameEvent(history->front().event, PermissionRequested{id, kT0}));
}

TEST(SqliteStoreTest, DataSurvivesCloseAndReopen) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  std::uint64_t generation = 0;
  PairState state;
  std::size_t history_size = 0;
  {
    auto store = OpenOrFail(path);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateAccount({"acc-1", kT0}).ok());
    ASSERT_TRUE(store->CreateSubaccount({"sub-1", "acc-1", kT0}).ok());
    ASSERT_TRUE(
        store->CreateChannel({"ch-1", "sub-1", "pn-1", true, LimitsProfile::kSandbox, kT0}).ok());
    ApiKey key{"key-1", "acc-1", {}, kT0, std::nullopt};
    key.secret_hash.fill(0x5a);
    ASSERT_TRUE(store->AddApiKey(key).ok());
    ASSERT_TRUE(store->RevokeApiKey("key-1", kT0 + Millis(7)).ok());
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(
          UpdatePairSync(*store, kPair, Request("req-" + std::to_string(i), kT0 + Millis(i))).ok());
    }
    auto g = store->TenantGeneration();
    ASSERT_TRUE(g.ok());
    generation = *g;
    auto s = store->LoadPair(kPair);
    ASSERT_TRUE(s.ok());
    state = *s;
    history_size = store->LoadHistory(kPair, 0, 100)->size();
  }

  auto store = OpenOrFail(path);
  ASSERT_NE(store, nullptr);
  auto g = store->TenantGeneration();
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g, generation);
  auto tenants = store->LoadTenants();
  ASSERT_TRUE(tenants.ok());
  ASSERT_NE(tenants->FindChannel("ch-1"), nullptr);
  EXPECT_TRUE(tenants->FindChannel("ch-1")->callback_permission_enabled);
  EXPECT_EQ(tenants->FindChannel("ch-1")->limits, LimitsProfile::kSandbox);
  ASSERT_NE(tenants->FindSubaccount("sub-1"), nullptr);
  ASSERT_TRUE(tenants->api_keys.contains("key-1"));
  EXPECT_TRUE(tenants->api_keys.at("key-1").revoked_at.has_value());
  EXPECT_EQ(tenants->api_keys.at("key-1").secret_hash[31], 0x5a);

  auto reloaded = store->LoadPair(kPair);
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(*reloaded, state);
  EXPECT_EQ(reloaded->requests.size(), 5u);
  auto history = store->LoadHistory(kPair, 0, 100);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), history_size);
  EXPECT_EQ(history->size(), 5u);

  // Sequence numbers keep increasing after a reopen.
  ASSERT_TRUE(UpdatePairSync(*store, kPair, Request("req-after", kT0 + Millis(9))).ok());
  auto newest = store->LoadHistory(kPair, 0, 1);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ(newest->front().event_key, RequestKey("req-after"));
  EXPECT_GT(newest->front().seq, history->front().seq);
}

TEST(SqliteStoreTest, TwoInstancesOnOneFileLoseNoUpdate) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto first = OpenOrFail(path);
  auto second = OpenOrFail(path);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);

  constexpr int kThreadsPerInstance = 4;
  constexpr int kPerThread = 150;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreadsPerInstance; ++t) {
    PairStore& store = t % 2 == 0 ? static_cast<PairStore&>(*first) : *second;
    threads.emplace_back([&store, &failures, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        const StoreStatus status =
            UpdatePairSync(store, kPair, Request(id, kT0 + Millis(t * kPerThread + i)));
        if (!status.ok()) {
          ++failures;
          ADD_FAILURE() << id << ": " << StoreErrorName(status.error());
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);

  constexpr std::size_t kTotal = std::size_t{2} * kThreadsPerInstance * kPerThread;
  for (SqliteStore* store : {first.get(), second.get()}) {
    auto state = store->LoadPair(kPair);
    ASSERT_TRUE(state.ok());
    EXPECT_EQ(state->requests.size(), kTotal);
    for (int t = 0; t < 2 * kThreadsPerInstance; ++t) {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        EXPECT_TRUE(state->requests.contains(id)) << id << " lost";
      }
    }
    auto history = store->LoadHistory(kPair, 0, 100'000);
    ASSERT_TRUE(history.ok());
    EXPECT_EQ(history->size(), kTotal);
  }
}

// Pair ids are handed out under the write lock: two instances creating pairs at the same time
// never give two pairs one id (which would merge their histories).
TEST(SqliteStoreTest, TwoInstancesCreatingPairsNeverShareAPairId) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto first = OpenOrFail(path);
  auto second = OpenOrFail(path);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);

  constexpr int kThreadsPerInstance = 2;
  constexpr int kPairsPerThread = 100;
  auto destination = [](int t, int i) {
    return "+1555" + std::to_string(1'000'000 + t * 1000 + i);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreadsPerInstance; ++t) {
    PairStore& store = t % 2 == 0 ? static_cast<PairStore&>(*first) : *second;
    threads.emplace_back([&store, &destination, t] {
      for (int i = 0; i < kPairsPerThread; ++i) {
        EXPECT_TRUE(UpdatePairSync(store, PairKey{"ch-1", UserId::Phone(destination(t, i))},
                                   Request(destination(t, i), kT0 + Millis(i)))
                        .ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  RawDb raw(path);
  constexpr int kPairs = 2 * kThreadsPerInstance * kPairsPerThread;
  EXPECT_EQ(raw.Query("SELECT count(DISTINCT pair_id) FROM pairs"), std::to_string(kPairs));
  EXPECT_EQ(raw.Query("SELECT (SELECT value FROM meta WHERE key = 'next_pair_id') > "
                      "(SELECT max(pair_id) FROM pairs)"),
            "1");
  for (int t = 0; t < 2 * kThreadsPerInstance; ++t) {
    for (int i = 0; i < kPairsPerThread; ++i) {
      auto history = first->LoadHistory(PairKey{"ch-1", UserId::Phone(destination(t, i))}, 0, 10);
      ASSERT_TRUE(history.ok());
      ASSERT_EQ(history->size(), 1u) << destination(t, i);
      EXPECT_EQ(history->front().event_key, RequestKey(destination(t, i)));
    }
  }
}

TEST(SqliteStoreTest, TenantChangeInOneInstanceIsSeenByAnother) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto writer = OpenOrFail(path);
  auto reader = OpenOrFail(path);
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(reader, nullptr);
  auto before = reader->TenantGeneration();
  ASSERT_TRUE(before.ok());

  ASSERT_TRUE(writer->CreateAccount({"acc-1", kT0}).ok());

  auto after = reader->TenantGeneration();
  ASSERT_TRUE(after.ok());
  EXPECT_GT(*after, *before);
  auto tenants = reader->LoadTenants();
  ASSERT_TRUE(tenants.ok());
  EXPECT_TRUE(tenants->accounts.contains("acc-1"));
}

TEST(SqliteStoreTest, CorruptStateBlobLoadsAsInvalid) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  // Damage behind the store's back does not reach its read cache; this is about decoding.
  auto store = OpenOrFail(path, /*cache_bytes=*/0);
  ASSERT_NE(store, nullptr);
  const PairKey healthy{"ch-1", UserId::Phone("+15551230002")};
  ASSERT_TRUE(UpdatePairSync(*store, kPair, Request("req-1", kT0)).ok());
  ASSERT_TRUE(UpdatePairSync(*store, healthy, Request("req-1", kT0)).ok());

  RawDb raw(path);
  raw.SetStateBlob(kPair, std::string("\xff\x00\xde\xad\xbe\xef", 6));

  auto state = store->LoadPair(kPair);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.error(), StoreError::kInvalid);
  EXPECT_TRUE(store->LoadPair(healthy).ok());  // the damage stays with its pair
}

TEST(SqliteStoreTest, CorruptHistoryEventLoadsAsInvalid) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto store = OpenOrFail(path);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(UpdatePairSync(*store, kPair, Request("req-1", kT0)).ok());
  RawDb raw(path);
  raw.Exec("UPDATE history SET event = x'ff00deadbeef'");

  auto history = store->LoadHistory(kPair, 0, 10);
  ASSERT_FALSE(history.ok());
  EXPECT_EQ(history.error(), StoreError::kInvalid);
}

TEST(SqliteStoreTest, UpdateOfCorruptStateFailsAndKeepsTheBytes) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto store = OpenOrFail(path);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(UpdatePairSync(*store, kPair, Request("req-1", kT0)).ok());
  RawDb raw(path);
  raw.SetStateBlob(kPair, std::string("\x01\x00\x05", 3));  // right version, cut short
  const std::string damaged = raw.StateBlob(kPair);

  // Writing a fresh state over unreadable facts would silently lose them.
  const StoreStatus status = UpdatePairSync(*store, kPair, Request("req-2", kT0 + Millis(1)));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error(), StoreError::kInvalid);
  EXPECT_EQ(raw.StateBlob(kPair), damaged);
  EXPECT_EQ(store->LoadHistory(kPair, 0, 10)->size(), 1u);

  // The writer keeps serving other pairs.
  EXPECT_TRUE(
      UpdatePairSync(*store, PairKey{"ch-1", UserId::Phone("+15551230002")}, Request("req-1", kT0))
          .ok());
}

// One group commit holding writes that fail between their state and their history: they leave
// no trace, and the writes around them in the batch, on the same pairs, still land and see only
// what committed before them.
// Writes `pairs` new pairs from 8 threads, each keeping 16 writes in flight, so commits follow
// each other without pause (as under load), then waits for all of them.
void WriteNewPairsContinuously(SqliteStore& store, int pairs) {
  constexpr int kThreads = 8;
  constexpr int kInFlight = 16;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mutex mu;
      std::condition_variable cv;
      int in_flight = 0;
      for (int i = t; i < pairs; i += kThreads) {
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return in_flight < kInFlight; });
          ++in_flight;
        }
        const std::string id = "req-" + std::to_string(i);
        store.Update(PairKey{"ch-1", UserId::Phone("+1555" + std::to_string(1000000 + i))},
                     Request(id, kT0 + Millis(i)), [&](StoreStatus status) {
                       if (!status.ok()) ++failures;
                       std::lock_guard lock(mu);
                       --in_flight;
                       cv.notify_one();
                     });
      }
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight == 0; });
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

// Checkpoints run beside the commits; a WAL that commits keep appending to must still be copied
// whole and started over, or it grows with everything ever written. Each start-over bumps the
// checkpoint sequence number in the WAL header (bytes 12-15, big-endian); the file never shrinks
// while the store is open, so its size at the end is the most it ever held.
TEST(SqliteStoreTest, WalIsCopiedAndStartedOverWhileWritesContinue) {
  constexpr int kPairs = 20000;
  struct Wal {
    std::uintmax_t bytes = 0;
    std::uint32_t restarts = 0;
  };
  auto wal_after_writes = [&](int checkpoint_pages) -> Wal {
    TempDir dir;
    const std::string path = dir.File("store.db");
    auto store = SqliteStore::Open({.path = path, .checkpoint_pages = checkpoint_pages});
    if (!store.ok()) {
      ADD_FAILURE() << store.error();
      return {};
    }
    WriteNewPairsContinuously(**store, kPairs);
    Wal wal{.bytes = std::filesystem::file_size(path + "-wal")};
    std::ifstream file(path + "-wal", std::ios::binary);
    unsigned char header[16] = {};
    file.read(reinterpret_cast<char*>(header), sizeof header);
    for (int i = 12; i < 16; ++i) wal.restarts = wal.restarts << 8 | header[i];
    // Everything is there, and still there after a close and a reopen.
    for (int pass = 0; pass < 2; ++pass) {
      for (int i = 0; i < kPairs; i += 97) {
        auto state = (*store)->LoadPair(
            PairKey{"ch-1", UserId::Phone("+1555" + std::to_string(1000000 + i))});
        EXPECT_TRUE(state.ok() && state->requests.contains("req-" + std::to_string(i))) << i;
      }
      store->reset();
      if (pass == 0) store = SqliteStore::Open({.path = path});
      if (!store.ok()) return {};
    }
    return wal;
  };
  const Wal never_checkpointed = wal_after_writes(1 << 30);
  const Wal checkpointed = wal_after_writes(64);
  EXPECT_EQ(never_checkpointed.restarts, 0u);
  // How many bytes the load writes depends on how writes fall into group commits (a page written
  // twice in one commit is written once), so on how busy the machine is: 8.2 MB has been seen.
  EXPECT_GT(never_checkpointed.bytes, std::uintmax_t{4} << 20) << "the load wrote too little";
  EXPECT_GE(checkpointed.restarts, 5u);
  EXPECT_LT(checkpointed.bytes, never_checkpointed.bytes / 2)
      << "checkpointed: " << checkpointed.bytes << " bytes, never: " << never_checkpointed.bytes;
}

TEST(SqliteStoreTest, FailedWriteInABatchLeavesNoTraceAndSparesTheOthers) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto store = OpenOrFail(path);
  ASSERT_NE(store, nullptr);
  RawDb raw(path);
  raw.Exec("CREATE TRIGGER poison BEFORE INSERT ON history WHEN NEW.event_key = x'" +
           HexEncode(EncodeEventKey(PermissionRequested{.request_id = "poison"})) +
           "' BEGIN SELECT RAISE(ABORT, 'poisoned'); END");

  // Hold the writer inside a first batch so that everything queued next forms one batch.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> holding;
  store->Update(
      PairKey{"ch-1", UserId::Phone("+15550000000")},
      [released, &holding](PairState&, auto&) {
        holding.set_value();
        released.wait();
        return false;
      },
      [](StoreStatus) {});
  holding.get_future().wait();

  auto queue = [&store](const PairKey& key, PairMutation mutation) {
    auto promise = std::make_shared<std::promise<StoreStatus>>();
    auto future = promise->get_future();
    store->Update(key, std::move(mutation),
                  [promise](StoreStatus status) { promise->set_value(status); });
    return future;
  };
  auto seeing = [](PairState* seen, PairMutation inner) -> PairMutation {
    return [seen, inner = std::move(inner)](PairState& state, std::vector<HistoryEntry>& history) {
      *seen = state;
      return inner(state, history);
    };
  };
  const PairKey other{"ch-1", UserId::Phone("+15551230002")};
  PairState seen_on_pair;
  PairState seen_on_other;
  auto first = queue(kPair, Request("req-1", kT0));
  auto poisoned = queue(kPair, Request("poison", kT0 + Millis(1)));
  auto after = queue(kPair, seeing(&seen_on_pair, Request("req-3", kT0 + Millis(2))));
  auto other_poisoned = queue(other, Request("poison", kT0));
  auto other_after = queue(other, seeing(&seen_on_other, Request("req-5", kT0 + Millis(5))));
  release.set_value();

  EXPECT_TRUE(first.get().ok());
  EXPECT_FALSE(poisoned.get().ok());
  EXPECT_TRUE(after.get().ok());
  EXPECT_FALSE(other_poisoned.get().ok());
  EXPECT_TRUE(other_after.get().ok());

  PairState expected;
  ASSERT_EQ(Apply(expected, PermissionRequested{.request_id = "req-1", .at = kT0},
                  LimitsProfile::kProduction),
            ApplyOutcome::kApplied);
  EXPECT_EQ(seen_on_pair, expected);
  EXPECT_EQ(seen_on_other, PairState{});

  auto state = store->LoadPair(kPair);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->requests.size(), 2u);
  EXPECT_TRUE(state->requests.contains("req-1"));
  EXPECT_TRUE(state->requests.contains("req-3"));
  auto history = store->LoadHistory(kPair, 0, 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].event_key, RequestKey("req-3"));
  EXPECT_EQ((*history)[1].event_key, RequestKey("req-1"));

  state = store->LoadPair(other);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->requests.size(), 1u);
  EXPECT_TRUE(state->requests.contains("req-5"));
  history = store->LoadHistory(other, 0, 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].event_key, RequestKey("req-5"));
}

// --- kill -9 ---------------------------------------------------------------------------------

std::string AckId(std::int64_t i) { return "ack-" + std::to_string(i); }

bool WriteAll(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// The child: opens the store (after fork, so its threads are its own) and records requests
// forever, with up to 64 in flight, writing each id to `ack_fd` once its update is acknowledged
// (-1 for a failed one). Never returns; the parent kills it.
[[noreturn]] void AcknowledgeWritesUntilKilled(const std::string& path, int ack_fd) {
  auto opened = SqliteStore::Open({.path = path});
  if (!opened.ok()) _exit(2);
  std::unique_ptr<SqliteStore> store = std::move(*opened);
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  for (std::int64_t i = 0;; ++i) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight < 64; });
      ++in_flight;
    }
    store->Update(kPair, Request(AckId(i), kT0 + Millis(i)), [&, i](StoreStatus status) {
      const std::int64_t ack = status.ok() ? i : -1;
      if (!WriteAll(ack_fd, &ack, sizeof ack)) _exit(3);
      std::lock_guard lock(mu);
      --in_flight;
      cv.notify_one();
    });
  }
}

// Reads acknowledgements until `want` arrived (0: until end of file) or `timeout_ms` passes
// without one.
void ReadAcks(int fd, std::size_t want, int timeout_ms, std::vector<std::int64_t>& acks) {
  std::string buffer;
  while (want == 0 || acks.size() < want) {
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return;
    char chunk[4096];
    const ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    buffer.append(chunk, static_cast<std::size_t>(n));
    std::size_t used = 0;
    for (; used + sizeof(std::int64_t) <= buffer.size(); used += sizeof(std::int64_t)) {
      std::int64_t ack;
      std::memcpy(&ack, buffer.data() + used, sizeof ack);
      acks.push_back(ack);
    }
    buffer.erase(0, used);
  }
}

TEST(SqliteStoreTest, AcknowledgedWriteSurvivesKill9) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0) << "fork failed";
  if (child == 0) {
    close(fds[0]);
    AcknowledgeWritesUntilKilled(path, fds[1]);
  }
  close(fds[1]);

  std::vector<std::int64_t> acks;
  ReadAcks(fds[0], 200, 30'000, acks);
  const std::size_t before_kill = acks.size();
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int wait_status = 0;
  ASSERT_EQ(waitpid(child, &wait_status, 0), child);
  ReadAcks(fds[0], 0, 5'000, acks);  // what was acknowledged before the kill landed
  close(fds[0]);

  ASSERT_GE(before_kill, 200u) << "the child acknowledged too little before the kill";
  ASSERT_TRUE(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL)
      << "the child ended on its own (status " << wait_status << ")";

  auto store = OpenOrFail(path);
  ASSERT_NE(store, nullptr);
  RawDb raw(path);
  EXPECT_EQ(raw.Query("PRAGMA integrity_check"), "ok");
  auto state = store->LoadPair(kPair);
  ASSERT_TRUE(state.ok()) << StoreErrorName(state.error());
  std::size_t missing = 0;
  for (const std::int64_t ack : acks) {
    ASSERT_GE(ack, 0) << "the child saw a failed update";
    if (!state->requests.contains(AckId(ack))) {
      ++missing;
      ADD_FAILURE() << "acknowledged " << AckId(ack) << " is gone";
    }
  }
  EXPECT_EQ(missing, 0u) << "of " << acks.size() << " acknowledged";

  // State and history were committed together: each fact has its entry and no entry its fact.
  auto history = store->LoadHistory(kPair, 0, 1'000'000);
  ASSERT_TRUE(history.ok());
  std::set<std::string> from_history;
  for (const HistoryEntry& e : *history) from_history.insert(EventId(e.event));
  std::set<std::string> from_state;
  for (const auto& [id, at] : state->requests) from_state.insert(id);
  EXPECT_EQ(from_history, from_state);
}

}  // namespace
}  // namespace callgate
