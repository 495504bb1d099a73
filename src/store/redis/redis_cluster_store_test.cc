// RedisClusterStore against a real cluster (started by the ctest fixture): what the contract suite
// cannot see from one store instance — two processes on one pair, a token changed underneath, a
// tenant change seen by another process at once, a link interrupted after its first step — and
// the bytes a pair takes in Redis.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/codec.h"
#include "store/redis/keys.h"
#include "store/redis/redis_test_env.h"
#include "store/store_test_util.h"

namespace callgate {
namespace {

const PairKey kPair{"ch-1", UserId::Phone("+15551230001")};

// Two stores on one prefix: two callgate processes sharing the cluster.
struct TwoProcesses {
  TwoProcesses() {
    RedisStoreOptions options = TestRedisOptions();
    a = OpenTestRedisStore(options);
    b = OpenTestRedisStore(options);
  }
  std::unique_ptr<RedisClusterStore> a, b;
};

void Seed(RedisClusterStore& store) {
  ASSERT_TRUE(store.CreateAccount({"acc-1", kT0}).ok());
  ASSERT_TRUE(store.CreateSubaccount({"sub-1", "acc-1", kT0}).ok());
  ASSERT_TRUE(
      store.CreateChannel({"ch-1", "sub-1", "pn-1", false, LimitsProfile::kProduction, kT0}).ok());
}

PairState Load(PairStore& store, const PairKey& key) {
  auto state = store.LoadPair(key);
  EXPECT_TRUE(state.ok());
  return state.ok() ? *state : PairState{};
}

TEST(RedisClusterStoreTest, TwoProcessesWritingOnePairBothCommitAndLoseNothing) {
  TwoProcesses p;
  ASSERT_TRUE(p.a && p.b);
  constexpr int kThreadsEach = 4, kPerThread = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreadsEach; ++t) {
    RedisClusterStore& store = t % 2 == 0 ? *p.a : *p.b;
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!UpdatePairSync(store, kPair, Request(id, kT0 + Millis(i))).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  const std::size_t expected = 2 * kThreadsEach * kPerThread;
  EXPECT_EQ(Load(*p.a, kPair).requests.size(), expected);
  EXPECT_EQ(Load(*p.b, kPair).requests.size(), expected);
  auto history = p.b->LoadHistory(kPair, 0, 100000);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), expected);
  std::printf("conflicts retried: %llu + %llu\n", static_cast<unsigned long long>(p.a->conflicts()),
              static_cast<unsigned long long>(p.b->conflicts()));
}

