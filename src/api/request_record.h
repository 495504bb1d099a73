// What the API tells its observers about each request it answered: which route template it
// matched, what was answered and how long it took. The access log and the metrics read this and
// never the request itself, so neither can see a path's ids, a destination, a BSUID, a key or a
// body: a record holds nothing a caller chose except a well-formed X-Request-Id.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "core/time.h"

namespace callgate {

// Every endpoint, plus what matched none. Bounded, so it can label a metric.
enum class Route : std::uint8_t {
  kHealth,
  kReady,
  kOpenApi,
  kMetrics,
  kWebhookVerify,  // GET /webhooks/whatsapp
  kWebhook,        // POST /webhooks/whatsapp
  kStatus,
  kHistory,
  kStatusBatch,  // POST .../callPermissions/batch
  kPermissionRequest,
  kCall,
  kUnmatched,  // no endpoint has this path
  kRejected,   // refused by the transport before routing (too large, malformed HTTP)
};
inline constexpr std::size_t kRouteCount = static_cast<std::size_t>(Route::kRejected) + 1;

// The route's path template as the API description names it ("/webhooks/whatsapp",
// "/api/v1/whatsapp/subaccounts/{subAccountId}/channels/{channelId}/callPermissions", ...);
// "unmatched" and "rejected" for the last two.
std::string_view RouteTemplate(Route route);

// The request id: the client's X-Request-Id when well-formed (1 to 128 characters of
// [A-Za-z0-9._:-], so it is safe in a log line and a header, and nothing that may name a user: no
// run of 10 digits or more, no BSUID shape "XX."), else a fresh UUID. Held inline: taking one
// allocates nothing.
class RequestId {
 public:
  static constexpr std::size_t kMaxLength = 128;
  // The client's id if well-formed, else a fresh one.
  static RequestId From(std::string_view header);
  static bool WellFormed(std::string_view id);
  std::string_view view() const { return {chars_.data(), size_}; }

 private:
  std::array<char, kMaxLength> chars_;
  std::size_t size_ = 0;
};

struct RequestRecord {
  Instant at;               // when the request reached the API (wall clock)
  std::string_view method;  // "GET", "POST", ...; "-" when the transport refused it
  Route route;
  unsigned status;                    // HTTP status answered
  int code;                           // the error envelope's code; 0 when the answer is no error
  std::string_view error_id;          // the error envelope's errorId; empty when no error
  std::string_view request_id;        // as echoed in X-Request-Id
  std::chrono::nanoseconds duration;  // from reaching the API to the answer given
  std::size_t bytes;                  // response body
};

// Called once per answered request, on the thread that answers (any thread). Must be cheap and
// thread-safe.
using RequestObserver = std::function<void(const RequestRecord&)>;

// The code and errorId of an error envelope body ({"code":N,...,"errorId":"..."}, built by
// api/errors.cc); {0, ""} for any other body.
struct EnvelopeFields {
  int code = 0;
  std::string_view error_id;
};
EnvelopeFields ReadEnvelope(std::string_view body);

}  // namespace callgate
