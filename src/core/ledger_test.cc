// Unit tests for one pair's permission ledger against docs/rules.md §1–4. Every test drives a fake
// clock: events carry explicit instants and each view is taken at an explicit `now`.
#include "core/ledger.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/events.h"
#include "core/limits.h"
#include "core/test_time.h"
#include "core/time.h"

namespace callgate {
namespace {

using namespace test_time;  // NOLINT(google-build-using-namespace): kT0 and the time units
constexpr Millis kMs{1};

// usage[] follows kLimitRules; LimitsTableTest pins this layout.
constexpr std::size_t kRequestsPerDay = 0;
constexpr std::size_t kRequestsPerWeek = 1;
constexpr std::size_t kCallsPerDay = 2;

// gtest cannot print a sys_time with this toolchain, so instants are compared as text: a failure
// then names the instants involved.
std::string Text(std::optional<Instant> t) { return t ? FormatMillis(*t) : "(none)"; }

PermissionRequested Request(std::string id, Instant at) { return {std::move(id), at}; }

PermissionReplied AcceptTemporary(std::string id, Instant at,
                                  std::optional<Instant> expires_at = std::nullopt,
                                  ReplySource source = ReplySource::kUserAction) {
  return {std::move(id), at, /*accepted=*/true, /*permanent=*/false, expires_at, source};
}

PermissionReplied AcceptPermanent(std::string id, Instant at) {
  return {std::move(id),      at,           /*accepted=*/true,
          /*permanent=*/true, std::nullopt, ReplySource::kUserAction};
}

PermissionReplied Reject(std::string id, Instant at,
                         ReplySource source = ReplySource::kUserAction) {
  return {std::move(id), at, /*accepted=*/false, /*permanent=*/false, std::nullopt, source};
}

CallConnected Connect(std::string id, Instant at,
                      CallDirection direction = CallDirection::kBusinessInitiated) {
  return {std::move(id), at, direction};
}

// A terminate reporting that the call was picked up (upstream sent start_time / duration).
CallTerminated TerminatePickedUp(std::string id, Instant at, std::optional<Instant> started_at,
                                 CallDirection direction = CallDirection::kBusinessInitiated) {
  return {std::move(id), at, direction, /*picked_up=*/true, started_at};
}

// A terminate of a call that never connected.
CallTerminated TerminateUnanswered(std::string id, Instant at,
                                   CallDirection direction = CallDirection::kBusinessInitiated) {
  return {std::move(id), at, direction, /*picked_up=*/false, std::nullopt};
}

CallRejected Rejected(std::string id, Instant at) { return {std::move(id), at}; }

CallbackGranted Callback(std::string id, Instant at) { return {std::move(id), at}; }

class LedgerTest : public ::testing::Test {
 protected:
  // Applies an event the ledger has not seen yet.
  void Add(const Event& event) {
    EXPECT_EQ(Apply(state_, event, profile_), ApplyOutcome::kApplied);
  }

  // A call that connected at `at` and hung up a minute later.
  void AddConnectedCall(const std::string& id, Instant at,
                        CallDirection direction = CallDirection::kBusinessInitiated) {
    Add(Connect(id, at, direction));
    Add(TerminatePickedUp(id, at + minutes(1), at, direction));
  }

  // `count` business-initiated calls that rang out unanswered, one an hour from `first`, with
  // ids prefix0, prefix1, ...
  void AddUnansweredCalls(const std::string& prefix, int count, Instant first) {
    for (int i = 0; i < count; ++i) {
      Add(TerminateUnanswered(prefix + std::to_string(i), first + hours(i)));
    }
  }

  StatusView ViewAt(Instant now) const { return View(state_, now, profile_); }
  std::string StatusAt(Instant now) const {
    return std::string(StatusName(ViewAt(now).permission.status));
  }
  std::string ExpiryAt(Instant now) const { return Text(ViewAt(now).permission.expires_at); }
  std::vector<Notice> NoticesAt(Instant now) const { return Notices(state_, now, profile_); }

  LimitsProfile profile_ = LimitsProfile::kProduction;
  PairState state_;
};

// ---------------------------------------------------------------------------------------------
// The limits table (docs/rules.md §3).

TEST(LimitsTableTest, ListsBothRequestWindowsThenTheCallWindow) {
  ASSERT_EQ(kLimitRules.size(), 3u);
  EXPECT_EQ(kLimitRules[kRequestsPerDay].action, Action::kSendCallPermissionRequest);
  EXPECT_EQ(kLimitRules[kRequestsPerDay].iso_period, "PT24H");
  EXPECT_EQ(kLimitRules[kRequestsPerDay].period, hours(24));
  EXPECT_EQ(kLimitRules[kRequestsPerWeek].action, Action::kSendCallPermissionRequest);
  EXPECT_EQ(kLimitRules[kRequestsPerWeek].iso_period, "P7D");
  EXPECT_EQ(kLimitRules[kRequestsPerWeek].period, hours(24 * 7));
  EXPECT_EQ(kLimitRules[kCallsPerDay].action, Action::kStartCall);
  EXPECT_EQ(kLimitRules[kCallsPerDay].iso_period, "PT24H");
  EXPECT_EQ(kLimitRules[kCallsPerDay].period, hours(24));
}

TEST(LimitsTableTest, ProductionAllowsOnePerDayTwoPerWeekAndOneHundredCalls) {
  EXPECT_EQ(kLimitRules[kRequestsPerDay].MaxAllowed(LimitsProfile::kProduction), 1);
  EXPECT_EQ(kLimitRules[kRequestsPerWeek].MaxAllowed(LimitsProfile::kProduction), 2);
  EXPECT_EQ(kLimitRules[kCallsPerDay].MaxAllowed(LimitsProfile::kProduction), 100);
}

TEST(LimitsTableTest, SandboxAllowsTwentyFivePerDayOneHundredPerWeekAndOneHundredCalls) {
  EXPECT_EQ(kLimitRules[kRequestsPerDay].MaxAllowed(LimitsProfile::kSandbox), 25);
  EXPECT_EQ(kLimitRules[kRequestsPerWeek].MaxAllowed(LimitsProfile::kSandbox), 100);
  EXPECT_EQ(kLimitRules[kCallsPerDay].MaxAllowed(LimitsProfile::kSandbox), 100);
}

TEST(LimitsTableTest, TemporaryPermissionLastsSixHundredFourThousandEightHundredSeconds) {
  EXPECT_EQ(kTemporaryPermissionLifetime, seconds(604800));
}

// ---------------------------------------------------------------------------------------------
// A pair never seen before.

using NeverSeenPairTest = LedgerTest;

TEST_F(NeverSeenPairTest, IsNotGrantedWithoutExpiry) {
  EXPECT_EQ(StatusAt(kT0), "not_granted");
  EXPECT_EQ(ExpiryAt(kT0), "(none)");
}

TEST_F(NeverSeenPairTest, HasZeroUsageOnEveryProductionLimit) {
  const StatusView view = ViewAt(kT0);
  const int max_allowed[] = {1, 2, 100};
  for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(view.usage[i].max_allowed, max_allowed[i]);
    EXPECT_EQ(view.usage[i].current_usage, 0);
    EXPECT_EQ(Text(view.usage[i].limit_expiration), "(none)");
  }
}

TEST_F(NeverSeenPairTest, HasZeroUsageOnEverySandboxLimit) {
  profile_ = LimitsProfile::kSandbox;
  const StatusView view = ViewAt(kT0);
  const int max_allowed[] = {25, 100, 100};
  for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(view.usage[i].max_allowed, max_allowed[i]);
    EXPECT_EQ(view.usage[i].current_usage, 0);
    EXPECT_EQ(Text(view.usage[i].limit_expiration), "(none)");
  }
}

