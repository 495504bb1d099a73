// TenantDirectory: the request path's view of tenants. Holds an immutable snapshot and swaps in
// a fresh one when the store's tenant generation changes, checked at most every
// `refresh_interval`: admin changes made by another process take effect within that interval,
// without a restart. Thread-safe; Current() returns a per-thread copy of the snapshot pointer
// (core/thread_cache.h), taken again only when the snapshot changed (std::atomic_load of a
// shared_ptr takes a lock).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "tenants/tenant_store.h"

namespace callgate {

class TenantDirectory {
 public:
  TenantDirectory(TenantStore& store, Millis refresh_interval);

  // Loads the first snapshot; false if the store cannot be read.
  bool Start();
  // The newest snapshot, refreshed first if the interval has passed. Never null after Start().
  std::shared_ptr<const TenantSnapshot> Current(Instant now);
  // Forces a reload now (e.g. right after this process changed tenants).
  void Refresh();

 private:
  // Makes `tenants` the current snapshot.
  void Publish(TenantSnapshot&& tenants);

  TenantStore& store_;
  const Millis refresh_interval_;
  std::atomic<std::int64_t> next_check_ms_{0};
  std::mutex refresh_mu_;  // one refresher at a time
  std::uint64_t generation_ = 0;
  std::shared_ptr<const TenantSnapshot> snapshot_;  // accessed with std::atomic_load/store
  std::atomic<std::uint64_t> version_{0};           // bumped after each store of snapshot_
  const std::uint64_t id_;                          // owner of the per-thread snapshot copies
};

}  // namespace callgate
