// The service's log: every line callgate writes to standard error, in the format chosen at start
// (--log-format: text or json, log/format.h). Three kinds of line:
//   Log: what went wrong, throttled per kind of line: at most 10 lines a second of each kind, in
//     bursts of 20; the first line after some were held back carries heldBack=N.
//   LogNotice: start, stop and state changes of the service, a few per run: never throttled.
//   LogAccess: one line per answered request (the access log), queued and written in batches by
//     a background thread, so the request never waits for standard error (log/writer.h).
// Lines name what failed and never a phone number, BSUID, key, secret or raw path. Thread-safe.
#pragma once

#include <initializer_list>
#include <span>
#include <string_view>

#include "core/time.h"
#include "log/format.h"

namespace callgate {

enum class LogKind {
  kServerError,         // a 5xx answered (with its errorId)
  kWebhookSkipped,      // a delivery with items not applied
  kConnection,          // the transport: connections refused or not accepted, handlers that threw
  kNotificationSent,    // a notification delivered (info)
  kNotificationFailed,  // a notification attempt failed, was retried or dropped
};
inline constexpr int kLogKindCount = 5;

// The format of every line from now on and where lines go (standard error unless a test says
// otherwise). Called once at start, before the first line; text to standard error until then.
void ConfigureLog(LogFormat format, int fd = 2);
LogFormat CurrentLogFormat();

// The wall clock, as Log wants it, for callers that have no request time.
Instant LogNow();

void Log(LogKind kind, Instant now, std::string_view msg,
         std::initializer_list<LogField> fields = {});

void LogNotice(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

// An access line ("access" at level info) at `time`, with `fields`.
void LogAccess(Instant time, std::span<const LogField> fields);

// Writes every queued line now (before exiting).
void FlushLog();

}  // namespace callgate