TEST_F(NeverSeenPairTest, MaySendARequestButMayNotStartACall) {
  const StatusView view = ViewAt(kT0);
  EXPECT_TRUE(view.CanPerform(Action::kSendCallPermissionRequest));
  EXPECT_FALSE(view.CanPerform(Action::kStartCall));
}

TEST_F(NeverSeenPairTest, HasNoNotices) { EXPECT_TRUE(NoticesAt(kT0).empty()); }

// ---------------------------------------------------------------------------------------------
// Permission status (docs/rules.md §1, §2).

using PermissionTest = LedgerTest;

TEST_F(PermissionTest, TemporaryAcceptWithoutExpirationLastsSevenDaysFromApproval) {
  Add(AcceptTemporary("m1", kT0 + hours(3)));
  EXPECT_EQ(StatusAt(kT0 + hours(4)), "temporary");
  EXPECT_EQ(ExpiryAt(kT0 + hours(4)), Text(kT0 + hours(3) + seconds(604800)));
}

TEST_F(PermissionTest, TemporaryAcceptUsesTheExpirationTimestampWhenGiven) {
  Add(AcceptTemporary("m1", kT0, kT0 + hours(50)));
  EXPECT_EQ(StatusAt(kT0 + hours(1)), "temporary");
  EXPECT_EQ(ExpiryAt(kT0 + hours(1)), Text(kT0 + hours(50)));
}

TEST_F(PermissionTest, TemporaryReadsTemporaryOneMillisecondBeforeExpiry) {
  Add(AcceptTemporary("m1", kT0));
  EXPECT_EQ(StatusAt(kT0 + kDays7 - kMs), "temporary");
}

TEST_F(PermissionTest, TemporaryReadsNotGrantedAtExactlyItsExpiry) {
  Add(AcceptTemporary("m1", kT0));
  EXPECT_EQ(StatusAt(kT0 + kDays7), "not_granted");
  EXPECT_EQ(ExpiryAt(kT0 + kDays7), "(none)");
}

TEST_F(PermissionTest, TemporaryReadsNotGrantedAfterAnExplicitExpiry) {
  Add(AcceptTemporary("m1", kT0, kT0 + hours(50)));
  EXPECT_EQ(StatusAt(kT0 + hours(50)), "not_granted");
  EXPECT_EQ(StatusAt(kT0 + hours(51)), "not_granted");
}

TEST_F(PermissionTest, ReplyIsNotVisibleBeforeItsEventTime) {
  Add(AcceptPermanent("m1", kT0 + hours(1)));
  EXPECT_EQ(StatusAt(kT0 + hours(1) - kMs), "not_granted");
  EXPECT_EQ(StatusAt(kT0 + hours(1)), "permanent");
}

TEST_F(PermissionTest, PermanentAcceptGrantsPermanentWithoutExpiry) {
  Add(AcceptPermanent("m1", kT0));
  EXPECT_EQ(StatusAt(kT0 + hours(24 * 365)), "permanent");
  EXPECT_EQ(ExpiryAt(kT0 + hours(24 * 365)), "(none)");
}

TEST_F(PermissionTest, ProfileGrantWithoutContextIsPermanent) {
  // A profile grant reaches the core as a permanent accept that answers no request.
  Add(AcceptPermanent("wamid.profile", kT0));
  EXPECT_EQ(StatusAt(kT0), "permanent");
}

TEST_F(PermissionTest, ProfileRevocationRejectRevokesPermanent) {
  Add(AcceptPermanent("wamid.profile-grant", kT0));
  Add(Reject("wamid.profile-revoke", kT0 + hours(24 * 30)));
  EXPECT_EQ(StatusAt(kT0 + hours(24 * 30)), "not_granted");
}

TEST_F(PermissionTest, RejectRevokesTemporary) {
  Add(AcceptTemporary("m1", kT0));
  Add(Reject("m2", kT0 + hours(1)));
  EXPECT_EQ(StatusAt(kT0 + hours(1)), "not_granted");
  EXPECT_EQ(ExpiryAt(kT0 + hours(1)), "(none)");
}

TEST_F(PermissionTest, LaterTemporaryAcceptDoesNotDowngradePermanent) {
  Add(AcceptPermanent("m1", kT0));
  Add(AcceptTemporary("m2", kT0 + hours(1)));
  EXPECT_EQ(StatusAt(kT0 + hours(24 * 30)), "permanent");
  EXPECT_EQ(ExpiryAt(kT0 + hours(24 * 30)), "(none)");
}

TEST_F(PermissionTest, LaterTemporaryAcceptWithExpirationDoesNotDowngradePermanent) {
  Add(AcceptPermanent("m1", kT0));
  Add(AcceptTemporary("m2", kT0 + hours(1), kT0 + hours(2)));
  EXPECT_EQ(StatusAt(kT0 + hours(3)), "permanent");
}

TEST_F(PermissionTest, LaterRejectReplacesPermanent) {
  Add(AcceptPermanent("m1", kT0));
  Add(Reject("m2", kT0 + hours(1)));
  EXPECT_EQ(StatusAt(kT0 + hours(1)), "not_granted");
}

TEST_F(PermissionTest, LaterAcceptReplacesReject) {
  Add(Reject("m1", kT0));
  Add(AcceptTemporary("m2", kT0 + hours(1)));
  EXPECT_EQ(StatusAt(kT0 + hours(1)), "temporary");
}

TEST_F(PermissionTest, LaterTemporaryAcceptReplacesTheExpiryOfALiveTemporary) {
  Add(AcceptTemporary("m1", kT0));
  Add(AcceptTemporary("m2", kT0 + hours(24)));
  EXPECT_EQ(ExpiryAt(kT0 + hours(25)), Text(kT0 + hours(24) + kDays7));
  EXPECT_EQ(StatusAt(kT0 + kDays7), "temporary");
}

TEST_F(PermissionTest, PermanentAcceptUpgradesTemporary) {
  Add(AcceptTemporary("m1", kT0));
  Add(AcceptPermanent("m2", kT0 + hours(1)));
  EXPECT_EQ(StatusAt(kT0 + kDays7 + hours(1)), "permanent");
}

TEST_F(PermissionTest, NewerRejectWinsWhenDeliveredBeforeAnOlderAccept) {
  Add(Reject("m2", kT0 + hours(1)));
  Add(AcceptPermanent("m1", kT0));
  EXPECT_EQ(StatusAt(kT0 + hours(2)), "not_granted");
}

TEST_F(PermissionTest, NewerAcceptWinsWhenDeliveredBeforeAnOlderReject) {
  Add(AcceptTemporary("m2", kT0 + hours(1)));
  Add(Reject("m1", kT0));
  EXPECT_EQ(StatusAt(kT0 + hours(2)), "temporary");
  EXPECT_EQ(ExpiryAt(kT0 + hours(2)), Text(kT0 + hours(1) + kDays7));
}

TEST_F(PermissionTest, OlderRejectBetweenTwoAcceptsIsOverriddenByTheNewest) {
  Add(AcceptTemporary("m3", kT0 + hours(2)));
  Add(Reject("m2", kT0 + hours(1)));
  Add(AcceptPermanent("m1", kT0));
  EXPECT_EQ(StatusAt(kT0 + hours(3)), "temporary");
}

// ---------------------------------------------------------------------------------------------
// Callback grants (docs/rules.md §2.2).

using CallbackTest = LedgerTest;

TEST_F(CallbackTest, GrantsTemporaryForSevenDaysFromTheCall) {
  Add(Callback("wacid.1", kT0));
  EXPECT_EQ(StatusAt(kT0), "temporary");
  EXPECT_EQ(ExpiryAt(kT0), Text(kT0 + seconds(604800)));
  EXPECT_EQ(StatusAt(kT0 + kDays7), "not_granted");
}

