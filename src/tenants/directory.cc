#include "tenants/directory.h"

namespace callgate {

namespace {
std::atomic<std::uint64_t> next_directory_id{1};
}  // namespace

TenantDirectory::TenantDirectory(TenantStore& store, Millis refresh_interval)
    : store_(store), refresh_interval_(refresh_interval), id_(next_directory_id++) {}

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
  struct Cached {
    std::uint64_t directory = 0;
    std::uint64_t version = 0;
    std::shared_ptr<const TenantSnapshot> snapshot;
  };
  thread_local Cached cached;
  const std::uint64_t version = version_.load();
  if (cached.directory != id_ || cached.version != version) {
    cached = {id_, version, std::atomic_load(&snapshot_)};
  }
  return cached.snapshot;
}

}  // namespace callgate
