// A read cache of pair states that stays exact when several processes share one SQLite file.
//
// ChangeCounters is a small file mapped by every process (beside the database): 64 Ki counters,
// a pair hashing to one of them, and a tenant generation. Writers change a counter around every
// commit that touches one of its pairs — odd while a commit may be in flight, even once it is done
// — and do so holding a lock on that file, so writers of all processes take turns. A reader trusts
// a cached state only if the pair's counter is even and equals the value it read before loading
// that state. So:
//  - a cached state is never older than the last commit of its pair: every commit moves the
//    counter after it is visible, and a state loaded while a commit was in flight is not cached;
//  - a writer that dies between its commit and the second change leaves the counter odd, which
//    only stops caching of that bucket until the next commit there;
//  - a status read that hits costs one load from shared memory and no system call; SQLite's read
//    transaction costs two fcntl locks per read.
//
// PairCache holds encoded states (store/codec.h) under a byte budget, oldest entries out first,
// in open-addressing tables keyed by the pair's hash, the key and the state in one block: a hit
// touches about three cache lines (a node-based map with separate key and value strings took
// five, 6 % of a status read's CPU with a million pairs).
// Thread-safe; both classes are owned by a SqliteStore.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/store_error.h"
#include "core/user_id.h"

namespace callgate {

// The hash of a pair's cache key, the same in every process and build (FNV-1a): it picks the
// pair's change counter and its cache slot, so a lookup hashes the key once.
std::uint64_t PairHash(std::string_view pair_key);

// The cache's key of a pair: unambiguous, as a destination holds no NUL. The key is built in a
// buffer of the calling thread that its next CacheKey call overwrites: use or copy it before that.
const std::string& CacheKey(const PairKey& key);

class ChangeCounters {
 public:
  static constexpr std::size_t kBuckets = 1 << 16;

  // Maps (creating if needed) the counters file. Error: a readable reason.
  static Result<std::unique_ptr<ChangeCounters>, std::string> Open(const std::string& path);
  // Maps an existing counters file for reading only, for a store that cannot write: Load and
  // TenantGeneration work (and see every other process's changes); Lock, BeginChange, EndChange
  // and BumpTenantGeneration must not be called. Error: a readable reason.
  static Result<std::unique_ptr<ChangeCounters>, std::string> OpenReadOnly(const std::string& path);
  ~ChangeCounters();
  ChangeCounters(const ChangeCounters&) = delete;
  ChangeCounters& operator=(const ChangeCounters&) = delete;

  static std::size_t Bucket(std::uint64_t pair_hash) { return pair_hash & (kBuckets - 1); }
  std::uint64_t Load(std::size_t bucket) const;
  static bool Stable(std::uint64_t value) { return value % 2 == 0; }

  // Moved by every committed tenant change, after its commit (so a reader that sees it move
  // loads the change): how every process sharing the file honours an admin change on its next
  // request, for the cost of one load from shared memory.
  std::uint64_t TenantGeneration() const;
  void BumpTenantGeneration();

  // Writers: Lock() (blocks while another writer of any process holds it), BeginChange on the
  // buckets about to commit, commit, EndChange on the same buckets, Unlock().
  bool Lock();
  void Unlock();
  void BeginChange(std::size_t bucket);  // -> odd
  // -> even; returns the new value.
  std::uint64_t EndChange(std::size_t bucket);

 private:
  ChangeCounters(int fd, std::uint64_t* words) : fd_(fd), words_(words) {}
  int fd_;
  std::uint64_t* words_;  // kBuckets pair counters, then the tenant generation; shared
};

// Lookups of a PairCache since it was made, read by the metrics when scraped.
struct PairCacheStats {
  std::uint64_t hits = 0;    // found the pair's state at the version asked for
  std::uint64_t misses = 0;  // did not: the state is read from the file
};

class PairCache {
 public:
  explicit PairCache(std::size_t byte_budget) : shard_budget_(byte_budget / kShards) {}

  // The encoded state cached for `pair_key` (whose PairHash is `pair_hash`) at counter value
  // `version`, copied into `out`.
  bool Get(std::string_view pair_key, std::uint64_t pair_hash, std::uint64_t version,
           std::string& out);
  void Put(std::string_view pair_key, std::uint64_t pair_hash, std::uint64_t version,
           std::string_view encoded);
  PairCacheStats stats() const;

 private:
  static constexpr std::size_t kShards = 16;
  struct Entry {
    std::uint64_t version = 0;
    std::uint32_t key_size = 0;
    std::string blob;  // the key, then the encoded state
  };
  struct Shard {
    std::mutex mu;
    // By hash; a key sharing another's hash replaces it (a cache may forget) and Get compares
    // the whole key, so a collision is a miss, never another pair's state.
    absl::flat_hash_map<std::uint64_t, Entry> entries;
    std::deque<std::uint64_t> order;  // insertion order, for eviction
    std::size_t bytes = 0;
    // Get's outcomes. Written under `mu` only, so a plain load and store counts them (no locked
    // read-modify-write on the read path); stats() reads them without the lock.
    std::atomic<std::uint64_t> hits{0}, misses{0};
  };
  Shard& ShardOf(std::uint64_t pair_hash) { return shards_[(pair_hash >> 48) % kShards]; }

  std::size_t shard_budget_;
  Shard shards_[kShards];
};

}  // namespace callgate
