// SqliteStore's checkpointer: the WAL hook, run by the writer thread inside each commit, and the
// thread that copies committed WAL pages into the database beside the commits. That thread owns
// checkpoint_db_; checkpoint_mu_ guards the hook's wake-up, commit_mu_ keeps out commits.
#include <algorithm>
#include <climits>

#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_store.h"

namespace callgate {

int SqliteStore::OnWalCommit(void* arg, sqlite3*, const char*, int pages) {
  auto* store = static_cast<SqliteStore*>(arg);
  store->wal_pages_ = pages;
  if (pages >= store->options_.checkpoint_pages) {
    {
      std::lock_guard lock(store->checkpoint_mu_);
      store->checkpoint_due_ = true;
    }
    store->checkpoint_cv_.notify_one();
  }
  return SQLITE_OK;
}

// Checkpoints run beside the commits (PASSIVE: they copy what is committed and block nobody), so
// a commit never waits for one; the default, a checkpoint inside the commit that fills the WAL,
// held every write queued behind it for as long as copying and syncing 4 MiB takes. SQLite
// starts the WAL over only when a transaction begins with every frame copied, which commits
// arriving during the copy prevent; so passes repeat until little is left, and the last one
// holds commit_mu_: the next commit then finds the WAL fully copied and writes it from the start
// (unless a reader still reads frames of it; then the next round does).
void SqliteStore::CheckpointerLoop() {
  sqlite3* db = checkpoint_db_->raw();
  auto pass = [db] {
    int log = 0;
    int copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    return rc == SQLITE_OK ? log - copied : -1;  // frames left to copy; -1: busy or failed
  };
  const int small = std::max(1, options_.checkpoint_pages / 16);
  for (;;) {
    {
      std::unique_lock lock(checkpoint_mu_);
      checkpoint_cv_.wait(lock, [&] { return checkpoint_stopping_ || checkpoint_due_; });
      if (checkpoint_stopping_) return;
      checkpoint_due_ = false;
    }
    // Passes continue while what is left shrinks fast; the last one, under commit_mu_, copies
    // what the commits of the one before added (even a pass that copied everything ran beside
    // a commit that is now adding frames).
    int left = pass();
    for (int before = INT_MAX; left > small && left < before / 2;) {
      before = left;
      left = pass();
    }
    std::lock_guard commits(commit_mu_);
    pass();
  }
}

}  // namespace callgate