TEST_F(CallbackTest, MissedUserCallWithCallbackGrantsTemporary) {
  Add(TerminateUnanswered("wacid.1", kT0 + seconds(30), CallDirection::kUserInitiated));
  Add(Callback("wacid.1", kT0));
  EXPECT_EQ(StatusAt(kT0 + minutes(1)), "temporary");
  EXPECT_EQ(ExpiryAt(kT0 + minutes(1)), Text(kT0 + kDays7));
}

TEST_F(CallbackTest, DoesNotDowngradePermanent) {
  Add(AcceptPermanent("m1", kT0));
  Add(Callback("wacid.1", kT0 + hours(1)));
  EXPECT_EQ(StatusAt(kT0 + hours(2)), "permanent");
  EXPECT_EQ(StatusAt(kT0 + hours(1) + kDays7), "permanent");
}

TEST_F(CallbackTest, GrantAndAutomaticAcceptAtTheCallTimeLandOnTheSameState) {
  PairState grant_only;
  PairState reply_only;
  ASSERT_EQ(Apply(grant_only, Callback("wacid.1", kT0), profile_), ApplyOutcome::kApplied);
  ASSERT_EQ(
      Apply(reply_only, AcceptTemporary("wamid.auto", kT0, std::nullopt, ReplySource::kAutomatic),
            profile_),
      ApplyOutcome::kApplied);
  Add(AcceptTemporary("wamid.auto", kT0, std::nullopt, ReplySource::kAutomatic));
  Add(Callback("wacid.1", kT0));

  const Instant now = kT0 + hours(1);
  for (const PairState* state : {&grant_only, &reply_only}) {
    const StatusView view = View(*state, now, profile_);
    EXPECT_EQ(StatusName(view.permission.status), "temporary");
    EXPECT_EQ(Text(view.permission.expires_at), Text(kT0 + kDays7));
  }
  EXPECT_EQ(StatusAt(now), "temporary");
  EXPECT_EQ(ExpiryAt(now), Text(kT0 + kDays7));
}

TEST_F(CallbackTest, AutomaticAcceptNamingTheCallExpiryAgreesWithTheGrantWhateverTheOrder) {
  // Upstream's automatic accept may carry a later message timestamp; its expiration_timestamp
  // names the callback grant's expiry.
  Add(AcceptTemporary("wamid.auto", kT0 + seconds(2), kT0 + kDays7, ReplySource::kAutomatic));
  Add(Callback("wacid.1", kT0));
  EXPECT_EQ(StatusAt(kT0 + hours(1)), "temporary");
  EXPECT_EQ(ExpiryAt(kT0 + hours(1)), Text(kT0 + kDays7));
}

TEST_F(CallbackTest, GrantRenewsAnExpiredTemporary) {
  Add(AcceptTemporary("m1", kT0));
  Add(Callback("wacid.1", kT0 + hours(24 * 10)));
  EXPECT_EQ(StatusAt(kT0 + hours(24 * 10)), "temporary");
  EXPECT_EQ(ExpiryAt(kT0 + hours(24 * 10)), Text(kT0 + hours(24 * 17)));
}

// ---------------------------------------------------------------------------------------------
// Limits (docs/rules.md §3).

using LimitsTest = LedgerTest;

TEST_F(LimitsTest, RequestCountsInBothRequestWindows) {
  Add(Request("r1", kT0));
  const StatusView view = ViewAt(kT0 + hours(1));
  EXPECT_EQ(view.usage[kRequestsPerDay].current_usage, 1);
  EXPECT_EQ(view.usage[kRequestsPerWeek].current_usage, 1);
  EXPECT_EQ(view.usage[kCallsPerDay].current_usage, 0);
}

TEST_F(LimitsTest, RequestCountsAtTheInstantItIsSent) {
  Add(Request("r1", kT0));
  EXPECT_EQ(ViewAt(kT0).usage[kRequestsPerDay].current_usage, 1);
}

TEST_F(LimitsTest, RequestAfterNowDoesNotCount) {
  Add(Request("r1", kT0 + kMs));
  EXPECT_EQ(ViewAt(kT0).usage[kRequestsPerDay].current_usage, 0);
}

TEST_F(LimitsTest, RequestOneMillisecondYoungerThanADayStillCounts) {
  Add(Request("r1", kT0));
  EXPECT_EQ(ViewAt(kT0 + kHours24 - kMs).usage[kRequestsPerDay].current_usage, 1);
}

TEST_F(LimitsTest, RequestExactlyADayOldLeavesTheDayWindow) {
  Add(Request("r1", kT0));
  const StatusView view = ViewAt(kT0 + kHours24);
  EXPECT_EQ(view.usage[kRequestsPerDay].current_usage, 0);
  EXPECT_EQ(view.usage[kRequestsPerWeek].current_usage, 1);
}

TEST_F(LimitsTest, RequestOneMillisecondYoungerThanSevenDaysStillCounts) {
  Add(Request("r1", kT0));
  EXPECT_EQ(ViewAt(kT0 + kDays7 - kMs).usage[kRequestsPerWeek].current_usage, 1);
}

TEST_F(LimitsTest, RequestExactlySevenDaysOldLeavesTheWeekWindow) {
  Add(Request("r1", kT0));
  EXPECT_EQ(ViewAt(kT0 + kDays7).usage[kRequestsPerWeek].current_usage, 0);
}

TEST_F(LimitsTest, OneRequestReachesTheProductionDayLimit) {
  Add(Request("r1", kT0));
  EXPECT_TRUE(ViewAt(kT0 + hours(1)).LimitReached(Action::kSendCallPermissionRequest));
}

TEST_F(LimitsTest, TwoRequestsInAWeekReachTheProductionWeekLimit) {
  Add(Request("r1", kT0));
  Add(Request("r2", kT0 + hours(48)));
  const StatusView view = ViewAt(kT0 + hours(72));
  EXPECT_EQ(view.usage[kRequestsPerDay].current_usage, 0);
  EXPECT_EQ(view.usage[kRequestsPerWeek].current_usage, 2);
  EXPECT_TRUE(view.LimitReached(Action::kSendCallPermissionRequest));
}

TEST_F(LimitsTest, TwentyFourSandboxRequestsInADayStayUnderTheLimit) {
  profile_ = LimitsProfile::kSandbox;
  for (int i = 0; i < 24; ++i) Add(Request("r" + std::to_string(i), kT0 + minutes(i)));
  const StatusView view = ViewAt(kT0 + hours(1));
  EXPECT_EQ(view.usage[kRequestsPerDay].current_usage, 24);
  EXPECT_FALSE(view.LimitReached(Action::kSendCallPermissionRequest));
}

TEST_F(LimitsTest, TwentyFiveSandboxRequestsInADayReachTheLimit) {
  profile_ = LimitsProfile::kSandbox;
  for (int i = 0; i < 25; ++i) Add(Request("r" + std::to_string(i), kT0 + minutes(i)));
  const StatusView view = ViewAt(kT0 + hours(1));
  EXPECT_EQ(view.usage[kRequestsPerDay].current_usage, 25);
  EXPECT_TRUE(view.LimitReached(Action::kSendCallPermissionRequest));
}

TEST_F(LimitsTest, OneHundredSandboxRequestsInAWeekReachTheWeekLimit) {
  profile_ = LimitsProfile::kSandbox;
  // One every 90 minutes: at most 16 in any day, 100 within 150 hours.
  for (int i = 0; i < 100; ++i) Add(Request("r" + std::to_string(i), kT0 + minutes(90 * i)));
  const StatusView view = ViewAt(kT0 + hours(150));
  EXPECT_LT(view.usage[kRequestsPerDay].current_usage, 25);
  EXPECT_EQ(view.usage[kRequestsPerWeek].current_usage, 100);
  EXPECT_TRUE(view.LimitReached(Action::kSendCallPermissionRequest));
}

