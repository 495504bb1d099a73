// The fixed Lua scripts RedisClusterStore runs (EVALSHA). None holds a rule of the ledger: the
// C++ core decides, the scripts only compare version tokens, keep the earliest version of each
// history entry, trim what the state's horizon folded away and write what they are given, each in
// one atomic step on one slot. Their arguments are documented beside their text (scripts.cc).
// Immutable after first use; thread-safe.
#pragma once

#include "redis/cluster_client.h"

namespace callgate::redis_scripts {

// A pair's state, token, tombstone and one idempotency record; with mode "h", its history too.
const redis::Script& ReadPair();
// The version-checked commit of one pair update (or a check that the pair did not change).
const redis::Script& CommitPair();
// The notification outbox (outbox.cc): lease the ready items of one slot's pairs; settle one;
// count the unsettled ones of one slot.
const redis::Script& ClaimOutbox();
const redis::Script& SettleOutbox();
const redis::Script& CountOutbox();
// A link's merge: replaces a pair's history with the folded one, merges records (version-checked).
const redis::Script& ReplacePair();
// A link's tombstone: the pair becomes a pointer to its user's canonical id (version-checked).
const redis::Script& TombstonePair();
// A link's first step (the link map, pending) and last step (pending marks cleared).
const redis::Script& BeginLink();
const redis::Script& EndLink();
// Every tenant change (one script, an operation name first) and the tenant snapshot.
const redis::Script& TenantWrite();
const redis::Script& LoadTenants();

}  // namespace callgate::redis_scripts
