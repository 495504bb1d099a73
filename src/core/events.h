// The events that change one pair's permission ledger (docs/rules.md §2–5), in domain terms.
// Upstream ids (wamid, wacid) and our own ids (request ids) make every event idempotent.
// Plain values; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <variant>

#include "core/time.h"

namespace callgate {

enum class ReplySource { kUserAction, kAutomatic };
enum class CallDirection { kBusinessInitiated, kUserInitiated };

// A call permission request was sent (reserved through the service).
struct PermissionRequested {
  std::string request_id;
  Instant at;
};

// The user's (or the platform's automatic) reply. A reject without a request context is also
// how a revocation from the business profile arrives; an accept without one is a profile grant.
struct PermissionReplied {
  std::string message_id;  // wamid of the reply
  Instant at;
  bool accepted = false;
  bool permanent = false;             // on accept
  std::optional<Instant> expires_at;  // on temporary accept, if upstream names it
  ReplySource source = ReplySource::kUserAction;
};

struct CallConnected {
  std::string call_id;  // wacid
  Instant at;
  CallDirection direction = CallDirection::kBusinessInitiated;
  std::string authorization_id;  // biz_opaque_callback_data, if the business passed one
};

struct CallTerminated {
  std::string call_id;
  Instant at;
  CallDirection direction = CallDirection::kBusinessInitiated;
  bool picked_up = false;             // upstream sent start_time or duration
  std::optional<Instant> started_at;  // when it was picked up, if known
  std::string authorization_id;
};

// Call status REJECTED: counts as unanswered, once per call id.
struct CallRejected {
  std::string call_id;
  Instant at;
  std::string authorization_id;
};

// A user-initiated call (answered or missed) on a channel with callback permission enabled.
struct CallbackGranted {
  std::string call_id;
  Instant at;
};

// The service authorised one business-initiated call: it holds a provisional start_call slot
// until a webhook of the call names this id (biz_opaque_callback_data) or `expires_at` passes.
struct CallAuthorized {
  std::string authorization_id;
  Instant at;
  Instant expires_at;
};

// The user's BSUID rotated (docs/rules.md §7): recorded in the pair's history, keyed by the new
// BSUID; it changes no state (the link to the new id is the store's, PairStore::LinkUser).
struct UserIdChanged {
  std::string user_id;  // the new BSUID
  Instant at;
  std::string previous;  // the BSUID it replaces
};

// What the ledger derives rather than receives (docs/rules.md §2): the reconsider notice after
// consecutive unanswered calls, auto-revocation, expiry of a temporary permission.
enum class NoticeKind { kReconsiderShown, kAutoRevoked, kExpired };

struct Notice {
  NoticeKind kind;
  Instant at;
  std::string cause_id;  // the call that triggered it (empty for an expiry)

  friend bool operator==(const Notice&, const Notice&) = default;
};

// A notice made final by compaction: the facts it was derived from were folded into the
// pair's baseline, so it can no longer be derived from them. It is recorded in the pair's
// history like an event (it changes no state), so the history still shows it.
struct NoticeFinalized {
  std::string id;  // unique per pair: kind, time and cause (see Finalized)
  Instant at;
  NoticeKind kind = NoticeKind::kExpired;
  std::string cause_id;
};

NoticeFinalized Finalized(const Notice& notice);
Notice NoticeOf(const NoticeFinalized& finalized);

using Event =
    std::variant<PermissionRequested, PermissionReplied, CallConnected, CallTerminated,
                 CallRejected, CallbackGranted, CallAuthorized, NoticeFinalized, UserIdChanged>;

std::string_view NoticeName(NoticeKind kind);

// Stable names, for history and logs (a finalized notice: its NoticeName).
std::string_view EventKind(const Event& event);
// The id the event is known by upstream (wamid, wacid) or here (request / authorisation id).
const std::string& EventId(const Event& event);
// Unique per pair and per fact: the history's de-duplication key.
std::string EventKey(const Event& event);

Instant EventTime(const Event& event);

}  // namespace callgate
