// The notification outbox contract (store/outbox.h) on every backend: items are committed with
// the change that caused them, an id is kept once, claims lease each pair's first unsettled item
// in order, and retries hold back a pair's later items. Built twice: on SQLite and memory, and,
// with CALLGATE_STORE_CONTRACT_REDIS, on RedisClusterStore alone (it needs a cluster).
#include "store/outbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>

#ifdef CALLGATE_STORE_CONTRACT_REDIS
#include "store/redis/redis_test_env.h"
#else
#include "store/memory/memory_store.h"
#include "store/sqlite/sqlite_store.h"
#endif
#include "store/store_test_util.h"

namespace callgate {
namespace {

// A store and its outbox; the SQLite one in a directory of its own.
struct Backend {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<PairStore> store;
  NotificationOutbox* outbox = nullptr;
};

#ifdef CALLGATE_STORE_CONTRACT_REDIS
Backend OpenRedis() {
  Backend b;
  b.store = OpenTestRedisStore();
  b.outbox = b.store ? b.store->outbox() : nullptr;
  return b;
}
#else
Backend OpenSqlite(TempDir* reuse = nullptr) {
  Backend b;
  if (!reuse) b.dir = std::make_unique<TempDir>();
  const std::string path = (reuse ? reuse : b.dir.get())->File("callgate.db");
  auto store = SqliteStore::Open({.path = path});
  EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error());
  b.store = std::move(*store);
  b.outbox = b.store->outbox();
  return b;
}

Backend OpenMemory() {
  Backend b;
  b.store = std::make_unique<MemoryStore>();
  b.outbox = b.store->outbox();
  return b;
}
#endif

// Tells one notification per applied request, due `delay` after its time, caused by its id.
Notifier TellRequests(Millis delay = Millis(0)) {
  return Notifier([delay](const PairKey&, const PairState&, const PairState&,
                          const std::vector<HistoryEntry>& appended) {
    std::vector<Notification> out;
    for (const Event& event : AppliedFacts(appended)) {
      Notification n;
      n.type = NotificationType::kLimitReached;
      n.occurred_at = EventTime(event);
      n.due_at = EventTime(event) + delay;
      n.cause_id = EventId(event);
      n.rule = 0;
      out.push_back(n);
    }
    return out;
  });
}

class OutboxTest : public ::testing::TestWithParam<std::function<Backend()>> {
 protected:
  void SetUp() override {
    backend_ = GetParam()();
    ASSERT_NE(backend_.outbox, nullptr);
    backend_.outbox->SetNotifier(TellRequests());
  }
  PairStore& store() { return *backend_.store; }
  NotificationOutbox& outbox() { return *backend_.outbox; }
  void Request(const PairKey& key, const std::string& id, Instant at) {
    ASSERT_TRUE(UpdatePairSync(store(), key, callgate::Request(id, at)).ok());
  }
  std::vector<OutboxItem> Claim(Instant now, const std::string& owner, int limit = 10) {
    auto claimed = outbox().ClaimDue(now, owner, std::chrono::seconds(30), limit);
    EXPECT_TRUE(claimed.ok());
    return claimed.ok() ? *claimed : std::vector<OutboxItem>();
  }

  Backend backend_;
  const PairKey a_{"ch-1", UserId::FromText("+15551230001")};
  const PairKey b_{"ch-1", UserId::FromText("+15551230002")};
};

TEST_P(OutboxTest, ItemsAreCommittedWithTheirChange) {
  Request(a_, "r1", kT0);
  Request(a_, "r2", kT0 + Millis(1));
  EXPECT_EQ(*outbox().PendingCount(), 2);
  // A refused mutation (the request is known) writes nothing, so tells nothing.
  Request(a_, "r1", kT0);
  EXPECT_EQ(*outbox().PendingCount(), 2);
}

TEST_P(OutboxTest, APairThatMayNotNotifyTellsNothing) {
  const PairKey quiet = b_;
  backend_.outbox->SetNotifier(Notifier(TellRequests().derive, [quiet](const PairKey& key) {
    return !(key.channel_id == quiet.channel_id && key.user == quiet.user);
  }));
  Request(a_, "r1", kT0);
  Request(b_, "r1", kT0);
  Request(b_, "r2", kT0 + Millis(1));
  EXPECT_EQ(*outbox().PendingCount(), 1);
  const std::vector<OutboxItem> claimed = Claim(kT0 + Millis(1), "p1");
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].pair.user, a_.user);
  EXPECT_EQ(claimed[0].notification.cause_id, "r1");
}

TEST_P(OutboxTest, ARefusedChangeIsNotShownToTheNotifier) {
  auto shown = std::make_shared<std::atomic<int>>(0);
  backend_.outbox->SetNotifier(Notifier([shown](const PairKey&, const PairState&, const PairState&,
                                                const std::vector<HistoryEntry>&) {
    ++*shown;
    return std::vector<Notification>{};
  }));
  Request(a_, "r1", kT0);
  EXPECT_EQ(*shown, 1);
  // On a pair the store has seen (a backend may keep its state), a mutation changes the state
  // and appends an entry, then refuses.
  ASSERT_TRUE(UpdatePairSync(store(), a_, [](PairState& state, std::vector<HistoryEntry>& h) {
                EXPECT_TRUE(callgate::Request("r2", kT0)(state, h));
                return false;
              }).ok());
  EXPECT_EQ(*shown, 1);
  Request(a_, "r3", kT0);
  EXPECT_EQ(*shown, 2);
}

