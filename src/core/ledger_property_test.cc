// Property tests for the ledger's promise under at-least-once, unordered delivery (docs/rules.md
// §5): the same events in any order, with any duplicates, give the same state, view and notices;
// and compaction behind the reorder horizon changes no view while upstream keeps to its 7-day retry
// bound. Random histories come from a seeded std::mt19937, so every failure replays.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/events.h"
#include "core/ledger.h"
#include "core/limits.h"
#include "core/test_time.h"
#include "core/time.h"

namespace callgate {
namespace {

using namespace test_time;  // NOLINT(google-build-using-namespace): kT0 and the time units
constexpr Millis kMs{1};
constexpr int kIterations = 300;

std::string Text(std::optional<Instant> t) { return t ? FormatMillis(*t) : "(none)"; }

// StatusView has no operator==: compare every field, naming the field that differs.
void ExpectSameView(const StatusView& want, const StatusView& got) {
  EXPECT_EQ(StatusName(got.permission.status), StatusName(want.permission.status));
  EXPECT_EQ(Text(got.permission.expires_at), Text(want.permission.expires_at));
  for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
    SCOPED_TRACE(testing::Message()
                 << ActionName(kLimitRules[i].action) << " " << kLimitRules[i].iso_period);
    EXPECT_EQ(got.usage[i].max_allowed, want.usage[i].max_allowed);
    EXPECT_EQ(got.usage[i].current_usage, want.usage[i].current_usage);
    EXPECT_EQ(Text(got.usage[i].limit_expiration), Text(want.usage[i].limit_expiration));
  }
  for (const Action action : {Action::kSendCallPermissionRequest, Action::kStartCall}) {
    EXPECT_EQ(got.CanPerform(action), want.CanPerform(action)) << ActionName(action);
  }
}

std::string Describe(const std::vector<Notice>& notices) {
  std::string out;
  for (const Notice& notice : notices) {
    out += std::string(NoticeName(notice.kind)) + "@" + FormatMillis(notice.at) + "(" +
           notice.cause_id + ") ";
  }
  return out;
}

// What a random history looks like.
struct HistoryShape {
  Millis span;       // facts start in [start, start + span)
  Millis max_call;   // each call's facts lie within this of each other
  int max_requests;  // requests sometimes burst into a single day
  int max_calls;
  int unanswered_percent;  // business-initiated calls that ring out or are rejected
};

HistoryShape ShapeFor(LimitsProfile profile, Millis span, Millis max_call) {
  switch (profile) {
    case LimitsProfile::kProduction:
      return {span, max_call, 8, 20, 45};
    case LimitsProfile::kSandbox:  // enough to reach 25 requests a day and 10 unanswered calls
      return {span, max_call, 40, 40, 80};
  }
  return {span, max_call, 8, 20, 45};
}

// Builds random histories of one pair. Times fall on a coarse grid half the time so that
// different facts often share an instant and the fold's tie order is exercised.
class HistoryGenerator {
 public:
  explicit HistoryGenerator(std::uint32_t seed) : rng_(seed) {}

  std::mt19937& rng() { return rng_; }

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::int64_t Uniform64(std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng_);
  }
  bool Chance(int percent) { return Uniform(0, 99) < percent; }
  Millis UpTo(Millis max) { return Millis(Uniform64(0, max.count())); }

  Instant TimeIn(Instant start, Millis span) {
    if (Chance(50)) {
      const auto slots = std::chrono::duration_cast<hours>(span).count();
      return start + hours(Uniform64(0, slots > 0 ? slots - 1 : 0));
    }
    return start + UpTo(span - kMs);
  }

  std::vector<Event> History(Instant start, const HistoryShape& shape) {
    std::vector<Event> events;
    const bool burst = Chance(50);
    const Instant burst_day = TimeIn(start, shape.span - kHours24);
    const int requests = Uniform(0, shape.max_requests);
    for (int i = 0; i < requests; ++i) {
      const Instant at = burst ? TimeIn(burst_day, kHours24) : TimeIn(start, shape.span);
      events.push_back(PermissionRequested{"r" + std::to_string(i), at});
    }
    const int replies = Uniform(0, 6);
    for (int i = 0; i < replies; ++i) {
      events.push_back(Reply("m" + std::to_string(i), start, shape.span));
    }
    const int calls = Uniform(0, shape.max_calls);
    for (int i = 0; i < calls; ++i) AddCall("c" + std::to_string(i), start, shape, events);
    return events;
  }

