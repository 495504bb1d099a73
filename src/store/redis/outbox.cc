// RedisClusterStore's notification outbox (store/outbox.h). Items live beside their pair, in its
// slot: a hash per pair (event id -> item), written by the pair's commit script in the same
// atomic step as the change, which also puts the pair in its slot's index (a sorted set scored by
// when the pair's first unsettled item is ready). Claims and settlements are scripts on one slot
// too, so a pair's items are leased one at a time, in order, by whichever process asks first.
// Finding the slots with something ready goes through the hint (keys.h): a commit adds its slot
// after the fact, a claim or settlement sets it from the index and reads the index again, and a
// sweep of every index (at the first claim, then every kSweepEvery) rebuilds what a crash between
// a commit and its hint left out. Thread-safe: claimed_ under outbox_mu_.
#include <algorithm>
#include <string>

#include "store/redis/keys.h"
#include "store/redis/redis_cluster_store.h"
#include "store/redis/reply_util.h"
#include "store/redis/scripts.h"

namespace callgate {

using redis_reply::Integer;
using redis_reply::Pending;
using redis_reply::Text;

namespace {

constexpr std::chrono::seconds kSweepEvery{30};
constexpr int kSlotsPerClaim = 64;  // slots with something ready looked at by one claim

std::string MillisText(Instant at) { return std::to_string(ToUnixMillis(at)); }

}  // namespace

void RedisClusterStore::SetNotifier(Notifier notifier) { notifier_.Set(std::move(notifier)); }

void RedisClusterStore::HintSlot(std::uint16_t slot, std::int64_t due_ms) {
  const std::string hint = redis_keys::OutboxHintKey(options_.key_prefix);
  client_->Run(hint, {"ZADD", hint, "LT", std::to_string(due_ms), std::to_string(slot)},
               redis::Durability::kNone, [](redis::CommandResult) {});
}

void RedisClusterStore::RehintSlot(std::uint16_t slot, const std::string& next) {
  const std::string hint = redis_keys::OutboxHintKey(options_.key_prefix);
  const std::string member = std::to_string(slot);
  if (next.empty()) {
    (void)client_->RunSync(hint, {"ZREM", hint, member}, redis::Durability::kNone);
  } else {
    (void)client_->RunSync(hint, {"ZADD", hint, next, member}, redis::Durability::kNone);
  }
  // A commit between the index read and the write above added its slot before it (LT), and the
  // write may have raised it past that commit's item: the index read again has the item.
  const std::string index = redis_keys::SlotIndexKey(options_.key_prefix, slot);
  auto head =
      client_->RunSync(index, {"ZRANGE", index, "0", "0", "WITHSCORES"}, redis::Durability::kNone);
  if (head && head->type == redis::Reply::Type::kArray && head->elements.size() == 2 &&
      head->elements[1].str != next) {
    (void)client_->RunSync(hint, {"ZADD", hint, "LT", head->elements[1].str, member},
                           redis::Durability::kNone);
  }
}

StoreStatus RedisClusterStore::SweepOutbox() {
  // Every slot's index head, all in flight at once (16384 small reads, spread over the masters).
  constexpr std::size_t kSlots = 16384;
  std::vector<Pending> heads(kSlots);
  for (std::size_t slot = 0; slot < kSlots; ++slot) {
    const std::string index =
        redis_keys::SlotIndexKey(options_.key_prefix, static_cast<std::uint16_t>(slot));
    client_->Run(index, {"ZRANGE", index, "0", "0", "WITHSCORES"}, redis::Durability::kNone,
                 heads[slot].Callback());
  }
  const std::string hint = redis_keys::OutboxHintKey(options_.key_prefix);
  std::vector<std::string> zadd = {"ZADD", hint, "LT"};
  bool failed = false;
  for (std::size_t slot = 0; slot < kSlots; ++slot) {
    redis::CommandResult head = heads[slot].Get();
    if (!head) {
      failed = true;
      continue;
    }
    if (head->type == redis::Reply::Type::kArray && head->elements.size() == 2) {
      zadd.push_back(head->elements[1].str);
      zadd.push_back(std::to_string(slot));
    }
  }
  if (zadd.size() > 3 && !client_->RunSync(hint, std::move(zadd), redis::Durability::kNone)) {
    failed = true;
  }
  return failed ? StoreStatus(StoreError::kUnavailable) : StoreStatus(Ok{});
}

StoreResult<std::vector<OutboxItem>> RedisClusterStore::ClaimDue(Instant now,
                                                                 const std::string& owner,
                                                                 Millis lease, int limit) {
  bool sweep = false;
  {
    std::lock_guard lock(outbox_mu_);
    const auto steady = std::chrono::steady_clock::now();
    if (steady >= next_sweep_) {
      next_sweep_ = steady + kSweepEvery;
      sweep = true;
    }
    // Leases this process let lapse (a deliverer that never settled) are forgotten.
    std::erase_if(claimed_, [now](const auto& kv) { return kv.second.lease_until <= now; });
  }
  if (sweep && !SweepOutbox().ok()) {
    std::lock_guard lock(outbox_mu_);
    next_sweep_ = {};  // again at the next claim
  }
  const std::string hint = redis_keys::OutboxHintKey(options_.key_prefix);
  auto slots = client_->RunSync(hint,
                                {"ZRANGEBYSCORE", hint, "-inf", MillisText(now), "LIMIT", "0",
                                 std::to_string(kSlotsPerClaim)},
                                redis::Durability::kNone);
  if (!slots) return StoreError::kUnavailable;
  std::vector<OutboxItem> items;
  const Instant lease_until = now + lease;
  for (const redis::Reply& member : slots->elements) {
    if (static_cast<int>(items.size()) >= limit) break;
    const auto slot = static_cast<std::uint16_t>(std::stoul(member.str) & 16383);
    const std::string index = redis_keys::SlotIndexKey(options_.key_prefix, slot);
    auto claimed = client_->RunScriptSync(
        redis_scripts::ClaimOutbox(), {index},
        {MillisText(now), owner, MillisText(lease_until), std::to_string(limit - items.size()),
         MillisText(now - kSettledRetention), std::to_string(kSettledRetention.count())},
        // A lease lost with its master only means the item may be sent twice, with one id.
        redis::Durability::kNone);
    if (!claimed) return StoreError::kUnavailable;
    const auto& reply = claimed->elements;
    for (std::size_t i = 1; i + 2 < reply.size(); i += 3) {
      auto item = redis_keys::UnpackOutboxItem(reply[i + 1].str, reply[i + 2].str);
      if (!item) return StoreError::kInvalid;
      {
        std::lock_guard lock(outbox_mu_);
        claimed_[item->event_id] = {reply[i].str, slot, lease_until, owner};
      }
      items.push_back(std::move(*item));
    }
    RehintSlot(slot, Text(*claimed, 0));
  }
  // Due first, as the other stores answer.
  std::stable_sort(items.begin(), items.end(), [](const OutboxItem& a, const OutboxItem& b) {
    return a.notification.due_at < b.notification.due_at;
  });
  return items;
}

StoreStatus RedisClusterStore::Settle(const std::string& event_id, const std::string& owner,
                                      Settlement settlement, Instant now, Instant retry_at) {
  Claimed claimed;
  {
    std::lock_guard lock(outbox_mu_);
    const auto it = claimed_.find(event_id);
    // Never claimed here, lapsed, or claimed again by another owner since.
    if (it == claimed_.end() || it->second.owner != owner) return StoreError::kNotFound;
    claimed = it->second;
    claimed_.erase(it);
  }
  const char* how = settlement == Settlement::kDelivered ? "d"
                    : settlement == Settlement::kDropped ? "x"
                                                         : "r";
  auto settled = client_->RunScriptSync(
      redis_scripts::SettleOutbox(),
      {claimed.outbox, redis_keys::SlotIndexKey(options_.key_prefix, claimed.slot)},
      {event_id, owner, how, MillisText(now), MillisText(retry_at),
       std::to_string(kSettledRetention.count())},
      redis::Durability::kReplica);
  if (!settled) return StoreError::kUnavailable;
  if (Integer(*settled, 0) != 1) return StoreError::kNotFound;
  const std::string& next = Text(*settled, 1);
  if (!next.empty()) HintSlot(claimed.slot, std::stoll(next));
  return Ok{};
}

StoreResult<std::int64_t> RedisClusterStore::PendingCount() {
  // Every slot's index: for tests and occasional inspection, not for a request path.
  constexpr std::size_t kSlots = 16384;
  std::vector<Pending> counts(kSlots);
  for (std::size_t slot = 0; slot < kSlots; ++slot) {
    client_->RunScript(
        redis_scripts::CountOutbox(),
        {redis_keys::SlotIndexKey(options_.key_prefix, static_cast<std::uint16_t>(slot))}, {},
        redis::Durability::kNone, counts[slot].Callback());
  }
  std::int64_t total = 0;
  bool failed = false;
  for (Pending& count : counts) {
    redis::CommandResult result = count.Get();
    if (!result) {
      failed = true;
      continue;
    }
    total += result->integer;
  }
  if (failed) return StoreError::kUnavailable;
  return total;
}

}  // namespace callgate
