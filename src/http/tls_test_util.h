// Test certificates made at test time with OpenSSL: a self-signed ECDSA P-256 certificate for
// 127.0.0.1 and localhost, PEM, with its key, and files to hand them to a server as
// --tls-cert/--tls-key do. Tests only.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

namespace callgate::testing {

struct TestCertificate {
  std::string cert_pem;
  std::string key_pem;
};

// A fresh key and a certificate whose subject is CN=`common_name`, valid from an hour ago for a
// day.
inline TestCertificate MakeTestCertificate(const std::string& common_name) {
  const auto check = [](bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("test certificate: ") + what);
  };
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  check(key != nullptr, "key");
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  check(X509_set_version(cert.get(), 2) == 1, "version");
  static int serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  check(X509_set_pubkey(cert.get(), key.get()) == 1, "public key");
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  check(X509_set_issuer_name(cert.get(), name) == 1, "issuer");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* san =
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  check(san != nullptr && X509_add_ext(cert.get(), san, -1) == 1, "subjectAltName");
  X509_EXTENSION_free(san);
  check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "signature");

  const auto pem = [&](auto write) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    check(write(bio.get()) == 1, "PEM");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
  };
  return {pem([&](BIO* bio) { return PEM_write_bio_X509(bio, cert.get()); }), pem([&](BIO* bio) {
            return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
          })};
}

inline void WriteTextFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A temporary directory holding cert.pem and key.pem; removed with it.
class TestCertificateFiles {
 public:
  explicit TestCertificateFiles(const TestCertificate& certificate) {
    static int counter = 0;
    dir_ = std::filesystem::temp_directory_path() /
           ("callgate-tls-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(dir_);
    Write(certificate);
  }
  ~TestCertificateFiles() { std::filesystem::remove_all(dir_); }
  TestCertificateFiles(const TestCertificateFiles&) = delete;
  TestCertificateFiles& operator=(const TestCertificateFiles&) = delete;

  // Replaces both files (as an operator does before SIGHUP).
  void Write(const TestCertificate& certificate) const {
    WriteTextFile(cert(), certificate.cert_pem);
    WriteTextFile(key(), certificate.key_pem);
  }
  std::string cert() const { return (dir_ / "cert.pem").string(); }
  std::string key() const { return (dir_ / "key.pem").string(); }

 private:
  std::filesystem::path dir_;
};

}  // namespace callgate::testing
