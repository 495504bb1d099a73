// webhook_fuzz: bytes -> ParseMetaWebhook (src/ingest) -> the parsed items applied to a pair
// ledger (src/core: Apply with compaction, View, Notices, both limit profiles; callback grants as
// routing adds them), the resulting state through the storage codec.
// Asserts: parsed event times lie in [kEarliestTime, now] and expirations within now +
// kExpirySlack; applying every event a second time (a redelivery) changes nothing; merging the
// events in reverse order gives the state forward order gives; the state and each event survive
// an encode/decode round trip. The last two checks need events that are the same whenever their
// EventKey is: an upstream id repeated at another time is not one event delivered twice, and
// compaction may fold the earlier fact away and take the later one as new (see fuzz/README.md).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/ledger.h"
#include "fuzz_check.h"
#include "ingest/meta_webhook.h"
#include "ingest/route.h"
#include "store/codec.h"

namespace callgate {
namespace {

const Instant kNow = FromUnixSeconds(1'769'933'550);  // 2026-02-01T08:12:30Z

using fuzz::Check;

void CheckEventRoundTrip(const Event& event) {
  const std::string key = EncodeEventKey(event);
  const std::string details = EncodeEventDetails(event);
  const auto decoded = DecodeEvent(key, EventTime(event), details);
  Check(decoded.has_value(), "an encoded event does not decode");
  Check(EventKey(*decoded) == EventKey(event) && EventTime(*decoded) == EventTime(event) &&
            EncodeEventKey(*decoded) == key && EncodeEventDetails(*decoded) == details,
        "an event does not round-trip through the codec");
}

void CheckItem(const WebhookItem& item) {
  const Instant at = EventTime(item.event);
  Check(at >= kEarliestTime && at <= kNow, "an event time outside [kEarliestTime, now]");
  if (const auto* reply = std::get_if<PermissionReplied>(&item.event)) {
    Check(!reply->expires_at ||
              (*reply->expires_at >= kEarliestTime && *reply->expires_at <= kNow + kExpirySlack),
          "an expiration outside [kEarliestTime, now + kExpirySlack]");
  }
  if (const auto* terminated = std::get_if<CallTerminated>(&item.event)) {
    Check(!terminated->started_at || *terminated->started_at <= kNow, "a start time after now");
  }
  Check(!item.phone_number_id.empty() && !item.user.empty(), "an item without ids");
}

void ApplyAll(const std::vector<Event>& events, LimitsProfile profile, bool check_redelivery) {
  PairState state;
  std::vector<Notice> finalized;
  for (const Event& event : events) (void)Apply(state, event, profile, &finalized);
  (void)View(state, kNow, profile);
  (void)Notices(state, kNow, profile);
  for (const Event& event : events) {
    Check(Apply(state, event, profile) != ApplyOutcome::kApplied || !check_redelivery,
          "an event applied twice changed the state twice");
  }
  const auto decoded = DecodePairState(EncodePairState(state));
  Check(decoded && *decoded == state, "a state does not round-trip through the codec");
}

}  // namespace
}  // namespace callgate

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callgate;  // NOLINT(google-build-using-namespace)
  const auto parsed =
      ParseMetaWebhook(std::string_view(reinterpret_cast<const char*>(data), size), kNow);
  if (!parsed) return 0;
  std::vector<Event> events;
  for (const WebhookItem& item : parsed->items) {
    CheckItem(item);
    CheckEventRoundTrip(item.event);
    events.push_back(item.event);
    // As routing adds it on a channel with callback permission enabled.
    if (item.user_initiated_call) events.push_back(CallbackGrantFor(item.event));
  }
  // Whether every EventKey names one event: the same time and details wherever it repeats.
  std::map<std::string, std::pair<Instant, std::string>> by_key;
  bool one_event_per_key = true;
  for (const Event& event : events) {
    const std::pair<Instant, std::string> value{EventTime(event), EncodeEventDetails(event)};
    const auto [it, inserted] = by_key.try_emplace(EventKey(event), value);
    if (!inserted && it->second != value) one_event_per_key = false;
  }
  ApplyAll(events, LimitsProfile::kProduction, one_event_per_key);
  ApplyAll(events, LimitsProfile::kSandbox, one_event_per_key);

  // Order: merging (no compaction) is order-free.
  if (one_event_per_key) {
    PairState forward;
    PairState backward;
    for (const Event& event : events) (void)Merge(forward, event);
    for (auto it = events.rbegin(); it != events.rend(); ++it) (void)Merge(backward, *it);
    Check(forward == backward, "merging in reverse order gives another state");
  }
  return 0;
}
