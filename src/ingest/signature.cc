#include "ingest/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>

#include "core/hex.h"

namespace callgate {
namespace {

using Digest = std::array<unsigned char, 32>;

Digest Hmac(std::string_view body, std::string_view secret) {
  Digest digest{};
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest.data(), &size);
  return digest;
}

}  // namespace

bool VerifyMetaSignature(std::string_view body, std::string_view header,
                         const std::vector<std::string>& secrets) {
  constexpr std::string_view kPrefix = "sha256=";
  if (!header.starts_with(kPrefix) || header.size() != kPrefix.size() + 64) return false;
  Digest presented{};
  for (std::size_t i = 0; i < presented.size(); ++i) {
    const int hi = HexDigit(header[kPrefix.size() + 2 * i]);
    const int lo = HexDigit(header[kPrefix.size() + 2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    presented[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
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
