#include "ingest/meta_webhook.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "ingest/route.h"
#include "ingest/signature.h"

namespace callgate {
namespace {

const Instant kNow = FromUnixSeconds(1'767'225'600);

std::string Envelope(const std::string& field, const std::string& value) {
  return R"({"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":")" +
         field + R"(","value":)" + value + "}]}]}";
}

std::string Metadata() {
  return R"("messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"PNID"})";
}

std::string Reply(const std::string& reply, const std::string& context = "") {
  return Envelope(
      "messages",
      "{" + Metadata() +
          R"(,"messages":[{"from":"6591234567","id":"wamid.R","timestamp":"1767225000",)" +
          context +
          R"("type":"interactive","interactive":{"type":"call_permission_reply","call_permission_reply":)" +
          reply + "}}]}");
}

// Tenants with one channel "ch", of the business number "PNID".
TenantSnapshot OneChannel(bool callback) {
  TenantSnapshot tenants;
  tenants.channels["ch"] = {"ch", "sub", "PNID", callback, LimitsProfile::kProduction, kNow};
  tenants.channel_by_phone_number_id["PNID"] = "ch";
  return tenants;
}

TEST(MetaWebhookTest, ParsesATemporaryAccept) {
  auto parsed = ParseMetaWebhook(
      Reply(
          R"({"response":"accept","is_permanent":false,"expiration_timestamp":"1767829800","response_source":"user_action"})",
          R"("context":{"id":"wamid.REQ"},)"),
      kNow);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->items.size(), 1u);
  const WebhookItem& item = parsed->items[0];
  EXPECT_EQ(item.phone_number_id, "PNID");
  EXPECT_EQ(item.user.phone_digits, "6591234567");
  const auto& reply = std::get<PermissionReplied>(item.event);
  EXPECT_EQ(reply.message_id, "wamid.R");
  EXPECT_TRUE(reply.accepted);
  EXPECT_FALSE(reply.permanent);
  EXPECT_EQ(reply.at, FromUnixSeconds(1767225000));
  EXPECT_EQ(reply.expires_at, FromUnixSeconds(1767829800));
  EXPECT_EQ(reply.source, ReplySource::kUserAction);
}

// A call event at `timestamp` (JSON text, as upstream may send it).
std::string CallAt(const std::string& timestamp) {
  return Envelope("calls",
                  "{" + Metadata() +
                      R"(,"calls":[{"id":"wacid.C","to":"6591234567","from":"15550001111",)"
                      R"("event":"connect","direction":"BUSINESS_INITIATED","timestamp":)" +
                      timestamp + "}]}");
}

// Out-of-range timestamps used to wrap (INT64_MAX seconds read as 1969): now the item is
// invalid, counted, and not applied.
TEST(MetaWebhookTest, EventTimesOutOfRangeMakeTheItemInvalid) {
  const std::string kFarFuture = std::to_string(ToUnixMillis(kNow) / 1000 + 2 * 86400);
  for (const std::string& bad :
       {std::string("\"9223372036854775807\""), std::string("9223372036854775807"),
        std::string("1e300"), std::string("-1"), std::string("\"1500000000\""), kFarFuture}) {
    SCOPED_TRACE(bad);
    auto parsed = ParseMetaWebhook(CallAt(bad), kNow);
    ASSERT_TRUE(parsed.ok());
    EXPECT_TRUE(parsed->items.empty());
    EXPECT_EQ(parsed->invalid_time, 1);
  }
}

TEST(MetaWebhookTest, EventTimesLessThanADayAheadAreClampedToNow) {
  auto parsed = ParseMetaWebhook(CallAt(std::to_string(ToUnixMillis(kNow) / 1000 + 3600)), kNow);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->items.size(), 1u);
  EXPECT_EQ(EventTime(parsed->items[0].event), kNow);
  EXPECT_EQ(parsed->invalid_time, 0);
}

