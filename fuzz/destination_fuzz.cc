// destination_fuzz: a request target as the API reads it -> SplitTarget, PathSegments, QueryParam
// (src/http/url.h: percent-decoding, '+' as space) -> NormalizeDestination (src/pairs, the
// libphonenumber-backed E.164 check); the raw input is also normalized directly.
// Asserts: a normalized destination is '+' then 2-15 digits, the first 1-9, and normalizes to
// itself; path segments are non-empty and slash-free; a query parameter read twice reads alike.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "http/url.h"
#include "pairs/destination.h"

namespace callgate {
namespace {

using fuzz::Check;

void CheckNormalized(const std::optional<std::string>& raw) {
  const auto user = NormalizeDestination(raw);
  if (!user) {
    Check(user.error() == DestinationError::kMissing ? !raw || raw->empty() : raw && !raw->empty(),
          "kMissing for a present destination, or kInvalid for an absent one");
    return;
  }
  const std::string& text = user->text();
  Check(text.size() >= 3 && text.size() <= 16 && text[0] == '+' && text[1] >= '1' &&
            text[1] <= '9' && text.find_first_not_of("0123456789", 1) == std::string::npos,
        "a normalized destination is not E.164");
  const auto again = NormalizeDestination(text);
  Check(again && *again == *user, "a normalized destination does not normalize to itself");
}

}  // namespace
}  // namespace callgate

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callgate;  // NOLINT(google-build-using-namespace)
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckNormalized(std::string(input));

  const Target target = SplitTarget(input);
  Check(target.path.size() + target.query.size() <= input.size(), "target split grew");
  for (const std::string_view segment : PathSegments(target.path)) {
    Check(!segment.empty() && segment.find('/') == std::string_view::npos, "bad path segment");
  }
  const std::optional<std::string> destination = QueryParam(target.query, "destination");
  Check(destination == QueryParam(target.query, "destination"), "QueryParam is not pure");
  CheckNormalized(destination);
  return 0;
}
