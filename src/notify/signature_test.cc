// Unit tests of notification signatures (notify/signature.h).
#include "notify/signature.h"

#include <gtest/gtest.h>

namespace callgate {
namespace {

TEST(NotifySignatureTest, KnownVectorMatchesOpenSslHmac) {
  // printf '%s' '1767225600.{"a":1}' | openssl dgst -sha256 -hmac secret
  EXPECT_EQ(SignNotification(1767225600, R"({"a":1})", {"secret"}),
            "t=1767225600,v1=96a067a1c95eb143fc00b9097bcfcbcd5456adda508c443ff219748e764dbed7");
}

TEST(NotifySignatureTest, VerifiesUnderEitherSecretDuringOverlap) {
  const std::string header = SignNotification(1000, "body", {"new", "old"});
  EXPECT_TRUE(VerifyNotificationSignature(header, "body", "new", 1000, 300));
  EXPECT_TRUE(VerifyNotificationSignature(header, "body", "old", 1000, 300));
  EXPECT_FALSE(VerifyNotificationSignature(header, "body", "other", 1000, 300));
}

TEST(NotifySignatureTest, RejectsAChangedBodyOrAStaleTime) {
  const std::string header = SignNotification(1000, "body", {"s"});
  EXPECT_FALSE(VerifyNotificationSignature(header, "bodY", "s", 1000, 300));
  EXPECT_FALSE(VerifyNotificationSignature(header, "body", "s", 1301, 300));
  EXPECT_TRUE(VerifyNotificationSignature(header, "body", "s", 1300, 300));
  EXPECT_FALSE(VerifyNotificationSignature("v1=abc", "body", "s", 1000, 300));
}

}  // namespace
}  // namespace callgate