// A huge expiration_timestamp used to wrap into the past and turn an accept into not_granted.
TEST(MetaWebhookTest, ExpirationsMoreThanEightDaysAheadMakeTheItemInvalid) {
  const std::int64_t now_s = ToUnixMillis(kNow) / 1000;
  for (const std::string& bad :
       {std::string("9223372036854775807"), std::to_string(now_s + 9 * 86400), std::string("-5")}) {
    SCOPED_TRACE(bad);
    auto parsed = ParseMetaWebhook(
        Reply(R"({"response":"accept","is_permanent":false,"expiration_timestamp":)" + bad + "}"),
        kNow);
    ASSERT_TRUE(parsed.ok());
    EXPECT_TRUE(parsed->items.empty());
    EXPECT_EQ(parsed->invalid_time, 1);
  }
  auto fine = ParseMetaWebhook(
      Reply(R"({"response":"accept","is_permanent":false,"expiration_timestamp":)" +
            std::to_string(now_s + 7 * 86400) + "}"),
      kNow);
  ASSERT_TRUE(fine.ok());
  ASSERT_EQ(fine->items.size(), 1u);
  EXPECT_EQ(std::get<PermissionReplied>(fine->items[0].event).expires_at,
            FromUnixSeconds(now_s + 7 * 86400));
}

TEST(MetaWebhookTest, ExpirationTimestampMayBeANumber) {
  auto parsed = ParseMetaWebhook(
      Reply(R"({"response":"accept","is_permanent":false,"expiration_timestamp":1767829800})"),
      kNow);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(std::get<PermissionReplied>(parsed->items[0].event).expires_at,
            FromUnixSeconds(1767829800));
}

TEST(MetaWebhookTest, AutomaticAcceptForACallbackBecomesTheCallsGrant) {
  auto parsed = ParseMetaWebhook(
      Reply(R"({"response":"accept","is_permanent":false,"response_source":"automatic"})",
            R"("context":{"id":"wacid.CALL"},)"),
      kNow);
  ASSERT_TRUE(parsed.ok());
  const auto& grant = std::get<CallbackGranted>(parsed->items[0].event);
  EXPECT_EQ(grant.call_id, "wacid.CALL");
}

// Issue 9: a timestamp more than a day ahead (here the year 2286) is no longer clamped to now but
// makes the item invalid; EventTimesLessThanADayAheadAreClampedToNow covers the clamp.
TEST(MetaWebhookTest, FarFutureTimestampsAreInvalidNotClamped) {
  auto parsed = ParseMetaWebhook(
      Envelope(
          "calls",
          "{" + Metadata() +
              R"(,"calls":[{"id":"wacid.1","event":"connect","direction":"BUSINESS_INITIATED","from":"15550001111","to":"6591234567","timestamp":"9999999999"}]})"),
      kNow);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->items.empty());
  EXPECT_EQ(parsed->invalid_time, 1);
}

TEST(MetaWebhookTest, TerminateWithDurationWasPickedUp) {
  auto parsed = ParseMetaWebhook(
      Envelope(
          "calls",
          "{" + Metadata() +
              R"(,"calls":[{"id":"wacid.1","event":"terminate","direction":"BUSINESS_INITIATED","from":"15550001111","to":"6591234567","timestamp":"1767225100","status":"COMPLETED","end_time":"1767225100","duration":40,"biz_opaque_callback_data":"auth-1"}]})"),
      kNow);
  ASSERT_TRUE(parsed.ok());
  const auto& end = std::get<CallTerminated>(parsed->items[0].event);
  EXPECT_TRUE(end.picked_up);
  EXPECT_EQ(end.started_at, FromUnixSeconds(1767225060));
  EXPECT_EQ(end.authorization_id, "auth-1");
  EXPECT_EQ(parsed->items[0].user.phone_digits, "6591234567");
}

