// The body of POST .../callPermissions/batch: {"destinations": [...], "channelUserIds": [...]},
// read once with simdjson into views of the parser's document, bounded before any item is looked
// at. Pure; thread-compatible (the parser is the caller's).
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <string_view>
#include <vector>

#include "api/errors.h"
#include "core/result.h"

namespace callgate {

// How many users one batch may name, destinations and channelUserIds together.
inline constexpr std::size_t kMaxBatchItems = 1000;

// The users a batch names, as given (not yet validated), each list in its request order. The
// views point into the parser's document: valid until the parser's next parse.
struct BatchBody {
  std::vector<std::string_view> destinations;
  std::vector<std::string_view> channel_user_ids;
  std::size_t size() const { return destinations.size() + channel_user_ids.size(); }
};

// The batch `body` names, or why the request as a whole is refused: kMalformedRequest for
// anything but a JSON object whose `destinations` and `channelUserIds`, each optional, are arrays
// of strings; kBatchEmpty when they hold no item; kBatchTooLarge for more than kMaxBatchItems.
// Other members are ignored, as the reservation POSTs ignore theirs.
Result<BatchBody, ApiError> ParseBatchBody(simdjson::dom::parser& parser, const std::string& body);

}  // namespace callgate
