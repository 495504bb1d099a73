#include "log/format.h"

#include <algorithm>
#include <charconv>

#include "core/json_string.h"

namespace callgate {

namespace {

// Plain text: printable ASCII, so a line shows as it is and nothing in it can end it.
bool PrintableAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// A text value written bare must also not be mistaken for several: no space, '"', '=' or '\'.
bool BareValue(std::string_view s) {
  return !s.empty() && PrintableAscii(s) && s.find_first_of(" \"=\\") == std::string_view::npos;
}

void AppendInt(std::string& out, std::uint64_t value, int min_digits = 1) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  for (int n = static_cast<int>(end - buf); n < min_digits; ++n) out.push_back('0');
  out.append(buf, end);
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
  if (BareValue(text_)) {
    out.append(text_);
  } else {
    AppendJsonString(out, text_);
  }
}

void AppendLogLine(LogFormat format, const LogLine& line, std::string& out) {
  const std::string time = FormatMillis(line.time);
  if (format == LogFormat::kJson) {
    out.append(R"({"time":")").append(time).append(R"(","level":")");
    out.append(LogLevelName(line.level)).append(R"(","msg":)");
    AppendJsonString(out, line.msg);
    for (const LogField& field : line.fields) {
      out.push_back(',');
      AppendJsonString(out, field.key());
      out.push_back(':');
      field.AppendJson(out);
    }
    out.append("}\n");
    return;
  }
  out.append(time).push_back(' ');
  out.append(LogLevelName(line.level)).push_back(' ');
  if (!line.msg.empty() && PrintableAscii(line.msg)) {
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
