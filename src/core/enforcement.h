// Enforcement: the checks the service makes before a business sends a call permission request
// or places a call, applied to a pair's state in the same atomic step that records the
// reservation — so concurrent senders can never exceed a limit (docs/rules.md §3–4, §6).
// Pure functions; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/ledger.h"

namespace callgate {

enum class Refusal {
  kPermanentPermissionExists,  // upstream 138017
  kRequestLimitReached,        // upstream 138009
  kNoLivePermission,
  kCallLimitReached,
};

// The instant a check on `state` runs at: `now`, but never before the newest fact recorded.
// Reservations reach a pair one at a time, not necessarily in clock order (threads, processes
// sharing a store): a check at an instant before a recorded fact would not count that fact.
Instant CheckTime(const PairState& state, Instant now);

// What a check decided, for the caller to answer and record without redoing any of it.
struct Decision {
  std::optional<Refusal> refusal;
  Instant at;                     // CheckTime: the instant the check ran at
  std::optional<Event> recorded;  // the event applied to the state, if a new one was
  std::vector<Notice> finalized;  // notices the recording finalized (Compact), for the history
  StatusView view;                // the pair at `at`, after the decision
};

// Records a permission request `request_id` sent at CheckTime(now) unless refused. A request id
// already recorded is a retry: allowed, and it takes no second slot.
[[nodiscard]] Decision ReserveRequest(PairState& state, const std::string& request_id, Instant now,
                                      LimitsProfile profile);

// Holds one start_call slot for `authorization_id` from CheckTime(now) for `hold` unless refused.
// First drops the holds released by `now` (DropReleasedHolds), so a busy pair's state stays small.
[[nodiscard]] Decision AuthorizeCall(PairState& state, const std::string& authorization_id,
                                     Instant now, Millis hold, LimitsProfile profile);

}  // namespace callgate
