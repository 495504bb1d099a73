// End-to-end tests of the event side over real HTTP: signed Meta webhooks in their exact upstream
// shapes for every scenario of docs/rules.md §2 (each also delivered twice, reversed, shuffled and
// batched, which must read the same status and history), the enforcement endpoints
// (reservations, call authorisations and their holds, idempotency, concurrency) and the history
// endpoint. Time is the TestServer's fake clock.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <functional>
#include <random>
#include <set>

#include "meta_payloads.h"
#include "test_server.h"

namespace callgate::testing {
namespace {

namespace http = boost::beast::http;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr char kSecret[] = "secret";
constexpr char kSub[] = "sub-a";
constexpr char kChan[] = "chan-a";     // production, callback permission disabled
constexpr char kChanCb[] = "chan-cb";  // production, callback permission enabled
constexpr char kChanSb[] = "chan-sb";  // sandbox
constexpr char kUnknownPnid[] = "999999999999999";
const meta::Business kBiz{"106540352242922", "15550783881"};
const meta::Business kBizCb{"106540352242923", "15550783882"};
const meta::Business kBizSb{"106540352242924", "15550783883"};

std::string ChannelPath(const std::string& channel, const std::string& sub = kSub) {
  return "/api/v1/whatsapp/subaccounts/" + sub + "/channels/" + channel;
}

// --- Payload items, as upstream sends them ---------------------------------------------------

meta::PermissionReply Accept(const std::string& wamid, const std::string& user, Instant at,
                             bool permanent, std::optional<Instant> expiration = std::nullopt,
                             std::optional<std::string> context = "wamid.request-1") {
  meta::PermissionReply reply{.wamid = wamid, .from = user, .at = at};
  reply.is_permanent = permanent;
  reply.expiration_timestamp = expiration;
  reply.context_id = std::move(context);
  return reply;
}

meta::PermissionReply Reject(const std::string& wamid, const std::string& user, Instant at,
                             std::optional<std::string> context = std::nullopt,
                             const std::string& source = "user_action") {
  meta::PermissionReply reply{.wamid = wamid, .from = user, .at = at, .response = "reject"};
  reply.response_source = source;
  reply.context_id = std::move(context);
  return reply;
}

// A response header's value, empty if absent.
std::string Header(const Reply& reply, const std::string& name) {
  const auto it = reply.headers.find(name);
  return it == reply.headers.end() ? "" : it->second;
}

bool UserInitiated(const std::string& direction) { return direction == "USER_INITIATED"; }

meta::Call Connect(const meta::Business& biz, const std::string& wacid,
                   const std::string& direction, const std::string& user, Instant at,
                   std::optional<std::string> opaque = std::nullopt) {
  meta::Call call{.id = wacid, .event = "connect", .direction = direction};
  call.from = UserInitiated(direction) ? user : biz.display_phone_number;
  call.to = UserInitiated(direction) ? biz.display_phone_number : user;
  call.at = at;
  call.biz_opaque_callback_data = std::move(opaque);
  return call;
}

// A terminate for a call picked up at `start` that lasted `duration`.
meta::Call Answered(const meta::Business& biz, const std::string& wacid,
                    const std::string& direction, const std::string& user, Instant start,
                    seconds duration, std::optional<std::string> opaque = std::nullopt) {
  meta::Call call = Connect(biz, wacid, direction, user, start + duration, std::move(opaque));
  call.event = "terminate";
  call.status = "Completed";
  call.start_time = start;
  call.end_time = start + duration;
  call.duration = duration.count();
  return call;
}

// A terminate for a call never picked up: no start_time, no duration.
meta::Call Missed(const meta::Business& biz, const std::string& wacid, const std::string& direction,
                  const std::string& user, Instant at,
                  std::optional<std::string> opaque = std::nullopt) {
  meta::Call call = Connect(biz, wacid, direction, user, at, std::move(opaque));
  call.event = "terminate";
  call.status = "Failed";
  return call;
}

meta::CallStatus Status(const std::string& wacid, const std::string& status,
                        const std::string& user, Instant at) {
  return {.id = wacid, .status = status, .recipient_id = user, .at = at};
}

constexpr char kUic[] = "USER_INITIATED";
constexpr char kBic[] = "BUSINESS_INITIATED";

// --- The ways one scenario's payloads are delivered ---------------------------------------

enum class Delivery {
  kInOrder,    // one item per payload, in event order (the reference)
  kEachTwice,  // every payload delivered twice in a row
  kAllTwice,   // the whole sequence, then the whole sequence again
  kReversed,   // newest first (terminate before connect, ...)
  kShuffledA,  // two fixed pseudo-random orders
  kShuffledB,
  kOnePayload,          // every item in one delivery
  kOnePayloadReversed,  // every item in one delivery, newest first
};
constexpr Delivery kDeliveries[] = {Delivery::kInOrder,    Delivery::kEachTwice,
                                    Delivery::kAllTwice,   Delivery::kReversed,
                                    Delivery::kShuffledA,  Delivery::kShuffledB,
                                    Delivery::kOnePayload, Delivery::kOnePayloadReversed};

std::string_view DeliveryName(Delivery delivery) {
  switch (delivery) {
    case Delivery::kInOrder:
      return "in order";
    case Delivery::kEachTwice:
      return "each twice";
    case Delivery::kAllTwice:
      return "all twice";
    case Delivery::kReversed:
      return "reversed";
    case Delivery::kShuffledA:
      return "shuffled (seed 1)";
    case Delivery::kShuffledB:
      return "shuffled (seed 2)";
    case Delivery::kOnePayload:
      return "one payload";
    case Delivery::kOnePayloadReversed:
      return "one payload, reversed";
  }
  return "?";
}

// What a pair reads after a delivery: the status body and the history entries, as bytes.
struct Observed {
  std::string status;
  std::string history;
};

struct WebhookCounts {
  std::int64_t applied = -1, duplicate = -1, too_late = -1, ignored = -1, unknown_channel = -1,
               invalid_user = -1, invalid_time = -1, settings_changed = -1;
};

struct HistoryPage {
  std::vector<std::string> entries;  // each entry, minified
  std::optional<std::string> next_cursor;
};

class EventsE2eTest : public ::testing::Test {
 protected:
  static ApiOptions Options() { return {.meta_app_secrets = {kSecret}, .meta_verify_token = "vt"}; }
  EventsE2eTest() : server_(Options()) {}

  void SetUp() override {
    key_ = server_.AddTenant("acct-a", kSub, kChan, kBiz.phone_number_id);
    server_.AddChannel(kSub, kChanCb, kBizCb.phone_number_id, /*callback=*/true);
    server_.AddChannel(kSub, kChanSb, kBizSb.phone_number_id, false, LimitsProfile::kSandbox);
    client_ = std::make_unique<HttpClient>(server_.port());
    start_ = server_.Now();
  }

  // A fresh user (digits, no '+'): +659100xxxx, a possible Singapore number.
  std::string NewUser() {
    char digits[16];
    std::snprintf(digits, sizeof digits, "659100%04d", next_user_++);
    return digits;
  }

  std::map<std::string, std::string> Auth() { return {{"Authorization", "Bearer " + key_}}; }

  simdjson::dom::element Parse(const std::string& body) {
    parsers_.emplace_back();
    return parsers_.back().parse(body);
  }

  // Asserts the 8x8 error envelope and returns its code.
  std::int64_t ErrorCode(const Reply& reply) {
    EXPECT_EQ(reply.content_type, "application/json");
    simdjson::dom::element doc = Parse(reply.body);
    EXPECT_TRUE(doc["errorId"].is_string()) << reply.body;
    EXPECT_TRUE(doc["timestamp"].is_string()) << reply.body;
    EXPECT_TRUE(doc["message"].is_string()) << reply.body;
    std::int64_t code = -1;
    EXPECT_EQ(doc["code"].get(code), simdjson::SUCCESS) << reply.body;
    return code;
  }

  WebhookCounts Counts(const Reply& reply) {
    EXPECT_EQ(reply.status, 200) << reply.body;
    WebhookCounts c;
    if (reply.status != 200) return c;
    simdjson::dom::element doc = Parse(reply.body);
    c.applied = int64_t(doc["applied"]);
    c.duplicate = int64_t(doc["duplicate"]);
    c.too_late = int64_t(doc["tooLate"]);
    c.ignored = int64_t(doc["ignored"]);
    c.unknown_channel = int64_t(doc["unknownChannel"]);
    c.invalid_user = int64_t(doc["invalidUser"]);
    c.invalid_time = int64_t(doc["invalidTime"]);
    c.settings_changed = int64_t(doc["settingsChanged"]);
    return c;
  }

  WebhookCounts Deliver(const std::string& body) {
    return Counts(client_->PostWebhook(body, kSecret));
  }

  Reply GetStatus(const std::string& channel, const std::string& user) {
    return client_->Get(ChannelPath(channel) + "/callPermissions?destination=%2B" + user, Auth());
  }
  std::string StatusBody(const std::string& channel, const std::string& user) {
    const Reply reply = GetStatus(channel, user);
    EXPECT_EQ(reply.status, 200) << reply.body;
    return reply.body;
  }
  simdjson::dom::element StatusOf(const std::string& channel, const std::string& user) {
    return Parse(StatusBody(channel, user));
  }

