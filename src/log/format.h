// How a log line is written, in either format callgate offers (--log-format):
//   text: 2026-02-01T08:12:30.123Z info access requestId=r-1 method=GET status=200 ...
//   json: {"time":"2026-02-01T08:12:30.123Z","level":"info","msg":"access","requestId":"r-1",...}
// Either way a line is one line whatever its message and values hold: json escapes as RFC 8259
// wants (bytes that are not UTF-8 become U+FFFD); text writes a message or value that is not plain
// printable ASCII (or, for a value, holds a space, '"', '=' or '\') as a JSON string, so a reader
// splitting on spaces and '=' is never misled. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/time.h"

namespace callgate {

enum class LogFormat : std::uint8_t { kText, kJson };

// "text" or "json"; nullopt for anything else.
std::optional<LogFormat> ParseLogFormat(std::string_view name);

enum class LogLevel : std::uint8_t { kInfo, kWarn, kError };

std::string_view LogLevelName(LogLevel level);  // "info", "warn", "error"

// A field of a line: a name (the program's own constant identifier, written as it is; never
// "time", "level" or "msg") and a value, text or a number, always escaped as the format needs.
// Holds views: it lives no longer than the call it is passed to.
class LogField {
 public:
  LogField() = default;  // an empty text without a name, to be assigned
  LogField(std::string_view key, std::string_view text) : key_(key), text_(text) {}
  LogField(std::string_view key, std::int64_t number) : key_(key), number_(number), kind_(kInt) {}
  // The fixed-point number units / 10^decimals, with exactly `decimals` digits after the point
  // (0 <= decimals <= 9): durations in ms with µs precision, exact and without a double.
  static LogField Decimal(std::string_view key, std::int64_t units, int decimals);

  // Appends the value as a JSON value (a string quoted and escaped; a number bare).
  void AppendJson(std::string& out) const;
  // Appends the value as text: bare when it is a number or plain, else as a JSON string.
  void AppendText(std::string& out) const;
  std::string_view key() const { return key_; }

 private:
  enum Kind : std::uint8_t { kText, kInt, kDecimal };
  void AppendNumber(std::string& out) const;

  std::string_view key_;
  std::string_view text_;
  std::int64_t number_ = 0;
  Kind kind_ = kText;
  int decimals_ = 0;
};

struct LogLine {
  Instant time;
  LogLevel level;
  std::string_view msg;
  std::span<const LogField> fields;
};

// Appends `line` to `out` in `format`, with its final '\n'.
void AppendLogLine(LogFormat format, const LogLine& line, std::string& out);

}  // namespace callgate
