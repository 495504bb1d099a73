// Per-thread caches, one mechanism for all of them. Where a profile showed that a thread reusing
// what it built for its last request pays (a verified key, a tenant snapshot pointer, keyed HMAC
// contexts), the cache is a ThreadCache<Value, Tag> slot that belongs to one owner object and one
// version of it: the first time a thread sees another owner or version, its slot is rebuilt
// empty, so a cache never outlives or outlasts what it caches (a rotated secret, a replaced
// snapshot, a destroyed owner). Scratch buffers that cache nothing (parsers, digest contexts,
// random generators) stay plain thread_locals beside their one use.
//
// Thread-safe by construction: each thread touches only its own slot.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

namespace callgate {

// A process-wide unique id for an owner of per-thread caches (never 0).
inline std::uint64_t NewCacheOwnerId() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// A member that gives each object a process-unique owner id for its per-thread caches. A copy is
// another object with an id of its own, so it never reads what was cached for the original.
class CacheOwnerId {
 public:
  CacheOwnerId() : id_(NewCacheOwnerId()) {}
  CacheOwnerId(const CacheOwnerId&) : id_(NewCacheOwnerId()) {}
  CacheOwnerId(CacheOwnerId&&) noexcept : id_(NewCacheOwnerId()) {}
  CacheOwnerId& operator=(const CacheOwnerId&) {
    id_ = NewCacheOwnerId();
    return *this;
  }
  CacheOwnerId& operator=(CacheOwnerId&&) noexcept {
    id_ = NewCacheOwnerId();
    return *this;
  }
  std::uint64_t get() const { return id_; }

 private:
  std::uint64_t id_;
};

// This thread's `Value` for (owner, version), default-constructed when either changed since the
// thread last asked. `Tag` tells apart caches of the same value type.
template <class Value, class Tag>
Value& ThreadCache(std::uint64_t owner, std::uint64_t version = 0) {
  struct Slot {
    std::uint64_t owner = 0;
    std::uint64_t version = 0;
    Value value{};
  };
  thread_local Slot slot;
  if (slot.owner != owner || slot.version != version) {
    slot.value = Value{};
    slot.owner = owner;
    slot.version = version;
  }
  return slot.value;
}

}  // namespace callgate