TEST_P(OutboxTest, AnIdDerivedAgainIsKeptOnce) {
  Request(a_, "r1", kT0);
  auto first = Claim(kT0, "p1");
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(outbox().Settle(first[0].event_id, "p1", Settlement::kDelivered, kT0, kT0).ok());
  // The same fact on another key of the same pair is not possible; the same notification from
  // another change of the pair is: the outbox keeps the settled row and adds nothing.
  backend_.outbox->SetNotifier(Notifier(
      [](const PairKey&, const PairState&, const PairState&, const std::vector<HistoryEntry>&) {
        Notification n;
        n.type = NotificationType::kLimitReached;
        n.occurred_at = kT0;
        n.due_at = kT0;
        n.cause_id = "r1";
        n.rule = 0;
        return std::vector<Notification>{n};
      }));
  Request(a_, "r2", kT0 + Millis(5));
  EXPECT_EQ(*outbox().PendingCount(), 0);
  EXPECT_TRUE(Claim(kT0 + Millis(10), "p1").empty());
}

TEST_P(OutboxTest, ClaimsEachPairsFirstItemInOrderUnderALease) {
  Request(a_, "r1", kT0);
  Request(a_, "r2", kT0 + Millis(1));
  Request(b_, "r3", kT0 + Millis(2));
  auto claimed = Claim(kT0 + Millis(10), "p1");
  ASSERT_EQ(claimed.size(), 2u);  // one per pair
  EXPECT_EQ(claimed[0].notification.cause_id, "r1");
  EXPECT_EQ(claimed[1].notification.cause_id, "r3");
  EXPECT_EQ(claimed[0].pair, a_);
  // Leased: another process gets nothing, nor a's second item, until the lease ends.
  EXPECT_TRUE(Claim(kT0 + Millis(20), "p2").empty());
  auto again = Claim(kT0 + std::chrono::seconds(31), "p2");
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].event_id, claimed[0].event_id);  // the same id, retried by another owner
  // The first owner's lease is gone: it cannot settle any more.
  EXPECT_EQ(outbox()
                .Settle(claimed[0].event_id, "p1", Settlement::kDelivered,
                        kT0 + std::chrono::seconds(31), kT0)
                .error(),
            StoreError::kNotFound);
  const Instant now = kT0 + std::chrono::seconds(32);
  ASSERT_TRUE(outbox().Settle(again[0].event_id, "p2", Settlement::kDelivered, now, now).ok());
  auto next = Claim(now, "p2");
  ASSERT_EQ(next.size(), 1u);  // b's item is still leased; a's second is next
  EXPECT_EQ(next[0].notification.cause_id, "r2");
}

TEST_P(OutboxTest, ARetryHoldsBackItsPairsLaterItemsOnly) {
  Request(a_, "r1", kT0);
  Request(a_, "r2", kT0 + Millis(1));
  Request(b_, "r3", kT0 + Millis(2));
  const Instant now = kT0 + Millis(10);
  auto claimed = Claim(now, "p1");
  ASSERT_EQ(claimed.size(), 2u);
  const Instant retry_at = now + std::chrono::seconds(5);
  ASSERT_TRUE(outbox().Settle(claimed[0].event_id, "p1", Settlement::kRetry, now, retry_at).ok());
  ASSERT_TRUE(outbox().Settle(claimed[1].event_id, "p1", Settlement::kDelivered, now, now).ok());
  EXPECT_TRUE(Claim(now + Millis(1), "p1").empty());  // r2 waits behind r1
  auto retried = Claim(retry_at, "p1");
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0].notification.cause_id, "r1");
  EXPECT_EQ(retried[0].attempts, 1);
}

TEST_P(OutboxTest, ScheduledItemsWaitForTheirDueTime) {
  backend_.outbox->SetNotifier(TellRequests(std::chrono::hours(1)));
  Request(a_, "r1", kT0);
  EXPECT_TRUE(Claim(kT0 + std::chrono::minutes(59), "p1").empty());
  EXPECT_EQ(Claim(kT0 + std::chrono::hours(1), "p1").size(), 1u);
}

#ifdef CALLGATE_STORE_CONTRACT_REDIS
INSTANTIATE_TEST_SUITE_P(Backends, OutboxTest,
                         ::testing::Values(std::function<Backend()>(OpenRedis)),
                         [](const auto&) { return "RedisCluster"; });
#else
INSTANTIATE_TEST_SUITE_P(Backends, OutboxTest,
                         ::testing::Values(std::function<Backend()>([] { return OpenSqlite(); }),
                                           std::function<Backend()>(OpenMemory)),
                         [](const auto& info) { return info.index == 0 ? "Sqlite" : "Memory"; });

// Durability: what a commit recorded is there after the store is closed and opened again.
TEST(SqliteOutboxTest, ItemsSurviveReopening) {
  TempDir dir;
  const PairKey key{"ch-1", UserId::FromText("+15551230001")};
  {
    Backend b = OpenSqlite(&dir);
    b.outbox->SetNotifier(TellRequests());
    ASSERT_TRUE(UpdatePairSync(*b.store, key, Request("r1", kT0)).ok());
  }
  Backend b = OpenSqlite(&dir);
  auto claimed = b.outbox->ClaimDue(kT0, "p", std::chrono::seconds(30), 10);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].event_id, MakeOutboxItem(key, (*claimed)[0].notification).event_id);
}
#endif

}  // namespace
}  // namespace callgate