TEST(MetaWebhookTest, UserInitiatedCallIsAddressedByItsCaller) {
  auto parsed = ParseMetaWebhook(
      Envelope(
          "calls",
          "{" + Metadata() +
              R"(,"calls":[{"id":"wacid.2","event":"terminate","direction":"USER_INITIATED","from":"6591234567","to":"15550001111","timestamp":"1767225100","status":"FAILED"}]})"),
      kNow);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->items[0].user_initiated_call);
  EXPECT_EQ(parsed->items[0].user.phone_digits, "6591234567");
  EXPECT_FALSE(std::get<CallTerminated>(parsed->items[0].event).picked_up);
}

TEST(MetaWebhookTest, RejectedStatusCountsOtherStatusesAreIgnored) {
  auto parsed = ParseMetaWebhook(
      Envelope(
          "calls",
          "{" + Metadata() +
              R"(,"statuses":[{"id":"wacid.3","type":"call","status":"RINGING","timestamp":"1767225000","recipient_id":"6591234567"},{"id":"wacid.3","type":"call","status":"REJECTED","timestamp":"1767225005","recipient_id":"6591234567"}]})"),
      kNow);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->items.size(), 1u);
  EXPECT_EQ(std::get<CallRejected>(parsed->items[0].event).at, FromUnixSeconds(1767225005));
  EXPECT_EQ(parsed->ignored, 1);
}

TEST(MetaWebhookTest, AReplyIsRecognisedByInteractiveTypeAloneInEveryDocumentedVariant) {
  // Meta's samples: no message-level type; is_permanent absent on a temporary accept; the
  // expiration a number or a string.
  const std::string variants[] = {
      R"({"response":"accept","expiration_timestamp":1767829800,"response_source":"user_action"})",
      R"({"response":"accept","expiration_timestamp":"1767829800"})",
      R"({"response":"accept","is_permanent":true,"response_source":"user_action"})",
      R"({"response":"reject","response_source":"user_action"})",
      R"({"response":"reject","response_source":"automatic"})",
  };
  for (const std::string& reply : variants) {
    const std::string body = Envelope(
        "messages",
        "{" + Metadata() +
            R"(,"messages":[{"from":"6591234567","id":"wamid.R","timestamp":"1767225000","interactive":{"type":"call_permission_reply","call_permission_reply":)" +
            reply + "}}]}");
    auto parsed = ParseMetaWebhook(body, kNow);
    ASSERT_TRUE(parsed.ok());
    ASSERT_EQ(parsed->items.size(), 1u) << reply;
    const auto& event = std::get<PermissionReplied>(parsed->items[0].event);
    EXPECT_EQ(event.accepted, reply.find("accept") != std::string::npos) << reply;
    EXPECT_EQ(event.permanent, reply.find("is_permanent") != std::string::npos) << reply;
    if (event.accepted && !event.permanent) {
      EXPECT_EQ(event.expires_at, FromUnixSeconds(1767829800)) << reply;
    }
  }
}

TEST(MetaWebhookTest, BsuidFieldsNameTheUserWithOrWithoutAPhoneNumber) {
  auto parsed = ParseMetaWebhook(
      Envelope(
          "calls",
          "{" + Metadata() +
              R"(,"calls":[{"id":"wacid.1","to_user_id":"US.1","to_parent_user_id":"US.ENT.9","event":"connect","timestamp":"1767225000","direction":"BUSINESS_INITIATED"},)"
              R"({"id":"wacid.2","from":"6591234567","from_user_id":"US.2","event":"connect","timestamp":"1767225000"}],)"
              R"("statuses":[{"id":"wacid.1","type":"call","status":"REJECTED","timestamp":"1767225005","recipient_user_id":"US.1"}]})"),
      kNow);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->items.size(), 3u);
  EXPECT_EQ(parsed->items[0].user, (UpstreamUser{"", "US.1", "US.ENT.9"}));
  EXPECT_EQ(std::get<CallConnected>(parsed->items[0].event).direction,
            CallDirection::kBusinessInitiated);
  // No direction: from_user_id says the user called.
  EXPECT_EQ(parsed->items[1].user, (UpstreamUser{"6591234567", "US.2", ""}));
  EXPECT_TRUE(parsed->items[1].user_initiated_call);
  EXPECT_EQ(parsed->items[2].user, (UpstreamUser{"", "US.1", ""}));
}

