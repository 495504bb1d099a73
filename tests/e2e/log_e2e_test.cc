// Requests that carry secrets and personal data everywhere a careless log line could copy them
// from: the API key, path ids, the query, headers, bodies, webhook payloads (a phone number and a
// BSUID user), the verify token, a request refused before routing. Their values are the canaries
// of tests/logs/canaries.json; the log check (tests/logs/log_check.mjs, after this suite) fails if
// the run's log holds any of them. Here: each request gets the answer it should, so each reaches
// the code that logs.
#include <gtest/gtest.h>
#include <simdjson.h>

#include "meta_payloads.h"
#include "test_server.h"

namespace callgate::testing {
namespace {

namespace http = boost::beast::http;

struct Canaries {
  std::string app_secret, verify_token, destination, bsuid, path_id, query, body, header;

  static Canaries Load() {
    simdjson::dom::parser parser;
    const simdjson::dom::element doc = parser.load(CALLGATE_LOG_CANARIES);
    const auto get = [&](const char* name) { return std::string(doc[name].get_string().value()); };
    return {get("appSecret"), get("verifyToken"), get("destination"), get("bsuid"),
            get("pathId"),    get("query"),       get("body"),        get("header")};
  }
};

const meta::Business kBiz{"100000000000077", "15550783877"};

class LogE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = server_.AddTenant("acct-log", "sub-log", "chan-log", kBiz.phone_number_id);
    client_ = std::make_unique<HttpClient>(server_.port());
  }
  std::map<std::string, std::string> Auth() const {
    return {{"Authorization", "Bearer " + key_}, {"X-Trace", c_.header}};
  }
  std::string Pair(const std::string& sub = "sub-log") const {
    return "/api/v1/whatsapp/subaccounts/" + sub + "/channels/chan-log";
  }
  std::string Destination() const { return "destination=%2B" + c_.destination.substr(1); }

  Canaries c_ = Canaries::Load();
  TestServer server_{{.meta_app_secrets = {c_.app_secret}, .meta_verify_token = c_.verify_token}};
  std::string key_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(LogE2eTest, StatusReadsWithSecretsInKeyPathQueryAndHeaders) {
  EXPECT_EQ(client_->Get(Pair() + "/callPermissions?" + Destination(), Auth()).status, 200);
  EXPECT_EQ(
      client_->Get(Pair() + "/callPermissions?" + Destination() + "&x=" + c_.query, Auth()).status,
      200);
  EXPECT_EQ(client_->Get(Pair() + "/callPermissions/history?" + Destination(), Auth()).status, 200);
  // A key that is not the tenant's, however real it looks.
  const std::string other_key = server_.AddKey("acct-log");
  EXPECT_EQ(client_
                ->Get(Pair() + "/callPermissions?" + Destination(),
                      {{"Authorization", "Bearer " + other_key + "x"}})
                .status,
            401);
  // Ids of the path that name nothing; a path no route has.
  EXPECT_EQ(client_->Get(Pair(c_.path_id) + "/callPermissions?" + Destination(), Auth()).status,
            400);
  EXPECT_EQ(client_->Get(Pair() + "/" + c_.path_id + "?" + Destination(), Auth()).status, 404);
  // A destination that is no E.164 number: the number itself, without its '+'.
  EXPECT_EQ(
      client_->Get(Pair() + "/callPermissions?destination=" + c_.destination.substr(1), Auth())
          .status,
      400);
  // A client request id that is not well-formed is not copied (a fresh one is logged).
  const Reply reply = client_->Get(
      Pair() + "/callPermissions?" + Destination(),
      {{"Authorization", "Bearer " + key_}, {"X-Request-Id", c_.destination + " " + c_.header}});
  EXPECT_EQ(reply.status, 200);
  EXPECT_TRUE(RequestId::WellFormed(reply.headers.at("X-Request-Id")));
}

TEST_F(LogE2eTest, ReservationsWithSecretsInTheirBodies) {
  const std::string body =
      R"({"destination":")" + c_.destination + R"(","messageId":")" + c_.body + R"("})";
  auto headers = Auth();
  headers["Idempotency-Key"] = c_.header;
  EXPECT_EQ(
      client_->Send(http::verb::post, Pair() + "/callPermissionRequests", headers, body).status,
      201);
  EXPECT_EQ(client_->Send(http::verb::post, Pair() + "/calls", Auth(), body).status, 403);
  EXPECT_EQ(client_->Send(http::verb::post, Pair() + "/calls", Auth(), "{" + c_.body).status, 400);
}

TEST_F(LogE2eTest, WebhooksWithThePhoneNumberABsuidAndTheSecrets) {
  const std::string handshake = "/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=42";
  EXPECT_EQ(client_->Get(handshake + "&hub.verify_token=" + c_.verify_token).status, 200);
  EXPECT_EQ(client_->Get(handshake + "&hub.verify_token=" + c_.verify_token + "x").status, 403);

  const std::string user = c_.destination.substr(1);
  const meta::PermissionReply applied{.wamid = "wamid.log-1", .from = user, .at = server_.Now()};
  // A user known only by a BSUID is counted as not applied, and the count logged (unless the
  // throttle holds the line back in this busy process; tests/smoke/log_smoke.mjs sees it written).
  const meta::PermissionReply skipped{
      .wamid = "wamid.log-2", .from = c_.bsuid, .at = server_.Now()};
  const std::string payload = meta::Payload(kBiz, applied);
  EXPECT_EQ(client_->PostWebhook(payload, c_.app_secret).status, 200);
  EXPECT_EQ(client_->PostWebhook(meta::Payload(kBiz, skipped), c_.app_secret).status, 200);
  EXPECT_EQ(client_->PostWebhook(payload, c_.app_secret + "x").status, 401);
}

TEST_F(LogE2eTest, ARequestRefusedBeforeRoutingLogsNoneOfItsPath) {
  HttpClient client(server_.port());
  const Reply reply = client.Get(Pair() + "/callPermissions?" + Destination() + "&q=" + c_.query,
                                 {{"X-Trace", c_.header + std::string(16 * 1024, 'h')}});
  EXPECT_EQ(reply.status, 431);
  EXPECT_TRUE(RequestId::WellFormed(reply.headers.at("X-Request-Id")));
}

}  // namespace
}  // namespace callgate::testing
