// GET/POST /webhooks/whatsapp: Meta's subscription handshake and signed event deliveries.
// A delivery is acknowledged (200) only after every event in it is durably stored
// (pairs/delivery.h); a storage failure answers 500 so Meta retries — safe, because applying an
// event twice changes nothing.
#include <openssl/crypto.h>

#include "api/api.h"
#include "api/json.h"
#include "http/url.h"
#include "ingest/meta_webhook.h"
#include "ingest/signature.h"
#include "log/log.h"
#include "pairs/delivery.h"

namespace callgate {

namespace http = boost::beast::http;

namespace {

bool SameSecret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The 200 body: what the delivery did (never a phone number).
std::string TallyJson(const DeliveryTally& tally) {
  std::string body;
  JsonWriter json(body);
  json.BeginObject()
      .Key("applied")
      .Int(tally.applied)
      .Key("duplicate")
      .Int(tally.duplicate)
      .Key("tooLate")
      .Int(tally.too_late)
      .Key("ignored")
      .Int(tally.Ignored())
      .Key("unknownChannel")
      .Int(tally.unknown_channel)
      .Key("invalidUser")
      .Int(tally.invalid_user)
      .Key("invalidTime")
      .Int(tally.invalid_time)
      .Key("settingsChanged")
      .Int(tally.settings)
      .Key("usersLinked")
      .Int(tally.linked)
      .Key("rotations")
      .Int(tally.rotations)
      .Key("ignoredByReason")
      .BeginObject();
  for (std::size_t i = 0; i < kIgnoreReasonCount; ++i) {
    if (tally.ignored_by[i] == 0) continue;
    json.Key(IgnoreReasonName(static_cast<IgnoreReason>(i))).Int(tally.ignored_by[i]);
  }
  json.EndObject().EndObject();
  return body;
}

}  // namespace

HttpResponse Api::VerifySubscription(std::string_view query, Instant now) {
  const auto mode = QueryParam(query, "hub.mode");
  const auto token = QueryParam(query, "hub.verify_token");
  const auto challenge = QueryParam(query, "hub.challenge");
  if (options_.meta_verify_token.empty() || mode != "subscribe" || !token || !challenge ||
      !SameSecret(*token, options_.meta_verify_token)) {
    return ErrorResponse(ApiError::kBadVerifyToken, now);
  }
  HttpResponse res(http::status::ok, 11);
  res.set(http::field::content_type, "text/plain");
  res.body() = *challenge;
  return res;
}

void Api::ReceiveWebhook(const HttpRequest& request, Instant now, Respond respond) {
  const auto signature = request.find("X-Hub-Signature-256");
  if (signature == request.end() ||
      !signatures_.Verify(request.body(),
                          std::string_view(signature->value().data(), signature->value().size()))) {
    return respond(ErrorResponse(ApiError::kBadSignature, now));
  }
  auto parsed = ParseMetaWebhook(request.body(), now);
  if (!parsed) return respond(ErrorResponse(ApiError::kMalformedRequest, now));

  ApplyDelivery({stores_.pairs, stores_.tenant_store, stores_.tenants}, std::move(*parsed),
                [now, observe = options_.delivery_observer,
                 respond = std::move(respond)](StoreResult<DeliveryTally> tally) {
                  if (!tally) {
                    return respond(StoreFailure("storing a webhook delivery", tally.error(), now));
                  }
                  if (observe) observe(*tally);
                  const std::string body = TallyJson(*tally);
                  // Logged when something was not applied; quiet on the normal path.
                  if (tally->Skipped())
                    Log(LogKind::kWebhookSkipped, now, "webhook: not all applied: " + body);
                  respond(JsonResponse(http::status::ok, body));
                });
}

}  // namespace callgate
