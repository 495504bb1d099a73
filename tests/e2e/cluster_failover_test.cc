// Failover of the Redis Cluster under two real `callgate serve --redis-cluster` processes (issue
// 11): reservation load — call authorisations over many users, a few keep-alive connections per
// process — while the cluster is disturbed (CLUSTER FAILOVER, kill -9 of a master, resharding,
// a stopped replica). Every reply is recorded per user: a 201 was acknowledged, a 429/1056 was
// refused, a 500 (or a broken connection) has an unknown outcome. Afterwards each user's
// start_call PT24H usage, read through the status endpoint, must hold every acknowledged
// authorisation and no more than the limit nor than was possibly applied:
//   201s <= currentUsage <= min(100, 201s + unknown).
// The cluster is the one ctest starts (scripts/redis-cluster.sh, CALLGATE_TEST_REDIS_CLUSTER
// naming all six nodes); each test starts from, and leaves it, whole: 3 masters, 1 replica each.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "child_process.h"
#include "cluster_control.h"
#include "meta_payloads.h"
#include "redis/cluster_client.h"
#include "store/redis/keys.h"
#include "test_server.h"

namespace callgate::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kSecret[] = "s";
const meta::Business kBiz{"106540352242930", "15550783890"};
constexpr char kChannel[] = "chan-fo";
constexpr char kChannelPath[] = "/api/v1/whatsapp/subaccounts/sub-fo/channels/chan-fo";
constexpr int kDailyCalls = 100;  // start_call, PT24H, production limits

// The users: a few hot ones reach their daily limit during a test (so the limit is tested under
// failover), the rest stay below it (so 201s keep coming, and resumption can be seen).
constexpr int kUsers = 200;
constexpr int kHotUsers = 6;
constexpr double kHotShare = 0.3;
constexpr int kConnectionsPerProcess = 4;
constexpr int kRequestsPerSecond = 1500;  // at most, over all connections

// The i-th candidate user: digits of a Singapore mobile number.
std::string User(int i) { return std::to_string(6591100000LL + i); }

// The hash slot of the user's pair in the store's key layout (store/redis/keys.h): which shard a
// user's writes go to. SetUp checks the key exists, so a change of layout fails loudly.
std::string PairKeyOf(const std::string& prefix, const std::string& user) {
  return redis_keys::KeysOf(prefix, PairKey{kChannel, UserId::Phone("+" + user)}).pair;
}
int PairSlot(const std::string& user) { return redis::HashSlot(PairKeyOf("", user)); }

// What became of one call authorisation.
struct Outcome {
  int user = 0;
  int status = 0;  // HTTP status; -1: the connection broke or timed out (outcome unknown)
  int code = 0;    // the 8x8 code of an error body
  Clock::time_point sent;
  Clock::time_point answered;
};
bool Acknowledged(const Outcome& o) { return o.status == 201; }
bool Refused(const Outcome& o) { return o.status == 429 && o.code == 1056; }
bool Unknown(const Outcome& o) { return o.status == 500 || o.status == -1; }

// One keep-alive connection with a deadline on every request (a request stuck behind an outage
// must not hang the test): a timeout or a broken connection is an outcome of its own, and the
// next request reconnects.
class LoadConnection {
 public:
  explicit LoadConnection(unsigned short port) : port_(port) {}

  // Returns status and code, or {-1, 0}.
  std::pair<int, int> Post(const std::string& target, const std::string& authorization,
                           const std::string& body) {
    namespace http = boost::beast::http;
    boost::system::error_code ec;
    if (!stream_) {
      stream_.emplace(io_);
      stream_->expires_after(std::chrono::seconds(3));
      stream_->async_connect(
          boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_),
          [&](boost::system::error_code e) { ec = e; });
      Run();
      if (ec) return Broken();
    }
    http::request<http::string_body> req(http::verb::post, target, 11);
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, authorization);
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::response<http::string_body> res;
    stream_->expires_after(std::chrono::seconds(10));
    http::async_write(*stream_, req, [&](boost::system::error_code e, std::size_t) {
      ec = e;
      if (!e) {
        http::async_read(*stream_, buffer_, res,
                         [&](boost::system::error_code e2, std::size_t) { ec = e2; });
      }
    });
    Run();
    if (ec) return Broken();
    if (!res.keep_alive()) stream_.reset();
    int code = 0;
    if (res.result_int() >= 400) {
      simdjson::dom::parser parser;
      std::int64_t value = 0;
      if (parser.parse(res.body())["code"].get(value) == simdjson::SUCCESS) {
        code = static_cast<int>(value);
      }
    }
    return {static_cast<int>(res.result_int()), code};
  }

 private:
  void Run() {
    io_.restart();
    io_.run();
  }
  std::pair<int, int> Broken() {
    stream_.reset();
    buffer_.clear();
    return {-1, 0};
  }

  unsigned short port_;
  boost::asio::io_context io_;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

