// MemoryStore: tenants and pairs in process memory, behind one mutex. For tests and tools that
// want the store contracts without a file; nothing survives the process. Thread-safe; Update
// runs the mutation and the callback inline.
#pragma once

#include <map>
#include <mutex>

#include "store/outbox.h"
#include "store/pair_store.h"
#include "tenants/tenant_store.h"

namespace callgate {

class MemoryStore final : public TenantStore, public PairStore, public NotificationOutbox {
 public:
  StoreStatus CreateAccount(const Account& account) override;
  StoreStatus CreateSubaccount(const Subaccount& subaccount) override;
  StoreStatus CreateChannel(const Channel& channel) override;
  StoreStatus SetCallbackPermission(const std::string& channel_id, bool enabled) override;
  StoreStatus AddApiKey(const ApiKey& key) override;
  StoreStatus RevokeApiKey(const std::string& key_id, Instant at) override;
  StoreStatus SetNotifyTarget(const std::string& account_id,
                              const std::optional<NotifyTarget>& target) override;
  StoreResult<std::uint64_t> TenantGeneration() override;
  std::uint64_t TenantChanges() override;
  StoreResult<TenantSnapshot> LoadTenants() override;

  StoreStatus ProbeWrite() override { return Ok{}; }
  StoreResult<PairState> LoadPair(const PairKey& key) override;
  void UpdateIdempotent(const PairKey& key, std::string idempotency_key,
                        IdempotentMutation mutation, UpdateDone done) override;
  StoreResult<std::vector<HistoryEntry>> LoadHistory(const PairKey& key, std::int64_t before_seq,
                                                     int limit) override;
  StoreResult<std::vector<HistoryEntry>> LoadHistoryUntil(const PairKey& key, Instant until,
                                                          int count) override;
  void LinkUser(UserLink link, UpdateDone done) override;
  NotificationOutbox* outbox() override { return this; }

  // The outbox (store/outbox.h): the notifier runs under the store's lock, in the update.
  void SetNotifier(Notifier notifier) override;
  StoreResult<std::vector<OutboxItem>> ClaimDue(Instant now, const std::string& owner, Millis lease,
                                                int limit) override;
  StoreStatus Settle(const std::string& event_id, const std::string& owner, Settlement settlement,
                     Instant now, Instant retry_at) override;
  StoreResult<std::int64_t> PendingCount() override;

 private:
  struct OutboxRow {
    OutboxItem item;
    std::int64_t seq = 0;  // commit order
    bool settled = false;
    Instant retry_at;
    std::string owner;
    Instant lease_until;
  };
  // The link scope of a channel: its account, or the channel itself if unknown ("#" + id).
  std::string ScopeLocked(const std::string& channel_id) const;
  // The key of the pair `key` names: its user's canonical id (links_).
  PairKey ResolveLocked(const PairKey& key) const;
  struct Pair {
    PairState state;
    std::map<std::int64_t, HistoryEntry> history;      // by seq
    std::map<std::string, IdempotencyRecord> records;  // by idempotency key, never expired
  };

  // Recursive: the notifier runs inside an update, under this lock, and reads tenants (through a
  // TenantDirectory) from this same store.
  std::recursive_mutex mu_;
  TenantSnapshot tenants_;
  std::uint64_t generation_ = 0;
  std::map<PairKey, Pair> pairs_;                                     // by canonical user id only
  std::map<std::pair<std::string, std::string>, std::string> links_;  // (scope, id) -> canonical
  std::int64_t next_seq_ = 1;
  Notifier notifier_;
  std::map<std::string, OutboxRow> outbox_;  // by event id
};

}  // namespace callgate
