#include "core/enforcement.h"

#include <algorithm>

namespace callgate {

Instant CheckTime(const PairState& state, Instant now) {
  return std::max(now, NewestFact(state).value_or(now));
}

namespace {

// The shared shape of every check: view the pair at the check time, refuse or record `event`,
// and view it again only if something was recorded.
template <class Refuse>
Decision Decide(PairState& state, bool already_recorded, Instant now, LimitsProfile profile,
                Refuse&& refuse, auto&& make_event) {
  Decision decision;
  decision.at = CheckTime(state, now);
  decision.view = View(state, decision.at, profile);
  if (already_recorded) return decision;
  decision.refusal = refuse(decision.view);
  if (decision.refusal) return decision;
  Event event = make_event(decision.at);
  (void)Apply(state, event, profile, &decision.finalized);
  decision.recorded = std::move(event);
  decision.view = View(state, decision.at, profile);
  return decision;
}

}  // namespace

Decision ReserveRequest(PairState& state, const std::string& request_id, Instant now,
                        LimitsProfile profile) {
  return Decide(
      state, state.requests.contains(request_id), now, profile,
      [](const StatusView& view) -> std::optional<Refusal> {
        if (view.permission.status == PermissionStatus::kPermanent) {
          return Refusal::kPermanentPermissionExists;
        }
        if (view.LimitReached(Action::kSendCallPermissionRequest)) {
          return Refusal::kRequestLimitReached;
        }
        return std::nullopt;
      },
      [&](Instant at) {
        return Event(PermissionRequested{request_id, at});
      });
}

Decision AuthorizeCall(PairState& state, const std::string& authorization_id, Instant now,
                       Millis hold, LimitsProfile profile) {
  DropReleasedHolds(state, now);
  return Decide(
      state, state.holds.contains(authorization_id), now, profile,
      [](const StatusView& view) -> std::optional<Refusal> {
        if (view.permission.status == PermissionStatus::kNotGranted) {
          return Refusal::kNoLivePermission;
        }
        if (view.LimitReached(Action::kStartCall)) return Refusal::kCallLimitReached;
        return std::nullopt;
      },
      [&](Instant at) {
        return Event(CallAuthorized{authorization_id, at, at + hold});
      });
}

}  // namespace callgate
