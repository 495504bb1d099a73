#include "pairs/delivery.h"

#include <memory>
#include <mutex>

#include "ingest/route.h"
#include "pairs/destination.h"

namespace callgate {

namespace {

// Applies channel settings changes; the first store error, if any.
std::optional<StoreError> ApplySettings(const DeliveryStores& stores,
                                        const std::vector<CallbackSettingChange>& changes,
                                        DeliveryTally& tally) {
  for (const CallbackSettingChange& change : changes) {
    const Channel* channel =
        stores.tenants.Current()->FindChannelByPhoneNumberId(change.phone_number_id);
    if (!channel) {
      ++tally.unknown_channel;
      continue;
    }
    if (channel->callback_permission_enabled == change.enabled) continue;
    if (auto status = stores.tenant_store.SetCallbackPermission(channel->id, change.enabled);
        !status.ok()) {
      return status.error();
    }
    ++tally.settings;  // the directory sees the change on its next Current()
  }
  return std::nullopt;
}

struct PairCounts {
  int applied = 0, duplicate = 0, too_late = 0;
};

// The pair writes of one delivery, answered when the last one is done.
struct Pending {
  std::mutex mu;
  DeliveryTally tally;
  std::optional<StoreError> failed;
  int remaining = 0;
  std::function<void(StoreResult<DeliveryTally>)> done;

  void Finish(const StoreResult<PairCounts>& counts) {
    std::unique_lock lock(mu);
    if (counts.ok()) {
      tally.applied += counts->applied;
      tally.duplicate += counts->duplicate;
      tally.too_late += counts->too_late;
    } else if (!failed) {
      failed = counts.error();
    }
    if (--remaining > 0) return;
    lock.unlock();
    if (failed) return done(*failed);
    done(tally);
  }
};

}  // namespace

void ApplyDelivery(const DeliveryStores& stores, ParsedWebhook delivery,
                   std::function<void(StoreResult<DeliveryTally>)> done) {
  DeliveryTally tally;
  tally.ignored_by = delivery.ignored_by;
  tally.rotations = delivery.rotations;
  tally.invalid_time = delivery.invalid_time;
  if (auto error = ApplySettings(stores, delivery.settings, tally)) return done(*error);

  RoutedWebhook routed =
      RouteWebhook(delivery, *stores.tenants.Current(), [](const std::string& number) {
        auto user = NormalizeDestination(number);
        return user ? std::optional(std::move(*user)) : std::nullopt;
      });
  tally.unknown_channel += routed.unknown_channel;
  tally.invalid_user += routed.invalid_user;
  tally.linked = static_cast<int>(routed.links.size());
  if (routed.pairs.empty() && routed.links.empty()) return done(tally);

  // Links and pair updates go to the store together: each is atomic against the others, and a
  // pair's events land on the user's one pair whichever commits first (PairStore::LinkUser).
  auto pending = std::make_shared<Pending>();
  pending->tally = tally;
  pending->remaining = static_cast<int>(routed.pairs.size() + routed.links.size());
  pending->done = std::move(done);
  for (const LinkedIds& link : routed.links) {
    stores.pairs.LinkUser({link.channel_id, link.ids}, [pending](StoreStatus status) {
      if (status.ok()) return pending->Finish(PairCounts{});
      pending->Finish(status.error());
    });
  }
  for (auto& [key, pair] : routed.pairs) {
    auto mutate = [events = std::move(pair.events), limits = pair.limits](
                      PairState& state, std::vector<HistoryEntry>& history) -> Mutated<PairCounts> {
      PairCounts counts;
      bool recorded = false;
      for (const Event& event : events) {
        // A rotation changes no state: it is only recorded (once: the history keeps one entry
        // per event key), and counted as a rotation.
        if (std::holds_alternative<UserIdChanged>(event)) {
          history.push_back({EventKey(event), EventSource::kWebhook, event});
          recorded = true;
          continue;
        }
        switch (ApplyAndRecord(state, history, event, EventSource::kWebhook, limits)) {
          case ApplyOutcome::kApplied:
            ++counts.applied;
            break;
          case ApplyOutcome::kDuplicate:
            ++counts.duplicate;
            break;
          case ApplyOutcome::kTooLate:
            ++counts.too_late;
            break;
        }
      }
      return {counts, counts.applied > 0 || recorded};
    };
    UpdatePair(stores.pairs, key, std::move(mutate),
               std::function<void(StoreResult<PairCounts>)>(
                   [pending](StoreResult<PairCounts> counts) { pending->Finish(counts); }));
  }
}

}  // namespace callgate