  Reply GetHistory(const std::string& channel, const std::string& user,
                   const std::string& paging = "") {
    return client_->Get(
        ChannelPath(channel) + "/callPermissions/history?destination=%2B" + user + paging, Auth());
  }
  HistoryPage History(const std::string& channel, const std::string& user,
                      const std::string& paging = "&limit=500") {
    const Reply reply = GetHistory(channel, user, paging);
    EXPECT_EQ(reply.status, 200) << reply.body;
    HistoryPage page;
    if (reply.status != 200) return page;
    simdjson::dom::element doc = Parse(reply.body);
    EXPECT_EQ(std::string_view(doc["destination"]), "+" + user);
    for (simdjson::dom::element entry : doc["entries"].get_array()) {
      page.entries.push_back(simdjson::minify(entry));
    }
    std::string_view cursor;
    if (doc["nextCursor"].get(cursor) == simdjson::SUCCESS) page.next_cursor = std::string(cursor);
    return page;
  }
  std::string HistoryBytes(const std::string& channel, const std::string& user) {
    std::string all;
    for (const std::string& entry : History(channel, user).entries) all += entry + "\n";
    return all;
  }
  // "kind/source/id" of every entry, newest first.
  std::vector<std::string> HistoryKinds(const std::string& channel, const std::string& user) {
    std::vector<std::string> kinds;
    for (const std::string& entry : History(channel, user).entries) {
      simdjson::dom::element e = Parse(entry);
      std::string_view id;
      std::string line = std::string(std::string_view(e["kind"])) + "/" +
                         std::string(std::string_view(e["source"]));
      if (e["id"].get(id) == simdjson::SUCCESS) line += "/" + std::string(id);
      kinds.push_back(line);
    }
    return kinds;
  }

  Reply Post(const std::string& channel, const std::string& endpoint, const std::string& body,
             std::map<std::string, std::string> headers = {}) {
    for (const auto& [name, value] : Auth()) headers.emplace(name, value);
    return client_->Send(http::verb::post, ChannelPath(channel) + "/" + endpoint, headers, body);
  }
  static std::string DestinationBody(const std::string& user) {
    return R"({"destination":"+)" + user + R"("})";
  }
  Reply ReserveRequest(const std::string& channel, const std::string& user,
                       const std::string& message_id = "",
                       std::map<std::string, std::string> headers = {}) {
    const std::string body = message_id.empty() ? DestinationBody(user)
                                                : R"({"destination":"+)" + user +
                                                      R"(","messageId":")" + message_id + R"("})";
    return Post(channel, "callPermissionRequests", body, std::move(headers));
  }
  Reply AuthorizeCall(const std::string& channel, const std::string& user,
                      std::map<std::string, std::string> headers = {}) {
    return Post(channel, "calls", DestinationBody(user), std::move(headers));
  }

  // Makes `user` hold a permanent permission on `channel` through a profile-grant webhook.
  void GrantPermanent(const meta::Business& biz, const std::string& user, Instant at) {
    const WebhookCounts c =
        Deliver(meta::Payload(biz, Accept("wamid.grant-" + user, user, at, true, {}, {})));
    ASSERT_EQ(c.applied, 1);
  }

  // Delivers one scenario, built for a fresh user by `items`, in every Delivery way, after
  // `setup` (API calls made `kSetupLead` before the deliveries). Every way must read the same
  // status body and history entries as in-order single delivery, which is returned with its user.
  static constexpr Millis kSetupLead = minutes(10);
  struct ScenarioResult {
    std::string user;
    Observed observed;
  };
  ScenarioResult RunScenario(
      const std::string& channel, const meta::Business& biz,
      const std::function<std::vector<meta::Item>(const std::string&)>& items,
      const std::function<void(const std::string&)>& setup = {}) {
    std::vector<std::pair<Delivery, std::string>> runs;
    for (const Delivery delivery : kDeliveries) runs.emplace_back(delivery, NewUser());
    const Instant begin = server_.Now();
    if (setup) {
      for (const auto& [delivery, user] : runs) setup(user);
    }
    server_.SetNow(begin + kSetupLead);
    for (const auto& [delivery, user] : runs) {
      SCOPED_TRACE(DeliveryName(delivery));
      std::vector<meta::Item> list = items(user);
      // Each payload, and whether it repeats one already delivered (then it must change nothing).
      std::vector<std::pair<std::string, bool>> payloads;
      switch (delivery) {
        case Delivery::kInOrder:
          for (const auto& item : list) payloads.emplace_back(meta::Payload(biz, item), false);
          break;
        case Delivery::kEachTwice:
          for (const auto& item : list) {
            payloads.emplace_back(meta::Payload(biz, item), false);
            payloads.emplace_back(meta::Payload(biz, item), true);
          }
          break;
        case Delivery::kAllTwice:
          for (const bool repeat : {false, true}) {
            for (const auto& item : list) payloads.emplace_back(meta::Payload(biz, item), repeat);
          }
          break;
        case Delivery::kReversed:
          for (auto it = list.rbegin(); it != list.rend(); ++it) {
            payloads.emplace_back(meta::Payload(biz, *it), false);
          }
          break;
        case Delivery::kShuffledA:
        case Delivery::kShuffledB: {
          std::mt19937 rng(delivery == Delivery::kShuffledA ? 1 : 2);
          std::shuffle(list.begin(), list.end(), rng);
          for (const auto& item : list) payloads.emplace_back(meta::Payload(biz, item), false);
          break;
        }
        case Delivery::kOnePayload:
          payloads.emplace_back(meta::Batch(biz, list), false);
          break;
        case Delivery::kOnePayloadReversed:
          std::reverse(list.begin(), list.end());
          payloads.emplace_back(meta::Batch(biz, list), false);
          break;
      }
      for (const auto& [payload, repeat] : payloads) {
        const WebhookCounts counts = Deliver(payload);
        if (repeat) {
          EXPECT_EQ(counts.applied, 0) << "a repeated delivery changed something";
        }
      }
    }
    std::optional<ScenarioResult> reference;
    for (const auto& [delivery, user] : runs) {
      const Observed observed{StatusBody(channel, user), HistoryBytes(channel, user)};
      if (!reference) {
        reference = ScenarioResult{user, observed};
        continue;
      }
      EXPECT_EQ(observed.status, reference->observed.status)
          << "status differs when delivered " << DeliveryName(delivery);
      EXPECT_EQ(observed.history, reference->observed.history)
          << "history differs when delivered " << DeliveryName(delivery);
    }
    return *reference;
  }

  // The two limits of send_call_permission_request, then start_call's.
  static std::int64_t Usage(simdjson::dom::element status, int action, int limit) {
    return int64_t(status["actions"].at(action)["limits"].at(limit)["currentUsage"]);
  }
  static bool Can(simdjson::dom::element status, int action) {
    return bool(status["actions"].at(action)["canPerformAction"]);
  }
  static std::string_view StatusName(simdjson::dom::element status) {
    return std::string_view(status["status"]);
  }
  static std::optional<std::string> Expiration(simdjson::dom::element status) {
    std::string_view value;
    if (status["expirationTime"].get(value) != simdjson::SUCCESS) return std::nullopt;
    return std::string(value);
  }

  TestServer server_;
  std::string key_;
  std::unique_ptr<HttpClient> client_;
  Instant start_;
  int next_user_ = 1;
  std::deque<simdjson::dom::parser> parsers_;
};

constexpr int kSend = 0;  // action index: send_call_permission_request
constexpr int kCall = 1;  // action index: start_call

// ============================ docs/rules.md §2: how permission changes
// ============================

TEST_F(EventsE2eTest, TemporaryAcceptLastsUntilThePayloadsExpirationTimestamp) {
  const Instant approved = start_ + minutes(1);
  // Deliberately not approval + 7 days, so the payload's own expiry is visibly the one used.
  const Instant expires = approved + kDays7 - hours(1);
  const auto result = RunScenario(
      kChan, kBiz,
      [&](const std::string& user) -> std::vector<meta::Item> {
        return {Accept("wamid.accept-1", user, approved, false, expires)};
      },
      [&](const std::string& user) {
        const Reply reply = ReserveRequest(kChan, user, "wamid.request-1");
        EXPECT_EQ(reply.status, 201) << reply.body;
      });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "temporary");
  EXPECT_EQ(Expiration(status), FormatCentis(expires));
  EXPECT_FALSE(Can(status, kSend));  // the request that was accepted still counts
  EXPECT_EQ(Usage(status, kSend, 0), 1);
  EXPECT_TRUE(Can(status, kCall));
  EXPECT_EQ(result.observed.history,
            R"({"time":")" + FormatMillis(approved) +
                R"(","kind":"permission_reply_accept","source":"webhook","id":"wamid.accept-1",)"
                R"("details":{"responseSource":"user_action","isPermanent":false,)"
                R"("expirationTime":")" +
                FormatCentis(expires) + R"("}})" + "\n" + R"({"time":")" + FormatMillis(start_) +
                R"(","kind":"permission_request_sent","source":"api","id":"wamid.request-1",)"
                R"("details":{}})" +
                "\n");
}

TEST_F(EventsE2eTest, TemporaryAcceptWithNumericExpirationTimestampUsesIt) {
  const Instant approved = start_ - hours(3);
  const Instant expires = approved + kDays7 - minutes(30);
  const auto result = RunScenario(kChan, kBiz, [&](const std::string& user) {
    meta::PermissionReply reply = Accept("wamid.accept-1", user, approved, false, expires);
    reply.expiration_as_number = true;
    return std::vector<meta::Item>{reply};
  });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "temporary");
  EXPECT_EQ(Expiration(status), FormatCentis(expires));
}