TEST(RedisClusterStoreTest, SixtyFourConcurrentWritersOnOnePairAllFinish) {
  TwoProcesses p;
  ASSERT_TRUE(p.a && p.b);
  constexpr int kWriters = 64, kEach = 5;
  std::atomic<int> failures{0};
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      RedisClusterStore& store = t % 2 == 0 ? *p.a : *p.b;
      for (int i = 0; i < kEach; ++i) {
        const std::string id = "w" + std::to_string(t) + "-" + std::to_string(i);
        if (!UpdatePairSync(store, kPair, Request(id, kT0 + Millis(t))).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Load(*p.a, kPair).requests.size(), static_cast<std::size_t>(kWriters * kEach));
  EXPECT_LT(took, std::chrono::seconds(30)) << "no livelock";
  std::printf(
      "64 writers x %d on one pair: %lld ms, conflicts %llu + %llu\n", kEach,
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
      static_cast<unsigned long long>(p.a->conflicts()),
      static_cast<unsigned long long>(p.b->conflicts()));
}

TEST(RedisClusterStoreTest, AVersionTokenChangedByAnotherProcessIsDetected) {
  TwoProcesses p;
  ASSERT_TRUE(p.a && p.b);
  ASSERT_TRUE(UpdatePairSync(*p.a, kPair, Request("r1", kT0)).ok());  // a now holds the token
  ASSERT_TRUE(UpdatePairSync(*p.b, kPair, Request("r2", kT0)).ok());  // b changes it
  const std::uint64_t before = p.a->conflicts();
  PairState seen;
  ASSERT_TRUE(UpdatePairSync(*p.a, kPair, [&seen](PairState& state, std::vector<HistoryEntry>& h) {
                seen = state;
                return Request("r3", kT0)(state, h);
              }).ok());
  EXPECT_EQ(p.a->conflicts(), before + 1);
  EXPECT_TRUE(seen.requests.contains("r2")) << "the mutation that committed ran on b's state";
  EXPECT_EQ(Load(*p.a, kPair).requests.size(), 3u);

  // A refusal decided on a's cached state is checked too: it runs again on what b wrote.
  ASSERT_TRUE(UpdatePairSync(*p.b, kPair, Request("r4", kT0)).ok());
  ASSERT_TRUE(UpdatePairSync(*p.a, kPair, [&seen](PairState& state, auto&) {
                seen = state;
                return false;
              }).ok());
  EXPECT_TRUE(seen.requests.contains("r4"));
  EXPECT_EQ(p.a->conflicts(), before + 2);
}

TEST(RedisClusterStoreTest, AnUnreadablePairValueIsAFailureNeverAnAbsentPair) {
  auto store = OpenTestRedisStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(UpdatePairSync(*store, kPair, Request("r1", kT0)).ok());
  const std::string pair_key = redis_keys::KeysOf(store->key_prefix(), kPair).pair;
  // The value as the scripts wrote it reads back through the plain GET path.
  EXPECT_EQ(Load(*store, kPair).requests.size(), 1u);
  for (const std::string& garbage : {std::string("X12345678"), std::string("D1234")}) {
    ASSERT_TRUE(store->client()
                    .RunSync(pair_key, {"SET", pair_key, garbage}, redis::Durability::kNone)
                    .ok());
    EXPECT_FALSE(store->LoadPair(kPair).ok()) << garbage;
    std::promise<bool> async_ok;
    store->LoadPairAsync(kPair,
                         [&](StoreResult<PairState>&& state) { async_ok.set_value(state.ok()); });
    EXPECT_FALSE(async_ok.get_future().get()) << garbage;
    std::promise<bool> batch_ok;
    store->LoadPairsAsync({kPair}, [&](std::vector<StoreResult<PairState>>&& states) {
      batch_ok.set_value(states.size() == 1 && states[0].ok());
    });
    EXPECT_FALSE(batch_ok.get_future().get()) << garbage;
    // A write refuses too, and leaves the value as it was.
    EXPECT_FALSE(UpdatePairSync(*store, kPair, Request("r2", kT0)).ok()) << garbage;
    auto raw = store->client().RunSync(pair_key, {"GET", pair_key}, redis::Durability::kNone);
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(raw->str, garbage);
  }
}

// One notification per applied request, due at its time.
Notifier TellEachRequest() {
  return Notifier([](const PairKey&, const PairState&, const PairState&,
                     const std::vector<HistoryEntry>& appended) {
    std::vector<Notification> out;
    for (const Event& event : AppliedFacts(appended)) {
      Notification n;
      n.type = NotificationType::kLimitReached;
      n.occurred_at = n.due_at = EventTime(event);
      n.cause_id = EventId(event);
      n.rule = 0;
      out.push_back(n);
    }
    return out;
  });
}

TEST(RedisClusterStoreTest, AnOutboxItemWhoseHintWasLostIsFoundByTheSweep) {
  TwoProcesses p;
  ASSERT_TRUE(p.a && p.b);
  p.a->SetNotifier(TellEachRequest());
  ASSERT_TRUE(UpdatePairSync(*p.a, kPair, Request("r1", kT0)).ok());
  // As if the process died between its commit and the hint that follows it.
  const std::string hint = redis_keys::OutboxHintKey(p.a->key_prefix());
  ASSERT_TRUE(p.a->client().RunSync(hint, {"DEL", hint}, redis::Durability::kNone).ok());
  auto claimed = p.b->ClaimDue(kT0, "b", std::chrono::seconds(30), 10);  // b's first claim sweeps
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].notification.cause_id, "r1");
  EXPECT_EQ((*claimed)[0].pair, kPair);
}

