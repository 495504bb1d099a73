// End-to-end tests of POST .../callPermissions/batch over real HTTP: each item is the status
// GET's body for its user (after grants through the signed webhook and a reservation, a BSUID user
// among them) or the GET's error for it, in request order; the bounds of a batch; and the request
// as a whole refused exactly as the GET refuses it.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <list>

#include "meta_payloads.h"
#include "test_server.h"

namespace callgate::testing {
namespace {

namespace http = boost::beast::http;

constexpr char kSecret[] = "batch-app-secret";
constexpr char kPnid[] = "106540352242925";
constexpr char kBsuid[] = "US.13491208655302741918";
const meta::Business kBiz{kPnid, "15550783885"};

std::string Channel(const std::string& sub = "sub-t", const std::string& channel = "chan-t") {
  return "/api/v1/whatsapp/subaccounts/" + sub + "/channels/" + channel;
}
std::string Api(const std::string& sub = "sub-t", const std::string& channel = "chan-t") {
  return Channel(sub, channel) + "/callPermissions";
}
std::string BatchPath(const std::string& sub = "sub-t", const std::string& channel = "chan-t") {
  return Api(sub, channel) + "/batch";
}

// A JSON array of `items`, as given (each already a JSON value).
std::string Array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out + "]";
}
std::string Quoted(const std::string& text) {
  std::string out;
  JsonWriter(out).String(text);
  return out;
}
std::vector<std::string> QuotedAll(const std::vector<std::string>& texts) {
  std::vector<std::string> out;
  for (const std::string& text : texts) out.push_back(Quoted(text));
  return out;
}
// `n` distinct valid Singapore mobile numbers.
std::vector<std::string> Numbers(int n, int base = 0) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("+659" + std::to_string(1000000 + base + i));
  return out;
}

// A call permission accept from a user known only by BSUID, as Meta documents it.
std::string BsuidAccept(Instant at, Instant expires) {
  const std::string seconds = std::to_string(meta::Secs(at));
  return R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[)"
         R"({"field":"messages","value":{"messaging_product":"whatsapp","metadata":)"
         R"({"display_phone_number":"15550783885","phone_number_id":")" +
         std::string(kPnid) + R"("},"contacts":[{"profile":{"name":"Pablo"},"user_id":")" + kBsuid +
         R"("}],"messages":[{"from_user_id":")" + kBsuid +
         R"(","id":"wamid.batch-bsuid","timestamp":")" + seconds +
         R"(","interactive":{"type":"call_permission_reply","call_permission_reply":)"
         R"({"response":"accept","expiration_timestamp":)" +
         std::to_string(meta::Secs(expires)) + R"(,"response_source":"user_action"}}}]}}]}]})";
}

class BatchE2eTest : public ::testing::Test {
 protected:
  BatchE2eTest() : server_(ApiOptions{.meta_app_secrets = {kSecret}}) {}
  void SetUp() override {
    key_ = server_.AddTenant("acct-t", "sub-t", "chan-t", kPnid);
    client_ = std::make_unique<HttpClient>(server_.port());
  }
  std::map<std::string, std::string> Auth(const std::string& key) {
    return {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}};
  }
  Reply Post(const std::string& body, const std::string& path = BatchPath()) {
    return client_->Send(http::verb::post, path, Auth(key_), body);
  }
  Reply PostLists(const std::vector<std::string>& destinations,
                  const std::vector<std::string>& channel_user_ids = {}) {
    std::string body = "{";
    if (!destinations.empty()) body += R"("destinations":)" + Array(QuotedAll(destinations));
    if (!channel_user_ids.empty()) {
      body += std::string(destinations.empty() ? "" : ",") + R"("channelUserIds":)" +
              Array(QuotedAll(channel_user_ids));
    }
    return Post(body + "}");
  }
  Reply Get(const std::string& query, const std::string& path = Api()) {
    return client_->Get(path + "?" + query, Auth(key_));
  }
  simdjson::dom::element Parse(const std::string& body) {
    parsers_.emplace_back();
    return parsers_.back().parse(body);
  }
  std::int64_t Code(const Reply& reply) { return int64_t(Parse(reply.body)["code"]); }
  // The items of a 200, each as its raw JSON text.
  std::vector<std::string> Items(const Reply& reply) {
    EXPECT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(reply.content_type, "application/json");
    std::vector<std::string> out;
    simdjson::dom::array results = Parse(reply.body)["results"];
    for (simdjson::dom::element item : results) out.push_back(simdjson::minify(item));
    return out;
  }
  // What the batch must answer for a user: the GET's 200 body with the user leading it, or the
  // GET's code and message after it.
  std::string Expected(const std::string& field, const std::string& value) {
    const std::string encoded = field == "destination" && !value.empty() && value[0] == '+'
                                    ? "%2B" + value.substr(1)
                                    : value;
    const Reply get = Get(field + "=" + encoded);
    const std::string lead = "{\"" + field + "\":" + Quoted(value);
    if (get.status == 200) return lead + "," + get.body.substr(1);
    simdjson::dom::element error = Parse(get.body);
    return lead + ",\"code\":" + std::to_string(int64_t(error["code"])) +
           ",\"message\":" + Quoted(std::string(std::string_view(error["message"]))) + "}";
  }
  void Deliver(const std::string& payload) {
    const Reply reply = client_->PostWebhook(payload, kSecret);
    ASSERT_EQ(reply.status, 200) << reply.body;
  }

  TestServer server_;
  std::string key_;
  std::unique_ptr<HttpClient> client_;
  std::list<simdjson::dom::parser> parsers_;
};

