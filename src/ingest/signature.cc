#include "ingest/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>

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

int Nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool VerifyMetaSignature(std::string_view body, std::string_view header,
                         const std::vector<std::string>& secrets) {
  constexpr std::string_view kPrefix = "sha256=";
  if (!header.starts_with(kPrefix) || header.size() != kPrefix.size() + 64) return false;
  Digest presented{};
  for (std::size_t i = 0; i < presented.size(); ++i) {
    const int hi = Nibble(header[kPrefix.size() + 2 * i]);
    const int lo = Nibble(header[kPrefix.size() + 2 * i + 1]);
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
  static constexpr char kHex[] = "0123456789abcdef";
  const Digest digest = Hmac(body, secret);
  std::string out = "sha256=";
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

}  // namespace callgate
