#include "pairs/reserve.h"

#include "pairs/ids.h"

namespace callgate {

namespace {

Action ActionOf(ReservationKind kind) {
  switch (kind) {
    case ReservationKind::kPermissionRequest:
      return Action::kSendCallPermissionRequest;
    case ReservationKind::kCall:
      return Action::kStartCall;
  }
  return Action::kStartCall;
}

// When every reached limit of `action` has a slot again.
std::optional<Instant> SlotFrees(const StatusView& view, Action action) {
  std::optional<Instant> at;
  for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
    const auto& expiry = view.usage[i].limit_expiration;
    if (kLimitRules[i].action == action && expiry && (!at || *expiry > *at)) at = expiry;
  }
  return at;
}

bool OnLimit(Refusal refusal) {
  switch (refusal) {
    case Refusal::kRequestLimitReached:
    case Refusal::kCallLimitReached:
      return true;
    case Refusal::kPermanentPermissionExists:
    case Refusal::kNoLivePermission:
      return false;
  }
  return false;
}

}  // namespace

bool ValidIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > 255) return false;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

void Reserve(PairStore& store, ReservationRequest request,
             std::function<void(StoreResult<Reservation>)> done) {
  const bool is_call = request.kind == ReservationKind::kCall;
  // Idempotency records are kept by the store beside the pair, keyed per endpoint.
  std::string record_key = request.idempotency_key.empty()
                               ? std::string()
                               : (is_call ? "calls:" : "requests:") + request.idempotency_key;
  const std::string id = !is_call && !request.id.empty() ? request.id : NewUuid();
  const PairKey key = request.pair.key;
  auto mutate = [request = std::move(request), id, is_call](
                    PairState& state, std::vector<HistoryEntry>& history,
                    std::optional<IdempotencyRecord>& record) -> Mutated<Reservation> {
    const LimitsProfile limits = request.pair.limits;
    // A record older than the retention is forgotten, whether or not the store has purged it.
    if (record && request.now - record->at < kIdempotencyRetention) {
      const Instant at = CheckTime(state, request.now);
      return {{std::nullopt, record->result_id, true, at, View(state, at, limits)}, false};
    }
    Decision decision = is_call ? AuthorizeCall(state, id, request.now, request.call_hold, limits)
                                : ReserveRequest(state, id, request.now, limits);
    Reservation reservation{decision.refusal, {}, false, decision.at, decision.view};
    if (decision.refusal) {
      if (OnLimit(*decision.refusal)) {
        reservation.slot_frees = SlotFrees(decision.view, ActionOf(request.kind));
      }
      return {std::move(reservation), false};
    }
    reservation.id = id;
    if (!request.idempotency_key.empty()) record = IdempotencyRecord{decision.at, id};
    if (const auto& event = decision.recorded) {
      history.push_back({EventKey(*event), EventSource::kApi, *event});
      RecordFinalized(history, decision.finalized);
    }
    return {std::move(reservation), true};
  };
  UpdatePairIdempotent(store, key, std::move(record_key), std::move(mutate), std::move(done));
}

}  // namespace callgate
