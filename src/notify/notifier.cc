#include "notify/notifier.h"

namespace callgate {

Notifier MakeNotifier(TenantDirectory& tenants, Clock clock) {
  return Notifier(
      [&tenants, clock = std::move(clock)](
          const PairKey& key, const PairState& before, const PairState& after,
          const std::vector<HistoryEntry>& appended) -> std::vector<Notification> {
        // Only for a pair whose account has a target: the store asked may_notify first.
        const Channel* channel = tenants.Current()->FindChannel(key.channel_id);
        if (!channel) return {};
        return DeriveNotifications(before, after, AppliedFacts(appended), channel->limits, clock());
      },
      [&tenants](const PairKey& key) {
        return tenants.Current()->FindNotifyTarget(key.channel_id) != nullptr;
      });
}

}  // namespace callgate
