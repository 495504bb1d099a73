// The admin CLI's notification commands (admin/admin.h) on a MemoryStore: the secret printed
// once and never shown, rotation with a 24 h overlap of both secrets, clear, refusals.
#include "admin/admin.h"

#include <gtest/gtest.h>

#include <sstream>

#include "notify/signature.h"
#include "store/memory/memory_store.h"

namespace callgate {
namespace {

const Instant kNow = FromUnixMillis(1'767'225'600'000);

class NotifyAdminTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.CreateAccount({"acme", kNow}).ok()); }
  // Runs `command` at `at`; its exit code, and its stdout in out_ (stderr in err_).
  template <class F>
  int Run(F&& command, Instant at = kNow) {
    out_.str("");
    err_.str("");
    return command(AdminContext{store_, at, out_, err_});
  }
  std::string Line() const {
    std::string s = out_.str();
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
  const NotifyTarget& Target() {
    snapshot_ = *store_.LoadTenants();
    return snapshot_.notify_targets.at("acme");
  }

  MemoryStore store_;
  std::ostringstream out_, err_;
  TenantSnapshot snapshot_;
};

TEST_F(NotifyAdminTest, SetPrintsTheSecretOnceAndShowNeverDoes) {
  ASSERT_EQ(Run([](auto ctx) { return SetNotify(ctx, "acme", "https://hooks.example/cg"); }), 0);
  const std::string secret = Line();
  EXPECT_EQ(secret.rfind("cgws_", 0), 0u);
  EXPECT_EQ(secret.find('\n'), std::string::npos);
  EXPECT_EQ(Target().secret, secret);
  ASSERT_EQ(Run([](auto ctx) { return ShowNotify(ctx, "acme"); }), 0);
  EXPECT_NE(out_.str().find("url=https://hooks.example/cg"), std::string::npos) << out_.str();
  EXPECT_EQ(out_.str().find(secret), std::string::npos);
}

TEST_F(NotifyAdminTest, RotationSignsWithBothSecretsFor24Hours) {
  ASSERT_EQ(Run([](auto ctx) { return SetNotify(ctx, "acme", "http://127.0.0.1:9/x"); }), 0);
  const std::string old_secret = Line();
  ASSERT_EQ(Run([](auto ctx) { return RotateNotifySecret(ctx, "acme"); }), 0);
  const std::string new_secret = Line();
  EXPECT_NE(new_secret, old_secret);
  const NotifyTarget& target = Target();
  ASSERT_EQ(target.SigningSecrets(kNow).size(), 2u);
  const std::string header = SignNotification(100, "{}", target.SigningSecrets(kNow));
  EXPECT_TRUE(VerifyNotificationSignature(header, "{}", old_secret, 100, 300));
  EXPECT_TRUE(VerifyNotificationSignature(header, "{}", new_secret, 100, 300));
  EXPECT_EQ(target.SigningSecrets(kNow + kSecretOverlap), std::vector<std::string>{new_secret});
  ASSERT_EQ(Run([](auto ctx) { return ShowNotify(ctx, "acme"); }), 0);
  EXPECT_EQ(out_.str().find(old_secret), std::string::npos);
  EXPECT_EQ(out_.str().find(new_secret), std::string::npos);
}

TEST_F(NotifyAdminTest, ClearTurnsNotificationsOff) {
  ASSERT_EQ(Run([](auto ctx) { return SetNotify(ctx, "acme", "http://127.0.0.1:9/x"); }), 0);
  ASSERT_EQ(Run([](auto ctx) { return ClearNotify(ctx, "acme"); }), 0);
  EXPECT_TRUE(store_.LoadTenants()->notify_targets.empty());
  ASSERT_EQ(Run([](auto ctx) { return ShowNotify(ctx, "acme"); }), 0);
  EXPECT_NE(out_.str().find("notifications=off"), std::string::npos);
  EXPECT_EQ(Run([](auto ctx) { return RotateNotifySecret(ctx, "acme"); }), 1);
}

TEST_F(NotifyAdminTest, RefusesBadUrlsAndUnknownAccounts) {
  for (const char* url : {"ftp://x/y", "https://", "https://user:pw@hooks.example/", "http:// x/",
                          "hooks.example/cg"}) {
    EXPECT_EQ(Run([url](auto ctx) { return SetNotify(ctx, "acme", url); }), 2) << url;
    EXPECT_TRUE(out_.str().empty());
  }
  EXPECT_EQ(Run([](auto ctx) { return SetNotify(ctx, "nobody", "http://127.0.0.1/"); }), 1);
  EXPECT_NE(err_.str().find("does not exist"), std::string::npos);
}

}  // namespace
}  // namespace callgate
