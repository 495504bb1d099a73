// One pair's permission ledger: the state kept per (channel, destination), the function that
// applies an event to it, and the function that views it at a given `now` (docs/rules.md §1–4).
//
// The state is a grow-only set of facts keyed by upstream ids, merged field by field with
// order-free operations (min of times, logical or), so applying the same events in any order,
// with duplicates, yields the same state. Everything that depends on order — the permission,
// the consecutive-unanswered count, notices — is derived by folding the facts in event-time
// order. Facts older than the reorder horizon behind the newest fact are folded into a baseline
// and dropped, which bounds the state; a fact arriving older than that is refused as too late
// (upstream retries for at most 7 days, the horizon is longer).
//
// Pure values and functions; thread-compatible.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/events.h"
#include "core/limits.h"
#include "core/time.h"

namespace callgate {

constexpr Millis kReorderHorizon = std::chrono::hours(24 * 8);

enum class PermissionStatus { kNotGranted, kTemporary, kPermanent };

struct Permission {
  PermissionStatus status = PermissionStatus::kNotGranted;
  std::optional<Instant> expires_at;  // only for kTemporary

  friend bool operator==(const Permission&, const Permission&) = default;
};

struct ReplyFact {
  Instant at;
  bool accepted = false;
  bool permanent = false;
  std::optional<Instant> expires_at;
  ReplySource source = ReplySource::kUserAction;

  friend bool operator==(const ReplyFact&, const ReplyFact&) = default;
};

// Everything learnt about one call, merged from its connect, terminate, status and callback
// events in whatever order they arrived.
struct CallFacts {
  CallDirection direction = CallDirection::kBusinessInitiated;
  std::optional<Instant> connected_at;   // earliest connect event
  std::optional<Instant> started_at;     // earliest start_time seen on a terminate
  std::optional<Instant> terminated_at;  // earliest terminate event
  std::optional<Instant> rejected_at;    // earliest REJECTED status
  std::optional<Instant> callback_at;    // earliest callback grant
  bool picked_up = false;                // a terminate said the call was picked up
  std::string authorization_id;          // the authorisation it used (smallest, if several)

  bool Answered() const { return connected_at || picked_up; }
  // When the call connected (only meaningful if Answered()).
  Instant ConnectTime() const;
  // When a business-initiated call is known to be unanswered, if it is.
  std::optional<Instant> UnansweredAt() const;
  // The earliest time of any fact about the call: its place against the reorder horizon.
  Instant FirstSeen() const;

  friend bool operator==(const CallFacts&, const CallFacts&) = default;
};

// What the facts folded away by compaction left behind.
struct Baseline {
  Permission permission;
  int consecutive_unanswered = 0;
  std::optional<Instant> horizon;  // facts before this were folded in; later ones are refused

  friend bool operator==(const Baseline&, const Baseline&) = default;
};

// A call authorisation's provisional start_call slot (see CallAuthorized).
struct Hold {
  Instant at;
  Instant expires_at;

  friend bool operator==(const Hold&, const Hold&) = default;
};

struct PairState {
  Baseline base;
  std::map<std::string, Instant> requests;   // request id -> sent at
  std::map<std::string, ReplyFact> replies;  // wamid -> reply
  std::map<std::string, CallFacts> calls;    // wacid -> facts
  // Authorisation id -> hold: the live ones, and the released ones (expired, or their call
  // reported back) until an authorisation drops them (DropReleasedHolds).
  std::map<std::string, Hold> holds;

  friend bool operator==(const PairState&, const PairState&) = default;
};

enum class ApplyOutcome {
  kApplied,    // the state changed
  kDuplicate,  // already known: nothing changed
  kTooLate,    // older than the reorder horizon: refused, nothing changed
};

// Merges `event` into `state` without compaction: the whole-history fold (for history views).
[[nodiscard]] ApplyOutcome Merge(PairState& state, const Event& event);

// Folds facts that fell behind the reorder horizon into the baseline and drops them. The notices
// those facts gave rise to can no longer be derived: they are appended to `finalized`, if given,
// for the history to record (NoticeFinalized).
void Compact(PairState& state, LimitsProfile profile, std::vector<Notice>* finalized = nullptr);

// Drops the holds released by `now`: expired, or named by a call (which then counts in its
// place). They count for nothing at `now` or later, so this changes no view from `now` on; it
// keeps a busy pair's state to its live holds rather than every authorisation of 8 days.
void DropReleasedHolds(PairState& state, Instant now);

// The time of the newest fact the state holds, if any.
std::optional<Instant> NewestFact(const PairState& state);

// Merge, then Compact: what every writer uses.
[[nodiscard]] ApplyOutcome Apply(PairState& state, const Event& event, LimitsProfile profile,
                                 std::vector<Notice>* finalized = nullptr);

struct LimitUsage {
  int max_allowed = 0;
  int current_usage = 0;
  std::optional<Instant> limit_expiration;  // only when current_usage >= max_allowed

  friend bool operator==(const LimitUsage&, const LimitUsage&) = default;
};

// The state as the status endpoint shows it at `now`. `usage[i]` belongs to kLimitRules[i].
struct StatusView {
  Permission permission;
  std::array<LimitUsage, kLimitRules.size()> usage;

  bool LimitReached(Action action) const;
  bool CanPerform(Action action) const;

  friend bool operator==(const StatusView&, const StatusView&) = default;
};

[[nodiscard]] StatusView View(const PairState& state, Instant now, LimitsProfile profile);

// The derived entries of the pair's history up to `now` that its facts still give (those of
// facts folded away were finalized by Compact), oldest first.
[[nodiscard]] std::vector<Notice> Notices(const PairState& state, Instant now,
                                          LimitsProfile profile);

std::string_view StatusName(PermissionStatus status);

}  // namespace callgate
