// GET/POST /webhooks/whatsapp: Meta's subscription handshake and signed event deliveries.
// A delivery is acknowledged (200) only after every event in it is durably stored; a storage
// failure answers 500 so Meta retries — safe, because applying an event twice changes nothing.
#include <openssl/crypto.h>

#include <atomic>
#include <iostream>

#include "api/api.h"
#include "api/destination.h"
#include "api/json.h"
#include "http/url.h"
#include "ingest/meta_webhook.h"
#include "ingest/route.h"
#include "ingest/signature.h"

namespace callgate {

namespace http = boost::beast::http;

namespace {

bool SameSecret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// What one delivery did, for the response body and the log line (never a phone number).
struct Tally {
  std::atomic<int> applied{0};
  std::atomic<int> duplicate{0};
  std::atomic<int> too_late{0};
  std::atomic<int> remaining{0};
  std::atomic<bool> failed{false};
  int ignored = 0;
  int unknown_channel = 0;
  int invalid_user = 0;
  int settings = 0;

  std::string Json() const {
    std::string body;
    JsonWriter json(body);
    json.BeginObject()
        .Key("applied")
        .Int(applied)
        .Key("duplicate")
        .Int(duplicate)
        .Key("tooLate")
        .Int(too_late)
        .Key("ignored")
        .Int(ignored)
        .Key("unknownChannel")
        .Int(unknown_channel)
        .Key("invalidUser")
        .Int(invalid_user)
        .Key("settingsChanged")
        .Int(settings)
        .EndObject();
    return body;
  }
};

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
      !VerifyMetaSignature(request.body(),
                           std::string_view(signature->value().data(), signature->value().size()),
                           options_.meta_app_secrets)) {
    return respond(ErrorResponse(ApiError::kBadSignature, now));
  }
  auto parsed = ParseMetaWebhook(request.body(), now);
  if (!parsed) return respond(ErrorResponse(ApiError::kMalformedRequest, now));

  auto tally = std::make_shared<Tally>();
  tally->ignored = parsed->ignored;
  bool tenants_changed = false;
  for (const CallbackSettingChange& change : parsed->settings) {
    const Channel* channel =
        tenants_.Current(now)->FindChannelByPhoneNumberId(change.phone_number_id);
    if (!channel) {
      ++tally->unknown_channel;
      continue;
    }
    if (channel->callback_permission_enabled == change.enabled) continue;
    if (!store_.SetCallbackPermission(channel->id, change.enabled).ok()) {
      return respond(ErrorResponse(ApiError::kInternal, now));
    }
    ++tally->settings;
    tenants_changed = true;
  }
  if (tenants_changed) tenants_.Refresh();

  RoutedWebhook routed =
      RouteWebhook(*parsed, *tenants_.Current(now), [](const std::string& number) {
        auto normalized = NormalizeDestination(number);
        return normalized ? std::optional(*normalized) : std::nullopt;
      });
  tally->unknown_channel += routed.unknown_channel;
  tally->invalid_user += routed.invalid_user;

  auto finish = [tally, now, respond](void) {
    // Counted and logged when something was not applied; quiet on the normal path.
    if (tally->failed || tally->ignored || tally->unknown_channel || tally->invalid_user ||
        tally->too_late) {
      std::cerr << "webhook: " << tally->Json() << "\n";
    }
    if (tally->failed) return respond(ErrorResponse(ApiError::kInternal, now));
    respond(JsonResponse(http::status::ok, tally->Json()));
  };
  if (routed.pairs.empty()) return finish();

  tally->remaining = static_cast<int>(routed.pairs.size());
  for (auto& [key, pair] : routed.pairs) {
    struct Counts {
      int applied = 0, duplicate = 0, too_late = 0;
    };
    auto counts = std::make_shared<Counts>();
    auto mutation = [counts, events = std::move(pair.events), limits = pair.limits](
                        PairState& state, std::vector<HistoryEntry>& history) {
      *counts = {};
      for (const Event& event : events) {
        switch (ApplyAndRecord(state, history, event, EventSource::kWebhook, limits)) {
          case ApplyOutcome::kApplied:
            ++counts->applied;
            break;
          case ApplyOutcome::kDuplicate:
            ++counts->duplicate;
            break;
          case ApplyOutcome::kTooLate:
            ++counts->too_late;
            break;
        }
      }
      return counts->applied > 0;
    };
    store_.UpdatePair({key.first, key.second}, std::move(mutation),
                      [tally, counts, finish](StoreStatus status) {
                        if (status.ok()) {
                          tally->applied += counts->applied;
                          tally->duplicate += counts->duplicate;
                          tally->too_late += counts->too_late;
                        } else {
                          tally->failed = true;
                        }
                        if (--tally->remaining == 0) finish();
                      });
  }
}

}  // namespace callgate