TEST(RedisClusterStoreTest, TwoProcessesClaimingTogetherDeliverEachItemOnce) {
  TwoProcesses p;
  ASSERT_TRUE(p.a && p.b);
  p.a->SetNotifier(TellEachRequest());
  constexpr int kPairs = 40, kEach = 3;
  for (int i = 0; i < kPairs; ++i) {
    const PairKey key{"ch-1", UserId::Phone("+1555777" + std::to_string(1000 + i))};
    for (int r = 0; r < kEach; ++r) {
      const std::string id = "r" + std::to_string(i) + "-" + std::to_string(r);
      ASSERT_TRUE(UpdatePairSync(*p.a, key, Request(id, kT0 + Millis(r))).ok());
    }
  }
  std::mutex mu;
  std::vector<std::string> delivered;  // cause ids, in delivery order
  auto deliver = [&](RedisClusterStore& store, const std::string& owner) {
    const Instant now = kT0 + std::chrono::seconds(1);
    for (int idle = 0; idle < 3;) {
      auto claimed = store.ClaimDue(now, owner, std::chrono::seconds(30), 8);
      ASSERT_TRUE(claimed.ok());
      if (claimed->empty()) {
        ++idle;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      idle = 0;
      for (const OutboxItem& item : *claimed) {
        {
          std::lock_guard lock(mu);
          delivered.push_back(item.notification.cause_id);
        }
        ASSERT_TRUE(store.Settle(item.event_id, owner, Settlement::kDelivered, now, now).ok());
      }
    }
  };
  std::thread a([&] { deliver(*p.a, "a"); });
  std::thread b([&] { deliver(*p.b, "b"); });
  a.join();
  b.join();
  ASSERT_EQ(delivered.size(), static_cast<std::size_t>(kPairs * kEach));
  EXPECT_EQ(std::set<std::string>(delivered.begin(), delivered.end()).size(), delivered.size());
  // Each pair's items in order, whichever process sent them.
  for (int i = 0; i < kPairs; ++i) {
    std::vector<std::string> pair;
    for (const std::string& id : delivered) {
      if (id.starts_with("r" + std::to_string(i) + "-")) pair.push_back(id);
    }
    EXPECT_TRUE(std::is_sorted(pair.begin(), pair.end())) << i;
  }
  auto pending = p.b->PendingCount();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(*pending, 0);
}

TEST(RedisClusterStoreTest, ATenantChangeInOneProcessIsSeenByAnotherOnItsNextRead) {
  TwoProcesses p;
  ASSERT_TRUE(p.a && p.b);
  ASSERT_TRUE(p.a->CreateAccount({"acc-1", kT0}).ok());
  ApiKey key;
  key.key_id = "key-1";
  key.account_id = "acc-1";
  key.created_at = kT0;
  ASSERT_TRUE(p.a->AddApiKey(key).ok());
  for (int round = 0; round < 5; ++round) {
    const std::uint64_t before = p.b->TenantChanges();
    ASSERT_TRUE(p.a->SetCallbackPermission("ch-x", true).error() == StoreError::kNotFound);
    ASSERT_TRUE(p.a->RevokeApiKey("key-1", kT0 + Millis(round)).ok());
    // Returned: b honours it on its very next request.
    EXPECT_GT(p.b->TenantChanges(), before) << "round " << round;
    EXPECT_EQ(p.a->last_lagging_processes(), 0);
  }
  auto tenants = p.b->LoadTenants();
  ASSERT_TRUE(tenants.ok());
  ASSERT_TRUE(tenants->api_keys.at("key-1").revoked_at.has_value());
}

// Notification targets are kept with the tenants: set, rotated (both secrets), cleared.
TEST(RedisClusterStoreTest, NotifyTargetsRoundTripWithTheTenants) {
  auto store = OpenTestRedisStore();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->SetNotifyTarget("acc-n", NotifyTarget{"http://x/", "s1"}).error(),
            StoreError::kNotFound);
  ASSERT_TRUE(store->CreateAccount({"acc-n", kT0}).ok());
  ASSERT_TRUE(
      store
          ->SetNotifyTarget("acc-n", NotifyTarget{"https://hooks.example/cg?a=1", "cgws_new",
                                                  "cgws_old", kT0 + Millis(5), kT0})
          .ok());
  auto tenants = store->LoadTenants();
  ASSERT_TRUE(tenants.ok());
  const NotifyTarget& target = tenants->notify_targets.at("acc-n");
  EXPECT_EQ(target.url, "https://hooks.example/cg?a=1");
  EXPECT_EQ(target.SigningSecrets(kT0), (std::vector<std::string>{"cgws_new", "cgws_old"}));
  EXPECT_EQ(target.updated_at, kT0);
  ASSERT_TRUE(store->SetNotifyTarget("acc-n", NotifyTarget{"http://x/", "s2"}).ok());
  EXPECT_EQ(store->LoadTenants()->notify_targets.at("acc-n").previous_secret, "");
  ASSERT_TRUE(store->SetNotifyTarget("acc-n", std::nullopt).ok());
  EXPECT_TRUE(store->LoadTenants()->notify_targets.empty());
}

