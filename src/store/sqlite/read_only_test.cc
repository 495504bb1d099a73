// SqliteStore on a read-only mount: opening read-only after a clean close and after a crash that
// left the WAL behind, serving what is on disk, refusing writes, and becoming writable by itself
// once the mount is; a read-only directory without a store is refused. Each test runs in a child
// process with a mount namespace of its own and a real tmpfs remounted read-only (no injected
// condition), so it needs root; it is skipped otherwise (CI runs as root).
#include "store/sqlite/read_only.h"

#include <sched.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "store/sqlite/sqlite_store.h"
#include "store/store_test_util.h"
#include "tenants/directory.h"

namespace callgate {
namespace {

const PairKey kPair{"ch-1", UserId::Phone("+15551230001")};

// Runs `body` in a child process with a mount namespace of its own and a tmpfs mounted at `dir`,
// so `body` can remount it (Remount) without anyone else seeing it. `body` returns what went
// wrong, empty if nothing; so does this, adding how the child ended if it did not end well.
std::string InPrivateTmpfs(const std::string& dir, const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string error;
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=16m") != 0) {
      error = std::string("cannot mount a private tmpfs: ") + std::strerror(errno);
    } else {
      error = body();
    }
    const ssize_t written = ::write(fds[1], error.data(), error.size());
    ::_exit(written == static_cast<ssize_t>(error.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string error;
  char buffer[512];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) error.append(buffer, n);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    error += " (the child ended with status " + std::to_string(status) + ")";
  }
  return error;
}

bool Remount(const std::string& dir, bool read_only) {
  return ::mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | (read_only ? MS_RDONLY : 0),
                 nullptr) == 0;
}

// The child cannot report through gtest: a check returns what failed instead.
#define CHECK_OR_RETURN(condition, what) \
  if (!(condition)) return std::string(what) + " (" #condition ")"

// Overwrites the stored state of `key` with bytes that do not decode, through a connection of
// its own (so no change counter moves).
bool DamageState(const std::string& path, const PairKey& key) {
  sqlite3* db = nullptr;
  bool done = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK;
  sqlite3_busy_timeout(db, 10000);
  const std::string sql = "UPDATE pairs SET state = x'ff' WHERE channel_id = '" + key.channel_id +
                          "' AND destination = '" + key.user.text() + "'";
  done = done && sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK &&
         sqlite3_changes(db) == 1;
  sqlite3_close_v2(db);
  return done;
}