 private:
  PermissionReplied Reply(std::string id, Instant start, Millis span) {
    PermissionReplied reply;
    reply.message_id = std::move(id);
    reply.at = TimeIn(start, span);
    reply.source = Chance(20) ? ReplySource::kAutomatic : ReplySource::kUserAction;
    switch (Uniform(0, 3)) {
      case 0:
        break;  // reject
      case 1:
        reply.accepted = true;
        reply.permanent = true;
        break;
      case 2:
        reply.accepted = true;
        break;  // temporary for 7 days
      case 3:
        reply.accepted = true;
        reply.expires_at = reply.at + UpTo(hours(24 * 9)) - hours(12);  // sometimes already past
        break;
    }
    return reply;
  }

  void AddCall(const std::string& id, Instant start, const HistoryShape& shape,
               std::vector<Event>& events) {
    constexpr auto kBusiness = CallDirection::kBusinessInitiated;
    constexpr auto kUser = CallDirection::kUserInitiated;
    const Instant at = TimeIn(start, shape.span);
    const Instant end = at + (Chance(20) ? Millis(0) : UpTo(shape.max_call - seconds(5)));
    if (Chance(shape.unanswered_percent)) {
      if (Chance(65)) {  // business-initiated, rang out
        events.push_back(CallTerminated{id, end, kBusiness, false, std::nullopt});
      } else {  // business-initiated, REJECTED, maybe then terminated
        events.push_back(CallRejected{id, at});
        if (Chance(60)) events.push_back(CallTerminated{id, end, kBusiness, false, std::nullopt});
      }
    } else if (Chance(55)) {  // business-initiated, picked up
      const int shape = Uniform(0, 3);
      if (shape != 1) events.push_back(CallConnected{id, at, kBusiness});
      if (shape == 1 || shape == 2) events.push_back(CallTerminated{id, end, kBusiness, true, at});
      if (shape == 3) events.push_back(CallTerminated{id, end, kBusiness, true, std::nullopt});
    } else {  // user-initiated, answered or missed, maybe a callback grant
      if (Chance(50)) {
        if (Chance(70)) events.push_back(CallConnected{id, at, kUser});
        events.push_back(CallTerminated{id, end, kUser, true, at});
      } else {
        events.push_back(CallTerminated{id, end, kUser, false, std::nullopt});
      }
      if (Chance(70)) {
        events.push_back(CallbackGranted{id, at});
        if (Chance(60)) {
          PermissionReplied automatic;
          automatic.message_id = "auto-" + id;
          automatic.at = at + (Chance(50) ? Millis(0) : UpTo(seconds(5)));
          automatic.accepted = true;
          if (Chance(50)) automatic.expires_at = at + kTemporaryPermissionLifetime;
          automatic.source = ReplySource::kAutomatic;
          events.push_back(automatic);
        }
      }
    }
  }

  std::mt19937 rng_;
};

Instant Newest(const std::vector<Event>& events) {
  Instant newest = Instant::min();
  for (const Event& event : events) newest = std::max(newest, EventTime(event));
  return newest;
}

void ExpectSameAt(const PairState& want, const PairState& got, Instant now, LimitsProfile profile) {
  SCOPED_TRACE(testing::Message() << "now " << FormatMillis(now));
  ExpectSameView(View(want, now, profile), View(got, now, profile));
  EXPECT_EQ(Describe(Notices(got, now, profile)), Describe(Notices(want, now, profile)));
}

// Applies the events in event-time order, once each, and then as a shuffled delivery with
// duplicates; both must agree on the state, and on the view and notices at every `now`.
void CheckOrderFree(LimitsProfile profile, std::uint32_t seed) {
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  HistoryGenerator gen(seed);
  // Starts within 6 days and calls last under an hour: all facts stay within 7 days.
  const std::vector<Event> events = gen.History(kT0, ShapeFor(profile, hours(24 * 6), hours(1)));

  std::vector<std::size_t> by_time(events.size());
  for (std::size_t i = 0; i < by_time.size(); ++i) by_time[i] = i;
  std::stable_sort(by_time.begin(), by_time.end(), [&](std::size_t a, std::size_t b) {
    return EventTime(events[a]) < EventTime(events[b]);
  });
  PairState in_order;
  for (const std::size_t i : by_time) {
    ASSERT_EQ(Apply(in_order, events[i], profile), ApplyOutcome::kApplied) << "event " << i;
  }

  std::vector<std::size_t> delivery;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const int copies = gen.Chance(40) ? gen.Uniform(2, 3) : 1;
    for (int c = 0; c < copies; ++c) delivery.push_back(i);
  }
  std::shuffle(delivery.begin(), delivery.end(), gen.rng());
  PairState shuffled;
  std::vector<bool> seen(events.size(), false);
  for (const std::size_t i : delivery) {
    const ApplyOutcome want = seen[i] ? ApplyOutcome::kDuplicate : ApplyOutcome::kApplied;
    ASSERT_EQ(Apply(shuffled, events[i], profile), want) << "event " << i;
    seen[i] = true;
  }

  EXPECT_TRUE(shuffled == in_order);
  const Instant last = events.empty() ? kT0 : Newest(events);
  std::vector<Instant> nows = {
      kT0 - kMs, kT0, last, last + kMs, last + hours(24), last + kDays7, last + hours(24 * 9)};
  for (int i = 0; i < 6; ++i) nows.push_back(gen.TimeIn(kT0, hours(24 * 7)));
  for (const Instant now : nows) {
    ExpectSameAt(in_order, shuffled, now, profile);
    if (testing::Test::HasFailure()) return;
  }
}

