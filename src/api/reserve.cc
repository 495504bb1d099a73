// POST .../callPermissionRequests and POST .../calls: the body parsed, the reservation made by
// pairs/reserve.h, its result as HTTP (201, or the refusal with limitExpirationTime and
// Retry-After when a slot will free).
#include "pairs/reserve.h"

#include <simdjson.h>

#include <algorithm>

#include "api/api.h"

namespace callgate {

namespace http = boost::beast::http;

namespace {

struct ReserveBody {
  NamedUser user;
  std::string message_id;
  bool malformed = false;
};

ReserveBody ParseReserveBody(const std::string& body) {
  ReserveBody out;
  thread_local simdjson::dom::parser parser;  // keeps its buffers between requests
  simdjson::dom::object object;
  if (parser.parse(body).get(object) != simdjson::SUCCESS) {
    out.malformed = true;
    return out;
  }
  // A non-string user is present but malformed: "+x" fails validation as 1002, "?" as 1008.
  auto read_user = [&](std::string_view field, std::string_view malformed) {
    simdjson::dom::element value;
    std::optional<std::string> out;
    if (object.at_key(field).get(value) == simdjson::SUCCESS) {
      std::string_view text;
      out = value.get(text) == simdjson::SUCCESS ? std::string(text) : std::string(malformed);
    }
    return out;
  };
  out.user = {read_user("destination", "+x"), read_user("channelUserId", "?")};
  simdjson::dom::element message_id;
  if (object.at_key("messageId").get(message_id) == simdjson::SUCCESS) {
    std::string_view text;
    if (message_id.get(text) != simdjson::SUCCESS || text.empty() || text.size() > 256) {
      out.malformed = true;
    } else {
      out.message_id = text;
    }
  }
  return out;
}

HttpResponse Refused(const Reservation& reservation, Instant now) {
  const ApiError error = ErrorOf(*reservation.refusal);
  if (!reservation.slot_frees) return ErrorResponse(error, now);
  HttpResponse res = ErrorResponse(
      error, now, "\"limitExpirationTime\":\"" + FormatCentis(*reservation.slot_frees) + "\"");
  const auto wait =
      std::chrono::ceil<std::chrono::seconds>(*reservation.slot_frees - reservation.at).count();
  res.set(http::field::retry_after, std::to_string(std::max<std::int64_t>(wait, 1)));
  return res;
}

}  // namespace

void Api::Reserve(bool is_call, const HttpRequest& request, std::string_view subaccount_id,
                  std::string_view channel_id, Instant now, Respond respond) {
  const ReserveBody body = ParseReserveBody(request.body());
  auto pair =
      ResolvePair(request, subaccount_id, channel_id, body.user, now,
                  body.malformed ? std::optional(ApiError::kMalformedRequest) : std::nullopt);
  if (!pair) return respond(ErrorResponse(pair.error(), now));

  ReservationRequest reservation{
      .pair = std::move(*pair),
      .kind = is_call ? ReservationKind::kCall : ReservationKind::kPermissionRequest,
      .id = body.message_id,
      .now = now,
      .call_hold = options_.call_hold};
  if (const auto header = request.find("Idempotency-Key"); header != request.end()) {
    const std::string_view key(header->value().data(), header->value().size());
    if (!ValidIdempotencyKey(key)) return respond(ErrorResponse(ApiError::kMalformedRequest, now));
    reservation.idempotency_key = key;
  }
  callgate::Reserve(
      stores_.pairs, std::move(reservation),
      [is_call, now, respond = std::move(respond)](StoreResult<Reservation> result) {
        if (!result) return respond(StoreFailure("storing a reservation", result.error(), now));
        if (result->refusal) return respond(Refused(*result, now));
        HttpResponse res = JsonResponse(
            http::status::created,
            RenderStatus(result->view, is_call ? "callAuthorizationId" : "requestId", result->id));
        if (result->replayed) res.set("Idempotent-Replayed", "true");
        respond(std::move(res));
      });
}

}  // namespace callgate