TEST_F(BatchE2eTest, EachItemIsTheStatusGetsAnswerForItsUserInRequestOrder) {
  const Instant now = server_.Now();
  // A temporary grant, a permanent one, a reached request limit, a BSUID user's grant.
  meta::PermissionReply temporary{.wamid = "wamid.t1", .from = "6591000001", .at = now};
  temporary.expiration_timestamp = now + std::chrono::hours(48);
  Deliver(meta::Payload(kBiz, temporary));
  Deliver(meta::Payload(
      kBiz, meta::PermissionReply{
                .wamid = "wamid.t2", .from = "6591000002", .at = now, .is_permanent = true}));
  ASSERT_EQ(client_
                ->Send(http::verb::post, Channel() + "/callPermissionRequests", Auth(key_),
                       R"({"destination":"+6591000003"})")
                .status,
            201);
  Deliver(BsuidAccept(now, now + std::chrono::hours(24)));

  const std::vector<std::string> destinations = {
      "+6591000001", "6591000001", "+6591000002", "",           "+6591000003",
      "+6591000004", "+x",         "+6591000001", "+6591000002"};
  const std::vector<std::string> channel_user_ids = {kBsuid, "us.1", "", "US.ENT.1", kBsuid};
  const Reply reply = PostLists(destinations, channel_user_ids);
  const std::vector<std::string> items = Items(reply);
  ASSERT_EQ(items.size(), destinations.size() + channel_user_ids.size());
  // Byte for byte: the whole answer is the GETs' answers, each led by its user, in order.
  std::vector<std::string> expected;
  for (const std::string& value : destinations) expected.push_back(Expected("destination", value));
  for (const std::string& value : channel_user_ids) {
    expected.push_back(Expected("channelUserId", value));
  }
  EXPECT_EQ(reply.body, "{\"results\":" + Array(expected) + "}");
  // The grants really are in the answer (not all not_granted), and the errors are the GET's.
  EXPECT_EQ(std::string_view(Parse(items[0])["status"]), "temporary");
  EXPECT_EQ(std::string_view(Parse(items[2])["status"]), "permanent");
  EXPECT_EQ(int64_t(Parse(items[1])["code"]), 1002);
  EXPECT_EQ(int64_t(Parse(items[3])["code"]), 1000);
  EXPECT_NE(items[4].find("limitExpirationTime"), std::string::npos) << items[4];
  EXPECT_EQ(std::string_view(Parse(items[9])["status"]), "temporary");
  EXPECT_EQ(int64_t(Parse(items[10])["code"]), 1008);
  EXPECT_EQ(Parse(items[0])["errorId"].error(), simdjson::NO_SUCH_FIELD);
}

TEST_F(BatchE2eTest, AThousandItemsAreAnsweredInOrder) {
  const std::vector<std::string> numbers = Numbers(1000);
  const std::vector<std::string> items = Items(PostLists(numbers));
  ASSERT_EQ(items.size(), 1000u);
  for (std::size_t i = 0; i < items.size(); ++i) {
    ASSERT_EQ(std::string_view(Parse(items[i])["destination"]), numbers[i]) << i;
  }
  // Split between the two lists, too.
  EXPECT_EQ(Items(PostLists(Numbers(999), {kBsuid})).size(), 1000u);
}

TEST_F(BatchE2eTest, MoreThanAThousandItemsAre400With1010) {
  const Reply reply = PostLists(Numbers(1001));
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(Code(reply), 1010);
  const Reply split = PostLists(Numbers(1000), {kBsuid});
  EXPECT_EQ(split.status, 400);
  EXPECT_EQ(Code(split), 1010);
}