// Call authorisations from kConnectionsPerProcess threads per process, each on its own
// connection, at most kRequestsPerSecond in all, until Stop(); every outcome recorded.
class ReservationLoad {
 public:
  ReservationLoad(const std::vector<unsigned short>& ports, std::string key,
                  const std::vector<std::string>& users)
      : key_(key) {
    const int threads = static_cast<int>(ports.size()) * kConnectionsPerProcess;
    const auto interval = std::chrono::microseconds(1'000'000LL * threads / kRequestsPerSecond);
    outcomes_.resize(threads);
    for (int t = 0; t < threads; ++t) {
      workers_.emplace_back([this, t, interval, &users, port = ports[t % ports.size()]] {
        LoadConnection connection(port);
        std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1);
        std::uniform_real_distribution<double> share(0, 1);
        std::uniform_int_distribution<int> hot(0, kHotUsers - 1);
        std::uniform_int_distribution<int> cold(kHotUsers, kUsers - 1);
        auto next = Clock::now();
        while (!stop_) {
          const int user = share(rng) < kHotShare ? hot(rng) : cold(rng);
          Outcome outcome{.user = user, .sent = Clock::now()};
          std::tie(outcome.status, outcome.code) =
              connection.Post(kChannelPath + std::string("/calls"), "Bearer " + key_,
                              R"({"destination":"+)" + users[user] + R"("})");
          outcome.answered = Clock::now();
          outcomes_[t].push_back(outcome);
          if (Acknowledged(outcome)) {
            std::lock_guard lock(mu_);
            last_ack_ = outcome.answered;
          }
          if (Refused(outcome)) ++refused_;
          next += interval;
          if (next > Clock::now()) std::this_thread::sleep_until(next);
        }
      });
    }
  }
  ~ReservationLoad() { Stop(); }

  // Stops the load; every outcome, in no particular order.
  std::vector<Outcome> Stop() {
    stop_ = true;
    for (std::thread& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
    std::vector<Outcome> all;
    for (auto& some : outcomes_) all.insert(all.end(), some.begin(), some.end());
    return all;
  }

  // Waits until the hot users start reaching their limit (a 429/1056), so that the limit is
  // tested through the disturbance that follows.
  bool WaitForRefusal(milliseconds timeout) {
    return ClusterControl::WaitFor(timeout, [&] { return refused_ > 0; });
  }

  // Waits until some authorisation is acknowledged after `after`: the service answers.
  bool WaitForAckAfter(Clock::time_point after, milliseconds timeout) {
    return ClusterControl::WaitFor(timeout, [&] {
      std::lock_guard lock(mu_);
      return last_ack_ > after;
    });
  }

 private:
  std::string key_;
  std::atomic<bool> stop_{false};
  std::vector<std::vector<Outcome>> outcomes_;  // one per worker, written by it alone
  std::vector<std::thread> workers_;
  std::mutex mu_;
  Clock::time_point last_ack_;
  std::atomic<int> refused_{0};
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

class ClusterFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* seeds = std::getenv("CALLGATE_TEST_REDIS_CLUSTER");
    ASSERT_NE(seeds, nullptr) << "CALLGATE_TEST_REDIS_CLUSTER names no cluster (ctest starts "
                                 "one: scripts/redis-cluster.sh)";
    seeds_ = seeds;
    cluster_ = std::make_unique<ClusterControl>(seeds_);
    // Whole, as the previous test left it (or the script started it).
    const std::string wrong = cluster_->WaitHealthy(std::chrono::seconds(30));
    ASSERT_EQ(wrong, "") << "the cluster is not whole before the test";
    node_timeout_ = cluster_->NodeTimeout();
    ASSERT_GT(node_timeout_.count(), 0);

    char dir_template[] = "/tmp/callgate-failover-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    // A key prefix of its own: no test sees another's (or another run's) state.
    prefix_ = "fo" + std::to_string(std::random_device{}()) + ":";
    users_ = ChooseUsers();
    ASSERT_EQ(users_.size(), static_cast<std::size_t>(kUsers));

    Admin({"account", "create", "acct-fo"});
    Admin({"subaccount", "create", "sub-fo", "--account", "acct-fo"});
    Admin({"channel", "create", "chan-fo", "--subaccount", "sub-fo", "--phone-number-id",
           kBiz.phone_number_id});
    key_ = Trim(Admin({"key", "create", "--account", "acct-fo"}));
    ASSERT_EQ(key_.rfind("cgk_", 0), 0u) << key_;

    for (int i = 0; i < 2; ++i) {
      const std::string log = dir_ + "/serve-" + std::to_string(i) + ".log";
      servers_.push_back(std::make_unique<Child>(
          Args({"serve", "--listen", "127.0.0.1:0", "--threads", "2", "--meta-app-secret", kSecret,
                "--log-format", "json", "--access-log", "off"}),
          log));
      logs_.push_back(log);
      const auto line = servers_.back()->ReadLine(std::chrono::seconds(20));
      ASSERT_TRUE(line) << "server " << i << " did not report its address\n" << Logs();
      constexpr std::string_view kPrefix = "callgate listening on http://";
      ASSERT_EQ(line->rfind(kPrefix, 0), 0u) << *line;
      const std::string address = line->substr(kPrefix.size());
      ports_.push_back(
          static_cast<unsigned short>(std::stoi(address.substr(address.rfind(':') + 1))));
    }

    // A permanent permission for every user, by signed webhooks (50 users a delivery), through
    // either process.
    const Instant now = std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
    for (int first = 0; first < kUsers; first += 50) {
      std::vector<meta::Item> grants;
      for (int i = first; i < std::min(kUsers, first + 50); ++i) {
        meta::PermissionReply grant{
            .wamid = "wamid.fo-" + prefix_ + std::to_string(i), .from = users_[i], .at = now};
        grant.is_permanent = true;
        grants.push_back(grant);
      }
      HttpClient client(ports_[(first / 50) % 2]);
      const Reply reply = client.PostWebhook(meta::Batch(kBiz, grants), kSecret);
      ASSERT_EQ(reply.status, 200) << reply.body;
      ASSERT_NE(reply.body.find("\"applied\":" + std::to_string(grants.size())), std::string::npos)
          << reply.body;
    }
    const std::string key = PairKeyOf(prefix_, users_[0]);
    ASSERT_EQ(cluster_->Cli(cluster_->ports()[0], "-c EXISTS '" + key + "'").out, "1")
        << "no key " << key << ": has the store's key layout (store/redis/keys.h) changed?";
  }

  // The users the load spreads over, hot ones first; a test may choose its own.
  virtual std::vector<std::string> ChooseUsers() {
    std::vector<std::string> users;
    for (int i = 0; i < kUsers; ++i) users.push_back(User(i));
    return users;
  }

  // Which users' pairs the master serves.
  std::vector<bool> OnShard(const ClusterNode& master) const {
    std::vector<bool> on(kUsers);
    for (int i = 0; i < kUsers; ++i) on[i] = master.OwnsSlot(PairSlot(users_[i]));
    return on;
  }

  void TearDown() override {
    // SIGTERM first: the log writer writes what it has queued before the process exits (a server
    // killed outright loses those lines, the 500s' among them).
    for (const auto& server : servers_) {
      server->Kill(SIGTERM);
      server->Wait(std::chrono::seconds(20));
    }
    if (HasFailure()) std::cerr << Logs();
    servers_.clear();
    // Whatever a test did to the cluster, the next one gets it whole (or learns why not).
    for (const pid_t pid : stopped_) ::kill(pid, SIGCONT);
    for (const NodeLaunch& launch : killed_) cluster_->Restart(launch);
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::vector<std::string> Args(std::vector<std::string> args) const {
    const std::vector<std::string> store = {"--redis-cluster", seeds_, "--redis-key-prefix",
                                            prefix_};
    args.insert(args.begin() + 1, store.begin(), store.end());
    return args;
  }

  // Runs `callgate admin --redis-cluster … args...` to completion; its stdout.
  std::string Admin(std::vector<std::string> args) {
    args.insert(args.begin(), "admin");
    return RunToCompletion(Args(std::move(args)), dir_ + "/admin.log");
  }

  std::string Logs() const {
    std::ostringstream out;
    for (const std::string& log : logs_) {
      std::string text = ReadFile(log);
      if (text.size() > 8000) text = "…" + text.substr(text.size() - 8000);
      out << "--- " << log << "\n" << text << "\n";
    }
    return out.str();
  }

  // The user's start_call PT24H usage, read through the status endpoint of either process
  // (alternately); -1 if no read succeeds.
  int CurrentUsage(int user) {
    const unsigned short port = ports_[user % ports_.size()];
    Reply reply;
    // The cluster is whole again, but a process may still be learning the new slot map.
    ClusterControl::WaitFor(std::chrono::seconds(5), [&] {
      try {
        HttpClient client(port);
        reply = client.Get(
            std::string(kChannelPath) + "/callPermissions?destination=%2B" + users_[user],
            {{"Authorization", "Bearer " + key_}});
      } catch (const std::exception& e) {
        reply = {-1, "", e.what(), {}};
      }
      return reply.status == 200;
    });
    if (reply.status != 200) {
      ADD_FAILURE() << "status read of user " << user << ": " << reply.status << " " << reply.body;
      return -1;
    }
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(reply.body).get(doc) != simdjson::SUCCESS) return -1;
    for (const auto action : doc["actions"].get_array()) {
      if (std::string_view(action["actionName"].get_string()) != "start_call") continue;
      for (const auto limit : action["limits"].get_array()) {
        if (std::string_view(limit["timePeriod"].get_string()) == "PT24H") {
          return static_cast<int>(std::int64_t(limit["currentUsage"].get_int64()));
        }
      }
    }
    ADD_FAILURE() << "no start_call PT24H usage in " << reply.body;
    return -1;
  }

  // Once `replica` has taken over from the killed node, starts that node again with its own
  // config: it rejoins as the replica the new master needs before it takes writes again
  // (min-replicas-to-write 1). False if the takeover did not happen.
  bool RestartWhenReplaced(const ClusterNode& replica, Clock::time_point* promoted) {
    if (!ClusterControl::WaitFor(
            node_timeout_ * 10, [&] { return cluster_->Info(replica.port, "role") == "master"; })) {
      return false;
    }
    *promoted = Clock::now();
    const bool restarted = cluster_->Restart(killed_.back());
    killed_.pop_back();
    return restarted;
  }

  // The checks every scenario ends with: only 201, 429/1056 and unknown outcomes; for every
  // user, 201s <= currentUsage <= min(100, 201s + unknown). Prints the tally.
  void ExpectNothingAcknowledgedLostAndNoLimitExceeded(const std::vector<Outcome>& outcomes) {
    std::vector<int> acked(kUsers), unknown(kUsers);
    std::map<std::string, int> tally;
    for (const Outcome& o : outcomes) {
      ++tally[std::to_string(o.status) + (o.code ? "/" + std::to_string(o.code) : "")];
      if (Acknowledged(o)) ++acked[o.user];
      if (Unknown(o)) ++unknown[o.user];
      EXPECT_TRUE(Acknowledged(o) || Refused(o) || Unknown(o))
          << "user " << o.user << " answered " << o.status << "/" << o.code;
    }
    std::ostringstream summary;
    for (const auto& [what, n] : tally) summary << " " << what << ": " << n;
    std::cout << "  " << outcomes.size() << " authorisations;" << summary.str() << "\n";
    int total_acked = 0, total_usage = 0, at_limit = 0;
    for (int user = 0; user < kUsers; ++user) {
      const int usage = CurrentUsage(user);
      EXPECT_GE(usage, acked[user]) << "user " << user << ": acknowledged authorisations lost";
      EXPECT_LE(usage, std::min(kDailyCalls, acked[user] + unknown[user]))
          << "user " << user << ": more than the limit, or than was ever possibly applied ("
          << acked[user] << " acknowledged, " << unknown[user] << " unknown)";
      total_acked += acked[user];
      total_usage += usage;
      at_limit += usage == kDailyCalls;
    }
    std::cout << "  " << total_acked << " acknowledged, " << total_usage << " counted; " << at_limit
              << " users at their limit\n";
    // The checks had something to check: acknowledgements, and limits reached under the load.
    EXPECT_GT(total_acked, 0);
    EXPECT_GT(at_limit, 0) << "no user reached the limit: the load was too light to test it";
  }

  // What a shard's users were answered, by the half second in which the requests were sent
  // (from `origin`): for a failure's message.
  static std::string Timeline(const std::vector<Outcome>& outcomes, const std::vector<bool>& users,
                              Clock::time_point origin) {
    std::map<long, std::map<std::string, int>> buckets;
    std::map<long, double> slowest;
    for (const Outcome& o : outcomes) {
      if (!users[o.user]) continue;
      const long bucket = static_cast<long>(std::floor(Seconds(o.sent - origin) * 2));
      ++buckets[bucket][std::to_string(o.status) + (o.code ? "/" + std::to_string(o.code) : "")];
      slowest[bucket] = std::max(slowest[bucket], Seconds(o.answered - o.sent));
    }
    std::ostringstream out;
    out << std::fixed << std::setprecision(1);
    for (const auto& [bucket, tally] : buckets) {
      out << "  sent at " << bucket / 2.0 << " s:";
      for (const auto& [what, n] : tally) out << " " << what << " ×" << n;
      out << " (slowest " << std::setprecision(2) << slowest[bucket] << std::setprecision(1)
          << " s)\n";
    }
    return out.str();
  }

  // Time from `start` to the first 201 answered for a request sent after it (nullopt: none).
  static std::optional<Clock::duration> FirstAckAfter(const std::vector<Outcome>& outcomes,
                                                      Clock::time_point start) {
    std::optional<Clock::time_point> first;
    for (const Outcome& o : outcomes) {
      if (Acknowledged(o) && o.sent >= start && (!first || o.answered < *first)) {
        first = o.answered;
      }
    }
    if (!first) return std::nullopt;
    return *first - start;
  }

  std::string seeds_;
  std::unique_ptr<ClusterControl> cluster_;
  milliseconds node_timeout_{0};
  std::string dir_;
  std::string prefix_;
  std::string key_;
  std::vector<std::string> users_;
  std::vector<std::unique_ptr<Child>> servers_;
  std::vector<std::string> logs_;
  std::vector<unsigned short> ports_;
  std::vector<NodeLaunch> killed_;  // restarted by TearDown if the test did not
  std::vector<pid_t> stopped_;      // sent SIGCONT by TearDown
};

