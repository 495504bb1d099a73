// The Redis Cluster client against a real cluster: 3 masters + 3 replicas started by
// scripts/redis-cluster.sh (ctest's redis_cluster fixture), named by CALLGATE_TEST_REDIS_CLUSTER
// (seeds) and CALLGATE_TEST_REDIS_CLUSTER_DIR (its pidfiles). Tests that break the cluster
// (stopped nodes, moved slots) repair it before they end, so every test starts on a healthy one.
#include "redis/cluster_client.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace callgate::redis {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

// redis-cli against one node; the output with trailing newlines removed. Arguments are quoted
// for the shell (the tests' own keys and values: no single quotes).
std::string Cli(int port, const std::vector<std::string>& args) {
  std::string command = "redis-cli -h 127.0.0.1 -p " + std::to_string(port);
  for (const std::string& arg : args) command += " '" + arg + "'";
  command += " 2>&1";
  std::string out;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[4096];
    std::size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
    pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// GET on a replica (READONLY first, on the same connection): what it has received so far.
std::string ReplicaGet(int port, const std::string& key) {
  const std::string command = "printf 'READONLY\\nGET " + key +
                              "\\n' | redis-cli -h 127.0.0.1 -p " + std::to_string(port) + " 2>&1";
  std::string out;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[4096];
    std::size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
    pclose(pipe);
  }
  // "OK\n<value>\n": the value is the second line.
  std::istringstream lines(out);
  std::string ok, value;
  std::getline(lines, ok);
  std::getline(lines, value);
  return value;
}

std::string InfoField(int port, const std::string& section, const std::string& field) {
  std::istringstream in(Cli(port, {"INFO", section}));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.starts_with(field + ":")) return line.substr(field.size() + 1);
  }
  return "";
}

struct Node {
  std::string id;
  int port = 0;
  bool master = false;
  std::string master_id;                   // replicas
  std::vector<std::pair<int, int>> slots;  // masters
  bool Owns(int slot) const {
    for (auto [first, last] : slots) {
      if (slot >= first && slot <= last) return true;
    }
    return false;
  }
};

// CLUSTER NODES as seen by `port`.
std::vector<Node> Nodes(int port) {
  std::vector<Node> nodes;
  std::istringstream in(Cli(port, {"CLUSTER", "NODES"}));
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    Node node;
    std::string address, flags, master, ping, pong, epoch, link;
    fields >> node.id >> address >> flags >> master >> ping >> pong >> epoch >> link;
    if (node.id.empty()) continue;
    node.port = std::atoi(address.substr(address.find(':') + 1).c_str());
    node.master = flags.find("master") != std::string::npos;
    node.master_id = master;
    for (std::string range; fields >> range;) {
      if (range.starts_with("[")) continue;  // a migrating/importing marker
      const std::size_t dash = range.find('-');
      const int first = std::atoi(range.substr(0, dash).c_str());
      const int last =
          dash == std::string::npos ? first : std::atoi(range.substr(dash + 1).c_str());
      node.slots.emplace_back(first, last);
    }
    nodes.push_back(node);
  }
  return nodes;
}

class ClusterClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto seeds = ParseEndpoints(Env("CALLGATE_TEST_REDIS_CLUSTER"));
    ASSERT_TRUE(seeds.ok()) << "CALLGATE_TEST_REDIS_CLUSTER: " << seeds.error()
                            << " (run through ctest, which starts the cluster)";
    seeds_ = *seeds;
    ASSERT_TRUE(WaitHealthy()) << "the cluster is not healthy at the start of the test";
  }

  ClientOptions Options() const {
    ClientOptions options;
    options.seeds = seeds_;
    options.command_timeout = 2000ms;
    options.replica_timeout = 500ms;
    // Long, so that a test decides when the map is stale.
    options.refresh_interval = 60s;
    return options;
  }

  std::unique_ptr<ClusterClient> Client(ClientOptions options) {
    auto client = ClusterClient::Connect(std::move(options));
    EXPECT_TRUE(client.ok()) << client.error();
    return client.ok() ? std::move(client.value()) : nullptr;
  }
  std::unique_ptr<ClusterClient> Client() { return Client(Options()); }

  int AnyPort() const { return seeds_[0].port; }

  Node MasterOf(int slot) const {
    for (const Node& node : Nodes(AnyPort())) {
      if (node.master && node.Owns(slot)) return node;
    }
    ADD_FAILURE() << "no master owns slot " << slot;
    return {};
  }
  Node ReplicaOf(const Node& master) const {
    for (const Node& node : Nodes(AnyPort())) {
      if (!node.master && node.master_id == master.id) return node;
    }
    ADD_FAILURE() << "no replica of " << master.port;
    return {};
  }
  std::vector<Node> Masters() const {
    std::vector<Node> masters;
    for (const Node& node : Nodes(AnyPort())) {
      if (node.master && !node.slots.empty()) masters.push_back(node);
    }
    return masters;
  }

  pid_t PidOf(int port) const {
    std::ifstream in(Env("CALLGATE_TEST_REDIS_CLUSTER_DIR") + "/node-" + std::to_string(port) +
                     "/redis.pid");
    pid_t pid = 0;
    in >> pid;
    EXPECT_GT(pid, 0) << "no pidfile for " << port;
    return pid;
  }

  // Every node says cluster_state:ok, every replica is linked to its master, and every node
  // agrees with the first one about the slot owners.
  bool WaitHealthy(std::chrono::milliseconds limit = 15s) const {
    const auto until = Clock::now() + limit;
    while (Clock::now() < until) {
      bool healthy = true;
      for (const Endpoint& seed : seeds_) {
        if (InfoField(seed.port, "cluster", "cluster_state") != "ok" &&
            Cli(seed.port, {"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos) {
          healthy = false;
          break;
        }
        if (InfoField(seed.port, "replication", "role") == "slave" &&
            InfoField(seed.port, "replication", "master_link_status") != "up") {
          healthy = false;
          break;
        }
      }
      if (healthy) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // Slot migration, as redis-cli --cluster reshard does it.
  void MigrateKeys(int slot, const Node& from, const Node& to) {
    for (int round = 0; round < 100; ++round) {
      std::istringstream keys(
          Cli(from.port, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "100"}));
      std::vector<std::string> args = {"MIGRATE", "127.0.0.1", std::to_string(to.port), "", "0",
                                       "5000",    "KEYS"};
      for (std::string key; std::getline(keys, key);) {
        if (!key.empty()) args.push_back(key);
      }
      if (args.size() == 7) return;
      ASSERT_EQ(Cli(from.port, args), "OK");
    }
  }
  void StartMigration(int slot, const Node& from, const Node& to) {
    ASSERT_EQ(Cli(to.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", from.id}),
              "OK");
    ASSERT_EQ(Cli(from.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", to.id}),
              "OK");
  }
  // Back as before StartMigration: `from` stops migrating (so it takes keys again), the keys
  // return to it, `to` stops importing.
  void CancelMigration(int slot, const Node& from, const Node& to) {
    ASSERT_EQ(Cli(from.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "STABLE"}), "OK");
    MigrateKeys(slot, to, from);
    ASSERT_EQ(Cli(to.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "STABLE"}), "OK");
  }
  // Gives `slot` to `to` everywhere (the target first, then the source, then the others).
  void AssignSlot(int slot, const Node& from, const Node& to) {
    ASSERT_EQ(Cli(to.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to.id}), "OK");
    ASSERT_EQ(Cli(from.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to.id}), "OK");
    for (const Node& master : Masters()) {
      if (master.id != from.id && master.id != to.id) {
        Cli(master.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to.id});
      }
    }
  }
  void MoveSlot(int slot, const Node& from, const Node& to) {
    StartMigration(slot, from, to);
    MigrateKeys(slot, from, to);
    AssignSlot(slot, from, to);
  }
  // Until every node names `owner` as `slot`'s master.
  bool WaitOwner(int slot, const Node& owner) const {
    const auto until = Clock::now() + 10s;
    while (Clock::now() < until) {
      bool agreed = true;
      for (const Endpoint& node : seeds_) {
        bool owns = false;
        for (const Node& n : Nodes(node.port)) {
          if (n.id == owner.id && n.Owns(slot)) owns = true;
        }
        agreed = agreed && owns;
      }
      if (agreed) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  // The other master than `master`.
  Node OtherMaster(const Node& master) const {
    for (const Node& node : Masters()) {
      if (node.id != master.id) return node;
    }
    ADD_FAILURE() << "one master only";
    return {};
  }

  std::vector<Endpoint> seeds_;
};

// A key whose slot is `slot`'s master's; found by trying suffixes.
std::string KeyOnMaster(const Node& master, const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string key = prefix + std::to_string(i);
    if (master.Owns(HashSlot(key))) return key;
  }
}

