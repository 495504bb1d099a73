// The store contracts (TenantStore and PairStore), run against every backend: what any caller may
// rely on, whichever store is wired in. A backend passes this suite or it is not a store.
// store_tests runs it on MemoryStore and SqliteStore; store_redis_tests compiles it again with
// CALLGATE_STORE_CONTRACT_REDIS, on RedisClusterStore alone (it needs a cluster: CMakeLists.txt).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "store/pair_store.h"
#include "store/store_test_util.h"
#ifdef CALLGATE_STORE_CONTRACT_REDIS
#include "store/redis/redis_test_env.h"
#else
#include "store/memory/memory_store.h"
#include "store/sqlite/sqlite_store.h"
#endif

namespace callgate {
namespace {

constexpr LimitsProfile kProfile = LimitsProfile::kProduction;

#ifdef CALLGATE_STORE_CONTRACT_REDIS
// The cluster the test fixture started, under a fresh key prefix per test.
struct RedisBackend {
  std::unique_ptr<RedisClusterStore> Open() { return OpenTestRedisStore(); }
};
#else
struct MemoryBackend {
  std::unique_ptr<MemoryStore> Open() { return std::make_unique<MemoryStore>(); }
};

// A fresh database file per test, in a directory removed afterwards.
struct SqliteBackend {
  std::unique_ptr<SqliteStore> Open() {
    auto store = SqliteStore::Open({.path = dir.File("store.db")});
    if (!store) {
      ADD_FAILURE() << store.error();
      return nullptr;
    }
    return std::move(*store);
  }
  TempDir dir;
};
#endif

template <class Backend>
class StoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = backend_.Open();
    ASSERT_NE(store_, nullptr);
  }

  // Both interfaces: TenantStore and PairStore.
  auto& store() { return *store_; }

  // An account with one subaccount and one channel: the parents most tests need.
  void Seed() {
    ASSERT_TRUE(store().CreateAccount({"acc-1", kT0}).ok());
    ASSERT_TRUE(store().CreateSubaccount({"sub-1", "acc-1", kT0}).ok());
    ASSERT_TRUE(
        store()
            .CreateChannel({"ch-1", "sub-1", "pn-1", false, LimitsProfile::kProduction, kT0})
            .ok());
  }

  Backend backend_;  // declared first so the store closes before its files are removed
  decltype(std::declval<Backend&>().Open()) store_;
};

struct BackendNames {
  template <class T>
  static std::string GetName(int) {
#ifdef CALLGATE_STORE_CONTRACT_REDIS
    return "RedisCluster";
#else
    if constexpr (std::is_same_v<T, MemoryBackend>) return "Memory";
    return "Sqlite";
#endif
  }
};

#ifdef CALLGATE_STORE_CONTRACT_REDIS
using Backends = ::testing::Types<RedisBackend>;
#else
using Backends = ::testing::Types<MemoryBackend, SqliteBackend>;
#endif
TYPED_TEST_SUITE(StoreContractTest, Backends, BackendNames);

// A canonical, sorted rendering of a snapshot: equal snapshots render equally, and a failed
// comparison shows what differs.
std::string Describe(const TenantSnapshot& t) {
  std::set<std::string> lines;
  auto ms = [](Instant at) { return std::to_string(ToUnixMillis(at)); };
  for (const auto& [id, a] : t.accounts) {
    lines.insert("account " + id + " " + a.id + " " + ms(a.created_at));
  }
  for (const auto& [id, s] : t.subaccounts) {
    lines.insert("subaccount " + id + " " + s.id + " " + s.account_id + " " + ms(s.created_at));
  }
  for (const auto& [id, c] : t.channels) {
    lines.insert("channel " + id + " " + c.id + " " + c.subaccount_id + " " + c.phone_number_id +
                 " callback=" + std::to_string(c.callback_permission_enabled) + " " +
                 std::string(ProfileName(c.limits)) + " " + ms(c.created_at));
  }
  for (const auto& [pnid, id] : t.channel_by_phone_number_id) {
    lines.insert("phone " + pnid + " -> " + id);
  }
  for (const auto& [id, k] : t.api_keys) {
    std::ostringstream hash;
    for (std::uint8_t b : k.secret_hash) hash << static_cast<int>(b) << ".";
    lines.insert("key " + id + " " + k.key_id + " " + k.account_id + " " + hash.str() + " " +
                 ms(k.created_at) + " revoked=" + (k.revoked_at ? ms(*k.revoked_at) : "-"));
  }
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

ApiKey Key(std::string key_id, std::string account_id, std::uint8_t fill) {
  ApiKey key;
  key.key_id = std::move(key_id);
  key.account_id = std::move(account_id);
  key.secret_hash.fill(fill);
  key.secret_hash[0] = 0;  // a zero byte must survive the round trip too
  key.created_at = kT0 + Millis(5);
  return key;
}

HistoryEntry Entry(const Event& event, EventSource source = EventSource::kWebhook) {
  return {.event_key = EventKey(event), .source = source, .event = event};
}

// What a caller can tell entries apart by, all but the store-assigned seq.
auto Fields(const HistoryEntry& e) {
  return std::make_tuple(e.event_key, e.source, std::string(EventKind(e.event)), EventId(e.event),
                         ToUnixMillis(EventTime(e.event)));
}

PairState LoadOrFail(PairStore& store, const PairKey& key) {
  auto state = store.LoadPair(key);
  EXPECT_TRUE(state.ok()) << StoreErrorName(state.error());
  return state.ok() ? *state : PairState{};
}

// The state the next mutation of `key` starts from (it refuses, so it changes nothing).
PairState SeenByNextMutation(PairStore& store, const PairKey& key) {
  PairState seen;
  const StoreStatus status = UpdatePairSync(store, key, [&seen](PairState& state, auto&) {
    seen = state;
    return false;
  });
  EXPECT_TRUE(status.ok()) << StoreErrorName(status.error());
  return seen;
}

std::vector<HistoryEntry> HistoryOrFail(PairStore& store, const PairKey& key,
                                        std::int64_t before_seq = 0, int limit = 1'000'000) {
  auto history = store.LoadHistory(key, before_seq, limit);
  EXPECT_TRUE(history.ok()) << StoreErrorName(history.error());
  return history.ok() ? *history : std::vector<HistoryEntry>{};
}

const PairKey kPair{"ch-1", UserId::Phone("+15551230001")};

// --- Tenants ---------------------------------------------------------------------------------

TYPED_TEST(StoreContractTest, CreateAccountRejectsDuplicateId) {
  ASSERT_TRUE(this->store().CreateAccount({"acc-1", kT0}).ok());
  const StoreStatus again = this->store().CreateAccount({"acc-1", kT0 + Millis(1)});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), StoreError::kAlreadyExists);
}

TYPED_TEST(StoreContractTest, CreateSubaccountRequiresExistingAccount) {
  const StoreStatus status = this->store().CreateSubaccount({"sub-1", "no-such-account", kT0});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error(), StoreError::kNotFound);
}

TYPED_TEST(StoreContractTest, CreateSubaccountRejectsDuplicateId) {
  ASSERT_TRUE(this->store().CreateAccount({"acc-1", kT0}).ok());
  ASSERT_TRUE(this->store().CreateAccount({"acc-2", kT0}).ok());
  ASSERT_TRUE(this->store().CreateSubaccount({"sub-1", "acc-1", kT0}).ok());
  const StoreStatus again = this->store().CreateSubaccount({"sub-1", "acc-2", kT0});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), StoreError::kAlreadyExists);
}