TEST(MetaWebhookTest, ContactsGiveAnItemTheUsersOtherIds) {
  auto parsed = ParseMetaWebhook(
      Envelope(
          "messages",
          "{" + Metadata() +
              R"(,"contacts":[{"wa_id":"6591234567","user_id":"US.7","parent_user_id":"US.ENT.7"}],)"
              R"("messages":[{"from_user_id":"US.7","id":"wamid.R","timestamp":"1767225000","interactive":{"type":"call_permission_reply","call_permission_reply":{"response":"reject"}}}]})"),
      kNow);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->items.size(), 1u);
  EXPECT_EQ(parsed->items[0].user, (UpstreamUser{"6591234567", "US.7", "US.ENT.7"}));
}

TEST(MetaWebhookTest, SettingsAreRoutedByTheNumberTheyAreOf) {
  auto parsed = ParseMetaWebhook(
      Envelope(
          "account_settings_update",
          "{" + Metadata() +
              R"(,"type":"phone_number_settings","timestamp":"1767225000","phone_number_settings":{"phone_number_id":"OTHER","calling":{"callback_permission_status":"DISABLED"}}})"),
      kNow);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->settings.size(), 1u);
  EXPECT_EQ(parsed->settings[0].phone_number_id, "OTHER");
  EXPECT_FALSE(parsed->settings[0].enabled);
}

TEST(MetaWebhookTest, WhatIsNotAppliedIsCountedByReason) {
  auto parsed = ParseMetaWebhook(
      R"({"object":"whatsapp_business_account","entry":[{"changes":[{"field":"message_template_status_update","value":{}},{"field":"calls"},)"
      R"({"field":"calls","value":{"metadata":{"phone_number_id":"PNID"},"calls":[{"event":"connect"},{"id":"wacid.1","event":"ring","from":"1"},{"id":"wacid.2","event":"connect","timestamp":"1767225000"}],)"
      R"("statuses":[{"id":"wacid.1","type":"call","status":"ACCEPTED"},{"type":"call","status":"REJECTED"}]}},)"
      R"({"field":"account_settings_update","value":{"phone_number_id":"PNID"}}]}]})",
      kNow);
  ASSERT_TRUE(parsed.ok());
  auto count = [&](IgnoreReason r) { return parsed->ignored_by[static_cast<std::size_t>(r)]; };
  EXPECT_EQ(count(IgnoreReason::kOtherField), 1);
  EXPECT_EQ(count(IgnoreReason::kNoValue), 1);
  EXPECT_EQ(count(IgnoreReason::kMissingCallId), 1);
  EXPECT_EQ(count(IgnoreReason::kOtherCallEvent), 1);
  EXPECT_EQ(count(IgnoreReason::kMissingUser), 1);
  EXPECT_EQ(count(IgnoreReason::kNotCallRejection), 1);
  EXPECT_EQ(count(IgnoreReason::kMissingStatusId), 1);
  EXPECT_EQ(count(IgnoreReason::kSettingsWithoutCalling), 1);
  EXPECT_EQ(parsed->ignored, 8);
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kIgnoreReasonCount; ++i) {
    names.insert(IgnoreReasonName(static_cast<IgnoreReason>(i)));
  }
  EXPECT_EQ(names.size(), kIgnoreReasonCount);
}