TEST_F(EventsE2eTest, TemporaryAcceptWithoutExpirationTimestampLastsSevenDaysFromApproval) {
  const Instant approved = start_ - hours(3);
  const auto result = RunScenario(kChan, kBiz, [&](const std::string& user) {
    return std::vector<meta::Item>{Accept("wamid.accept-1", user, approved, false)};
  });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "temporary");
  EXPECT_EQ(Expiration(status), FormatCentis(approved + kDays7));
}

TEST_F(EventsE2eTest, PermanentAcceptIsPermanent) {
  const auto result = RunScenario(kChan, kBiz, [&](const std::string& user) {
    return std::vector<meta::Item>{Accept("wamid.accept-1", user, start_ - hours(1), true)};
  });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "permanent");
  EXPECT_FALSE(Expiration(status));
  EXPECT_FALSE(Can(status, kSend));  // upstream 138017
  EXPECT_TRUE(Can(status, kCall));
  EXPECT_EQ(HistoryKinds(kChan, result.user),
            std::vector<std::string>{"permission_reply_accept/webhook/wamid.accept-1"});
}

TEST_F(EventsE2eTest, ProfileGrantWithoutContextIsPermanent) {
  const auto result = RunScenario(kChan, kBiz, [&](const std::string& user) {
    return std::vector<meta::Item>{
        Accept("wamid.profile-1", user, start_ - hours(1), true, std::nullopt, std::nullopt)};
  });
  EXPECT_EQ(StatusName(Parse(result.observed.status)), "permanent");
}

TEST_F(EventsE2eTest, RejectAfterTemporaryAcceptRevokesIt) {
  const auto result = RunScenario(kChan, kBiz, [&](const std::string& user) {
    return std::vector<meta::Item>{
        Accept("wamid.accept-1", user, start_ - hours(2), false),
        Reject("wamid.reject-1", user, start_ - hours(1), "wamid.request-2")};
  });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "not_granted");
  EXPECT_TRUE(Can(status, kSend));
  EXPECT_FALSE(Can(status, kCall));
  EXPECT_EQ(HistoryKinds(kChan, result.user),
            (std::vector<std::string>{"permission_reply_reject/webhook/wamid.reject-1",
                                      "permission_reply_accept/webhook/wamid.accept-1"}));
}

TEST_F(EventsE2eTest, RejectedRequestLeavesNoPermission) {
  const auto result = RunScenario(kChan, kBiz, [&](const std::string& user) {
    return std::vector<meta::Item>{Reject("wamid.reject-1", user, start_, "wamid.request-1")};
  });
  EXPECT_EQ(StatusName(Parse(result.observed.status)), "not_granted");
}

TEST_F(EventsE2eTest, RevocationFromProfileEndsAPermanentPermission) {
  const auto result = RunScenario(kChan, kBiz, [&](const std::string& user) {
    return std::vector<meta::Item>{
        Accept("wamid.profile-1", user, start_ - hours(5), true, std::nullopt, std::nullopt),
        Reject("wamid.profile-2", user, start_ - hours(1))};
  });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "not_granted");
  EXPECT_TRUE(Can(status, kSend));
}

TEST_F(EventsE2eTest, AcceptAfterRejectGrantsAgain) {
  const auto result = RunScenario(kChan, kBiz, [&](const std::string& user) {
    return std::vector<meta::Item>{Reject("wamid.reject-1", user, start_ - hours(2)),
                                   Accept("wamid.accept-1", user, start_ - hours(1), false)};
  });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "temporary");
  EXPECT_EQ(Expiration(status), FormatCentis(start_ - hours(1) + kDays7));
}

TEST_F(EventsE2eTest, LaterTemporaryAcceptNeverDowngradesAPermanentPermission) {
  const auto result = RunScenario(kChan, kBiz, [&](const std::string& user) {
    return std::vector<meta::Item>{Accept("wamid.accept-1", user, start_ - hours(2), true),
                                   Accept("wamid.accept-2", user, start_ - hours(1), false)};
  });
  EXPECT_EQ(StatusName(Parse(result.observed.status)), "permanent");
}

TEST_F(EventsE2eTest, TemporaryPermissionExpiresAndHistoryShowsIt) {
  const Instant approved = start_ - hours(1);
  const std::string user = NewUser();
  ASSERT_EQ(Deliver(meta::Payload(kBiz, Accept("wamid.accept-1", user, approved, false))).applied,
            1);
  server_.SetNow(approved + kDays7 - seconds(1));
  EXPECT_EQ(StatusName(StatusOf(kChan, user)), "temporary");
  server_.SetNow(approved + kDays7);
  EXPECT_EQ(StatusName(StatusOf(kChan, user)), "not_granted");
  const HistoryPage page = History(kChan, user);
  ASSERT_EQ(page.entries.size(), 2u);
  EXPECT_EQ(page.entries[0], R"({"time":")" + FormatMillis(approved + kDays7) +
                                 R"(","kind":"expired","source":"derived"})");
}

// Callback: a user-initiated call on a channel with callback permission enabled.

// Upstream's shapes for an answered user call: connect (the offer) when the user calls,
// terminate with start_time/duration once it ends.
std::vector<meta::Item> AnsweredUserCall(const meta::Business& biz, const std::string& user,
                                         Instant at) {
  return {Connect(biz, "wacid.user-1", kUic, user, at),
          Answered(biz, "wacid.user-1", kUic, user, at + seconds(5), seconds(60))};
}

TEST_F(EventsE2eTest, AnsweredUserCallGrantsCallbackPermissionWhenEnabled) {
  const Instant at = start_ + minutes(1);
  const auto result = RunScenario(
      kChanCb, kBizCb, [&](const std::string& user) { return AnsweredUserCall(kBizCb, user, at); });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "temporary");
  EXPECT_EQ(Expiration(status), FormatCentis(at + kDays7));
  EXPECT_EQ(Usage(status, kCall, 0), 0);  // user-initiated calls never count toward start_call
  const auto kinds = HistoryKinds(kChanCb, result.user);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "callback_grant/webhook/wacid.user-1"),
            kinds.end());
}

TEST_F(EventsE2eTest, MissedUserCallGrantsCallbackPermissionWhenEnabled) {
  const Instant at = start_ + minutes(1);
  const auto result = RunScenario(kChanCb, kBizCb, [&](const std::string& user) {
    return std::vector<meta::Item>{Connect(kBizCb, "wacid.user-1", kUic, user, at),
                                   Missed(kBizCb, "wacid.user-1", kUic, user, at + seconds(30))};
  });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "temporary");
  EXPECT_EQ(Expiration(status), FormatCentis(at + kDays7));
}

TEST_F(EventsE2eTest, MissedUserCallSeenOnlyByItsTerminateGrantsFromTheTerminate) {
  const Instant at = start_ + minutes(1);
  const auto result = RunScenario(kChanCb, kBizCb, [&](const std::string& user) {
    return std::vector<meta::Item>{Missed(kBizCb, "wacid.user-1", kUic, user, at)};
  });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "temporary");
  EXPECT_EQ(Expiration(status), FormatCentis(at + kDays7));
}

// Regression: the callback grant is recorded once per call (history keeps the first version of
// an event key) but from whichever of the call's events arrived first, each carrying its own
// time, so terminate-before-connect recorded a later grant than connect-then-terminate — and the
// history's derived expiry then disagreed with the status.
TEST_F(EventsE2eTest, CallbackGrantHistoryDoesNotDependOnWhichCallEventArrivesFirst) {
  const Instant at = start_ + minutes(1);
  const std::string in_order = NewUser();
  const std::string reversed = NewUser();
  auto connect = [&](const std::string& user) {
    return meta::Payload(kBizCb, Connect(kBizCb, "wacid.user-1", kUic, user, at));
  };
  auto terminate = [&](const std::string& user) {
    return meta::Payload(kBizCb, Missed(kBizCb, "wacid.user-1", kUic, user, at + seconds(30)));
  };
  server_.SetNow(start_ + minutes(2));
  Deliver(connect(in_order));
  Deliver(terminate(in_order));
  Deliver(terminate(reversed));
  Deliver(connect(reversed));
  EXPECT_EQ(StatusBody(kChanCb, reversed), StatusBody(kChanCb, in_order));
  EXPECT_EQ(HistoryBytes(kChanCb, reversed), HistoryBytes(kChanCb, in_order));

  // Past the permission's expiry both read not_granted, and both histories say when it expired.
  server_.SetNow(at + kDays7 + seconds(10));
  for (const std::string& user : {in_order, reversed}) {
    SCOPED_TRACE(user == in_order ? "connect first" : "terminate first");
    EXPECT_EQ(StatusName(StatusOf(kChanCb, user)), "not_granted");
    const HistoryPage page = History(kChanCb, user);
    ASSERT_FALSE(page.entries.empty());
    EXPECT_EQ(page.entries[0], R"({"time":")" + FormatMillis(at + kDays7) +
                                   R"(","kind":"expired","source":"derived"})");
  }
}

