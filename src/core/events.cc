#include "core/events.h"

namespace callgate {

Instant EventTime(const Event& event) {
  return std::visit([](const auto& e) { return e.at; }, event);
}

namespace {

struct Describe {
  std::string_view operator()(const PermissionRequested&) const {
    return "permission_request_sent";
  }
  std::string_view operator()(const PermissionReplied& e) const {
    return e.accepted ? "permission_reply_accept" : "permission_reply_reject";
  }
  std::string_view operator()(const CallConnected&) const { return "call_connect"; }
  std::string_view operator()(const CallTerminated&) const { return "call_terminate"; }
  std::string_view operator()(const CallRejected&) const { return "call_rejected"; }
  std::string_view operator()(const CallbackGranted&) const { return "callback_grant"; }
  std::string_view operator()(const CallAuthorized&) const { return "call_authorized"; }
  std::string_view operator()(const NoticeFinalized& e) const { return NoticeName(e.kind); }
  std::string_view operator()(const UserIdChanged&) const { return "user_id_changed"; }
};

struct Id {
  const std::string& operator()(const PermissionRequested& e) const { return e.request_id; }
  const std::string& operator()(const PermissionReplied& e) const { return e.message_id; }
  const std::string& operator()(const CallConnected& e) const { return e.call_id; }
  const std::string& operator()(const CallTerminated& e) const { return e.call_id; }
  const std::string& operator()(const CallRejected& e) const { return e.call_id; }
  const std::string& operator()(const CallbackGranted& e) const { return e.call_id; }
  const std::string& operator()(const CallAuthorized& e) const { return e.authorization_id; }
  const std::string& operator()(const NoticeFinalized& e) const { return e.id; }
  const std::string& operator()(const UserIdChanged& e) const { return e.user_id; }
};

}  // namespace

std::string_view NoticeName(NoticeKind kind) {
  switch (kind) {
    case NoticeKind::kReconsiderShown:
      return "reconsider_notice_shown";
    case NoticeKind::kAutoRevoked:
      return "auto_revoked";
    case NoticeKind::kExpired:
      return "expired";
  }
  return "unknown";
}

NoticeFinalized Finalized(const Notice& notice) {
  return {std::string(NoticeName(notice.kind)) + "@" + std::to_string(ToUnixMillis(notice.at)) +
              "/" + notice.cause_id,
          notice.at, notice.kind, notice.cause_id};
}

Notice NoticeOf(const NoticeFinalized& finalized) {
  return {finalized.kind, finalized.at, finalized.cause_id};
}

std::string_view EventKind(const Event& event) { return std::visit(Describe{}, event); }

const std::string& EventId(const Event& event) { return std::visit(Id{}, event); }

// Short prefixes: the key is stored with every history entry.
std::string EventKey(const Event& event) {
  static constexpr std::string_view kPrefix[] = {
      "req:",      "reply:", "connect:", "terminate:", "rejected:",
      "callback:", "auth:",  "notice:",  "user:"};
  static_assert(std::size(kPrefix) == std::variant_size_v<Event>);
  return std::string(kPrefix[event.index()]) + EventId(event);
}

}  // namespace callgate
