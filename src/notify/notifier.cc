#include "notify/notifier.h"

namespace callgate {

Notifier MakeNotifier(TenantDirectory& tenants, Clock clock) {
  return Notifier(
      [&tenants, clock = std::move(clock)](
          const PairKey& key, const PairState& before, const PairState& after,
          const std::vector<HistoryEntry>& appended) -> std::vector<Notification> {
        const std::shared_ptr<const TenantSnapshot> snapshot = tenants.Current();
        const Channel* channel = snapshot->FindChannel(key.channel_id);
        if (!channel || !snapshot->FindNotifyTarget(key.channel_id)) return {};
        return DeriveNotifications(before, after, AppliedFacts(appended), channel->limits, clock());
      },
      [&tenants](const PairKey& key) {
        return tenants.Current()->FindNotifyTarget(key.channel_id) != nullptr;
      });
}

}  // namespace callgate
