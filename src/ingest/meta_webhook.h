// Parses a Meta Cloud API webhook payload (docs/rules.md §5) into domain events, one per
// call-permission-relevant item, still addressed by upstream ids: the business number's
// phone_number_id and the user's digits. Routing to channels and the callback rule (which needs
// the channel's settings) happen afterwards, in RouteWebhook. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/events.h"
#include "core/result.h"

namespace callgate {

struct WebhookItem {
  std::string phone_number_id;
  std::string user_digits;  // wa_id / from / to / recipient_id: digits without '+'
  Event event;
  bool user_initiated_call = false;  // may grant callback permission, by channel setting
};

struct CallbackSettingChange {
  std::string phone_number_id;
  bool enabled = false;
};

struct ParsedWebhook {
  std::vector<WebhookItem> items;
  std::vector<CallbackSettingChange> settings;
  int ignored = 0;       // entries, changes or items that say nothing about call permissions
  int invalid_time = 0;  // items with a timestamp out of range (kEarliestTime .. now + slack)
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
