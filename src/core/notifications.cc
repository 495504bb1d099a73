#include "core/notifications.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <type_traits>
#include <utility>

namespace callgate {

namespace {

constexpr Millis kJustBefore{1};

Notification Make(NotificationType type, Instant occurred_at, Instant due_at) {
  Notification n;
  n.type = type;
  n.occurred_at = occurred_at;
  n.due_at = due_at;
  return n;
}

// An accept is a profile grant when nothing we reserved asked for it: permanent, with no
// request through callgate in the week before (upstream's reply carries no such flag, and the
// ledger keeps no request context).
bool FromProfile(const PairState& state, const PermissionReplied& reply) {
  if (!reply.permanent) return false;
  return std::none_of(state.requests.begin(), state.requests.end(), [&](const auto& request) {
    return request.second <= reply.at && request.second > reply.at - kTemporaryPermissionLifetime;
  });
}

// The grant or revocation an applied reply or callback made at its own instant, if it changed
// the permission there (a temporary accept under a permanent permission changes nothing).
std::optional<Notification> PermissionChange(const PairState& after, const Event& event,
                                             LimitsProfile profile, Instant now) {
  Instant at;
  std::string reason;
  std::string cause;
  bool accepted = false;
  if (const auto* reply = std::get_if<PermissionReplied>(&event)) {
    at = reply->at;
    accepted = reply->accepted;
    cause = reply->message_id;
    reason = accepted ? (FromProfile(after, *reply) ? "profile" : "reply") : "user";
  } else if (const auto* callback = std::get_if<CallbackGranted>(&event)) {
    at = callback->at;
    accepted = true;
    cause = callback->call_id;
    reason = "callback";
  } else {
    return std::nullopt;
  }
  const Permission then = View(after, at, profile).permission;
  const Permission before = View(after, at - kJustBefore, profile).permission;
  if (then == before) return std::nullopt;
  Notification n;
  if (accepted) {
    if (then.status == PermissionStatus::kNotGranted) return std::nullopt;
    n = Make(NotificationType::kPermissionGranted, at, now);
    n.granted = then.status;
  } else {
    if (before.status == PermissionStatus::kNotGranted ||
        then.status != PermissionStatus::kNotGranted) {
      return std::nullopt;  // a refusal of a request: nothing was revoked
    }
    n = Make(NotificationType::kPermissionRevoked, at, now);
  }
  n.reason = std::move(reason);
  n.cause_id = std::move(cause);
  return n;
}

// Notices (reconsider, auto-revocation, expiry) that `after` gives and `before` did not.
std::vector<Notice> NewNotices(const PairState& before, const PairState& after,
                               LimitsProfile profile, Instant now) {
  std::vector<Notice> old = Notices(before, now, profile);
  std::vector<Notice> fresh;
  for (const Notice& notice : Notices(after, now, profile)) {
    if (const auto it = std::find(old.begin(), old.end(), notice); it != old.end()) {
      old.erase(it);
    } else {
      fresh.push_back(notice);
    }
  }
  return fresh;
}

// What limit changes are told at: the newest applied fact that is not in the future (its time and
// id); `now` and no id if there is none.
std::pair<Instant, std::string> NewestApplied(const std::vector<Event>& applied, Instant now) {
  const Event* newest = nullptr;
  for (const Event& event : applied) {
    const Instant t = EventTime(event);
    if (t <= now && (!newest || t > EventTime(*newest))) newest = &event;
  }
  if (!newest) return {now, ""};
  return {EventTime(*newest), EventId(*newest)};
}

std::uint64_t Fnv1a(std::uint64_t hash, std::string_view text) {
  for (const unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace

std::vector<Notification> DeriveNotifications(const PairState& before, const PairState& after,
                                              const std::vector<Event>& applied,
                                              LimitsProfile profile, Instant now) {
  std::vector<Notification> out;
  for (const Event& event : applied) {
    if (auto change = PermissionChange(after, event, profile, now)) out.push_back(*change);
  }
  for (const Notice& notice : NewNotices(before, after, profile, now)) {
    switch (notice.kind) {
      case NoticeKind::kReconsiderShown: {
        Notification n = Make(NotificationType::kReconsiderNotice, notice.at, now);
        n.cause_id = notice.cause_id;
        out.push_back(std::move(n));
        break;
      }
      case NoticeKind::kAutoRevoked: {
        Notification n = Make(NotificationType::kPermissionRevoked, notice.at, now);
        n.reason = "automatic";
        n.cause_id = notice.cause_id;
        out.push_back(std::move(n));
        break;
      }
      case NoticeKind::kExpired:  // learnt late: the expiry is already past
        out.push_back(Make(NotificationType::kPermissionExpired, notice.at, now));
        break;
    }
  }
  // A temporary permission that is new (or changed) now: its end, and the warning before it.
  const StatusView was = View(before, now, profile);
  const StatusView is = View(after, now, profile);
  if (is.permission != was.permission && is.permission.status == PermissionStatus::kTemporary &&
      is.permission.expires_at) {
    const Instant end = *is.permission.expires_at;
    if (end - kExpiringNotice > now) {
      out.push_back(Make(NotificationType::kPermissionExpiring, end - kExpiringNotice,
                         end - kExpiringNotice));
    }
    out.push_back(Make(NotificationType::kPermissionExpired, end, end));
  }
  const auto [changed_at, changed_by] = NewestApplied(applied, now);
  for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
    const bool was_reached = was.usage[i].current_usage >= was.usage[i].max_allowed;
    const bool is_reached = is.usage[i].current_usage >= is.usage[i].max_allowed;
    if (is_reached && !was_reached) {
      Notification reached = Make(NotificationType::kLimitReached, changed_at, now);
      reached.rule = static_cast<int>(i);
      out.push_back(reached);
    }
    if (is_reached && is.usage[i].limit_expiration &&
        is.usage[i].limit_expiration != was.usage[i].limit_expiration) {
      const Instant frees = *is.usage[i].limit_expiration;
      Notification freed = Make(NotificationType::kLimitFreed, frees, std::max(frees, now));
      freed.rule = static_cast<int>(i);
      out.push_back(freed);
    }
    if (was_reached && !is_reached) {  // e.g. a connected call emptied the request windows
      Notification freed = Make(NotificationType::kLimitFreed, changed_at, now);
      freed.rule = static_cast<int>(i);
      freed.cause_id = changed_by;  // told at once: not one of the scheduled ones (StillHolds)
      out.push_back(freed);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Notification& a, const Notification& b) {
    return a.due_at < b.due_at;
  });
  return out;
}

bool StillHolds(const Notification& n, const PairState& state, LimitsProfile profile) {
  switch (n.type) {
    case NotificationType::kPermissionGranted:
    case NotificationType::kPermissionRevoked:
    case NotificationType::kReconsiderNotice:
    case NotificationType::kLimitReached:
      return true;
    case NotificationType::kPermissionExpired: {
      const Permission before = View(state, n.occurred_at - kJustBefore, profile).permission;
      return before.status == PermissionStatus::kTemporary && before.expires_at == n.occurred_at &&
             View(state, n.occurred_at, profile).permission.status == PermissionStatus::kNotGranted;
    }
    case NotificationType::kPermissionExpiring: {
      const Permission then = View(state, n.occurred_at, profile).permission;
      return then.status == PermissionStatus::kTemporary &&
             then.expires_at == n.occurred_at + kExpiringNotice;
    }
    case NotificationType::kLimitFreed: {
      // Freed by a fact (a connected call), told when learnt: it happened. A scheduled one (no
      // cause: the window's end) holds only if the limit is still reached until that instant.
      if (!n.cause_id.empty()) return true;
      if (n.rule < 0 || n.rule >= static_cast<int>(kLimitRules.size())) return false;
      const LimitUsage before = View(state, n.occurred_at - kJustBefore, profile).usage[n.rule];
      const LimitUsage then = View(state, n.occurred_at, profile).usage[n.rule];
      return before.current_usage >= before.max_allowed && then.current_usage < then.max_allowed;
    }
  }
  return false;
}

std::string_view NotificationTypeName(NotificationType type) {
  switch (type) {
    case NotificationType::kPermissionGranted:
      return "permission.granted";
    case NotificationType::kPermissionRevoked:
      return "permission.revoked";
    case NotificationType::kPermissionExpired:
      return "permission.expired";
    case NotificationType::kPermissionExpiring:
      return "permission.expiring";
    case NotificationType::kReconsiderNotice:
      return "reconsider_notice";
    case NotificationType::kLimitReached:
      return "limit.reached";
    case NotificationType::kLimitFreed:
      return "limit.freed";
  }
  return "unknown";
}

std::string NotificationId(std::string_view pair_ref, const Notification& n) {
  // Two FNV-1a passes with different offsets: 128 bits, stable across builds and platforms.
  std::string text(pair_ref);
  text += '\n';
  text += NotificationTypeName(n.type);
  text += '\n' + std::to_string(ToUnixMillis(n.occurred_at)) + '\n' + n.cause_id + '\n' +
          std::to_string(n.rule);
  const std::uint64_t a = Fnv1a(0xcbf29ce484222325ULL, text);
  const std::uint64_t b = Fnv1a(0x84222325cbf29ce4ULL, text + "\x01");
  char out[33];
  std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return out;
}

}  // namespace callgate
