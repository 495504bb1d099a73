#include "core/enforcement.h"

#include <gtest/gtest.h>

#include "core/test_time.h"

namespace callgate {
namespace {

using namespace test_time;  // NOLINT(google-build-using-namespace): kT0 and the time units
constexpr Millis kHold = seconds(90);
constexpr auto kProd = LimitsProfile::kProduction;

int CallUsage(const PairState& state, Instant now) {
  return View(state, now, kProd).usage[2].current_usage;
}

PairState Permanent() {
  PairState state;
  (void)Apply(state, PermissionReplied{"wamid.p", kT0, true, true}, kProd);
  return state;
}

TEST(ReserveRequestTest, RecordsTheRequestWhenAllowed) {
  PairState state;
  EXPECT_EQ(ReserveRequest(state, "r1", kT0, kProd).refusal, std::nullopt);
  EXPECT_EQ(View(state, kT0, kProd).usage[0].current_usage, 1);
}

TEST(ReserveRequestTest, ReturnsTheRecordedEventAndTheResultingView) {
  PairState state;
  (void)Apply(state, PermissionRequested{"old", kT0 - hours(30)}, kProd);
  const Decision decision = ReserveRequest(state, "r1", kT0, kProd);
  ASSERT_TRUE(decision.recorded.has_value());
  EXPECT_EQ(std::get<PermissionRequested>(*decision.recorded).request_id, "r1");
  EXPECT_EQ(EventTime(*decision.recorded), kT0);
  EXPECT_EQ(decision.at, kT0);
  EXPECT_EQ(decision.view.usage[0].current_usage, 1);
  EXPECT_EQ(decision.view.usage[1].current_usage, 2);
  // A retry records nothing.
  EXPECT_FALSE(ReserveRequest(state, "r1", kT0, kProd).recorded.has_value());
}

TEST(AuthorizeCallTest, ARefusalRecordsNothingAndShowsTheViewItWasBasedOn) {
  PairState state;
  const Decision decision = AuthorizeCall(state, "a1", kT0, kHold, kProd);
  EXPECT_EQ(decision.refusal, Refusal::kNoLivePermission);
  EXPECT_FALSE(decision.recorded.has_value());
  EXPECT_EQ(decision.view.permission.status, PermissionStatus::kNotGranted);
  EXPECT_TRUE(state.holds.empty());
}

TEST(ReserveRequestTest, RefusesOverTheDailyLimit) {
  PairState state;
  ASSERT_EQ(ReserveRequest(state, "r1", kT0, kProd).refusal, std::nullopt);
  EXPECT_EQ(ReserveRequest(state, "r2", kT0 + hours(1), kProd).refusal,
            Refusal::kRequestLimitReached);
  EXPECT_EQ(state.requests.size(), 1u);
  EXPECT_EQ(ReserveRequest(state, "r2", kT0 + hours(24), kProd).refusal, std::nullopt);
}

TEST(ReserveRequestTest, RetryOfTheSameRequestIdTakesNoSecondSlot) {
  PairState state;
  ASSERT_EQ(ReserveRequest(state, "wamid.r", kT0, kProd).refusal, std::nullopt);
  EXPECT_EQ(ReserveRequest(state, "wamid.r", kT0 + minutes(1), kProd).refusal, std::nullopt);
  EXPECT_EQ(View(state, kT0 + minutes(1), kProd).usage[0].current_usage, 1);
}

TEST(ReserveRequestTest, RefusesWhenAPermanentPermissionExists) {
  PairState state = Permanent();
  EXPECT_EQ(ReserveRequest(state, "r1", kT0, kProd).refusal, Refusal::kPermanentPermissionExists);
}

// Regression: a check that read the clock before a concurrent reservation was recorded must
// still count it (108 of 100 calls were authorised across two processes before).
TEST(ReserveRequestTest, ACheckWithAnEarlierClockStillCountsANewerRequest) {
  PairState state;
  ASSERT_EQ(ReserveRequest(state, "r1", kT0 + seconds(5), kProd).refusal, std::nullopt);
  EXPECT_EQ(ReserveRequest(state, "r2", kT0, kProd).refusal, Refusal::kRequestLimitReached);
}

TEST(AuthorizeCallTest, ACheckWithAnEarlierClockStillCountsNewerHolds) {
  PairState state = Permanent();
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(AuthorizeCall(state, "a" + std::to_string(i), kT0 + seconds(5), kHold, kProd).refusal,
              std::nullopt);
  }
  EXPECT_EQ(AuthorizeCall(state, "late", kT0, kHold, kProd).refusal, Refusal::kCallLimitReached);
}

TEST(AuthorizeCallTest, RefusesWithoutALivePermission) {
  PairState state;
  EXPECT_EQ(AuthorizeCall(state, "a1", kT0, kHold, kProd).refusal, Refusal::kNoLivePermission);
  EXPECT_TRUE(state.holds.empty());
}

TEST(AuthorizeCallTest, AHoldTakesASlotUntilItExpires) {
  PairState state = Permanent();
  ASSERT_EQ(AuthorizeCall(state, "a1", kT0, kHold, kProd).refusal, std::nullopt);
  EXPECT_EQ(CallUsage(state, kT0), 1);
  EXPECT_EQ(CallUsage(state, kT0 + kHold - Millis(1)), 1);
  EXPECT_EQ(CallUsage(state, kT0 + kHold), 0);
}

TEST(AuthorizeCallTest, TheCallsOwnWebhookReleasesTheHold) {
  PairState state = Permanent();
  ASSERT_EQ(AuthorizeCall(state, "a1", kT0, kHold, kProd).refusal, std::nullopt);
  (void)Apply(state,
              CallTerminated{"wacid.1", kT0 + seconds(30), CallDirection::kBusinessInitiated, false,
                             std::nullopt, "a1"},
              kProd);
  EXPECT_EQ(CallUsage(state, kT0 + seconds(31)), 0);
}

TEST(AuthorizeCallTest, AConnectedCallCountsOnceNotAlsoAsItsHold) {
  PairState state = Permanent();
  ASSERT_EQ(AuthorizeCall(state, "a1", kT0, kHold, kProd).refusal, std::nullopt);
  (void)Apply(state,
              CallConnected{"wacid.1", kT0 + seconds(10), CallDirection::kBusinessInitiated, "a1"},
              kProd);
  EXPECT_EQ(CallUsage(state, kT0 + seconds(11)), 1);
}

TEST(AuthorizeCallTest, HoldsAndConnectedCallsTogetherNeverExceedTheLimit) {
  PairState state = Permanent();
  for (int i = 0; i < 60; ++i) {
    (void)Apply(state,
                CallConnected{"wacid." + std::to_string(i), kT0 + seconds(i),
                              CallDirection::kBusinessInitiated},
                kProd);
  }
  const Instant now = kT0 + minutes(5);
  int granted = 0;
  for (int i = 0; i < 80; ++i) {
    if (!AuthorizeCall(state, "a" + std::to_string(i), now, kHold, kProd).refusal) ++granted;
  }
  EXPECT_EQ(granted, 40);
  EXPECT_EQ(AuthorizeCall(state, "late", now, kHold, kProd).refusal, Refusal::kCallLimitReached);
  const StatusView view = View(state, now, kProd);
  EXPECT_EQ(view.usage[2].current_usage, 100);
  // The first slot to free is a hold expiring, before any connected call leaves the window.
  EXPECT_EQ(view.usage[2].limit_expiration, now + kHold);
}

TEST(AuthorizeCallTest, RepeatedAuthorizationIdIsARetry) {
  PairState state = Permanent();
  ASSERT_EQ(AuthorizeCall(state, "a1", kT0, kHold, kProd).refusal, std::nullopt);
  EXPECT_EQ(AuthorizeCall(state, "a1", kT0 + seconds(1), kHold, kProd).refusal, std::nullopt);
  EXPECT_EQ(CallUsage(state, kT0 + seconds(1)), 1);
}

// Authorises call `i` of a series at `at`; whether it was granted.
bool Granted(PairState& state, int i, Instant at) {
  return !AuthorizeCall(state, "a" + std::to_string(i), at, kHold, kProd).refusal;
}

TEST(AuthorizeCallTest, ReleasedHoldsAreDroppedSoABusyPairKeepsOnlyItsLiveHolds) {
  PairState state = Permanent();
  // Ten thousand authorisations, each after the previous hold expired: one hold is kept.
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(Granted(state, i, kT0 + minutes(2) * i)) << i;
    ASSERT_EQ(state.holds.size(), 1u) << i;
  }
  // A hold whose call reported back is dropped by the next authorisation; a live one is kept.
  const Instant now = kT0 + minutes(2) * 10000;
  ASSERT_EQ(AuthorizeCall(state, "live", now, kHold, kProd).refusal, std::nullopt);
  ASSERT_EQ(AuthorizeCall(state, "called", now, kHold, kProd).refusal, std::nullopt);
  (void)Apply(state,
              CallTerminated{"wacid.x", now + seconds(1), CallDirection::kBusinessInitiated, true,
                             now, "called"},
              kProd);
  ASSERT_EQ(AuthorizeCall(state, "next", now + seconds(2), kHold, kProd).refusal, std::nullopt);
  EXPECT_EQ(state.holds.size(), 2u);
  EXPECT_TRUE(state.holds.contains("live"));
  EXPECT_TRUE(state.holds.contains("next"));
}

TEST(DropReleasedHoldsTest, ChangesNoViewFromNowOn) {
  PairState state = Permanent();
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(Granted(state, i, kT0 + seconds(10) * i)) << i;
  for (int i = 0; i < 30; i += 3) {  // every third call reports back, some answered
    (void)Apply(state,
                CallTerminated{"wacid." + std::to_string(i), kT0 + seconds(10) * i + seconds(5),
                               CallDirection::kBusinessInitiated, i % 2 == 0, std::nullopt,
                               "a" + std::to_string(i)},
                kProd);
  }
  for (const Millis at : {seconds(0), seconds(95), seconds(150), seconds(290), seconds(400)}) {
    const Instant now = kT0 + at;
    PairState dropped = state;
    DropReleasedHolds(dropped, now);
    EXPECT_LT(dropped.holds.size(), state.holds.size()) << at.count();
    for (Millis later = Millis(0); later <= minutes(10); later += seconds(1)) {
      ASSERT_EQ(View(dropped, now + later, kProd), View(state, now + later, kProd))
          << at.count() << " + " << later.count();
    }
  }
}

}  // namespace
}  // namespace callgate