TEST_F(ClusterClientTest, RoutesEveryKeyToItsSlotsMasterWithoutRedirection) {
  auto client = Client();
  ASSERT_TRUE(client);
  constexpr int kKeys = 2000;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "route:" + std::to_string(i);
    auto set = client->RunSync(key, {"SET", key, "v" + std::to_string(i)}, Durability::kNone);
    ASSERT_TRUE(set.ok()) << set.error().message;
    EXPECT_EQ(set->str, "OK");
  }
  for (int i = 0; i < kKeys; i += 97) {
    const std::string key = "route:" + std::to_string(i);
    auto get = client->RunSync(key, {"GET", key}, Durability::kNone);
    ASSERT_TRUE(get.ok()) << get.error().message;
    EXPECT_EQ(get->type, Reply::Type::kString);
    EXPECT_EQ(get->str, "v" + std::to_string(i));
  }
  // Each master holds exactly the keys of its slots, and all three got some.
  int found = 0;
  for (const Node& master : Masters()) {
    std::istringstream keys(Cli(master.port, {"--scan", "--pattern", "route:*"}));
    int here = 0;
    for (std::string key; std::getline(keys, key);) {
      EXPECT_TRUE(master.Owns(HashSlot(key))) << key << " on " << master.port;
      ++here;
    }
    EXPECT_GT(here, 0) << master.port;
    found += here;
  }
  EXPECT_EQ(found, kKeys);
  EXPECT_EQ(client->stats().moved, 0u);
  EXPECT_EQ(client->stats().asked, 0u);
}

TEST_F(ClusterClientTest, PipelinesTenThousandCommandsAnsweredInOrder) {
  auto client = Client();
  ASSERT_TRUE(client);
  const std::string counter = "pipeline:{counter}";
  ASSERT_TRUE(client->RunSync(counter, {"DEL", counter}, Durability::kNone).ok());
  constexpr int kCommands = 10000;
  std::mutex mutex;
  std::condition_variable all_done;
  std::vector<std::int64_t> values;
  int failures = 0;
  for (int i = 0; i < kCommands; ++i) {
    client->Run(counter, {"INCR", counter}, Durability::kNone, [&](CommandResult result) {
      std::lock_guard lock(mutex);
      if (result.ok() && result->type == Reply::Type::kInteger) {
        values.push_back(result->integer);
      } else {
        ++failures;
      }
      if (values.size() + static_cast<std::size_t>(failures) == kCommands) all_done.notify_one();
    });
  }
  std::unique_lock lock(mutex);
  ASSERT_TRUE(all_done.wait_for(
      lock, 20s, [&] { return values.size() + static_cast<std::size_t>(failures) == kCommands; }));
  EXPECT_EQ(failures, 0);
  // Sent in order on one connection, so answered in order: 1, 2, … 10000.
  for (int i = 0; i < kCommands && i < static_cast<int>(values.size()); ++i) {
    ASSERT_EQ(values[i], i + 1) << "reply " << i;
  }
}

