#include "http/tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio/ssl/context.hpp>
#include <cerrno>
#include <cstring>
#include <optional>

namespace callgate {

namespace asio = boost::asio;

namespace {

// The whole of `path`; nullopt (and the system's reason in `error`) if it cannot be read. Read
// straight into a string sized from the file (one byte more, to see its end), so that a regular
// file leaves no other copy of a key behind; a pipe or the like grows it as it comes.
std::optional<std::string> ReadFile(const std::string& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    error = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return std::nullopt;
  }
  std::string text(static_cast<std::size_t>(std::max<off_t>(st.st_size, 0)) + 1, '\0');
  std::size_t size = 0;
  ssize_t n = 0;
  for (;;) {
    if (size == text.size()) text.resize(2 * text.size());
    n = ::read(fd, text.data() + size, text.size() - size);
    if (n <= 0) break;
    size += static_cast<std::size_t>(n);
  }
  if (n < 0) error = std::strerror(errno);
  ::close(fd);
  if (n < 0) {
    OPENSSL_cleanse(text.data(), text.size());
    return std::nullopt;
  }
  text.resize(size);
  return text;
}

// Wipes the key's PEM text when it goes out of scope, whatever the way out.
struct Cleansed {
  std::string& text;
  ~Cleansed() { OPENSSL_cleanse(text.data(), text.size()); }
};

// Selects http/1.1 from the client's ALPN list, or refuses the handshake (see tls.h).
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
               unsigned int in_length, void*) {
  static constexpr std::array<unsigned char, 9> kHttp11 = {8,   'h', 't', 't', 'p',
                                                           '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, kHttp11.data(), kHttp11.size(), in, in_length) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// "subject …, valid until …" of the context's certificate.
std::string Describe(SSL_CTX* context) {
  X509* cert = SSL_CTX_get0_certificate(context);
  std::array<char, 256> subject{};
  X509_NAME_oneline(X509_get_subject_name(cert), subject.data(), subject.size());
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  ASN1_TIME_print(bio.get(), X509_get0_notAfter(cert));
  char* until = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &until);
  return std::string("subject ") + subject.data() + ", valid until " +
         std::string(until, static_cast<std::size_t>(length));
}

}  // namespace

Result<TlsContext, std::string> MakeTlsContext(const std::string& cert_file,
                                               const std::string& key_file) {
  std::string error;
  const auto cert_pem = ReadFile(cert_file, error);
  if (!cert_pem) return "cannot read the TLS certificate file " + cert_file + ": " + error;
  auto key_pem = ReadFile(key_file, error);
  if (!key_pem) return "cannot read the TLS key file " + key_file + ": " + error;
  const Cleansed wipe{*key_pem};

  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* handle = context->native_handle();
  SSL_CTX_set_min_proto_version(handle, TLS1_2_VERSION);
  SSL_CTX_set_options(
      handle, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  // Both lists are set in full so that a system-wide OpenSSL configuration cannot add to them.
  SSL_CTX_set_cipher_list(handle, kTls12Ciphers);
  SSL_CTX_set_ciphersuites(handle, kTls13Ciphersuites);
  SSL_CTX_set_alpn_select_cb(handle, SelectAlpn, nullptr);
  // OpenSSL's default would ask for a passphrase on the terminal, and a service has none.
  SSL_CTX_set_default_passwd_cb(handle, [](char*, int, int, void*) { return 0; });

  boost::system::error_code ec;
  context->use_certificate_chain(asio::buffer(*cert_pem), ec);
  if (ec) {
    // Asio reports a file without a certificate as OpenSSL's generic "PEM lib"; other reasons
    // (e.g. "ee key too small": below OpenSSL's security level) say what is wrong.
    return "the TLS certificate file " + cert_file + " holds no usable PEM certificate" +
           (ec.value() == ERR_R_PEM_LIB ? "" : " (" + ec.message() + ")");
  }
  const std::string mismatch =
      "the TLS key file " + key_file + " is not the private key of the certificate in " + cert_file;
  context->use_private_key(asio::buffer(*key_pem), asio::ssl::context::pem, ec);
  const auto reason = static_cast<unsigned long>(ec.value());
  if (ec && ERR_GET_LIB(reason) == ERR_LIB_X509 &&
      ERR_GET_REASON(reason) == X509_R_KEY_VALUES_MISMATCH) {
    return mismatch;
  }
  if (ec) {
    return "the TLS key file " + key_file + " holds no usable private key (" + ec.message() +
           "): it must be an unencrypted PEM key";
  }
  // A key of another type than the certificate's is taken without complaint above.
  if (SSL_CTX_check_private_key(handle) != 1) return mismatch;
  return TlsContext{std::move(context), {Describe(handle)}};
}

}  // namespace callgate
