#include "store/outbox.h"

#include <utility>

namespace callgate {

std::string OutboxPairRef(const PairKey& pair) { return pair.channel_id + '\n' + pair.user.text(); }

OutboxItem MakeOutboxItem(const PairKey& pair, Notification notification) {
  std::string id = NotificationId(OutboxPairRef(pair), notification);
  return {std::move(id), pair, std::move(notification)};
}

std::vector<Event> AppliedFacts(const std::vector<HistoryEntry>& appended) {
  std::vector<Event> facts;
  for (const HistoryEntry& entry : appended) {
    if (entry.source == EventSource::kDerived) continue;
    if (std::holds_alternative<NoticeFinalized>(entry.event) ||
        std::holds_alternative<UserIdChanged>(entry.event)) {
      continue;
    }
    facts.push_back(entry.event);
  }
  return facts;
}

}  // namespace callgate
