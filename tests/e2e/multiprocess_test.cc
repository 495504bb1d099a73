// Two real `callgate serve` processes on one store — one SQLite data directory, or one Redis
// Cluster (the cluster suite, with CALLGATE_TEST_REDIS_CLUSTER naming its seeds): enforcement must
// hold across processes, so concurrent reservations and call authorisations split between both
// never exceed a limit; a webhook applied through one is read through the other at once; a key
// revoked through the admin CLI is refused by both on their next request. Tenants come from the
// admin CLI, the permission from a signed webhook to one process. Both stop cleanly on SIGTERM.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "child_process.h"
#include "meta_payloads.h"
#include "notify_receiver.h"
#include "test_server.h"

namespace callgate::testing {
namespace {

constexpr char kSecret[] = "s";
const meta::Business kBiz{"106540352242922", "15550783881"};
const meta::Business kBizSb{"106540352242924", "15550783883"};

std::string ChannelPath(const std::string& channel) {
  return "/api/v1/whatsapp/subaccounts/sub-mp/channels/" + channel;
}

// Where the processes keep their state.
enum class Backend { kSqlite, kRedisCluster };

class MultiprocessTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/callgate-mp-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    switch (GetParam()) {
      case Backend::kSqlite:
        store_args_ = {"--data-dir", dir_ + "/data"};
        break;
      case Backend::kRedisCluster: {
        const char* seeds = std::getenv("CALLGATE_TEST_REDIS_CLUSTER");
        ASSERT_NE(seeds, nullptr) << "CALLGATE_TEST_REDIS_CLUSTER names no cluster "
                                     "(ctest starts one: scripts/redis-cluster.sh)";
        // A key prefix of its own, so runs on one cluster never see each other's state.
        store_args_ = {"--redis-cluster", seeds, "--redis-key-prefix",
                       "mp" + std::to_string(std::random_device{}()) + ":"};
        break;
      }
    }

    Admin({"account", "create", "acct-mp"});
    Admin({"subaccount", "create", "sub-mp", "--account", "acct-mp"});
    Admin({"channel", "create", "chan-mp", "--subaccount", "sub-mp", "--phone-number-id",
           kBiz.phone_number_id});
    Admin({"channel", "create", "chan-mp-sb", "--subaccount", "sub-mp", "--phone-number-id",
           kBizSb.phone_number_id, "--limits", "sandbox"});
    std::string key = Admin({"key", "create", "--account", "acct-mp"});
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    ASSERT_EQ(key.rfind("cgk_", 0), 0u) << key;
    key_ = key;