TYPED_TEST(StoreContractTest, CreateChannelRequiresExistingSubaccount) {
  ASSERT_TRUE(this->store().CreateAccount({"acc-1", kT0}).ok());
  const StoreStatus status = this->store().CreateChannel(
      {"ch-1", "no-such-subaccount", "pn-1", false, LimitsProfile::kProduction, kT0});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error(), StoreError::kNotFound);
}

TYPED_TEST(StoreContractTest, CreateChannelRejectsDuplicateId) {
  this->Seed();
  const StoreStatus again = this->store().CreateChannel(
      {"ch-1", "sub-1", "pn-other", false, LimitsProfile::kProduction, kT0});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), StoreError::kAlreadyExists);
}

TYPED_TEST(StoreContractTest, CreateChannelRejectsDuplicatePhoneNumberId) {
  this->Seed();
  const StoreStatus again =
      this->store().CreateChannel({"ch-2", "sub-1", "pn-1", true, LimitsProfile::kSandbox, kT0});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), StoreError::kAlreadyExists);
  auto tenants = this->store().LoadTenants();
  ASSERT_TRUE(tenants.ok());
  EXPECT_EQ(tenants->FindChannel("ch-2"), nullptr);
  ASSERT_NE(tenants->FindChannelByPhoneNumberId("pn-1"), nullptr);
  EXPECT_EQ(tenants->FindChannelByPhoneNumberId("pn-1")->id, "ch-1");
}

TYPED_TEST(StoreContractTest, FailedTenantWritesChangeNothing) {
  this->Seed();
  ASSERT_TRUE(this->store().AddApiKey(Key("key-1", "acc-1", 7)).ok());
  auto before = this->store().LoadTenants();
  ASSERT_TRUE(before.ok());

  EXPECT_FALSE(this->store().CreateAccount({"acc-1", kT0 + Millis(9)}).ok());
  EXPECT_FALSE(this->store().CreateSubaccount({"sub-1", "acc-1", kT0 + Millis(9)}).ok());
  EXPECT_FALSE(this->store().CreateSubaccount({"sub-2", "acc-x", kT0}).ok());
  EXPECT_FALSE(this->store()
                   .CreateChannel({"ch-2", "sub-1", "pn-1", true, LimitsProfile::kSandbox, kT0})
                   .ok());
  EXPECT_FALSE(this->store()
                   .CreateChannel({"ch-1", "sub-1", "pn-2", true, LimitsProfile::kSandbox, kT0})
                   .ok());
  EXPECT_FALSE(this->store().SetCallbackPermission("ch-x", true).ok());
  EXPECT_FALSE(this->store().AddApiKey(Key("key-1", "acc-1", 8)).ok());
  EXPECT_FALSE(this->store().AddApiKey(Key("key-2", "acc-x", 8)).ok());
  EXPECT_FALSE(this->store().RevokeApiKey("key-x", kT0).ok());

  auto after = this->store().LoadTenants();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Describe(*after), Describe(*before));
}

TYPED_TEST(StoreContractTest, SetCallbackPermissionUpdatesTheChannel) {
  this->Seed();
  ASSERT_TRUE(this->store().SetCallbackPermission("ch-1", true).ok());
  auto tenants = this->store().LoadTenants();
  ASSERT_TRUE(tenants.ok());
  ASSERT_NE(tenants->FindChannel("ch-1"), nullptr);
  EXPECT_TRUE(tenants->FindChannel("ch-1")->callback_permission_enabled);

  ASSERT_TRUE(this->store().SetCallbackPermission("ch-1", false).ok());
  tenants = this->store().LoadTenants();
  ASSERT_TRUE(tenants.ok());
  EXPECT_FALSE(tenants->FindChannel("ch-1")->callback_permission_enabled);
}

TYPED_TEST(StoreContractTest, SetCallbackPermissionOnUnknownChannelIsNotFound) {
  this->Seed();
  const StoreStatus status = this->store().SetCallbackPermission("ch-x", true);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error(), StoreError::kNotFound);
}

TYPED_TEST(StoreContractTest, AddApiKeyRequiresExistingAccount) {
  const StoreStatus status = this->store().AddApiKey(Key("key-1", "no-such-account", 1));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error(), StoreError::kNotFound);
}

TYPED_TEST(StoreContractTest, AddApiKeyRejectsDuplicateKeyId) {
  this->Seed();
  ASSERT_TRUE(this->store().AddApiKey(Key("key-1", "acc-1", 1)).ok());
  const StoreStatus again = this->store().AddApiKey(Key("key-1", "acc-1", 2));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), StoreError::kAlreadyExists);
}

TYPED_TEST(StoreContractTest, RevokeApiKeyKeepsTheFirstRevocationTime) {
  this->Seed();
  ASSERT_TRUE(this->store().AddApiKey(Key("key-1", "acc-1", 1)).ok());
  ASSERT_TRUE(this->store().RevokeApiKey("key-1", kT0 + Millis(100)).ok());
  ASSERT_TRUE(this->store().RevokeApiKey("key-1", kT0 + Millis(200)).ok());
  auto tenants = this->store().LoadTenants();
  ASSERT_TRUE(tenants.ok());
  const ApiKey& key = tenants->api_keys.at("key-1");
  ASSERT_TRUE(key.revoked_at.has_value());
  EXPECT_EQ(ToUnixMillis(*key.revoked_at), ToUnixMillis(kT0 + Millis(100)));
}

TYPED_TEST(StoreContractTest, RevokeUnknownApiKeyIsNotFound) {
  this->Seed();
  const StoreStatus status = this->store().RevokeApiKey("key-x", kT0);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error(), StoreError::kNotFound);
}

TYPED_TEST(StoreContractTest, TenantGenerationIncreasesOnEveryChange) {
  auto& store = this->store();
  auto generation = store.TenantGeneration();
  ASSERT_TRUE(generation.ok());
  std::uint64_t last = *generation;
  auto expect_increase = [&](StoreStatus status, const char* what) {
    ASSERT_TRUE(status.ok()) << what;
    auto now = store.TenantGeneration();
    ASSERT_TRUE(now.ok()) << what;
    EXPECT_GT(*now, last) << what;
    last = *now;
  };
  expect_increase(store.CreateAccount({"acc-1", kT0}), "CreateAccount");
  expect_increase(store.CreateSubaccount({"sub-1", "acc-1", kT0}), "CreateSubaccount");
  expect_increase(
      store.CreateChannel({"ch-1", "sub-1", "pn-1", false, LimitsProfile::kProduction, kT0}),
      "CreateChannel");
  expect_increase(store.SetCallbackPermission("ch-1", true), "SetCallbackPermission on");
  expect_increase(store.SetCallbackPermission("ch-1", false), "SetCallbackPermission off");
  expect_increase(store.AddApiKey(Key("key-1", "acc-1", 1)), "AddApiKey");
  expect_increase(store.RevokeApiKey("key-1", kT0), "RevokeApiKey");
}

