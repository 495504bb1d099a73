// The use cases on one pair (channel, user), below HTTP and above the store: plain structs in,
// typed results out. This header has what they share (PairRef) and the status read; reserve.h,
// delivery.h and history.h have the others. Stateless functions over a PairStore; thread-safe.
#pragma once

#include "core/ledger.h"
#include "core/limits.h"
#include "store/pair_store.h"

namespace callgate {

// A pair a request resolved to, with the limits of its channel.
struct PairRef {
  PairKey key;
  LimitsProfile limits = LimitsProfile::kProduction;
};

// The pair as the status endpoint shows it at `now`.
StoreResult<StatusView> ReadStatus(PairStore& store, const PairRef& pair, Instant now);

// The same without blocking (PairStore::LoadPairAsync): `done` runs once, inline or on a store
// thread. For stores whose reads are remote; a local store's blocking read is cheaper.
using StatusRead = std::function<void(StoreResult<StatusView>)>;
void ReadStatusAsync(PairStore& store, const PairRef& pair, Instant now, StatusRead done);

}  // namespace callgate