TEST_F(LimitsTest, NinetyNineSandboxRequestsInAWeekStayUnderTheWeekLimit) {
  profile_ = LimitsProfile::kSandbox;
  for (int i = 0; i < 99; ++i) Add(Request("r" + std::to_string(i), kT0 + minutes(90 * i)));
  EXPECT_FALSE(ViewAt(kT0 + hours(150)).LimitReached(Action::kSendCallPermissionRequest));
}

TEST_F(LimitsTest, LimitExpirationIsAbsentBelowTheLimit) {
  Add(Request("r1", kT0));
  const StatusView view = ViewAt(kT0 + hours(1));
  EXPECT_EQ(view.usage[kRequestsPerWeek].current_usage, 1);
  EXPECT_EQ(Text(view.usage[kRequestsPerWeek].limit_expiration), "(none)");
}

TEST_F(LimitsTest, LimitExpirationIsWhenTheOnlyCountedRequestLeavesTheDay) {
  Add(Request("r1", kT0 + minutes(5)));
  EXPECT_EQ(Text(ViewAt(kT0 + hours(1)).usage[kRequestsPerDay].limit_expiration),
            Text(kT0 + minutes(5) + kHours24));
}

TEST_F(LimitsTest, LimitExpirationIsWhenTheOldestCountedRequestLeavesTheWeek) {
  Add(Request("r2", kT0 + hours(48)));
  Add(Request("r1", kT0 + hours(2)));
  EXPECT_EQ(Text(ViewAt(kT0 + hours(72)).usage[kRequestsPerWeek].limit_expiration),
            Text(kT0 + hours(2) + kDays7));
}

TEST_F(LimitsTest, LimitExpirationIgnoresRequestsThatLeftTheWindow) {
  Add(Request("r1", kT0));
  Add(Request("r2", kT0 + hours(48)));
  Add(Request("r3", kT0 + hours(24 * 8)));
  const StatusView view = ViewAt(kT0 + hours(24 * 8 + 1));
  EXPECT_EQ(view.usage[kRequestsPerWeek].current_usage, 2);
  EXPECT_EQ(Text(view.usage[kRequestsPerWeek].limit_expiration), Text(kT0 + hours(48) + kDays7));
}

TEST_F(LimitsTest, ConnectedBusinessCallCountsTowardStartCall) {
  Add(Connect("wacid.1", kT0));
  EXPECT_EQ(ViewAt(kT0 + hours(1)).usage[kCallsPerDay].current_usage, 1);
}

TEST_F(LimitsTest, ConnectAndTerminateOfTheSameCallCountOnce) {
  AddConnectedCall("wacid.1", kT0);
  EXPECT_EQ(ViewAt(kT0 + hours(1)).usage[kCallsPerDay].current_usage, 1);
}

TEST_F(LimitsTest, TerminateBeforeConnectOfTheSameCallCountsOnce) {
  Add(TerminatePickedUp("wacid.1", kT0 + minutes(3), kT0));
  Add(Connect("wacid.1", kT0));
  EXPECT_EQ(ViewAt(kT0 + hours(1)).usage[kCallsPerDay].current_usage, 1);
}

TEST_F(LimitsTest, PickedUpTerminateWithoutConnectCounts) {
  Add(TerminatePickedUp("wacid.1", kT0 + minutes(3), kT0));
  EXPECT_EQ(ViewAt(kT0 + hours(1)).usage[kCallsPerDay].current_usage, 1);
}

TEST_F(LimitsTest, PickedUpTerminateWithoutStartTimeCounts) {
  Add(TerminatePickedUp("wacid.1", kT0 + minutes(3), std::nullopt));
  EXPECT_EQ(ViewAt(kT0 + hours(1)).usage[kCallsPerDay].current_usage, 1);
}

TEST_F(LimitsTest, CallCountsFromWhenItConnectedNotWhenItEnded) {
  Add(TerminatePickedUp("wacid.1", kT0 + hours(1), kT0));
  const StatusView view = ViewAt(kT0 + kHours24);
  EXPECT_EQ(view.usage[kCallsPerDay].current_usage, 0);
}

TEST_F(LimitsTest, CallOneMillisecondYoungerThanADayStillCounts) {
  Add(Connect("wacid.1", kT0));
  EXPECT_EQ(ViewAt(kT0 + kHours24 - kMs).usage[kCallsPerDay].current_usage, 1);
}

TEST_F(LimitsTest, CallExactlyADayOldLeavesTheWindow) {
  Add(Connect("wacid.1", kT0));
  EXPECT_EQ(ViewAt(kT0 + kHours24).usage[kCallsPerDay].current_usage, 0);
}

TEST_F(LimitsTest, UnansweredBusinessCallDoesNotCountTowardStartCall) {
  Add(TerminateUnanswered("wacid.1", kT0));
  Add(Rejected("wacid.2", kT0 + minutes(1)));
  EXPECT_EQ(ViewAt(kT0 + hours(1)).usage[kCallsPerDay].current_usage, 0);
}

TEST_F(LimitsTest, UserInitiatedCallDoesNotCountTowardStartCall) {
  AddConnectedCall("wacid.1", kT0, CallDirection::kUserInitiated);
  EXPECT_EQ(ViewAt(kT0 + hours(1)).usage[kCallsPerDay].current_usage, 0);
}

TEST_F(LimitsTest, CallbackCallDoesNotCountTowardStartCallEvenIfAnEventOmitsTheDirection) {
  // The callback grant names the call user-initiated; a connect delivered after it with the
  // default business-initiated direction must not make it count.
  Add(Callback("wacid.1", kT0));
  Add(Connect("wacid.1", kT0));
  EXPECT_EQ(ViewAt(kT0 + hours(1)).usage[kCallsPerDay].current_usage, 0);
}

TEST_F(LimitsTest, OneHundredConnectedCallsReachTheStartCallLimit) {
  for (int i = 0; i < 100; ++i) Add(Connect("wacid." + std::to_string(i), kT0 + minutes(i)));
  const StatusView view = ViewAt(kT0 + hours(2));
  EXPECT_EQ(view.usage[kCallsPerDay].current_usage, 100);
  EXPECT_TRUE(view.LimitReached(Action::kStartCall));
  EXPECT_EQ(Text(view.usage[kCallsPerDay].limit_expiration), Text(kT0 + kHours24));
}

TEST_F(LimitsTest, NinetyNineConnectedCallsStayUnderTheStartCallLimit) {
  for (int i = 0; i < 99; ++i) Add(Connect("wacid." + std::to_string(i), kT0 + minutes(i)));
  const StatusView view = ViewAt(kT0 + hours(2));
  EXPECT_FALSE(view.LimitReached(Action::kStartCall));
  EXPECT_EQ(Text(view.usage[kCallsPerDay].limit_expiration), "(none)");
}

TEST_F(LimitsTest, SandboxStartCallLimitIsAlsoOneHundred) {
  profile_ = LimitsProfile::kSandbox;
  for (int i = 0; i < 100; ++i) Add(Connect("wacid." + std::to_string(i), kT0 + minutes(i)));
  const StatusView view = ViewAt(kT0 + hours(2));
  EXPECT_EQ(view.usage[kCallsPerDay].max_allowed, 100);
  EXPECT_TRUE(view.LimitReached(Action::kStartCall));
}

TEST_F(LimitsTest, ConnectedBusinessCallClearsBothRequestCounters) {
  Add(Request("r1", kT0));
  Add(Request("r2", kT0 + minutes(10)));
  Add(Connect("wacid.1", kT0 + hours(1)));
  const StatusView view = ViewAt(kT0 + hours(2));
  EXPECT_EQ(view.usage[kRequestsPerDay].current_usage, 0);
  EXPECT_EQ(view.usage[kRequestsPerWeek].current_usage, 0);
  EXPECT_EQ(Text(view.usage[kRequestsPerDay].limit_expiration), "(none)");
  EXPECT_EQ(Text(view.usage[kRequestsPerWeek].limit_expiration), "(none)");
}