TYPED_TEST(StoreContractTest, LoadTenantsReflectsEveryChange) {
  auto& store = this->store();
  ASSERT_TRUE(store.CreateAccount({"acc-1", kT0}).ok());
  ASSERT_TRUE(store.CreateAccount({"acc-2", kT0 + Millis(1)}).ok());
  ASSERT_TRUE(store.CreateSubaccount({"sub-1", "acc-1", kT0 + Millis(2)}).ok());
  ASSERT_TRUE(store.CreateSubaccount({"sub-2", "acc-2", kT0 + Millis(3)}).ok());
  ASSERT_TRUE(
      store.CreateChannel({"ch-1", "sub-1", "pn-1", false, LimitsProfile::kProduction, kT0}).ok());
  ASSERT_TRUE(
      store.CreateChannel({"ch-2", "sub-2", "pn-2", true, LimitsProfile::kSandbox, kT0 + Millis(4)})
          .ok());
  ASSERT_TRUE(store.SetCallbackPermission("ch-1", true).ok());
  ASSERT_TRUE(store.AddApiKey(Key("key-1", "acc-1", 0xab)).ok());
  ASSERT_TRUE(store.AddApiKey(Key("key-2", "acc-2", 0xcd)).ok());
  ASSERT_TRUE(store.RevokeApiKey("key-2", kT0 + Millis(50)).ok());

  TenantSnapshot expected;
  expected.accounts = {{"acc-1", {"acc-1", kT0}}, {"acc-2", {"acc-2", kT0 + Millis(1)}}};
  expected.subaccounts = {{"sub-1", {"sub-1", "acc-1", kT0 + Millis(2)}},
                          {"sub-2", {"sub-2", "acc-2", kT0 + Millis(3)}}};
  expected.channels = {
      {"ch-1", {"ch-1", "sub-1", "pn-1", true, LimitsProfile::kProduction, kT0}},
      {"ch-2", {"ch-2", "sub-2", "pn-2", true, LimitsProfile::kSandbox, kT0 + Millis(4)}}};
  expected.channel_by_phone_number_id = {{"pn-1", "ch-1"}, {"pn-2", "ch-2"}};
  expected.api_keys = {{"key-1", Key("key-1", "acc-1", 0xab)},
                       {"key-2", Key("key-2", "acc-2", 0xcd)}};
  expected.api_keys["key-2"].revoked_at = kT0 + Millis(50);

  auto tenants = store.LoadTenants();
  ASSERT_TRUE(tenants.ok());
  EXPECT_EQ(Describe(*tenants), Describe(expected));
}

// --- Pairs -----------------------------------------------------------------------------------

TYPED_TEST(StoreContractTest, NeverWrittenPairLoadsEmpty) {
  auto state = this->store().LoadPair(kPair);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, PairState{});
  EXPECT_EQ(*state, PairState{});
  EXPECT_TRUE(HistoryOrFail(this->store(), kPair).empty());
}

TYPED_TEST(StoreContractTest, UpdatePairStoresWhatTheMutationMade) {
  const std::vector<Event> events = {
      PermissionRequested{.request_id = "req-1", .at = kT0},
      PermissionReplied{.message_id = "wamid-1",
                        .at = kT0 + Millis(10),
                        .accepted = true,
                        .expires_at = kT0 + kDays7},
      CallConnected{.call_id = "wacid-1", .at = kT0 + Millis(20)},
      CallTerminated{.call_id = "wacid-1",
                     .at = kT0 + Millis(30),
                     .picked_up = true,
                     .started_at = kT0 + Millis(21)},
      CallbackGranted{.call_id = "wacid-2", .at = kT0 + Millis(40)},
  };
  PairState expected;
  for (const Event& event : events) {
    ASSERT_EQ(Apply(expected, event, kProfile), ApplyOutcome::kApplied);
  }

  const StoreStatus status =
      UpdatePairSync(this->store(), kPair, [&events](PairState& state, auto&) {
        for (const Event& event : events) static_cast<void>(Apply(state, event, kProfile));
        return true;
      });
  ASSERT_TRUE(status.ok()) << StoreErrorName(status.error());
  EXPECT_EQ(LoadOrFail(this->store(), kPair), expected);
}

TYPED_TEST(StoreContractTest, UpdatePairMutationStartsFromTheStoredState) {
  ASSERT_TRUE(UpdatePairSync(this->store(), kPair, Request("req-1", kT0)).ok());
  const PairState seen = SeenByNextMutation(this->store(), kPair);
  EXPECT_EQ(seen.requests.size(), 1u);
  EXPECT_TRUE(seen.requests.contains("req-1"));
}

TYPED_TEST(StoreContractTest, RefusedMutationChangesNothing) {
  ASSERT_TRUE(UpdatePairSync(this->store(), kPair, Request("req-1", kT0)).ok());
  const PairState state_before = LoadOrFail(this->store(), kPair);
  const auto history_before = HistoryOrFail(this->store(), kPair);
  ASSERT_EQ(history_before.size(), 1u);

  const StoreStatus status =
      UpdatePairSync(this->store(), kPair, [](PairState& state, std::vector<HistoryEntry>& h) {
        static_cast<void>(Apply(
            state, PermissionRequested{.request_id = "req-2", .at = kT0 + Millis(1)}, kProfile));
        state.base.consecutive_unanswered = 3;
        h.push_back(Entry(PermissionRequested{.request_id = "req-2", .at = kT0 + Millis(1)}));
        return false;
      });
  ASSERT_TRUE(status.ok()) << StoreErrorName(status.error());

  EXPECT_EQ(LoadOrFail(this->store(), kPair), state_before);
  const auto history_after = HistoryOrFail(this->store(), kPair);
  ASSERT_EQ(history_after.size(), history_before.size());
  EXPECT_EQ(Fields(history_after[0]), Fields(history_before[0]));
  EXPECT_EQ(history_after[0].seq, history_before[0].seq);
  // Nor does the next mutation in this process see it (a backend that keeps the pair's state
  // between operations must not keep what was refused).
  EXPECT_EQ(SeenByNextMutation(this->store(), kPair), state_before);
}

TYPED_TEST(StoreContractTest, RefusedFirstMutationLeavesPairNeverWritten) {
  ASSERT_TRUE(UpdatePairSync(this->store(), kPair, [](PairState& state, auto& h) {
                static_cast<void>(
                    Apply(state, PermissionRequested{.request_id = "req-1", .at = kT0}, kProfile));
                h.push_back(Entry(PermissionRequested{.request_id = "req-1", .at = kT0}));
                return false;
              }).ok());
  EXPECT_EQ(LoadOrFail(this->store(), kPair), PairState{});
  EXPECT_TRUE(HistoryOrFail(this->store(), kPair).empty());
}

TYPED_TEST(StoreContractTest, HistoryKeepsOneEntryPerEventKey) {
  auto append = [](const HistoryEntry& entry) {
    return [entry](PairState&, std::vector<HistoryEntry>& h) {
      h.push_back(entry);
      return true;
    };
  };
  // Two reports of the same call's end (same key), told apart by their times.
  const HistoryEntry first = Entry(CallTerminated{.call_id = "wacid-1", .at = kT0});
  const HistoryEntry again = Entry(CallTerminated{.call_id = "wacid-1", .at = kT0 + Millis(1)});
  ASSERT_EQ(again.event_key, first.event_key);
  ASSERT_TRUE(UpdatePairSync(this->store(), kPair, append(first)).ok());
  ASSERT_TRUE(UpdatePairSync(this->store(), kPair, append(again)).ok());

  const auto history = HistoryOrFail(this->store(), kPair);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(Fields(history[0]), Fields(first));  // the first one stays
}

