#include "api/errors.h"

#include "api/json.h"
#include "log/log.h"
#include "pairs/ids.h"

namespace callgate {

namespace http = boost::beast::http;

// Codes come from 8x8's one platform registry and keep the meaning 8x8 gives them, so a client
// that switches on them reads ours right: what the seed endpoint does not document takes the
// registry's generic entry (1000 Invalid parameter, 1010 Parameter out of range, 1300 Not found,
// 2000 Internal Error, 2001 Function not implemented), throttling 8x8's own 429 (docs/rules.md).
ErrorDescription Describe(ApiError error) {
  switch (error) {
    case ApiError::kUnauthenticated:
      return {http::status::unauthorized, 1200, "Request was not authenticated properly"};
    case ApiError::kSubaccountNotOwned:
      return {http::status::bad_request, 1001,
              "Provided subAccountId doesn't belongs to your account"};
    case ApiError::kDestinationMissing:
      return {http::status::bad_request, 1000,
              "Missing required parameter: destination (or channelUserId)"};
    case ApiError::kDestinationInvalid:
      return {http::status::bad_request, 1002,
              "Invalid MSISDN format (not E.164 international number)"};
    case ApiError::kChannelUserIdInvalid:
      return {http::status::bad_request, 1008,
              "Invalid channelUserId (not a business-scoped user id such as US.1234)"};
    case ApiError::kUserAmbiguous:
      return {http::status::bad_request, 1000,
              "Give either destination or channelUserId, not both"};
    case ApiError::kChannelNotFound:
      return {http::status::not_found, 1300, "Channel not found"};
    case ApiError::kTooManyRequests:
      return {http::status::too_many_requests, 429, "Too many requests"};
    case ApiError::kInternal:
      return {http::status::internal_server_error, 2000, "Internal server error"};
    case ApiError::kNotReady:
      return {http::status::service_unavailable, 2000, "Service not ready: storage cannot commit"};
    case ApiError::kPathNotFound:
      return {http::status::not_found, 1300, "Resource not found"};
    case ApiError::kMethodNotAllowed:
      return {http::status::method_not_allowed, 2001, "Method not allowed"};
    case ApiError::kBodyTooLarge:
      return {http::status::payload_too_large, 1010, "Request body too large"};
    case ApiError::kHeadersTooLarge:
      return {http::status::request_header_fields_too_large, 1010, "Request headers too large"};
    case ApiError::kMalformedRequest:
      return {http::status::bad_request, 1000, "Malformed request"};
    case ApiError::kBatchEmpty:
      return {http::status::bad_request, 1000,
              "Missing required parameter: destinations or channelUserIds (1 to 1000 items)"};
    case ApiError::kBatchTooLarge:
      return {http::status::bad_request, 1010,
              "Too many items: at most 1000 destinations and channelUserIds together"};
    case ApiError::kPermanentPermissionExists:
      return {http::status::conflict, 1052, "A permanent call permission already exists"};
    case ApiError::kRequestLimitReached:
      return {http::status::too_many_requests, 1053, "Call permission request limit reached"};
    case ApiError::kNoLivePermission:
      return {http::status::forbidden, 1055, "No call permission for this destination"};
    case ApiError::kCallLimitReached:
      return {http::status::too_many_requests, 1056, "Call limit reached"};
    case ApiError::kBadSignature:
      return {http::status::unauthorized, 1200, "Invalid webhook signature"};
    case ApiError::kBadVerifyToken:
      return {http::status::forbidden, 1201, "Invalid verify token"};
  }
  return {http::status::internal_server_error, 2000, "Internal server error"};
}

ApiError ErrorOf(Refusal refusal) {
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

ApiError ErrorOf(DestinationError error) {
  switch (error) {
    case DestinationError::kMissing:
      return ApiError::kDestinationMissing;
    case DestinationError::kInvalid:
      return ApiError::kDestinationInvalid;
    case DestinationError::kInvalidChannelUserId:
      return ApiError::kChannelUserIdInvalid;
    case DestinationError::kBothGiven:
      return ApiError::kUserAmbiguous;
  }
  return ApiError::kDestinationInvalid;
}

ApiError ErrorOf(http::status transport_refusal) {
  switch (transport_refusal) {
    case http::status::payload_too_large:
      return ApiError::kBodyTooLarge;
    case http::status::request_header_fields_too_large:
      return ApiError::kHeadersTooLarge;
    case http::status::internal_server_error:
      return ApiError::kInternal;
    default:
      return ApiError::kMalformedRequest;
  }
}

HttpResponse ErrorResponse(ApiError error, Instant now, std::string_view extra,
                           std::string_view cause) {
  const ErrorDescription d = Describe(error);
  const std::string error_id = NewUuid();
  if (static_cast<unsigned>(d.status) >= 500) {
    // The access line of the request carries the same errorId, and its requestId.
    Log(LogKind::kServerError, now, cause.empty() ? d.message : cause, {{"errorId", error_id}});
  }
  std::string body;
  JsonWriter json(body);
  json.BeginObject()
      .Key("code")
      .Int(d.code)
      .Key("message")
      .String(d.message)
      .Key("errorId")
      .String(error_id)
      .Key("timestamp")
      .String(FormatMillis(now));
  if (!extra.empty()) body.append(",").append(extra);
  json.EndObject();
  HttpResponse res(d.status, 11);
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

HttpResponse StoreFailure(std::string_view what, StoreError error, Instant now) {
  return ErrorResponse(ApiError::kInternal, now, {},
                       std::string(what) + " failed: store " + std::string(StoreErrorName(error)));
}

}  // namespace callgate