TEST_F(EventsE2eTest, AutomaticCallbackAcceptLandsOnTheSameStateAsTheCall) {
  const Instant at = start_ + minutes(1);
  const auto call_only = RunScenario(
      kChanCb, kBizCb, [&](const std::string& user) { return AnsweredUserCall(kBizCb, user, at); });
  // Upstream also sends an automatic accept naming the call; it arrives a moment later.
  const auto with_accept = RunScenario(kChanCb, kBizCb, [&](const std::string& user) {
    std::vector<meta::Item> items = AnsweredUserCall(kBizCb, user, at);
    meta::PermissionReply accept = Accept("wamid.auto-1", user, at + seconds(1), false,
                                          at + seconds(1) + kDays7, "wacid.user-1");
    accept.response_source = "automatic";
    items.insert(items.begin() + 1, accept);
    return items;
  });
  EXPECT_EQ(with_accept.observed.status, call_only.observed.status);
  EXPECT_EQ(StatusName(Parse(with_accept.observed.status)), "temporary");
}

TEST_F(EventsE2eTest, UserCallGrantsNothingWhenCallbackIsDisabled) {
  const Instant at = start_ + minutes(1);
  const auto result = RunScenario(
      kChan, kBiz, [&](const std::string& user) { return AnsweredUserCall(kBiz, user, at); });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "not_granted");
  EXPECT_EQ(HistoryKinds(kChan, result.user),
            (std::vector<std::string>{"call_terminate/webhook/wacid.user-1",
                                      "call_connect/webhook/wacid.user-1"}));
}

TEST_F(EventsE2eTest, AccountSettingsUpdateTogglesCallbackPermission) {
  const std::string first = NewUser();
  const std::string second = NewUser();
  const std::string third = NewUser();
  auto setting = [&](bool enabled) {
    return meta::Payload(kBiz, meta::CallbackSetting{kBiz.phone_number_id, enabled, start_});
  };
  auto missed_call = [&](const std::string& user, const std::string& wacid) {
    return meta::Payload(kBiz, Missed(kBiz, wacid, kUic, user, server_.Now()));
  };
  // Disabled at first: a user call grants nothing.
  EXPECT_EQ(Deliver(missed_call(first, "wacid.u1")).applied, 1);
  EXPECT_EQ(StatusName(StatusOf(kChan, first)), "not_granted");

  WebhookCounts c = Deliver(setting(true));
  EXPECT_EQ(c.settings_changed, 1);
  EXPECT_EQ(c.applied, 0);
  EXPECT_EQ(Deliver(setting(true)).settings_changed, 0);           // already enabled
  EXPECT_EQ(Deliver(missed_call(second, "wacid.u2")).applied, 2);  // the call and its grant
  EXPECT_EQ(StatusName(StatusOf(kChan, second)), "temporary");

  EXPECT_EQ(Deliver(setting(false)).settings_changed, 1);
  EXPECT_EQ(Deliver(missed_call(third, "wacid.u3")).applied, 1);
  EXPECT_EQ(StatusName(StatusOf(kChan, third)), "not_granted");
  EXPECT_EQ(StatusName(StatusOf(kChan, second)), "temporary");  // granted stays granted

  // For a number no channel has: counted, nothing changes.
  c = Deliver(meta::Payload(kBiz, meta::CallbackSetting{kUnknownPnid, true, start_}));
  EXPECT_EQ(c.unknown_channel, 1);
  EXPECT_EQ(c.settings_changed, 0);
}

// Unanswered business-initiated calls.

TEST_F(EventsE2eTest, FourUnansweredBusinessCallsRevokeWithNoticesInHistory) {
  const Instant granted = start_ - hours(2);
  const Instant t = start_ + minutes(1);
  const auto result = RunScenario(kChan, kBiz, [&](const std::string& user) {
    // Upstream's own reject for the auto-revocation.
    const meta::PermissionReply automatic_reject =
        Reject("wamid.auto-reject", user, t + minutes(4) + seconds(31), std::nullopt, "automatic");
    return std::vector<meta::Item>{
        Accept("wamid.accept-1", user, granted, true),
        // 1: rang out, never picked up.
        Status("wacid.b1", "RINGING", user, t),
        Missed(kBiz, "wacid.b1", kBic, user, t + seconds(30)),
        // 2: rejected by the user, then terminated (counts once).
        Status("wacid.b2", "RINGING", user, t + minutes(1)),
        Status("wacid.b2", "REJECTED", user, t + minutes(1) + seconds(5)),
        Missed(kBiz, "wacid.b2", kBic, user, t + minutes(1) + seconds(6)),
        // 3: only the REJECTED status.
        Status("wacid.b3", "REJECTED", user, t + minutes(2)),
        // 4: terminated unanswered.
        Missed(kBiz, "wacid.b4", kBic, user, t + minutes(4) + seconds(30)), automatic_reject};
  });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "not_granted");
  EXPECT_FALSE(Can(status, kCall));
  EXPECT_TRUE(Can(status, kSend));
  EXPECT_EQ(Usage(status, kCall, 0), 0);
  const auto kinds = HistoryKinds(kChan, result.user);
  // Newest first; a notice sorts above the event that caused it at the same instant.
  EXPECT_EQ(kinds, (std::vector<std::string>{
                       "permission_reply_reject/webhook/wamid.auto-reject",
                       "auto_revoked/derived/wacid.b4", "call_terminate/webhook/wacid.b4",
                       "call_rejected/webhook/wacid.b3", "call_terminate/webhook/wacid.b2",
                       "reconsider_notice_shown/derived/wacid.b2", "call_rejected/webhook/wacid.b2",
                       "call_terminate/webhook/wacid.b1",
                       "permission_reply_accept/webhook/wamid.accept-1"}));
}

TEST_F(EventsE2eTest, TwoUnansweredShowTheNoticeAndAConnectedCallResetsTheCount) {
  const Instant t = start_ + minutes(1);
  const auto result = RunScenario(kChan, kBiz, [&](const std::string& user) {
    return std::vector<meta::Item>{
        Accept("wamid.accept-1", user, start_ - hours(2), true),
        Missed(kBiz, "wacid.b1", kBic, user, t),
        Status("wacid.b2", "REJECTED", user, t + minutes(1)),
        // Picked up: the consecutive count starts again.
        Connect(kBiz, "wacid.b3", kBic, user, t + minutes(2)),
        Answered(kBiz, "wacid.b3", kBic, user, t + minutes(2), seconds(40)),
        Missed(kBiz, "wacid.b4", kBic, user, t + minutes(4)),
        Missed(kBiz, "wacid.b5", kBic, user, t + minutes(5))};
  });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(StatusName(status), "permanent");  // 2 + 2, never 4 in a row
  EXPECT_EQ(Usage(status, kCall, 0), 1);       // the one that connected
  std::vector<std::string> notices;
  for (const std::string& kind : HistoryKinds(kChan, result.user)) {
    if (kind.find("/derived") != std::string::npos) notices.push_back(kind);
  }
  EXPECT_EQ(notices, (std::vector<std::string>{"reconsider_notice_shown/derived/wacid.b5",
                                               "reconsider_notice_shown/derived/wacid.b2"}));
}

TEST_F(EventsE2eTest, SandboxChannelNoticesAfterFiveAndRevokesAfterTenUnanswered) {
  const Instant t = start_ + minutes(1);
  auto calls = [&](int n) {
    return [&, n](const std::string& user) {
      std::vector<meta::Item> items = {Accept("wamid.accept-1", user, start_ - hours(1), true)};
      for (int i = 0; i < n; ++i) {
        items.push_back(
            Missed(kBizSb, "wacid.s" + std::to_string(i), kBic, user, t + seconds(20 * i)));
      }
      return items;
    };
  };
  const auto nine = RunScenario(kChanSb, kBizSb, calls(9));
  EXPECT_EQ(StatusName(Parse(nine.observed.status)), "permanent");
  auto kinds = HistoryKinds(kChanSb, nine.user);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "reconsider_notice_shown/derived/wacid.s4"), 1);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "auto_revoked/derived/wacid.s8"), 0);

  const auto ten = RunScenario(kChanSb, kBizSb, calls(10));
  EXPECT_EQ(StatusName(Parse(ten.observed.status)), "not_granted");
  kinds = HistoryKinds(kChanSb, ten.user);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "auto_revoked/derived/wacid.s9"), 1);
}

// Request counters.

TEST_F(EventsE2eTest, ConnectedUserCallClearsTheRequestCounters) {
  const auto result = RunScenario(
      kChan, kBiz,
      [&](const std::string& user) {
        return AnsweredUserCall(kBiz, user, start_ + kSetupLead - minutes(5));
      },
      [&](const std::string& user) {
        const Reply reply = ReserveRequest(kChan, user, "wamid.request-1");
        ASSERT_EQ(reply.status, 201) << reply.body;
        EXPECT_EQ(Usage(Parse(reply.body), kSend, 0), 1);
        EXPECT_EQ(Usage(Parse(reply.body), kSend, 1), 1);
      });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(Usage(status, kSend, 0), 0);
  EXPECT_EQ(Usage(status, kSend, 1), 0);
  EXPECT_TRUE(Can(status, kSend));
  EXPECT_EQ(Usage(status, kCall, 0), 0);
  // A request after the call counts again.
  const Reply again = ReserveRequest(kChan, result.user, "wamid.request-2");
  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(Usage(Parse(again.body), kSend, 0), 1);
}