TYPED_TEST(StoreContractTest, HistoryKeepsOneEntryPerEventKeyWithinOneUpdate) {
  ASSERT_TRUE(UpdatePairSync(this->store(), kPair, [](PairState&, std::vector<HistoryEntry>& h) {
                h.push_back(Entry(CallTerminated{.call_id = "wacid-1", .at = kT0}));
                h.push_back(Entry(CallTerminated{.call_id = "wacid-1", .at = kT0 + Millis(1)}));
                h.push_back(Entry(CallConnected{.call_id = "wacid-1", .at = kT0}));
                return true;
              }).ok());
  const auto history = HistoryOrFail(this->store(), kPair);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(Fields(history[0]), Fields(Entry(CallConnected{.call_id = "wacid-1", .at = kT0})));
  EXPECT_EQ(Fields(history[1]), Fields(Entry(CallTerminated{.call_id = "wacid-1", .at = kT0})));
}

TYPED_TEST(StoreContractTest, SameEventKeyOnAnotherPairIsKept) {
  const PairKey other{"ch-1", UserId::Phone("+15551230002")};
  auto append = [](PairState&, std::vector<HistoryEntry>& h) {
    h.push_back(Entry(PermissionReplied{.message_id = "wamid-1", .at = kT0, .accepted = true}));
    return true;
  };
  ASSERT_TRUE(UpdatePairSync(this->store(), kPair, append).ok());
  ASSERT_TRUE(UpdatePairSync(this->store(), other, append).ok());
  EXPECT_EQ(HistoryOrFail(this->store(), kPair).size(), 1u);
  EXPECT_EQ(HistoryOrFail(this->store(), other).size(), 1u);
}

TYPED_TEST(StoreContractTest, HistoryReturnsEveryFieldOfEveryKindOfEvent) {
  const std::vector<Event> events = EveryEvent();
  ASSERT_TRUE(UpdatePairSync(this->store(), kPair, [&events](PairState&, auto& h) {
                for (const Event& event : events) h.push_back(Entry(event));
                return true;
              }).ok());
  const auto history = HistoryOrFail(this->store(), kPair);
  ASSERT_EQ(history.size(), events.size());
  for (const Event& event : events) {
    const auto it = std::find_if(history.begin(), history.end(), [&](const HistoryEntry& e) {
      return e.event_key == EventKey(event);
    });
    ASSERT_NE(it, history.end()) << EventKey(event);
    EXPECT_TRUE(SameEvent(it->event, event)) << EventKey(event);
    EXPECT_EQ(it->source, EventSource::kWebhook);
  }
}

// Deliveries of the same facts (with repeats that differ in time, source and details) in every
// order leave the same history: one entry per key, the earliest version.
TYPED_TEST(StoreContractTest, HistoryIsTheSameWhateverTheDeliveryOrder) {
  const std::vector<HistoryEntry> deliveries = {
      Entry(CallTerminated{.call_id = "wacid-1", .at = kT0 + Millis(5), .picked_up = true}),
      Entry(CallTerminated{.call_id = "wacid-1",
                           .at = kT0 + Millis(3),
                           .direction = CallDirection::kUserInitiated,
                           .authorization_id = "auth-1"},
            EventSource::kApi),
      Entry(PermissionReplied{.message_id = "wamid.AAAA", .at = kT0, .accepted = true}),
      Entry(PermissionReplied{.message_id = "wamid.AAAA", .at = kT0 + Millis(1)},
            EventSource::kApi),
      Entry(PermissionRequested{.request_id = "5a61b97b-2c3d-4e5f-8a9b-0c1d2e3f4a5b", .at = kT0}),
  };
  std::vector<std::size_t> order(deliveries.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::vector<std::vector<HistoryEntry>> histories;
  int pair = 0;
  do {
    const PairKey key{"ch-1", UserId::Phone("+1555000" + std::to_string(1000 + pair++))};
    for (const std::size_t i : order) {
      ASSERT_TRUE(UpdatePairSync(this->store(), key, [e = deliveries[i]](PairState&, auto& h) {
                    h.push_back(e);
                    return true;
                  }).ok());
    }
    auto history = HistoryOrFail(this->store(), key);
    std::sort(history.begin(), history.end(), [](const HistoryEntry& a, const HistoryEntry& b) {
      return a.event_key < b.event_key;
    });
    histories.push_back(std::move(history));
  } while (std::next_permutation(order.begin(), order.end()));

  // By key: reply:, req:, terminate:.
  const std::vector<HistoryEntry> expected = {deliveries[2], deliveries[4], deliveries[1]};
  for (const auto& history : histories) {
    ASSERT_EQ(history.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(Fields(history[i]), Fields(expected[i]));
      EXPECT_TRUE(SameEvent(history[i].event, expected[i].event)) << history[i].event_key;
    }
  }
}

// Stores may derive the key they keep from the event, so an entry claiming another key is
// refused rather than stored under a key its reader would not recognise.
TYPED_TEST(StoreContractTest, EntryWhoseKeyIsNotItsEventsIsRefused) {
  const StoreStatus status = UpdatePairSync(this->store(), kPair, [](PairState& state, auto& h) {
    const Event event = PermissionRequested{.request_id = "req-1", .at = kT0};
    static_cast<void>(Apply(state, event, kProfile));
    h.push_back({.event_key = "req:another", .source = EventSource::kApi, .event = event});
    return true;
  });
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error(), StoreError::kInvalid);
  EXPECT_EQ(LoadOrFail(this->store(), kPair), PairState{});
  EXPECT_TRUE(HistoryOrFail(this->store(), kPair).empty());
  EXPECT_EQ(SeenByNextMutation(this->store(), kPair), PairState{});
}

// LoadHistoryUntil: latest first by event time, at most up to `until`, `count` entries plus any
// others at the time of the last one (equal times are never split), other pairs unseen.
TYPED_TEST(StoreContractTest, LoadHistoryUntilCutsByTimeWithoutSplittingEqualTimes) {
  // Times (ms after kT0) of ten entries: three share 5, two share 2.
  const std::vector<int> times = {0, 1, 2, 2, 3, 5, 5, 5, 7, 9};
  for (std::size_t i = 0; i < times.size(); ++i) {
    const HistoryEntry e = Entry(PermissionRequested{.request_id = "req-" + std::to_string(i),
                                                     .at = kT0 + Millis(times[i])});
    ASSERT_TRUE(UpdatePairSync(this->store(), kPair, [e](PairState&, auto& h) {
                  h.push_back(e);
                  return true;
                }).ok());
  }
  ASSERT_TRUE(UpdatePairSync(this->store(), PairKey{"ch-2", kPair.user}, [](PairState&, auto& h) {
                h.push_back(
                    Entry(PermissionRequested{.request_id = "other", .at = kT0 + Millis(8)}));
                return true;
              }).ok());
  auto times_of = [&](Instant until, int count) {
    auto entries = this->store().LoadHistoryUntil(kPair, until, count);
    EXPECT_TRUE(entries.ok());
    std::vector<int> out;
    if (!entries.ok()) return out;
    for (const HistoryEntry& e : *entries) {
      out.push_back(static_cast<int>((EventTime(e.event) - kT0).count()));
    }
    return out;
  };
  const Instant end = kT0 + Millis(100);
  EXPECT_EQ(times_of(end, 100), (std::vector<int>{9, 7, 5, 5, 5, 3, 2, 2, 1, 0}));
  EXPECT_EQ(times_of(end, 2), (std::vector<int>{9, 7}));
  EXPECT_EQ(times_of(end, 3), (std::vector<int>{9, 7, 5, 5, 5}));        // 5s are not split
  EXPECT_EQ(times_of(kT0 + Millis(5), 1), (std::vector<int>{5, 5, 5}));  // until is inclusive
  EXPECT_EQ(times_of(kT0 + Millis(4), 2), (std::vector<int>{3, 2, 2}));
  EXPECT_EQ(times_of(kT0 - Millis(1), 5), std::vector<int>{});
  EXPECT_EQ(times_of(end, 0), std::vector<int>{});
  auto unknown = this->store().LoadHistoryUntil(PairKey{"ch-9", kPair.user}, end, 5);
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(unknown->empty());
}

