// Users known by a business-scoped user id (BSUID, docs/rules.md §7), end to end: signed
// deliveries in the exact shapes of Meta's BSUID documentation, read back by `channelUserId`;
// the parameter's validation on every endpoint; and the reply shapes of Meta's own samples
// (no message-level `type`).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <atomic>
#include <list>
#include <random>
#include <thread>

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

// A user-initiated call connect naming the user by the given id fields (e.g. `"from":"…"`).
std::string UserCall(const std::string& wacid, const std::string& user_fields, Instant at) {
  return Envelope("calls", R"("calls":[{"id":")" + wacid + R"(",)" + user_fields +
                               R"(,"to":"15550783881","event":"connect","timestamp":")" +
                               Seconds(at) + R"(","direction":"USER_INITIATED"}])");
}

TEST_F(BsuidE2eTest, AUserSeenLaterWithPhoneAndBsuidReadsTheSameByEither) {
  const Instant now = server_.Now();
  // A request reserved by phone number, a reply from the BSUID alone: two ids, not yet linked.
  const Reply reserved =
      client_->Send(boost::beast::http::verb::post, std::string(kPath) + "/callPermissionRequests",
                    Auth(), R"({"destination":"+6591234567"})");
  ASSERT_EQ(reserved.status, 201) << reserved.body;
  Deliver(BsuidOnlyReply("wamid.b1", now, now + std::chrono::hours(48)));
  EXPECT_EQ(std::string_view(Parse(Status("destination=%2B6591234567").body)["status"]),
            "not_granted");
  // A status delivery naming both (the business messaged the number recently) links them.
  const auto counts = Deliver(Envelope(
      "calls", R"("statuses":[{"id":"wacid.s1","type":"call","status":"RINGING","timestamp":")" +
                   Seconds(now) + R"(","recipient_id":"6591234567","recipient_user_id":")" +
                   kBsuid + R"("}])"));
  EXPECT_EQ(int64_t(counts["usersLinked"]), 1);
  const Reply by_phone = Status("destination=%2B6591234567");
  const Reply by_bsuid = Status(std::string("channelUserId=") + kBsuid);
  ASSERT_EQ(by_phone.status, 200);
  EXPECT_EQ(by_phone.body, by_bsuid.body);
  const auto status = Parse(by_phone.body);
  EXPECT_EQ(std::string_view(status["status"]), "temporary");
  EXPECT_EQ(int64_t(status["actions"].at(0)["limits"].at(0)["currentUsage"]), 1);
  // The parent BSUID (from the reply's contacts) reads the same pair too.
  EXPECT_EQ(Status(std::string("channelUserId=") + kParent).body, by_phone.body);
  // So does the history, with the events of both ids.
  const auto history = Parse(
      client_
          ->Get(std::string(kPath) + "/callPermissions/history?destination=%2B6591234567", Auth())
          .body);
  EXPECT_EQ(simdjson::dom::array(history["entries"]).size(), 2u);

  // A user-initiated call by from_user_id alone empties the request windows of that one pair.
  Deliver(UserCall("wacid.u1", std::string(R"("from_user_id":")") + kBsuid + "\"",
                   now + std::chrono::seconds(1)));
  const auto after = Parse(Status("destination=%2B6591234567").body);
  EXPECT_EQ(int64_t(after["actions"].at(0)["limits"].at(0)["currentUsage"]), 0);
}

TEST_F(BsuidE2eTest, ARotatedBsuidReadsTheSamePair) {
  const Instant now = server_.Now();
  Deliver(BsuidOnlyReply("wamid.b1", now, now + std::chrono::hours(48)));
  const std::string rotated = "US.99887766554433221100";
  // Meta's user_id_update: previous -> current, no phone number.
  const auto counts =
      Deliver(Envelope("user_id_update", R"("user_id_update":[{"user_id":{"previous":")" +
                                             std::string(kBsuid) + R"(","current":")" + rotated +
                                             R"("},"timestamp":")" + Seconds(now) + R"("}])"));
  EXPECT_EQ(int64_t(counts["rotations"]), 1);
  EXPECT_EQ(int64_t(counts["usersLinked"]), 1);
  const Reply by_new = Status("channelUserId=" + rotated);
  ASSERT_EQ(by_new.status, 200);
  EXPECT_EQ(std::string_view(Parse(by_new.body)["status"]), "temporary");
  EXPECT_EQ(by_new.body, Status(std::string("channelUserId=") + kBsuid).body);
  // The system-message form of a rotation, on the rotated id.
  const std::string again = "US.5555";
  const auto system = Deliver(
      Envelope("messages", R"("messages":[{"from_user_id":")" + rotated +
                               R"(","id":"wamid.sys","timestamp":")" + Seconds(now) +
                               R"(","type":"system","system":{"body":"changed","user_id":")" +
                               again + R"(","type":"user_changed_user_id"}}])"));
  EXPECT_EQ(int64_t(system["rotations"]), 1);
  EXPECT_EQ(Status("channelUserId=" + again).body, by_new.body);
  // Both rotations are in the user's history, once each however often they are delivered.
  Deliver(Envelope("user_id_update", R"("user_id_update":[{"user_id":{"previous":")" +
                                         std::string(kBsuid) + R"(","current":")" + rotated +
                                         R"("},"timestamp":")" + Seconds(now) + R"("}])"));
  const auto history = Parse(
      client_->Get(std::string(kPath) + "/callPermissions/history?channelUserId=" + again, Auth())
          .body);
  int rotations = 0;
  for (simdjson::dom::element entry : simdjson::dom::array(history["entries"])) {
    if (std::string_view(entry["kind"]) != "user_id_changed") continue;
    ++rotations;
    const std::string_view id = entry["id"];
    const std::string_view previous = entry["details"]["previousChannelUserId"];
    EXPECT_TRUE((id == rotated && previous == kBsuid) || (id == again && previous == rotated))
        << id;
  }
  EXPECT_EQ(rotations, 2);
}

