// Reserve before you send: the check and the reservation of a call permission request or a call
// authorisation, as one atomic, durable step on the pair (docs/rules.md §3–4, §6), so concurrent
// senders never exceed a limit. Idempotent retries return the first result. Thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "core/enforcement.h"
#include "pairs/status.h"

namespace callgate {

enum class ReservationKind { kPermissionRequest, kCall };

struct ReservationRequest {
  PairRef pair;
  ReservationKind kind = ReservationKind::kPermissionRequest;
  // The request id (the message id of the request message) for kPermissionRequest; empty: a
  // fresh UUID. A call authorisation always gets a fresh UUID.
  std::string id;
  // Empty for none, else ValidIdempotencyKey; scoped to the pair and the kind, and remembered
  // for kIdempotencyRetention (24 h).
  std::string idempotency_key;
  Instant now;
  Millis call_hold = std::chrono::seconds(90);  // how long an authorisation holds a call slot
};

struct Reservation {
  std::optional<Refusal> refusal;
  std::string id;         // the request or authorisation id (the first one, when replayed)
  bool replayed = false;  // an idempotent retry: nothing new was reserved
  Instant at;             // the instant the check ran at
  StatusView view;        // the pair at `at`, after the decision
  // For a refusal on a reached limit: when every reached limit of the action has a slot again.
  std::optional<Instant> slot_frees;
};

// Idempotency keys: 1–255 visible ASCII characters.
bool ValidIdempotencyKey(std::string_view key);

// `done` runs once the reservation is durable (or refused, or failed), on a store thread.
void Reserve(PairStore& store, ReservationRequest request,
             std::function<void(StoreResult<Reservation>)> done);

}  // namespace callgate
