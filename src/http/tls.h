// The server's TLS settings, in one place: an OpenSSL context (through Asio) holding a certificate
// chain and its private key, read from PEM files, that negotiates
//   - TLS 1.3 whenever the client offers it, TLS 1.2 otherwise, nothing older (a TLS 1.0/1.1
//     ClientHello gets a protocol_version alert);
//   - for TLS 1.2 only ECDHE key exchange with an AEAD cipher (AES-GCM, ChaCha20-Poly1305), in
//     the server's order; TLS 1.3's suites are all of that kind;
//   - no compression, no renegotiation;
//   - ALPN: `http/1.1` when the client offers it. A client that offers protocols but not
//     http/1.1 (only h2, say) is refused with a no_application_protocol alert (RFC 7301 §3.2, as
//     nginx does): it has said it cannot speak HTTP/1.1. A client that offers none is served.
// Encrypted keys are refused rather than prompted for (a service has no terminal).
// A context is immutable once made, so connections share it across threads; a reload makes a
// new one (HttpServer::ReloadTls).
#pragma once

#include <memory>
#include <string>

#include "core/result.h"

namespace boost::asio::ssl {
class context;
}

namespace callgate {

// The cipher lists the contexts use, in preference order (also what bench/nginx.conf.in gives
// nginx, so that the two are compared on the same ciphers).
inline constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr const char* kTls13Ciphersuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// The certificate a context serves, as the log names it.
struct TlsCertificate {
  std::string description;  // "subject /CN=…, valid until …"
};

struct TlsContext {
  std::shared_ptr<boost::asio::ssl::context> context;
  TlsCertificate certificate;
};

// Reads `cert_file` (the certificate, then any intermediates, PEM) and `key_file` (its private
// key, PEM, unencrypted) into a new server context. Error: a readable reason naming the file at
// fault — never any of its contents.
Result<TlsContext, std::string> MakeTlsContext(const std::string& cert_file,
                                               const std::string& key_file);

}  // namespace callgate
