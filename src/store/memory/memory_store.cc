#include "store/memory/memory_store.h"

#include <algorithm>
#include <functional>
#include <set>

namespace callgate {

StoreStatus MemoryStore::CreateAccount(const Account& account) {
  std::lock_guard lock(mu_);
  if (!tenants_.accounts.emplace(account.id, account).second) return StoreError::kAlreadyExists;
  ++generation_;
  return Ok{};
}

StoreStatus MemoryStore::CreateSubaccount(const Subaccount& subaccount) {
  std::lock_guard lock(mu_);
  if (!tenants_.accounts.contains(subaccount.account_id)) return StoreError::kNotFound;
  if (!tenants_.subaccounts.emplace(subaccount.id, subaccount).second) {
    return StoreError::kAlreadyExists;
  }
  ++generation_;
  return Ok{};
}

StoreStatus MemoryStore::CreateChannel(const Channel& channel) {
  std::lock_guard lock(mu_);
  if (!tenants_.subaccounts.contains(channel.subaccount_id)) return StoreError::kNotFound;
  if (tenants_.channels.contains(channel.id) ||
      tenants_.channel_by_phone_number_id.contains(channel.phone_number_id)) {
    return StoreError::kAlreadyExists;
  }
  tenants_.channels.emplace(channel.id, channel);
  tenants_.channel_by_phone_number_id.emplace(channel.phone_number_id, channel.id);
  ++generation_;
  return Ok{};
}

StoreStatus MemoryStore::SetCallbackPermission(const std::string& channel_id, bool enabled) {
  std::lock_guard lock(mu_);
  const auto it = tenants_.channels.find(channel_id);
  if (it == tenants_.channels.end()) return StoreError::kNotFound;
  it->second.callback_permission_enabled = enabled;
  ++generation_;
  return Ok{};
}

StoreStatus MemoryStore::AddApiKey(const ApiKey& key) {
  std::lock_guard lock(mu_);
  if (!tenants_.accounts.contains(key.account_id)) return StoreError::kNotFound;
  if (!tenants_.api_keys.emplace(key.key_id, key).second) return StoreError::kAlreadyExists;
  ++generation_;
  return Ok{};
}

StoreStatus MemoryStore::RevokeApiKey(const std::string& key_id, Instant at) {
  std::lock_guard lock(mu_);
  const auto it = tenants_.api_keys.find(key_id);
  if (it == tenants_.api_keys.end()) return StoreError::kNotFound;
  if (!it->second.revoked_at) it->second.revoked_at = at;
  ++generation_;
  return Ok{};
}

StoreStatus MemoryStore::SetNotifyTarget(const std::string& account_id,
                                         const std::optional<NotifyTarget>& target) {
  std::lock_guard lock(mu_);
  if (!tenants_.accounts.contains(account_id)) return StoreError::kNotFound;
  if (target) {
    tenants_.notify_targets[account_id] = *target;
  } else {
    tenants_.notify_targets.erase(account_id);
  }
  ++generation_;
  return Ok{};
}

StoreResult<std::uint64_t> MemoryStore::TenantGeneration() {
  std::lock_guard lock(mu_);
  return generation_;
}

std::uint64_t MemoryStore::TenantChanges() {
  std::lock_guard lock(mu_);
  return generation_;
}

StoreResult<TenantSnapshot> MemoryStore::LoadTenants() {
  std::lock_guard lock(mu_);
  return tenants_;
}

std::string MemoryStore::ScopeLocked(const std::string& channel_id) const {
  if (const Channel* channel = tenants_.FindChannel(channel_id)) {
    if (const Subaccount* sub = tenants_.FindSubaccount(channel->subaccount_id)) {
      return sub->account_id;
    }
  }
  return "#" + channel_id;
}

PairKey MemoryStore::ResolveLocked(const PairKey& key) const {
  const auto it = links_.find({ScopeLocked(key.channel_id), key.user.text()});
  if (it == links_.end()) return key;
  return {key.channel_id, UserId::FromText(it->second)};
}

StoreResult<PairState> MemoryStore::LoadPair(const PairKey& key) {
  std::lock_guard lock(mu_);
  const auto it = pairs_.find(ResolveLocked(key));
  return it == pairs_.end() ? PairState{} : it->second.state;
}

void MemoryStore::UpdateIdempotent(const PairKey& key, std::string idempotency_key,
                                   IdempotentMutation mutation, UpdateDone done) {
  StoreStatus status = Ok{};
  {
    std::lock_guard lock(mu_);
    Pair& pair = pairs_[ResolveLocked(key)];
    PairState next = pair.state;
    std::vector<HistoryEntry> history;
    std::optional<IdempotencyRecord> found;
    if (const auto it = pair.records.find(idempotency_key);
        !idempotency_key.empty() && it != pair.records.end()) {
      found = it->second;
    }
    std::optional<IdempotencyRecord> record = found;
    if (!mutation(next, history, record)) {
      // Refused: nothing changes.
    } else if (!std::all_of(history.begin(), history.end(), [](const HistoryEntry& entry) {
                 return entry.event_key == EventKey(entry.event);
               })) {
      status = StoreError::kInvalid;  // as SqliteStore, which derives the stored key from the event
    } else {
      const PairKey resolved = ResolveLocked(key);
      if (notifier_.MayNotify(resolved) && (next != pair.state || !history.empty())) {
        for (Notification& n : notifier_.derive(resolved, pair.state, next, history)) {
          OutboxItem item = MakeOutboxItem(resolved, std::move(n));
          const Instant due = item.notification.due_at;
          const std::string id = item.event_id;
          outbox_.try_emplace(id, OutboxRow{std::move(item), next_seq_++, false, due, "", {}});
        }
      }
      pair.state = std::move(next);
      if (!idempotency_key.empty() && record && record != found) {
        pair.records[idempotency_key] = std::move(*record);
      }
      for (HistoryEntry& entry : history) {
        auto seen = std::find_if(pair.history.begin(), pair.history.end(), [&](const auto& kv) {
          return kv.second.event_key == entry.event_key;
        });
        if (seen == pair.history.end()) {
          entry.seq = next_seq_++;
          pair.history.emplace(entry.seq, std::move(entry));
        } else if (EventTime(entry.event) < EventTime(seen->second.event)) {
          // The earliest version of a fact wins, as in the pair state.
          seen->second.source = entry.source;
          seen->second.event = std::move(entry.event);
        }
      }
    }
  }
  done(status);
}

StoreResult<std::vector<HistoryEntry>> MemoryStore::LoadHistory(const PairKey& key,
                                                                std::int64_t before_seq,
                                                                int limit) {
  std::lock_guard lock(mu_);
  std::vector<HistoryEntry> out;
  const auto it = pairs_.find(ResolveLocked(key));
  if (it == pairs_.end()) return out;
  for (auto h = it->second.history.rbegin(); h != it->second.history.rend(); ++h) {
    if (static_cast<int>(out.size()) >= limit) break;
    if (before_seq == 0 || h->first < before_seq) out.push_back(h->second);
  }
  return out;
}

StoreResult<std::vector<HistoryEntry>> MemoryStore::LoadHistoryUntil(const PairKey& key,
                                                                     Instant until, int count) {
  std::lock_guard lock(mu_);
  std::vector<HistoryEntry> out;
  const auto it = pairs_.find(ResolveLocked(key));
  if (it == pairs_.end()) return out;
  for (const auto& [seq, entry] : it->second.history) out.push_back(entry);
  return CutHistoryUntil(std::move(out), until, count);
}

void MemoryStore::LinkUser(UserLink link, UpdateDone done) {
  {
    std::lock_guard lock(mu_);
    const std::string scope = ScopeLocked(link.channel_id);
    // The user's ids: those given, the canonical ids they resolve to, and every id linked to one.
    std::set<std::string> canonical, group;
    for (const UserId& id : link.ids) {
      const PairKey resolved = ResolveLocked({link.channel_id, id});
      canonical.insert(resolved.user.text());
      group.insert(id.text());
    }
    for (const auto& [scoped, target] : links_) {
      if (scoped.first == scope && canonical.contains(target)) group.insert(scoped.second);
    }
    group.insert(canonical.begin(), canonical.end());
    const std::string winner = *group.begin();  // the smallest: a phone number before a BSUID
    // The scope's channels and their limits (or the one channel of an unknown scope).
    std::vector<std::pair<std::string, LimitsProfile>> scoped_channels;
    for (const auto& [id, channel] : tenants_.channels) {
      if (ScopeLocked(id) == scope) scoped_channels.emplace_back(id, channel.limits);
    }
    if (scoped_channels.empty()) scoped_channels.emplace_back(link.channel_id, LimitsProfile{});
    for (const auto& [channel_id, limits] : scoped_channels) {
      std::vector<PairKey> held;  // the pairs of this user on this channel
      for (const std::string& id : canonical) {
        const PairKey key{channel_id, UserId::FromText(id)};
        if (pairs_.contains(key)) held.push_back(key);
      }
      const PairKey target{channel_id, UserId::FromText(winner)};
      if (held.empty() || (held.size() == 1 && held[0] == target)) continue;
      std::vector<HistoryEntry> entries;
      Pair merged;
      for (const PairKey& key : held) {
        Pair& pair = pairs_[key];
        for (auto& [seq, entry] : pair.history) entries.push_back(entry);
        for (auto& [k, record] : pair.records) {
          auto [it, inserted] = merged.records.try_emplace(k, record);
          if (!inserted && record.at < it->second.at) it->second = record;
        }
        pairs_.erase(key);
      }
      FoldedPair folded = FoldHistories(std::move(entries), limits);
      merged.state = std::move(folded.state);
      for (HistoryEntry& entry : folded.history) {
        if (entry.seq == 0) entry.seq = next_seq_++;
        merged.history.emplace(entry.seq, std::move(entry));
      }
      pairs_[target] = std::move(merged);
    }
    for (const std::string& id : group) {
      if (id == winner) {
        links_.erase({scope, id});
      } else {
        links_[{scope, id}] = winner;
      }
    }
  }
  done(Ok{});
}

void MemoryStore::SetNotifier(Notifier notifier) {
  std::lock_guard lock(mu_);
  notifier_ = std::move(notifier);
}

StoreResult<std::vector<OutboxItem>> MemoryStore::ClaimDue(Instant now, const std::string& owner,
                                                           Millis lease, int limit) {
  std::lock_guard lock(mu_);
  // Each pair's first unsettled row, in (due, seq) order.
  std::map<std::string, OutboxRow*> heads;
  for (auto& [id, row] : outbox_) {
    if (row.settled) continue;
    OutboxRow*& head = heads[OutboxPairRef(row.item.pair)];
    const auto order = [](const OutboxRow* r) {
      return std::pair(r->item.notification.due_at, r->seq);
    };
    if (!head || order(&row) < order(head)) head = &row;
  }
  std::vector<OutboxRow*> due;
  for (auto& [ref, row] : heads) {
    if (row->item.notification.due_at <= now && row->retry_at <= now && row->lease_until <= now) {
      due.push_back(row);
    }
  }
  std::sort(due.begin(), due.end(), [](const OutboxRow* a, const OutboxRow* b) {
    return std::pair(a->item.notification.due_at, a->seq) <
           std::pair(b->item.notification.due_at, b->seq);
  });
  std::vector<OutboxItem> claimed;
  for (OutboxRow* row : due) {
    if (static_cast<int>(claimed.size()) >= limit) break;
    row->owner = owner;
    row->lease_until = now + lease;
    claimed.push_back(row->item);
  }
  return claimed;
}

StoreStatus MemoryStore::Settle(const std::string& event_id, const std::string& owner,
                                Settlement settlement, Instant now, Instant retry_at) {
  std::lock_guard lock(mu_);
  const auto it = outbox_.find(event_id);
  if (it == outbox_.end() || it->second.settled || it->second.owner != owner ||
      it->second.lease_until <= now) {
    return StoreError::kNotFound;
  }
  OutboxRow& row = it->second;
  row.owner.clear();
  row.lease_until = {};
  switch (settlement) {
    case Settlement::kDelivered:
    case Settlement::kDropped:
      row.settled = true;
      break;
    case Settlement::kRetry:
      ++row.item.attempts;
      row.retry_at = retry_at;
      break;
  }
  return Ok{};
}

StoreResult<std::int64_t> MemoryStore::PendingCount() {
  std::lock_guard lock(mu_);
  return static_cast<std::int64_t>(std::count_if(
      outbox_.begin(), outbox_.end(), [](const auto& kv) { return !kv.second.settled; }));
}

}  // namespace callgate