TYPED_TEST(StoreContractTest, LoadHistoryIsNewestFirstAndPaginates) {
  std::vector<HistoryEntry> written;
  for (int i = 0; i < 10; ++i) {
    const EventSource source = i % 2 == 0 ? EventSource::kWebhook : EventSource::kApi;
    const HistoryEntry e =
        Entry(PermissionRequested{.request_id = "req-" + std::to_string(i), .at = kT0 + Millis(i)},
              source);
    written.push_back(e);
    ASSERT_TRUE(UpdatePairSync(this->store(), kPair, [e](PairState&, auto& h) {
                  h.push_back(e);
                  return true;
                }).ok());
  }
  // Noise on another pair, interleaved in seq order, must not show up.
  ASSERT_TRUE(UpdatePairSync(this->store(), PairKey{"ch-2", kPair.user}, [](PairState&, auto& h) {
                h.push_back(Entry(PermissionRequested{.request_id = "other", .at = kT0}));
                return true;
              }).ok());

  const auto all = HistoryOrFail(this->store(), kPair);
  ASSERT_EQ(all.size(), 10u);
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(Fields(all[i]), Fields(written[9 - i])) << "position " << i;
    if (i > 0) {
      EXPECT_LT(all[i].seq, all[i - 1].seq);
    }
  }

  // Pages of 4 following before_seq reproduce the whole list, then run dry.
  std::vector<HistoryEntry> paged;
  std::int64_t before = 0;
  std::vector<std::size_t> page_sizes;
  for (;;) {
    const auto page = HistoryOrFail(this->store(), kPair, before, 4);
    if (page.empty()) break;
    page_sizes.push_back(page.size());
    paged.insert(paged.end(), page.begin(), page.end());
    before = page.back().seq;
    ASSERT_LE(page_sizes.size(), 10u) << "pagination does not terminate";
  }
  EXPECT_EQ(page_sizes, (std::vector<std::size_t>{4, 4, 2}));
  ASSERT_EQ(paged.size(), all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(paged[i].seq, all[i].seq);
    EXPECT_EQ(Fields(paged[i]), Fields(all[i]));
  }

  // before_seq is exclusive.
  const auto after_third = HistoryOrFail(this->store(), kPair, all[2].seq, 100);
  ASSERT_EQ(after_third.size(), 7u);
  EXPECT_EQ(after_third.front().seq, all[3].seq);
}

// --- Idempotency records ---------------------------------------------------------------------

TYPED_TEST(StoreContractTest, IdempotencyRecordIsKeptBesideThePairAndFoundUnderItsKey) {
  EXPECT_EQ(UpdateUnderKey(this->store(), kPair, "calls:k1", RequestOnce("r1", kT0)), std::nullopt);
  const IdempotencyRecord want{kT0, "r1"};
  EXPECT_EQ(UpdateUnderKey(this->store(), kPair, "calls:k1", RequestOnce("r2", kT0)), want);
  // Another key, and the same key on another pair, have none.
  EXPECT_EQ(UpdateUnderKey(this->store(), kPair, "calls:k2", RequestOnce("r3", kT0)), std::nullopt);
  const PairKey other{"ch-1", UserId::Phone("+15551230002")};
  EXPECT_EQ(UpdateUnderKey(this->store(), other, "calls:k1", RequestOnce("r4", kT0)), std::nullopt);
  // The state has what the mutations recorded, and nothing of the records.
  PairState expected;
  ASSERT_EQ(Apply(expected, PermissionRequested{"r1", kT0}, LimitsProfile::kProduction),
            ApplyOutcome::kApplied);
  ASSERT_EQ(Apply(expected, PermissionRequested{"r3", kT0}, LimitsProfile::kProduction),
            ApplyOutcome::kApplied);
  EXPECT_EQ(LoadOrFail(this->store(), kPair), expected);
  // Without a key, a mutation sees none (and one it sets is not kept).
  EXPECT_EQ(UpdateUnderKey(this->store(), kPair, "", RequestOnce("r5", kT0)), std::nullopt);
  EXPECT_EQ(UpdateUnderKey(this->store(), kPair, "", RequestOnce("r6", kT0)), std::nullopt);
}

TYPED_TEST(StoreContractTest, RefusedMutationKeepsNoRecord) {
  auto refuse = [](PairState&, std::vector<HistoryEntry>&,
                   std::optional<IdempotencyRecord>& record) {
    record = IdempotencyRecord{kT0, "refused"};
    return false;
  };
  EXPECT_EQ(UpdateUnderKey(this->store(), kPair, "calls:k", refuse), std::nullopt);
  EXPECT_EQ(UpdateUnderKey(this->store(), kPair, "calls:k", RequestOnce("r1", kT0)), std::nullopt);
  const IdempotencyRecord want{kT0, "r1"};
  EXPECT_EQ(UpdateUnderKey(this->store(), kPair, "calls:k", refuse), want);
}

TYPED_TEST(StoreContractTest, ConcurrentUpdatesUnderOneKeyKeepOneRecord) {
  constexpr int kThreads = 8;
  std::vector<std::optional<IdempotencyRecord>> found(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      found[t] = UpdateUnderKey(this->store(), kPair, "calls:same",
                                RequestOnce("t" + std::to_string(t), kT0 + Millis(t)));
    });
  }
  for (std::thread& thread : threads) thread.join();
  // One update kept its record and request; every other one found that record.
  const PairState state = LoadOrFail(this->store(), kPair);
  ASSERT_EQ(state.requests.size(), 1u);
  const std::string winner = state.requests.begin()->first;
  int saw_none = 0;
  for (const auto& record : found) {
    if (!record) {
      ++saw_none;
    } else {
      EXPECT_EQ(record->result_id, winner);
    }
  }
  EXPECT_EQ(saw_none, 1);
}

TYPED_TEST(StoreContractTest, ConcurrentUpdatesOnOnePairLoseNothing) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!UpdatePairSync(this->store(), kPair, Request(id, kT0 + Millis(t * kPerThread + i)))
                 .ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);

  const PairState state = LoadOrFail(this->store(), kPair);
  EXPECT_EQ(state.requests.size(), static_cast<std::size_t>(kThreads * kPerThread));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
      EXPECT_TRUE(state.requests.contains(id)) << id << " lost";
    }
  }
  EXPECT_EQ(HistoryOrFail(this->store(), kPair).size(),
            static_cast<std::size_t>(kThreads * kPerThread));
}

