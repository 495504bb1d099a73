// The read cache of SqliteStore: that reads are served from it, that no commit of any instance
// sharing the file is ever hidden by it, and the counter protocol that guarantees this,
// including a writer that dies half way.
#include "store/sqlite/pair_cache.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>

#include "store/sqlite/sqlite_store.h"
#include "store/store_test_util.h"

namespace callgate {
namespace {

const PairKey kPair{"ch-1", UserId::Phone("+15551230001")};

std::unique_ptr<SqliteStore> Open(const std::string& path) {
  auto store = SqliteStore::Open({.path = path});
  EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error());
  return store.ok() ? std::move(*store) : nullptr;
}

// Overwrites the pair's stored state behind the store's back.
void DamageStoredState(const std::string& path) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  EXPECT_EQ(sqlite3_exec(db, "UPDATE pairs SET state = x'ff00ff'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
}

TEST(PairCacheTest, ReadsAfterAWriteAreServedFromTheCache) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto store = Open(path);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(UpdatePairSync(*store, kPair, Request("req-1", kT0)).ok());
  // The damage is invisible only if the read never reaches the file.
  DamageStoredState(path);
  auto state = store->LoadPair(kPair);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->requests.contains("req-1"));
}

TEST(PairCacheTest, ReadsOfAPairNeverWrittenAreCachedToo) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto store = Open(path);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->LoadPair(kPair).ok());  // caches "never written"
  auto again = store->LoadPair(kPair);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, PairState{});
}

TEST(PairCacheTest, ACommitOfAnotherInstanceIsSeenAtOnce) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto reader = Open(path);
  auto writer = Open(path);
  ASSERT_NE(reader, nullptr);
  ASSERT_NE(writer, nullptr);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(reader->LoadPair(kPair).ok());  // cached before every write
    const std::string id = "req-" + std::to_string(i);
    ASSERT_TRUE(UpdatePairSync(*writer, kPair, Request(id, kT0 + Millis(i))).ok());
    auto state = reader->LoadPair(kPair);
    ASSERT_TRUE(state.ok());
    EXPECT_EQ(state->requests.size(), static_cast<std::size_t>(i + 1));
    EXPECT_TRUE(state->requests.contains(id));
  }
}

// Readers in one instance race writers in another: no read may go back in time, and after the
// last write is acknowledged every reader sees all of them.
TEST(PairCacheTest, ConcurrentReadersNeverSeeAnOlderStateThanTheyAlreadySaw) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  auto reader = Open(path);
  auto writer = Open(path);
  ASSERT_NE(reader, nullptr);
  ASSERT_NE(writer, nullptr);
  constexpr int kWrites = 300;
  std::atomic<int> acknowledged{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  std::atomic<int> failures{0};
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      std::size_t seen = 0;
      while (!done) {
        const int floor = acknowledged.load();
        auto state = reader->LoadPair(kPair);
        if (!state.ok() || state->requests.size() < seen ||
            state->requests.size() < static_cast<std::size_t>(floor)) {
          ++failures;
          return;
        }
        seen = state->requests.size();
      }
    });
  }
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_TRUE(
        UpdatePairSync(*writer, kPair, Request("req-" + std::to_string(i), kT0 + Millis(i))).ok());
    acknowledged = i + 1;
  }
  done = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(reader->LoadPair(kPair)->requests.size(), static_cast<std::size_t>(kWrites));
}

TEST(ChangeCountersTest, AChangeInFlightIsUnstableAndEveryChangeMovesTheCounter) {
  TempDir dir;
  auto opened = ChangeCounters::Open(dir.File("changes"));
  ASSERT_TRUE(opened.ok()) << opened.error();
  ChangeCounters& counters = **opened;
  const std::size_t bucket = ChangeCounters::Bucket(PairHash(std::string_view("ch-1\0+1555", 10)));
  std::set<std::uint64_t> seen{counters.Load(bucket)};
  EXPECT_TRUE(ChangeCounters::Stable(counters.Load(bucket)));

  ASSERT_TRUE(counters.Lock());
  counters.BeginChange(bucket);
  EXPECT_FALSE(ChangeCounters::Stable(counters.Load(bucket)));
  EXPECT_TRUE(seen.insert(counters.Load(bucket)).second);
  const std::uint64_t ended = counters.EndChange(bucket);
  EXPECT_EQ(ended, counters.Load(bucket));
  EXPECT_TRUE(ChangeCounters::Stable(ended));
  EXPECT_TRUE(seen.insert(ended).second);

  // A writer that dies after BeginChange leaves the bucket unstable (nothing cached there)...
  counters.BeginChange(bucket);
  const std::uint64_t abandoned = counters.Load(bucket);
  EXPECT_FALSE(ChangeCounters::Stable(abandoned));
  EXPECT_TRUE(seen.insert(abandoned).second);
  // ... until the next writer's change, which still moves the counter at each step.
  counters.BeginChange(bucket);
  EXPECT_FALSE(ChangeCounters::Stable(counters.Load(bucket)));
  EXPECT_TRUE(seen.insert(counters.Load(bucket)).second);
  EXPECT_TRUE(ChangeCounters::Stable(counters.EndChange(bucket)));
  EXPECT_TRUE(seen.insert(counters.Load(bucket)).second);
  counters.Unlock();
}

