#include "store/pair_store.h"

#include <algorithm>
#include <map>

namespace callgate {

FoldedPair FoldHistories(std::vector<HistoryEntry> entries, LimitsProfile profile) {
  // One entry per event key, the earliest version (then the lowest seq), derived ones dropped.
  std::map<std::string, HistoryEntry> by_key;
  for (HistoryEntry& entry : entries) {
    if (entry.source == EventSource::kDerived) continue;
    auto [it, inserted] = by_key.try_emplace(entry.event_key, entry);
    if (inserted) continue;
    const Instant t = EventTime(entry.event), kept = EventTime(it->second.event);
    if (t < kept || (t == kept && entry.seq < it->second.seq)) it->second = std::move(entry);
  }
  std::vector<HistoryEntry> facts;
  facts.reserve(by_key.size());
  for (auto& [key, entry] : by_key) facts.push_back(std::move(entry));
  std::stable_sort(facts.begin(), facts.end(), [](const HistoryEntry& a, const HistoryEntry& b) {
    return EventTime(a.event) < EventTime(b.event);
  });
  FoldedPair folded;
  std::vector<Notice> finalized;
  for (HistoryEntry& entry : facts) {
    (void)Apply(folded.state, entry.event, profile, &finalized);
    folded.history.push_back(std::move(entry));
  }
  RecordFinalized(folded.history, finalized);
  return folded;
}

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

void PairStore::LoadPairsAsync(std::vector<PairKey> keys, PairsLoaded done) {
  std::vector<StoreResult<PairState>> states;
  states.reserve(keys.size());
  for (const PairKey& key : keys) states.push_back(LoadPair(key));
  done(std::move(states));
}

StoreStatus UpdatePairSync(PairStore& store, const PairKey& key, PairMutation mutation) {
  std::promise<StoreStatus> promise;
  auto future = promise.get_future();
  store.Update(key, std::move(mutation),
               [&promise](StoreStatus status) { promise.set_value(status); });
  return future.get();
}

std::vector<HistoryEntry> CutHistoryUntil(std::vector<HistoryEntry> out, Instant until, int count) {
  std::erase_if(out, [&](const HistoryEntry& e) { return EventTime(e.event) > until; });
  std::sort(out.begin(), out.end(), [](const HistoryEntry& a, const HistoryEntry& b) {
    return EventTime(a.event) > EventTime(b.event);
  });
  // Keep `count`, and every entry at the time of the last one kept.
  std::size_t keep = std::min(out.size(), static_cast<std::size_t>(std::max(count, 0)));
  while (keep > 0 && keep < out.size() &&
         EventTime(out[keep].event) == EventTime(out[keep - 1].event)) {
    ++keep;
  }
  out.resize(keep);
  return out;
}

}  // namespace callgate
