// GET .../callPermissions/history: the pair's applied events newest first, with the derived
// notices (reconsider shown, auto-revoked, expired) folded from the whole history — so any
// delivery order of the same events reads the same history.
#include <algorithm>
#include <charconv>

#include "api/api.h"
#include "api/json.h"
#include "core/encoding.h"
#include "http/url.h"

namespace callgate {

namespace http = boost::beast::http;

namespace {

constexpr int kDefaultPage = 50;
constexpr int kMaxPage = 500;
constexpr int kMaxEvents = 100000;  // a pair's history beyond this is not read back

struct Item {
  Instant at;
  bool derived = false;  // a notice: at equal times it follows (reads above) its cause
  std::string key;       // unique; orders items with equal times
  std::string_view kind;
  std::string_view source;
  std::string upstream_id;
  const Event* event = nullptr;  // null for derived notices
};

bool NewerFirst(const Item& a, const Item& b) {
  return std::tie(a.at, a.derived, a.key) > std::tie(b.at, b.derived, b.key);
}

// Cursors are opaque: hex of "<millis>|<key>" of the last item returned.
std::string EncodeCursor(const Item& item) {
  const std::string raw =
      std::to_string(ToUnixMillis(item.at)) + (item.derived ? "|d|" : "|e|") + item.key;
  return HexEncode(raw);
}

std::optional<Item> DecodeCursor(std::string_view hex) {
  const std::optional<std::string> decoded = HexDecode(hex);
  if (!decoded) return std::nullopt;
  const std::string& raw = *decoded;
  const auto bar = raw.find('|');
  std::int64_t millis = 0;
  if (bar == std::string::npos || raw.size() < bar + 3 || raw[bar + 2] != '|' ||
      (raw[bar + 1] != 'd' && raw[bar + 1] != 'e') ||
      std::from_chars(raw.data(), raw.data() + bar, millis).ptr != raw.data() + bar) {
    return std::nullopt;
  }
  Item item;
  item.at = FromUnixMillis(millis);
  item.derived = raw[bar + 1] == 'd';
  item.key = raw.substr(bar + 3);
  return item;
}

std::optional<int> PageSize(const std::optional<std::string>& text) {
  if (!text) return kDefaultPage;
  int value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < 1 || value > kMaxPage) {
    return std::nullopt;
  }
  return value;
}

std::string_view DirectionName(CallDirection direction) {
  return direction == CallDirection::kUserInitiated ? "USER_INITIATED" : "BUSINESS_INITIATED";
}

// The event's particulars, as a JSON object.
void Details(JsonWriter& json, const Event& event) {
  json.BeginObject();
  struct Visitor {
    JsonWriter& json;
    void Authorization(const std::string& id) {
      if (!id.empty()) json.Key("authorizationId").String(id);
    }
    void operator()(const PermissionRequested&) {}
    void operator()(const PermissionReplied& e) {
      json.Key("responseSource")
          .String(e.source == ReplySource::kAutomatic ? "automatic" : "user_action");
      if (e.accepted) json.Key("isPermanent").Bool(e.permanent);
      if (e.expires_at) json.Key("expirationTime").String(FormatCentis(*e.expires_at));
    }
    void operator()(const CallConnected& e) {
      json.Key("direction").String(DirectionName(e.direction));
      Authorization(e.authorization_id);
    }
    void operator()(const CallTerminated& e) {
      json.Key("direction").String(DirectionName(e.direction)).Key("pickedUp").Bool(e.picked_up);
      if (e.started_at) json.Key("startTime").String(FormatMillis(*e.started_at));
      Authorization(e.authorization_id);
    }
    void operator()(const CallRejected& e) { Authorization(e.authorization_id); }
    void operator()(const CallbackGranted&) {}
    void operator()(const CallAuthorized& e) {
      json.Key("holdExpirationTime").String(FormatMillis(e.expires_at));
    }
  };
  std::visit(Visitor{json}, event);
  json.EndObject();
}

}  // namespace

HttpResponse Api::GetHistory(const HttpRequest& request, std::string_view subaccount_id,
                             std::string_view channel_id, std::string_view query, Instant now) {
  const auto limit = PageSize(QueryParam(query, "limit"));
  const auto cursor_text = QueryParam(query, "cursor");
  const auto cursor = cursor_text ? DecodeCursor(*cursor_text) : std::nullopt;
  const bool bad_paging = !limit || (cursor_text && !cursor);
  auto pair = ResolvePair(request, subaccount_id, channel_id, QueryParam(query, "destination"), now,
                          bad_paging ? std::optional(ApiError::kMalformedRequest) : std::nullopt);
  if (!pair) return ErrorResponse(pair.error(), now);

  auto stored = store_.LoadHistory(pair->key, 0, kMaxEvents);
  if (!stored) return ErrorResponse(ApiError::kInternal, now);

  PairState whole;  // every recorded event, uncompacted: notices over the whole history
  std::vector<Item> items;
  items.reserve(stored->size());
  for (const HistoryEntry& entry : *stored) {
    (void)Merge(whole, entry.event);
    items.push_back({EventTime(entry.event), false, entry.event_key, EventKind(entry.event),
                     EventSourceName(entry.source), EventId(entry.event), &entry.event});
  }
  for (const Notice& notice : Notices(whole, now, pair->channel->limits)) {
    items.push_back({notice.at, true, std::string(NoticeName(notice.kind)) + ":" + notice.cause_id,
                     NoticeName(notice.kind), "derived", notice.cause_id, nullptr});
  }
  std::sort(items.begin(), items.end(), NewerFirst);

  auto first = items.begin();
  if (cursor) first = std::upper_bound(items.begin(), items.end(), *cursor, NewerFirst);
  const auto last = first + std::min<std::ptrdiff_t>(*limit, items.end() - first);

  std::string body;
  JsonWriter json(body);
  json.BeginObject().Key("destination").String(pair->key.destination).Key("entries").BeginArray();
  for (auto it = first; it != last; ++it) {
    json.BeginObject()
        .Key("time")
        .String(FormatMillis(it->at))
        .Key("kind")
        .String(it->kind)
        .Key("source")
        .String(it->source);
    if (!it->upstream_id.empty()) json.Key("id").String(it->upstream_id);
    if (it->event) {
      json.Key("details");
      Details(json, *it->event);
    }
    json.EndObject();
  }
  json.EndArray();
  if (last != items.end()) json.Key("nextCursor").String(EncodeCursor(*(last - 1)));
  json.EndObject();
  return JsonResponse(http::status::ok, std::move(body));
}

}  // namespace callgate