TEST_F(BsuidE2eTest, CallReservationsByEitherIdOfALinkedUserAreExactUnderConcurrency) {
  const Instant now = server_.Now();
  // A permanent grant from a reply naming both ids: linked, and calls are allowed.
  Deliver(Envelope(
      "messages",
      R"("contacts":[{"wa_id":"6591234567","user_id":")" + std::string(kBsuid) +
          R"("}],"messages":[{"from":"6591234567","from_user_id":")" + kBsuid +
          R"(","id":"wamid.p","timestamp":")" + Seconds(now) +
          R"(","interactive":{"type":"call_permission_reply","call_permission_reply":{"response":"accept","is_permanent":true}}}])"));
  constexpr int kThreads = 10, kEach = 25;
  std::atomic<int> created{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client(server_.port());
      const std::string body = t % 2 == 0 ? std::string(R"({"destination":"+6591234567"})")
                                          : std::string(R"({"channelUserId":")") + kBsuid + "\"}";
      for (int i = 0; i < kEach; ++i) {
        const Reply reply = client.Send(boost::beast::http::verb::post,
                                        std::string(kPath) + "/calls", Auth(), body);
        if (reply.status == 201) ++created;
        if (reply.status == 429) ++refused;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(created.load(), 100);
  EXPECT_EQ(refused.load(), kThreads * kEach - 100);
}

// Property: the same events about one user, each naming the user by phone only, BSUID only or
// both, in any order and with duplicates, leave the same status and history by either id as
// the same events all by phone number to a user known only by it.
TEST_F(BsuidE2eTest, AnyMixOfIdsAndOrderGivesTheSameViewAndHistoryByEitherId) {
  const Instant t0 = server_.Now() - std::chrono::hours(2);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 6; ++trial) {
    SCOPED_TRACE(trial);
    const std::string phone = "6591" + std::to_string(100000 + trial * 10);
    const std::string reference = "6591" + std::to_string(100001 + trial * 10);
    const std::string bsuid = "US.77" + std::to_string(trial);
    // Items: a temporary accept, a business call that connects and ends, a missed business call,
    // a user call; each a JSON item of its change, with the user's fields left to fill.
    struct Item {
      std::string field, kind, json;  // json has {USER} where the user's fields go
    };
    auto secs = [&](int minutes) { return Seconds(t0 + std::chrono::minutes(minutes)); };
    const std::vector<Item> items = {
        {"messages", "messages",
         R"({{USER},"id":"wamid.a)" + std::to_string(trial) + R"(","timestamp":")" + secs(1) +
             R"(","interactive":{"type":"call_permission_reply","call_permission_reply":{"response":"accept","expiration_timestamp":")" +
             Seconds(t0 + std::chrono::hours(100)) + R"("}}})"},
        {"calls", "calls",
         R"({"id":"wacid.c1",{TO},"event":"connect","timestamp":")" + secs(10) +
             R"(","direction":"BUSINESS_INITIATED"})"},
        {"calls", "calls",
         R"({"id":"wacid.c1",{TO},"event":"terminate","status":"COMPLETED","start_time":")" +
             secs(10) + R"(","end_time":")" + secs(12) + R"(","duration":120,"timestamp":")" +
             secs(12) + R"(","direction":"BUSINESS_INITIATED"})"},
        {"calls", "calls",
         R"({"id":"wacid.c2",{TO},"event":"terminate","status":"FAILED","timestamp":")" + secs(20) +
             R"(","direction":"BUSINESS_INITIATED"})"},
        {"calls", "calls",
         R"({"id":"wacid.c3",{USER},"event":"connect","timestamp":")" + secs(30) +
             R"(","direction":"USER_INITIATED"})"},
    };
    auto fill = [](std::string json, const std::string& phone_digits, const std::string& id,
                   int mode) {
      // mode 0: phone only, 1: BSUID only, 2: both; as the caller (from) or the callee (to).
      auto fields = [&](const std::string& side) {
        std::string out;
        if (mode != 1) out = "\"" + side + R"(":")" + phone_digits + "\"";
        if (mode != 0) out += (out.empty() ? "\"" : ",\"") + side + R"(_user_id":")" + id + "\"";
        return out;
      };
      for (const auto& [marker, text] : {std::pair{std::string("{USER}"), fields("from")},
                                         std::pair{std::string("{TO}"), fields("to")}}) {
        const auto at = json.find(marker);
        if (at != std::string::npos) json.replace(at, marker.size(), text);
      }
      return json;
    };
    auto payload = [&](const Item& item, const std::string& json) {
      return Envelope(item.field, "\"" + item.kind + "\":[" + json + "]");
    };
    // The reference: by phone only, in order.
    for (const Item& item : items) Deliver(payload(item, fill(item.json, reference, "", 0)));
    // The user: random ids per delivery (one with both, so they link), shuffled, some twice.
    std::vector<std::string> deliveries;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const int mode = i == 0 ? 2 : static_cast<int>(rng() % 3);
      deliveries.push_back(payload(items[i], fill(items[i].json, phone, bsuid, mode)));
      if (rng() % 2)
        deliveries.push_back(
            payload(items[i], fill(items[i].json, phone, bsuid, static_cast<int>(rng() % 3))));
    }
    std::shuffle(deliveries.begin(), deliveries.end(), rng);
    for (const std::string& body : deliveries) Deliver(body);

    const std::string want = Status("destination=%2B" + reference).body;
    EXPECT_EQ(Status("destination=%2B" + phone).body, want);
    EXPECT_EQ(Status("channelUserId=" + bsuid).body, want);
    auto entries = [&](const std::string& query) {
      const Reply reply =
          client_->Get(std::string(kPath) + "/callPermissions/history?" + query, Auth());
      const auto doc = Parse(reply.body);
      return simdjson::minify(doc["entries"]);
    };
    const std::string history = entries("destination=%2B" + reference);
    EXPECT_EQ(entries("destination=%2B" + phone), history);
    EXPECT_EQ(entries("channelUserId=" + bsuid), history);
  }
}

