#include "api/destination.h"

#include <phonenumbers/phonenumberutil.h>

namespace callgate {

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
  using i18n::phonenumbers::PhoneNumberUtil;
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  i18n::phonenumbers::PhoneNumber parsed;
  if (util.Parse(number, "ZZ", &parsed) != PhoneNumberUtil::NO_PARSING_ERROR ||
      !util.IsPossibleNumber(parsed)) {
    return ApiError::kDestinationInvalid;
  }
  return number;
}

}  // namespace callgate