TEST_F(ClusterFailoverTest, ACoordinatedFailoverUnderLoadLosesNothingAndExceedsNoLimit) {
  ReservationLoad load(ports_, key_, users_);
  ASSERT_TRUE(load.WaitForAckAfter(Clock::now(), std::chrono::seconds(5)));
  ASSERT_TRUE(load.WaitForRefusal(std::chrono::seconds(20))) << "no hot user reached the limit";

  const ClusterNode master = cluster_->Masters().at(0);
  const auto replica = cluster_->ReplicaOf(master.id);
  ASSERT_TRUE(replica);
  ASSERT_TRUE(cluster_->Failover(replica->port, std::chrono::seconds(10)))
      << replica->port << " did not take over from " << master.port;
  const auto promoted = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));  // load after it
  const std::vector<Outcome> outcomes = load.Stop();

  EXPECT_TRUE(FirstAckAfter(outcomes, promoted)) << "nothing acknowledged after the failover";
  ExpectNothingAcknowledgedLostAndNoLimitExceeded(outcomes);
  EXPECT_EQ(cluster_->WaitHealthy(std::chrono::seconds(20)), "");
}

TEST_F(ClusterFailoverTest, AKilledMasterUnderLoadIsReplacedWithinNodeTimeoutPlusTwoSeconds) {
  ReservationLoad load(ports_, key_, users_);
  ASSERT_TRUE(load.WaitForAckAfter(Clock::now(), std::chrono::seconds(5)));
  ASSERT_TRUE(load.WaitForRefusal(std::chrono::seconds(20))) << "no hot user reached the limit";

  const ClusterNode master = cluster_->Masters().at(1);
  const auto replica = cluster_->ReplicaOf(master.id);
  ASSERT_TRUE(replica);
  const std::vector<bool> on_shard = OnShard(master);
  ASSERT_GT(std::count(on_shard.begin(), on_shard.end(), true), 0);
  killed_.push_back(cluster_->Kill(master.port));
  const auto kill = killed_.back().killed_at;
  // The old master comes back with its own config once its replica has taken over (not before:
  // restarted as a master, it would lose its last second of writes, acknowledged ones included),
  // and rejoins as the replica of its successor.
  Clock::time_point promoted;
  ASSERT_TRUE(RestartWhenReplaced(*replica, &promoted));
  const auto rejoined = Clock::now();
  // Load past the promised resumption, and some more.
  const auto promised = node_timeout_ + std::chrono::seconds(2);
  std::this_thread::sleep_until(kill + promised + std::chrono::seconds(1));
  const std::vector<Outcome> outcomes = load.Stop();
  ASSERT_EQ(cluster_->WaitHealthy(std::chrono::seconds(30)), "");
  EXPECT_EQ(cluster_->Info(master.port, "role"), "slave");

  // Unavailability of the killed shard: from the first of its requests sent after the kill that
  // failed or stalled to the first 201 to one of its users after the kill.
  std::optional<Clock::time_point> first_failure, resumed;
  for (const Outcome& o : outcomes) {
    if (!on_shard[o.user] || o.sent < kill) continue;
    if ((Unknown(o) || o.answered - o.sent >= node_timeout_ / 2) &&
        (!first_failure || o.sent < *first_failure)) {
      first_failure = o.sent;
    }
    if (Acknowledged(o) && (!resumed || o.answered < *resumed)) resumed = o.answered;
  }
  ASSERT_TRUE(first_failure) << "killing a master disturbed none of its users' requests";
  ASSERT_TRUE(resumed) << "no authorisation on the killed shard was acknowledged again\n"
                       << Timeline(outcomes, on_shard, kill);
  std::cout << std::fixed << std::setprecision(3)
            << "  failover unavailability: " << Seconds(*resumed - *first_failure)
            << " s (first failure to first success after); kill to resumption "
            << Seconds(*resumed - kill) << " s (replica promoted after " << Seconds(promoted - kill)
            << " s, old master restarted after " << Seconds(rejoined - kill) << " s); node timeout "
            << Seconds(node_timeout_) << " s\n";
  EXPECT_LE(*resumed - kill, promised) << "service resumed later than node timeout + 2 s\n"
                                       << Timeline(outcomes, on_shard, kill);
  // The other shards served throughout.
  EXPECT_TRUE(std::any_of(outcomes.begin(), outcomes.end(), [&](const Outcome& o) {
    return !on_shard[o.user] && o.sent >= kill && o.answered < *resumed && Acknowledged(o);
  })) << "the other shards stopped too";
  ExpectNothingAcknowledgedLostAndNoLimitExceeded(outcomes);
}