TEST_F(ClusterClientTest, ManyKeysInFlightAtOnceEachGetTheirOwnReply) {
  auto client = Client();
  ASSERT_TRUE(client);
  constexpr int kKeys = 10000;
  std::atomic<int> set_ok{0};
  std::atomic<int> done{0};
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "many:" + std::to_string(i);
    client->Run(key, {"SET", key, std::to_string(i * 7)}, Durability::kNone, [&](CommandResult r) {
      if (r.ok() && r->str == "OK") ++set_ok;
      ++done;
    });
  }
  std::vector<std::string> got(kKeys);
  std::atomic<int> get_done{0};
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "many:" + std::to_string(i);
    client->Run(key, {"GET", key}, Durability::kNone, [&got, &get_done, i](CommandResult r) {
      got[i] = r.ok() ? r->str : "error: " + r.error().message;
      ++get_done;
    });
  }
  const auto until = Clock::now() + 20s;
  while ((done < kKeys || get_done < kKeys) && Clock::now() < until)
    std::this_thread::sleep_for(5ms);
  ASSERT_EQ(get_done.load(), kKeys);
  EXPECT_EQ(set_ok.load(), kKeys);
  for (int i = 0; i < kKeys; ++i) ASSERT_EQ(got[i], std::to_string(i * 7)) << i;
}

TEST_F(ClusterClientTest, ScriptsRunAndAreLoadedAgainAfterAFlush) {
  auto client = Client();
  ASSERT_TRUE(client);
  Script script("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])");
  for (const Endpoint& node : seeds_) Cli(node.port, {"SCRIPT", "FLUSH"});
  auto first = client->RunScriptSync(script, {"script:{a}"}, {"one"}, Durability::kReplica);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->str, "one");
  const auto loads = client->stats().script_loads;
  EXPECT_GE(loads, 1u);
  // Loaded now: no second load.
  auto second = client->RunScriptSync(script, {"script:{a}"}, {"two"}, Durability::kReplica);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->str, "two");
  EXPECT_EQ(client->stats().script_loads, loads);
  // Flushed everywhere (as on a promoted replica): loaded again, transparently.
  for (const Endpoint& node : seeds_) Cli(node.port, {"SCRIPT", "FLUSH"});
  auto third = client->RunScriptSync(script, {"script:{a}"}, {"three"}, Durability::kNone);
  ASSERT_TRUE(third.ok()) << third.error().message;
  EXPECT_EQ(third->str, "three");
  EXPECT_EQ(client->stats().script_loads, loads + 1);
}

TEST_F(ClusterClientTest, AScriptErrorIsAServerErrorWithItsMessage) {
  auto client = Client();
  ASSERT_TRUE(client);
  Script script("return redis.error_reply('ERR conflict at ' .. KEYS[1])");
  auto result =
      client->RunScriptSync(script, {"script:{err}"}, {"secret-argument"}, Durability::kReplica);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, FailureKind::kServerError);
  EXPECT_NE(result.error().message.find("conflict at script:{err}"), std::string::npos)
      << result.error().message;
  EXPECT_EQ(result.error().message.find("secret-argument"), std::string::npos);
}

TEST_F(ClusterClientTest, ADurableWriteIsOnTheReplicaWhenItIsAnswered) {
  auto client = Client();
  ASSERT_TRUE(client);
  const Node master = Masters().front();
  const Node replica = ReplicaOf(master);
  for (int i = 0; i < 20; ++i) {
    const std::string key = KeyOnMaster(master, "durable:" + std::to_string(i) + ":");
    auto set = client->RunSync(key, {"SET", key, "acked"}, Durability::kReplica);
    ASSERT_TRUE(set.ok()) << set.error().message;
    // Read at once, no waiting: WAIT said the replica has it.
    EXPECT_EQ(ReplicaGet(replica.port, key), "acked") << key;
  }
}

TEST_F(ClusterClientTest, RunSyncRefusesToBlockTheClientsOwnThread) {
  auto client = Client();
  ASSERT_TRUE(client);
  std::promise<CommandResult> inner;
  client->Run("sync:{x}", {"PING"}, Durability::kNone, [&](CommandResult) {
    inner.set_value(client->RunSync("sync:{x}", {"PING"}, Durability::kNone));
  });
  auto result = inner.get_future().get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, FailureKind::kUnavailable);
}