TYPED_TEST(StoreContractTest, UpdatesToDifferentPairsDoNotInterfere) {
  const std::vector<PairKey> pairs = {{"ch-1", UserId::Phone("+15551230001")},
                                      {"ch-1", UserId::Phone("+15551230002")},
                                      {"ch-2", UserId::Phone("+15551230001")}};
  constexpr int kPerPair = 100;
  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < pairs.size(); ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerPair; ++i) {
        const std::string id = "p" + std::to_string(p) + "-" + std::to_string(i);
        EXPECT_TRUE(UpdatePairSync(this->store(), pairs[p], Request(id, kT0 + Millis(i))).ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  for (std::size_t p = 0; p < pairs.size(); ++p) {
    const PairState state = LoadOrFail(this->store(), pairs[p]);
    EXPECT_EQ(state.requests.size(), static_cast<std::size_t>(kPerPair)) << "pair " << p;
    for (const auto& [id, at] : state.requests) {
      EXPECT_TRUE(id.starts_with("p" + std::to_string(p) + "-")) << id << " in pair " << p;
    }
    const auto history = HistoryOrFail(this->store(), pairs[p]);
    EXPECT_EQ(history.size(), static_cast<std::size_t>(kPerPair)) << "pair " << p;
    for (const HistoryEntry& e : history) {
      EXPECT_TRUE(EventId(e.event).starts_with("p" + std::to_string(p) + "-"))
          << e.event_key << " in pair " << p;
    }
  }
}

TYPED_TEST(StoreContractTest, DoneIsCalledExactlyOncePerUpdate) {
  constexpr int kUpdates = 300;
  std::vector<std::atomic<int>> calls(kUpdates);
  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;
  int failed = 0;

  // A burst without waiting, so a backend that batches sees the same pair many times in one
  // batch; every third mutation refuses, and those must be answered too.
  for (int i = 0; i < kUpdates; ++i) {
    const PairKey& key = i % 2 == 0 ? kPair : PairKey{"ch-1", UserId::Phone("+15551230002")};
    PairMutation mutation = Request("req-" + std::to_string(i), kT0 + Millis(i));
    if (i % 3 == 0) mutation = [](PairState&, auto&) { return false; };
    this->store().Update(key, std::move(mutation), [&, i](StoreStatus status) {
      calls[i].fetch_add(1);
      std::lock_guard lock(mu);
      ++finished;
      if (!status.ok()) ++failed;
      cv.notify_all();
    });
  }
  bool all_arrived;
  {
    std::unique_lock lock(mu);
    all_arrived = cv.wait_for(lock, std::chrono::seconds(60), [&] { return finished >= kUpdates; });
  }
  EXPECT_TRUE(all_arrived) << "callbacks missing after 60 s";
  const PairState even = LoadOrFail(this->store(), kPair);
  const PairState odd = LoadOrFail(this->store(), PairKey{"ch-1", UserId::Phone("+15551230002")});
  // Closing drains every queued update, so no late second call can hide, and no callback
  // outlives the locals it refers to.
  this->store_.reset();

  for (int i = 0; i < kUpdates; ++i) EXPECT_EQ(calls[i].load(), 1) << "update " << i;
  EXPECT_EQ(failed, 0);
  for (int i = 0; i < kUpdates; ++i) {
    const bool applied = i % 3 != 0;
    const PairState& state = i % 2 == 0 ? even : odd;
    EXPECT_EQ(state.requests.contains("req-" + std::to_string(i)), applied) << i;
  }
}

// --- User links (docs/rules.md §7) -------------------------------------------------------------

StoreStatus LinkSync(PairStore& store, UserLink link) {
  std::promise<StoreStatus> promise;
  auto future = promise.get_future();
  store.LinkUser(std::move(link), [&promise](StoreStatus status) { promise.set_value(status); });
  return future.get();
}

std::set<std::string> HistoryKeys(PairStore& store, const PairKey& key) {
  std::set<std::string> keys;
  for (const HistoryEntry& e : HistoryOrFail(store, key)) keys.insert(e.event_key);
  return keys;
}

const UserId kPhone = UserId::Phone("+15551230001");
const UserId kBsuid = UserId::Bsuid("US.1001");
const UserId kParent = UserId::Bsuid("US.ENT.1001");

TYPED_TEST(StoreContractTest, ALinkMergesThePairsHeldUnderEachIdIntoOne) {
  this->Seed();
  PairStore& store = this->store();
  ASSERT_TRUE(UpdatePairSync(store, {"ch-1", kPhone}, Request("r1", kT0)).ok());
  ASSERT_TRUE(UpdatePairSync(store, {"ch-1", kBsuid}, Request("r2", kT0 + Millis(1))).ok());
  ASSERT_TRUE(LinkSync(store, {"ch-1", {kPhone, kBsuid}}).ok());
  const PairState by_phone = LoadOrFail(store, {"ch-1", kPhone});
  EXPECT_EQ(by_phone.requests.size(), 2u);
  EXPECT_EQ(LoadOrFail(store, {"ch-1", kBsuid}), by_phone);
  const std::set<std::string> both = {RequestKey("r1"), RequestKey("r2")};
  EXPECT_EQ(HistoryKeys(store, {"ch-1", kPhone}), both);
  EXPECT_EQ(HistoryKeys(store, {"ch-1", kBsuid}), both);
  // The same as one pair that received both.
  PairState one;
  std::vector<HistoryEntry> ignored;
  Request("r1", kT0)(one, ignored);
  Request("r2", kT0 + Millis(1))(one, ignored);
  EXPECT_EQ(by_phone, one);
  // Linking again changes nothing.
  ASSERT_TRUE(LinkSync(store, {"ch-1", {kBsuid, kPhone}}).ok());
  EXPECT_EQ(LoadOrFail(store, {"ch-1", kBsuid}), by_phone);
}

TYPED_TEST(StoreContractTest, AfterALinkEveryIdReachesOnePairOnEveryChannelOfTheAccount) {
  this->Seed();
  PairStore& store = this->store();
  ASSERT_TRUE(this->store()
                  .CreateChannel({"ch-2", "sub-1", "pn-2", false, LimitsProfile::kProduction, kT0})
                  .ok());
  ASSERT_TRUE(LinkSync(store, {"ch-1", {kPhone, kBsuid, kParent}}).ok());
  // Learnt on ch-1, honoured on ch-2: writes by the BSUID read by the phone number.
  ASSERT_TRUE(UpdatePairSync(store, {"ch-2", kBsuid}, Request("r1", kT0)).ok());
  ASSERT_TRUE(UpdatePairSync(store, {"ch-2", kParent}, Request("r2", kT0)).ok());
  EXPECT_EQ(LoadOrFail(store, {"ch-2", kPhone}).requests.size(), 2u);
  EXPECT_EQ(HistoryKeys(store, {"ch-2", kPhone}).size(), 2u);
  EXPECT_TRUE(LoadOrFail(store, {"ch-1", kPhone}).requests.empty());
  // A rotation: the new BSUID joins the same user.
  const UserId rotated = UserId::Bsuid("US.2002");
  ASSERT_TRUE(LinkSync(store, {"ch-2", {kBsuid, rotated}}).ok());
  EXPECT_EQ(LoadOrFail(store, {"ch-2", rotated}).requests.size(), 2u);
  EXPECT_EQ(LoadOrFail(store, {"ch-2", kBsuid}).requests.size(), 2u);
}

TYPED_TEST(StoreContractTest, LinksHoldWithinOneAccount) {
  this->Seed();
  PairStore& store = this->store();
  ASSERT_TRUE(this->store().CreateAccount({"acc-2", kT0}).ok());
  ASSERT_TRUE(this->store().CreateSubaccount({"sub-2", "acc-2", kT0}).ok());
  ASSERT_TRUE(this->store()
                  .CreateChannel({"ch-9", "sub-2", "pn-9", false, LimitsProfile::kProduction, kT0})
                  .ok());
  ASSERT_TRUE(LinkSync(store, {"ch-1", {kPhone, kBsuid}}).ok());
  ASSERT_TRUE(UpdatePairSync(store, {"ch-9", kBsuid}, Request("r1", kT0)).ok());
  EXPECT_TRUE(LoadOrFail(store, {"ch-9", kPhone}).requests.empty());
  EXPECT_EQ(LoadOrFail(store, {"ch-9", kBsuid}).requests.size(), 1u);
}

TYPED_TEST(StoreContractTest, LinkingBeforeOrAfterTheEventsGivesTheSameStateAndHistory) {
  this->Seed();
  PairStore& store = this->store();
  const UserId phone2 = UserId::Phone("+15551230002"), bsuid2 = UserId::Bsuid("US.1002");
  // User 1: events under each id, then the link. User 2: the link, then the same events.
  ASSERT_TRUE(UpdatePairSync(store, {"ch-1", kBsuid}, Request("r1", kT0 + Millis(5))).ok());
  ASSERT_TRUE(UpdatePairSync(store, {"ch-1", kPhone}, Request("r2", kT0)).ok());
  ASSERT_TRUE(LinkSync(store, {"ch-1", {kBsuid, kPhone}}).ok());
  ASSERT_TRUE(LinkSync(store, {"ch-1", {phone2, bsuid2}}).ok());
  ASSERT_TRUE(UpdatePairSync(store, {"ch-1", phone2}, Request("r2", kT0)).ok());
  ASSERT_TRUE(UpdatePairSync(store, {"ch-1", bsuid2}, Request("r1", kT0 + Millis(5))).ok());
  EXPECT_EQ(LoadOrFail(store, {"ch-1", kBsuid}), LoadOrFail(store, {"ch-1", bsuid2}));
  auto fields = [&](const PairKey& key) {
    std::vector<decltype(Fields(std::declval<HistoryEntry>()))> out;
    for (const HistoryEntry& e : HistoryOrFail(store, key)) out.push_back(Fields(e));
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(fields({"ch-1", kBsuid}), fields({"ch-1", bsuid2}));
}

TYPED_TEST(StoreContractTest, IdempotencyRecordsSurviveAMerge) {
  this->Seed();
  PairStore& store = this->store();
  EXPECT_EQ(UpdateUnderKey(store, {"ch-1", kBsuid}, "idem-1", RequestOnce("r1", kT0)),
            std::nullopt);
  ASSERT_TRUE(LinkSync(store, {"ch-1", {kPhone, kBsuid}}).ok());
  EXPECT_EQ(UpdateUnderKey(store, {"ch-1", kPhone}, "idem-1", RequestOnce("r9", kT0)),
            (IdempotencyRecord{kT0, "r1"}));
  EXPECT_EQ(LoadOrFail(store, {"ch-1", kPhone}).requests.size(), 1u);
}

TYPED_TEST(StoreContractTest, ConcurrentUpdatesUnderBothIdsAroundALinkAreAllKept) {
  this->Seed();
  PairStore& store = this->store();
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < kEach; ++i) {
        const PairKey key{"ch-1", t % 2 == 0 ? kPhone : kBsuid};
        const std::string id = "r" + std::to_string(t) + "-" + std::to_string(i);
        EXPECT_TRUE(UpdatePairSync(store, key, Request(id, kT0 + Millis(i))).ok());
      }
    });
  }
  threads.emplace_back([&store] { EXPECT_TRUE(LinkSync(store, {"ch-1", {kPhone, kBsuid}}).ok()); });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(LoadOrFail(store, {"ch-1", kPhone}).requests.size(),
            static_cast<std::size_t>(kThreads * kEach));
  EXPECT_EQ(HistoryKeys(store, {"ch-1", kBsuid}).size(),
            static_cast<std::size_t>(kThreads * kEach));
}

