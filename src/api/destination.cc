#include "api/destination.h"

#include <phonenumbers/phonenumberutil.h>

#include <set>
#include <vector>

namespace callgate {
namespace {

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

// Whether `cc` is a country calling code libphonenumber knows: asked once, then a table lookup
// (asking per request allocated a list of region names every time).
bool KnownCallingCode(const PhoneNumberUtil& util, int cc) {
  static const std::vector<bool> kKnown = [&util] {
    std::vector<bool> known(1000, false);
    std::set<int> codes;
    util.GetSupportedCallingCodes(&codes);
    for (const int code : codes) {
      if (code > 0 && code < 1000) known[static_cast<std::size_t>(code)] = true;
    }
    return known;
  }();
  return kKnown[static_cast<std::size_t>(cc)];
}

// The possible-number test on "+digits" without PhoneNumberUtil::Parse, whose regular
// expressions cost ~6 µs a call, more than the rest of a status request. Country calling codes
// are prefix-free, so at most one 1–3 digit prefix is a known code.
bool PossibleFast(const PhoneNumberUtil& util, std::string_view digits) {
  for (std::size_t cc_len = 1; cc_len <= 3 && cc_len < digits.size(); ++cc_len) {
    int cc = 0;
    for (std::size_t i = 0; i < cc_len; ++i) cc = cc * 10 + (digits[i] - '0');
    if (!KnownCallingCode(util, cc)) continue;
    const std::string_view national = digits.substr(cc_len);
    if (national.size() > 17) return false;
    std::size_t zeros = 0;
    while (zeros < national.size() && national[zeros] == '0') ++zeros;
    // An all-zero national number is the number 0 ("0") after zeros - 1 leading zeros.
    if (zeros == national.size()) --zeros;
    PhoneNumber number;
    number.set_country_code(cc);
    number.set_national_number(std::stoull(std::string(national)));
    if (zeros > 0) {
      number.set_italian_leading_zero(true);
      if (zeros > 1) number.set_number_of_leading_zeros(static_cast<int>(zeros));
    }
    return util.IsPossibleNumber(number);
  }
  return false;
}

// The full parse: accepts whatever libphonenumber accepts for this input (e.g. a national
// prefix after the country code), for the rare number the fast path refuses.
bool PossibleParsed(const PhoneNumberUtil& util, const std::string& number) {
  PhoneNumber parsed;
  return util.Parse(number, "ZZ", &parsed) == PhoneNumberUtil::NO_PARSING_ERROR &&
         util.IsPossibleNumber(parsed);
}

}  // namespace

bool PossibleWithoutParse(std::string_view digits) {
  return PossibleFast(*PhoneNumberUtil::GetInstance(), digits);
}

Result<std::string, ApiError> NormalizeDestination(const std::optional<std::string>& raw) {
  if (!raw || raw->empty()) return ApiError::kDestinationMissing;
  std::string number = *raw;
  if (number.front() == ' ') number.front() = '+';
  if (number.size() < 3 || number.size() > 16 || number[0] != '+' || number[1] < '1' ||
      number[1] > '9') {
    return ApiError::kDestinationInvalid;
  }
  for (std::size_t i = 1; i < number.size(); ++i) {
    if (number[i] < '0' || number[i] > '9') return ApiError::kDestinationInvalid;
  }
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  if (!PossibleFast(util, std::string_view(number).substr(1)) && !PossibleParsed(util, number)) {
    return ApiError::kDestinationInvalid;
  }
  return number;
}

}  // namespace callgate