TEST_F(ClusterClientTest, ADeadFirstSeedIsSkipped) {
  ClientOptions options = Options();
  options.seeds.insert(options.seeds.begin(), Endpoint{"127.0.0.1", 1});
  auto client = Client(options);
  ASSERT_TRUE(client);
  auto pong = client->RunSync("seed:{x}", {"PING"}, Durability::kNone);
  ASSERT_TRUE(pong.ok()) << pong.error().message;
  EXPECT_EQ(pong->str, "PONG");
}

TEST_F(ClusterClientTest, ConnectSaysWhyNoSeedWouldDo) {
  ClientOptions options = Options();
  options.seeds = {Endpoint{"127.0.0.1", 1}, Endpoint{"127.0.0.1", 2}};
  auto client = ClusterClient::Connect(options);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.error().find("127.0.0.1:1: connect failed"), std::string::npos)
      << client.error();
  EXPECT_NE(client.error().find("127.0.0.1:2: connect failed"), std::string::npos)
      << client.error();
}

TEST_F(ClusterClientTest, FollowsMovedWithAStaleMapThenRoutesDirectly) {
  auto client = Client();
  ASSERT_TRUE(client);
  const std::string key = "moved:{m}";
  const int slot = HashSlot(key);
  ASSERT_TRUE(client->RunSync(key, {"SET", key, "here"}, Durability::kNone).ok());
  const Node from = MasterOf(slot);
  const Node to = OtherMaster(from);
  MoveSlot(slot, from, to);
  // The client still believes `from` serves the slot.
  auto get = client->RunSync(key, {"GET", key}, Durability::kNone);
  ASSERT_TRUE(get.ok()) << get.error().message;
  EXPECT_EQ(get->str, "here");
  EXPECT_EQ(client->stats().moved, 1u);
  // The map learnt it: no second redirection.
  auto again = client->RunSync(key, {"SET", key, "there"}, Durability::kReplica);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(client->stats().moved, 1u);
  EXPECT_EQ(Cli(to.port, {"GET", key}), "there");

  MoveSlot(slot, to, from);
  ASSERT_TRUE(WaitOwner(slot, from));
}

TEST_F(ClusterClientTest, FollowsAskDuringAMigrationWithoutChangingTheMap) {
  auto client = Client();
  ASSERT_TRUE(client);
  const std::string key = "ask:{a}";
  const int slot = HashSlot(key);
  ASSERT_TRUE(client->RunSync(key, {"SET", key, "migrated"}, Durability::kNone).ok());
  const Node from = MasterOf(slot);
  const Node to = OtherMaster(from);
  StartMigration(slot, from, to);
  MigrateKeys(slot, from, to);  // the slot's keys are on `to`, the slot still `from`'s
  auto get = client->RunSync(key, {"GET", key}, Durability::kNone);
  ASSERT_TRUE(get.ok()) << get.error().message;
  EXPECT_EQ(get->str, "migrated");
  EXPECT_EQ(client->stats().asked, 1u);
  // A new key of the slot is created on the importing node too, and the map still says
  // `from`: each command asks again.
  auto set = client->RunSync("new:{a}", {"SET", "new:{a}", "1"}, Durability::kReplica);
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(client->stats().asked, 2u);
  EXPECT_EQ(client->stats().moved, 0u);

  CancelMigration(slot, from, to);
  EXPECT_EQ(Cli(from.port, {"GET", key}), "migrated");
}

