// Block reservation for PairIds (pair_ids.h): one UPDATE of meta.next_pair_id per block, in the
// caller's transaction. Writer thread only.
#include "store/sqlite/pair_ids.h"

#include "store/sqlite/sqlite_db.h"

namespace callgate {

StoreResult<std::int64_t> PairIds::Batch::Allocate(SqliteDb& db) {
  if (next_ == end_) {
    // All changes of an UPDATE … RETURNING happen at its first step.
    Stmt reserve(db,
                 "UPDATE meta SET value = value + ?1 WHERE key = 'next_pair_id' RETURNING value");
    const int rc = reserve.Bind(1, kBlock).Step();
    if (rc != SQLITE_ROW) return StoreErrorOf(rc);
    end_ = reserve.Int(0);
    next_ = end_ - kBlock;
    if (next_ <= 0) return StoreError::kInvalid;
  }
  return next_++;
}

}  // namespace callgate
