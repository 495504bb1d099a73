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
#include "core/thread_cache.h"

namespace callgate {
namespace {

using Digest = std::array<unsigned char, 32>;

struct MacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};

using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;

// HMAC-SHA256 of `body` under `secret` through `ctx`, keyed on first use: OpenSSL 3's one-shot
// HMAC() fetches the algorithm and builds a context on every call, which cost more than hashing
// a webhook body (7 % of a webhook's CPU under perf). Any failure gives a digest no signature
// matches (all ones), so verification fails closed.
Digest Hmac(std::string_view body, std::string_view secret, MacCtx& ctx) {
  static EVP_MAC* const kHmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  Digest digest{};
  digest.fill(0xff);
  if (!kHmac) return digest;
  bool ready = false;
  if (!ctx) {
    ctx.reset(EVP_MAC_CTX_new(kHmac));
    char sha256[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", sha256, 0),
                                 OSSL_PARAM_construct_end()};
    ready = ctx && EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(secret.data()),
                                secret.size(), params) == 1;
    if (!ready) {
      ctx.reset();
      return digest;
    }
  } else {
    ready = EVP_MAC_init(ctx.get(), nullptr, 0, nullptr) == 1;  // same key, fresh state
  }
  Digest out{};
  std::size_t size = 0;
  if (ready &&
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(body.data()), body.size()) ==
          1 &&
      EVP_MAC_final(ctx.get(), out.data(), &size, out.size()) == 1 && size == out.size()) {
    digest = out;
  }
  return digest;
}

// This thread's keyed contexts for `owner`'s secrets, by secret index.
std::vector<MacCtx>& Contexts(std::uint64_t owner, std::size_t secrets) {
  struct HmacContextsTag;
  auto& contexts = ThreadCache<std::vector<MacCtx>, HmacContextsTag>(owner);
  if (contexts.size() < secrets) contexts.resize(secrets);
  return contexts;
}

}  // namespace

MetaSignatures::MetaSignatures(std::vector<std::string> secrets)
    : secrets_(std::move(secrets)), id_(NewCacheOwnerId()) {}

bool MetaSignatures::Verify(std::string_view body, std::string_view header) const {
  constexpr std::string_view kPrefix = "sha256=";
  if (!header.starts_with(kPrefix) || header.size() != kPrefix.size() + 64) return false;
  const std::optional<std::string> bytes = HexDecode(header.substr(kPrefix.size()));
  Digest presented{};
  if (!bytes || bytes->size() != presented.size()) return false;
  std::memcpy(presented.data(), bytes->data(), presented.size());
  std::vector<MacCtx>& contexts = Contexts(id_, secrets_.size());
  bool match = false;
  for (std::size_t i = 0; i < secrets_.size(); ++i) {
    if (secrets_[i].empty()) continue;
    const Digest expected = Hmac(body, secrets_[i], contexts[i]);
    match |= CRYPTO_memcmp(expected.data(), presented.data(), expected.size()) == 0;
  }
  return match;
}

std::string MetaSignatures::Sign(std::string_view body, std::size_t index) const {
  const Digest digest = Hmac(body, secrets_.at(index), Contexts(id_, secrets_.size())[index]);
  return "sha256=" +
         HexEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

bool VerifyMetaSignature(std::string_view body, std::string_view header,
                         const std::vector<std::string>& secrets) {
  return MetaSignatures(secrets).Verify(body, header);
}

std::string SignMetaPayload(std::string_view body, std::string_view secret) {
  return MetaSignatures({std::string(secret)}).Sign(body);
}

}  // namespace callgate
