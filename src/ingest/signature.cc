#include "ingest/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/encoding.h"

namespace callgate {
namespace {

using Digest = std::array<unsigned char, 32>;

struct MacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};

// HMAC-SHA256 through one context per secret and thread, keyed once: OpenSSL 3's one-shot HMAC()
// fetches the algorithm and builds a context on every call, which cost more than hashing a
// webhook body (7 % of a webhook's CPU under perf). Any failure gives a digest no signature
// matches (all ones), so verification fails closed.
Digest Hmac(std::string_view body, std::string_view secret) {
  static EVP_MAC* const kHmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  // A handful of secrets at most (rotation): a list, searched without allocating.
  thread_local std::vector<std::pair<std::string, std::unique_ptr<EVP_MAC_CTX, MacCtxFree>>> keyed;
  Digest digest{};
  digest.fill(0xff);
  if (!kHmac) return digest;
  auto it = std::find_if(keyed.begin(), keyed.end(),
                         [&](const auto& entry) { return entry.first == secret; });
  bool ready = false;
  if (it == keyed.end()) {
    std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_new(kHmac));
    char sha256[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", sha256, 0),
                                 OSSL_PARAM_construct_end()};
    ready = ctx && EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(secret.data()),
                                secret.size(), params) == 1;
    if (!ready) return digest;
    keyed.emplace_back(std::string(secret), std::move(ctx));
    it = std::prev(keyed.end());
  } else {
    ready = EVP_MAC_init(it->second.get(), nullptr, 0, nullptr) == 1;  // same key, fresh state
  }
  Digest out{};
  std::size_t size = 0;
  if (ready &&
      EVP_MAC_update(it->second.get(), reinterpret_cast<const unsigned char*>(body.data()),
                     body.size()) == 1 &&
      EVP_MAC_final(it->second.get(), out.data(), &size, out.size()) == 1 && size == out.size()) {
    digest = out;
  }
  return digest;
}

}  // namespace

bool VerifyMetaSignature(std::string_view body, std::string_view header,
                         const std::vector<std::string>& secrets) {
  constexpr std::string_view kPrefix = "sha256=";
  if (!header.starts_with(kPrefix) || header.size() != kPrefix.size() + 64) return false;
  const std::optional<std::string> bytes = HexDecode(header.substr(kPrefix.size()));
  Digest presented{};
  if (!bytes || bytes->size() != presented.size()) return false;
  std::memcpy(presented.data(), bytes->data(), presented.size());
  bool match = false;
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    const Digest expected = Hmac(body, secret);
    match |= CRYPTO_memcmp(expected.data(), presented.data(), expected.size()) == 0;
  }
  return match;
}

std::string SignMetaPayload(std::string_view body, std::string_view secret) {
  const Digest digest = Hmac(body, secret);
  return "sha256=" +
         HexEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

}  // namespace callgate
