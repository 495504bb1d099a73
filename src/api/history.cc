// GET .../callPermissions/history: the query parsed, a page read by pairs/history.h, rendered
// as JSON newest first.
#include "pairs/history.h"

#include <charconv>

#include "api/api.h"
#include "api/json.h"
#include "http/url.h"

namespace callgate {

namespace http = boost::beast::http;

namespace {

std::optional<int> PageSize(const std::optional<std::string>& text) {
  if (!text) return kDefaultHistoryPage;
  int value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < 1 ||
      value > kMaxHistoryPage) {
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
    void operator()(const NoticeFinalized&) {}  // read as a derived item, without details
    void operator()(const UserIdChanged& e) {
      json.Key("previousChannelUserId").String(e.previous);
    }
    void operator()(const CallAuthorized& e) {
      json.Key("holdExpirationTime").String(FormatMillis(e.expires_at));
    }
  };
  std::visit(Visitor{json}, event);
  json.EndObject();
}

// A page as JSON, newest first.
HttpResponse HistoryResponse(const UserId& user, const HistoryPage& page) {
  std::string body;
  JsonWriter json(body);
  json.BeginObject().Key(UserField(user)).String(user.text()).Key("entries").BeginArray();
  for (const HistoryItem& item : page.items) {
    json.BeginObject()
        .Key("time")
        .String(FormatMillis(item.at))
        .Key("kind")
        .String(item.kind)
        .Key("source")
        .String(item.source);
    if (!item.upstream_id.empty()) json.Key("id").String(item.upstream_id);
    if (item.event) {
      json.Key("details");
      Details(json, *item.event);
    }
    json.EndObject();
  }
  json.EndArray();
  if (page.next) json.Key("nextCursor").String(EncodeHistoryCursor(*page.next));
  json.EndObject();
  return JsonResponse(http::status::ok, std::move(body));
}

}  // namespace

Result<HistoryQuery, ApiError> Api::HistoryQueryOf(const HttpRequest& request,
                                                   std::string_view subaccount_id,
                                                   std::string_view channel_id,
                                                   std::string_view query, Instant now) {
  const auto limit = PageSize(QueryParam(query, "limit"));
  const auto cursor_text = QueryParam(query, "cursor");
  const auto cursor = cursor_text ? DecodeHistoryCursor(*cursor_text) : std::nullopt;
  const bool bad_paging = !limit || (cursor_text && !cursor);
  auto pair = ResolvePair(request, subaccount_id, channel_id, NamedUserOf(query), now,
                          bad_paging ? std::optional(ApiError::kMalformedRequest) : std::nullopt);
  if (!pair) return pair.error();
  return HistoryQuery{std::move(*pair), *limit, cursor, now};
}

HttpResponse Api::GetHistory(const HttpRequest& request, std::string_view subaccount_id,
                             std::string_view channel_id, std::string_view query, Instant now) {
  auto history = HistoryQueryOf(request, subaccount_id, channel_id, query, now);
  if (!history) return ErrorResponse(history.error(), now);
  auto page = ReadHistory(stores_.pairs, *history);
  if (!page) return StoreFailure("reading a pair's history", page.error(), now);
  return HistoryResponse(history->pair.key.user, *page);
}

void Api::GetHistoryAsync(const HttpRequest& request, std::string_view subaccount_id,
                          std::string_view channel_id, std::string_view query, Instant now,
                          Respond respond) {
  auto history = HistoryQueryOf(request, subaccount_id, channel_id, query, now);
  if (!history) return respond(ErrorResponse(history.error(), now));
  UserId user = history->pair.key.user;
  ReadHistoryAsync(
      stores_.pairs, std::move(*history),
      [now, user = std::move(user), respond = std::move(respond)](StoreResult<HistoryPage> page) {
        if (!page) {
          return respond(StoreFailure("reading a pair's history", page.error(), now));
        }
        respond(HistoryResponse(user, *page));
      });
}

}  // namespace callgate
