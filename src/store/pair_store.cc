#include "store/pair_store.h"

namespace callgate {

std::string_view EventSourceName(EventSource source) {
  switch (source) {
    case EventSource::kWebhook:
      return "webhook";
    case EventSource::kApi:
      return "api";
  }
  return "unknown";
}

ApplyOutcome ApplyAndRecord(PairState& state, std::vector<HistoryEntry>& history,
                            const Event& event, EventSource source, LimitsProfile profile) {
  const ApplyOutcome outcome = Apply(state, event, profile);
  if (outcome == ApplyOutcome::kApplied) history.push_back({EventKey(event), source, event});
  return outcome;
}

StoreStatus UpdatePairSync(PairStore& store, const PairKey& key, PairMutation mutation) {
  std::promise<StoreStatus> promise;
  auto future = promise.get_future();
  store.Update(key, std::move(mutation),
               [&promise](StoreStatus status) { promise.set_value(status); });
  return future.get();
}

}  // namespace callgate
