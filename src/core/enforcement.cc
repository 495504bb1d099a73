#include "core/enforcement.h"

#include <algorithm>

namespace callgate {

Instant CheckTime(const PairState& state, Instant now) {
  return std::max(now, NewestFact(state).value_or(now));
}

std::optional<Refusal> ReserveRequest(PairState& state, const std::string& request_id, Instant now,
                                      LimitsProfile profile) {
  if (state.requests.contains(request_id)) return std::nullopt;
  now = CheckTime(state, now);
  const StatusView view = View(state, now, profile);
  if (view.permission.status == PermissionStatus::kPermanent) {
    return Refusal::kPermanentPermissionExists;
  }
  if (view.LimitReached(Action::kSendCallPermissionRequest)) return Refusal::kRequestLimitReached;
  (void)Apply(state, PermissionRequested{request_id, now}, profile);
  return std::nullopt;
}

std::optional<Refusal> AuthorizeCall(PairState& state, const std::string& authorization_id,
                                     Instant now, Millis hold, LimitsProfile profile) {
  if (state.holds.contains(authorization_id)) return std::nullopt;
  now = CheckTime(state, now);
  const StatusView view = View(state, now, profile);
  if (view.permission.status == PermissionStatus::kNotGranted) return Refusal::kNoLivePermission;
  if (view.LimitReached(Action::kStartCall)) return Refusal::kCallLimitReached;
  (void)Apply(state, CallAuthorized{authorization_id, now, now + hold}, profile);
  return std::nullopt;
}

}  // namespace callgate
