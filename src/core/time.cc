#include "core/time.h"

#include <charconv>

namespace callgate {
namespace {

// Writes `value` as exactly `width` digits at `out`.
char* Digits(char* out, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return out + width;
}

// Hand-formatted: this runs on every status response, and snprintf cost more than the rest of
// the rendering together. Writes at most kMaxTimestampChars at `buf`; returns the end.
char* FormatTo(char* buf, Instant t, int fraction_digits) {
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd(day);
  const std::chrono::hh_mm_ss hms(t - day);
  const auto millis = static_cast<unsigned>(hms.subseconds().count());
  char* p = Digits(buf, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
  *p++ = '-';
  p = Digits(p, static_cast<unsigned>(ymd.month()), 2);
  *p++ = '-';
  p = Digits(p, static_cast<unsigned>(ymd.day()), 2);
  *p++ = 'T';
  p = Digits(p, static_cast<unsigned>(hms.hours().count()), 2);
  *p++ = ':';
  p = Digits(p, static_cast<unsigned>(hms.minutes().count()), 2);
  *p++ = ':';
  p = Digits(p, static_cast<unsigned>(hms.seconds().count()), 2);
  *p++ = '.';
  p = fraction_digits == 2 ? Digits(p, millis / 10, 2) : Digits(p, millis, 3);
  *p++ = 'Z';
  return p;
}

std::string Format(Instant t, int fraction_digits) {
  char buf[kMaxTimestampChars];
  return std::string(buf, FormatTo(buf, t, fraction_digits));
}

bool ReadInt(std::string_view text, std::size_t pos, std::size_t len, int& out) {
  if (pos + len > text.size()) return false;
  const char* begin = text.data() + pos;
  const auto [end, ec] = std::from_chars(begin, begin + len, out);
  return ec == std::errc() && end == begin + len;
}

}  // namespace

std::string FormatCentis(Instant t) { return Format(t, 2); }
char* FormatCentisTo(char* out, Instant t) { return FormatTo(out, t, 2); }
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