TEST_F(LimitsTest, ConnectedUserInitiatedCallClearsBothRequestCounters) {
  Add(Request("r1", kT0));
  Add(Request("r2", kT0 + minutes(10)));
  AddConnectedCall("wacid.1", kT0 + hours(1), CallDirection::kUserInitiated);
  const StatusView view = ViewAt(kT0 + hours(2));
  EXPECT_EQ(view.usage[kRequestsPerDay].current_usage, 0);
  EXPECT_EQ(view.usage[kRequestsPerWeek].current_usage, 0);
}

TEST_F(LimitsTest, PickedUpTerminateWithoutConnectClearsRequestCounters) {
  Add(Request("r1", kT0));
  Add(TerminatePickedUp("wacid.1", kT0 + hours(2), kT0 + hours(1)));
  EXPECT_EQ(ViewAt(kT0 + hours(3)).usage[kRequestsPerDay].current_usage, 0);
}

TEST_F(LimitsTest, ConnectedCallDoesNotClearTheStartCallCounter) {
  Add(Connect("wacid.1", kT0));
  Add(Connect("wacid.2", kT0 + hours(1)));
  EXPECT_EQ(ViewAt(kT0 + hours(2)).usage[kCallsPerDay].current_usage, 2);
}

TEST_F(LimitsTest, RequestsSentAfterAConnectedCallCountAgain) {
  Add(Request("r1", kT0));
  Add(Connect("wacid.1", kT0 + hours(1)));
  Add(Request("r2", kT0 + hours(2)));
  const StatusView view = ViewAt(kT0 + hours(3));
  EXPECT_EQ(view.usage[kRequestsPerDay].current_usage, 1);
  EXPECT_EQ(view.usage[kRequestsPerWeek].current_usage, 1);
  EXPECT_EQ(Text(view.usage[kRequestsPerDay].limit_expiration), Text(kT0 + hours(2) + kHours24));
}

TEST_F(LimitsTest, ConnectedCallAfterNowDoesNotYetClearRequestCounters) {
  Add(Request("r1", kT0));
  Add(Connect("wacid.1", kT0 + hours(5)));
  EXPECT_EQ(ViewAt(kT0 + hours(2)).usage[kRequestsPerDay].current_usage, 1);
}

TEST_F(LimitsTest, UnansweredCallDoesNotClearRequestCounters) {
  Add(Request("r1", kT0));
  Add(TerminateUnanswered("wacid.1", kT0 + hours(1)));
  Add(Rejected("wacid.2", kT0 + hours(1)));
  Add(TerminateUnanswered("wacid.3", kT0 + hours(1), CallDirection::kUserInitiated));
  EXPECT_EQ(ViewAt(kT0 + hours(2)).usage[kRequestsPerDay].current_usage, 1);
}

TEST_F(LimitsTest, ReachingTheRequestLimitDoesNotChangeTheStatus) {
  Add(AcceptTemporary("m1", kT0));
  Add(Request("r1", kT0 + hours(1)));
  Add(Request("r2", kT0 + hours(2)));
  EXPECT_EQ(StatusAt(kT0 + hours(3)), "temporary");
  EXPECT_EQ(ExpiryAt(kT0 + hours(3)), Text(kT0 + kDays7));
}

TEST_F(LimitsTest, ReachingTheCallLimitDoesNotChangeTheStatus) {
  Add(AcceptPermanent("m1", kT0));
  for (int i = 0; i < 100; ++i) Add(Connect("wacid." + std::to_string(i), kT0 + minutes(i + 1)));
  EXPECT_EQ(StatusAt(kT0 + hours(2)), "permanent");
}

// ---------------------------------------------------------------------------------------------
// canPerformAction (docs/rules.md §4).

using CanPerformTest = LedgerTest;

TEST_F(CanPerformTest, SendRequestIsForbiddenWhenPermanent) {
  Add(AcceptPermanent("m1", kT0));
  EXPECT_FALSE(ViewAt(kT0 + hours(1)).CanPerform(Action::kSendCallPermissionRequest));
}

TEST_F(CanPerformTest, SendRequestIsAllowedWhileTemporary) {
  Add(AcceptTemporary("m1", kT0));
  EXPECT_TRUE(ViewAt(kT0 + hours(1)).CanPerform(Action::kSendCallPermissionRequest));
}

TEST_F(CanPerformTest, SendRequestIsAllowedAfterARevocation) {
  Add(AcceptPermanent("m1", kT0));
  Add(Reject("m2", kT0 + hours(1)));
  EXPECT_TRUE(ViewAt(kT0 + hours(2)).CanPerform(Action::kSendCallPermissionRequest));
}

TEST_F(CanPerformTest, SendRequestIsForbiddenWhileTheDayLimitIsReached) {
  Add(Request("r1", kT0));
  EXPECT_FALSE(ViewAt(kT0 + kHours24 - kMs).CanPerform(Action::kSendCallPermissionRequest));
}

TEST_F(CanPerformTest, SendRequestIsAllowedOnceTheDayWindowFrees) {
  Add(Request("r1", kT0));
  EXPECT_TRUE(ViewAt(kT0 + kHours24).CanPerform(Action::kSendCallPermissionRequest));
}

TEST_F(CanPerformTest, SendRequestIsForbiddenWhenOnlyTheWeekLimitIsReached) {
  Add(Request("r1", kT0));
  Add(Request("r2", kT0 + hours(48)));
  const StatusView view = ViewAt(kT0 + hours(24 * 4));
  ASSERT_EQ(view.usage[kRequestsPerDay].current_usage, 0);
  EXPECT_FALSE(view.CanPerform(Action::kSendCallPermissionRequest));
}

TEST_F(CanPerformTest, SendRequestIsForbiddenWhileTemporaryWhenALimitIsReached) {
  Add(AcceptTemporary("m1", kT0));
  Add(Request("r1", kT0 + hours(1)));
  EXPECT_FALSE(ViewAt(kT0 + hours(2)).CanPerform(Action::kSendCallPermissionRequest));
}

TEST_F(CanPerformTest, StartCallIsAllowedWhileTemporary) {
  Add(AcceptTemporary("m1", kT0));
  EXPECT_TRUE(ViewAt(kT0 + kDays7 - kMs).CanPerform(Action::kStartCall));
}

TEST_F(CanPerformTest, StartCallIsForbiddenOnceTemporaryExpires) {
  Add(AcceptTemporary("m1", kT0));
  EXPECT_FALSE(ViewAt(kT0 + kDays7).CanPerform(Action::kStartCall));
}

TEST_F(CanPerformTest, StartCallIsAllowedWhenPermanent) {
  Add(AcceptPermanent("m1", kT0));
  EXPECT_TRUE(ViewAt(kT0 + hours(24 * 100)).CanPerform(Action::kStartCall));
}

TEST_F(CanPerformTest, StartCallIsForbiddenAfterAReject) {
  Add(AcceptPermanent("m1", kT0));
  Add(Reject("m2", kT0 + hours(1)));
  EXPECT_FALSE(ViewAt(kT0 + hours(1)).CanPerform(Action::kStartCall));
}

TEST_F(CanPerformTest, StartCallIsForbiddenWhenPermanentButTheCallLimitIsReached) {
  Add(AcceptPermanent("m1", kT0));
  for (int i = 0; i < 100; ++i) Add(Connect("wacid." + std::to_string(i), kT0 + minutes(i + 1)));
  EXPECT_FALSE(ViewAt(kT0 + hours(2)).CanPerform(Action::kStartCall));
}