TEST_F(EventsE2eTest, ConnectedBusinessCallClearsRequestCountersAndCountsOnce) {
  const Instant t = start_ + kSetupLead - minutes(5);
  const auto result = RunScenario(
      kChan, kBiz,
      [&](const std::string& user) {
        return std::vector<meta::Item>{
            Status("wacid.b1", "RINGING", user, t),
            Status("wacid.b1", "ACCEPTED", user, t + seconds(4)),
            Connect(kBiz, "wacid.b1", kBic, user, t + seconds(4)),
            Answered(kBiz, "wacid.b1", kBic, user, t + seconds(4), seconds(100))};
      },
      [&](const std::string& user) {
        ASSERT_EQ(ReserveRequest(kChan, user, "wamid.request-1").status, 201);
      });
  const auto status = Parse(result.observed.status);
  EXPECT_EQ(Usage(status, kSend, 0), 0);
  EXPECT_EQ(Usage(status, kSend, 1), 0);
  EXPECT_EQ(Usage(status, kCall, 0), 1);
}

// ================================ Webhook delivery mechanics ================================

TEST_F(EventsE2eTest, OnePayloadWithManyEntriesChangesAndItemsAppliesThemAll) {
  const std::string a = NewUser(), b = NewUser(), c = NewUser(), d = NewUser();
  const Instant t = start_ - hours(1);
  const std::string body = meta::Envelope(
      {meta::Entry({meta::Change(kBiz, {Accept("wamid.a", a, t, true),
                                        Accept("wamid.b", b, t, false, std::nullopt, "wamid.r")}),
                    meta::Change(kBizCb, {Connect(kBizCb, "wacid.c", kUic, c, t)})}),
       meta::Entry({meta::Change(kBiz, {Status("wacid.a1", "REJECTED", a, t + minutes(1))}),
                    meta::Change(kBiz, {Connect(kBiz, "wacid.d", kBic, d, t),
                                        Answered(kBiz, "wacid.d", kBic, d, t, seconds(20))})},
                   "102290129340399")});
  const WebhookCounts counts = Deliver(body);
  // a's reply and rejected call, b's reply, c's call and its callback grant, d's two call events.
  EXPECT_EQ(counts.applied, 7);
  EXPECT_EQ(counts.duplicate, 0);
  EXPECT_EQ(counts.ignored, 0);
  EXPECT_EQ(StatusName(StatusOf(kChan, a)), "permanent");
  EXPECT_EQ(StatusName(StatusOf(kChan, b)), "temporary");
  EXPECT_EQ(StatusName(StatusOf(kChanCb, c)), "temporary");
  EXPECT_EQ(Usage(StatusOf(kChan, d), kCall, 0), 1);
  EXPECT_EQ(HistoryKinds(kChan, a),
            (std::vector<std::string>{"call_rejected/webhook/wacid.a1",
                                      "permission_reply_accept/webhook/wamid.a"}));
  // The same delivery again changes nothing.
  const WebhookCounts again = Deliver(body);
  EXPECT_EQ(again.applied, 0);
  EXPECT_EQ(again.duplicate, 7);
}

TEST_F(EventsE2eTest, WebhookIsAcknowledgedOnlyOnceStored) {
  const std::string user = NewUser();
  ASSERT_EQ(Deliver(meta::Payload(kBiz, Accept("wamid.1", user, start_, true))).applied, 1);
  // Another connection to the file (as another process would open it) already sees it.
  auto other = SqliteStore::Open({.path = server_.db_path().string()});
  ASSERT_TRUE(other.ok()) << other.error();
  auto history = (*other)->LoadHistory({kChan, UserId::Phone("+" + user)}, 0, 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ(history->at(0).event_key, "reply:wamid.1");
}

TEST_F(EventsE2eTest, UnknownNumbersAndIrrelevantItemsAreAcceptedCountedAndIgnored) {
  const std::string user = NewUser();
  const std::string before_status = StatusBody(kChan, user);
  const meta::Business unknown{kUnknownPnid, "15550009999"};
  const std::string body = meta::Envelope({meta::Entry({
      meta::Change(kBiz, {meta::TextMessage{"wamid.text", user, start_}}),
      meta::Change(kBiz, {Status("wacid.r", "RINGING", user, start_),
                          Status("wacid.r", "ACCEPTED", user, start_)}),
      R"({"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":")" +
          kBiz.display_phone_number + R"(","phone_number_id":")" + kBiz.phone_number_id +
          R"("},"event":"APPROVED"},"field":"message_template_status_update"})",
      meta::Change(unknown, {Accept("wamid.u", user, start_, true)}),
      meta::Change(kBiz, {Accept("wamid.bad-user", "12", start_, true)}),
  })});
  const WebhookCounts counts = Deliver(body);
  EXPECT_EQ(counts.applied, 0);
  EXPECT_EQ(counts.ignored, 4);  // text message, RINGING, ACCEPTED, other field
  EXPECT_EQ(counts.unknown_channel, 1);
  EXPECT_EQ(counts.invalid_user, 1);
  EXPECT_EQ(StatusBody(kChan, user), before_status);
  EXPECT_TRUE(History(kChan, user).entries.empty());

  // Not a WhatsApp Business Account object at all: acknowledged so Meta does not retry it.
  const WebhookCounts other = Deliver(R"({"object":"page","entry":[]})");
  EXPECT_EQ(other.applied, 0);
  EXPECT_EQ(other.ignored, 1);
}

// Up to a day ahead (clocks drift) an event time is clamped to now; further ahead the item is
// invalid (issue 9: it used to be clamped however far ahead, and INT64_MAX wrapped to 1969).
TEST_F(EventsE2eTest, FutureTimestampsAreClampedToNow) {
  const std::string user = NewUser();
  const std::string caller = NewUser();
  const WebhookCounts far =
      Deliver(meta::Payload(kBiz, Accept("wamid.far", user, start_ + hours(48), false)));
  EXPECT_EQ(far.applied, 0);
  EXPECT_EQ(far.invalid_time, 1);
  EXPECT_EQ(StatusName(StatusOf(kChan, user)), "not_granted");
  ASSERT_EQ(
      Deliver(meta::Payload(kBiz, Accept("wamid.future", user, start_ + hours(20), false))).applied,
      1);
  const auto status = StatusOf(kChan, user);
  EXPECT_EQ(StatusName(status), "temporary");
  EXPECT_EQ(Expiration(status), FormatCentis(start_ + kDays7));
  EXPECT_EQ(std::string_view(Parse(History(kChan, user).entries.at(0))["time"]),
            FormatMillis(start_));

  // A connected business call stamped an hour ahead counts now, not in an hour.
  GrantPermanent(kBiz, caller, start_ - hours(1));
  ASSERT_EQ(Deliver(meta::Payload(kBiz, Connect(kBiz, "wacid.f", kBic, caller, start_ + hours(1))))
                .applied,
            1);
  EXPECT_EQ(Usage(StatusOf(kChan, caller), kCall, 0), 1);
}

TEST_F(EventsE2eTest, BadSignaturesAre401AndChangeNothing) {
  const std::string user = NewUser();
  const std::string body = meta::Payload(kBiz, Accept("wamid.1", user, start_, true));
  const std::string status_before = StatusBody(kChan, user);
  const std::string good = SignMetaPayload(body, kSecret);
  const std::vector<std::optional<std::string>> signatures = {
      std::nullopt,                           // missing header
      SignMetaPayload(body, "wrong-secret"),  // another secret
      SignMetaPayload(body + " ", kSecret),   // signature of a different body
      good.substr(7),                         // no "sha256=" prefix
      "sha1=" + good.substr(7),               // another algorithm
      good.substr(0, good.size() - 1),        // one hex digit short
      good.substr(0, good.size() - 1) + "g",  // not hex
      "sha256=",                              // empty digest
      "",                                     // empty header
  };
  for (const auto& signature : signatures) {
    SCOPED_TRACE(signature.value_or("<missing>"));
    std::map<std::string, std::string> headers{{"Content-Type", "application/json"}};
    if (signature) headers["X-Hub-Signature-256"] = *signature;
    const Reply reply = client_->Send(http::verb::post, "/webhooks/whatsapp", headers, body);
    EXPECT_EQ(reply.status, 401);
    EXPECT_EQ(ErrorCode(reply), 1200);
    EXPECT_EQ(StatusBody(kChan, user), status_before);
    EXPECT_TRUE(History(kChan, user).entries.empty());
  }
  // The same bytes, correctly signed, do apply: the refusals were about the signature alone.
  EXPECT_EQ(Deliver(body).applied, 1);
  EXPECT_EQ(StatusName(StatusOf(kChan, user)), "permanent");
}

TEST_F(EventsE2eTest, TruncatedAndNonJsonBodiesAre400AndChangeNothing) {
  const std::string user = NewUser();
  const std::string body = meta::Payload(kBiz, Accept("wamid.1", user, start_, true));
  const std::string status_before = StatusBody(kChan, user);
  for (const std::string& bad :
       {body.substr(0, body.size() / 2), body.substr(0, body.size() - 1), std::string("not json"),
        std::string("[1,2,3]"), std::string("\"text\""), std::string("")}) {
    SCOPED_TRACE(bad);
    // Correctly signed, so only the body itself is at fault.
    const Reply reply = client_->PostWebhook(bad, kSecret);
    EXPECT_EQ(reply.status, 400);
    EXPECT_EQ(ErrorCode(reply), 1000);
    EXPECT_EQ(StatusBody(kChan, user), status_before);
    EXPECT_TRUE(History(kChan, user).entries.empty());
  }
}

