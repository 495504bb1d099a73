// NotificationOutbox: the durable outbox of notifications (issue 13), the seam every backend that
// sends notifications implements beside PairStore.
//
// Writing: a backend calls the Notifier it was given with every pair change it commits — the
// state before and after, and the history entries the change appended — and stores the
// notifications it returns as outbox items *in the same commit* as the change (so a change is
// never told without having happened, nor lost once it has). An item's id is NotificationId of
// the pair and the notification; storing an id that is already there keeps the first (so
// re-derivations and retried facts add nothing). Time-driven items are stored with a future due
// time and sent then, if StillHolds.
//
// Delivering: ClaimDue leases due items to one owner for `lease`, at most one item per pair —
// the pair's first unsettled item in (due time, commit order) — so per-pair order holds across
// any number of delivering processes, and an item whose owner died is claimed again once its
// lease ends (at-least-once, same id). Settle ends an item (delivered, dropped) or puts it back
// with a retry time; an item a retry holds back also holds back its pair's later items.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/notifications.h"
#include "core/user_id.h"
#include "store/pair_store.h"

namespace callgate {

// What a store calls inside each pair commit. Both functions run on a store thread, must be quick
// and must not call the store.
struct Notifier {
  using Derive = std::function<std::vector<Notification>(
      const PairKey& key, const PairState& before, const PairState& after,
      const std::vector<HistoryEntry>& appended)>;
  using Filter = std::function<bool(const PairKey& key)>;

  Notifier() = default;  // none
  explicit Notifier(Derive derive, Filter may_notify = nullptr)
      : derive(std::move(derive)), may_notify(std::move(may_notify)) {}

  // What one committed pair change notifies. Called only for a pair `may_notify` allows.
  Derive derive;
  // False when no change of `key` notifies anything (its account has no target): a store then
  // skips `derive`, and what only `derive` needs, such as a copy of the state before the change.
  // Null: any pair may notify.
  Filter may_notify;

  explicit operator bool() const { return static_cast<bool>(derive); }
  bool MayNotify(const PairKey& key) const { return derive && (!may_notify || may_notify(key)); }
};

// The notifier a store's commits call, swapped while they run: a commit takes the current one
// (shared, so a swap never pulls it from under a running commit). Thread-safe.
class NotifierSlot {
 public:
  void Set(Notifier notifier) {
    auto shared = notifier ? std::make_shared<const Notifier>(std::move(notifier)) : nullptr;
    std::lock_guard lock(mu_);
    notifier_ = std::move(shared);
  }
  // Null when none is installed.
  std::shared_ptr<const Notifier> Get() const {
    std::lock_guard lock(mu_);
    return notifier_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Notifier> notifier_;
};

struct OutboxItem {
  std::string event_id;  // NotificationId(OutboxPairRef(pair), notification)
  PairKey pair;          // as the committing write named it after resolving links
  Notification notification;
  int attempts = 0;  // deliveries tried before this claim
};

enum class Settlement { kDelivered, kRetry, kDropped };

// The text an item's id is hashed from for `pair`: channel, newline, user id.
std::string OutboxPairRef(const PairKey& pair);
// The item a backend stores for `notification` of `pair`.
OutboxItem MakeOutboxItem(const PairKey& pair, Notification notification);
// The events of `appended` that are facts (not derived notices nor id changes): what a Notifier
// passes to DeriveNotifications.
std::vector<Event> AppliedFacts(const std::vector<HistoryEntry>& appended);

// How long settled items are kept (so that deriving one again finds it and adds nothing): the
// reorder horizon, past which no fact can re-derive it.
constexpr Millis kSettledRetention = kReorderHorizon;

class NotificationOutbox {
 public:
  virtual ~NotificationOutbox() = default;

  // Installs the notifier pair commits call from now on (none: nothing is recorded).
  virtual void SetNotifier(Notifier notifier) = 0;
  // Leases up to `limit` due items (due and retry time <= now, no live lease), each the first
  // unsettled item of its pair, to `owner` until now + lease.
  virtual StoreResult<std::vector<OutboxItem>> ClaimDue(Instant now, const std::string& owner,
                                                        Millis lease, int limit) = 0;
  // Ends (kDelivered, kDropped) or reschedules (kRetry, at `retry_at`, one more attempt) an
  // item `owner` holds; kNotFound if it no longer holds it (its lease ended and another took it).
  virtual StoreStatus Settle(const std::string& event_id, const std::string& owner,
                             Settlement settlement, Instant now, Instant retry_at) = 0;
  // Unsettled items (for tests and metrics).
  virtual StoreResult<std::int64_t> PendingCount() = 0;
};

}  // namespace callgate