// The load aims at the slots the resharding moves: redis-cli moves the source's lowest slots
// first, so a quarter of the users (hot ones among them) have their pairs there.
class ReshardTest : public ClusterFailoverTest {
 protected:
  static constexpr int kSlotsMoved = 100;

  std::vector<std::string> ChooseUsers() override {
    source_ = cluster_->Masters().at(0);
    moving_.assign(16384, false);
    int left = kSlotsMoved;
    for (const auto& [first, last] : source_.slots) {
      for (int slot = first; slot <= last && left > 0; ++slot, --left) moving_[slot] = true;
    }
    std::vector<std::string> moving, staying;
    for (int i = 0; moving.size() < kUsers / 4 || staying.size() < kUsers - kUsers / 4; ++i) {
      const std::string user = User(i);
      auto& group = moving_[PairSlot(user)] ? moving : staying;
      if (group.size() < (&group == &moving ? kUsers / 4 : kUsers - kUsers / 4)) {
        group.push_back(user);
      }
    }
    // Hot users first: half of them on moving slots.
    std::vector<std::string> users;
    for (int i = 0; i < kHotUsers / 2; ++i) users.push_back(moving[i]), users.push_back(staying[i]);
    users.insert(users.end(), moving.begin() + kHotUsers / 2, moving.end());
    users.insert(users.end(), staying.begin() + kHotUsers / 2, staying.end());
    return users;
  }

