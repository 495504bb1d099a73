#include "tenants/api_key.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "store/memory/memory_store.h"
#include "tenants/directory.h"

namespace callgate {
namespace {

const Instant kT0 = FromUnixMillis(1'700'000'000'000);
constexpr std::size_t kPrefixAndIdLength = 4 + 16 + 1;  // "cgk_" + key id + "_"

std::string SecretOf(const std::string& plaintext) { return plaintext.substr(kPrefixAndIdLength); }

// Decodes unpadded base64url; nullopt on any character outside its alphabet.
std::optional<std::vector<std::uint8_t>> DecodeBase64Url(std::string_view text) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::vector<std::uint8_t> out;
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const std::size_t value = kAlphabet.find(c);
    if (value == std::string::npos) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<std::uint8_t>(bits >> count));
    }
  }
  return out;
}

NewApiKey GenerateOrFail(const std::string& account_id) {
  auto key = GenerateApiKey(account_id, kT0);
  EXPECT_TRUE(key.has_value());
  return key ? *key : NewApiKey{};
}

TEST(GenerateApiKeyTest, PlaintextHasTheDocumentedShape) {
  const NewApiKey key = GenerateOrFail("acc-1");
  static const std::regex kShape("cgk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}");
  EXPECT_TRUE(std::regex_match(key.plaintext, kShape)) << key.plaintext;
}

TEST(GenerateApiKeyTest, SecretCarries32Bytes) {
  const NewApiKey key = GenerateOrFail("acc-1");
  const auto secret = DecodeBase64Url(SecretOf(key.plaintext));
  ASSERT_TRUE(secret.has_value()) << key.plaintext;
  EXPECT_GE(secret->size(), 32u);
}

TEST(GenerateApiKeyTest, KeysDiffer) {
  constexpr int kKeys = 200;
  std::set<std::string> ids;
  std::set<std::string> secrets;
  // Every byte position of the secret takes several values: no byte is fixed.
  std::vector<std::set<std::uint8_t>> byte_values(32);
  for (int i = 0; i < kKeys; ++i) {
    const NewApiKey key = GenerateOrFail("acc-1");
    ids.insert(key.record.key_id);
    secrets.insert(SecretOf(key.plaintext));
    const auto secret = DecodeBase64Url(SecretOf(key.plaintext));
    ASSERT_TRUE(secret.has_value());
    ASSERT_GE(secret->size(), 32u);
    for (std::size_t b = 0; b < 32; ++b) byte_values[b].insert((*secret)[b]);
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kKeys));
  EXPECT_EQ(secrets.size(), static_cast<std::size_t>(kKeys));
  for (std::size_t b = 0; b < 32; ++b) {
    EXPECT_GT(byte_values[b].size(), 50u) << "secret byte " << b << " barely varies";
  }
}

TEST(GenerateApiKeyTest, RecordHoldsOnlyTheSecretsHash) {
  const NewApiKey key = GenerateOrFail("acc-1");
  const std::string secret = SecretOf(key.plaintext);
  EXPECT_EQ(key.record.account_id, "acc-1");
  EXPECT_EQ(ToUnixMillis(key.record.created_at), ToUnixMillis(kT0));
  EXPECT_FALSE(key.record.revoked_at.has_value());
  EXPECT_EQ(key.plaintext.substr(4, 16), key.record.key_id);
  EXPECT_EQ(key.record.key_id.find(secret), std::string::npos);
  EXPECT_EQ(key.record.account_id.find(secret), std::string::npos);

  Sha256 expected;
  SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), expected.data());
  EXPECT_EQ(key.record.secret_hash, expected);
  const auto raw = DecodeBase64Url(secret);
  ASSERT_TRUE(raw.has_value());
  EXPECT_FALSE(std::equal(raw->begin(), raw->begin() + 32, key.record.secret_hash.begin()));
}

class AuthenticateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tenants_.accounts.emplace("acc-1", Account{"acc-1", kT0});
    tenants_.accounts.emplace("acc-2", Account{"acc-2", kT0});
    first_ = GenerateOrFail("acc-1");
    second_ = GenerateOrFail("acc-2");
    tenants_.api_keys.emplace(first_.record.key_id, first_.record);
    tenants_.api_keys.emplace(second_.record.key_id, second_.record);
  }

  TenantSnapshot tenants_;
  NewApiKey first_;
  NewApiKey second_;
};

