#include "log/format.h"

#include <algorithm>
#include <array>

#include "core/json_string.h"
#include "core/swar.h"

namespace callgate {

namespace {

// What text may hold as it is: printable ASCII (kPlain), so a line shows as it is and nothing in
// it can end it; for a value also no space, '"', '=' or '\\' (kBare), so it cannot be mistaken
// for several. Every access line checks ~170 bytes: eight at a time, then a table.
enum : std::uint8_t { kPlain = 1, kBare = 2 };
constexpr std::array<std::uint8_t, 256> kTextClass = [] {
  std::array<std::uint8_t, 256> classes{};
  for (int c = 0x20; c <= 0x7e; ++c) classes[c] = kPlain | kBare;
  for (const char c : {' ', '"', '=', '\\'}) classes[static_cast<unsigned char>(c)] = kPlain;
  return classes;
}();

bool All(std::string_view s, std::uint8_t mask) {
  using namespace swar;
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    const std::uint64_t w = Load(s, i);
    // Outside 0x20..0x7e: below 0x20, 0x80 or above, or 0x7f (which 1 more makes 0x80; adding 1
    // carries into no other byte once none is 0x80 or above).
    std::uint64_t bad = Below(w, 0x20) | High(w) | High(w + kOnes);
    if (mask & kBare) bad |= Equal(w, ' ') | Equal(w, '"') | Equal(w, '=') | Equal(w, '\\');
    if (bad != 0) return false;
  }
  for (; i < s.size(); ++i) {
    if (!(kTextClass[static_cast<unsigned char>(s[i])] & mask)) return false;
  }
  return true;
}

// `t` as RFC 3339 UTC with ms. The lines of one thread mostly fall in one second: its
// "YYYY-MM-DDTHH:MM:SS." is kept, and a line formats three digits.
void AppendTime(std::string& out, Instant t) {
  thread_local std::chrono::sys_seconds second = std::chrono::sys_seconds::min();
  thread_local std::string prefix;
  const auto this_second = std::chrono::floor<std::chrono::seconds>(t);
  if (this_second != second) {
    prefix = FormatMillis(t).substr(0, 20);  // up to and with the '.'
    second = this_second;
  }
  const auto millis = static_cast<unsigned>((t - this_second).count());
  const char digits[] = {static_cast<char>('0' + millis / 100),
                         static_cast<char>('0' + millis / 10 % 10),
                         static_cast<char>('0' + millis % 10), 'Z'};
  out.append(prefix).append(digits, sizeof digits);
}

// `value` in decimal, with at least `min_digits` digits (zeros ahead).
void AppendInt(std::string& out, std::uint64_t value, int min_digits = 1) {
  char digits[20];
  char* const end = digits + sizeof digits;
  char* p = end;
  do {
    *--p = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (end - p < min_digits) *--p = '0';
  out.append(p, end);
}

}  // namespace

std::optional<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "error";
}

LogField LogField::Decimal(std::string_view key, std::int64_t units, int decimals) {
  LogField field(key, units);
  field.kind_ = kDecimal;
  field.decimals_ = std::clamp(decimals, 0, 9);
  return field;
}

void LogField::AppendNumber(std::string& out) const {
  // The magnitude as unsigned, so the most negative value has one too.
  const std::uint64_t magnitude =
      number_ < 0 ? 0 - static_cast<std::uint64_t>(number_) : static_cast<std::uint64_t>(number_);
  if (number_ < 0) out.push_back('-');
  if (kind_ != kDecimal || decimals_ == 0) return AppendInt(out, magnitude);
  std::uint64_t scale = 1;
  for (int i = 0; i < decimals_; ++i) scale *= 10;
  AppendInt(out, magnitude / scale);
  out.push_back('.');
  AppendInt(out, magnitude % scale, decimals_);
}

void LogField::AppendJson(std::string& out) const {
  if (kind_ == kText) return AppendJsonString(out, text_);
  AppendNumber(out);
}

void LogField::AppendText(std::string& out) const {
  if (kind_ != kText) return AppendNumber(out);
  if (!text_.empty() && All(text_, kBare)) {
    out.append(text_);
  } else {
    AppendJsonString(out, text_);
  }
}

void AppendLogLine(LogFormat format, const LogLine& line, std::string& out) {
  if (format == LogFormat::kJson) {
    out.append(R"({"time":")");
    AppendTime(out, line.time);
    out.append(R"(","level":")");
    out.append(LogLevelName(line.level)).append(R"(","msg":)");
    AppendJsonString(out, line.msg);
    for (const LogField& field : line.fields) {
      // A key is the program's own identifier (format.h): written as it is, like text does.
      out.append(",\"").append(field.key()).append("\":");
      field.AppendJson(out);
    }
    out.append("}\n");
    return;
  }
  AppendTime(out, line.time);
  out.push_back(' ');
  out.append(LogLevelName(line.level)).push_back(' ');
  if (!line.msg.empty() && All(line.msg, kPlain)) {
    out.append(line.msg);
  } else {
    AppendJsonString(out, line.msg);
  }
  for (const LogField& field : line.fields) {
    out.push_back(' ');
    out.append(field.key()).push_back('=');
    field.AppendText(out);
  }
  out.push_back('\n');
}

}  // namespace callgate