  ClusterNode source_;
  std::vector<bool> moving_;
};

TEST_F(ReshardTest, ReshardingAHundredSlotsUnderLoadLosesNothingAndExceedsNoLimit) {
  ReservationLoad load(ports_, key_, users_);
  ASSERT_TRUE(load.WaitForAckAfter(Clock::now(), std::chrono::seconds(5)));
  ASSERT_TRUE(load.WaitForRefusal(std::chrono::seconds(20))) << "no hot user reached the limit";

  const std::vector<ClusterNode> masters = cluster_->Masters();
  ASSERT_EQ(masters.at(0).id, source_.id) << "the masters changed since the users were chosen";
  const CommandOutput reshard = cluster_->Reshard(masters[0].id, masters[1].id, kSlotsMoved);
  ASSERT_EQ(reshard.exit_code, 0) << reshard.out;
  const auto moved = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const std::vector<Outcome> outcomes = load.Stop();

  const std::vector<ClusterNode> after = cluster_->Masters();
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[0].SlotCount(), masters[0].SlotCount() - kSlotsMoved);
  EXPECT_EQ(after[1].SlotCount(), masters[1].SlotCount() + kSlotsMoved);
  // The moved users' pairs now live on the target, and their authorisations go on there.
  const std::vector<bool> on_target = OnShard(after[1]);
  int moved_users = 0;
  for (int i = 0; i < kUsers; ++i) {
    if (!moving_[PairSlot(users_[i])]) continue;
    ++moved_users;
    EXPECT_TRUE(on_target[i]) << "user " << i << " did not move";
  }
  EXPECT_EQ(moved_users, kUsers / 4);
  EXPECT_TRUE(std::any_of(outcomes.begin(), outcomes.end(), [&](const Outcome& o) {
    return moving_[PairSlot(users_[o.user])] && o.sent >= moved && Acknowledged(o);
  })) << "nothing acknowledged on the moved slots after the resharding";
  ExpectNothingAcknowledgedLostAndNoLimitExceeded(outcomes);
}