TEST(EventsE2eLimitsTest, WebhookOverTheBodyLimitIs413AndChangesNothing) {
  TestServer server({.meta_app_secrets = {kSecret}}, {.body_limit = 16 * 1024});
  const std::string key = server.AddTenant("acct-a", kSub, kChan, kBiz.phone_number_id);
  const std::string user = "6591000001";
  std::vector<meta::Item> items;
  for (int i = 0; i < 200; ++i) {
    items.push_back(Accept("wamid.big-" + std::to_string(i), user, server.Now(), true));
  }
  const std::string body = meta::Batch(kBiz, items);
  ASSERT_GT(body.size(), 16u * 1024);
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + key}};
  const std::string status_target = ChannelPath(kChan) + "/callPermissions?destination=%2B" + user;
  const std::string history_target =
      ChannelPath(kChan) + "/callPermissions/history?destination=%2B" + user;
  std::string status_before, history_before;
  {
    HttpClient client(server.port());
    status_before = client.Get(status_target, auth).body;
    history_before = client.Get(history_target, auth).body;
  }
  {
    HttpClient client(server.port());
    const Reply reply = client.PostWebhook(body, kSecret);
    EXPECT_EQ(reply.status, 413);
    EXPECT_EQ(reply.content_type, "application/json");
    EXPECT_NE(reply.body.find("\"code\":1010"), std::string::npos) << reply.body;
  }
  HttpClient client(server.port());
  EXPECT_EQ(client.Get(status_target, auth).body, status_before);
  EXPECT_EQ(client.Get(history_target, auth).body, history_before);
  // Within the limit, the same kind of payload applies.
  const Reply small = client.PostWebhook(
      meta::Payload(kBiz, Accept("wamid.small", user, server.Now(), true)), kSecret);
  EXPECT_EQ(small.status, 200) << small.body;
}

TEST_F(EventsE2eTest, SubscriptionHandshakeEchoesTheChallengeOnlyForTheRightToken) {
  const Reply ok = client_->Get(
      "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=vt&hub.challenge=1158201444");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.content_type, "text/plain");
  EXPECT_EQ(ok.body, "1158201444");

  const std::string user = NewUser();
  const std::string status_before = StatusBody(kChan, user);
  for (const std::string query :
       {"hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=subscribe&hub.verify_token=v&hub.challenge=1",
        "hub.mode=subscribe&hub.verify_token=vtt&hub.challenge=1",
        "hub.mode=subscribe&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=vt&hub.challenge=1",
        "hub.verify_token=vt&hub.challenge=1", "hub.mode=subscribe&hub.verify_token=vt", ""}) {
    SCOPED_TRACE(query);
    const Reply reply = client_->Get("/webhooks/whatsapp?" + query);
    EXPECT_EQ(reply.status, 403);
    EXPECT_EQ(ErrorCode(reply), 1201);
  }
  EXPECT_EQ(StatusBody(kChan, user), status_before);
  EXPECT_TRUE(History(kChan, user).entries.empty());
}

TEST(EventsE2eSecretsTest, EitherOfTwoRotatingSecretsSigns) {
  TestServer server({.meta_app_secrets = {"old-secret", "new-secret"}});
  server.AddTenant("acct-a", kSub, kChan, kBiz.phone_number_id);
  HttpClient client(server.port());
  const std::string body = meta::Payload(kBiz, Accept("wamid.1", "6591000001", server.Now(), true));
  EXPECT_EQ(client.PostWebhook(body, "old-secret").status, 200);
  EXPECT_EQ(client.PostWebhook(body, "new-secret").status, 200);
  const Reply other = client.PostWebhook(body, "another-secret");
  EXPECT_EQ(other.status, 401);
  EXPECT_NE(other.body.find("\"code\":1200"), std::string::npos);
}

TEST(EventsE2eSecretsTest, WithoutASecretEveryDeliveryIsRefused) {
  TestServer server;
  HttpClient client(server.port());
  const Reply reply = client.PostWebhook(R"({"object":"whatsapp_business_account"})", "");
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(
      client.Get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=&hub.challenge=1").status,
      403);
}

// ======================================= Enforcement =======================================

TEST_F(EventsE2eTest, RequestLimitIs429With1053AndWhenASlotFrees) {
  const std::string user = NewUser();
  const Reply first = ReserveRequest(kChan, user);
  ASSERT_EQ(first.status, 201) << first.body;
  const auto view = Parse(first.body);
  EXPECT_FALSE(std::string_view(view["requestId"]).empty());
  EXPECT_EQ(StatusName(view), "not_granted");
  EXPECT_EQ(Usage(view, kSend, 0), 1);
  EXPECT_EQ(first.body.substr(first.body.find("\"status\"")),
            StatusBody(kChan, user).substr(1));  // the 201 carries the status view

  Reply refused = ReserveRequest(kChan, user);
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(ErrorCode(refused), 1053);
  EXPECT_EQ(std::string_view(Parse(refused.body)["limitExpirationTime"]),
            FormatCentis(start_ + kHours24));
  EXPECT_EQ(Header(refused, "Retry-After"), "86400");

  // A day later the daily slot is back; the weekly limit (2) then is what refuses.
  server_.SetNow(start_ + kHours24);
  ASSERT_EQ(ReserveRequest(kChan, user).status, 201);
  server_.SetNow(start_ + 2 * kHours24);
  refused = ReserveRequest(kChan, user);
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(ErrorCode(refused), 1053);
  EXPECT_EQ(std::string_view(Parse(refused.body)["limitExpirationTime"]),
            FormatCentis(start_ + kDays7));
  EXPECT_EQ(Header(refused, "Retry-After"), std::to_string(5 * 24 * 3600));
  EXPECT_EQ(Usage(StatusOf(kChan, user), kSend, 1), 2);  // refusals take no slot
}

TEST_F(EventsE2eTest, SameMessageIdIsOneRequest) {
  const std::string user = NewUser();
  const Reply first = ReserveRequest(kChan, user, "wamid.request-1");
  ASSERT_EQ(first.status, 201);
  EXPECT_EQ(std::string_view(Parse(first.body)["requestId"]), "wamid.request-1");
  const Reply retry = ReserveRequest(kChan, user, "wamid.request-1");
  EXPECT_EQ(retry.status, 201) << retry.body;
  EXPECT_EQ(Usage(StatusOf(kChan, user), kSend, 0), 1);
}

TEST_F(EventsE2eTest, PermanentPermissionRefusesRequestsWith409And1052) {
  const std::string user = NewUser();
  GrantPermanent(kBiz, user, start_ - hours(1));
  const Reply reply = ReserveRequest(kChan, user);
  EXPECT_EQ(reply.status, 409);
  EXPECT_EQ(ErrorCode(reply), 1052);
  EXPECT_EQ(Usage(StatusOf(kChan, user), kSend, 0), 0);
}

TEST_F(EventsE2eTest, TemporaryPermissionStillAllowsARequestToUpgrade) {
  const std::string user = NewUser();
  ASSERT_EQ(Deliver(meta::Payload(kBiz, Accept("wamid.t", user, start_ - hours(1), false))).applied,
            1);
  EXPECT_EQ(ReserveRequest(kChan, user).status, 201);
}

TEST_F(EventsE2eTest, CallWithoutPermissionIs403With1055) {
  const std::string user = NewUser();
  Reply reply = AuthorizeCall(kChan, user);
  EXPECT_EQ(reply.status, 403);
  EXPECT_EQ(ErrorCode(reply), 1055);
  // Nor after the permission was rejected, nor after a temporary one expired.
  ASSERT_EQ(Deliver(meta::Payload(kBiz, Accept("wamid.t", user, start_ - kDays7, false))).applied,
            1);
  reply = AuthorizeCall(kChan, user);
  EXPECT_EQ(reply.status, 403);
  EXPECT_EQ(ErrorCode(reply), 1055);
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 0);
}

TEST_F(EventsE2eTest, CallAuthorizationReturnsAnIdAndHoldsASlot) {
  const std::string user = NewUser();
  GrantPermanent(kBiz, user, start_ - hours(1));
  const Reply reply = AuthorizeCall(kChan, user);
  ASSERT_EQ(reply.status, 201) << reply.body;
  const auto view = Parse(reply.body);
  EXPECT_FALSE(std::string_view(view["callAuthorizationId"]).empty());
  EXPECT_EQ(StatusName(view), "permanent");
  EXPECT_EQ(Usage(view, kCall, 0), 1);
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 1);
  const auto kinds = HistoryKinds(kChan, user);
  ASSERT_FALSE(kinds.empty());
  EXPECT_EQ(kinds[0],
            "call_authorized/api/" + std::string(std::string_view(view["callAuthorizationId"])));
}

TEST_F(EventsE2eTest, CallLimitIs429With1056WhenAuthorisationsHoldEverySlot) {
  const std::string user = NewUser();
  GrantPermanent(kBiz, user, start_ - hours(1));
  for (int i = 0; i < 100; ++i) ASSERT_EQ(AuthorizeCall(kChan, user).status, 201) << i;
  const Reply refused = AuthorizeCall(kChan, user);
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(ErrorCode(refused), 1056);
  // The first hold to lapse frees a slot: call_hold (90 s) from now.
  EXPECT_EQ(std::string_view(Parse(refused.body)["limitExpirationTime"]),
            FormatCentis(start_ + seconds(90)));
  EXPECT_EQ(Header(refused, "Retry-After"), "90");
  const auto status = StatusOf(kChan, user);
  EXPECT_EQ(Usage(status, kCall, 0), 100);
  EXPECT_FALSE(Can(status, kCall));
}

