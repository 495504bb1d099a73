#include "tenants/directory.h"

#include "core/thread_cache.h"

namespace callgate {

TenantDirectory::TenantDirectory(TenantStore& store) : store_(store), id_(NewCacheOwnerId()) {}

bool TenantDirectory::Start() {
  const std::uint64_t changes = store_.TenantChanges();
  auto generation = store_.TenantGeneration();
  auto tenants = store_.LoadTenants();
  if (!generation.ok() || !tenants.ok()) return false;
  generation_ = *generation;
  Publish(std::move(*tenants));
  seen_changes_ = changes;
  return true;
}

bool TenantDirectory::Refresh() {
  std::lock_guard lock(refresh_mu_);
  const auto generation = store_.TenantGeneration();
  if (!generation.ok()) return false;
  if (*generation == generation_) return true;
  auto tenants = store_.LoadTenants();
  if (!tenants.ok()) return false;  // keep serving the last good snapshot
  generation_ = *generation;
  Publish(std::move(*tenants));
  return true;
}

void TenantDirectory::Publish(TenantSnapshot&& tenants) {
  std::atomic_store(&snapshot_, std::shared_ptr<const TenantSnapshot>(
                                    std::make_shared<TenantSnapshot>(std::move(tenants))));
  ++version_;  // after the store: a thread that sees the new version loads the new snapshot
}

std::shared_ptr<const TenantSnapshot> TenantDirectory::Current() {
  // Read before reloading: a change committed during the reload moves it again, and the next
  // request reloads once more.
  const std::uint64_t changes = store_.TenantChanges();
  if (changes != seen_changes_.load(std::memory_order_acquire) && Refresh()) {
    seen_changes_.store(changes, std::memory_order_release);
  }
  // This thread's copy of the snapshot pointer, dropped when a new snapshot is published.
  struct SnapshotTag;
  auto& cached =
      ThreadCache<std::shared_ptr<const TenantSnapshot>, SnapshotTag>(id_, version_.load());
  if (!cached) cached = std::atomic_load(&snapshot_);
  return cached;
}

}  // namespace callgate