// Every documented variant of a call permission reply, in the shape of Meta's own samples (no
// message-level `type`), lands on the expected status.
TEST_F(BsuidE2eTest, EveryDocumentedReplyVariantWithoutMessageTypeIsApplied) {
  const Instant now = server_.Now();
  auto reply = [&](const std::string& from, const std::string& wamid, const std::string& context,
                   const std::string& body, Instant at) {
    return Envelope(
        "messages",
        R"("contacts":[{"profile":{"name":"Kerry"},"wa_id":")" + from + R"("}],"messages":[{)" +
            context + R"("from":")" + from + R"(","id":")" + wamid + R"(","timestamp":")" +
            Seconds(at) +
            R"(","interactive":{"type":"call_permission_reply","call_permission_reply":)" + body +
            "}}]");
  };
  const std::string temporary = R"({"response":"accept","expiration_timestamp":)" +
                                Seconds(now + std::chrono::hours(72)) +
                                R"(,"response_source":"user_action"})";
  struct Variant {
    std::string name;
    std::vector<std::pair<std::string, std::string>> replies;  // context, body (in order)
    std::string want;
  };
  const std::vector<Variant> variants = {
      {"temporary", {{R"("context":{"id":"wamid.req"},)", temporary}}, "temporary"},
      {"permanent",
       {{R"("context":{"id":"wamid.req"},)",
         R"({"response":"accept","is_permanent":true,"response_source":"user_action"})"}},
       "permanent"},
      {"business profile",
       {{"", R"({"response":"accept","is_permanent":true,"response_source":"user_action"})"}},
       "permanent"},
      {"reject",
       {{R"("context":{"id":"wamid.req"},)", temporary},
        {"", R"({"response":"reject","response_source":"user_action"})"}},
       "not_granted"},
      {"automatic revoke",
       {{R"("context":{"id":"wamid.req"},)", temporary},
        {"", R"({"response":"reject","response_source":"automatic"})"}},
       "not_granted"},
      {"automatic callback grant",
       {{R"("context":{"id":"wacid.cb1"},)",
         R"({"response":"accept","response_source":"automatic"})"}},
       "temporary"},
  };
  int user = 0;
  for (const Variant& variant : variants) {
    SCOPED_TRACE(variant.name);
    const std::string from = "659200000" + std::to_string(user++);
    int n = 0;
    for (const auto& [context, body] : variant.replies) {
      const auto counts = Deliver(reply(from, "wamid.v" + from + "-" + std::to_string(n), context,
                                        body, now - std::chrono::minutes(10 - n)));
      ++n;
      EXPECT_EQ(int64_t(counts["applied"]), 1);
      EXPECT_EQ(int64_t(counts["ignored"]), 0);
    }
    EXPECT_EQ(std::string_view(Parse(Status("destination=%2B" + from).body)["status"]),
              variant.want);
  }
}

}  // namespace
}  // namespace callgate::testing