TEST_F(EventsE2eTest, CallLimitIs429With1056AfterAHundredConnectedCalls) {
  const std::string user = NewUser();
  GrantPermanent(kBiz, user, start_ - hours(3));
  std::vector<meta::Item> connects;
  for (int i = 0; i < 100; ++i) {
    connects.push_back(
        Connect(kBiz, "wacid.c" + std::to_string(i), kBic, user, start_ - hours(2) + minutes(i)));
  }
  EXPECT_EQ(Deliver(meta::Batch(kBiz, connects)).applied, 100);
  const Reply refused = AuthorizeCall(kChan, user);
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(ErrorCode(refused), 1056);
  EXPECT_EQ(std::string_view(Parse(refused.body)["limitExpirationTime"]),
            FormatCentis(start_ - hours(2) + kHours24));
  // Once the oldest call leaves the 24 h window, one call may be authorised.
  server_.SetNow(start_ - hours(2) + kHours24);
  EXPECT_EQ(AuthorizeCall(kChan, user).status, 201);
  EXPECT_EQ(AuthorizeCall(kChan, user).status, 429);
}

TEST_F(EventsE2eTest, TerminateNamingTheAuthorisationReleasesItsHold) {
  const std::string user = NewUser();
  GrantPermanent(kBiz, user, start_ - hours(1));
  const Reply unanswered = AuthorizeCall(kChan, user);
  const Reply answered = AuthorizeCall(kChan, user);
  ASSERT_EQ(unanswered.status, 201);
  ASSERT_EQ(answered.status, 201);
  const std::string unanswered_id(std::string_view(Parse(unanswered.body)["callAuthorizationId"]));
  const std::string answered_id(std::string_view(Parse(answered.body)["callAuthorizationId"]));
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 2);

  // The unanswered call reports back: its hold is gone and it never counted.
  server_.SetNow(start_ + seconds(30));
  ASSERT_EQ(Deliver(meta::Payload(
                        kBiz, Missed(kBiz, "wacid.x", kBic, user, server_.Now(), unanswered_id)))
                .applied,
            1);
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 1);

  // The answered one: its connect replaces its hold, counted once.
  ASSERT_EQ(
      Deliver(meta::Payload(kBiz, Connect(kBiz, "wacid.y", kBic, user, server_.Now(), answered_id)))
          .applied,
      1);
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 1);
  ASSERT_EQ(Deliver(meta::Payload(kBiz, Answered(kBiz, "wacid.y", kBic, user, server_.Now(),
                                                 seconds(20), answered_id)))
                .applied,
            1);
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 1);
  // Still one after the hold would have lapsed.
  server_.SetNow(start_ + minutes(5));
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 1);
}

TEST_F(EventsE2eTest, RejectedStatusNamingTheAuthorisationReleasesItsHold) {
  const std::string user = NewUser();
  GrantPermanent(kBiz, user, start_ - hours(1));
  const Reply reply = AuthorizeCall(kChan, user);
  ASSERT_EQ(reply.status, 201);
  meta::CallStatus rejected = Status("wacid.z", "REJECTED", user, start_);
  rejected.biz_opaque_callback_data =
      std::string(std::string_view(Parse(reply.body)["callAuthorizationId"]));
  ASSERT_EQ(Deliver(meta::Payload(kBiz, rejected)).applied, 1);
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 0);
}

TEST_F(EventsE2eTest, UnreportedAuthorisationHoldsItsSlotUntilTheHoldLapses) {
  const std::string user = NewUser();
  GrantPermanent(kBiz, user, start_ - hours(1));
  ASSERT_EQ(AuthorizeCall(kChan, user).status, 201);
  server_.SetNow(start_ + seconds(89));
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 1);
  server_.SetNow(start_ + seconds(90));
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 0);
}

TEST(EventsE2eHoldTest, CallHoldIsConfigurable) {
  TestServer server({.meta_app_secrets = {kSecret}, .call_hold = seconds(10)});
  const std::string key = server.AddTenant("acct-a", kSub, kChan, kBiz.phone_number_id);
  HttpClient client(server.port());
  const std::string user = "6591000001";
  ASSERT_EQ(
      client.PostWebhook(meta::Payload(kBiz, Accept("wamid.p", user, server.Now(), true)), kSecret)
          .status,
      200);
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + key}};
  const Instant start = server.Now();
  ASSERT_EQ(client
                .Send(http::verb::post, ChannelPath(kChan) + "/calls", auth,
                      R"({"destination":"+6591000001"})")
                .status,
            201);
  const std::string target = ChannelPath(kChan) + "/callPermissions?destination=%2B" + user;
  EXPECT_NE(client.Get(target, auth).body.find(R"("currentUsage":1}]}])"), std::string::npos);
  server.SetNow(start + seconds(10));
  EXPECT_NE(client.Get(target, auth).body.find(R"("currentUsage":0}]}])"), std::string::npos);
}

TEST_F(EventsE2eTest, IdempotencyKeyReplaysTheFirstResultWithoutASecondSlot) {
  const std::string user = NewUser();
  GrantPermanent(kBiz, user, start_ - hours(1));
  const Reply first = AuthorizeCall(kChan, user, {{"Idempotency-Key", "order-42"}});
  ASSERT_EQ(first.status, 201);
  EXPECT_EQ(first.headers.count("Idempotent-Replayed"), 0u);
  const Reply retry = AuthorizeCall(kChan, user, {{"Idempotency-Key", "order-42"}});
  ASSERT_EQ(retry.status, 201) << retry.body;
  EXPECT_EQ(Header(retry, "Idempotent-Replayed"), "true");
  EXPECT_EQ(retry.body, first.body);
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 1);

  // Another key is another call.
  const Reply other = AuthorizeCall(kChan, user, {{"Idempotency-Key", "order-43"}});
  ASSERT_EQ(other.status, 201);
  EXPECT_NE(std::string_view(Parse(other.body)["callAuthorizationId"]),
            std::string_view(Parse(first.body)["callAuthorizationId"]));
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 2);

  // A replay still answers when the limit is reached since.
  for (int i = 0; i < 98; ++i) ASSERT_EQ(AuthorizeCall(kChan, user).status, 201);
  EXPECT_EQ(AuthorizeCall(kChan, user).status, 429);
  const Reply late = AuthorizeCall(kChan, user, {{"Idempotency-Key", "order-42"}});
  EXPECT_EQ(late.status, 201);
  EXPECT_EQ(Header(late, "Idempotent-Replayed"), "true");
}

TEST_F(EventsE2eTest, IdempotencyKeyReplaysAPermissionRequest) {
  const std::string user = NewUser();
  const Reply first = ReserveRequest(kChan, user, "", {{"Idempotency-Key", "req-1"}});
  ASSERT_EQ(first.status, 201);
  const Reply retry = ReserveRequest(kChan, user, "", {{"Idempotency-Key", "req-1"}});
  ASSERT_EQ(retry.status, 201) << retry.body;  // not 429: it is the same request
  EXPECT_EQ(Header(retry, "Idempotent-Replayed"), "true");
  EXPECT_EQ(std::string_view(Parse(retry.body)["requestId"]),
            std::string_view(Parse(first.body)["requestId"]));
  EXPECT_EQ(Usage(StatusOf(kChan, user), kSend, 0), 1);
  EXPECT_EQ(ReserveRequest(kChan, user, "", {{"Idempotency-Key", "req-2"}}).status, 429);
}

TEST_F(EventsE2eTest, InvalidIdempotencyKeyIs400With1003) {
  const std::string user = NewUser();
  GrantPermanent(kBiz, user, start_ - hours(1));
  for (const std::string& key : {std::string("has space"), std::string(256, 'k')}) {
    const Reply reply = AuthorizeCall(kChan, user, {{"Idempotency-Key", key}});
    EXPECT_EQ(reply.status, 400);
    EXPECT_EQ(ErrorCode(reply), 1000);
  }
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 0);
}

TEST_F(EventsE2eTest, InvalidReservationBodiesAreRefused) {
  struct Case {
    std::string body;
    int status;
    int code;
  };
  const std::vector<Case> cases = {
      {"not json", 400, 1000},
      {"", 400, 1000},
      {"[]", 400, 1000},
      {R"({"destination":"+6591000001","messageId":5})", 400, 1000},
      {R"({"destination":"+6591000001","messageId":""})", 400, 1000},
      {R"({})", 400, 1000},
      {R"({"destination":""})", 400, 1000},
      {R"({"destination":"6591000001"})", 400, 1002},
      {R"({"destination":"+999123"})", 400, 1002},
      {R"({"destination":6591000001})", 400, 1002},
  };
  for (const std::string endpoint : {"callPermissionRequests", "calls"}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(endpoint + " " + c.body);
      const Reply reply = Post(kChan, endpoint, c.body);
      EXPECT_EQ(reply.status, c.status);
      EXPECT_EQ(ErrorCode(reply), c.code);
    }
  }
  EXPECT_EQ(Usage(StatusOf(kChan, "6591000001"), kSend, 0), 0);
}

