// Unit tests of the notifications a pair's change gives (core/notifications.h): every type, on a
// fake clock (events carry explicit instants, `now` is passed in).
#include "core/notifications.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/test_time.h"

namespace callgate {
namespace {

using namespace test_time;  // NOLINT(google-build-using-namespace): kT0 and the time units
constexpr auto kProd = LimitsProfile::kProduction;

// A pair's change: the state before, the events applied, and what they give at `now`.
struct Change {
  PairState before;
  PairState after;
  std::vector<Event> applied;

  std::vector<Notification> Apply(std::vector<Event> events, Instant now,
                                  LimitsProfile profile = kProd) {
    before = after;
    applied = std::move(events);
    for (const Event& e : applied) (void)callgate::Apply(after, e, profile);
    return DeriveNotifications(before, after, applied, profile, now);
  }
};

std::vector<NotificationType> Types(const std::vector<Notification>& ns) {
  std::vector<NotificationType> types;
  for (const Notification& n : ns) types.push_back(n.type);
  return types;
}

PermissionReplied Accept(std::string id, Instant at, std::optional<Instant> expires) {
  return {std::move(id), at, true, false, expires, ReplySource::kUserAction};
}
PermissionReplied AcceptPermanent(std::string id, Instant at) {
  return {std::move(id), at, true, true, std::nullopt, ReplySource::kUserAction};
}
PermissionReplied Reject(std::string id, Instant at) {
  return {std::move(id), at, false, false, std::nullopt, ReplySource::kUserAction};
}
CallTerminated Unanswered(std::string id, Instant at) {
  return {std::move(id), at, CallDirection::kBusinessInitiated, false, std::nullopt, ""};
}

TEST(NotificationsTest, TemporaryAcceptIsGrantedThenExpiringAndExpiredAreScheduled) {
  Change pair;
  const Instant end = kT0 + hours(48);
  auto ns = pair.Apply({PermissionRequested{"r1", kT0}, Accept("wamid.1", kT0 + seconds(5), end)},
                       kT0 + seconds(6));
  ASSERT_EQ(Types(ns),
            (std::vector{NotificationType::kPermissionGranted, NotificationType::kLimitReached,
                         NotificationType::kPermissionExpiring, NotificationType::kLimitFreed,
                         NotificationType::kPermissionExpired}));
  EXPECT_EQ(ns[0].granted, PermissionStatus::kTemporary);
  EXPECT_EQ(ns[0].reason, "reply");
  EXPECT_EQ(ns[0].occurred_at, kT0 + seconds(5));
  EXPECT_EQ(ns[0].due_at, kT0 + seconds(6));
  EXPECT_EQ(ns[1].rule, 0);  // one request a day
  EXPECT_EQ(ns[2].due_at, end - hours(24));
  EXPECT_EQ(ns[3].due_at, kT0 + hours(24));
  EXPECT_EQ(ns[4].due_at, end);
  EXPECT_EQ(ns[4].occurred_at, end);
}

TEST(NotificationsTest, PermanentAcceptWithoutRequestIsAProfileGrant) {
  Change pair;
  auto ns = pair.Apply({AcceptPermanent("wamid.1", kT0)}, kT0);
  ASSERT_EQ(Types(ns), std::vector{NotificationType::kPermissionGranted});
  EXPECT_EQ(ns[0].granted, PermissionStatus::kPermanent);
  EXPECT_EQ(ns[0].reason, "profile");
}

TEST(NotificationsTest, CallbackGrantsTemporary) {
  Change pair;
  auto ns = pair.Apply({CallbackGranted{"wacid.1", kT0}}, kT0);
  ASSERT_FALSE(ns.empty());
  EXPECT_EQ(ns[0].type, NotificationType::kPermissionGranted);
  EXPECT_EQ(ns[0].reason, "callback");
  EXPECT_EQ(ns[0].granted, PermissionStatus::kTemporary);
}

TEST(NotificationsTest, TemporaryAcceptUnderPermanentTellsNothing) {
  Change pair;
  (void)pair.Apply({AcceptPermanent("wamid.1", kT0)}, kT0);
  EXPECT_TRUE(
      pair.Apply({Accept("wamid.2", kT0 + hours(1), kT0 + hours(30))}, kT0 + hours(1)).empty());
}

TEST(NotificationsTest, RejectOfALivePermissionIsARevocationByTheUser) {
  Change pair;
  (void)pair.Apply({AcceptPermanent("wamid.1", kT0)}, kT0);
  auto ns = pair.Apply({Reject("wamid.2", kT0 + hours(1))}, kT0 + hours(1));
  ASSERT_EQ(Types(ns), std::vector{NotificationType::kPermissionRevoked});
  EXPECT_EQ(ns[0].reason, "user");
  EXPECT_EQ(ns[0].cause_id, "wamid.2");
}

TEST(NotificationsTest, RejectWithoutPermissionRevokesNothing) {
  Change pair;
  EXPECT_TRUE(pair.Apply({Reject("wamid.1", kT0)}, kT0).empty());
}

TEST(NotificationsTest, UnansweredCallsGiveReconsiderThenAutomaticRevocation) {
  Change pair;
  (void)pair.Apply({AcceptPermanent("wamid.1", kT0)}, kT0);
  EXPECT_TRUE(pair.Apply({Unanswered("wacid.1", kT0 + hours(1))}, kT0 + hours(1)).empty());
  auto second = pair.Apply({Unanswered("wacid.2", kT0 + hours(2))}, kT0 + hours(2));
  ASSERT_EQ(Types(second), std::vector{NotificationType::kReconsiderNotice});
  EXPECT_EQ(second[0].cause_id, "wacid.2");
  (void)pair.Apply({Unanswered("wacid.3", kT0 + hours(3))}, kT0 + hours(3));
  auto fourth = pair.Apply({Unanswered("wacid.4", kT0 + hours(4))}, kT0 + hours(4));
  ASSERT_EQ(Types(fourth), std::vector{NotificationType::kPermissionRevoked});
  EXPECT_EQ(fourth[0].reason, "automatic");
}

TEST(NotificationsTest, SandboxReconsiderNoticeAfterFive) {
  Change pair;
  (void)pair.Apply({AcceptPermanent("wamid.1", kT0)}, kT0, LimitsProfile::kSandbox);
  for (int i = 1; i <= 4; ++i) {
    EXPECT_TRUE(pair.Apply({Unanswered("wacid." + std::to_string(i), kT0 + hours(i))},
                           kT0 + hours(i), LimitsProfile::kSandbox)
                    .empty());
  }
  auto fifth =
      pair.Apply({Unanswered("wacid.5", kT0 + hours(5))}, kT0 + hours(5), LimitsProfile::kSandbox);
  EXPECT_EQ(Types(fifth), std::vector{NotificationType::kReconsiderNotice});
}

TEST(NotificationsTest, LateAcceptWhoseExpiryPassedTellsGrantedAndExpiredAtTheirTimes) {
  Change pair;
  const Instant now = kT0 + hours(50);
  auto ns = pair.Apply({Accept("wamid.1", kT0, kT0 + hours(48))}, now);
  ASSERT_EQ(Types(ns), (std::vector{NotificationType::kPermissionGranted,
                                    NotificationType::kPermissionExpired}));
  EXPECT_EQ(ns[0].occurred_at, kT0);
  EXPECT_EQ(ns[1].occurred_at, kT0 + hours(48));
  EXPECT_EQ(ns[1].due_at, now);
}

TEST(NotificationsTest, ConnectedCallFreesTheRequestLimitAtOnce) {
  Change pair;
  (void)pair.Apply({PermissionRequested{"r1", kT0}}, kT0);
  auto ns = pair.Apply({CallConnected{"wacid.1", kT0 + hours(1)}}, kT0 + hours(1));
  ASSERT_EQ(Types(ns), std::vector{NotificationType::kLimitFreed});
  EXPECT_EQ(ns[0].rule, 0);
  EXPECT_EQ(ns[0].occurred_at, kT0 + hours(1));
}

TEST(NotificationsTest, ACallConnectedTheMillisecondOfTheRequestFreesItToo) {
  Change pair;
  (void)pair.Apply({PermissionRequested{"r1", kT0}}, kT0);
  auto ns = pair.Apply({CallConnected{"wacid.1", kT0}}, kT0 + std::chrono::milliseconds(2));
  ASSERT_EQ(Types(ns), std::vector{NotificationType::kLimitFreed});
  // Regression: the e2e run under load lost this one as "no longer true" when sent, because the
  // request and the call shared their millisecond (the limit was never reached just before it).
  EXPECT_TRUE(StillHolds(ns[0], pair.after, kProd));
}

TEST(NotificationsTest, ExpiredStillHoldsUnlessRenewedOrRevoked) {
  Change pair;
  const Instant end = kT0 + hours(48);
  auto ns = pair.Apply({Accept("wamid.1", kT0, end)}, kT0);
  const Notification expired = ns.back();
  ASSERT_EQ(expired.type, NotificationType::kPermissionExpired);
  EXPECT_TRUE(StillHolds(expired, pair.after, kProd));
  Change renewed = pair;
  (void)renewed.Apply({Accept("wamid.2", kT0 + hours(30), kT0 + hours(90))}, kT0 + hours(30));
  EXPECT_FALSE(StillHolds(expired, renewed.after, kProd));
  Change revoked = pair;
  (void)revoked.Apply({Reject("wamid.3", kT0 + hours(20))}, kT0 + hours(20));
  EXPECT_FALSE(StillHolds(expired, revoked.after, kProd));
  EXPECT_FALSE(StillHolds(ns[ns.size() - 2], revoked.after, kProd));  // expiring
}

TEST(NotificationsTest, FreedStillHoldsUnlessACallEmptiedTheWindow) {
  Change pair;
  auto ns = pair.Apply({PermissionRequested{"r1", kT0}}, kT0);
  ASSERT_EQ(ns.size(), 2u);
  const Notification freed = ns[1];
  EXPECT_EQ(freed.type, NotificationType::kLimitFreed);
  EXPECT_TRUE(StillHolds(freed, pair.after, kProd));
  (void)pair.Apply({CallConnected{"wacid.1", kT0 + hours(1)}}, kT0 + hours(1));
  EXPECT_FALSE(StillHolds(freed, pair.after, kProd));
}

TEST(NotificationsTest, IdsAreStableAndDistinct) {
  Change pair;
  auto ns = pair.Apply({Accept("wamid.1", kT0, kT0 + hours(48))}, kT0);
  Change again;
  auto same = again.Apply({Accept("wamid.1", kT0, kT0 + hours(48))}, kT0 + seconds(3));
  ASSERT_EQ(ns.size(), same.size());
  for (std::size_t i = 0; i < ns.size(); ++i) {
    EXPECT_EQ(NotificationId("c\n+65", ns[i]), NotificationId("c\n+65", same[i]));
    EXPECT_EQ(NotificationId("c\n+65", ns[i]).size(), 32u);
  }
  EXPECT_NE(NotificationId("c\n+65", ns[0]), NotificationId("c\n+66", ns[0]));
  EXPECT_NE(NotificationId("c\n+65", ns[0]), NotificationId("c\n+65", ns[1]));
}

}  // namespace
}  // namespace callgate
