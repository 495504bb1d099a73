#include "api/api.h"

#include "api/openapi_document.h"
#include "http/url.h"
#include "pairs/destination.h"
#include "tenants/api_key.h"

namespace callgate {

namespace http = boost::beast::http;

namespace {

std::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

constexpr std::string_view kPairPrefix[] = {"api", "v1", "whatsapp", "subaccounts"};

// "Bearer <token>", scheme case-insensitive. Empty if malformed.
std::string_view BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) return {};
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return {};
  }
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token.find(' ') == std::string_view::npos ? token : std::string_view{};
}

}  // namespace

HttpResponse JsonResponse(http::status status, std::string body) {
  HttpResponse res(status, 11);
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

NamedUser NamedUserOf(std::string_view query) {
  return {QueryParam(query, "destination"), QueryParam(query, "channelUserId")};
}

std::string_view UserField(const UserId& user) {
  return user.kind() == UserIdKind::kPhone ? "destination" : "channelUserId";
}

Api::Api(ApiStores stores, Clock clock, ApiOptions options)
    : stores_(stores),
      remote_reads_(stores.pairs.ReadsAreRemote()),
      clock_(std::move(clock)),
      options_(std::move(options)),
      observers_(std::make_shared<const Observers>(std::move(options_.observers))),
      signatures_(options_.meta_app_secrets) {
  if (options_.rate_limit_burst <= 0) options_.rate_limit_burst = options_.rate_limit_per_second;
}

namespace {

// The endpoint a path names, whatever the method.
Route MatchRoute(const Segments& seg, http::verb method) {
  if (seg.size() == 1) {
    if (seg[0] == "healthz") return Route::kHealth;
    if (seg[0] == "readyz") return Route::kReady;
    if (seg[0] == "openapi.json") return Route::kOpenApi;
    if (seg[0] == "metrics") return Route::kMetrics;
    return Route::kUnmatched;
  }
  if (seg.size() == 2 && seg[0] == "webhooks" && seg[1] == "whatsapp") {
    return method == http::verb::get ? Route::kWebhookVerify : Route::kWebhook;
  }
  const bool pair_path = seg.size() >= 8 &&
                         std::equal(std::begin(kPairPrefix), std::end(kPairPrefix), seg.begin()) &&
                         seg[5] == "channels";
  if (!pair_path) return Route::kUnmatched;
  if (seg.size() == 8 && seg[7] == "callPermissions") return Route::kStatus;
  if (seg.size() == 9 && seg[7] == "callPermissions" && seg[8] == "history") {
    return Route::kHistory;
  }
  if (seg.size() == 9 && seg[7] == "callPermissions" && seg[8] == "batch") {
    return Route::kStatusBatch;
  }
  if (seg.size() == 8 && seg[7] == "callPermissionRequests") return Route::kPermissionRequest;
  if (seg.size() == 8 && seg[7] == "calls") return Route::kCall;
  return Route::kUnmatched;
}

// The methods a route answers (the Allow header of a 405); empty for kUnmatched.
std::string_view AllowedMethods(Route route) {
  switch (route) {
    case Route::kWebhookVerify:
    case Route::kWebhook:
      return "GET, POST";
    case Route::kStatusBatch:
    case Route::kPermissionRequest:
    case Route::kCall:
      return "POST";
    case Route::kUnmatched:
    case Route::kRejected:
      return {};
    default:
      return "GET";
  }
}

bool Allows(Route route, http::verb method) {
  switch (route) {
    case Route::kWebhookVerify:
      return true;  // GET
    case Route::kWebhook:
    case Route::kStatusBatch:
    case Route::kPermissionRequest:
    case Route::kCall:
      return method == http::verb::post;
    default:
      return method == http::verb::get;
  }
}

}  // namespace

HttpResponse Api::Finish(const Observers& observers, const Exchange& exchange, HttpResponse&& res) {
  const std::string_view id = exchange.id.view();
  res.set("X-Request-Id", boost::beast::string_view(id.data(), id.size()));
  if (!observers.empty()) {
    const unsigned status = res.result_int();
    const EnvelopeFields envelope = status >= 400 ? ReadEnvelope(res.body()) : EnvelopeFields{};
    const RequestRecord record{
        .at = exchange.at,
        .method = exchange.method,
        .route = exchange.route,
        .status = status,
        .code = envelope.code,
        .error_id = envelope.error_id,
        .request_id = id,
        .duration = std::chrono::steady_clock::now() - exchange.started,
        .bytes = res.body().size(),
    };
    for (const RequestObserver& observe : observers) observe(record);
  }
  return std::move(res);
}

Respond Api::Deferred(Exchange exchange, Respond respond) const {
  return [observers = observers_, exchange = std::move(exchange), respond = std::move(respond)](
             HttpResponse&& res) { respond(Finish(*observers, exchange, std::move(res))); };
}

HttpResponse Api::Reject(http::status status) {
  const Instant now = clock_();
  HttpResponse res = ErrorResponse(ErrorOf(status), now, {}, "the transport refused a request");
  return Finish(*observers_,
                {now, std::chrono::steady_clock::now(), "-", Route::kRejected, RequestId::From({})},
                std::move(res));
}

void Api::Handle(HttpRequest&& request, Respond respond, Endpoints endpoints) {
  const Instant now = clock_();
  const Target target = SplitTarget(View(request.target()));
  const Segments seg = PathSegments(target.path);
  const http::verb method = request.method();
  const auto request_id = request.find("X-Request-Id");
  // Beast's name of a known method is static text, so it outlives the request; an unknown one
  // is "-" rather than whatever the client sent.
  Exchange exchange{
      now, std::chrono::steady_clock::now(),
      method == http::verb::unknown ? std::string_view("-") : View(http::to_string(method)),
      MatchRoute(seg, method),
      RequestId::From(request_id == request.end() ? std::string_view{}
                                                  : View(request_id->value()))};
  if (endpoints == Endpoints::kMetricsOnly && exchange.route != Route::kMetrics) {
    exchange.route = Route::kUnmatched;
  }
  auto answer = [&](HttpResponse&& res) { respond(Finish(*observers_, exchange, std::move(res))); };

  const Route route = exchange.route;
  if (route == Route::kUnmatched) return answer(ErrorResponse(ApiError::kPathNotFound, now));
  if (!Allows(route, method)) {
    HttpResponse res = ErrorResponse(ApiError::kMethodNotAllowed, now);
    const std::string_view allow = AllowedMethods(route);
    res.set(http::field::allow, boost::beast::string_view(allow.data(), allow.size()));
    return answer(std::move(res));
  }
  switch (route) {
    case Route::kHealth:
      return answer(Health(now));
    case Route::kReady:
      return answer(Ready(now));
    case Route::kOpenApi:
      return answer(JsonResponse(http::status::ok, std::string(OpenApiDocument())));
    case Route::kMetrics:
      return answer(ServeMetrics(now));
    case Route::kWebhookVerify:
      return answer(VerifySubscription(target.query, now));
    case Route::kWebhook:
      return ReceiveWebhook(request, now, Deferred(std::move(exchange), std::move(respond)));
    case Route::kStatus:
      if (remote_reads_) {
        return GetCallPermissionsAsync(request, seg[4], seg[6], target.query, now,
                                       Deferred(std::move(exchange), std::move(respond)));
      }
      return answer(GetCallPermissions(request, seg[4], seg[6], target.query, now));
    case Route::kHistory:
      if (remote_reads_) {
        return GetHistoryAsync(request, seg[4], seg[6], target.query, now,
                               Deferred(std::move(exchange), std::move(respond)));
      }
      return answer(GetHistory(request, seg[4], seg[6], target.query, now));
    case Route::kStatusBatch:
      if (remote_reads_) {
        return GetStatusBatchAsync(request, seg[4], seg[6], now,
                                   Deferred(std::move(exchange), std::move(respond)));
      }
      return answer(GetStatusBatch(request, seg[4], seg[6], now));
    case Route::kPermissionRequest:
    case Route::kCall:
      return Reserve(route == Route::kCall, request, seg[4], seg[6], now,
                     Deferred(std::move(exchange), std::move(respond)));
    case Route::kUnmatched:
    case Route::kRejected:
      break;
  }
  answer(ErrorResponse(ApiError::kPathNotFound, now));
}

Result<const Account*, ApiError> Api::Authenticate(
    const HttpRequest& request, const std::shared_ptr<const TenantSnapshot>& tenants, Instant now) {
  const auto header = request.find(http::field::authorization);
  if (header == request.end()) return ApiError::kUnauthenticated;
  const Account* account = AuthenticateCached(tenants, BearerToken(View(header->value())));
  if (!account) return ApiError::kUnauthenticated;
  if (options_.rate_limit_per_second > 0) {
    std::lock_guard lock(buckets_mu_);
    auto [it, inserted] = buckets_.try_emplace(account->id, options_.rate_limit_per_second,
                                               options_.rate_limit_burst, now);
    if (!it->second.TryTake(now)) return ApiError::kTooManyRequests;
  }
  return account;
}

Result<const Subaccount*, ApiError> Api::OwnedSubaccount(
    const HttpRequest& request, const std::shared_ptr<const TenantSnapshot>& tenants,
    std::string_view subaccount_id, Instant now) {
  auto account = Authenticate(request, tenants, now);
  if (!account) return account.error();
  const Subaccount* sub = tenants->FindSubaccount(std::string(subaccount_id));
  if (!sub || sub->account_id != (*account)->id) return ApiError::kSubaccountNotOwned;
  return sub;
}

const Channel* Api::OwnedChannel(const TenantSnapshot& tenants, const Subaccount& sub,
                                 std::string_view channel_id) {
  const Channel* channel = tenants.FindChannel(std::string(channel_id));
  return channel && channel->subaccount_id == sub.id ? channel : nullptr;
}

Result<PairRef, ApiError> Api::ResolvePair(const HttpRequest& request,
                                           std::string_view subaccount_id,
                                           std::string_view channel_id, const NamedUser& named,
                                           Instant now, std::optional<ApiError> body_error) {
  std::shared_ptr<const TenantSnapshot> tenants = stores_.tenants.Current();
  auto sub = OwnedSubaccount(request, tenants, subaccount_id, now);
  if (!sub) return sub.error();
  if (body_error) return *body_error;
  auto user = NormalizeUser(named.destination, named.channel_user_id);
  if (!user) return ErrorOf(user.error());
  const Channel* channel = OwnedChannel(*tenants, **sub, channel_id);
  if (!channel) return ApiError::kChannelNotFound;
  return PairRef{{channel->id, std::move(*user)}, channel->limits};
}

HttpResponse Api::GetCallPermissions(const HttpRequest& request, std::string_view subaccount_id,
                                     std::string_view channel_id, std::string_view query,
                                     Instant now) {
  auto pair = ResolvePair(request, subaccount_id, channel_id, NamedUserOf(query), now);
  if (!pair) return ErrorResponse(pair.error(), now);
  auto view = ReadStatus(stores_.pairs, *pair, now);
  if (!view) return StoreFailure("reading a pair's status", view.error(), now);
  return JsonResponse(http::status::ok, StatusBody(*view));
}

void Api::GetCallPermissionsAsync(const HttpRequest& request, std::string_view subaccount_id,
                                  std::string_view channel_id, std::string_view query, Instant now,
                                  Respond respond) {
  auto pair = ResolvePair(request, subaccount_id, channel_id, NamedUserOf(query), now);
  if (!pair) return respond(ErrorResponse(pair.error(), now));
  // Answered on the store's thread, as the GET above answers.
  ReadStatusAsync(stores_.pairs, *pair, now,
                  [now, respond = std::move(respond)](StoreResult<StatusView> view) {
                    if (!view) {
                      return respond(StoreFailure("reading a pair's status", view.error(), now));
                    }
                    respond(JsonResponse(http::status::ok, StatusBody(*view)));
                  });
}

HttpResponse Api::Ready(Instant now) {
  StoreStatus ready = Ok{};
  {
    std::lock_guard lock(ready_mu_);
    if (!ready_checked_ || now - *ready_checked_ >= std::chrono::seconds(1) ||
        now < *ready_checked_) {
      ready_ = stores_.pairs.ProbeWrite();
      ready_checked_ = now;
    }
    ready = ready_;
  }
  if (!ready.ok()) {
    return ErrorResponse(
        ApiError::kNotReady, now, {},
        "readiness: a probe write failed: store " + std::string(StoreErrorName(ready.error())));
  }
  return JsonResponse(http::status::ok, R"({"status":"ready"})");
}

HttpResponse Api::ServeMetrics(Instant now) {
  if (!options_.metrics) return ErrorResponse(ApiError::kPathNotFound, now);
  HttpResponse res(http::status::ok, 11);
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.body() = options_.metrics();
  return res;
}

HttpResponse Api::Health(Instant now) {
  auto generation = stores_.tenant_store.TenantGeneration();
  if (!generation) return StoreFailure("health check", generation.error(), now);
  return JsonResponse(http::status::ok, R"({"status":"ok"})");
}

}  // namespace callgate
