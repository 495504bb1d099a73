// The read-only mode of a SqliteStore (read_only.h): opening what a writing store needs, opening
// read-only when the directory cannot be written, and becoming writable without a restart. The
// reopener thread runs ReopenLoop and TryBecomeWritable; Install runs once, before the writer
// thread starts or on the reopener. Thread-safe as sqlite_store.h describes.
#include "store/sqlite/read_only.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_store.h"

namespace callgate {

namespace {

// `path` as the path of a SQLite URI: every byte but unreserved characters and '/' escaped.
std::string UriPath(const std::string& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string DirectoryOf(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

bool FileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::string NotWritable(const std::string& path) {
  for (const std::string& file :
       {DirectoryOf(path), path, path + "-wal", path + "-shm", path + "-changes"}) {
    if (::access(file.c_str(), W_OK) != 0 && errno != ENOENT) {
      return file + " cannot be written (" + std::strerror(errno) + ")";
    }
  }
  return {};
}

// SQLite reads a WAL database read-only through its -wal and -shm files. When both exist (a
// server stopped by kill -9 leaves them), it opens them read-only and indexes the WAL in private
// memory, so every acknowledged commit is read. When there is no -wal (a clean stop removes
// both), it cannot create them and refuses to read; but then the database file alone is the
// whole store, and `immutable` reads it without a WAL and without locks. That stays exact while
// nobody writes the file; should another process write it meanwhile (through another, writable
// mount), a -wal appears, and the reopener replaces such connections within a second
// (TryBecomeWritable); until then they may read a state older than the other's commit, which is
// why what they read is never cached (SqliteDb::reads_file_alone). A -wal without its -shm is
// refused: its commits would go unread.
Result<std::unique_ptr<SqliteDb>, std::string> OpenReadOnlyConnection(const std::string& path) {
  if (!FileExists(path)) return "no store at " + path + " to serve";
  const bool file_alone = !FileExists(path + "-wal");
  const std::string uri = "file:" + UriPath(path) + (file_alone ? "?immutable=1" : "?mode=ro");
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(
      uri.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
  auto db = std::make_unique<SqliteDb>(raw);
  if (rc != SQLITE_OK) return "cannot open " + path + " read-only: " + db->Error();
  if (file_alone) db->set_reads_file_alone();
  sqlite3_busy_timeout(raw, 10000);
  // As every connection of a store reads (schema.cc).
  if (!db->Exec("PRAGMA mmap_size=1073741824; PRAGMA cache_size=-65536;")) {
    return "cannot configure " + path + " read-only: " + db->Error();
  }
  Stmt version(*db, "PRAGMA user_version");
  if (version.Step() != SQLITE_ROW) return "cannot read " + path + ": " + db->Error();
  if (version.Int(0) == 0) return "no store at " + path + " to serve (an empty file)";
  if (version.Int(0) != kSchemaVersion) {
    return path + " has storage layout " + std::to_string(version.Int(0)) +
           ", which this callgate serves only once it has upgraded it, and that needs writing";
  }
  return db;
}

void SqliteStore::Counters::Set(std::unique_ptr<ChangeCounters> counters) {
  current_.store(counters.get(), std::memory_order_release);
  mapped_.push_back(std::move(counters));
}

Result<SqliteStore::WriteSide, std::string> SqliteStore::OpenWriteSide(const std::string& path) {
  WriteSide side;
  auto tenant_db = OpenConnection(path);
  if (!tenant_db) return tenant_db.error();
  // SQLite opens a file it cannot write read-only without saying so.
  if (sqlite3_db_readonly((*tenant_db)->raw(), "main") == 1) return path + " opened read-only";
  const Instant now = std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
  if (auto layout = EnsureLayout(**tenant_db, path, now); !layout) return layout.error();
  auto counters = ChangeCounters::Open(path + "-changes");
  if (!counters) return counters.error();
  auto writer_db = OpenConnection(path);
  if (!writer_db) return writer_db.error();
  auto checkpoint_db = OpenConnection(path);
  if (!checkpoint_db) return checkpoint_db.error();
  side.counters = std::move(*counters);
  side.tenant_db = std::move(*tenant_db);
  side.writer_db = std::move(*writer_db);
  side.checkpoint_db = std::move(*checkpoint_db);
  return side;
}

void SqliteStore::Install(WriteSide side) {
  // The writer thread touches writer_db_ only once it sees writable_ (group_commit.cc).
  writer_db_ = std::move(side.writer_db);
  // The writer's commits tell the checkpointer how full the WAL is (checkpointer.cc).
  sqlite3_wal_hook(writer_db_->raw(), &SqliteStore::OnWalCommit, this);
  checkpoint_db_ = std::move(side.checkpoint_db);
  checkpointer_ = std::thread([this] { CheckpointerLoop(); });
  {
    std::lock_guard lock(tenant_mu_);
    tenant_db_ = std::move(side.tenant_db);
  }
  counters_.Set(std::move(side.counters));
  writable_.store(true, std::memory_order_release);
}

void SqliteStore::ResetReadersLocked() {
  ++readers_epoch_;
  idle_readers_.clear();
  // Tenants read through the readers closed now may have been older than the tenant generation
  // in the counters file says (read_only.h): moving TenantChanges has the directory read them
  // again, through new readers.
  reader_resets_.fetch_add(1, std::memory_order_release);
}

void SqliteStore::ReopenLoop() {
  std::unique_lock lock(reopen_mu_);
  for (;;) {
    if (reopen_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return reopen_stopping_; })) {
      return;
    }
    lock.unlock();
    const bool writable = TryBecomeWritable();
    lock.lock();
    if (writable) return;
  }
}

bool SqliteStore::TryBecomeWritable() {
  const std::string& path = options_.path;
  // Still read-only: one access() per file and nothing else, so a store on a read-only mount
  // for good costs next to nothing.
  if (!NotWritable(path).empty()) {
    // Readers opened without a -wal read the file alone (OpenReadOnlyConnection): once one
    // appears (or is found beside such a reader), another process writes, and new readers must
    // read through it.
    const bool wal = FileExists(path + "-wal");
    if (wal) {
      std::lock_guard lock(readers_mu_);
      if (!wal_seen_ || std::any_of(idle_readers_.begin(), idle_readers_.end(),
                                    [](auto& db) { return db->reads_file_alone(); })) {
        ResetReadersLocked();
      }
    }
    wal_seen_ = wal;
    // Another process may have created the counters file meanwhile: caching is exact from then.
    if (!counters_.get()) {
      if (auto counters = ChangeCounters::OpenReadOnly(path + "-changes")) {
        counters_.Set(std::move(*counters));
      }
    }
    return false;
  }
  {
    // Every read-only connection closes first (sqlite_store.h, TryBecomeWritable). Readers wait
    // meanwhile: for the reads in flight to finish and SQLite to open three connections.
    std::unique_lock lock(readers_mu_);
    readers_paused_ = true;
    ResetReadersLocked();
    readers_cv_.wait(lock, [this] { return readers_out_ == 0; });
  }
  auto side = OpenWriteSide(path);
  if (side) Install(std::move(*side));
  {
    std::lock_guard lock(readers_mu_);
    readers_paused_ = false;
    readers_read_only_ = !side.ok();
  }
  readers_cv_.notify_all();
  if (side && options_.notice) options_.notice(path + " can be written again: writes resumed");
  return side.ok();
}

}  // namespace callgate
