// Notifications (issue 13): what a sender is told about one pair, derived purely from the change
// of its ledger state — the state before and after a commit, the events the commit applied and
// `now`. Immediate ones (granted, revoked, reconsider_notice, limit.reached, a limit freed by a
// connected call, and anything late facts reveal) are due at `now`; time-driven ones (expiring,
// expired, limit.freed) are scheduled at their instant and checked again then (StillHolds),
// because a later fact may have made them false (a renewal, a revocation).
//
// Every notification carries an id that depends only on the pair and on what happened (type,
// instant, cause), so deriving it again — a retried webhook, a re-scheduled expiry, the
// late-fact path meeting the scheduled one — yields the same id, and the outbox keeps one.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/events.h"
#include "core/ledger.h"
#include "core/limits.h"
#include "core/time.h"

namespace callgate {

// The numbers are stored in the outbox: never renumber.
enum class NotificationType : int {
  kPermissionGranted = 0,
  kPermissionRevoked = 1,
  kPermissionExpired = 2,
  kPermissionExpiring = 3,
  kReconsiderNotice = 4,
  kLimitReached = 5,
  kLimitFreed = 6,
};
inline constexpr int kNotificationTypeCount = 7;

// How long before a temporary permission ends `permission.expiring` is due.
constexpr Millis kExpiringNotice = kHours24;

struct Notification {
  NotificationType type = NotificationType::kPermissionGranted;
  Instant occurred_at;  // when it happened (a late fact: its own time, in the past)
  Instant due_at;       // when to send it: `now` when derived, or the future instant
  // permission.granted: kTemporary or kPermanent.
  PermissionStatus granted = PermissionStatus::kNotGranted;
  // permission.granted: "reply", "callback" or "profile"; permission.revoked: "user" or
  // "automatic". Empty otherwise.
  std::string reason;
  int rule = -1;         // limit.*: the index in kLimitRules
  std::string cause_id;  // the upstream id of the fact behind it (a wamid, a wacid), if any

  friend bool operator==(const Notification&, const Notification&) = default;
};

// The notifications of one committed change of a pair: `applied` are the events the commit
// added (derived NoticeFinalized entries and id changes are ignored). Ordered as they are to be
// sent.
std::vector<Notification> DeriveNotifications(const PairState& before, const PairState& after,
                                              const std::vector<Event>& applied,
                                              LimitsProfile profile, Instant now);

// Whether a time-driven notification (expired, expiring, limit.freed) is still true of the pair
// whose state is `state` now; immediate ones always are.
bool StillHolds(const Notification& notification, const PairState& state, LimitsProfile profile);

// "permission.granted", …: the payload's `type`.
std::string_view NotificationTypeName(NotificationType type);

// Stable, unique per pair and fact: 32 hex digits hashed from `pair_ref` (any text naming the
// pair: channel and user id), the type, the instant and the cause. Not reversible in practice
// into anything but the pair the receiver is told of anyway.
std::string NotificationId(std::string_view pair_ref, const Notification& notification);

}  // namespace callgate
