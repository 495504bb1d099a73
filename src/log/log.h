// The service's log (standard error), throttled per kind of line: at most 10 lines a
// second of each kind, in bursts of 20; the first line after some were held back says how many.
// Lines name what failed and never a phone number, BSUID or key. Thread-safe.
#pragma once

#include <string_view>

#include "core/time.h"

namespace callgate {

enum class LogKind {
  kServerError,     // a 5xx answered (with its errorId)
  kWebhookSkipped,  // a delivery with items not applied
  kConnection,      // the transport: connections refused or not accepted, handlers that threw
};

// The wall clock, as Log wants it, for callers that have no request time.
Instant LogNow();

void Log(LogKind kind, Instant now, std::string_view line);

}  // namespace callgate