TEST_F(CanPerformTest, StartCallIsAllowedAgainWhenTheOldestCallLeavesTheWindow) {
  Add(AcceptPermanent("m1", kT0));
  for (int i = 0; i < 100; ++i) Add(Connect("wacid." + std::to_string(i), kT0 + minutes(i + 1)));
  const Instant frees_at = *ViewAt(kT0 + hours(2)).usage[kCallsPerDay].limit_expiration;
  EXPECT_FALSE(ViewAt(frees_at - kMs).CanPerform(Action::kStartCall));
  EXPECT_TRUE(ViewAt(frees_at).CanPerform(Action::kStartCall));
}

TEST_F(CanPerformTest, StartCallIgnoresTheRequestLimit) {
  Add(AcceptTemporary("m1", kT0));
  Add(Request("r1", kT0 + hours(1)));
  EXPECT_TRUE(ViewAt(kT0 + hours(2)).CanPerform(Action::kStartCall));
}

TEST_F(CanPerformTest, EveryStatusListsAllThreeLimits) {
  const int production[] = {1, 2, 100};
  Add(AcceptTemporary("m1", kT0));
  Add(AcceptPermanent("m2", kT0 + hours(24 * 10)));
  // not_granted before, temporary during, not_granted after expiry, then permanent.
  for (const Instant now : {kT0 - kMs, kT0, kT0 + kDays7, kT0 + hours(24 * 10)}) {
    const StatusView view = ViewAt(now);
    SCOPED_TRACE(StatusName(view.permission.status));
    for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
      EXPECT_EQ(view.usage[i].max_allowed, production[i]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Auto-revocation (docs/rules.md §2, lost by 2).

using AutoRevocationTest = LedgerTest;

TEST_F(AutoRevocationTest, ThreeUnansweredBusinessCallsKeepThePermission) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("wacid.", 3, kT0 + hours(1));
  EXPECT_EQ(StatusAt(kT0 + hours(24)), "permanent");
}

TEST_F(AutoRevocationTest, FourthConsecutiveUnansweredBusinessCallRevokesPermanent) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("wacid.", 4, kT0 + hours(1));
  EXPECT_EQ(StatusAt(kT0 + hours(4) - kMs), "permanent");
  EXPECT_EQ(StatusAt(kT0 + hours(4)), "not_granted");
}

TEST_F(AutoRevocationTest, FourthConsecutiveUnansweredBusinessCallRevokesTemporary) {
  Add(AcceptTemporary("m1", kT0));
  AddUnansweredCalls("wacid.", 4, kT0 + hours(1));
  EXPECT_EQ(StatusAt(kT0 + hours(5)), "not_granted");
  EXPECT_FALSE(ViewAt(kT0 + hours(5)).CanPerform(Action::kStartCall));
}

TEST_F(AutoRevocationTest, SandboxKeepsThePermissionAfterNine) {
  profile_ = LimitsProfile::kSandbox;
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("wacid.", 9, kT0 + hours(1));
  EXPECT_EQ(StatusAt(kT0 + hours(24)), "permanent");
}

TEST_F(AutoRevocationTest, SandboxRevokesAfterTen) {
  profile_ = LimitsProfile::kSandbox;
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("wacid.", 10, kT0 + hours(1));
  EXPECT_EQ(StatusAt(kT0 + hours(24)), "not_granted");
}

TEST_F(AutoRevocationTest, RejectedCallsCountAsUnanswered) {
  Add(AcceptPermanent("m1", kT0));
  for (int i = 0; i < 4; ++i) Add(Rejected("wacid." + std::to_string(i), kT0 + hours(i + 1)));
  EXPECT_EQ(StatusAt(kT0 + hours(24)), "not_granted");
}

TEST_F(AutoRevocationTest, RejectedStatusAndLaterTerminateOfTheSameCallCountOnce) {
  Add(AcceptPermanent("m1", kT0));
  for (int i = 0; i < 3; ++i) {
    const std::string id = "wacid." + std::to_string(i);
    Add(Rejected(id, kT0 + hours(i + 1)));
    Add(TerminateUnanswered(id, kT0 + hours(i + 1) + seconds(2)));
  }
  EXPECT_EQ(StatusAt(kT0 + hours(24)), "permanent");
}

TEST_F(AutoRevocationTest, TerminateBeforeRejectedStatusOfTheSameCallCountsOnce) {
  Add(AcceptPermanent("m1", kT0));
  for (int i = 0; i < 3; ++i) {
    const std::string id = "wacid." + std::to_string(i);
    Add(TerminateUnanswered(id, kT0 + hours(i + 1) + seconds(2)));
    Add(Rejected(id, kT0 + hours(i + 1)));
  }
  EXPECT_EQ(StatusAt(kT0 + hours(24)), "permanent");
}

TEST_F(AutoRevocationTest, MixOfRejectedAndUnansweredCallsRevokes) {
  Add(AcceptPermanent("m1", kT0));
  Add(Rejected("wacid.1", kT0 + hours(1)));
  Add(TerminateUnanswered("wacid.2", kT0 + hours(2)));
  Add(Rejected("wacid.3", kT0 + hours(3)));
  Add(TerminateUnanswered("wacid.4", kT0 + hours(4)));
  EXPECT_EQ(StatusAt(kT0 + hours(5)), "not_granted");
}

TEST_F(AutoRevocationTest, ConnectedBusinessCallResetsTheCount) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("a.", 3, kT0 + hours(1));
  AddConnectedCall("b", kT0 + hours(5));
  AddUnansweredCalls("c.", 3, kT0 + hours(6));
  EXPECT_EQ(StatusAt(kT0 + hours(24)), "permanent");
}

TEST_F(AutoRevocationTest, ConnectedUserInitiatedCallResetsTheCount) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("a.", 3, kT0 + hours(1));
  AddConnectedCall("b", kT0 + hours(5), CallDirection::kUserInitiated);
  AddUnansweredCalls("c.", 3, kT0 + hours(6));
  EXPECT_EQ(StatusAt(kT0 + hours(24)), "permanent");
}

TEST_F(AutoRevocationTest, PickedUpTerminateWithoutConnectResetsTheCount) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("a.", 3, kT0 + hours(1));
  Add(TerminatePickedUp("b", kT0 + hours(5) + minutes(2), kT0 + hours(5)));
  AddUnansweredCalls("c.", 3, kT0 + hours(6));
  EXPECT_EQ(StatusAt(kT0 + hours(24)), "permanent");
}

TEST_F(AutoRevocationTest, ConnectedCallDeliveredLastStillResetsTheCountAtItsTime) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("a.", 3, kT0 + hours(1));
  AddUnansweredCalls("c.", 3, kT0 + hours(6));
  AddConnectedCall("b", kT0 + hours(5));
  EXPECT_EQ(StatusAt(kT0 + hours(24)), "permanent");
}

TEST_F(AutoRevocationTest, MissedUserInitiatedCallsDoNotCount) {
  Add(AcceptPermanent("m1", kT0));
  for (int i = 0; i < 4; ++i) {
    Add(TerminateUnanswered("wacid." + std::to_string(i), kT0 + hours(i + 1),
                            CallDirection::kUserInitiated));
  }
  EXPECT_EQ(StatusAt(kT0 + hours(24)), "permanent");
}

TEST_F(AutoRevocationTest, ConnectWithoutTerminateYetResetsTheCount) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("a.", 3, kT0 + hours(1));
  Add(Connect("b", kT0 + hours(4)));  // still in progress
  AddUnansweredCalls("c.", 1, kT0 + hours(5));
  EXPECT_EQ(StatusAt(kT0 + hours(6)), "permanent");
}

TEST_F(AutoRevocationTest, RenewingALiveTemporaryKeepsTheCount) {
  Add(AcceptTemporary("m1", kT0));
  AddUnansweredCalls("a.", 3, kT0 + hours(1));
  Add(AcceptTemporary("m2", kT0 + hours(5)));
  AddUnansweredCalls("c.", 1, kT0 + hours(6));
  EXPECT_EQ(StatusAt(kT0 + hours(7)), "not_granted");
}

