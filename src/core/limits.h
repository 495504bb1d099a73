// The limits table: every number of docs/rules.md §3 lives here and nowhere else.
// Pure constants; thread-safe.
#pragma once

#include <array>
#include <string_view>

#include "core/time.h"

namespace callgate {

enum class LimitsProfile { kProduction, kSandbox };

enum class Action { kSendCallPermissionRequest, kStartCall };

struct LimitRule {
  Action action;
  Millis period;
  std::string_view iso_period;  // as the API spells the window
  int production;
  int sandbox;

  constexpr int MaxAllowed(LimitsProfile profile) const {
    switch (profile) {
      case LimitsProfile::kProduction:
        return production;
      case LimitsProfile::kSandbox:
        return sandbox;
    }
    return production;
  }
};

inline constexpr std::array<LimitRule, 3> kLimitRules{{
    {Action::kSendCallPermissionRequest, kHours24, "PT24H", 1, 25},
    {Action::kSendCallPermissionRequest, kDays7, "P7D", 2, 100},
    {Action::kStartCall, kHours24, "PT24H", 100, 100},
}};

// Consecutive unanswered-or-rejected business-initiated calls (docs/rules.md §2).
struct UnansweredThresholds {
  int reconsider_notice;
  int auto_revoke;
};

constexpr UnansweredThresholds Thresholds(LimitsProfile profile) {
  switch (profile) {
    case LimitsProfile::kProduction:
      return {2, 4};
    case LimitsProfile::kSandbox:
      return {5, 10};
  }
  return {2, 4};
}

// A temporary permission without an explicit expiry lasts this long from approval.
constexpr Millis kTemporaryPermissionLifetime = kDays7;

std::string_view ActionName(Action action);
std::string_view ProfileName(LimitsProfile profile);

}  // namespace callgate
