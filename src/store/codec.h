// Compact binary encoding of a PairState for storage (varints, one version byte). Any backend
// stores the same bytes, so a state can move between backends. Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/ledger.h"

namespace callgate {

std::string EncodePairState(const PairState& state);
// nullopt if the bytes are not a state this version can read.
std::optional<PairState> DecodePairState(std::string_view bytes);

// One event, for the history (so history can be folded again into notices).
std::string EncodeEvent(const Event& event);
std::optional<Event> DecodeEvent(std::string_view bytes);

}  // namespace callgate
