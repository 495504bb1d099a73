// POST .../callPermissionRequests and POST .../calls: check and reserve in one atomic step on
// the pair, durable before the 201.
#include <simdjson.h>

#include <algorithm>
#include <iostream>

#include "api/api.h"
#include "api/ids.h"
#include "core/enforcement.h"

namespace callgate {

namespace http = boost::beast::http;

namespace {

struct ReserveBody {
  std::optional<std::string> destination;
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
  simdjson::dom::element destination;
  if (object.at_key("destination").get(destination) == simdjson::SUCCESS) {
    std::string_view text;
    // A non-string destination is present but not E.164: "+x" fails validation as 1002.
    out.destination = destination.get(text) == simdjson::SUCCESS ? std::string(text) : "+x";
  }
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

// Idempotency keys: 1–255 visible ASCII characters.
bool ValidIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > 255) return false;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

ApiError ErrorFor(Refusal refusal) {
  switch (refusal) {
    case Refusal::kPermanentPermissionExists:
      return ApiError::kPermanentPermissionExists;
    case Refusal::kRequestLimitReached:
      return ApiError::kRequestLimitReached;
    case Refusal::kNoLivePermission:
      return ApiError::kNoLivePermission;
    case Refusal::kCallLimitReached:
      return ApiError::kCallLimitReached;
  }
  return ApiError::kInternal;
}

// When every reached limit of `action` has a slot again.
std::optional<Instant> SlotFrees(const StatusView& view, Action action) {
  std::optional<Instant> at;
  for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
    const auto& expiry = view.usage[i].limit_expiration;
    if (kLimitRules[i].action == action && expiry && (!at || *expiry > *at)) at = expiry;
  }
  return at;
}

}  // namespace

void Api::Reserve(Reservation kind, const HttpRequest& request, std::string_view subaccount_id,
                  std::string_view channel_id, Instant now, Respond respond) {
  const ReserveBody body = ParseReserveBody(request.body());
  auto pair =
      ResolvePair(request, subaccount_id, channel_id, body.destination, now,
                  body.malformed ? std::optional(ApiError::kMalformedRequest) : std::nullopt);
  if (!pair) return respond(ErrorResponse(pair.error(), now));

  std::string replay_key;
  if (const auto header = request.find("Idempotency-Key"); header != request.end()) {
    const std::string_view key(header->value().data(), header->value().size());
    if (!ValidIdempotencyKey(key)) return respond(ErrorResponse(ApiError::kMalformedRequest, now));
    replay_key =
        std::string(kind == Reservation::kCall ? "calls:" : "requests:") + std::string(key);
  }
  const bool is_call = kind == Reservation::kCall;
  const std::string id = !is_call && !body.message_id.empty() ? body.message_id : NewUuid();
  const LimitsProfile limits = pair->channel->limits;
  const Millis hold = options_.call_hold;

  struct Outcome {
    Decision decision;
    std::string id;
    bool replayed = false;
  };
  auto outcome = std::make_shared<Outcome>();
  auto mutation = [=](PairState& state, std::vector<HistoryEntry>& history) {
    *outcome = {};
    if (const auto replay = state.replays.find(replay_key);
        !replay_key.empty() && replay != state.replays.end()) {
      const Instant at = CheckTime(state, now);
      outcome->decision = {std::nullopt, at, std::nullopt, View(state, at, limits)};
      outcome->id = replay->second.result_id;
      outcome->replayed = true;
      return false;
    }
    outcome->decision = is_call ? AuthorizeCall(state, id, now, hold, limits)
                                : ReserveRequest(state, id, now, limits);
    if (outcome->decision.refusal) return false;
    outcome->id = id;
    if (!replay_key.empty()) state.replays[replay_key] = {outcome->decision.at, id};
    if (const auto& event = outcome->decision.recorded) {
      history.push_back({EventKey(*event), EventSource::kApi, *event});
    }
    return true;
  };
  auto done = [outcome, is_call, now, respond = std::move(respond)](StoreStatus status) {
    if (!status.ok()) {
      std::cerr << "error: reservation not stored: " << StoreErrorName(status.error()) << "\n";
      return respond(ErrorResponse(ApiError::kInternal, now));
    }
    const Decision& decision = outcome->decision;
    if (const auto refusal = decision.refusal) {
      const auto frees = SlotFrees(
          decision.view, is_call ? Action::kStartCall : Action::kSendCallPermissionRequest);
      if (!frees ||
          (*refusal != Refusal::kRequestLimitReached && *refusal != Refusal::kCallLimitReached)) {
        return respond(ErrorResponse(ErrorFor(*refusal), now));
      }
      HttpResponse res = ErrorResponse(ErrorFor(*refusal), now,
                                       "\"limitExpirationTime\":\"" + FormatCentis(*frees) + "\"");
      const auto wait = std::chrono::ceil<std::chrono::seconds>(*frees - decision.at).count();
      res.set(http::field::retry_after, std::to_string(std::max<std::int64_t>(wait, 1)));
      return respond(std::move(res));
    }
    HttpResponse res = JsonResponse(
        http::status::created,
        RenderStatus(decision.view, is_call ? "callAuthorizationId" : "requestId", outcome->id));
    if (outcome->replayed) res.set("Idempotent-Replayed", "true");
    respond(std::move(res));
  };
  store_.UpdatePair(pair->key, std::move(mutation), std::move(done));
}

}  // namespace callgate
