// End-to-end tests of GET .../callPermissions over real HTTP: every status (seeded through the
// store), every row of the error table, and transport behaviour (keep-alive, pipelining, limits).
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sqlite3.h>

#include <fstream>
#include <iterator>

#include "test_server.h"

namespace callgate::testing {
namespace {

namespace http = boost::beast::http;

constexpr char kSub[] = "sub-a";
constexpr char kChannel[] = "chan-a";
constexpr char kNumber[] = "+6500000000";

std::string Path(const std::string& sub = kSub, const std::string& channel = kChannel) {
  return "/api/v1/whatsapp/subaccounts/" + sub + "/channels/" + channel + "/callPermissions";
}
std::string StatusTarget(const std::string& destination = "%2B6500000000",
                         const std::string& sub = kSub, const std::string& channel = kChannel) {
  return Path(sub, channel) + "?destination=" + destination;
}

class StatusE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = server_.AddTenant("acct-a", kSub, kChannel, "100000000000001");
    client_ = std::make_unique<HttpClient>(server_.port());
  }
  std::map<std::string, std::string> Auth(const std::string& key) {
    return {{"Authorization", "Bearer " + key}};
  }
  Reply GetStatus(const std::string& target = StatusTarget()) {
    return client_->Get(target, Auth(key_));
  }
  // Asserts the 8x8 error envelope and returns its code.
  int64_t ErrorCode(const Reply& reply) {
    EXPECT_EQ(reply.content_type, "application/json");
    simdjson::dom::parser parser;
    simdjson::dom::element doc = parser.parse(reply.body);
    EXPECT_TRUE(doc["errorId"].is_string());
    EXPECT_TRUE(doc["timestamp"].is_string());
    EXPECT_TRUE(doc["message"].is_string());
    return doc["code"].get_int64().value();
  }

  TestServer server_;
  std::string key_;
  std::unique_ptr<HttpClient> client_;
  simdjson::dom::parser parser_;
};

TEST_F(StatusE2eTest, NeverSeenDestinationReadsNotGrantedWithZeroUsage) {
  const Reply reply = GetStatus();
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.content_type, "application/json");
  EXPECT_EQ(reply.body,
            R"({"status":"not_granted","actions":[{"actionName":"send_call_permission_request",)"
            R"("canPerformAction":true,"limits":[{"timePeriod":"PT24H","maxAllowed":1,)"
            R"("currentUsage":0},{"timePeriod":"P7D","maxAllowed":2,"currentUsage":0}]},)"
            R"({"actionName":"start_call","canPerformAction":false,"limits":[{"timePeriod":)"
            R"("PT24H","maxAllowed":100,"currentUsage":0}]}]})");
}

TEST_F(StatusE2eTest, TemporaryPermissionShowsItsExpirationTime) {
  const Instant approved = server_.Now() - std::chrono::hours(1);
  server_.Seed(kChannel, kNumber,
               {PermissionReplied{"wamid.1", approved, true, false, std::nullopt,
                                  ReplySource::kUserAction}});
  const Reply reply = GetStatus();
  ASSERT_EQ(reply.status, 200);
  simdjson::dom::element doc = parser_.parse(reply.body);
  EXPECT_EQ(std::string_view(doc["status"]), "temporary");
  EXPECT_EQ(std::string_view(doc["expirationTime"]), "2026-02-08T07:12:30.00Z");
  EXPECT_TRUE(bool(doc["actions"].at(1)["canPerformAction"]));
}