// --- Asynchronous reads ----------------------------------------------------------------------

// Waits for `n` callbacks counted in `calls`, up to 60 s; false if they did not all come.
class Arrivals {
 public:
  void Arrive() {
    std::lock_guard lock(mu_);
    ++arrived_;
    cv_.notify_all();
  }
  bool WaitFor(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] { return arrived_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
};

std::string Describe(const StoreResult<PairState>& state) {
  if (!state) return std::string("error ") + std::string(StoreErrorName(state.error()));
  return std::to_string(state->requests.size()) + " requests";
}

// Pair i of `ch-1` holds i % 5 requests.
std::vector<PairKey> WriteVariedPairs(PairStore& store, int n) {
  std::vector<PairKey> keys;
  for (int i = 0; i < n; ++i) {
    const PairKey key{"ch-1", UserId::Phone("+1555124" + std::to_string(1000 + i))};
    for (int r = 0; r < i % 5; ++r) {
      EXPECT_TRUE(UpdatePairSync(
                      store, key,
                      Request("v" + std::to_string(i) + "-" + std::to_string(r), kT0 + Millis(r)))
                      .ok());
    }
    keys.push_back(key);
  }
  return keys;
}

TYPED_TEST(StoreContractTest, AsyncReadsCallBackExactlyOnceWithWhatTheBlockingReadsRead) {
  this->Seed();
  PairStore& store = this->store();
  std::vector<PairKey> keys = WriteVariedPairs(store, 20);
  keys.push_back({"ch-1", UserId::Phone("+15551249999")});  // never written
  const int n = static_cast<int>(keys.size());
  std::vector<std::atomic<int>> calls(2 * n);
  std::vector<StoreResult<PairState>> states(n, StoreError::kUnavailable);
  std::vector<StoreResult<std::vector<HistoryEntry>>> histories(n, StoreError::kUnavailable);
  Arrivals arrivals;
  // All in flight together, none waited for before the next is issued.
  for (int i = 0; i < n; ++i) {
    store.LoadPairAsync(keys[i], [&, i](StoreResult<PairState> state) {
      states[i] = std::move(state);
      calls[i].fetch_add(1);
      arrivals.Arrive();
    });
    store.LoadHistoryUntilAsync(keys[i], kT0 + Millis(2), 2,
                                [&, i](StoreResult<std::vector<HistoryEntry>> entries) {
                                  histories[i] = std::move(entries);
                                  calls[n + i].fetch_add(1);
                                  arrivals.Arrive();
                                });
  }
  ASSERT_TRUE(arrivals.WaitFor(2 * n)) << "callbacks missing after 60 s";
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(states[i].ok()) << i << ": " << Describe(states[i]);
    EXPECT_EQ(*states[i], LoadOrFail(store, keys[i])) << i;
    EXPECT_EQ(states[i]->requests.size(), static_cast<std::size_t>(i < 20 ? i % 5 : 0)) << i;
    ASSERT_TRUE(histories[i].ok()) << i;
    auto blocking = store.LoadHistoryUntil(keys[i], kT0 + Millis(2), 2);
    ASSERT_TRUE(blocking.ok());
    std::vector<std::string> async_keys, blocking_keys;
    for (const HistoryEntry& e : *histories[i]) async_keys.push_back(e.event_key);
    for (const HistoryEntry& e : *blocking) blocking_keys.push_back(e.event_key);
    EXPECT_EQ(async_keys, blocking_keys) << i;
    EXPECT_EQ(async_keys.size(), std::min<std::size_t>(i < 20 ? i % 5 : 0, 2)) << i;
  }
  // Closing drains every read in flight, so no late second call can hide.
  this->store_.reset();
  for (int i = 0; i < 2 * n; ++i) EXPECT_EQ(calls[i].load(), 1) << "read " << i;
}

