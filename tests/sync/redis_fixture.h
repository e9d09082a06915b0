// Shared by the Valkey and tiered tests: RedisServer, Debian's real redis-server (Valkey-protocol compatible)
// started on 127.0.0.1 on a free port with a password and an ACL user, optionally TLS-only with a certificate
// the test generates (TestPki); stopped by the destructor. When it cannot start, the test fails: there is no
// mock to fall back on.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "../support/free_port.h"
#include "../support/test_pki.h"
#include "sync_test_files.h"

extern char** environ;

namespace rocky_sync_test {

// The default user's password, and an ACL user with its own. Characters that need %-escaping in a URL are in
// both, so the tests cover the decoding.
inline constexpr const char* kRedisPassword = "s3cr3t:pw@x/y";
inline constexpr const char* kRedisPasswordEscaped = "s3cr3t%3Apw%40x%2Fy";
inline constexpr const char* kRedisUser = "rocky";
inline constexpr const char* kRedisUserPassword = "user-pw-0042";

using rocky_test::FreePort;  // tests/support/free_port.h, shared with the PostgreSQL fixture
using rocky_test::TestPki;   // tests/support/test_pki.h, shared with the PostgreSQL fixture

// redis-server with `--requirepass kRedisPassword` and the ACL user kRedisUser, no persistence, in a
// temporary folder. With `tls`, it listens only on a TLS port (tls-port, port 0) with a TestPki certificate.
class RedisServer {
 public:
  // `extra` are more redis-server options ("--rename-command", "AUTH", "" makes AUTH an unknown command,
  // whose error reply echoes its arguments).
  explicit RedisServer(bool tls = false, std::vector<std::string> extra = {})
      : tls_(tls), extra_(std::move(extra)) {
    if (tls_) pki_ = std::make_unique<TestPki>(dir_.path(), "server");
    port_ = rocky_test::StartOnFreePort(
        "redis-server",
        [this](int port) {
          port_ = port;
          return Start(Args());
        },
        [this] { return ReadBytes(dir_.File("redis.log")); });
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

  // SIGSTOP: a server that hangs with its connections open (the kernel still takes and buffers bytes). Stop
  // still kills it.
  void Pause() { REQUIRE(::kill(pid_, SIGSTOP) == 0); }

  // Kills the server and starts it again on the same port, empty. Fails the test when another process took
  // the port in between.
  void Restart() {
    Stop();
    REQUIRE_MESSAGE(Start(Args()), "port " << port_ << " was taken while redis-server restarted");
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
    FAIL("redis-server was not ready on port " << port_
                                               << " within 30 s: " << ReadBytes(dir_.File("redis.log")));
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