TEST_F(AuthenticateTest, RightKeyGivesItsAccount) {
  const Account* account = Authenticate(tenants_, first_.plaintext);
  ASSERT_NE(account, nullptr);
  EXPECT_EQ(account->id, "acc-1");
  account = Authenticate(tenants_, second_.plaintext);
  ASSERT_NE(account, nullptr);
  EXPECT_EQ(account->id, "acc-2");
}

TEST_F(AuthenticateTest, WrongSecretIsRefused) {
  // Characters whose every bit belongs to the secret (the last one also carries padding bits).
  for (const std::size_t at : {kPrefixAndIdLength, kPrefixAndIdLength + 20}) {
    std::string key = first_.plaintext;
    key[at] = key[at] == 'A' ? 'B' : 'A';
    EXPECT_EQ(Authenticate(tenants_, key), nullptr) << "changed at " << at;
  }
}

TEST_F(AuthenticateTest, AnotherKeysSecretIsRefused) {
  const std::string mixed =
      first_.plaintext.substr(0, kPrefixAndIdLength) + SecretOf(second_.plaintext);
  EXPECT_EQ(Authenticate(tenants_, mixed), nullptr);
}

TEST_F(AuthenticateTest, WrongKeyIdIsRefused) {
  std::string key = first_.plaintext;
  key[4] = key[4] == '0' ? '1' : '0';
  EXPECT_EQ(Authenticate(tenants_, key), nullptr);
}

TEST_F(AuthenticateTest, TruncatedKeyIsRefused) {
  for (std::size_t length = 0; length < first_.plaintext.size(); ++length) {
    EXPECT_EQ(Authenticate(tenants_, std::string_view(first_.plaintext).substr(0, length)), nullptr)
        << "prefix of " << length;
  }
}

TEST_F(AuthenticateTest, ExtendedKeyIsRefused) {
  EXPECT_EQ(Authenticate(tenants_, first_.plaintext + "A"), nullptr);
}

TEST_F(AuthenticateTest, EmptyKeyIsRefused) { EXPECT_EQ(Authenticate(tenants_, ""), nullptr); }

TEST_F(AuthenticateTest, WrongPrefixIsRefused) {
  std::string key = first_.plaintext;
  key[2] = 'x';
  EXPECT_EQ(Authenticate(tenants_, key), nullptr);
}

TEST_F(AuthenticateTest, RevokedKeyIsRefused) {
  tenants_.api_keys.at(first_.record.key_id).revoked_at = kT0 + Millis(1);
  EXPECT_EQ(Authenticate(tenants_, first_.plaintext), nullptr);
  EXPECT_NE(Authenticate(tenants_, second_.plaintext), nullptr);
}

TEST_F(AuthenticateTest, KeyOfDeletedAccountIsRefused) {
  tenants_.accounts.erase("acc-1");
  EXPECT_EQ(Authenticate(tenants_, first_.plaintext), nullptr);
  EXPECT_NE(Authenticate(tenants_, second_.plaintext), nullptr);
}

// Refusing an unknown key id must cost what refusing a wrong secret costs, or response times
// tell an attacker which key ids exist.
TEST_F(AuthenticateTest, UnknownKeyIdCostsWhatAWrongSecretCosts) {
  std::string wrong_secret = first_.plaintext;
  wrong_secret.back() = wrong_secret.back() == 'A' ? 'B' : 'A';
  std::string unknown_id = first_.plaintext;
  unknown_id[4] = unknown_id[4] == '0' ? '1' : '0';  // the key id's first hex digit
  ASSERT_EQ(tenants_.api_keys.count(unknown_id.substr(4, 16)), 0u);

  std::uint64_t before = SecretsHashedOnThisThread();
  EXPECT_EQ(Authenticate(tenants_, wrong_secret), nullptr);
  const std::uint64_t wrong_secret_hashes = SecretsHashedOnThisThread() - before;
  before = SecretsHashedOnThisThread();
  EXPECT_EQ(Authenticate(tenants_, unknown_id), nullptr);
  const std::uint64_t unknown_id_hashes = SecretsHashedOnThisThread() - before;
  EXPECT_EQ(wrong_secret_hashes, 1u);
  EXPECT_EQ(unknown_id_hashes, wrong_secret_hashes);
}

// --- AuthenticateCached ------------------------------------------------------------------------

class AuthenticateCachedTest : public AuthenticateTest {
 protected:
  std::shared_ptr<const TenantSnapshot> Snapshot() const {
    return std::make_shared<const TenantSnapshot>(tenants_);
  }
};

