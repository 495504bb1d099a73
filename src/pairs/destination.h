// Destination validation (docs/rules.md §6, §7): "+" then 2–15 digits, first digit 1–9, a known
// country calling code and a possible length per libphonenumber. A leading space is an unencoded
// "+". Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/user_id.h"

namespace callgate {

enum class DestinationError {
  kMissing,               // absent or empty (neither destination nor channelUserId)
  kInvalid,               // not E.164, an unknown calling code or an impossible length
  kInvalidChannelUserId,  // a channelUserId that is not a BSUID (core/user_id.h IsBsuid)
  kBothGiven,             // destination and channelUserId together
};

// The user a destination names (its E.164 form, "+digits"), or why it names none.
Result<UserId, DestinationError> NormalizeDestination(const std::optional<std::string>& raw);

// The user a request names: by `destination` (E.164) or by `channelUserId` (a BSUID), exactly
// one of the two (docs/rules.md §7).
Result<UserId, DestinationError> NormalizeUser(const std::optional<std::string>& destination,
                                               const std::optional<std::string>& channel_user_id);

// The possible-number test on E.164 digits (no '+') without libphonenumber's regex parser: what
// NormalizeDestination tries first. Exposed so tests can check it covers common numbers.
bool PossibleWithoutParse(std::string_view digits);

}  // namespace callgate
