// Shared by the Valkey and tiered tests: RedisServer, Debian's real redis-server (Valkey-protocol compatible)
// started on 127.0.0.1 on a free port with a password and an ACL user, optionally TLS-only with a certificate
// the test generates (TestPki); stopped by the destructor. When it cannot start, the test fails: there is no
// mock to fall back on.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "s3_fixture.h"

extern char** environ;

namespace rocky_sync_test {

// The default user's password, and an ACL user with its own. Characters that need %-escaping in a URL are in
// both, so the tests cover the decoding.
inline constexpr const char* kRedisPassword = "s3cr3t:pw@x/y";
inline constexpr const char* kRedisPasswordEscaped = "s3cr3t%3Apw%40x%2Fy";
inline constexpr const char* kRedisUser = "rocky";
inline constexpr const char* kRedisUserPassword = "user-pw-0042";

// A port nothing listens on right now (bound then released: another process could take it in between, which
// the callers accept as a test-only race).
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A test certificate authority and a server certificate it signed for 127.0.0.1 and localhost, written as PEM
// files into `dir` (ca.pem, server.pem, server.key), made with OpenSSL so no CLI is needed.
class TestPki {
 public:
  TestPki(const std::string& dir, const std::string& name) : dir_(dir) {
    EVP_PKEY* ca_key = EVP_EC_gen("P-256");
    EVP_PKEY* server_key = EVP_EC_gen("P-256");
    REQUIRE((ca_key != nullptr && server_key != nullptr));
    X509* ca = MakeCert(ca_key, ca_key, nullptr, ("rocky test CA " + name).c_str(), true);
    X509* server = MakeCert(server_key, ca_key, ca, "127.0.0.1", false);
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
  static X509* MakeCert(EVP_PKEY* key, EVP_PKEY* signer, X509* issuer, const char* cn, bool is_ca) {
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
      AddExtension(cert, issuer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
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

// redis-server with `--requirepass kRedisPassword` and the ACL user kRedisUser, no persistence, in a
// temporary folder. With `tls`, it listens only on a TLS port (tls-port, port 0) with a TestPki certificate.
class RedisServer {
 public:
  // `extra` are more redis-server options ("--rename-command", "AUTH", "" makes AUTH an unknown command,
  // whose error reply echoes its arguments).
  explicit RedisServer(bool tls = false, std::vector<std::string> extra = {}) : tls_(tls), extra_(std::move(extra)) {
    if (tls_) pki_ = std::make_unique<TestPki>(dir_.path(), "server");
    // FreePort's port may be taken by another test binary before the server binds it (they run in parallel):
    // then the server exits saying so, and it starts again on another port.
    for (int attempt = 0;; ++attempt) {
      port_ = FreePort();
      if (Start(Args()) || attempt == 4) break;
    }
    REQUIRE_MESSAGE(pid_ > 0, "redis-server found no free port in 5 attempts: " << ReadBytes(dir_.File("redis.log")));
  }
  ~RedisServer() { Stop(); }

  // Kills the server (the "server down" cases); harmless twice.
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  int port() const { return port_; }
  // The CA that signed the server's certificate (TLS only).
  std::string ca_file() const { return pki_ ? pki_->ca_file() : ""; }
  // "redis://:PASSWORD@127.0.0.1:PORT" (the password escaped), "rediss://" with TLS; `path` e.g. "/2".
  std::string Url(const std::string& path = "") const {
    return std::string(tls_ ? "rediss" : "redis") + "://:" + kRedisPasswordEscaped +
           "@127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string UserUrl() const {
    return std::string(tls_ ? "rediss" : "redis") + "://" + kRedisUser + ":" + kRedisUserPassword +
           "@127.0.0.1:" + std::to_string(port_);
  }

 private:
  std::vector<std::string> Args() const {
    const std::string user_rule = std::string(">") + kRedisUserPassword;
    std::vector<std::string> args = {"redis-server", "--bind",    "127.0.0.1",    "--requirepass",
                                     kRedisPassword, "--user",    kRedisUser,     "on",
                                     user_rule,      "~*",        "&*",           "+@all",
                                     "--save",       "",          "--appendonly", "no",
                                     "--dir",        dir_.path(), "--logfile",    dir_.File("redis.log"),
                                     "--daemonize",  "no"};
    if (tls_) {
      args.insert(args.end(), {"--port", "0", "--tls-port", std::to_string(port_), "--tls-cert-file",
                               pki_->cert_file(), "--tls-key-file", pki_->key_file(), "--tls-ca-cert-file",
                               pki_->ca_file(), "--tls-auth-clients", "no"});
    } else {
      args.insert(args.end(), {"--port", std::to_string(port_)});
    }
    args.insert(args.end(), extra_.begin(), extra_.end());
    return args;
  }

  // Starts the server and waits until its own log says it is ready (a connect to the port could reach another
  // test's server). False when it exited because the port was taken; fails the test on any other exit.
  bool Start(std::vector<std::string> args) {
    ::unlink(dir_.File("redis.log").c_str());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ);
    REQUIRE_MESSAGE(rc == 0, "cannot start redis-server (install it: scripts/setup): " << std::strerror(rc));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
      const std::string log = ReadBytes(dir_.File("redis.log"));
      if (log.find("Ready to accept connections") != std::string::npos) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        if (log.find("Address already in use") != std::string::npos) return false;
        FAIL("redis-server exited at start: " << log);
      }
      ::usleep(20 * 1000);
    }
    FAIL("redis-server was not ready on port " << port_ << " within 30 s: " << ReadBytes(dir_.File("redis.log")));
    return false;
  }

  TempDir dir_;
  bool tls_;
  std::vector<std::string> extra_;
  int port_ = 0;
  std::unique_ptr<TestPki> pki_;
  pid_t pid_ = -1;
};

}  // namespace rocky_sync_test