TEST(LedgerPropertyTest, AnyDeliveryOrderWithDuplicatesMatchesEventTimeOrder) {
  for (std::uint32_t seed = 1; seed <= kIterations; ++seed) {
    CheckOrderFree(LimitsProfile::kProduction, seed);
    if (HasFailure()) return;
  }
}

TEST(LedgerPropertyTest, SandboxAnyDeliveryOrderWithDuplicatesMatchesEventTimeOrder) {
  for (std::uint32_t seed = 1; seed <= kIterations; ++seed) {
    CheckOrderFree(LimitsProfile::kSandbox, seed);
    if (HasFailure()) return;
  }
}

// Compaction forgets the notices behind the horizon; those at or after it must agree.
void ExpectSameHeldNotices(const PairState& full, const PairState& compacted, Instant now,
                           LimitsProfile profile) {
  std::vector<Notice> want = Notices(full, now, profile);
  std::vector<Notice> got = Notices(compacted, now, profile);
  if (compacted.base.horizon) {
    const Instant horizon = *compacted.base.horizon;
    std::erase_if(want, [&](const Notice& n) { return n.at < horizon; });
    std::erase_if(got, [&](const Notice& n) { return n.at < horizon; });
  }
  EXPECT_EQ(Describe(got), Describe(want));
}

// Every notice the whole history gives is either one compaction finalized (and the history
// recorded) or one the compacted ledger still derives: none lost, none twice.
void ExpectNoNoticeLost(const PairState& full, const PairState& compacted,
                        const std::vector<Notice>& finalized, Instant now, LimitsProfile profile) {
  auto sorted = [](std::vector<Notice> notices) {
    std::sort(notices.begin(), notices.end(), [](const Notice& a, const Notice& b) {
      return std::tie(a.at, a.kind, a.cause_id) < std::tie(b.at, b.kind, b.cause_id);
    });
    return notices;
  };
  std::vector<Notice> got = finalized;
  for (const Notice& notice : Notices(compacted, now, profile)) got.push_back(notice);
  EXPECT_EQ(Describe(sorted(got)), Describe(sorted(Notices(full, now, profile))));
}

// A month of history delivered as upstream does: each copy of an event arrives within 7 days of
// its time (mostly at once), in arrival order. After every arrival the compacted ledger must view
// exactly like the whole history of what has arrived, folded without compaction.
void CheckCompactionInvisible(LimitsProfile profile, std::uint32_t seed) {
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  HistoryGenerator gen(seed);
  // Calls up to 12 hours long often straddle a compaction cut. The delivery model keeps all of
  // a call's facts arriving before its first fact falls behind the horizon: 7-day retries plus
  // calls shorter than the horizon's 1-day margin.
  const std::vector<Event> events = gen.History(kT0, ShapeFor(profile, hours(24 * 30), hours(12)));

  struct Delivery {
    Instant arrival;
    std::size_t event;
  };
  std::vector<Delivery> deliveries;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const int copies = gen.Chance(30) ? gen.Uniform(2, 3) : 1;
    for (int c = 0; c < copies; ++c) {
      const Millis delay = gen.Chance(70) ? gen.UpTo(minutes(5)) : gen.UpTo(kDays7 - kMs);
      deliveries.push_back({EventTime(events[i]) + delay, i});
    }
  }
  std::shuffle(deliveries.begin(), deliveries.end(), gen.rng());
  std::stable_sort(deliveries.begin(), deliveries.end(),
                   [](const Delivery& a, const Delivery& b) { return a.arrival < b.arrival; });

  PairState compacted;
  PairState full;
  std::vector<Notice> finalized;
  std::vector<bool> seen(events.size(), false);
  for (const Delivery& d : deliveries) {
    const ApplyOutcome want = seen[d.event] ? ApplyOutcome::kDuplicate : ApplyOutcome::kApplied;
    ASSERT_EQ(Apply(compacted, events[d.event], profile, &finalized), want) << "event " << d.event;
    if (!seen[d.event]) {
      ASSERT_EQ(Merge(full, events[d.event]), ApplyOutcome::kApplied);
    }
    seen[d.event] = true;
    SCOPED_TRACE(testing::Message() << "arrival " << FormatMillis(d.arrival));
    ExpectSameView(View(full, d.arrival, profile), View(compacted, d.arrival, profile));
    ExpectSameHeldNotices(full, compacted, d.arrival, profile);
    ExpectNoNoticeLost(full, compacted, finalized, d.arrival, profile);
    if (testing::Test::HasFailure()) return;
  }

  // Afterwards, views later on still agree, and so do the notices the compacted ledger still
  // holds (those at or after its horizon).
  const Instant last = deliveries.empty() ? kT0 : deliveries.back().arrival;
  for (const Instant now : {last, last + hours(24), last + kDays7, last + hours(24 * 30)}) {
    SCOPED_TRACE(testing::Message() << "now " << FormatMillis(now));
    ExpectSameView(View(full, now, profile), View(compacted, now, profile));
    ExpectSameHeldNotices(full, compacted, now, profile);
    ExpectNoNoticeLost(full, compacted, finalized, now, profile);
    if (testing::Test::HasFailure()) return;
  }
}

