#include "store/pair_store.h"

namespace callgate {

std::string_view EventSourceName(EventSource source) {
  switch (source) {
    case EventSource::kWebhook:
      return "webhook";
    case EventSource::kApi:
      return "api";
    case EventSource::kDerived:
      return "derived";
  }
  return "unknown";
}

void RecordFinalized(std::vector<HistoryEntry>& history, const std::vector<Notice>& finalized) {
  for (const Notice& notice : finalized) {
    Event event = Finalized(notice);
    std::string key = EventKey(event);
    history.push_back({std::move(key), EventSource::kDerived, std::move(event)});
  }
}

ApplyOutcome ApplyAndRecord(PairState& state, std::vector<HistoryEntry>& history,
                            const Event& event, EventSource source, LimitsProfile profile) {
  std::vector<Notice> finalized;
  const ApplyOutcome outcome = Apply(state, event, profile, &finalized);
  if (outcome == ApplyOutcome::kApplied) {
    history.push_back({EventKey(event), source, event});
    RecordFinalized(history, finalized);
  }
  return outcome;
}

void PairStore::Update(const PairKey& key, PairMutation mutation, UpdateDone done) {
  UpdateIdempotent(
      key, std::string(),
      [mutation = std::move(mutation)](PairState& state, std::vector<HistoryEntry>& history,
                                       std::optional<IdempotencyRecord>&) {
        return mutation(state, history);
      },
      std::move(done));
}

StoreStatus UpdatePairSync(PairStore& store, const PairKey& key, PairMutation mutation) {
  std::promise<StoreStatus> promise;
  auto future = promise.get_future();
  store.Update(key, std::move(mutation),
               [&promise](StoreStatus status) { promise.set_value(status); });
  return future.get();
}

}  // namespace callgate