TEST(RedisClusterStoreTest, ALinkInterruptedAfterItsFirstStepIsCompletedByTheNextAccess) {
  TwoProcesses p;
  ASSERT_TRUE(p.a && p.b);
  Seed(*p.a);
  const UserId phone = UserId::Phone("+15551230001"), bsuid = UserId::Bsuid("US.1001");
  ASSERT_TRUE(UpdatePairSync(*p.a, {"ch-1", phone}, Request("r1", kT0)).ok());
  ASSERT_TRUE(UpdatePairSync(*p.a, {"ch-1", bsuid}, Request("r2", kT0 + Millis(1))).ok());
  // Process a "crashes" right after the link map: the pairs are still apart.
  ASSERT_TRUE(p.a->BeginLinkOnly({"ch-1", {phone, bsuid}}).ok());
  const std::string links = redis_keys::LinksKey(p.a->key_prefix(), "acc-1");
  auto mark = p.a->client().RunSync(links, {"HGET", links, "a:US.1001"}, redis::Durability::kNone);
  ASSERT_TRUE(mark.ok());
  EXPECT_EQ(mark->str, "!+15551230001") << "pending after the first step";

  // The next access, from the other process, completes it before answering.
  const PairState by_bsuid = Load(*p.b, {"ch-1", bsuid});
  EXPECT_EQ(by_bsuid.requests.size(), 2u);
  EXPECT_EQ(Load(*p.b, {"ch-1", phone}), by_bsuid);
  auto history = p.b->LoadHistory({"ch-1", phone}, 0, 100);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 2u);
  mark = p.a->client().RunSync(links, {"HGET", links, "a:US.1001"}, redis::Durability::kNone);
  ASSERT_TRUE(mark.ok());
  EXPECT_EQ(mark->str, "+15551230001") << "no longer pending";
  // The alias pair is a tombstone; writes through either id reach the one pair.
  ASSERT_TRUE(UpdatePairSync(*p.a, {"ch-1", bsuid}, Request("r3", kT0 + Millis(2))).ok());
  EXPECT_EQ(Load(*p.b, {"ch-1", phone}).requests.size(), 3u);
}

// A status read (LoadPairAsync) of an id whose pair holds data reads that pair alone: while a
// link is pending it answers the pair as it was before the link began (the link's caller has not
// been answered), and leaves the link pending, as a write there does. A batch read, which reads
// the ids' links anyway, completes the link before answering.
TEST(RedisClusterStoreTest, AnAsyncBatchReadCompletesALinkInterruptedAfterItsFirstStep) {
  TwoProcesses p;
  ASSERT_TRUE(p.a && p.b);
  Seed(*p.a);
  const UserId phone = UserId::Phone("+15551230001"), bsuid = UserId::Bsuid("US.1001");
  ASSERT_TRUE(UpdatePairSync(*p.a, {"ch-1", phone}, Request("r1", kT0)).ok());
  ASSERT_TRUE(UpdatePairSync(*p.a, {"ch-1", bsuid}, Request("r2", kT0 + Millis(1))).ok());
  ASSERT_TRUE(p.a->BeginLinkOnly({"ch-1", {phone, bsuid}}).ok());
  const std::string links = redis_keys::LinksKey(p.a->key_prefix(), "acc-1");
  auto load_one = [&](const UserId& user) {
    std::promise<StoreResult<PairState>> one;
    p.b->LoadPairAsync({"ch-1", user}, [&](StoreResult<PairState> state) { one.set_value(state); });
    auto future = one.get_future();
    EXPECT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    return future.get();
  };

  const StoreResult<PairState> before = load_one(bsuid);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->requests.size(), 1u) << "the alias's own pair, as before the link";
  auto mark = p.a->client().RunSync(links, {"HGET", links, "a:US.1001"}, redis::Durability::kNone);
  ASSERT_TRUE(mark.ok());
  EXPECT_EQ(mark->str, "!+15551230001") << "a single read leaves the link pending";
  // A write through the alias meanwhile lands on its own pair, and is folded in with it.
  ASSERT_TRUE(UpdatePairSync(*p.b, {"ch-1", bsuid}, Request("r3", kT0 + Millis(2))).ok());
  const StoreResult<PairState> written = load_one(bsuid);
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(written->requests.size(), 2u);

  // The batch read finds the mark pending: it completes the link (on b's link thread) and
  // answers only then, each item the merged pair.
  std::promise<std::vector<StoreResult<PairState>>> many;
  p.b->LoadPairsAsync(
      {{"ch-1", bsuid}, {"ch-1", bsuid}},
      [&](std::vector<StoreResult<PairState>> states) { many.set_value(std::move(states)); });
  auto many_future = many.get_future();
  ASSERT_EQ(many_future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  const std::vector<StoreResult<PairState>> states = many_future.get();
  ASSERT_EQ(states.size(), 2u);
  for (std::size_t i = 0; i < states.size(); ++i) {
    ASSERT_TRUE(states[i].ok());
    EXPECT_EQ(states[i]->requests.size(), 3u) << "batch item " << i;
  }
  mark = p.a->client().RunSync(links, {"HGET", links, "a:US.1001"}, redis::Durability::kNone);
  ASSERT_TRUE(mark.ok());
  EXPECT_EQ(mark->str, "+15551230001") << "no longer pending";

  // Now the alias's pair is a tombstone: a single read follows it to the merged pair.
  const StoreResult<PairState> by_bsuid = load_one(bsuid);
  ASSERT_TRUE(by_bsuid.ok());
  EXPECT_EQ(by_bsuid->requests.size(), 3u);
  EXPECT_EQ(*by_bsuid, *states[0]);
  const StoreResult<PairState> by_phone = load_one(phone);
  ASSERT_TRUE(by_phone.ok());
  EXPECT_EQ(*by_phone, *by_bsuid);
}