TYPED_TEST(StoreContractTest, LoadPairsAsyncAnswersEveryKeyInKeyOrder) {
  this->Seed();
  PairStore& store = this->store();
  ASSERT_TRUE(this->store()
                  .CreateChannel({"ch-2", "sub-1", "pn-2", false, LimitsProfile::kProduction, kT0})
                  .ok());
  const std::vector<PairKey> written = WriteVariedPairs(store, 15);
  ASSERT_TRUE(UpdatePairSync(store, {"ch-2", written[0].user}, Request("other", kT0)).ok());
  // Reversed, with a repeat, a pair never written, and one on another channel.
  std::vector<PairKey> keys(written.rbegin(), written.rend());
  keys.push_back(written[4]);
  keys.push_back({"ch-1", UserId::Phone("+15551249999")});
  keys.push_back({"ch-2", written[0].user});
  keys.push_back({"ch-9", written[0].user});  // a channel the store does not know
  std::atomic<int> calls{0};
  std::promise<std::vector<StoreResult<PairState>>> promise;
  store.LoadPairsAsync(keys, [&](std::vector<StoreResult<PairState>> states) {
    calls.fetch_add(1);
    promise.set_value(std::move(states));
  });
  auto future = promise.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  const std::vector<StoreResult<PairState>> states = future.get();
  ASSERT_EQ(states.size(), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(states[i].ok()) << i << ": " << Describe(states[i]);
    EXPECT_EQ(*states[i], LoadOrFail(store, keys[i])) << i;
  }
  EXPECT_EQ(states[0]->requests.size(), 14u % 5);
  EXPECT_EQ(states[15]->requests.size(), 4u);
  EXPECT_TRUE(states[16]->requests.empty());
  EXPECT_TRUE(states[17]->requests.contains("other"));

  // No keys: answered at once, with no states.
  std::promise<std::size_t> none;
  store.LoadPairsAsync({}, [&](std::vector<StoreResult<PairState>> states) {
    calls.fetch_add(1);
    none.set_value(states.size());
  });
  auto none_future = none.get_future();
  ASSERT_EQ(none_future.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_EQ(none_future.get(), 0u);
  this->store_.reset();
  EXPECT_EQ(calls.load(), 2);
}

TYPED_TEST(StoreContractTest, AsyncReadsByAnyIdReachTheLinkedPair) {
  this->Seed();
  PairStore& store = this->store();
  ASSERT_TRUE(UpdatePairSync(store, {"ch-1", kPhone}, Request("r1", kT0)).ok());
  ASSERT_TRUE(UpdatePairSync(store, {"ch-1", kBsuid}, Request("r2", kT0 + Millis(1))).ok());
  ASSERT_TRUE(LinkSync(store, {"ch-1", {kPhone, kBsuid, kParent}}).ok());
  const PairState linked = LoadOrFail(store, {"ch-1", kPhone});
  ASSERT_EQ(linked.requests.size(), 2u);
  const std::vector<PairKey> keys = {{"ch-1", kParent}, {"ch-1", kBsuid}, {"ch-1", kPhone}};
  for (const PairKey& key : keys) {
    std::promise<StoreResult<PairState>> promise;
    store.LoadPairAsync(key, [&](StoreResult<PairState> state) { promise.set_value(state); });
    auto future = promise.get_future();
    ASSERT_EQ(future.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    const StoreResult<PairState> state = future.get();
    ASSERT_TRUE(state.ok()) << key.user.text();
    EXPECT_EQ(*state, linked) << key.user.text();

    std::promise<std::size_t> history;
    store.LoadHistoryUntilAsync(key, Instant::max(), 10,
                                [&](StoreResult<std::vector<HistoryEntry>> entries) {
                                  history.set_value(entries.ok() ? entries->size() : 99);
                                });
    auto history_future = history.get_future();
    ASSERT_EQ(history_future.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    EXPECT_EQ(history_future.get(), 2u) << key.user.text();
  }
  std::promise<std::vector<StoreResult<PairState>>> promise;
  store.LoadPairsAsync(keys, [&](std::vector<StoreResult<PairState>> states) {
    promise.set_value(std::move(states));
  });
  auto future = promise.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  const std::vector<StoreResult<PairState>> states = future.get();
  ASSERT_EQ(states.size(), 3u);
  for (const auto& state : states) {
    ASSERT_TRUE(state.ok());
    EXPECT_EQ(*state, linked);
  }
}

TYPED_TEST(StoreContractTest, ConcurrentAsyncReadsNeverMissAnAcknowledgedWrite) {
  this->Seed();
  PairStore& store = this->store();
  constexpr int kWrites = 60;
  std::atomic<int> acknowledged{0};
  std::atomic<int> issued{0}, stale{0}, failed{0};
  Arrivals arrivals;
  std::thread writer([&] {
    while (issued.load() == 0) std::this_thread::yield();  // the reads overlap the writes
    for (int i = 0; i < kWrites; ++i) {
      EXPECT_TRUE(
          UpdatePairSync(store, kPair, Request("w" + std::to_string(i), kT0 + Millis(i))).ok());
      acknowledged.store(i + 1);
    }
  });
  // Each read must see at least every write acknowledged before it was issued.
  auto check = [&](int floor, const StoreResult<PairState>& state) {
    if (!state.ok()) {
      ++failed;
    } else if (static_cast<int>(state->requests.size()) < floor ||
               state->requests.size() > static_cast<std::size_t>(kWrites)) {
      ++stale;
    }
    arrivals.Arrive();
  };
  do {
    // At most ~64 reads in flight, as a bounded pool of connections would keep.
    if (!arrivals.WaitFor(issued.load() - 64)) {
      ADD_FAILURE() << "callbacks missing after 60 s";
      break;
    }
    const int floor = acknowledged.load();
    issued += 2;
    store.LoadPairAsync(kPair, [&, floor](StoreResult<PairState> state) { check(floor, state); });
    store.LoadPairsAsync({kPair, kPair}, [&, floor](std::vector<StoreResult<PairState>> states) {
      if (states.size() != 2) ++failed;
      for (const auto& state : states) {
        if (!state.ok() || static_cast<int>(state->requests.size()) < floor) ++stale;
      }
      arrivals.Arrive();
    });
    std::this_thread::yield();
  } while (acknowledged.load() < kWrites);
  writer.join();
  ASSERT_TRUE(arrivals.WaitFor(issued.load())) << "callbacks missing after 60 s";
  EXPECT_EQ(stale.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(LoadOrFail(store, kPair).requests.size(), static_cast<std::size_t>(kWrites));
}

}  // namespace
}  // namespace callgate