    for (int i = 0; i < 2; ++i) {
      const std::string log = dir_ + "/serve-" + std::to_string(i) + ".log";
      servers_.push_back(std::make_unique<Child>(
          Args({"serve", "--listen", "127.0.0.1:0", "--threads", "2", "--meta-app-secret", kSecret,
                "--log-format", "json", "--access-log", "on", "--notify-lease", "11"}),
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
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << Logs();
    // SIGTERM first: a server killed outright would lose its queued access lines.
    for (const auto& server : servers_) {
      server->Kill(SIGTERM);
      server->Wait(std::chrono::seconds(20));
    }
    servers_.clear();  // SIGKILL whatever is still running
    // The servers' logs join the e2e run's, for the log check (tests/logs/log_check.mjs).
    if (const char* e2e_log = std::getenv("CALLGATE_E2E_LOG")) {
      std::ofstream out(e2e_log, std::ios::app);
      for (const std::string& log : logs_) out << ReadFile(log);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // `command` (serve or admin), then the store's flags, then `args`.
  std::vector<std::string> Args(std::vector<std::string> args) const {
    args.insert(args.begin() + 1, store_args_.begin(), store_args_.end());
    return args;
  }

  // Runs `callgate admin <store flags> args...` to completion; its stdout.
  std::string Admin(std::vector<std::string> args) {
    args.insert(args.begin(), "admin");
    return RunToCompletion(Args(std::move(args)), dir_ + "/admin.log");
  }

  std::string Logs() const {
    std::ostringstream out;
    for (const std::string& log : logs_) {
      out << "--- " << log << "\n" << ReadFile(log) << "\n";
    }
    return out.str();
  }

  std::map<std::string, std::string> Auth() const { return {{"Authorization", "Bearer " + key_}}; }

  std::string StatusBody(unsigned short port, const std::string& channel, const std::string& user) {
    HttpClient client(port);
    const Reply reply =
        client.Get(ChannelPath(channel) + "/callPermissions?destination=%2B" + user, Auth());
    EXPECT_EQ(reply.status, 200) << reply.body;
    return reply.body;
  }

  // Counts replies by "status/code" (code 0 for non-errors).
  std::map<std::string, int> Tally(const std::vector<Reply>& replies) {
    std::map<std::string, int> tally;
    for (const Reply& reply : replies) {
      std::string key = std::to_string(reply.status);
      if (reply.status >= 400) {
        simdjson::dom::parser parser;
        std::int64_t code = 0;
        if (parser.parse(reply.body)["code"].get(code) != simdjson::SUCCESS) code = -1;
        key += "/" + std::to_string(code);
      } else if (reply.status < 0) {
        key += " " + reply.body;
      }
      ++tally[key];
    }
    return tally;
  }

  std::string dir_;
  std::vector<std::string> store_args_;  // --data-dir DIR, or --redis-cluster SEEDS …
  std::string key_;
  std::vector<std::unique_ptr<Child>> servers_;
  std::vector<std::string> logs_;
  std::vector<unsigned short> ports_;
};

TEST_P(MultiprocessTest, TwoProcessesOnOneStoreNeverExceedALimit) {
  const std::string user = "6591000001";
  const Instant now = std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());

  // A permanent permission, delivered to the first process, is seen by the second.
  {
    meta::PermissionReply grant{.wamid = "wamid.mp-grant", .from = user, .at = now};
    grant.is_permanent = true;
    HttpClient client(ports_[0]);
    const Reply reply = client.PostWebhook(meta::Payload(kBiz, grant), kSecret);
    ASSERT_EQ(reply.status, 200) << reply.body;
    ASSERT_NE(reply.body.find(R"("applied":1)"), std::string::npos) << reply.body;
  }
  // Both processes read (and cache) the pair before the other's writes; the reads after them
  // prove each process's cache sees the other's commits.
  for (const unsigned short port : ports_) {
    ASSERT_NE(StatusBody(port, "chan-mp", user).find(R"("status":"permanent")"), std::string::npos);
  }

  // 250 call authorisations, 8 connections per process, all at once: exactly 100 succeed.
  const std::vector<Reply> calls =
      FireConcurrently(ports_, 8, 250, ChannelPath("chan-mp") + "/calls", Auth(),
                       R"({"destination":"+)" + user + R"("})");
  EXPECT_EQ(Tally(calls), (std::map<std::string, int>{{"201", 100}, {"429/1056", 150}}));
  for (const unsigned short port : ports_) {
    EXPECT_NE(StatusBody(port, "chan-mp", user)
                  .find(R"("timePeriod":"PT24H","maxAllowed":100,"currentUsage":100,)"),
              std::string::npos);
  }

  // 200 permission requests on a sandbox channel: exactly 25 (the daily sandbox limit).
  const std::vector<Reply> requests =
      FireConcurrently(ports_, 8, 200, ChannelPath("chan-mp-sb") + "/callPermissionRequests",
                       Auth(), R"({"destination":"+)" + user + R"("})");
  EXPECT_EQ(Tally(requests), (std::map<std::string, int>{{"201", 25}, {"429/1053", 175}}));
  EXPECT_NE(StatusBody(ports_[0], "chan-mp-sb", user)
                .find(R"("timePeriod":"PT24H","maxAllowed":25,"currentUsage":25,)"),
            std::string::npos);

  // Both stop cleanly on SIGTERM.
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    servers_[i]->Kill(SIGTERM);
    const auto status = servers_[i]->Wait(std::chrono::seconds(20));
    ASSERT_TRUE(status) << "server " << i << " did not stop on SIGTERM";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "server " << i << " wait status " << *status;
  }
}

// Notifications with two delivering processes on one store: each is sent once, in order per user,
// signed; the time-driven ones (a temporary permission ending a few seconds ahead) on time; and
// those a process held when it was killed -9, with the receiver down, are sent by the other once
// the receiver is back.
TEST_P(MultiprocessTest, TwoProcessesSendEachNotificationOnceInOrderThroughAKill) {
  Receiver receiver;
  receiver.Down();
  std::string secret = Admin({"notify", "set", "--account", "acct-mp", "--url", receiver.url()});
  while (!secret.empty() && secret.back() == '\n') secret.pop_back();
  ASSERT_EQ(secret.rfind("cgws_", 0), 0u) << secret;
  // The target is read with the tenants: each server honours it from its next request on.
  constexpr int kUsers = 6;
  const Instant t = FromUnixSeconds(ToUnixMillis(SystemNow()) / 1000);
  const Instant end = t + std::chrono::seconds(5);
  for (int i = 0; i < kUsers; ++i) {
    meta::PermissionReply grant{.wamid = "wamid.mpn" + std::to_string(i),
                                .from = "6591234" + std::to_string(100 + i),
                                .at = t};
    grant.expiration_timestamp = end;
    grant.context_id = "wamid.request-mpn";
    HttpClient client(ports_[i % 2]);
    const Reply reply = client.PostWebhook(meta::Payload(kBiz, grant), kSecret);
    ASSERT_EQ(reply.status, 200);
    ASSERT_NE(reply.body.find(R"("applied":1)"), std::string::npos) << reply.body;
  }
  // Both try (nobody listens) and schedule retries; then one dies holding whatever it leased.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  servers_[0]->Kill(SIGKILL);
  servers_[0]->Wait(std::chrono::seconds(10));
  receiver.Up();
  std::vector<Received> all =
      receiver.WaitFor([](const std::vector<Received>& got) { return got.size() >= 2 * kUsers; },
                       std::chrono::seconds(45));
  ASSERT_EQ(all.size(), 2u * kUsers) << Logs();
  std::map<std::string, std::vector<std::string>> types;
  std::set<std::string> ids;
  for (Received& r : all) {
    CheckAndRead(r, secret, "sub-mp");
    ids.insert(r.event_id);
    types[r.user].push_back(r.type);
    if (r.type == "permission.expired") {
      EXPECT_GE(r.at, end) << r.body;
    }
  }
  EXPECT_EQ(ids.size(), all.size()) << "a notification was sent twice";
  ASSERT_EQ(types.size(), static_cast<std::size_t>(kUsers));
  for (const auto& [user, sent] : types) {
    EXPECT_EQ(sent, (std::vector<std::string>{"permission.granted", "permission.expired"})) << user;
  }
  // Nothing more comes.
  EXPECT_EQ(receiver
                .WaitFor([](const std::vector<Received>& got) { return got.size() > 2 * kUsers; },
                         std::chrono::seconds(2))
                .size(),
            2u * kUsers);
}

TEST_P(MultiprocessTest, AKeyRevokedThroughTheAdminCliIsRefusedByBothOnTheirNextRequest) {
  // Both serve the key, and have read tenants since it was made.
  for (const unsigned short port : ports_) StatusBody(port, "chan-mp", "6591000002");
  const std::string list = Admin({"key", "list", "--account", "acct-mp"});
  const std::string key_id = list.substr(0, list.find(' '));
  ASSERT_FALSE(key_id.empty()) << list;
  Admin({"key", "revoke", key_id});
  // The admin command has returned: the very next request to either process is refused.
  for (const unsigned short port : ports_) {
    HttpClient client(port);
    const Reply reply =
        client.Get(ChannelPath("chan-mp") + "/callPermissions?destination=%2B6591000002", Auth());
    EXPECT_EQ(reply.status, 401) << "port " << port << ": " << reply.body;
  }
}

// Status reads answered while the store's reads are in flight (on a cluster: asynchronously,
// many per server thread at once) are what the other process reads, one by one; so is a batch of
// 1000 users, whose reads are all in flight together.
TEST_P(MultiprocessTest,
       ManyConcurrentStatusReadsAndABatchOfAThousandReadWhatTheOtherProcessReads) {
  constexpr int kUsers = 1000;
  auto user = [](int i) {
    std::string digits = std::to_string(i);
    return "6592" + std::string(6 - digits.size(), '0') + digits;
  };
  // Three kinds of pairs among the first 30 users: a pending request, a permanent permission,
  // none (as the 970 others).
  const Instant now = std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
  {
    HttpClient client(ports_[0]);
    for (int i = 0; i < 30; ++i) {
      if (i % 3 == 1) {
        const Reply reply = client.Send(boost::beast::http::verb::post,
                                        ChannelPath("chan-mp") + "/callPermissionRequests", Auth(),
                                        R"({"destination":"+)" + user(i) + R"("})");
        ASSERT_EQ(reply.status, 201) << reply.body;
      } else if (i % 3 == 2) {
        meta::PermissionReply grant{
            .wamid = "wamid.mp-many-" + std::to_string(i), .from = user(i), .at = now};
        grant.is_permanent = true;
        const Reply reply = client.PostWebhook(meta::Payload(kBiz, grant), kSecret);
        ASSERT_EQ(reply.status, 200) << reply.body;
      }
    }
  }
  // What the first process reads, one GET at a time.
  std::vector<std::string> expected(kUsers);
  {
    HttpClient client(ports_[0]);
    for (int i = 0; i < kUsers; ++i) {
      const Reply reply =
          client.Get(ChannelPath("chan-mp") + "/callPermissions?destination=%2B" + user(i), Auth());
      ASSERT_EQ(reply.status, 200) << reply.body;
      expected[i] = reply.body;
    }
  }
  ASSERT_NE(expected[1].find(R"("currentUsage":1)"), std::string::npos) << expected[1];
  ASSERT_NE(expected[2].find(R"("status":"permanent")"), std::string::npos) << expected[2];
  ASSERT_NE(expected[1], expected[0]);

  // The second process: 8 connections, each with its 125 GETs pipelined, all at once.
  constexpr int kConnections = 8;
  std::vector<std::string> got(kUsers);
  std::vector<int> statuses(kUsers, 0);
  std::vector<std::thread> workers;
  std::atomic<int> failures{0};
  for (int c = 0; c < kConnections; ++c) {
    workers.emplace_back([&, c] {
      try {
        HttpClient client(ports_[1]);
        std::string bytes;
        for (int i = c; i < kUsers; i += kConnections) {
          bytes += "GET " + ChannelPath("chan-mp") + "/callPermissions?destination=%2B" + user(i) +
                   " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + key_ + "\r\n\r\n";
        }
        client.WriteRaw(bytes);
        for (int i = c; i < kUsers; i += kConnections) {
          const Reply reply = client.Read(boost::beast::http::verb::get,
                                          ChannelPath("chan-mp") + "/callPermissions");
          statuses[i] = reply.status;
          got[i] = reply.body;
        }
      } catch (const std::exception&) {
        ++failures;
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  EXPECT_EQ(failures.load(), 0);
  int differing = 0;
  for (int i = 0; i < kUsers; ++i) {
    EXPECT_EQ(statuses[i], 200) << "user " << i << ": " << got[i];
    if (got[i] != expected[i] && ++differing <= 5) {
      ADD_FAILURE() << "user " << i << " read " << got[i] << "\nthe other process read "
                    << expected[i];
    }
  }
  EXPECT_EQ(differing, 0);

  // The batch of all 1000, through the second process: each item the first process's GET body
  // after the item's id, in request order.
  std::string body = R"({"destinations":[)";
  std::string want = R"({"results":[)";
  for (int i = 0; i < kUsers; ++i) {
    if (i > 0) {
      body += ',';
      want += ',';
    }
    body += "\"+" + user(i) + "\"";
    want += R"({"destination":"+)" + user(i) + "\"," + expected[i].substr(1);
  }
  body += "]}";
  want += "]}";
  HttpClient client(ports_[1]);
  const Reply batch = client.Send(boost::beast::http::verb::post,
                                  ChannelPath("chan-mp") + "/callPermissions/batch", Auth(), body);
  ASSERT_EQ(batch.status, 200) << batch.body.substr(0, 500);
  EXPECT_EQ(batch.body.size(), want.size());
  EXPECT_TRUE(batch.body == want)
      << "the batch differs from the GETs; first difference at byte "
      << std::mismatch(batch.body.begin(), batch.body.end(), want.begin(), want.end()).first -
             batch.body.begin();
}

INSTANTIATE_TEST_SUITE_P(Stores, MultiprocessTest,
                         ::testing::Values(Backend::kSqlite, Backend::kRedisCluster),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kSqlite ? "Sqlite" : "RedisCluster";
                         });

}  // namespace
}  // namespace callgate::testing