TEST_F(ClusterClientTest, RetriesTryAgainUntilTheMigrationEndsWithinTheDeadline) {
  ClientOptions options = Options();
  options.command_timeout = 3000ms;
  auto client = Client(options);
  ASSERT_TRUE(client);
  const std::string a = "try:{t}a", b = "try:{t}b";
  const int slot = HashSlot(a);
  ASSERT_TRUE(client->RunSync(a, {"MSET", a, "1", b, "2"}, Durability::kNone).ok());
  const Node from = MasterOf(slot);
  const Node to = OtherMaster(from);
  StartMigration(slot, from, to);
  // Half the slot's keys moved: a command on both is refused with TRYAGAIN.
  ASSERT_EQ(Cli(from.port, {"MIGRATE", "127.0.0.1", std::to_string(to.port), a, "0", "5000"}),
            "OK");
  std::thread finisher([&] {
    std::this_thread::sleep_for(400ms);
    MigrateKeys(slot, from, to);
    AssignSlot(slot, from, to);
  });
  const auto start = Clock::now();
  auto both = client->RunSync(a, {"MGET", a, b}, Durability::kNone);
  const auto took = Clock::now() - start;
  finisher.join();
  ASSERT_TRUE(both.ok()) << both.error().message;
  ASSERT_EQ(both->elements.size(), 2u);
  EXPECT_EQ(both->elements[0].str, "1");
  EXPECT_EQ(both->elements[1].str, "2");
  EXPECT_GE(took, 350ms);
  EXPECT_GE(client->stats().retries, 1u);

  MoveSlot(slot, to, from);
  ASSERT_TRUE(WaitOwner(slot, from));
}

TEST_F(ClusterClientTest, RefusedUntilTheDeadlineIsUnavailable) {
  ClientOptions options = Options();
  options.command_timeout = 400ms;
  auto client = Client(options);
  ASSERT_TRUE(client);
  const std::string a = "stuck:{s}a", b = "stuck:{s}b";
  const int slot = HashSlot(a);
  ASSERT_TRUE(client->RunSync(a, {"MSET", a, "1", b, "2"}, Durability::kNone).ok());
  const Node from = MasterOf(slot);
  const Node to = OtherMaster(from);
  StartMigration(slot, from, to);
  ASSERT_EQ(Cli(from.port, {"MIGRATE", "127.0.0.1", std::to_string(to.port), a, "0", "5000"}),
            "OK");
  const auto start = Clock::now();
  auto both = client->RunSync(a, {"MGET", a, b}, Durability::kNone);
  const auto took = Clock::now() - start;
  ASSERT_FALSE(both.ok());
  // Every attempt was refused before running: safe to send again.
  EXPECT_EQ(both.error().kind, FailureKind::kUnavailable);
  EXPECT_NE(both.error().message.find("TRYAGAIN"), std::string::npos) << both.error().message;
  EXPECT_GE(took, 390ms);
  EXPECT_LE(took, 400ms + 300ms);
  EXPECT_GE(client->stats().retries, 3u);

  CancelMigration(slot, from, to);
}

// SIGSTOP, then SIGCONT when the scope ends, whatever the test's assertions did.
class Stopped {
 public:
  explicit Stopped(pid_t pid) : pid_(pid) { kill(pid_, SIGSTOP); }
  ~Stopped() { Resume(); }
  void Resume() {
    if (pid_ > 0) kill(pid_, SIGCONT);
    pid_ = 0;
  }

 private:
  pid_t pid_;
};

TEST_F(ClusterClientTest, ACommandOnAStoppedMasterFailsAtItsDeadlineAsUnknownOutcome) {
  ClientOptions options = Options();
  options.command_timeout = 500ms;
  auto client = Client(options);
  ASSERT_TRUE(client);
  const std::string key = "stopped:{m}";
  ASSERT_TRUE(client->RunSync(key, {"SET", key, "1"}, Durability::kNone).ok());
  {
    // Stopped for well under cluster-node-timeout, so no failover starts.
    Stopped stopped(PidOf(MasterOf(HashSlot(key)).port));
    const auto start = Clock::now();
    auto set = client->RunSync(key, {"SET", key, "2"}, Durability::kNone);
    const auto took = Clock::now() - start;
    ASSERT_FALSE(set.ok());
    // Written, never answered: it may have run.
    EXPECT_EQ(set.error().kind, FailureKind::kUnknownOutcome) << set.error().message;
    EXPECT_GE(took, 450ms);
    EXPECT_LE(took, 500ms + 300ms);
  }
  // Back, and so is the client (the late reply is dropped, the pipeline stays in order).
  auto get = client->RunSync(key, {"GET", key}, Durability::kNone);
  ASSERT_TRUE(get.ok()) << get.error().message;
  EXPECT_EQ(get->str, "2");
}