TEST(RouteWebhookTest, APairIsKeyedByThePhoneNumberElseTheBsuidElseTheParent) {
  const TenantSnapshot tenants = OneChannel(/*callback=*/false);
  ParsedWebhook parsed;
  parsed.items.push_back({"PNID", {"6591234567", "US.1", ""}, CallRejected{"wacid.1", kNow}});
  parsed.items.push_back({"PNID", {"", "US.2", "US.ENT.2"}, CallRejected{"wacid.2", kNow}});
  parsed.items.push_back({"PNID", {"", "", "US.ENT.3"}, CallRejected{"wacid.3", kNow}});
  parsed.items.push_back({"PNID", {"12", "bad", ""}, CallRejected{"wacid.4", kNow}});
  const RoutedWebhook routed = RouteWebhook(parsed, tenants, [](const std::string& n) {
    return n.size() > 5 ? std::optional(UserId::Phone(n)) : std::nullopt;
  });
  EXPECT_EQ(routed.invalid_user, 1);
  EXPECT_TRUE(routed.pairs.contains(PairKey{"ch", UserId::Phone("+6591234567")}));
  EXPECT_TRUE(routed.pairs.contains(PairKey{"ch", UserId::Bsuid("US.2")}));
  EXPECT_TRUE(routed.pairs.contains(PairKey{"ch", UserId::Bsuid("US.ENT.3")}));
}

TEST(MetaWebhookTest, CallbackSettingChange) {
  auto parsed = ParseMetaWebhook(
      Envelope("account_settings_update",
               R"({"phone_number_id":"PNID","calling":{"callback_permission_status":"ENABLED"}})"),
      kNow);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->settings.size(), 1u);
  EXPECT_EQ(parsed->settings[0].phone_number_id, "PNID");
  EXPECT_TRUE(parsed->settings[0].enabled);
}

TEST(MetaWebhookTest, TextMessagesAndOtherFieldsAreIgnored) {
  auto parsed = ParseMetaWebhook(
      Envelope(
          "messages",
          "{" + Metadata() +
              R"(,"messages":[{"from":"6591234567","id":"wamid.T","timestamp":"1","type":"text","text":{"body":"hi"}}]})"),
      kNow);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->items.empty());
  EXPECT_EQ(parsed->ignored, 1);
}

TEST(MetaWebhookTest, ItemsWithMissingPartsAreIgnoredNotFatal) {
  for (const std::string& value :
       {std::string(R"({"messages":[{"type":"interactive"}]})"), std::string(R"({"calls":[{}]})"),
        std::string(R"({"calls":"nope"})"), std::string("42")}) {
    auto parsed = ParseMetaWebhook(Envelope("messages", value), kNow);
    ASSERT_TRUE(parsed.ok()) << value;
    EXPECT_TRUE(parsed->items.empty()) << value;
  }
}

TEST(MetaWebhookTest, MalformedJsonIsAnError) {
  EXPECT_EQ(ParseMetaWebhook("{\"object\":", kNow).error(), WebhookError::kMalformedJson);
  EXPECT_EQ(ParseMetaWebhook("[1,2]", kNow).error(), WebhookError::kNotAnObject);
}

// Upstream bodies are attacker-shaped once a secret leaks, and our own fuzzing found a crash
// here once: every truncation and many random mutations of real payloads must parse or fail
// cleanly.
TEST(MetaWebhookTest, MutatedPayloadsNeverCrash) {
  const std::vector<std::string> seeds = {
      Reply(R"({"response":"accept","is_permanent":false,"expiration_timestamp":"1767829800"})",
            R"("context":{"id":"wamid.REQ"},)"),
      Envelope(
          "calls",
          "{" + Metadata() +
              R"(,"calls":[{"id":"wacid.1","event":"terminate","direction":"BUSINESS_INITIATED","from":"15550001111","to":"6591234567","timestamp":"1767225100","duration":40}],"statuses":[{"id":"wacid.3","type":"call","status":"REJECTED","recipient_id":"6591234567"}]})"),
      Envelope(
          "account_settings_update",
          R"({"phone_number_settings":{"phone_number_id":"PNID","calling":{"callback_permission_status":"DISABLED"}}})")};
  std::mt19937 rng(42);
  int parsed_ok = 0;
  for (const std::string& seed : seeds) {
    for (std::size_t n = 0; n <= seed.size(); ++n) {
      parsed_ok += ParseMetaWebhook(seed.substr(0, n), kNow).ok();
    }
    for (int i = 0; i < 3000; ++i) {
      std::string mutated = seed;
      for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) {
        mutated[rng() % mutated.size()] = "{}[]\":,0a- "[rng() % 12];
      }
      parsed_ok += ParseMetaWebhook(mutated, kNow).ok();
    }
  }
  EXPECT_GT(parsed_ok, 0);  // some mutations stay valid JSON and went through the walker
}