TEST_F(StatusE2eTest, PermanentPermissionHasNoExpirationTime) {
  server_.Seed(kChannel, kNumber,
               {PermissionReplied{"wamid.1", server_.Now(), true, true, std::nullopt,
                                  ReplySource::kUserAction}});
  const Reply reply = GetStatus();
  ASSERT_EQ(reply.status, 200);
  simdjson::dom::element doc = parser_.parse(reply.body);
  EXPECT_EQ(std::string_view(doc["status"]), "permanent");
  EXPECT_EQ(doc["expirationTime"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_FALSE(bool(doc["actions"].at(0)["canPerformAction"]));  // upstream 138017
  EXPECT_TRUE(bool(doc["actions"].at(1)["canPerformAction"]));
}

TEST_F(StatusE2eTest, ExpiredTemporaryPermissionReadsNotGranted) {
  server_.Seed(kChannel, kNumber,
               {PermissionReplied{"wamid.1", server_.Now() - kDays7, true, false, std::nullopt,
                                  ReplySource::kUserAction}});
  const Reply reply = GetStatus();
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(std::string_view(parser_.parse(reply.body)["status"]), "not_granted");
}

TEST_F(StatusE2eTest, ReachedRequestLimitShowsWhenASlotFrees) {
  const Instant sent = server_.Now() - std::chrono::hours(2);
  server_.Seed(kChannel, kNumber, {PermissionRequested{"req-1", sent}});
  const Reply reply = GetStatus();
  ASSERT_EQ(reply.status, 200);
  simdjson::dom::element send = parser_.parse(reply.body)["actions"].at(0);
  EXPECT_FALSE(bool(send["canPerformAction"]));
  EXPECT_EQ(int64_t(send["limits"].at(0)["currentUsage"]), 1);
  EXPECT_EQ(std::string_view(send["limits"].at(0)["limitExpirationTime"]),
            FormatCentis(sent + kHours24));
  EXPECT_EQ(send["limits"].at(1)["limitExpirationTime"].error(), simdjson::NO_SUCH_FIELD);
}

TEST_F(StatusE2eTest, SandboxChannelReportsSandboxLimits) {
  const std::string key =
      server_.AddTenant("acct-s", "sub-s", "chan-s", "100000000000009", LimitsProfile::kSandbox);
  const Reply reply = client_->Get(StatusTarget("%2B6500000000", "sub-s", "chan-s"), Auth(key));
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(int64_t(parser_.parse(reply.body)["actions"].at(0)["limits"].at(1)["maxAllowed"]), 100);
}

TEST_F(StatusE2eTest, UnencodedPlusInQueryIsAccepted) {
  EXPECT_EQ(GetStatus(StatusTarget("+6500000000")).status, 200);
}

TEST_F(StatusE2eTest, MissingAuthorizationIs401) {
  EXPECT_EQ(ErrorCode(client_->Get(StatusTarget())), 1200);
}

TEST_F(StatusE2eTest, MalformedAuthorizationIs401) {
  for (const std::string& header :
       std::vector<std::string>{"Basic " + key_, "Bearer", "Bearer a b", key_}) {
    const Reply reply = client_->Get(StatusTarget(), {{"Authorization", header}});
    EXPECT_EQ(reply.status, 401) << header;
    EXPECT_EQ(ErrorCode(reply), 1200);
  }
}

TEST_F(StatusE2eTest, UnknownKeyIs401) {
  std::string forged = key_;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  const Reply reply = client_->Get(StatusTarget(), Auth(forged));
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(ErrorCode(reply), 1200);
  EXPECT_EQ(client_->Get(StatusTarget(), Auth("cgk_0000000000000000_x")).status, 401);
}

TEST_F(StatusE2eTest, RevokedKeyIs401) {
  ASSERT_EQ(GetStatus().status, 200);
  const std::string key_id = key_.substr(4, 16);
  ASSERT_TRUE(server_.store().RevokeApiKey(key_id, server_.Now()).ok());
  const Reply reply = GetStatus();
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(ErrorCode(reply), 1200);
}

TEST_F(StatusE2eTest, SubaccountOfAnotherAccountIs400With1001) {
  server_.AddTenant("acct-b", "sub-b", "chan-b", "100000000000002");
  Reply reply = GetStatus(StatusTarget("%2B6500000000", "sub-b", "chan-b"));
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(ErrorCode(reply), 1001);
  reply = GetStatus(StatusTarget("%2B6500000000", "no-such-sub", kChannel));
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(ErrorCode(reply), 1001);
}

TEST_F(StatusE2eTest, MissingDestinationIs400With1000) {
  for (const std::string& target :
       std::vector<std::string>{Path(), Path() + "?destination=", Path() + "?other=1"}) {
    const Reply reply = GetStatus(target);
    EXPECT_EQ(reply.status, 400) << target;
    EXPECT_EQ(ErrorCode(reply), 1000) << target;
  }
}

TEST_F(StatusE2eTest, NonE164DestinationIs400With1002) {
  for (const std::string bad : {"6500000000", "%2B0500000000", "%2B65abc", "%2B1", "%2B9990000000",
                                "%2B12345678901234567", "%2B650000000%25", "%ZZ", "%2B44"}) {
    const Reply reply = GetStatus(StatusTarget(std::string(bad)));
    EXPECT_EQ(reply.status, 400) << bad;
    EXPECT_EQ(ErrorCode(reply), 1002) << bad;
  }
}

TEST_F(StatusE2eTest, UnknownChannelOrChannelOfAnotherSubaccountIs404With1300) {
  ASSERT_TRUE(server_.store().CreateSubaccount({"sub-a2", "acct-a", server_.Now()}).ok());
  ASSERT_TRUE(server_.store()
                  .CreateChannel({"chan-a2", "sub-a2", "100000000000003", false,
                                  LimitsProfile::kProduction, server_.Now()})
                  .ok());
  for (const std::string_view channel : {"no-such-channel", "chan-a2"}) {
    const Reply reply = GetStatus(StatusTarget("%2B6500000000", kSub, std::string(channel)));
    EXPECT_EQ(reply.status, 404) << channel;
    EXPECT_EQ(ErrorCode(reply), 1300);
  }
}

// The state is damaged behind the service's back, so the store's read cache (which only
// callgate's own writes keep current) is off here: the read must reach the damaged row.
TEST(StatusE2eStorageTest, UnreadableStoredStateIs500With2000) {
  TestServer server({}, {}, /*cache_bytes=*/0);
  const std::string key = server.AddTenant("acct-a", kSub, kChannel, "100000000000001");
  server.Seed(kChannel, kNumber, {PermissionRequested{"req-1", server.Now()}});
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(server.db_path().c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE pairs SET state = x'ff00ff'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  HttpClient client(server.port());
  const Reply reply = client.Get(StatusTarget(), {{"Authorization", "Bearer " + key}});
  EXPECT_EQ(reply.status, 500);
  EXPECT_NE(reply.body.find("\"code\":2000"), std::string::npos);
}

TEST_F(StatusE2eTest, UnknownPathIs404AndWrongMethodIs405InTheEnvelope) {
  Reply reply = client_->Get("/api/v1/nothing-here", Auth(key_));
  EXPECT_EQ(reply.status, 404);
  EXPECT_EQ(ErrorCode(reply), 1300);
  reply = client_->Send(http::verb::delete_, StatusTarget(), Auth(key_));
  EXPECT_EQ(reply.status, 405);
  EXPECT_EQ(ErrorCode(reply), 2001);
  EXPECT_EQ(reply.headers["Allow"], "GET");
}

// Issue 12: the service serves the repository's own API description, as built in, without a key.
TEST_F(StatusE2eTest, OpenApiJsonIsTheRepositorysDocumentByteForByte) {
  std::ifstream file(CALLGATE_OPENAPI_PATH, std::ios::binary);
  ASSERT_TRUE(file) << CALLGATE_OPENAPI_PATH;
  const std::string expected{std::istreambuf_iterator<char>(file), {}};
  ASSERT_GT(expected.size(), 1000u);
  const Reply reply = client_->Get("/openapi.json");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.content_type, "application/json");
  EXPECT_TRUE(reply.body == expected) << "served " << reply.body.size() << " bytes; "
                                      << CALLGATE_OPENAPI_PATH << " has " << expected.size();
  const Reply post = client_->Send(http::verb::post, "/openapi.json", {}, "{}");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(ErrorCode(post), 2001);
  EXPECT_EQ(post.headers.at("Allow"), "GET");
}

TEST_F(StatusE2eTest, KeepAliveServesManyRequestsOnOneConnection) {
  for (int i = 0; i < 50; ++i) ASSERT_EQ(GetStatus().status, 200);
}

TEST_F(StatusE2eTest, PipelinedRequestsAreAnsweredInOrder) {
  const std::string auth = "Authorization: Bearer " + key_ + "\r\n";
  std::string bytes;
  bytes += "GET " + StatusTarget() + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n";
  bytes += "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
  bytes += "GET " + Path() + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n";
  client_->WriteRaw(bytes);
  EXPECT_EQ(client_->Read(http::verb::get, StatusTarget()).status, 200);
  EXPECT_EQ(client_->Read(http::verb::get, "/nope").status, 404);
  EXPECT_EQ(ErrorCode(client_->Read(http::verb::get, Path())), 1000);
}

TEST_F(StatusE2eTest, HealthzAnswersOk) {
  const Reply reply = client_->Get("/healthz");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, R"({"status":"ok"})");
}

// Issue 9: /healthz said 200 while every write failed. /readyz says whether the store can commit
// (503 in the envelope when not, reads still served) and recovers by itself.
TEST(StatusE2eStorageTest, ReadyzIs503WhileTheStoreCannotCommitAndRecovers) {
  TestServer server;
  const std::string key = server.AddTenant("acct-a", kSub, kChannel, "100000000000001");
  HttpClient client(server.port());
  Reply reply = client.Get("/readyz");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, R"({"status":"ready"})");

  auto exec = [&](const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(server.db_path().c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  };
  // Every commit of the probe now fails, as on a full disk or a read-only file.
  exec(
      "CREATE TRIGGER no_commit BEFORE INSERT ON meta WHEN NEW.key = 'write_probe' "
      "BEGIN SELECT RAISE(ABORT, 'cannot commit'); END");
  server.SetNow(server.Now() + std::chrono::seconds(2));
  reply = client.Get("/readyz");
  EXPECT_EQ(reply.status, 503);
  EXPECT_NE(reply.body.find("\"code\":2000"), std::string::npos) << reply.body;
  EXPECT_EQ(client.Get("/healthz").status, 200);  // alive
  EXPECT_EQ(client.Get(StatusTarget(), {{"Authorization", "Bearer " + key}}).status, 200);

  exec("DROP TRIGGER no_commit");
  server.SetNow(server.Now() + std::chrono::seconds(2));
  EXPECT_EQ(client.Get("/readyz").status, 200);
}

TEST(StatusE2eLimitsTest, OversizedHeadersAndBodiesGetTheEnvelopeAndClose) {
  TestServer server({}, {.header_limit = 2048, .body_limit = 4096});
  {
    HttpClient client(server.port());
    const Reply reply = client.Get(StatusTarget(), {{"X-Big", std::string(4096, 'a')}});
    EXPECT_EQ(reply.status, 431);
    EXPECT_EQ(reply.content_type, "application/json");
    EXPECT_NE(reply.body.find("\"code\":1010"), std::string::npos) << reply.body;
  }
  {
    HttpClient client(server.port());
    const Reply reply = client.Send(http::verb::post, "/healthz", {}, std::string(8192, 'a'));
    EXPECT_EQ(reply.status, 413);
    EXPECT_NE(reply.body.find("\"code\":1010"), std::string::npos);
  }
}

TEST(StatusE2eRateLimitTest, AccountOverItsRateGets429WithCode429) {
  TestServer server({.rate_limit_per_second = 1, .rate_limit_burst = 3});
  const std::string key = server.AddTenant("acct-r", "sub-r", "chan-r", "100000000000004");
  HttpClient client(server.port());
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + key}};
  const std::string target = StatusTarget("%2B6500000000", "sub-r", "chan-r");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(client.Get(target, auth).status, 200);
  const Reply reply = client.Get(target, auth);
  EXPECT_EQ(reply.status, 429);
  EXPECT_NE(reply.body.find("\"code\":429"), std::string::npos);
  server.SetNow(server.Now() + std::chrono::seconds(1));  // one token back
  EXPECT_EQ(client.Get(target, auth).status, 200);
}

}  // namespace
}  // namespace callgate::testing