TEST_F(AuthenticateCachedTest, SameKeyAgainGivesItsAccountFromThatSnapshot) {
  const auto snapshot = Snapshot();
  for (int i = 0; i < 3; ++i) {
    const Account* account = AuthenticateCached(snapshot, first_.plaintext);
    ASSERT_NE(account, nullptr);
    EXPECT_EQ(account, &snapshot->accounts.at("acc-1"));
  }
  const auto next = Snapshot();
  EXPECT_EQ(AuthenticateCached(next, first_.plaintext), &next->accounts.at("acc-1"));
}

TEST_F(AuthenticateCachedTest, WrongSecretRightAfterTheRightKeyIsRefused) {
  const auto snapshot = Snapshot();
  ASSERT_NE(AuthenticateCached(snapshot, first_.plaintext), nullptr);
  std::string wrong = first_.plaintext;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(AuthenticateCached(snapshot, wrong), nullptr);
  EXPECT_EQ(AuthenticateCached(snapshot, first_.plaintext + "A"), nullptr);
  EXPECT_EQ(AuthenticateCached(snapshot, ""), nullptr);
  EXPECT_EQ(AuthenticateCached(snapshot, second_.plaintext), &snapshot->accounts.at("acc-2"));
}

TEST_F(AuthenticateCachedTest, KeyRevokedInANewSnapshotIsRefusedAtOnce) {
  ASSERT_NE(AuthenticateCached(Snapshot(), first_.plaintext), nullptr);
  tenants_.api_keys.at(first_.record.key_id).revoked_at = kT0 + Millis(1);
  EXPECT_EQ(AuthenticateCached(Snapshot(), first_.plaintext), nullptr);
}

// --- TenantDirectory -------------------------------------------------------------------------

// Issue 9: a change used to show only once a 250 ms refresh interval had passed (a key just
// created was refused, a revoked one accepted); now the next Current() after the change's call
// returned has it.
TEST(TenantDirectoryTest, StoreChangeShowsUpOnTheNextRequest) {
  MemoryStore store;
  ASSERT_TRUE(store.CreateAccount({"acc-1", kT0}).ok());
  TenantDirectory directory(store);
  ASSERT_TRUE(directory.Start());
  ASSERT_TRUE(directory.Current()->accounts.contains("acc-1"));

  ASSERT_TRUE(store.CreateAccount({"acc-2", kT0}).ok());
  EXPECT_TRUE(directory.Current()->accounts.contains("acc-2"));
  auto key = GenerateApiKey("acc-2", kT0);
  ASSERT_TRUE(key.has_value());
  ASSERT_TRUE(store.AddApiKey(key->record).ok());
  EXPECT_NE(Authenticate(*directory.Current(), key->plaintext), nullptr);
  ASSERT_TRUE(store.RevokeApiKey(key->record.key_id, kT0).ok());
  EXPECT_EQ(Authenticate(*directory.Current(), key->plaintext), nullptr);
}

TEST(TenantDirectoryTest, SnapshotAlreadyHandedOutStaysAsItWas) {
  MemoryStore store;
  ASSERT_TRUE(store.CreateAccount({"acc-1", kT0}).ok());
  TenantDirectory directory(store);
  ASSERT_TRUE(directory.Start());
  const auto held = directory.Current();

  ASSERT_TRUE(store.CreateAccount({"acc-2", kT0}).ok());
  ASSERT_TRUE(directory.Current()->accounts.contains("acc-2"));
  EXPECT_FALSE(held->accounts.contains("acc-2"));
}

TEST(TenantDirectoryTest, UnchangedStoreKeepsTheSameSnapshot) {
  MemoryStore store;
  ASSERT_TRUE(store.CreateAccount({"acc-1", kT0}).ok());
  TenantDirectory directory(store);
  ASSERT_TRUE(directory.Start());
  const auto first = directory.Current();
  EXPECT_EQ(directory.Current(), first);
}

TEST(TenantDirectoryTest, RefreshTakesAChangeAtOnce) {
  MemoryStore store;
  TenantDirectory directory(store);
  ASSERT_TRUE(directory.Start());
  ASSERT_TRUE(directory.Current()->accounts.empty());

  ASSERT_TRUE(store.CreateAccount({"acc-1", kT0}).ok());
  EXPECT_TRUE(directory.Refresh());
  EXPECT_TRUE(directory.Current()->accounts.contains("acc-1"));
}

}  // namespace
}  // namespace callgate
