// Shared by the S3 tests: S3Fixture, the real S3-protocol server
// (s3rver behind tests/fixtures/s3/server.js, which verifies every SigV4 signature with the official AWS
// signer and implements conditional PUT as AWS documents it), started on 127.0.0.1 on a free port and stopped
// by the destructor. When it cannot start, the test fails: there is no mock to fall back on.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "http_transport.h"  // internal to sync/s3: Uploads() asks the fixture directly
#include "rocky/sync/s3_client.h"
#include "sync_test_files.h"

extern char** environ;

namespace rocky_sync_test {

using rocky::sync::Credentials;
using rocky::sync::S3Client;
using rocky::sync::S3Config;

inline constexpr const char* kBucket = "rocky-test";
inline constexpr const char* kRegion = "eu-west-3";
inline constexpr const char* kAccessKey = "AKIDROCKYTEST";
inline constexpr const char* kSecret = "rocky/secret+Key/For/Tests0123456789abcd";

inline std::string FixtureDir() { return SourceRoot() + "/tests/fixtures/s3"; }

// The fixture server process: started in the constructor (REQUIREs that it says READY within 30 s), stopped
// in the destructor by closing its stdin.
class S3Fixture {
 public:
  S3Fixture() {
    REQUIRE_MESSAGE(std::filesystem::exists(FixtureDir() + "/node_modules/s3rver"),
                    "the S3 fixture's node_modules are missing: run scripts/setup");
    int in_pipe[2], out_pipe[2];
    REQUIRE(::pipe2(in_pipe, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    std::string server = FixtureDir() + "/server.js";
    std::vector<std::string> args = {"node",     server,  "--dir",        data_.path(), "--bucket", kBucket,
                                     "--region", kRegion, "--access-key", kAccessKey,   "--secret", kSecret};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawnp(&pid_, "node", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    stdin_fd_ = in_pipe[1];
    REQUIRE_MESSAGE(rc == 0, "cannot start node for the S3 fixture: " << std::strerror(rc));
    // Read "READY <port>\n".
    std::string line;
    for (int waited = 0; line.find('\n') == std::string::npos;) {
      pollfd p{out_pipe[0], POLLIN, 0};
      int ready = ::poll(&p, 1, 1000);
      if (ready == 0) {
        REQUIRE_MESSAGE(++waited < 30, "the S3 fixture did not start within 30 s");
        continue;
      }
      char buf[256];
      ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
      REQUIRE_MESSAGE(n > 0, "the S3 fixture exited before it was ready (see its stderr above)");
      line.append(buf, static_cast<size_t>(n));
    }
    ::close(out_pipe[0]);
    REQUIRE_MESSAGE(line.rfind("READY ", 0) == 0, "unexpected fixture output: " << line);
    port_ = std::stoi(line.substr(6));
    REQUIRE(port_ > 0);
  }
  ~S3Fixture() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    if (pid_ > 0) {
      int status = 0;
      for (int i = 0; i < 100; ++i) {
        if (::waitpid(pid_, &status, WNOHANG) == pid_) return;
        ::usleep(50 * 1000);
      }
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
  }
  // The fixture's own report: {"open": [upload ids still holding parts], "completed": N}.
  std::string Uploads() const {
    rocky::sync::HttpCall call;
    call.method = "GET";
    call.url = Endpoint() + "/__fixture/uploads";
    auto r = rocky::sync::SendHttp(call, rocky::sync::TransportOptions{});
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    REQUIRE(r->status == 200);
    return r->body;
  }
  std::string Endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  S3Config Config() const {
    S3Config c;
    c.bucket = kBucket;
    c.region = kRegion;
    c.endpoint = Endpoint();
    c.prefix = "team/prod/";
    auto resolved = rocky::sync::ResolveS3Config(c);
    REQUIRE(resolved.ok());
    return *resolved;
  }
  S3Client Client(const std::string& secret = kSecret) const { return Client(Config(), secret); }
  S3Client Client(const S3Config& config, const std::string& secret = kSecret) const {
    Credentials creds;
    creds.access_key_id = kAccessKey;
    creds.secret_access_key = secret;
    return S3Client(config, rocky::sync::FixedCredentials(creds));
  }

  // Runs tests/fixtures/s3/sdk.js (the AWS SDK); returns its exit status.
  int Sdk(const std::string& verb, const std::string& key, const std::string& file) const {
    std::string command = "node '" + FixtureDir() + "/sdk.js' " + verb + " --endpoint " + Endpoint() +
                          " --bucket " + kBucket + " --region " + kRegion + " --access-key " + kAccessKey +
                          " --secret '" + kSecret + "' --key '" + key + "' --file '" + file + "' >'" + file +
                          ".etag' 2>'" + file + ".err'";
    int status = std::system(command.c_str());
    if (status != 0) MESSAGE("sdk.js " << verb << " failed: " << ReadBytes(file + ".err"));
    return status;
  }

 private:
  TempDir data_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int port_ = 0;
};

}  // namespace rocky_sync_test
