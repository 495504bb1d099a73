#include "store/store.h"

#include <future>

namespace callgate {

std::string_view StoreErrorName(StoreError error) {
  switch (error) {
    case StoreError::kNotFound:
      return "not found";
    case StoreError::kAlreadyExists:
      return "already exists";
    case StoreError::kInvalid:
      return "invalid";
    case StoreError::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

std::string_view EventSourceName(EventSource source) {
  switch (source) {
    case EventSource::kWebhook:
      return "webhook";
    case EventSource::kApi:
      return "api";
    case EventSource::kAdmin:
      return "admin";
  }
  return "unknown";
}

ApplyOutcome ApplyAndRecord(PairState& state, std::vector<HistoryEntry>& history,
                            const Event& event, EventSource source, LimitsProfile profile) {
  const ApplyOutcome outcome = Apply(state, event, profile);
  if (outcome == ApplyOutcome::kApplied) history.push_back({EventKey(event), source, event});
  return outcome;
}

StoreStatus UpdatePairSync(Store& store, const PairKey& key, PairMutation mutation) {
  std::promise<StoreStatus> promise;
  auto future = promise.get_future();
  store.UpdatePair(key, std::move(mutation),
                   [&promise](StoreStatus status) { promise.set_value(status); });
  return future.get();
}

}  // namespace callgate