// The events of an active pair: a permission request, an accepted reply, then `calls` authorised
// business-initiated calls (authorisation, connect, terminate), a day apart, with Meta's id shapes.
std::vector<Event> ActivePairEvents(int calls) {
  const Instant t = kT0;
  std::vector<Event> events = {
      PermissionRequested{"5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a51", t},
      PermissionReplied{.message_id = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
                        .at = t + std::chrono::hours(1),
                        .accepted = true,
                        .expires_at = t + std::chrono::hours(1) + kDays7}};
  for (int c = 0; c < calls; ++c) {
    const Instant at = t + std::chrono::hours(2 + 24 * c);
    const std::string auth = "9b2c1d3e-4f5a-4b6c-8d7e-0f1a2b3c4d5" + std::to_string(c);
    const std::string call =
        "wacid.HBgLMTY1MDM4Nzk0MzkVAgASGCA" + std::to_string(c) + "QjY3RkY0QTk1QkI0Njc0MDgA";
    events.push_back(CallAuthorized{auth, at, at + std::chrono::minutes(5)});
    events.push_back(
        CallConnected{call, at + Millis(5000), CallDirection::kBusinessInitiated, auth});
    events.push_back(CallTerminated{call, at + Millis(65000), CallDirection::kBusinessInitiated,
                                    true, at + Millis(6000), auth});
  }
  return events;
}

// MEMORY USAGE of the pair's keys (state and history; de-duplication is the history's keys) once
// `events` were applied one update each, as webhooks and reservations apply them.
long long BytesInRedis(RedisClusterStore& store, const PairKey& key,
                       const std::vector<Event>& events) {
  for (const Event& event : events) {
    EXPECT_TRUE(UpdatePairSync(store, key, [event](PairState& state, auto& history) {
                  return ApplyAndRecord(state, history, event, EventSource::kWebhook,
                                        LimitsProfile::kProduction) == ApplyOutcome::kApplied;
                }).ok());
  }
  auto history = store.LoadHistory(key, 0, 1000);
  EXPECT_TRUE(history.ok());
  EXPECT_EQ(history.ok() ? history->size() : 0, events.size());
  const redis_keys::PairKeys keys = redis_keys::KeysOf(store.key_prefix(), key);
  auto usage = [&](const std::string& k) -> long long {
    auto r =
        store.client().RunSync(k, {"MEMORY", "USAGE", k, "SAMPLES", "0"}, redis::Durability::kNone);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->integer : 0;
  };
  const long long pair = usage(keys.pair), entries = usage(keys.history);
  EXPECT_GT(pair, 0);
  EXPECT_GT(entries, 0);
  std::printf(
      "bytes in Redis for a pair with %zu history entries (state %zu B encoded): "
      "pair key %lld + history key %lld = %lld\n",
      events.size(), EncodePairState(Load(store, key)).size(), pair, entries, pair + entries);
  return pair + entries;
}

TEST(RedisClusterStoreTest, AnActivePairTakesAtMostOneAndAHalfKilobytes) {
  auto store = OpenTestRedisStore();
  ASSERT_NE(store, nullptr);
  // A request, its accepted reply and two calls: 8 entries.
  EXPECT_LE(BytesInRedis(*store, kPair, ActivePairEvents(2)), 1536);
  // A busy week (four calls, 14 entries) is measured and printed, not held to the budget.
  EXPECT_GT(BytesInRedis(*store, {"ch-1", UserId::Phone("+15551230002")}, ActivePairEvents(4)), 0);
}

}  // namespace
}  // namespace callgate
