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
inline constexpr std::int64_t kSchemaVersion = 6;

// History entries are numbered by `seq`: microseconds since 2025-01-01T00:00:00Z (6 bytes on
// disk, not 8, until 2029), never behind the clock (see SqliteStore::NextSeq).
inline constexpr std::int64_t kSeqEpochMicros = 1'735'689'600'000'000;

// Opens (creating if needed) one connection to the database at `path`, configured as every
// connection of a SqliteStore is (WAL, synchronous=FULL, no automatic checkpoints). Error: a
// readable reason.
Result<std::unique_ptr<SqliteDb>, std::string> OpenConnection(const std::string& path);

// The storage-layout guard: creates the tables in a new file and stamps it with kSchemaVersion;
// upgrades a layout-4 or -5 file in place (at `now`), in one transaction; refuses a file of any
// other layout. `db` is a connection to `path` outside any transaction. Error: a readable reason.
Result<Ok, std::string> EnsureLayout(SqliteDb& db, const std::string& path, Instant now);

}  // namespace callgate