// Writes an account and one request for kPair, then closes the store (`crash`: ends a process
// that has not closed it, as kill -9 does, leaving the WAL and its index behind).
std::string WriteThenStop(const std::string& path, bool crash) {
  auto write = [&]() -> std::string {
    auto store = SqliteStore::Open({.path = path});
    CHECK_OR_RETURN(store.ok(), store.error());
    CHECK_OR_RETURN((*store)->CreateAccount({"acc-1", kT0}).ok(), "account");
    CHECK_OR_RETURN(UpdatePairSync(**store, kPair, Request("req-1", kT0)).ok(), "write");
    if (crash) ::_exit(0);
    return {};
  };
  if (!crash) return write();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string error = write();
    ::_exit(error.empty() ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK_OR_RETURN(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the crashing writer failed");
  return {};
}

// The whole life of a store on a mount that is read-only at the start and writable later.
std::string ReadOnlyThenWritable(const std::string& dir, bool crash) {
  const std::string path = dir + "/store.db";
  if (auto error = WriteThenStop(path, crash); !error.empty()) return error;
  CHECK_OR_RETURN(FileExists(path + "-wal") == crash, "the WAL is left iff crashed");
  CHECK_OR_RETURN(Remount(dir, true), "remount read-only");

  auto opened = SqliteStore::Open({.path = path});
  CHECK_OR_RETURN(opened.ok(), opened.error());
  SqliteStore& store = **opened;
  CHECK_OR_RETURN(!store.writable(), "writable on a read-only mount");
  CHECK_OR_RETURN(store.read_only_reason().find("Read-only file system") != std::string::npos,
                  store.read_only_reason());
  // Reads: what was written before, and only that.
  auto pair = store.LoadPair(kPair);
  CHECK_OR_RETURN(pair.ok() && pair->requests.size() == 1, "the pair read back");
  auto history = store.LoadHistory(kPair, 0, 10);
  CHECK_OR_RETURN(history.ok() && history->size() == 1, "the history read back");
  auto tenants = store.LoadTenants();
  CHECK_OR_RETURN(tenants.ok() && tenants->accounts.contains("acc-1"), "the tenants read back");
  CHECK_OR_RETURN(store.TenantGeneration().ok(), "the tenant generation read");
  // Writes: refused, as values.
  CHECK_OR_RETURN(store.ProbeWrite().error() == StoreError::kUnavailable, "probe");
  auto refused = UpdatePairSync(store, kPair, Request("req-2", kT0 + Millis(1)));
  CHECK_OR_RETURN(!refused.ok() && refused.error() == StoreError::kUnavailable, "pair write");
  CHECK_OR_RETURN(store.CreateAccount({"acc-2", kT0}).error() == StoreError::kUnavailable,
                  "tenant write");
  CHECK_OR_RETURN(store.LoadPair(kPair)->requests.size() == 1, "a refused write left a trace");

  // The mount becomes writable: the store follows within a few seconds, without a reopen.
  CHECK_OR_RETURN(Remount(dir, false), "remount read-write");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!store.writable() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK_OR_RETURN(store.writable(), "not writable 5 s after the remount");
  CHECK_OR_RETURN(store.ProbeWrite().ok(), "probe after recovery");
  CHECK_OR_RETURN(UpdatePairSync(store, kPair, Request("req-2", kT0 + Millis(1))).ok(),
                  "pair write after recovery");
  CHECK_OR_RETURN(store.CreateAccount({"acc-2", kT0}).ok(), "tenant write after recovery");
  CHECK_OR_RETURN(store.LoadPair(kPair)->requests.size() == 2, "the new write read back");

  // The change counters are back: a state this store has cached is replaced when another store
  // on the file commits a change to it.
  {
    auto other = SqliteStore::Open({.path = path});
    CHECK_OR_RETURN(other.ok() && (*other)->writable(), "a second store");
    CHECK_OR_RETURN(UpdatePairSync(**other, kPair, Request("req-3", kT0 + Millis(2))).ok(),
                    "the second store's write");
  }
  CHECK_OR_RETURN(store.LoadPair(kPair)->requests.size() == 3, "another store's write unseen");
  CHECK_OR_RETURN(store.LoadTenants()->accounts.contains("acc-2"), "the tenant write read back");
  // And the cache is back: with the row damaged behind the store's back (no counter moves),
  // the state it read last is served from memory.
  CHECK_OR_RETURN(DamageState(path, kPair), "damaging the row");
  auto cached = store.LoadPair(kPair);
  CHECK_OR_RETURN(cached.ok() && cached->requests.size() == 3, "not served from the cache");
  return {};
}

bool Root() { return ::geteuid() == 0; }

// A directory to mount the tmpfs on.
std::string MountPoint(const TempDir& dir) {
  const std::string mount = dir.File("fs");
  std::filesystem::create_directory(mount);
  return mount;
}

TEST(SqliteReadOnlyTest, AfterACleanCloseServesReadsRefusesWritesAndRecoversByItself) {
  if (!Root()) GTEST_SKIP() << "needs root: mounts a tmpfs";
  TempDir dir;
  const std::string mount = MountPoint(dir);
  EXPECT_EQ(InPrivateTmpfs(mount, [&] { return ReadOnlyThenWritable(mount, false); }), "");
}

TEST(SqliteReadOnlyTest, AfterACrashReadsTheWalLeftBehindAndRecoversByItself) {
  if (!Root()) GTEST_SKIP() << "needs root: mounts a tmpfs";
  TempDir dir;
  const std::string mount = MountPoint(dir);
  EXPECT_EQ(InPrivateTmpfs(mount, [&] { return ReadOnlyThenWritable(mount, true); }), "");
}

// A store on a read-only bind mount beside a writable mount of the same directory, where another
// store writes: its reads follow the other store's commits (its connections that read the file
// alone are replaced once a WAL appears; its cache and its tenant directory see the other's
// change counters).
std::string ReadOnlyBesideAWriter(const std::string& dir, const std::string& read_only_dir) {
  if (auto error = WriteThenStop(dir + "/store.db", false); !error.empty()) return error;
  CHECK_OR_RETURN(::mount(dir.c_str(), read_only_dir.c_str(), nullptr, MS_BIND, nullptr) == 0 &&
                      ::mount(nullptr, read_only_dir.c_str(), nullptr,
                              MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) == 0,
                  "read-only bind mount");
  auto reader = SqliteStore::Open({.path = read_only_dir + "/store.db"});
  CHECK_OR_RETURN(reader.ok() && !(*reader)->writable(), "the read-only store");
  CHECK_OR_RETURN((*reader)->LoadPair(kPair)->requests.size() == 1, "the first read");
  TenantDirectory tenants(**reader);
  CHECK_OR_RETURN(tenants.Start(), "the tenant directory");
  auto writer = SqliteStore::Open({.path = dir + "/store.db"});
  CHECK_OR_RETURN(writer.ok() && (*writer)->writable(), "the writing store");
  CHECK_OR_RETURN((*writer)->CreateAccount({"acc-2", kT0}).ok(), "tenant write");
  CHECK_OR_RETURN(UpdatePairSync(**writer, kPair, Request("req-2", kT0 + Millis(1))).ok(), "write");
  // Read meanwhile, as requests would, so that stale reads had their chance to stick.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    const bool pair_seen = (*reader)->LoadPair(kPair)->requests.size() == 2;
    const bool tenant_seen = tenants.Current()->accounts.contains("acc-2");
    if ((pair_seen && tenant_seen) || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK_OR_RETURN((*reader)->LoadPair(kPair)->requests.size() == 2, "the other's write unseen");
  CHECK_OR_RETURN(tenants.Current()->accounts.contains("acc-2"), "the other's tenant unseen");
  // From then on, at once.
  CHECK_OR_RETURN(UpdatePairSync(**writer, kPair, Request("req-3", kT0 + Millis(2))).ok(), "write");
  CHECK_OR_RETURN((*reader)->LoadPair(kPair)->requests.size() == 3, "a stale read");
  CHECK_OR_RETURN(!(*reader)->writable(), "writable through a read-only mount");
  return {};
}

TEST(SqliteReadOnlyTest, ReadOnlyMountBesideAWritableOneFollowsItsWrites) {
  if (!Root()) GTEST_SKIP() << "needs root: mounts a tmpfs";
  TempDir dir;
  const std::string mount = MountPoint(dir);
  const std::string read_only = dir.File("ro");
  std::filesystem::create_directory(read_only);
  EXPECT_EQ(InPrivateTmpfs(mount, [&] { return ReadOnlyBesideAWriter(mount, read_only); }), "");
}

TEST(SqliteReadOnlyTest, ReadOnlyDirectoryWithoutAStoreIsRefused) {
  if (!Root()) GTEST_SKIP() << "needs root: mounts a tmpfs";
  TempDir dir;
  const std::string mount = MountPoint(dir);
  EXPECT_EQ(InPrivateTmpfs(mount,
                           [&]() -> std::string {
                             CHECK_OR_RETURN(Remount(mount, true), "remount read-only");
                             auto store = SqliteStore::Open({.path = mount + "/store.db"});
                             CHECK_OR_RETURN(!store.ok(), "opened");
                             CHECK_OR_RETURN(store.error().find("no store at " + mount +
                                                                "/store.db to "
                                                                "serve") == 0 &&
                                                 store.error().find("Read-only file system") !=
                                                     std::string::npos,
                                             store.error());
                             return {};
                           }),
            "");
}

}  // namespace
}  // namespace callgate
