// In-place upgrades of older storage layouts, run by the layout guard (schema.h) inside its
// transaction, so a file is upgraded whole or not at all. Not thread-safe: one connection.
#pragma once

#include <string>

#include "core/result.h"
#include "core/store_error.h"
#include "core/time.h"
#include "store/sqlite/sqlite_db.h"

namespace callgate {

// Layout 4 -> 5. Layout 5 records in the history the notices that compaction finalized
// (NoticeFinalized): a layout-4 file derived them from the whole history at every read. For every
// compacted pair, this records the notices its whole history gives that its compacted state no
// longer does — exactly what compaction would have recorded. Error: a readable reason.
Result<Ok, std::string> UpgradeLayout4To5(SqliteDb& db, Instant now);

// Layout 5 -> 6. Layout 6 keeps idempotency records in their own table: this moves every pair's
// records out of its state into the table (which the schema has created) and rewrites the state
// without them. Error: a readable reason.
Result<Ok, std::string> UpgradeLayout5To6(SqliteDb& db);

}  // namespace callgate
