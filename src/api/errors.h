// The API's closed set of errors and the one function that maps them to HTTP status, 8x8 error
// code and message (RULES.md §6). Every status >= 400 the service sends is built here, in the
// 8x8 envelope {code, message, errorId, timestamp}. Thread-safe.
#pragma once

#include <string_view>

#include "core/time.h"
#include "http/server.h"

namespace callgate {

enum class ApiError {
  kUnauthenticated,     // missing/unknown/revoked key, malformed Authorization
  kSubaccountNotOwned,  // unknown subaccount, or not the key's account's
  kDestinationMissing,
  kDestinationInvalid,  // not E.164
  kChannelNotFound,     // unknown, or not in that subaccount
  kTooManyRequests,     // the service's own protection
  kInternal,            // anything unexpected
  kPathNotFound,
  kMethodNotAllowed,
  kBodyTooLarge,
  kHeadersTooLarge,
  kMalformedRequest,  // unparseable HTTP or JSON body
  // Enforcement endpoints (RULES.md §6, decisions).
  kPermanentPermissionExists,
  kRequestLimitReached,
  kNoLivePermission,
  kCallLimitReached,
  // Webhooks.
  kBadSignature,
  kBadVerifyToken,
};

struct ErrorDescription {
  boost::beast::http::status status;
  int code;
  std::string_view message;
};

ErrorDescription Describe(ApiError error);

// The envelope response for `error`, with a fresh errorId. `extra` (JSON members without braces,
// e.g. "\"limitExpirationTime\":\"...\"") is appended when non-empty.
HttpResponse ErrorResponse(ApiError error, Instant now, std::string_view extra = {});

}  // namespace callgate
