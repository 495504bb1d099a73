// Destination validation (docs/rules.md §6): "+" then 2–15 digits, first digit 1–9, a known country
// calling code and a possible length per libphonenumber. A leading space is an unencoded "+".
// Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/user_id.h"

namespace callgate {

enum class DestinationError {
  kMissing,  // absent or empty
  kInvalid,  // not E.164, an unknown calling code or an impossible length
};

// The user a destination names (its E.164 form, "+digits"), or why it names none.
Result<UserId, DestinationError> NormalizeDestination(const std::optional<std::string>& raw);

// The possible-number test on E.164 digits (no '+') without libphonenumber's regex parser: what
// NormalizeDestination tries first. Exposed so tests can check it covers common numbers.
bool PossibleWithoutParse(std::string_view digits);

}  // namespace callgate
