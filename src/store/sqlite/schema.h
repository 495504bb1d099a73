// The storage layout of a SqliteStore file: its version, how every connection to it is opened and
// configured, and the guard that creates the tables in a new file and refuses a file of another
// layout. Stateless and thread-safe; a connection returned is its caller's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/time.h"
#include "store/sqlite/sqlite_db.h"

namespace callgate {

// Bump on any change to the tables or to the blob encodings (store/codec.cc).
// 4: pairs carry an integer pair_id; history is keyed by (pair_id, packed event key), its event
//    blob holds neither the id nor the time; packed ids and delta-coded times in every blob.
// 5: the notices compaction finalizes are recorded in the history (event tag 7); a layout-4 file
//    is upgraded in place (upgrade.h).
// 6: idempotency records in their own table, no longer in the pair states; a layout-5 file is
//    upgraded in place.
// 7: user_links (ids of one user, docs/rules.md §7); a layout-6 file gains the empty table.
// 8: notify_targets and outbox (notifications, issue 13); a layout-7 file gains the empty tables.
inline constexpr std::int64_t kSchemaVersion = 8;

// History entries are numbered by `seq`: microseconds since 2025-01-01T00:00:00Z (6 bytes on
// disk, not 8, until 2029), never behind the clock (see SqliteStore::NextSeq).
inline constexpr std::int64_t kSeqEpochMicros = 1'735'689'600'000'000;

// SQL for the link scope of channel ?1: its account, or "#" + ?1 for a channel the file does not
// know (as MemoryStore); and for the canonical id of user ?2 in it (the user's own id when it is
// linked to none). Pair rows exist for canonical ids only.
#define CALLGATE_SQL_SCOPE                                                                      \
  "COALESCE((SELECT s.account_id FROM channels c JOIN subaccounts s ON s.id = c.subaccount_id " \
  "WHERE c.id = ?1), '#' || ?1)"
#define CALLGATE_SQL_CANONICAL                                                   \
  "COALESCE((SELECT canonical FROM user_links WHERE scope = " CALLGATE_SQL_SCOPE \
  " AND alias = ?2), ?2)"

// Opens (creating if needed) one connection to the database at `path`, configured as every
// connection of a SqliteStore is (WAL, synchronous=FULL, no automatic checkpoints). Error: a
// readable reason.
Result<std::unique_ptr<SqliteDb>, std::string> OpenConnection(const std::string& path);

// The storage-layout guard: creates the tables in a new file and stamps it with kSchemaVersion;
// upgrades a layout-4 to -7 file in place (at `now`), in one transaction; refuses a file of any
// other layout. `db` is a connection to `path` outside any transaction. Error: a readable reason.
Result<Ok, std::string> EnsureLayout(SqliteDb& db, const std::string& path, Instant now);

}  // namespace callgate
