// Parses a Meta Cloud API webhook payload (docs/rules.md §5) into domain events, one per
// call-permission-relevant item, still addressed by upstream ids: the business number's
// phone_number_id and the user's ids (phone digits and/or BSUIDs, docs/rules.md §7). Routing to
// channels and the callback rule (which needs the channel's settings) happen afterwards, in
// RouteWebhook. Pure; thread-safe.
//
// Tolerant of every documented shape (docs/rules.md §5): a call permission reply is recognised by
// `interactive.type` alone (Meta's own samples have no message-level `type`), `is_permanent`
// absent means temporary, times may be strings or numbers. What is not applied is counted by
// reason (IgnoreReason), never silently dropped.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "core/events.h"
#include "core/result.h"

namespace callgate {

// The ids an upstream item names its user by; any of them may be empty.
struct UpstreamUser {
  std::string phone_digits;  // wa_id / from / to / recipient_id: digits without '+'
  std::string bsuid;         // from_user_id / to_user_id / recipient_user_id / user_id
  std::string parent_bsuid;  // the *_parent_user_id twin

  bool empty() const { return phone_digits.empty() && bsuid.empty() && parent_bsuid.empty(); }
  friend bool operator==(const UpstreamUser&, const UpstreamUser&) = default;
};

struct WebhookItem {
  std::string phone_number_id;
  UpstreamUser user;
  Event event;
  bool user_initiated_call = false;  // may grant callback permission, by channel setting
};

// Ids a delivery showed naming one user: an item's or a contact's (phone number with BSUIDs), or
// a BSUID rotation's (user_id_update, the user_changed_user_id system message: the previous and
// the current BSUID). They are linked (docs/rules.md §7).
struct UserIdsSeen {
  std::string phone_number_id;
  UpstreamUser user;
  std::string previous_bsuid;         // a rotation's
  std::string previous_parent_bsuid;  // a rotation's
  Instant at{};                       // a rotation's time
};

struct CallbackSettingChange {
  std::string phone_number_id;
  bool enabled = false;
};

// Why a part of a delivery was not applied. The numbers index arrays: append only.
enum class IgnoreReason : std::uint8_t {
  kNotBusinessAccount,      // `object` is not whatsapp_business_account
  kNoValue,                 // a change without a `value` object
  kOtherField,              // a change of a field that says nothing about calls (e.g. templates)
  kNotPermissionReply,      // a message that is not a call permission reply
  kUnknownResponse,         // a reply whose response is neither accept nor reject
  kMissingMessageId,        // a reply without the message's id
  kMissingCallId,           // a call without its id
  kOtherCallEvent,          // a call event other than connect / terminate
  kNotCallRejection,        // a status that is not a call's REJECTED (ringing, accepted, ...)
  kMissingStatusId,         // a call status without the call's id
  kMissingPhoneNumberId,    // an item without the business number's phone_number_id
  kMissingUser,             // an item naming no user (neither phone number nor BSUID)
  kSettingsWithoutCalling,  // a settings update without callback_permission_status
};
inline constexpr std::size_t kIgnoreReasonCount =
    static_cast<std::size_t>(IgnoreReason::kSettingsWithoutCalling) + 1;
// The reason's name in the webhook's 200 body and the log ("otherField", ...).
std::string_view IgnoreReasonName(IgnoreReason reason);

struct ParsedWebhook {
  std::vector<WebhookItem> items;
  std::vector<CallbackSettingChange> settings;
  std::vector<UserIdsSeen> links;  // each with two ids or more
  int ignored = 0;  // entries, changes or items that say nothing about call permissions: the sum
  std::array<int, kIgnoreReasonCount> ignored_by{};  // ... by reason
  int invalid_time = 0;  // items with a timestamp out of range (kEarliestTime .. now + slack)
  int rotations = 0;     // BSUID rotations (user_id_update, user_changed_user_id)

  void Ignore(IgnoreReason reason) {
    ++ignored;
    ++ignored_by[static_cast<std::size_t>(reason)];
  }
};

enum class WebhookError { kMalformedJson, kNotAnObject };

// Sane times. An item whose timestamp is before kEarliestTime, or later than `now` by more than
// kEventTimeSlack (an event) or kExpirySlack (a temporary permission's expiration), is invalid:
// counted, never applied, never wrapped around.
inline constexpr Instant kEarliestTime{std::chrono::seconds(1'577'836'800)};  // 2020-01-01
inline constexpr Millis kEventTimeSlack = std::chrono::hours(24);
inline constexpr Millis kExpirySlack = std::chrono::hours(24 * 8);

// Event times up to kEventTimeSlack in the future are clamped to `now`; missing ones read as
// `now`.
[[nodiscard]] Result<ParsedWebhook, WebhookError> ParseMetaWebhook(std::string_view body,
                                                                   Instant now);

}  // namespace callgate