TEST_F(EventsE2eTest, ReservationsCheckAuthAndTenantsLikeTheStatusEndpoint) {
  server_.AddTenant("acct-b", "sub-b", "chan-b", "106540352242999");
  const std::string body = DestinationBody("6591000001");
  for (const std::string endpoint : {"callPermissionRequests", "calls"}) {
    SCOPED_TRACE(endpoint);
    Reply reply = client_->Send(http::verb::post, ChannelPath(kChan) + "/" + endpoint, {}, body);
    EXPECT_EQ(reply.status, 401);
    EXPECT_EQ(ErrorCode(reply), 1200);
    reply = client_->Send(http::verb::post, ChannelPath(kChan) + "/" + endpoint,
                          {{"Authorization", "Bearer cgk_0000000000000000_x"}}, body);
    EXPECT_EQ(ErrorCode(reply), 1200);
    // Even a bad body is not looked at before authentication.
    reply = client_->Send(http::verb::post, ChannelPath(kChan) + "/" + endpoint, {}, "not json");
    EXPECT_EQ(ErrorCode(reply), 1200);
    reply = client_->Send(http::verb::post, ChannelPath("chan-b", "sub-b") + "/" + endpoint, Auth(),
                          body);
    EXPECT_EQ(reply.status, 400);
    EXPECT_EQ(ErrorCode(reply), 1001);
    reply = client_->Send(http::verb::post, ChannelPath("no-such-channel") + "/" + endpoint, Auth(),
                          body);
    EXPECT_EQ(reply.status, 404);
    EXPECT_EQ(ErrorCode(reply), 1300);
    reply = client_->Send(http::verb::post, ChannelPath("chan-b") + "/" + endpoint, Auth(), body);
    EXPECT_EQ(reply.status, 404);  // a channel of another subaccount
    EXPECT_EQ(ErrorCode(reply), 1300);
    reply = client_->Get(ChannelPath(kChan) + "/" + endpoint, Auth());
    EXPECT_EQ(reply.status, 405);
    EXPECT_EQ(ErrorCode(reply), 2001);
    EXPECT_EQ(Header(reply, "Allow"), "POST");
  }
  const std::string key_id = key_.substr(4, 16);
  ASSERT_TRUE(server_.store().RevokeApiKey(key_id, server_.Now()).ok());
  const Reply revoked = ReserveRequest(kChan, "6591000001");
  EXPECT_EQ(revoked.status, 401);
  EXPECT_EQ(ErrorCode(revoked), 1200);
}

// ====================================== Concurrency ======================================

TEST_F(EventsE2eTest, ConcurrentCallAuthorisationsNeverExceedTheCallLimit) {
  const std::string user = NewUser();
  GrantPermanent(kBiz, user, start_ - hours(1));
  const std::vector<Reply> replies = FireConcurrently(
      {server_.port()}, 10, 250, ChannelPath(kChan) + "/calls", Auth(), DestinationBody(user));
  int created = 0, limited = 0;
  std::set<std::string> ids;
  for (const Reply& reply : replies) {
    if (reply.status == 201) {
      ++created;
      ids.insert(std::string(std::string_view(Parse(reply.body)["callAuthorizationId"])));
    } else if (reply.status == 429 && ErrorCode(reply) == 1056) {
      ++limited;
    } else {
      ADD_FAILURE() << reply.status << " " << reply.body;
    }
  }
  EXPECT_EQ(created, 100);
  EXPECT_EQ(limited, 150);
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 100);
}

TEST_F(EventsE2eTest, ConcurrentPermissionRequestsNeverExceedTheRequestLimit) {
  struct Case {
    std::string channel;
    int allowed;
  };
  for (const Case& c : {Case{kChan, 1}, Case{kChanSb, 25}}) {
    SCOPED_TRACE(c.channel);
    const std::string user = NewUser();
    const std::vector<Reply> replies = FireConcurrently(
        {server_.port()}, 10, 200, ChannelPath(c.channel) + "/callPermissionRequests", Auth(),
        DestinationBody(user));
    int created = 0, limited = 0;
    for (const Reply& reply : replies) {
      if (reply.status == 201) {
        ++created;
      } else if (reply.status == 429 && ErrorCode(reply) == 1053) {
        ++limited;
      } else {
        ADD_FAILURE() << reply.status << " " << reply.body;
      }
    }
    EXPECT_EQ(created, c.allowed);
    EXPECT_EQ(limited, 200 - c.allowed);
    EXPECT_EQ(Usage(StatusOf(c.channel, user), kSend, 0), c.allowed);
  }
}

// Concurrent reservations read the clock when they arrive but reach the store one at a time, so
// one that read the clock a moment earlier may be checked after another's was recorded (two
// threads, or two processes). The fake clock stepping back replays that order deterministically.
TEST_F(EventsE2eTest, RequestCheckedWithAnEarlierClockReadingStillCountsANewerRequest) {
  const std::string user = NewUser();
  server_.SetNow(start_ + Millis(5));
  ASSERT_EQ(ReserveRequest(kChan, user).status, 201);
  server_.SetNow(start_);
  const Reply late = ReserveRequest(kChan, user);
  EXPECT_EQ(late.status, 429) << late.body;
  server_.SetNow(start_ + Millis(5));
  EXPECT_EQ(Usage(StatusOf(kChan, user), kSend, 1), 1);
}

TEST_F(EventsE2eTest, CallCheckedWithAnEarlierClockReadingStillCountsNewerHolds) {
  const std::string user = NewUser();
  GrantPermanent(kBiz, user, start_ - hours(1));
  server_.SetNow(start_ + Millis(5));
  for (int i = 0; i < 100; ++i) ASSERT_EQ(AuthorizeCall(kChan, user).status, 201) << i;
  server_.SetNow(start_);
  const Reply late = AuthorizeCall(kChan, user);
  EXPECT_EQ(late.status, 429) << late.body;
  server_.SetNow(start_ + Millis(5));
  EXPECT_EQ(Usage(StatusOf(kChan, user), kCall, 0), 100);
}

// ======================================== History ========================================

TEST_F(EventsE2eTest, HistoryPagesWalkEveryEntryOnceNewestFirst) {
  const std::string user = NewUser();
  const Instant t = start_ - hours(1);
  std::vector<meta::Item> items = {Accept("wamid.accept-1", user, t - hours(1), true)};
  for (int i = 0; i < 5; ++i) {
    items.push_back(Missed(kBiz, "wacid.m" + std::to_string(i), kBic, user, t + minutes(i)));
  }
  ASSERT_EQ(Deliver(meta::Batch(kBiz, items)).applied, 6);
  ASSERT_EQ(ReserveRequest(kChan, user).status, 201);
  const std::vector<std::string> all = History(kChan, user).entries;
  // 6 events, the request, and the notices: reconsider after 2, revoked after 4.
  ASSERT_EQ(all.size(), 9u);
  std::vector<std::string> times;
  for (const std::string& entry : all) {
    times.push_back(std::string(std::string_view(Parse(entry)["time"])));
  }
  EXPECT_TRUE(std::is_sorted(times.rbegin(), times.rend()));

  std::vector<std::string> walked;
  std::string paging = "&limit=2";
  for (int pages = 0; pages < 20; ++pages) {
    const HistoryPage page = History(kChan, user, paging);
    EXPECT_LE(page.entries.size(), 2u);
    walked.insert(walked.end(), page.entries.begin(), page.entries.end());
    if (!page.next_cursor) break;
    paging = "&limit=2&cursor=" + *page.next_cursor;
  }
  EXPECT_EQ(walked, all);
  // Default page size covers it all, without a cursor.
  EXPECT_EQ(History(kChan, user, "").entries, all);
  EXPECT_FALSE(History(kChan, user, "").next_cursor);
}

TEST_F(EventsE2eTest, HistoryOfANeverSeenPairIsEmpty) {
  const HistoryPage page = History(kChan, NewUser());
  EXPECT_TRUE(page.entries.empty());
  EXPECT_FALSE(page.next_cursor);
}

TEST_F(EventsE2eTest, BadHistoryPagingIs400With1003) {
  const std::string user = NewUser();
  ASSERT_EQ(ReserveRequest(kChan, user).status, 201);
  auto hex = [](const std::string& raw) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : raw) {
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
    return out;
  };
  for (const std::string& paging :
       std::vector<std::string>{"&limit=0", "&limit=-1", "&limit=501", "&limit=abc", "&limit=2x",
                                "&limit=", "&cursor=", "&cursor=zz", "&cursor=abc",
                                "&cursor=" + hex("no-bar"), "&cursor=" + hex("12x|key")}) {
    SCOPED_TRACE(paging);
    const Reply reply = GetHistory(kChan, user, paging);
    EXPECT_EQ(reply.status, 400);
    EXPECT_EQ(ErrorCode(reply), 1000);
  }
}

TEST_F(EventsE2eTest, HistoryChecksAuthTenantsAndDestination) {
  const std::string history = ChannelPath(kChan) + "/callPermissions/history";
  Reply reply = client_->Get(history + "?destination=%2B6591000001");
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(ErrorCode(reply), 1200);
  reply = client_->Get(
      ChannelPath(kChan, "no-such-sub") + "/callPermissions/history" + "?destination=%2B6591000001",
      Auth());
  EXPECT_EQ(ErrorCode(reply), 1001);
  reply = client_->Get(ChannelPath("nope") + "/callPermissions/history?destination=%2B6591000001",
                       Auth());
  EXPECT_EQ(reply.status, 404);
  EXPECT_EQ(ErrorCode(reply), 1300);
  reply = client_->Get(history, Auth());
  EXPECT_EQ(ErrorCode(reply), 1000);
  reply = client_->Get(history + "?destination=6591000001", Auth());
  EXPECT_EQ(ErrorCode(reply), 1002);
  reply = client_->Send(http::verb::post, history + "?destination=%2B6591000001", Auth(), "{}");
  EXPECT_EQ(reply.status, 405);
  EXPECT_EQ(ErrorCode(reply), 2001);
}

}  // namespace
}  // namespace callgate::testing
