// A test certificate authority and a server certificate it signed, made with OpenSSL's API (no CLI needed):
// shared by the test fixtures that serve TLS (redis-server in tests/sync, PostgreSQL in postgres_fixture.h).
#pragma once

#include <doctest/doctest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>

namespace rocky_test {

// A test certificate authority and a server certificate it signed for 127.0.0.1 and localhost (or the names
// in `subject_alt_name`, OpenSSL's syntax: "DNS:cache.example"), written as PEM files into `dir` (ca.pem,
// server.pem, server.key), made with OpenSSL so no CLI is needed.
class TestPki {
 public:
  TestPki(const std::string& dir, const std::string& name,
          const std::string& subject_alt_name = "IP:127.0.0.1,DNS:localhost")
      : dir_(dir) {
    EVP_PKEY* ca_key = EVP_EC_gen("P-256");
    EVP_PKEY* server_key = EVP_EC_gen("P-256");
    REQUIRE((ca_key != nullptr && server_key != nullptr));
    X509* ca = MakeCert(ca_key, ca_key, nullptr, ("rocky test CA " + name).c_str(), true);
    X509* server = MakeCert(server_key, ca_key, ca, "127.0.0.1", false, subject_alt_name.c_str());
    WriteCert(ca_file(), ca);
    WriteCert(cert_file(), server);
    BIO* out = BIO_new_file(key_file().c_str(), "w");
    REQUIRE(out != nullptr);
    REQUIRE(PEM_write_bio_PrivateKey(out, server_key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
    BIO_free(out);
    X509_free(server);
    X509_free(ca);
    EVP_PKEY_free(server_key);
    EVP_PKEY_free(ca_key);
  }
  std::string ca_file() const { return dir_ + "/ca.pem"; }
  std::string cert_file() const { return dir_ + "/server.pem"; }
  std::string key_file() const { return dir_ + "/server.key"; }

 private:
  static void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    REQUIRE(ext != nullptr);
    REQUIRE(X509_add_ext(cert, ext, -1) == 1);
    X509_EXTENSION_free(ext);
  }
  static X509* MakeCert(EVP_PKEY* key, EVP_PKEY* signer, X509* issuer, const char* cn, bool is_ca,
                        const char* subject_alt_name = nullptr) {
    static long serial = 1;
    X509* cert = X509_new();
    REQUIRE(cert != nullptr);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 7 * 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* subject = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1,
                               -1, 0);
    X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : subject);
    if (is_ca) {
      AddExtension(cert, issuer, NID_basic_constraints, "critical,CA:TRUE");
      AddExtension(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
      AddExtension(cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
      AddExtension(cert, issuer, NID_subject_alt_name, subject_alt_name);
      AddExtension(cert, issuer, NID_ext_key_usage, "serverAuth");
    }
    AddExtension(cert, issuer, NID_subject_key_identifier, "hash");
    REQUIRE(X509_sign(cert, signer, EVP_sha256()) > 0);
    return cert;
  }
  static void WriteCert(const std::string& path, X509* cert) {
    BIO* out = BIO_new_file(path.c_str(), "w");
    REQUIRE(out != nullptr);
    REQUIRE(PEM_write_bio_X509(out, cert) == 1);
    BIO_free(out);
  }

  std::string dir_;
};

}  // namespace rocky_test