TEST(RouteWebhookTest, UserCallOnACallbackChannelAlsoGrants) {
  const TenantSnapshot tenants = OneChannel(/*callback=*/true);
  ParsedWebhook parsed;
  parsed.items.push_back({"PNID",
                          {"6591234567"},
                          CallTerminated{"wacid.9", kNow, CallDirection::kUserInitiated},
                          true});
  parsed.items.push_back({"OTHER", {"6591234567"}, CallRejected{"wacid.8", kNow}, false});
  const RoutedWebhook routed = RouteWebhook(
      parsed, tenants, [](const std::string& n) { return std::optional(UserId::Phone(n)); });
  EXPECT_EQ(routed.unknown_channel, 1);
  const PairEvents& pair = routed.pairs.at(PairKey{"ch", UserId::Phone("+6591234567")});
  ASSERT_EQ(pair.events.size(), 2u);
  EXPECT_EQ(std::get<CallbackGranted>(pair.events[1]).call_id, "wacid.9");
}

// A thread that verified under one set of secrets and then meets another (rotation) must not
// use the contexts keyed for the old secrets.
TEST(SignatureTest, RotatedSecretsAreNotVerifiedWithTheOldKeys) {
  const std::string body = R"({"object":"whatsapp_business_account"})";
  const MetaSignatures before({"old-secret"});
  EXPECT_TRUE(before.Verify(body, SignMetaPayload(body, "old-secret")));
  const MetaSignatures after({"new-secret"});
  EXPECT_TRUE(after.Verify(body, SignMetaPayload(body, "new-secret")));
  EXPECT_FALSE(after.Verify(body, SignMetaPayload(body, "old-secret")));
  EXPECT_EQ(after.Sign(body), SignMetaPayload(body, "new-secret"));
  // And back: the old owner rebuilds its contexts rather than using the new ones.
  EXPECT_TRUE(before.Verify(body, SignMetaPayload(body, "old-secret")));
  EXPECT_FALSE(before.Verify(body, SignMetaPayload(body, "new-secret")));
}

// RFC 4231 test case 2, then the same and another key again (keyed contexts are reused).
TEST(SignatureTest, IsHmacSha256OfTheBody) {
  const std::string kExpected =
      "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(SignMetaPayload("what do ya want for nothing?", "Jefe"), kExpected) << i;
    EXPECT_NE(SignMetaPayload("what do ya want for nothing?", "Jeff"), kExpected) << i;
    EXPECT_NE(SignMetaPayload("what do ya want for nothing!", "Jefe"), kExpected) << i;
  }
  EXPECT_TRUE(VerifyMetaSignature("what do ya want for nothing?", kExpected, {"x", "Jefe"}));
}

TEST(SignatureTest, VerifiesWithAnyConfiguredSecret) {
  const std::string body = R"({"a":1})";
  const std::string header = SignMetaPayload(body, "new");
  EXPECT_TRUE(VerifyMetaSignature(body, header, {"old", "new"}));
  EXPECT_FALSE(VerifyMetaSignature(body, header, {"old"}));
  EXPECT_FALSE(VerifyMetaSignature(body + " ", header, {"new"}));
  EXPECT_FALSE(VerifyMetaSignature(body, "sha256=zz", {"new"}));
  EXPECT_FALSE(VerifyMetaSignature(body, header.substr(7), {"new"}));
  EXPECT_FALSE(VerifyMetaSignature(body, header, {}));
}

}  // namespace
}  // namespace callgate
