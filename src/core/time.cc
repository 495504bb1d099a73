#include "core/time.h"

#include <charconv>
#include <cstdio>

namespace callgate {
namespace {

std::string Format(Instant t, int fraction_digits) {
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd(day);
  const std::chrono::hh_mm_ss hms(t - day);
  const auto millis = hms.subseconds().count();
  char buf[40];
  const int fraction =
      fraction_digits == 2 ? static_cast<int>(millis / 10) : static_cast<int>(millis);
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%0*dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                fraction_digits, fraction);
  return buf;
}

bool ReadInt(std::string_view text, std::size_t pos, std::size_t len, int& out) {
  if (pos + len > text.size()) return false;
  const char* begin = text.data() + pos;
  const auto [end, ec] = std::from_chars(begin, begin + len, out);
  return ec == std::errc() && end == begin + len;
}

}  // namespace

std::string FormatCentis(Instant t) { return Format(t, 2); }
std::string FormatMillis(Instant t) { return Format(t, 3); }

std::optional<Instant> ParseTimestamp(std::string_view text) {
  int year, month, day, hour, minute, second;
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text.back() != 'Z') {
    return std::nullopt;
  }
  if (!ReadInt(text, 0, 4, year) || !ReadInt(text, 5, 2, month) || !ReadInt(text, 8, 2, day) ||
      !ReadInt(text, 11, 2, hour) || !ReadInt(text, 14, 2, minute) ||
      !ReadInt(text, 17, 2, second)) {
    return std::nullopt;
  }
  int millis = 0;
  std::size_t pos = 19;
  if (text[pos] == '.') {
    int scale = 100;
    for (++pos; pos + 1 < text.size(); ++pos) {
      if (text[pos] < '0' || text[pos] > '9') return std::nullopt;
      millis += (text[pos] - '0') * scale;
      scale /= 10;
    }
  }
  if (pos != text.size() - 1) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(year),
                                        std::chrono::month(static_cast<unsigned>(month)),
                                        std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 59) return std::nullopt;
  return Instant(std::chrono::sys_days(ymd)) + std::chrono::hours(hour) +
         std::chrono::minutes(minute) + std::chrono::seconds(second) + Millis(millis);
}

}  // namespace callgate