TEST_F(AutoRevocationTest, FreshGrantAfterExpiryResetsTheCount) {
  Add(AcceptTemporary("m1", kT0));
  AddUnansweredCalls("a.", 3, kT0 + hours(1));
  Add(AcceptTemporary("m2", kT0 + hours(24 * 8)));
  AddUnansweredCalls("c.", 3, kT0 + hours(24 * 8 + 1));
  EXPECT_EQ(StatusAt(kT0 + hours(24 * 9)), "temporary");
}

TEST_F(AutoRevocationTest, FreshGrantAfterRevocationStartsCountingFromZero) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("a.", 4, kT0 + hours(1));
  Add(AcceptPermanent("m2", kT0 + hours(10)));
  AddUnansweredCalls("c.", 3, kT0 + hours(11));
  EXPECT_EQ(StatusAt(kT0 + hours(24)), "permanent");
}

TEST_F(AutoRevocationTest, AutomaticRejectAfterAutoRevocationKeepsNotGranted) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("a.", 4, kT0 + hours(1));
  Add(Reject("wamid.auto", kT0 + hours(4) + seconds(1), ReplySource::kAutomatic));
  EXPECT_EQ(StatusAt(kT0 + hours(5)), "not_granted");
}

// ---------------------------------------------------------------------------------------------
// Facts at the same instant fold as answered call, unanswered call, callback grant, reply
// (ledger.h), whatever order they arrive in.

using TieOrderTest = LedgerTest;

TEST_F(TieOrderTest, AnsweredCallResetsBeforeAnUnansweredCallAtTheSameInstantCounts) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("a.", 3, kT0 + hours(1));
  Add(TerminateUnanswered("c", kT0 + hours(5)));
  Add(Connect("b", kT0 + hours(5)));
  EXPECT_EQ(StatusAt(kT0 + hours(6)), "permanent");
}

TEST_F(TieOrderTest, UnansweredCallRevokesBeforeACallbackGrantAtTheSameInstant) {
  Add(AcceptTemporary("m1", kT0));
  AddUnansweredCalls("a.", 3, kT0 + hours(1));
  Add(Callback("cb", kT0 + hours(5)));
  Add(TerminateUnanswered("c", kT0 + hours(5)));
  EXPECT_EQ(StatusAt(kT0 + hours(6)), "temporary");
  EXPECT_EQ(ExpiryAt(kT0 + hours(6)), Text(kT0 + hours(5) + kDays7));
}

TEST_F(TieOrderTest, UnansweredCallRevokesBeforeAReplyAtTheSameInstant) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("a.", 3, kT0 + hours(1));
  Add(AcceptPermanent("m2", kT0 + hours(5)));
  Add(TerminateUnanswered("c", kT0 + hours(5)));
  EXPECT_EQ(StatusAt(kT0 + hours(6)), "permanent");
}

TEST_F(TieOrderTest, ReplyFoldsAfterACallbackGrantAtTheSameInstant) {
  Add(Reject("m1", kT0));
  Add(Callback("cb", kT0));
  EXPECT_EQ(StatusAt(kT0 + hours(1)), "not_granted");
}

TEST_F(TieOrderTest, ReplyAtTheExactExpiryIsAFreshGrant) {
  Add(AcceptTemporary("m1", kT0));
  AddUnansweredCalls("a.", 3, kT0 + hours(1));
  Add(AcceptTemporary("m2", kT0 + kDays7));
  AddUnansweredCalls("c.", 1, kT0 + kDays7 + hours(1));
  EXPECT_EQ(StatusAt(kT0 + kDays7 + hours(2)), "temporary");
}

// ---------------------------------------------------------------------------------------------
// Notices: the derived history entries.

using NoticesTest = LedgerTest;

TEST_F(NoticesTest, OneUnansweredCallRecordsNothing) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("wacid.", 1, kT0 + hours(1));
  EXPECT_TRUE(NoticesAt(kT0 + hours(24)).empty());
}

TEST_F(NoticesTest, SecondConsecutiveUnansweredCallRecordsTheReconsiderNotice) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("wacid.", 2, kT0 + hours(1));
  const std::vector<Notice> notices = NoticesAt(kT0 + hours(24));
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(NoticeName(notices[0].kind), "reconsider_notice_shown");
  EXPECT_EQ(Text(notices[0].at), Text(kT0 + hours(2)));
  EXPECT_EQ(notices[0].cause_id, "wacid.1");
}

TEST_F(NoticesTest, ReconsiderNoticeIsNotVisibleBeforeItHappens) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("wacid.", 2, kT0 + hours(1));
  EXPECT_TRUE(NoticesAt(kT0 + hours(2) - kMs).empty());
}

TEST_F(NoticesTest, SandboxRecordsNoReconsiderNoticeAtFour) {
  profile_ = LimitsProfile::kSandbox;
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("wacid.", 4, kT0 + hours(1));
  EXPECT_TRUE(NoticesAt(kT0 + hours(24)).empty());
}

TEST_F(NoticesTest, SandboxRecordsTheReconsiderNoticeAtFive) {
  profile_ = LimitsProfile::kSandbox;
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("wacid.", 5, kT0 + hours(1));
  const std::vector<Notice> notices = NoticesAt(kT0 + hours(24));
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(NoticeName(notices[0].kind), "reconsider_notice_shown");
  EXPECT_EQ(notices[0].cause_id, "wacid.4");
}

TEST_F(NoticesTest, FourthUnansweredCallRecordsReconsiderThenAutoRevoked) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("wacid.", 4, kT0 + hours(1));
  const std::vector<Notice> notices = NoticesAt(kT0 + hours(24));
  ASSERT_EQ(notices.size(), 2u);
  EXPECT_EQ(NoticeName(notices[0].kind), "reconsider_notice_shown");
  EXPECT_EQ(notices[0].cause_id, "wacid.1");
  EXPECT_EQ(NoticeName(notices[1].kind), "auto_revoked");
  EXPECT_EQ(Text(notices[1].at), Text(kT0 + hours(4)));
  EXPECT_EQ(notices[1].cause_id, "wacid.3");
}

TEST_F(NoticesTest, SandboxTenthUnansweredCallRecordsAutoRevoked) {
  profile_ = LimitsProfile::kSandbox;
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("wacid.", 10, kT0 + hours(1));
  const std::vector<Notice> notices = NoticesAt(kT0 + hours(24));
  ASSERT_EQ(notices.size(), 2u);
  EXPECT_EQ(NoticeName(notices[1].kind), "auto_revoked");
  EXPECT_EQ(notices[1].cause_id, "wacid.9");
}

TEST_F(NoticesTest, ResetCountRecordsTheReconsiderNoticeAgain) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("a.", 2, kT0 + hours(1));
  AddConnectedCall("b", kT0 + hours(5));
  AddUnansweredCalls("c.", 2, kT0 + hours(6));
  const std::vector<Notice> notices = NoticesAt(kT0 + hours(24));
  ASSERT_EQ(notices.size(), 2u);
  EXPECT_EQ(notices[0].cause_id, "a.1");
  EXPECT_EQ(notices[1].cause_id, "c.1");
}

TEST_F(NoticesTest, TemporaryLapsingRecordsExpiredAtItsExpiry) {
  Add(AcceptTemporary("m1", kT0, kT0 + hours(30)));
  const std::vector<Notice> notices = NoticesAt(kT0 + hours(31));
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(NoticeName(notices[0].kind), "expired");
  EXPECT_EQ(Text(notices[0].at), Text(kT0 + hours(30)));
  EXPECT_EQ(notices[0].cause_id, "");
}

