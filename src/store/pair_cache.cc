#include "store/pair_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace callgate {

namespace {

constexpr std::size_t kFileBytes = ChangeCounters::kBuckets * sizeof(std::uint64_t);

// FNV-1a: the bucket of a pair must be the same in every process and every build.
std::uint64_t Fnv1a(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (const unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

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

Result<std::unique_ptr<ChangeCounters>, std::string> ChangeCounters::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot open " + path + ": " + std::strerror(errno);
  struct stat st {};
  // Growing under the writer lock: two processes creating the file at once agree on its size.
  // A fresh file is all zeros: every counter even, nothing cached anywhere yet.
  if (!LockFile(fd, F_WRLCK) || ::fstat(fd, &st) != 0 ||
      (static_cast<std::size_t>(st.st_size) < kFileBytes &&
       ::ftruncate(fd, static_cast<off_t>(kFileBytes)) != 0)) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    return "cannot prepare " + path + ": " + reason;
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

ChangeCounters::~ChangeCounters() {
  ::munmap(words_, kFileBytes);
  ::close(fd_);
}

std::size_t ChangeCounters::Bucket(std::string_view pair_key) {
  return static_cast<std::size_t>(Fnv1a(pair_key) & (kBuckets - 1));
}

std::uint64_t ChangeCounters::Load(std::size_t bucket) const {
  return std::atomic_ref<std::uint64_t>(words_[bucket]).load(std::memory_order_acquire);
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

PairCache::Shard& PairCache::ShardOf(const std::string& pair_key) {
  return shards_[(Fnv1a(pair_key) >> 48) % kShards];
}

bool PairCache::Get(const std::string& pair_key, std::uint64_t version, std::string& out) {
  Shard& shard = ShardOf(pair_key);
  std::lock_guard lock(shard.mu);
  const auto it = shard.entries.find(pair_key);
  if (it == shard.entries.end() || it->second.version != version) return false;
  out.assign(it->second.encoded);
  return true;
}

void PairCache::Put(const std::string& pair_key, std::uint64_t version, std::string_view encoded) {
  constexpr std::size_t kOverhead = 96;  // node, hash slot, deque slot: roughly
  const auto cost = [](const std::string& key, const std::string& value) {
    return 2 * key.size() + value.size() + kOverhead;
  };
  if (shard_budget_ == 0) return;
  Shard& shard = ShardOf(pair_key);
  std::lock_guard lock(shard.mu);
  auto [it, inserted] = shard.entries.try_emplace(pair_key);
  if (inserted) {
    shard.order.push_back(pair_key);
  } else {
    shard.bytes -= cost(pair_key, it->second.encoded);
  }
  it->second.version = version;
  it->second.encoded.assign(encoded);
  shard.bytes += cost(pair_key, it->second.encoded);
  while (shard.bytes > shard_budget_ && !shard.order.empty()) {
    const auto victim = shard.entries.find(shard.order.front());
    shard.bytes -= cost(victim->first, victim->second.encoded);
    shard.entries.erase(victim);
    shard.order.pop_front();
  }
}

}  // namespace callgate