TEST(LedgerPropertyTest, CompactionWithinTheRetryBoundChangesNoView) {
  for (std::uint32_t seed = 1; seed <= kIterations; ++seed) {
    CheckCompactionInvisible(LimitsProfile::kProduction, seed);
    if (HasFailure()) return;
  }
}

TEST(LedgerPropertyTest, SandboxCompactionWithinTheRetryBoundChangesNoView) {
  for (std::uint32_t seed = 1; seed <= kIterations; ++seed) {
    CheckCompactionInvisible(LimitsProfile::kSandbox, seed);
    if (HasFailure()) return;
  }
}

// A scripted month: permanent grant, calls, a revocation, a fresh temporary grant, a callback,
// requests. Applied in order with compaction and folded without it, the views agree.
TEST(LedgerPropertyTest, CompactedMonthViewsLikeItsFullHistory) {
  constexpr auto kBusiness = CallDirection::kBusinessInitiated;
  auto day = [](int d) { return kT0 + hours(24 * d); };
  const std::vector<Event> events = {
      PermissionRequested{"r1", day(0)},
      PermissionReplied{"m1", day(0) + hours(1), true, true, std::nullopt,
                        ReplySource::kUserAction},
      CallConnected{"c1", day(1), kBusiness},
      CallTerminated{"c1", day(1) + minutes(4), kBusiness, true, day(1)},
      CallTerminated{"c2", day(2), kBusiness, false, std::nullopt},
      CallRejected{"c3", day(3)},
      CallTerminated{"c3", day(3) + seconds(1), kBusiness, false, std::nullopt},
      PermissionReplied{"m2", day(10), false, false, std::nullopt, ReplySource::kUserAction},
      PermissionRequested{"r2", day(12)},
      PermissionReplied{"m3", day(12) + hours(2), true, false, std::nullopt,
                        ReplySource::kUserAction},
      CallTerminated{"c4", day(13), kBusiness, false, std::nullopt},
      CallRejected{"c5", day(14)},
      CallConnected{"c6", day(15), CallDirection::kUserInitiated},
      PermissionRequested{"r3", day(16)},
      CallbackGranted{"c7", day(20)},
      CallTerminated{"c7", day(20) + seconds(20), CallDirection::kUserInitiated, false,
                     std::nullopt},
      CallTerminated{"c8", day(22), kBusiness, false, std::nullopt},
      CallTerminated{"c9", day(23), kBusiness, false, std::nullopt},
      CallConnected{"c10", day(25), kBusiness},
      PermissionRequested{"r4", day(29)},
  };
  const LimitsProfile profile = LimitsProfile::kProduction;
  PairState compacted;
  PairState full;
  std::vector<Notice> finalized;
  for (const Event& event : events) {
    ASSERT_EQ(Apply(compacted, event, profile, &finalized), ApplyOutcome::kApplied);
    ASSERT_EQ(Merge(full, event), ApplyOutcome::kApplied);
  }
  ASSERT_TRUE(compacted.base.horizon.has_value());
  ASSERT_LT(compacted.replies.size() + compacted.calls.size() + compacted.requests.size(),
            events.size() / 2);
  // Compaction finalized the early notices (the reconsider notice after c2 and c3); none is lost.
  EXPECT_FALSE(finalized.empty());
  for (Instant now = day(29); now <= day(40); now += hours(6)) {
    SCOPED_TRACE(testing::Message() << "now " << FormatMillis(now));
    ExpectSameView(View(full, now, profile), View(compacted, now, profile));
    ExpectNoNoticeLost(full, compacted, finalized, now, profile);
  }
}

}  // namespace
}  // namespace callgate
