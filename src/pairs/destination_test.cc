#include "pairs/destination.h"

#include <gtest/gtest.h>
#include <phonenumbers/phonenumberutil.h>

#include <random>
#include <set>
#include <string>

namespace callgate {
namespace {

using i18n::phonenumbers::PhoneNumberUtil;

bool Accepted(const std::string& raw) { return NormalizeDestination(raw).ok(); }

// libphonenumber's own verdict through its full parser: the reference for the fast path.
bool LibphonenumberPossible(const std::string& number) {
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  i18n::phonenumbers::PhoneNumber parsed;
  return util.Parse(number, "ZZ", &parsed) == PhoneNumberUtil::NO_PARSING_ERROR &&
         util.IsPossibleNumber(parsed);
}

TEST(DestinationTest, PublishedExamplePasses) { EXPECT_TRUE(Accepted("+6500000000")); }

TEST(DestinationTest, AcceptsPossibleNumbersOfManyRegions) {
  for (const char* number : {"+6591234567", "+14155552671", "+447911123456", "+393123456789",
                             "+390612345678", "+4930123456", "+919876543210", "+5511987654321",
                             "+8613800138000", "+2348012345678", "+61412345678"}) {
    EXPECT_TRUE(Accepted(number)) << number;
  }
}

// Regression: an all-zero national number (the published example) fell through to the ~6 us
// regex parser on every request.
TEST(DestinationTest, FastPathCoversCommonNumbersAndThePublishedExample) {
  for (const char* digits : {"6500000000", "6591234567", "14155552671", "447911123456",
                             "390612345678", "919876543210"}) {
    EXPECT_TRUE(PossibleWithoutParse(digits)) << digits;
  }
}

TEST(DestinationTest, LeadingSpaceIsAnUnencodedPlus) {
  const auto number = NormalizeDestination(" 6591234567");
  ASSERT_TRUE(number.ok());
  EXPECT_EQ(number->text(), "+6591234567");
}

TEST(DestinationTest, MissingAndEmptyAreMissing) {
  EXPECT_EQ(NormalizeDestination(std::nullopt).error(), DestinationError::kMissing);
  EXPECT_EQ(NormalizeDestination(std::string()).error(), DestinationError::kMissing);
}

TEST(DestinationTest, RejectsWhatIsNotE164) {
  for (const char* bad :
       {"6591234567", "+", "+1", "+0591234567", "+65 9123 4567", "+65-91234567", "+9991234567",
        "+1234567890123456", "+65912345678901234", "+44", "++6591234567", "+65912345a7"}) {
    EXPECT_EQ(NormalizeDestination(std::string(bad)).error(), DestinationError::kInvalid) << bad;
  }
}

// The fast path must never refuse what libphonenumber's full parse accepts, and for E.164
// input (no national prefix after the country code) the two must agree.
TEST(DestinationTest, AgreesWithLibphonenumberOnRandomNumbers) {
  std::mt19937 rng(7);
  int disagreements = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string number = "+" + std::to_string(1 + rng() % 9);
    const int length = 2 + static_cast<int>(rng() % 14);
    while (static_cast<int>(number.size()) < length + 1) number += std::to_string(rng() % 10);
    const bool reference = LibphonenumberPossible(number);
    if (reference) {
      EXPECT_TRUE(Accepted(number)) << number;
    }
    disagreements += Accepted(number) != reference;
  }
  // Accepting more happens only when a national digit follows the code as a leading zero,
  // which the full parse strips as a trunk prefix; keep it rare.
  EXPECT_LT(disagreements, 200);
}

// The fast path's table (possible lengths per calling code) against libphonenumber's own test
// on the number itself, for every calling code, every national length and leading zeros.
TEST(DestinationTest, FastPathAgreesWithLibphonenumberForEveryCallingCodeAndLength) {
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  std::set<int> codes;
  util.GetSupportedCallingCodes(&codes);
  ASSERT_GT(codes.size(), 200u);
  std::mt19937_64 rng(11);
  for (const int cc : codes) {
    for (int length = 1; length <= 15 - static_cast<int>(std::to_string(cc).size()); ++length) {
      for (int sample = 0; sample < 4; ++sample) {
        std::string national;
        const int zeros = sample == 0 ? 0 : static_cast<int>(rng() % 3);
        for (int i = 0; i < length; ++i) {
          national +=
              i < zeros ? '0' : static_cast<char>('0' + (i == zeros ? 1 + rng() % 9 : rng() % 10));
        }
        i18n::phonenumbers::PhoneNumber number;
        number.set_country_code(cc);
        const std::size_t first = national.find_first_not_of('0');
        number.set_national_number(
            first == std::string::npos ? 0 : std::stoull(national.substr(first)));
        const int leading = first == std::string::npos ? length - 1 : static_cast<int>(first);
        if (leading > 0) {
          number.set_italian_leading_zero(true);
          if (leading > 1) number.set_number_of_leading_zeros(leading);
        }
        const std::string digits = std::to_string(cc) + national;
        EXPECT_EQ(PossibleWithoutParse(digits), util.IsPossibleNumber(number)) << "+" << digits;
      }
    }
  }
}

TEST(BsuidTest, ABsuidIsACountryDotAndUpTo128Alphanumerics) {
  for (const char* ok :
       {"US.13491208655302741918", "US.ENT.11815799212886844830", "SG.a", "BR.Ab9"}) {
    EXPECT_TRUE(IsBsuid(ok)) << ok;
  }
  EXPECT_TRUE(IsBsuid("US." + std::string(128, 'z')));
  for (const char* bad : {"", "US", "US.", "US.ENT.", "us.1", "U.1", "USA.1", "US-1", "US.1.2",
                          "US.1 2", "+6591234567", "US.ENT.ENT.1"}) {
    EXPECT_FALSE(IsBsuid(bad)) << bad;
  }
  EXPECT_FALSE(IsBsuid("US." + std::string(129, 'z')));
}

TEST(NormalizeUserTest, ExactlyOneOfDestinationAndChannelUserId) {
  EXPECT_EQ(NormalizeUser(std::nullopt, std::nullopt).error(), DestinationError::kMissing);
  EXPECT_EQ(NormalizeUser(std::nullopt, std::string()).error(), DestinationError::kMissing);
  EXPECT_EQ(NormalizeUser("+6591234567", "US.1").error(), DestinationError::kBothGiven);
  EXPECT_EQ(NormalizeUser(std::nullopt, "6591234567").error(),
            DestinationError::kInvalidChannelUserId);
  const auto by_phone = NormalizeUser("+6591234567", std::nullopt);
  ASSERT_TRUE(by_phone.ok());
  EXPECT_EQ(by_phone->kind(), UserIdKind::kPhone);
  const auto by_bsuid = NormalizeUser(std::nullopt, "US.1");
  ASSERT_TRUE(by_bsuid.ok());
  EXPECT_EQ(by_bsuid->kind(), UserIdKind::kBsuid);
  EXPECT_EQ(by_bsuid->text(), "US.1");
  EXPECT_EQ(UserId::FromText("US.1"), *by_bsuid);
  EXPECT_EQ(UserId::FromText("+6591234567"), *by_phone);
}

}  // namespace
}  // namespace callgate