TEST_F(ClusterClientTest, ACappedQueueRefusesTheExcessAsUnavailable) {
  ClientOptions options = Options();
  options.command_timeout = 700ms;
  auto client = Client(options);
  ASSERT_TRUE(client);
  const std::string key = "cap:{c}";
  ASSERT_TRUE(client->RunSync(key, {"SET", key, "1"}, Durability::kNone).ok());
  constexpr int kCommands = 65536 + 500;
  std::atomic<int> unavailable{0}, unknown{0}, other{0};
  std::atomic<int> done{0};
  {
    Stopped stopped(PidOf(MasterOf(HashSlot(key)).port));
    for (int i = 0; i < kCommands; ++i) {
      client->Run(key, {"GET", key}, Durability::kNone, [&](CommandResult r) {
        if (r.ok()) {
          ++other;
        } else if (r.error().kind == FailureKind::kUnavailable) {
          ++unavailable;
        } else if (r.error().kind == FailureKind::kUnknownOutcome) {
          ++unknown;
        } else {
          ++other;
        }
        ++done;
      });
    }
    const auto until = Clock::now() + 5s;
    while (done < kCommands && Clock::now() < until) std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(done.load(), kCommands);
  EXPECT_EQ(unavailable.load(), 500);
  EXPECT_EQ(unknown.load(), 65536);
  EXPECT_EQ(other.load(), 0);
  // The failed commands keep their places on the wire until the node, resumed, answers them
  // (their replies are dropped); then the queue has room again.
  CommandResult get = Failure{FailureKind::kUnavailable, "not tried"};
  for (const auto until = Clock::now() + 3s; !get.ok() && Clock::now() < until;) {
    get = client->RunSync(key, {"GET", key}, Durability::kNone);
    if (!get.ok()) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(get.ok()) << get.error().message;
}

TEST_F(ClusterClientTest, ADurableWriteWithoutAReachableReplicaIsNotReplicated) {
  ClientOptions options = Options();
  options.replica_timeout = 200ms;
  auto client = Client(options);
  ASSERT_TRUE(client);
  const std::string key = "lonely:{r}";
  const Node master = MasterOf(HashSlot(key));
  {
    Stopped stopped(PidOf(ReplicaOf(master).port));
    const auto start = Clock::now();
    auto durable = client->RunSync(key, {"SET", key, "1"}, Durability::kReplica);
    ASSERT_FALSE(durable.ok());
    EXPECT_EQ(durable.error().kind, FailureKind::kNotReplicated) << durable.error().message;
    EXPECT_LT(Clock::now() - start, 1s);
    // Applied on the master all the same (that is what kNotReplicated warns of).
    EXPECT_EQ(Cli(master.port, {"GET", key}), "1");
    // A write that needs no replica is not held back.
    auto plain = client->RunSync(key, {"SET", key, "2"}, Durability::kNone);
    EXPECT_TRUE(plain.ok()) << plain.error().message;
  }
  // The replica is back: durable writes are acknowledged again.
  CommandResult durable = Failure{FailureKind::kUnavailable, "not tried"};
  for (int i = 0; i < 20 && !durable.ok(); ++i) {
    durable = client->RunSync(key, {"SET", key, "3"}, Durability::kReplica);
  }
  EXPECT_TRUE(durable.ok()) << durable.error().message;
}

std::int64_t WaitCalls(int port) {
  std::istringstream in(Cli(port, {"INFO", "commandstats"}));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("cmdstat_wait:calls=")) return std::atoll(line.c_str() + 19);
  }
  return 0;
}

