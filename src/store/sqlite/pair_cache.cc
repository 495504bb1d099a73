// The shared change-counter file (mapped, locked with OFD locks), the pair hash and cache key,
// and PairCache's sharded tables (pair_cache.h). Thread-safe.
#include "store/sqlite/pair_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace callgate {

namespace {

// The pair counters, then the tenant generation.
constexpr std::size_t kTenantWord = ChangeCounters::kBuckets;
constexpr std::size_t kFileBytes = (ChangeCounters::kBuckets + 1) * sizeof(std::uint64_t);

// Locks the whole file for writing, per open file description (so two stores in one process
// exclude each other too); released by the kernel if the process dies.
bool LockFile(int fd, short type) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  int rc;
  do {
    rc = ::fcntl(fd, F_OFD_SETLKW, &lock);
  } while (rc != 0 && errno == EINTR);
  return rc == 0;
}

}  // namespace

// FNV-1a: the bucket of a pair must be the same in every process and every build.
std::uint64_t PairHash(std::string_view pair_key) {
  std::uint64_t h = 14695981039346656037ull;
  for (const unsigned char c : pair_key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

const std::string& CacheKey(const PairKey& key) {
  // Lives as long as its thread and is reused by each call, so building a key does not allocate
  // once the buffer has grown to the longest key the thread has seen.
  thread_local std::string buffer;
  buffer.assign(key.channel_id).push_back('\0');
  buffer.append(key.user.text());
  return buffer;
}

Result<std::unique_ptr<ChangeCounters>, std::string> ChangeCounters::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot open " + path + ": " + std::strerror(errno);
  // Growing under the writer lock: two processes creating the file at once agree on its size.
  // A fresh file is all zeros: every counter even, nothing cached anywhere yet. Its blocks are
  // allocated for real (a sparse file mapped shared raised SIGBUS at the first store to an
  // untouched page once the disk was full); on a file already allocated this allocates nothing,
  // so a store that had its file before the disk filled still opens.
  int rc = LockFile(fd, F_WRLCK) ? 0 : errno;
  if (rc == 0) rc = ::posix_fallocate(fd, 0, static_cast<off_t>(kFileBytes));
  if (rc != 0) {
    ::close(fd);
    return "cannot prepare " + path + ": " + std::strerror(rc);
  }
  LockFile(fd, F_UNLCK);
  void* map = ::mmap(nullptr, kFileBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    return "cannot map " + path + ": " + reason;
  }
  return std::unique_ptr<ChangeCounters>(new ChangeCounters(fd, static_cast<std::uint64_t*>(map)));
}

Result<std::unique_ptr<ChangeCounters>, std::string> ChangeCounters::OpenReadOnly(
    const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "cannot open " + path + ": " + std::strerror(errno);
  // A file shorter than the map (never fully allocated) would raise SIGBUS past its end.
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(kFileBytes)) {
    ::close(fd);
    return path + " is not a complete change counters file";
  }
  void* map = ::mmap(nullptr, kFileBytes, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    return "cannot map " + path + ": " + reason;
  }
  return std::unique_ptr<ChangeCounters>(new ChangeCounters(fd, static_cast<std::uint64_t*>(map)));
}

ChangeCounters::~ChangeCounters() {
  ::munmap(words_, kFileBytes);
  ::close(fd_);
}

std::uint64_t ChangeCounters::Load(std::size_t bucket) const {
  return std::atomic_ref<std::uint64_t>(words_[bucket]).load(std::memory_order_acquire);
}

std::uint64_t ChangeCounters::TenantGeneration() const {
  return std::atomic_ref<std::uint64_t>(words_[kTenantWord]).load(std::memory_order_acquire);
}

void ChangeCounters::BumpTenantGeneration() {
  std::atomic_ref<std::uint64_t>(words_[kTenantWord]).fetch_add(1, std::memory_order_acq_rel);
}

bool ChangeCounters::Lock() { return LockFile(fd_, F_WRLCK); }

void ChangeCounters::Unlock() { LockFile(fd_, F_UNLCK); }

void ChangeCounters::BeginChange(std::size_t bucket) {
  // Odd, and different from before even if a writer died leaving it odd.
  std::atomic_ref<std::uint64_t> word(words_[bucket]);
  const std::uint64_t value = word.load(std::memory_order_relaxed);
  word.store(Stable(value) ? value + 1 : value + 2, std::memory_order_seq_cst);
}

std::uint64_t ChangeCounters::EndChange(std::size_t bucket) {
  std::atomic_ref<std::uint64_t> word(words_[bucket]);
  const std::uint64_t value = word.load(std::memory_order_relaxed);
  const std::uint64_t next = Stable(value) ? value + 2 : value + 1;
  word.store(next, std::memory_order_seq_cst);
  return next;
}

bool PairCache::Get(std::string_view pair_key, std::uint64_t pair_hash, std::uint64_t version,
                    std::string& out) {
  Shard& shard = ShardOf(pair_hash);
  std::lock_guard lock(shard.mu);
  const auto it = shard.entries.find(pair_hash);
  const bool hit = it != shard.entries.end() && it->second.version == version &&
                   it->second.key_size == pair_key.size() &&
                   std::string_view(it->second.blob).substr(0, it->second.key_size) == pair_key;
  std::atomic<std::uint64_t>& count = hit ? shard.hits : shard.misses;
  count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (!hit) return false;
  out.assign(it->second.blob, it->second.key_size);
  return true;
}

PairCacheStats PairCache::stats() const {
  PairCacheStats stats;
  for (const Shard& shard : shards_) {
    stats.hits += shard.hits.load(std::memory_order_relaxed);
    stats.misses += shard.misses.load(std::memory_order_relaxed);
  }
  return stats;
}

void PairCache::Put(std::string_view pair_key, std::uint64_t pair_hash, std::uint64_t version,
                    std::string_view encoded) {
  constexpr std::size_t kOverhead = 96;  // table slot, block header, order slot: roughly
  const auto cost = [](const Entry& entry) { return entry.blob.size() + kOverhead; };
  if (shard_budget_ == 0) return;
  Shard& shard = ShardOf(pair_hash);
  std::lock_guard lock(shard.mu);
  auto [it, inserted] = shard.entries.try_emplace(pair_hash);
  if (inserted) {
    shard.order.push_back(pair_hash);
  } else {
    shard.bytes -= cost(it->second);
  }
  Entry& entry = it->second;
  entry.version = version;
  entry.key_size = static_cast<std::uint32_t>(pair_key.size());
  entry.blob.assign(pair_key).append(encoded);
  shard.bytes += cost(entry);
  while (shard.bytes > shard_budget_ && !shard.order.empty()) {
    const auto victim = shard.entries.find(shard.order.front());
    shard.bytes -= cost(victim->second);
    shard.entries.erase(victim);
    shard.order.pop_front();
  }
}

}  // namespace callgate
