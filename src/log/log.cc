#include "log/log.h"

#include <array>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/log_throttle.h"
#include "log/writer.h"

namespace callgate {

namespace {

constexpr double kLinesPerSecond = 10;
constexpr double kBurst = 20;

struct Throttles {
  std::mutex mu;
  std::array<std::optional<LogThrottle>, kLogKindCount> by_kind;  // indexed by LogKind
};

LogLevel LevelOf(LogKind kind) {
  switch (kind) {
    case LogKind::kServerError:
      return LogLevel::kError;
    case LogKind::kNotificationSent:
      return LogLevel::kInfo;
    case LogKind::kWebhookSkipped:
    case LogKind::kConnection:
    case LogKind::kNotificationFailed:
      return LogLevel::kWarn;
  }
  return LogLevel::kWarn;
}

// The process's writer. Never destroyed, so a thread may log while the process exits; what is
// queued is written by FlushLog at exit (std::atexit) instead.
LogWriter& Writer() {
  static LogWriter* const writer = [] {
    auto* w = new LogWriter({});
    std::atexit(FlushLog);
    return w;
  }();
  return *writer;
}

// A line formatted in a per-thread buffer: no allocation per line once it has grown.
std::string& Scratch() {
  thread_local std::string scratch;
  scratch.clear();
  return scratch;
}

void WriteLine(LogLevel level, Instant time, std::string_view msg,
               std::span<const LogField> fields) {
  LogWriter& writer = Writer();
  std::string& line = Scratch();
  AppendLogLine(writer.format(), {time, level, msg, fields}, line);
  writer.Write(line);
}

}  // namespace

void ConfigureLog(LogFormat format, int fd) { Writer().Configure(fd, format); }

LogFormat CurrentLogFormat() { return Writer().format(); }

Instant LogNow() { return std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now()); }

void Log(LogKind kind, Instant now, std::string_view msg, std::initializer_list<LogField> fields) {
  static Throttles throttles;
  std::uint64_t held_back = 0;
  {
    std::lock_guard lock(throttles.mu);
    auto& throttle = throttles.by_kind[static_cast<std::size_t>(kind)];
    if (!throttle) throttle.emplace(kLinesPerSecond, kBurst, now);
    if (!throttle->Admit(now, held_back)) return;
  }
  if (held_back == 0) return WriteLine(LevelOf(kind), now, msg, {fields.begin(), fields.size()});
  // Rare: the first line after some were held back says how many.
  std::vector<LogField> with(fields);
  with.emplace_back("heldBack", static_cast<std::int64_t>(held_back));
  WriteLine(LevelOf(kind), now, msg, with);
}

void LogNotice(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  WriteLine(level, LogNow(), msg, {fields.begin(), fields.size()});
}

void LogAccess(Instant time, std::span<const LogField> fields) {
  LogWriter& writer = Writer();
  std::string& line = Scratch();
  AppendLogLine(writer.format(), {time, LogLevel::kInfo, "access", fields}, line);
  writer.Queue(line);
}

void FlushLog() { Writer().Flush(); }

}  // namespace callgate
