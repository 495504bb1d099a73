#include "tenants/api_key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>

#include "core/encoding.h"

namespace callgate {
namespace {

constexpr std::string_view kPrefix = "cgk_";
constexpr std::size_t kKeyIdBytes = 8;
constexpr std::size_t kSecretBytes = 32;
constexpr std::size_t kKeyIdChars = kKeyIdBytes * 2;

// OpenSSL 3's one-shot SHA256() looks the algorithm up on every call; on the request path that
// lookup cost more than the hash. Fetch it once, reuse one context per thread.
thread_local std::uint64_t secrets_hashed = 0;  // SecretsHashedOnThisThread

Sha256 HashSecret(std::string_view secret) {
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  ++secrets_hashed;
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                                 EVP_MD_CTX_free);
  Sha256 hash{};
  unsigned int size = 0;
  if (!kSha256 || !ctx || EVP_DigestInit_ex(ctx.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), secret.data(), secret.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), hash.data(), &size) != 1) {
    // Never matches a stored hash (those are never all ones): authentication fails closed.
    hash.fill(0xff);
  }
  return hash;
}

}  // namespace

std::optional<NewApiKey> GenerateApiKey(const std::string& account_id, Instant now) {
  unsigned char id[kKeyIdBytes];
  unsigned char secret[kSecretBytes];
  if (RAND_bytes(id, sizeof id) != 1 || RAND_bytes(secret, sizeof secret) != 1) {
    return std::nullopt;
  }
  NewApiKey key;
  const std::string secret_text =
      Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(secret), sizeof secret));
  key.record.key_id = HexEncode(std::string_view(reinterpret_cast<const char*>(id), sizeof id));
  key.record.account_id = account_id;
  key.record.secret_hash = HashSecret(secret_text);
  key.record.created_at = now;
  key.plaintext = std::string(kPrefix) + key.record.key_id + "_" + secret_text;
  OPENSSL_cleanse(secret, sizeof secret);
  return key;
}

std::optional<std::string> GenerateSigningSecret() {
  unsigned char secret[kSecretBytes];
  if (RAND_bytes(secret, sizeof secret) != 1) return std::nullopt;
  std::string text = "cgws_" + Base64UrlEncode(std::string_view(
                                   reinterpret_cast<const char*>(secret), sizeof secret));
  OPENSSL_cleanse(secret, sizeof secret);
  return text;
}

const Account* Authenticate(const TenantSnapshot& tenants, std::string_view presented) {
  if (presented.size() <= kPrefix.size() + kKeyIdChars + 1 || !presented.starts_with(kPrefix) ||
      presented[kPrefix.size() + kKeyIdChars] != '_') {
    return nullptr;
  }
  const std::string key_id(presented.substr(kPrefix.size(), kKeyIdChars));
  const auto it = tenants.api_keys.find(key_id);
  // An unknown key id costs what a wrong secret costs (a hash and a constant-time compare, here
  // against a hash no secret has), so response times do not tell which key ids exist.
  static const Sha256 kNoKey = [] {
    Sha256 hash;
    hash.fill(0xa5);
    return hash;
  }();
  const bool known = it != tenants.api_keys.end();
  const Sha256& stored = known ? it->second.secret_hash : kNoKey;
  const Sha256 hash = HashSecret(presented.substr(kPrefix.size() + kKeyIdChars + 1));
  const bool matches = CRYPTO_memcmp(hash.data(), stored.data(), hash.size()) == 0;
  if (!known || !matches) return nullptr;
  const ApiKey& key = it->second;
  if (key.revoked_at) return nullptr;
  const auto account = tenants.accounts.find(key.account_id);
  return account == tenants.accounts.end() ? nullptr : &account->second;
}

std::uint64_t SecretsHashedOnThisThread() { return secrets_hashed; }

const Account* AuthenticateCached(const std::shared_ptr<const TenantSnapshot>& tenants,
                                  std::string_view presented) {
  // The last key this thread accepted against this very snapshot.
  struct Accepted {
    std::string key;
    const Account* account = nullptr;
  };
  struct AcceptedTag;
  Accepted& last = ThreadCache<Accepted, AcceptedTag>(tenants->cache_owner.get());
  if (last.account && presented.size() == last.key.size() &&
      CRYPTO_memcmp(presented.data(), last.key.data(), presented.size()) == 0) {
    return last.account;
  }
  const Account* account = Authenticate(*tenants, presented);
  if (account) {
    OPENSSL_cleanse(last.key.data(), last.key.size());
    last = {std::string(presented), account};
  }
  return account;
}

}  // namespace callgate
