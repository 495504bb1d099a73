// Request-target helpers: split path and query, percent-decode, read one query parameter.
// Pure; thread-safe.
#pragma once

#include <boost/container/small_vector.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate {

struct Target {
  std::string_view path;
  std::string_view query;  // without '?'
};

Target SplitTarget(std::string_view target);
// Percent-decodes; '+' becomes ' ' (form encoding). nullopt on a malformed escape.
std::optional<std::string> PercentDecode(std::string_view text);
// The first value of `name` in the query, decoded. nullopt if absent; "" if present but empty.
// A malformed escape reads as present with the raw text, so validation rejects it.
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);
// Path split on '/', empty segments dropped. Held inline up to 12 (the API's paths have at most
// 9): splitting allocated four times per request while the vector grew.
using Segments = boost::container::small_vector<std::string_view, 12>;
Segments PathSegments(std::string_view path);

}  // namespace callgate
