#include "pairs/status.h"

namespace callgate {

StoreResult<StatusView> ReadStatus(PairStore& store, const PairRef& pair, Instant now) {
  auto state = store.LoadPair(pair.key);
  if (!state) return state.error();
  return View(*state, now, pair.limits);
}

void ReadStatusAsync(PairStore& store, const PairRef& pair, Instant now, StatusRead done) {
  store.LoadPairAsync(
      pair.key, [limits = pair.limits, now, done = std::move(done)](StoreResult<PairState> state) {
        if (!state) return done(state.error());
        done(View(*state, now, limits));
      });
}

}  // namespace callgate
