// PairIds: the pair ids a SqliteStore hands out to pairs it writes for the first time, reserved in
// blocks from meta.next_pair_id. Owned by the store; writer thread only (not thread-safe).
#pragma once

#include <cstdint>

#include "core/store_error.h"
#include "core/user_id.h"

namespace callgate {

class SqliteDb;

// Pair ids come from meta.next_pair_id in blocks: a store reserves kBlock ids at once by advancing
// it, inside the batch that first needs one, and owns the block only once that batch commits (a
// rolled-back reservation is forgotten with the batch). So most commits that create pairs touch no
// meta page, and two processes never hand out the same id. Ids a store does not use before it
// closes are skipped: pair ids have gaps.
//
// Contract: per transaction, Begin() a Batch after BEGIN IMMEDIATE and Allocate() from it; once
// the transaction has committed, Commit(batch). A batch that rolls back is simply dropped: the
// store keeps the ids it had, as the file does.
class PairIds {
 public:
  static constexpr std::int64_t kBlock = 1024;

  // The ids handed out inside one transaction, adopted by Commit.
  class Batch {
   public:
    // The next id for a new pair; takes a new block from `db`'s open transaction when the one in
    // hand is used up. Call it outside any savepoint that may be rolled back: the reservation must
    // last as long as the transaction, as this Batch remembers it until then.
    StoreResult<std::int64_t> Allocate(SqliteDb& db);

   private:
    friend class PairIds;
    Batch(std::int64_t next, std::int64_t end) : next_(next), end_(end) {}
    std::int64_t next_;
    std::int64_t end_;
  };

  Batch Begin() const { return Batch(next_, end_); }
  void Commit(const Batch& batch) {
    next_ = batch.next_;
    end_ = batch.end_;
  }

 private:
  // Ids [next_, end_) are reserved for this store.
  std::int64_t next_ = 0;
  std::int64_t end_ = 0;
};

}  // namespace callgate