TEST(ChangeCountersTest, TwoMappingsOfOneFileShareTheCounters) {
  TempDir dir;
  auto a = ChangeCounters::Open(dir.File("changes"));
  auto b = ChangeCounters::Open(dir.File("changes"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->Lock());
  (*a)->BeginChange(7);
  EXPECT_EQ((*b)->Load(7), (*a)->Load(7));
  (*a)->EndChange(7);
  EXPECT_EQ((*b)->Load(7), (*a)->Load(7));
  (*a)->Unlock();
}

TEST(ChangeCountersTest, WritersOfTwoInstancesTakeTurns) {
  TempDir dir;
  auto a = ChangeCounters::Open(dir.File("changes"));
  auto b = ChangeCounters::Open(dir.File("changes"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->Lock());
  std::atomic<bool> b_locked{false};
  std::thread other([&] {
    ASSERT_TRUE((*b)->Lock());
    b_locked = true;
    (*b)->Unlock();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(b_locked.load());
  (*a)->Unlock();
  other.join();
  EXPECT_TRUE(b_locked.load());
}

TEST(PairCacheTest, StaysWithinItsBudgetDroppingTheOldestFirst) {
  PairCache cache(16 * 4096);  // 16 shards of 4 KiB
  const std::string value(200, 'x');
  auto put = [&](const std::string& key) { cache.Put(key, PairHash(key), 2, value); };
  std::string out;
  auto get = [&](const std::string& key, std::uint64_t version) {
    return cache.Get(key, PairHash(key), version, out);
  };
  for (int i = 0; i < 10'000; ++i) put("pair-" + std::to_string(i));
  int kept = 0;
  for (int i = 0; i < 10'000; ++i) kept += get("pair-" + std::to_string(i), 2);
  EXPECT_GT(kept, 100);
  EXPECT_LT(kept, 16 * 4096 / 200);
  EXPECT_TRUE(get("pair-9999", 2));  // the newest stays
  EXPECT_EQ(out, value);
  EXPECT_FALSE(get("pair-0", 2));     // the oldest went
  EXPECT_FALSE(get("pair-9999", 4));  // another counter value: not a hit
}

// Entries are found by hash; two keys with one hash must never read each other's state.
TEST(PairCacheTest, KeysSharingAHashNeverReadEachOthersState) {
  PairCache cache(1 << 20);
  constexpr std::uint64_t kSameHash = 42;
  std::string out;
  cache.Put(std::string_view("ch-1\0+15550001", 15), kSameHash, 2, "state-a");
  EXPECT_FALSE(cache.Get(std::string_view("ch-2\0+15550001", 15), kSameHash, 2, out));
  EXPECT_FALSE(cache.Get(std::string_view("ch-1\0+1555000", 14), kSameHash, 2, out));
  ASSERT_TRUE(cache.Get(std::string_view("ch-1\0+15550001", 15), kSameHash, 2, out));
  EXPECT_EQ(out, "state-a");
  cache.Put(std::string_view("ch-2\0+15550001", 15), kSameHash, 2, "state-b");
  EXPECT_FALSE(cache.Get(std::string_view("ch-1\0+15550001", 15), kSameHash, 2, out));
  ASSERT_TRUE(cache.Get(std::string_view("ch-2\0+15550001", 15), kSameHash, 2, out));
  EXPECT_EQ(out, "state-b");
}

// Issue 9: the counters file was created sparse (ftruncate) and mapped shared; on a full disk the
// first store to an untouched page raised SIGBUS. Its blocks must be allocated when it is opened.
TEST(ChangeCountersTest, FileIsAllocatedNotSparse) {
  TempDir dir;
  const std::string path = dir.File("store.db-changes");
  auto counters = ChangeCounters::Open(path);
  ASSERT_TRUE(counters.ok()) << counters.error();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_GE(st.st_size, static_cast<off_t>(ChangeCounters::kBuckets * sizeof(std::uint64_t)));
  EXPECT_GE(static_cast<off_t>(st.st_blocks) * 512, st.st_size) << "the file is sparse";
}

}  // namespace
}  // namespace callgate
