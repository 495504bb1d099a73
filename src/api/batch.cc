// POST .../callPermissions/batch: the body read once, the request's auth and tenancy checked once,
// then each user read as the status GET reads it (pairs/status.h ReadStatus) and answered with
// the GET's own body (StatusBody) after its id, or with the error the GET would give for it.
#include "api/batch.h"

#include <charconv>

#include "api/api.h"
#include "api/json.h"
#include "core/json_string.h"
#include "pairs/destination.h"

namespace callgate {

namespace http = boost::beast::http;

namespace {

// Appends the strings of `array` (absent: none) to `out`; false if it is not an array of strings.
bool ReadStrings(simdjson::dom::object object, std::string_view field,
                 std::vector<std::string_view>& out, std::size_t& total) {
  simdjson::dom::element value;
  if (object.at_key(field).get(value) != simdjson::SUCCESS) return true;  // absent
  simdjson::dom::array array;
  if (value.get(array) != simdjson::SUCCESS) return false;
  // size() saturates at 0xFFFFFF, well above the bound: counted before anything is read.
  total += array.size();
  if (total > kMaxBatchItems) return true;
  out.reserve(array.size());
  for (simdjson::dom::element item : array) {
    std::string_view text;
    if (item.get(text) != simdjson::SUCCESS) return false;
    out.push_back(text);
  }
  return true;
}

// The bytes of one answered item at most but for limitExpirationTimes, so that the answer's
// buffer is allocated once: a status body (~300–430 bytes) with its id. (At 384, a batch of
// temporary grants outgrew it and was copied whole once more.)
constexpr std::size_t kItemBytes = 512;

// `{"<field>":"<value>"` (the item as given), the start of each item of the answer.
void OpenItem(std::string& out, std::string_view field, std::string_view value) {
  out.append("{\"").append(field).append("\":");
  AppendJsonString(out, value);
}

// The rest of an item the GET would refuse: its code and message; no errorId, as the batch
// itself succeeded.
void AppendRefusal(std::string& out, DestinationError refusal) {
  const ErrorDescription error = Describe(ErrorOf(refusal));
  char code[16];
  const auto [end, ec] = std::to_chars(code, code + sizeof code, error.code);
  out.append(",\"code\":").append(code, end).append(",\"message\":");
  AppendJsonString(out, error.message);
  out.push_back('}');
}

// The rest of an item read: the GET's body, byte for byte, its members after the item's id
// (`{"destination":"…",` then the body without its `{`).
void AppendStatus(std::string& out, const StatusView& view) {
  out.push_back(',');
  AppendStatusMembers(out, view);
}

}  // namespace

Result<BatchBody, ApiError> ParseBatchBody(simdjson::dom::parser& parser, const std::string& body) {
  simdjson::dom::object object;
  if (parser.parse(body).get(object) != simdjson::SUCCESS) return ApiError::kMalformedRequest;
  BatchBody out;
  std::size_t total = 0;
  if (!ReadStrings(object, "destinations", out.destinations, total) ||
      !ReadStrings(object, "channelUserIds", out.channel_user_ids, total)) {
    return ApiError::kMalformedRequest;
  }
  if (total > kMaxBatchItems) return ApiError::kBatchTooLarge;
  if (total == 0) return ApiError::kBatchEmpty;
  return out;
}

HttpResponse Api::GetStatusBatch(const HttpRequest& request, std::string_view subaccount_id,
                                 std::string_view channel_id, Instant now) {
  // The request as a whole, in the order of the other pair endpoints: key, subaccount, body,
  // channel. The body is read only for an authenticated caller.
  std::shared_ptr<const TenantSnapshot> tenants = stores_.tenants.Current();
  auto sub = OwnedSubaccount(request, tenants, subaccount_id, now);
  if (!sub) return ErrorResponse(sub.error(), now);
  thread_local simdjson::dom::parser parser;  // keeps its buffers between requests
  auto body = ParseBatchBody(parser, request.body());
  if (!body) return ErrorResponse(body.error(), now);
  const Channel* channel = OwnedChannel(*tenants, **sub, channel_id);
  if (!channel) return ErrorResponse(ApiError::kChannelNotFound, now);

  std::string out;
  out.reserve(16 + body->size() * kItemBytes);
  out.append("{\"results\":[");
  // One PairRef for every item: only its user changes.
  PairRef pair{{channel->id, UserId::Phone({})}, channel->limits};
  std::optional<std::string> given(std::in_place);  // the item as NormalizeUser takes it, reused
  bool first = true;
  // Appends the item `value`, a destination or a channelUserId, or returns the store's error,
  // which fails the batch as it fails the GET.
  auto answer = [&](bool is_destination, std::string_view value) -> StoreStatus {
    if (!first) out.push_back(',');
    first = false;
    OpenItem(out, is_destination ? "destination" : "channelUserId", value);
    *given = value;
    auto user =
        is_destination ? NormalizeUser(given, std::nullopt) : NormalizeUser(std::nullopt, given);
    if (!user) {
      AppendRefusal(out, user.error());  // the GET's code and message for this value
      return Ok{};
    }
    pair.key.user = std::move(*user);
    auto view = ReadStatus(stores_.pairs, pair, now);
    if (!view) return view.error();
    AppendStatus(out, *view);
    return Ok{};
  };
  // Destinations first, then channelUserIds, each in request order.
  for (const std::string_view value : body->destinations) {
    if (auto status = answer(true, value); !status.ok()) {
      return StoreFailure("reading a batch of statuses", status.error(), now);
    }
  }
  for (const std::string_view value : body->channel_user_ids) {
    if (auto status = answer(false, value); !status.ok()) {
      return StoreFailure("reading a batch of statuses", status.error(), now);
    }
  }
  out.append("]}");
  return JsonResponse(http::status::ok, std::move(out));
}

// The same with every user's read in flight at once (PairStore::LoadPairsAsync), answered when
// the last one is in.
void Api::GetStatusBatchAsync(const HttpRequest& request, std::string_view subaccount_id,
                              std::string_view channel_id, Instant now, Respond respond) {
  std::shared_ptr<const TenantSnapshot> tenants = stores_.tenants.Current();
  auto sub = OwnedSubaccount(request, tenants, subaccount_id, now);
  if (!sub) return respond(ErrorResponse(sub.error(), now));
  thread_local simdjson::dom::parser parser;
  auto body = ParseBatchBody(parser, request.body());
  if (!body) return respond(ErrorResponse(body.error(), now));
  const Channel* channel = OwnedChannel(*tenants, **sub, channel_id);
  if (!channel) return respond(ErrorResponse(ApiError::kChannelNotFound, now));

  // Each item as given (copied: the parser's document is this thread's) and, once validated,
  // its user's place among the reads, or its refusal.
  struct Item {
    bool is_destination;
    std::string value;
    std::optional<DestinationError> refusal;
  };
  std::vector<Item> items;
  items.reserve(body->size());
  std::vector<PairKey> keys;
  keys.reserve(body->size());
  std::optional<std::string> given(std::in_place);
  auto plan = [&](bool is_destination, std::string_view value) {
    *given = value;
    auto user =
        is_destination ? NormalizeUser(given, std::nullopt) : NormalizeUser(std::nullopt, given);
    Item& item = items.emplace_back(Item{is_destination, std::string(value), std::nullopt});
    if (!user) {
      item.refusal = user.error();
      return;
    }
    keys.push_back({channel->id, std::move(*user)});
  };
  // Destinations first, then channelUserIds, each in request order.
  for (const std::string_view value : body->destinations) plan(true, value);
  for (const std::string_view value : body->channel_user_ids) plan(false, value);

  stores_.pairs.LoadPairsAsync(
      std::move(keys), [items = std::move(items), limits = channel->limits, now,
                        respond = std::move(respond)](std::vector<StoreResult<PairState>> states) {
        std::string out;
        out.reserve(16 + items.size() * kItemBytes);
        out.append("{\"results\":[");
        std::size_t read = 0;
        for (std::size_t i = 0; i < items.size(); ++i) {
          const Item& item = items[i];
          if (i > 0) out.push_back(',');
          OpenItem(out, item.is_destination ? "destination" : "channelUserId", item.value);
          if (item.refusal) {
            AppendRefusal(out, *item.refusal);
            continue;
          }
          const StoreResult<PairState>& state = states[read++];
          if (!state) {
            // As the GET fails, the batch fails.
            return respond(StoreFailure("reading a batch of statuses", state.error(), now));
          }
          AppendStatus(out, View(*state, now, limits));
        }
        out.append("]}");
        respond(JsonResponse(http::status::ok, std::move(out)));
      });
}

}  // namespace callgate
