#include "pairs/status.h"

namespace callgate {

StoreResult<StatusView> ReadStatus(PairStore& store, const PairRef& pair, Instant now) {
  auto state = store.LoadPair(pair.key);
  if (!state) return state.error();
  return View(*state, now, pair.limits);
}

}  // namespace callgate
