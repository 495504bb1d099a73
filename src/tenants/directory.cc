#include "tenants/directory.h"

#include "core/thread_cache.h"

namespace callgate {

TenantDirectory::TenantDirectory(TenantStore& store, Millis refresh_interval)
    : store_(store), refresh_interval_(refresh_interval), id_(NewCacheOwnerId()) {}

bool TenantDirectory::Start() {
  auto generation = store_.TenantGeneration();
  auto tenants = store_.LoadTenants();
  if (!generation.ok() || !tenants.ok()) return false;
  generation_ = *generation;
  Publish(std::move(*tenants));
  return true;
}

void TenantDirectory::Refresh() {
  std::lock_guard lock(refresh_mu_);
  const auto generation = store_.TenantGeneration();
  if (!generation.ok() || *generation == generation_) return;
  auto tenants = store_.LoadTenants();
  if (!tenants.ok()) return;  // keep serving the last good snapshot
  generation_ = *generation;
  Publish(std::move(*tenants));
}

void TenantDirectory::Publish(TenantSnapshot&& tenants) {
  std::atomic_store(&snapshot_, std::shared_ptr<const TenantSnapshot>(
                                    std::make_shared<TenantSnapshot>(std::move(tenants))));
  ++version_;  // after the store: a thread that sees the new version loads the new snapshot
}

std::shared_ptr<const TenantSnapshot> TenantDirectory::Current(Instant now) {
  const std::int64_t now_ms = ToUnixMillis(now);
  std::int64_t next = next_check_ms_.load(std::memory_order_relaxed);
  if (now_ms >= next && next_check_ms_.compare_exchange_strong(
                            next, now_ms + refresh_interval_.count(), std::memory_order_relaxed)) {
    Refresh();
  }
  // This thread's copy of the snapshot pointer, dropped when a new snapshot is published.
  struct SnapshotTag;
  auto& cached =
      ThreadCache<std::shared_ptr<const TenantSnapshot>, SnapshotTag>(id_, version_.load());
  if (!cached) cached = std::atomic_load(&snapshot_);
  return cached;
}

}  // namespace callgate
