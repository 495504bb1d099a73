// Users known by a business-scoped user id (BSUID, docs/rules.md §7), end to end: signed
// deliveries in the exact shapes of Meta's BSUID documentation, read back by `channelUserId`;
// the parameter's validation on every endpoint; and the reply shapes of Meta's own samples
// (no message-level `type`).
#include <gtest/gtest.h>
#include <simdjson.h>

#include "test_server.h"

namespace callgate::testing {
namespace {

constexpr char kSecret[] = "bsuid-app-secret";
constexpr char kPnid[] = "106540352242922";
constexpr char kBsuid[] = "US.13491208655302741918";
constexpr char kParent[] = "US.ENT.11815799212886844830";
constexpr char kPath[] = "/api/v1/whatsapp/subaccounts/sub-b/channels/chan-b";

std::string Seconds(Instant t) { return std::to_string(ToUnixMillis(t) / 1000); }

// A change of field `field` for the business number kPnid, wrapped in Meta's envelope.
std::string Envelope(const std::string& field, const std::string& value_members) {
  return R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":")" +
         field +
         R"(","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":")" +
         kPnid + R"("},)" + value_members + "}}]}]}";
}

// A call permission reply from a user known only by BSUID, as Meta documents it: no `from`, no
// `wa_id`, `from_user_id` and `from_parent_user_id`, no message-level `type`.
std::string BsuidOnlyReply(const std::string& wamid, Instant at, Instant expires) {
  return Envelope(
      "messages",
      R"("contacts":[{"profile":{"name":"Pablo"},"user_id":")" + std::string(kBsuid) +
          R"(","parent_user_id":")" + kParent + R"("}],"messages":[{"from_user_id":")" + kBsuid +
          R"(","from_parent_user_id":")" + kParent + R"(","id":")" + wamid + R"(","timestamp":")" +
          Seconds(at) +
          R"(","interactive":{"type":"call_permission_reply","call_permission_reply":{"response":"accept","expiration_timestamp":)" +
          Seconds(expires) + R"(,"response_source":"user_action"}}}])");
}

class BsuidE2eTest : public ::testing::Test {
 protected:
  BsuidE2eTest() : server_(ApiOptions{.meta_app_secrets = {kSecret}}) {}
  void SetUp() override {
    key_ = server_.AddTenant("acct-b", "sub-b", "chan-b", kPnid);
    client_ = std::make_unique<HttpClient>(server_.port());
  }
  std::map<std::string, std::string> Auth() { return {{"Authorization", "Bearer " + key_}}; }
  simdjson::dom::element Parse(const std::string& body) {
    parsers_.emplace_back();
    return parsers_.back().parse(body);
  }
  simdjson::dom::element Deliver(const std::string& body) {
    const Reply reply = client_->PostWebhook(body, kSecret);
    EXPECT_EQ(reply.status, 200) << reply.body;
    return Parse(reply.body);
  }
  Reply Status(const std::string& query) {
    return client_->Get(std::string(kPath) + "/callPermissions?" + query, Auth());
  }
  std::int64_t Code(const Reply& reply) { return int64_t(Parse(reply.body)["code"]); }

  TestServer server_;
  std::string key_;
  std::unique_ptr<HttpClient> client_;
  std::list<simdjson::dom::parser> parsers_;
};

TEST_F(BsuidE2eTest, ANeverSeenBsuidReadsNotGranted) {
  const Reply reply = Status(std::string("channelUserId=") + kBsuid);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(std::string_view(Parse(reply.body)["status"]), "not_granted");
}

TEST_F(BsuidE2eTest, AReplyFromABsuidOnlyUserIsReadableByChannelUserId) {
  const Instant now = server_.Now();
  const auto counts = Deliver(BsuidOnlyReply("wamid.b1", now, now + std::chrono::hours(48)));
  EXPECT_EQ(int64_t(counts["applied"]), 1);
  EXPECT_EQ(int64_t(counts["invalidUser"]), 0);
  const Reply reply = Status(std::string("channelUserId=") + kBsuid);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(std::string_view(Parse(reply.body)["status"]), "temporary");
  const Reply history =
      client_->Get(std::string(kPath) + "/callPermissions/history?channelUserId=" + kBsuid, Auth());
  ASSERT_EQ(history.status, 200) << history.body;
  EXPECT_EQ(std::string_view(Parse(history.body)["channelUserId"]), kBsuid);
}

TEST_F(BsuidE2eTest, TheUserParameterIsExactlyOneOfDestinationAndChannelUserId) {
  EXPECT_EQ(Code(Status("")), 1000);
  const Reply both = Status(std::string("destination=%2B6591234567&channelUserId=") + kBsuid);
  EXPECT_EQ(both.status, 400);
  EXPECT_EQ(Code(both), 1000);
  EXPECT_NE(both.body.find("not both"), std::string::npos) << both.body;
  for (const char* bad : {"6591234567", "US.", "us.123", "US.12-3", "USA.123", "US.ENT."}) {
    const Reply reply = Status(std::string("channelUserId=") + bad);
    EXPECT_EQ(reply.status, 400) << bad;
    EXPECT_EQ(Code(reply), 1008) << bad;
  }
  EXPECT_EQ(Code(Status("channelUserId=US." + std::string(129, '1'))), 1008);
  EXPECT_EQ(Status("channelUserId=US." + std::string(128, '1')).status, 200);
  EXPECT_EQ(Status(std::string("channelUserId=") + kParent).status, 200);
}

TEST_F(BsuidE2eTest, ReservationsTakeChannelUserIdInTheBody) {
  const std::string body = std::string(R"({"channelUserId":")") + kBsuid + R"("})";
  const Reply first = client_->Send(boost::beast::http::verb::post,
                                    std::string(kPath) + "/callPermissionRequests", Auth(), body);
  ASSERT_EQ(first.status, 201) << first.body;
  const Reply second = client_->Send(boost::beast::http::verb::post,
                                     std::string(kPath) + "/callPermissionRequests", Auth(), body);
  EXPECT_EQ(second.status, 429);
  EXPECT_EQ(Code(second), 1053);
  const auto status = Parse(Status(std::string("channelUserId=") + kBsuid).body);
  EXPECT_EQ(int64_t(status["actions"].at(0)["limits"].at(0)["currentUsage"]), 1);
  // The same limits are not the phone number's: nothing links them.
  const auto other = Parse(Status("destination=%2B6591234567").body);
  EXPECT_EQ(int64_t(other["actions"].at(0)["limits"].at(0)["currentUsage"]), 0);

  const Reply both = client_->Send(
      boost::beast::http::verb::post, std::string(kPath) + "/calls", Auth(),
      std::string(R"({"destination":"+6591234567","channelUserId":")") + kBsuid + R"("})");
  EXPECT_EQ(Code(both), 1000);
  const Reply bad = client_->Send(boost::beast::http::verb::post, std::string(kPath) + "/calls",
                                  Auth(), R"({"channelUserId":42})");
  EXPECT_EQ(Code(bad), 1008);
}

TEST_F(BsuidE2eTest, BusinessCallsToABsuidCountTowardStartCall) {
  const Instant now = server_.Now();
  // Meta's business-initiated call webhooks name a BSUID-only user by to_user_id.
  const auto counts = Deliver(
      Envelope("calls", R"("calls":[{"id":"wacid.b1","to_user_id":")" + std::string(kBsuid) +
                            R"(","from":"15550783881","event":"connect","timestamp":")" +
                            Seconds(now) + R"(","direction":"BUSINESS_INITIATED"}])"));
  EXPECT_EQ(int64_t(counts["applied"]), 1);
  const auto status = Parse(Status(std::string("channelUserId=") + kBsuid).body);
  EXPECT_EQ(int64_t(status["actions"].at(1)["limits"].at(0)["currentUsage"]), 1);
}

TEST_F(BsuidE2eTest, ItemsNotAppliedAreCountedByReason) {
  const Instant now = server_.Now();
  const auto counts = Deliver(Envelope(
      "messages",
      R"("messages":[{"from":"6591234567","id":"wamid.t","timestamp":")" + Seconds(now) +
          R"(","type":"text","text":{"body":"hi"}},)" + R"({"id":"wamid.n","timestamp":")" +
          Seconds(now) +
          R"(","interactive":{"type":"call_permission_reply","call_permission_reply":{"response":"accept"}}}])"));
  EXPECT_EQ(int64_t(counts["ignored"]), 2);
  EXPECT_EQ(int64_t(counts["ignoredByReason"]["notPermissionReply"]), 1);
  EXPECT_EQ(int64_t(counts["ignoredByReason"]["missingUser"]), 1);
}

}  // namespace
}  // namespace callgate::testing