TEST_F(ClusterFailoverTest, ALaggingReplicaNeverLetsAnUnreplicatedWriteBeAcknowledged) {
  ReservationLoad load(ports_, key_, users_);
  ASSERT_TRUE(load.WaitForAckAfter(Clock::now(), std::chrono::seconds(5)));
  ASSERT_TRUE(load.WaitForRefusal(std::chrono::seconds(20))) << "no hot user reached the limit";

  // The replica stops acknowledging: its master's writes can be applied but not replicated.
  const ClusterNode master = cluster_->Masters().at(2);
  const std::vector<bool> on_shard = OnShard(master);
  const auto replica = cluster_->ReplicaOf(master.id);
  ASSERT_TRUE(replica);
  const pid_t replica_pid = cluster_->Stop(replica->port);
  ASSERT_GT(replica_pid, 0);
  stopped_.push_back(replica_pid);
  const auto lagging = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));

  // Then its master dies, and the replica — behind by everything written meanwhile — takes over.
  killed_.push_back(cluster_->Kill(master.port));
  const auto kill = killed_.back().killed_at;
  ::kill(replica_pid, SIGCONT);
  stopped_.clear();
  Clock::time_point promoted;
  ASSERT_TRUE(RestartWhenReplaced(*replica, &promoted)) << "the lagging replica did not take over";
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const std::vector<Outcome> outcomes = load.Stop();
  ASSERT_EQ(cluster_->WaitHealthy(std::chrono::seconds(30)), "");

  // While the replica lagged, its shard's writes were answered 500, never 201 (WAIT found no
  // replica); the other shards went on acknowledging.
  int refused = 0, acked_elsewhere = 0;
  for (const Outcome& o : outcomes) {
    if (o.sent < lagging || o.sent >= kill) continue;
    if (on_shard[o.user]) {
      EXPECT_FALSE(Acknowledged(o))
          << "user " << o.user << " got a 201 from a master whose "
          << "replica was stopped, " << Seconds(o.sent - lagging) << " s after the stop";
      refused += o.status == 500;
    } else {
      acked_elsewhere += Acknowledged(o);
    }
  }
  std::cout << "  while the replica lagged: " << refused << " writes to its shard answered 500, "
            << acked_elsewhere << " acknowledged on the others\n";
  EXPECT_GT(refused, 0) << "no write reached the lagging replica's shard";
  EXPECT_GT(acked_elsewhere, 0);
  EXPECT_TRUE(std::any_of(
      outcomes.begin(), outcomes.end(),
      [&](const Outcome& o) { return on_shard[o.user] && o.sent >= promoted && Acknowledged(o); }))
      << "nothing acknowledged on the shard after the takeover\n"
      << Timeline(outcomes, on_shard, kill);
  // Everything acknowledged was on a replica, so it survived the takeover by a lagging one.
  ExpectNothingAcknowledgedLostAndNoLimitExceeded(outcomes);
}

}  // namespace
}  // namespace callgate::testing
