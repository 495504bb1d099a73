// Compact binary encodings of what the stores keep: a PairState (one version byte, varints, times
// as deltas) and a history event split into its de-duplication key, its time and its details.
// Any backend stores the same bytes, so a state can move between backends. Pure; thread-safe.
//
// Ids (request ids, wamids, wacids, authorisation ids) are most of the bytes, so they are packed
// losslessly: a lower-case UUID becomes its 16 bytes, "wamid."/"wacid." followed by canonical
// base64 becomes the decoded bytes, anything else stays as it is. Each packed id names its form,
// and each form decodes to exactly one text, so two different ids never pack alike: packing
// cannot merge facts or history entries (no hashing, no collisions), and every id reads back
// exactly as it arrived.
//
// Every number the format stores (the version, event tags, id forms, flag bits) is named, once,
// in store/codec_format.h; none follows the order of a C++ type.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/ledger.h"
#include "store/pair_store.h"

namespace callgate {

std::string EncodePairState(const PairState& state);
// Idempotency records as storage layout 5 kept them, inside the state: by "<endpoint>:<key>".
// Layout 6 keeps them beside the state; the encoder writes none.
using EmbeddedRecords = std::vector<std::pair<std::string, IdempotencyRecord>>;
// nullopt if the bytes are not a state this version can read. A state with embedded records
// (layout 5) hands them to `embedded`; without it, such a state is refused, never read as if it
// had none.
std::optional<PairState> DecodePairState(std::string_view bytes,
                                         EmbeddedRecords* embedded = nullptr);

// A history event is stored as three parts:
// - the key: the event's kind and packed id, the same bytes exactly when EventKey(event) is the
//   same (the store's per-pair de-duplication key);
// - its time, EventTime(event), kept apart so the store can keep the earliest version;
// - the details: every other field (empty for a permission request).
std::string EncodeEventKey(const Event& event);
std::string EncodeEventDetails(const Event& event);
// nullopt if the parts are not an event this version can read.
std::optional<Event> DecodeEvent(std::string_view key, Instant at, std::string_view details);

// One id, packed (exposed for tests): a form byte, then the form's bytes.
std::string PackId(std::string_view id);
std::optional<std::string> UnpackId(std::string_view packed);

}  // namespace callgate
