// TenantDirectory: the request path's view of tenants. Holds an immutable snapshot and swaps in
// a fresh one as soon as the store says tenants changed (TenantStore::TenantChanges, read on
// every request without a system call): once an admin command has returned, every process on
// the store honours it on its next request. Thread-safe; Current() returns a per-thread copy of
// the snapshot pointer (core/thread_cache.h), taken again only when the snapshot changed
// (std::atomic_load of a shared_ptr takes a lock).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "tenants/tenant_store.h"

namespace callgate {

class TenantDirectory {
 public:
  explicit TenantDirectory(TenantStore& store);

  // Loads the first snapshot; false if the store cannot be read.
  bool Start();
  // The newest snapshot, reloaded first if tenants changed. Never null after Start().
  std::shared_ptr<const TenantSnapshot> Current();
  // Reloads now if the store's generation moved; false if the store could not be read (the last
  // good snapshot stays).
  bool Refresh();

 private:
  // Makes `tenants` the current snapshot.
  void Publish(TenantSnapshot&& tenants);

  TenantStore& store_;
  std::atomic<std::uint64_t> seen_changes_{0};  // TenantChanges() the snapshot reflects
  std::mutex refresh_mu_;                       // one refresher at a time
  std::uint64_t generation_ = 0;
  std::shared_ptr<const TenantSnapshot> snapshot_;  // accessed with std::atomic_load/store
  std::atomic<std::uint64_t> version_{0};           // bumped after each store of snapshot_
  const std::uint64_t id_;                          // owner of the per-thread snapshot copies
};

}  // namespace callgate