TEST_F(BatchE2eTest, NoItemIs400With1000) {
  for (const char* body :
       {"{}", R"({"destinations":[]})", R"({"destinations":[],"channelUserIds":[]})",
        R"({"destination":"+6591000001"})"}) {
    const Reply reply = Post(body);
    EXPECT_EQ(reply.status, 400) << body;
    EXPECT_EQ(Code(reply), 1000) << body;
  }
}

TEST_F(BatchE2eTest, WrongTypesAndBadJsonAre400With1000) {
  for (const char* body :
       {"", "{", "[\"+6591000001\"]", R"({"destinations":"+6591000001"})",
        R"({"destinations":[6591000001]})", R"({"destinations":["+6591000001",null]})",
        R"({"destinations":["+6591000001"],"channelUserIds":{"a":"US.1"}})"}) {
    const Reply reply = Post(body);
    EXPECT_EQ(reply.status, 400) << body;
    EXPECT_EQ(Code(reply), 1000) << body;
  }
}

TEST_F(BatchE2eTest, UnknownMembersAreIgnoredAsOnTheReservations) {
  const std::vector<std::string> items =
      Items(Post(R"({"destinations":["+6591000001"],"note":"campaign 7"})"));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0], Expected("destination", "+6591000001"));
}

TEST_F(BatchE2eTest, TheRequestIsRefusedAsTheStatusGetRefusesIt) {
  const std::string other_key = server_.AddTenant("acct-o", "sub-o", "chan-o", "106540352242926");
  const std::string body = R"({"destinations":["+6591000001"]})";
  struct Case {
    std::string what, path, key;
  };
  const std::vector<Case> cases = {
      {"unknown subaccount", "sub-x", key_},      {"another account's subaccount", "sub-o", key_},
      {"unknown channel", "chan-x", key_},        {"another subaccount's channel", "chan-o", key_},
      {"the other account's key", "", other_key}, {"an unknown key", "", "cgk_unknown"},
  };
  for (const Case& c : cases) {
    const std::string sub = c.path == "sub-x" || c.path == "sub-o" ? c.path : "sub-t";
    const std::string channel = c.path.starts_with("chan-") ? c.path : "chan-t";
    const Reply batch = client_->Send(http::verb::post, BatchPath(sub, channel), Auth(c.key), body);
    const Reply get = client_->Get(Api(sub, channel) + "?destination=%2B6591000001", Auth(c.key));
    EXPECT_GE(get.status, 400) << c.what;
    EXPECT_EQ(batch.status, get.status) << c.what;
    EXPECT_EQ(Code(batch), Code(get)) << c.what;
  }
}

TEST_F(BatchE2eTest, NoAuthorizationIs401) {
  const Reply reply =
      client_->Send(http::verb::post, BatchPath(), {}, R"({"destinations":["+1"]})");
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(Code(reply), 1200);
}

TEST_F(BatchE2eTest, AnotherMethodIs405WithAllowPost) {
  const Reply reply = client_->Get(BatchPath(), Auth(key_));
  EXPECT_EQ(reply.status, 405);
  EXPECT_EQ(Code(reply), 2001);
  EXPECT_EQ(reply.headers.at("Allow"), "POST");
}

TEST_F(BatchE2eTest, AThousandOfTheLongestIdsFitTheDefaultBodyLimit) {
  std::vector<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const std::string n = std::to_string(i);
    ids.push_back("US.ENT." + std::string(128 - n.size(), '1') + n);
  }
  const std::vector<std::string> items = Items(PostLists({}, ids));
  ASSERT_EQ(items.size(), 1000u);
  EXPECT_EQ(std::string_view(Parse(items[999])["status"]), "not_granted");
}

TEST(BatchE2eLimitsTest, ABodyOverMaxBodyIs413With1010) {
  TestServer server({}, {.body_limit = 8192});
  const std::string key = server.AddTenant("acct-t", "sub-t", "chan-t", kPnid);
  HttpClient client(server.port());
  const std::string body = R"({"destinations":)" + Array(QuotedAll(Numbers(1000))) + "}";
  ASSERT_GT(body.size(), 8192u);
  const Reply reply =
      client.Send(http::verb::post, BatchPath(), {{"Authorization", "Bearer " + key}}, body);
  EXPECT_EQ(reply.status, 413);
  EXPECT_EQ(reply.content_type, "application/json");
  EXPECT_NE(reply.body.find("\"code\":1010"), std::string::npos) << reply.body;
}

}  // namespace
}  // namespace callgate::testing