TEST_F(ClusterClientTest, OneWaitCoversManyDurableWrites) {
  auto client = Client();
  ASSERT_TRUE(client);
  const Node master = Masters().front();
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 2000; ++i) {
    std::string key = "group:" + std::to_string(i);
    if (master.Owns(HashSlot(key))) keys.push_back(std::move(key));
  }
  const std::int64_t waits_before = WaitCalls(master.port);
  std::atomic<int> ok{0}, done{0};
  for (const std::string& key : keys) {
    client->Run(key, {"SET", key, "x"}, Durability::kReplica, [&](CommandResult r) {
      if (r.ok()) ++ok;
      ++done;
    });
  }
  const auto until = Clock::now() + 10s;
  while (done < 2000 && Clock::now() < until) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(done.load(), 2000);
  EXPECT_EQ(ok.load(), 2000);
  const std::int64_t waits = WaitCalls(master.port) - waits_before;
  EXPECT_GE(waits, 1);
  EXPECT_LT(waits, 2000 / 4) << "WAITs are not batched";
}

TEST_F(ClusterClientTest, AClosedConnectionIsReopened) {
  auto client = Client();
  ASSERT_TRUE(client);
  const std::string key = "reopen:{o}";
  ASSERT_TRUE(client->RunSync(key, {"SET", key, "1"}, Durability::kNone).ok());
  const Node master = MasterOf(HashSlot(key));
  const auto refreshes = client->stats().map_refreshes;
  EXPECT_NE(Cli(master.port, {"CLIENT", "KILL", "TYPE", "normal"}), "0");
  std::this_thread::sleep_for(100ms);  // the client reads the close before the next command
  auto get = client->RunSync(key, {"GET", key}, Durability::kNone);
  ASSERT_TRUE(get.ok()) << get.error().message;
  EXPECT_EQ(get->str, "1");
  EXPECT_GE(client->stats().connections_lost, 1u);
  // A lost connection may mean a changed cluster: the map was read again.
  EXPECT_GT(client->stats().map_refreshes, refreshes);
}

TEST_F(ClusterClientTest, TheMapIsReadAgainPeriodically) {
  ClientOptions options = Options();
  options.refresh_interval = 200ms;
  auto client = Client(options);
  ASSERT_TRUE(client);
  const auto initial = client->stats().map_refreshes;
  std::this_thread::sleep_for(1100ms);
  const auto read = client->stats().map_refreshes - initial;
  EXPECT_GE(read, 3u);
  EXPECT_LE(read, 6u);
}

TEST_F(ClusterClientTest, DestroyingTheClientAnswersEveryPendingCommandOnce) {
  ClientOptions options = Options();
  options.command_timeout = 10s;
  auto client = Client(options);
  ASSERT_TRUE(client);
  const std::string key = "destroy:{d}";
  ASSERT_TRUE(client->RunSync(key, {"SET", key, "1"}, Durability::kNone).ok());
  std::mutex mutex;
  std::map<int, std::vector<FailureKind>> answers;  // command -> what it was told
  auto record = [&](int i) {
    return [&, i](CommandResult r) {
      std::lock_guard lock(mutex);
      answers[i].push_back(r.ok() ? FailureKind::kServerError : r.error().kind);
    };
  };
  Stopped stopped(PidOf(MasterOf(HashSlot(key)).port));
  for (int i = 0; i < 100; ++i) client->Run(key, {"GET", key}, Durability::kNone, record(i));
  std::this_thread::sleep_for(200ms);  // written by now
  for (int i = 100; i < 200; ++i) client->Run(key, {"GET", key}, Durability::kNone, record(i));
  const auto start = Clock::now();
  client.reset();
  EXPECT_LT(Clock::now() - start, 1s) << "destruction waited for deadlines";
  std::lock_guard lock(mutex);
  ASSERT_EQ(answers.size(), 200u);
  for (auto& [i, kinds] : answers) {
    ASSERT_EQ(kinds.size(), 1u) << i;
    if (i < 100) {
      EXPECT_EQ(kinds[0], FailureKind::kUnknownOutcome) << i;
    } else {
      EXPECT_TRUE(kinds[0] == FailureKind::kUnknownOutcome || kinds[0] == FailureKind::kUnavailable)
          << i;
    }
  }
}

}  // namespace
}  // namespace callgate::redis
