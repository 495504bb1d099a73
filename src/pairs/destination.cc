#include "pairs/destination.h"

#include <phonenumbers/phonenumberutil.h>

#include <cstdint>
#include <set>
#include <vector>

namespace callgate {
namespace {

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

// libphonenumber's possible-number test depends only on the calling code and the length of the
// national significant number (leading zeros included): it compares that length with the
// possible lengths of the code's main region. So it is asked once per (code, length), at first
// use, and a request costs a table lookup; asking per request cost ~1.5k instructions and a list
// of region names allocated inside libphonenumber. Bit n of kPossibleLengths[cc]: a national
// number of n digits is possible after calling code cc (0: cc is not a calling code).
constexpr std::size_t kMaxNationalDigits = 17;

const std::vector<std::uint32_t>& PossibleLengths(const PhoneNumberUtil& util) {
  static const std::vector<std::uint32_t> kPossibleLengths = [&util] {
    std::vector<std::uint32_t> lengths(1000, 0);
    std::set<int> codes;
    util.GetSupportedCallingCodes(&codes);
    for (const int cc : codes) {
      if (cc <= 0 || cc >= 1000) continue;
      std::uint64_t national = 1;  // 1, 10, 100, ...: n digits
      for (std::size_t n = 1; n <= kMaxNationalDigits; ++n, national *= 10) {
        PhoneNumber number;
        number.set_country_code(cc);
        number.set_national_number(national);
        if (util.IsPossibleNumber(number)) lengths[static_cast<std::size_t>(cc)] |= 1u << n;
      }
    }
    return lengths;
  }();
  return kPossibleLengths;
}

// The possible-number test on "+digits" without PhoneNumberUtil::Parse, whose regular
// expressions cost ~6 µs a call, more than the rest of a status request. Country calling codes
// are prefix-free, so at most one 1–3 digit prefix is a known code.
bool PossibleFast(const PhoneNumberUtil& util, std::string_view digits) {
  const std::vector<std::uint32_t>& possible = PossibleLengths(util);
  for (std::size_t cc_len = 1; cc_len <= 3 && cc_len < digits.size(); ++cc_len) {
    std::size_t cc = 0;
    for (std::size_t i = 0; i < cc_len; ++i) {
      cc = cc * 10 + static_cast<std::size_t>(digits[i] - '0');
    }
    if (possible[cc] == 0) continue;
    const std::size_t national = digits.size() - cc_len;
    return national <= kMaxNationalDigits && (possible[cc] >> national & 1u) != 0;
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

Result<UserId, DestinationError> NormalizeDestination(const std::optional<std::string>& raw) {
  if (!raw || raw->empty()) return DestinationError::kMissing;
  std::string number = *raw;
  if (number.front() == ' ') number.front() = '+';
  if (number.size() < 3 || number.size() > 16 || number[0] != '+' || number[1] < '1' ||
      number[1] > '9') {
    return DestinationError::kInvalid;
  }
  for (std::size_t i = 1; i < number.size(); ++i) {
    if (number[i] < '0' || number[i] > '9') return DestinationError::kInvalid;
  }
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  if (!PossibleFast(util, std::string_view(number).substr(1)) && !PossibleParsed(util, number)) {
    return DestinationError::kInvalid;
  }
  return UserId::Phone(std::move(number));
}

Result<UserId, DestinationError> NormalizeUser(const std::optional<std::string>& destination,
                                               const std::optional<std::string>& channel_user_id) {
  if (!channel_user_id) return NormalizeDestination(destination);
  if (destination) return DestinationError::kBothGiven;
  if (channel_user_id->empty()) return DestinationError::kMissing;
  if (!IsBsuid(*channel_user_id)) return DestinationError::kInvalidChannelUserId;
  return UserId::Bsuid(*channel_user_id);
}

}  // namespace callgate