TEST_F(NoticesTest, LiveTemporaryRecordsNoExpiry) {
  Add(AcceptTemporary("m1", kT0));
  EXPECT_TRUE(NoticesAt(kT0 + kDays7 - kMs).empty());
}

TEST_F(NoticesTest, ExpiryIsRecordedAtExactlyTheExpiryInstant) {
  Add(AcceptTemporary("m1", kT0));
  EXPECT_EQ(NoticesAt(kT0 + kDays7).size(), 1u);
}

TEST_F(NoticesTest, RenewedTemporaryRecordsNoExpiry) {
  Add(AcceptTemporary("m1", kT0));
  Add(AcceptTemporary("m2", kT0 + hours(24)));
  EXPECT_TRUE(NoticesAt(kT0 + kDays7 + hours(1)).empty());
}

TEST_F(NoticesTest, RejectedTemporaryRecordsNoExpiry) {
  Add(AcceptTemporary("m1", kT0));
  Add(Reject("m2", kT0 + hours(24)));
  EXPECT_TRUE(NoticesAt(kT0 + hours(24 * 30)).empty());
}

TEST_F(NoticesTest, ExpiryIsRecordedBeforeALaterGrant) {
  Add(AcceptTemporary("m1", kT0));
  Add(AcceptPermanent("m2", kT0 + hours(24 * 10)));
  const std::vector<Notice> notices = NoticesAt(kT0 + hours(24 * 11));
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(NoticeName(notices[0].kind), "expired");
  EXPECT_EQ(Text(notices[0].at), Text(kT0 + kDays7));
}

// ---------------------------------------------------------------------------------------------
// Apply: idempotence, the reorder horizon and compaction.

using ApplyTest = LedgerTest;

TEST_F(ApplyTest, RepeatedEventOfEveryKindIsADuplicate) {
  const std::vector<Event> events = {
      Request("r1", kT0),
      AcceptTemporary("m1", kT0, kT0 + hours(5)),
      Reject("m2", kT0 + hours(1)),
      Connect("wacid.1", kT0 + hours(2)),
      TerminatePickedUp("wacid.1", kT0 + hours(2) + minutes(1), kT0 + hours(2)),
      Rejected("wacid.2", kT0 + hours(3)),
      TerminateUnanswered("wacid.2", kT0 + hours(3) + seconds(5)),
      Callback("wacid.3", kT0 + hours(4)),
  };
  for (const Event& event : events) Add(event);
  for (const Event& event : events) {
    const PairState before = state_;
    EXPECT_EQ(Apply(state_, event, profile_), ApplyOutcome::kDuplicate) << event.index();
    EXPECT_TRUE(state_ == before) << event.index();
  }
}

TEST_F(ApplyTest, LaterTerminateOfAKnownCallAddsNothing) {
  Add(TerminateUnanswered("wacid.1", kT0));
  EXPECT_EQ(Apply(state_, TerminateUnanswered("wacid.1", kT0 + seconds(1)), profile_),
            ApplyOutcome::kDuplicate);
}

TEST_F(ApplyTest, RepeatedRejectedStatusDoesNotCountTwice) {
  Add(AcceptPermanent("m1", kT0));
  for (int i = 0; i < 3; ++i) Add(Rejected("a." + std::to_string(i), kT0 + hours(i + 1)));
  EXPECT_EQ(Apply(state_, Rejected("a.2", kT0 + hours(3)), profile_), ApplyOutcome::kDuplicate);
  EXPECT_EQ(StatusAt(kT0 + hours(5)), "permanent");
}

TEST_F(ApplyTest, EventBehindTheHorizonIsTooLate) {
  Add(Request("r1", kT0));
  Add(Request("r2", kT0 + hours(24 * 9)));
  // The horizon is now eight days behind the newest fact.
  const PairState before = state_;
  EXPECT_EQ(Apply(state_, AcceptPermanent("m1", kT0 + hours(24) - kMs), profile_),
            ApplyOutcome::kTooLate);
  EXPECT_TRUE(state_ == before);
  EXPECT_EQ(StatusAt(kT0 + hours(24 * 9)), "not_granted");
}

TEST_F(ApplyTest, RepeatOfACompactedEventIsTooLate) {
  Add(Request("r1", kT0));
  Add(Request("r2", kT0 + hours(24 * 9)));
  EXPECT_EQ(Apply(state_, Request("r1", kT0), profile_), ApplyOutcome::kTooLate);
}

TEST_F(ApplyTest, EventAtTheHorizonIsAccepted) {
  Add(Request("r1", kT0));
  Add(Request("r2", kT0 + hours(24 * 9)));
  Add(AcceptPermanent("m1", kT0 + hours(24)));
  EXPECT_EQ(StatusAt(kT0 + hours(24 * 9)), "permanent");
}

TEST_F(ApplyTest, EventSevenDaysBehindTheNewestIsAccepted) {
  Add(Request("r2", kT0 + hours(24 * 30)));
  Add(AcceptPermanent("m1", kT0 + hours(24 * 23)));
  EXPECT_EQ(StatusAt(kT0 + hours(24 * 30)), "permanent");
}

TEST_F(ApplyTest, FactsWithinTheHorizonAreKept) {
  Add(Request("r1", kT0));
  Add(Request("r2", kT0 + kReorderHorizon));
  EXPECT_EQ(state_.requests.size(), 2u);
}

TEST_F(ApplyTest, CompactionDropsFactsBehindTheHorizon) {
  Add(Request("r1", kT0));
  Add(AcceptTemporary("m1", kT0));
  AddConnectedCall("wacid.1", kT0);
  Add(Request("r2", kT0 + kReorderHorizon + hours(1)));
  EXPECT_EQ(state_.requests.size(), 1u);
  EXPECT_TRUE(state_.replies.empty());
  EXPECT_TRUE(state_.calls.empty());
}

TEST_F(ApplyTest, CompactedPermanentGrantSurvives) {
  Add(AcceptPermanent("m1", kT0));
  Add(Request("r1", kT0 + hours(24 * 30)));
  ASSERT_TRUE(state_.replies.empty());
  EXPECT_EQ(StatusAt(kT0 + hours(24 * 30)), "permanent");
}

TEST_F(ApplyTest, CompactedTemporaryStillExpiresOnTime) {
  Add(AcceptTemporary("m1", kT0, kT0 + hours(24 * 20)));
  Add(Request("r1", kT0 + hours(24 * 10)));
  ASSERT_TRUE(state_.replies.empty());
  EXPECT_EQ(StatusAt(kT0 + hours(24 * 20) - kMs), "temporary");
  EXPECT_EQ(StatusAt(kT0 + hours(24 * 20)), "not_granted");
}

TEST_F(ApplyTest, CompactedUnansweredCallsStillCountTowardRevocation) {
  Add(AcceptPermanent("m1", kT0));
  AddUnansweredCalls("a.", 3, kT0 + hours(1));
  Add(Request("r1", kT0 + hours(24 * 9)));
  ASSERT_TRUE(state_.calls.empty());
  AddUnansweredCalls("c.", 1, kT0 + hours(24 * 9 + 1));
  EXPECT_EQ(StatusAt(kT0 + hours(24 * 10)), "not_granted");
}

TEST_F(ApplyTest, CompactionKeepsACallStraddlingTheCutWhole) {
  // The call lasted from kT0 to kT0 + 1 h; the cut would fall inside it.
  Add(Connect("wacid.1", kT0));
  Add(TerminatePickedUp("wacid.1", kT0 + hours(1), kT0));
  Add(Request("r1", kT0 + kReorderHorizon + minutes(30)));
  ASSERT_EQ(state_.calls.count("wacid.1"), 1u);
  EXPECT_EQ(Apply(state_, Connect("wacid.1", kT0), profile_), ApplyOutcome::kDuplicate);
}

}  // namespace
}  // namespace callgate
