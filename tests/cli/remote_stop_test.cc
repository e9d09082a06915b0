// Ctrl-C and SIGTERM while rocky waits on the network: a download into a dead peer (a blackhole that accepts
// and never answers), a backoff sleep after a 503, an upload to a dead peer, and Valkey that never replies.
// With transfer_timeout_seconds = 300 each of these would wait up to five minutes; stopped, rocky must exit
// 130 (SIGINT) or 143 (SIGTERM) long before, with the local state file as it was.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "../support/fault_proxy.h"
#include "../sync/redis_fixture.h"
#include "../sync/s3_fixture.h"
#include "program_runner.h"
#include "remote_test_support.h"

namespace {

using namespace rocky::cli::testing;  // NOLINT(google-build-using-namespace): the runner's helpers
using namespace std::chrono_literals;
namespace s3test = rocky_sync_test;

// `rocky ARGS...` started in the sandbox, stderr to `err_file`, stdout discarded; returns its pid.
pid_t Start(const Sandbox& box, const std::vector<std::string>& args, const std::string& err_file) {
  const std::string binary = ProgramPath("rocky");
  std::fflush(nullptr);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (chdir(box.dir().c_str()) != 0) _exit(127);
    const int null_fd = open("/dev/null", O_RDWR);
    const int err_fd = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (null_fd < 0 || err_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0 ||
        dup2(err_fd, STDERR_FILENO) < 0) {
      _exit(127);
    }
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// Waits until `condition` holds, failing the test after `limit`.
template <typename Condition>
void WaitFor(Condition condition, std::chrono::seconds limit, const char* what) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < give_up, "gave up waiting for " << what);
    std::this_thread::sleep_for(10ms);
  }
}

// Sends `signal` and waits for the exit; the process must end by the signal's exit code, not by the signal,
// and well inside `limit` (the transfer's budget is 300 s). Returns how long it took.
std::chrono::milliseconds StopAndWait(pid_t pid, int signal, int expected_exit, std::chrono::seconds limit) {
  const auto sent = std::chrono::steady_clock::now();
  REQUIRE(kill(pid, signal) == 0);
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    REQUIRE(done >= 0);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() - sent > limit) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL("rocky was still waiting " << limit.count() << " s after signal " << signal);
    }
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE_MESSAGE(WIFEXITED(status), "rocky died of signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
  CHECK(WEXITSTATUS(status) == expected_exit);
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sent);
}

// A project whose state lives on S3 behind `proxy`, with a 300 s transfer budget and the given retry policy.
void UseS3Behind(const Sandbox& box, const rocky_test::FaultProxy& proxy, const std::string& retry) {
  std::string text = ReadBytes(box.File("rocky.toml"));
  const std::string local = "backend = \"local\"";
  const auto at = text.find(local);
  REQUIRE(at != std::string::npos);
  text.replace(at, local.size(),
               "backend = \"s3\"\ns3_bucket = \"" + std::string(s3test::kBucket) + "\"\ns3_endpoint = \"" +
                   proxy.Endpoint() + "\"\ntransfer_timeout_seconds = 300\n[state.retry]\n" + retry);
  WriteBytes(box.File("rocky.toml"), text);
}

}  // namespace

TEST_CASE("Ctrl-C during a download into a dead peer: exit 130 at once, the local state as it was") {
  s3test::S3Fixture s3;
  rocky_test::FaultProxy proxy(std::stoi(s3.Endpoint().substr(s3.Endpoint().rfind(':') + 1)));
  REQUIRE_MESSAGE(proxy.ok(), proxy.error());
  ScopedEnv env;
  UseFixtureCredentials(env);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --output table"), 0);
  CHECK_RUN(box.Rocky("run --output table"), 0);  // a local state to keep
  UseS3Behind(box, proxy, "max_retries = 3\n");
  const std::string before = ReadBytes(box.File(".rocky-state.redb"));
  proxy.Blackhole();
  proxy.PassNext(1);  // the lease (one PUT): the download after it meets the dead peer
  const pid_t pid = Start(box, {"run", "--output", "json"}, box.File("err.txt"));
  WaitFor([&] { return proxy.connections() >= 2; }, 120s, "the download to reach the proxy");
  const auto took = StopAndWait(pid, SIGINT, 130, 60s);
  MESSAGE("exited " << took.count() << " ms after SIGINT");
  const std::string err = ReadBytes(box.File("err.txt"));
  CHECK(Contains(err, "Interrupted"));
  CHECK(ReadBytes(box.File(".rocky-state.redb")) == before);
}

TEST_CASE("SIGTERM during a backoff sleep after a 503: exit 143 at once, no retry") {
  s3test::S3Fixture s3;
  rocky_test::FaultProxy proxy(std::stoi(s3.Endpoint().substr(s3.Endpoint().rfind(':') + 1)));
  REQUIRE_MESSAGE(proxy.ok(), proxy.error());
  ScopedEnv env;
  UseFixtureCredentials(env);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --output table"), 0);
  UseS3Behind(box, proxy,
              "max_retries = 3\ninitial_backoff_ms = 120000\nmax_backoff_ms = 120000\njitter = false\n");
  proxy.ServiceUnavailable(1000);
  proxy.PassNext(1);  // the lease: the download after it gets the 503
  const pid_t pid = Start(
      box,
      {"state", "set", "--table", "a.b.c", "--value", "2026-01-01T00:00:00Z", "--events", "events.jsonl"},
      box.File("err.txt"));
  WaitFor([&] { return proxy.answered_503() >= 1; }, 120s, "the first 503");
  const auto took = StopAndWait(pid, SIGTERM, 143, 60s);
  MESSAGE("exited " << took.count() << " ms after SIGTERM");
  // The sleep ended without another attempt of the download: two 503s in all, the download's and the
  // lease's release (one attempt after a stop; the lease then expires on its own).
  const auto lines = Lines(box.File("events.jsonl"));
  const auto downloads = EventsNamed(lines, "state.download");
  REQUIRE(downloads.size() == 1);
  CHECK(Contains(downloads[0], "\"outcome\":\"interrupted\""));
  const auto leases = EventsNamed(lines, "state.lease");
  REQUIRE(leases.size() == 2);
  CHECK(Contains(leases[0], "\"outcome\":\"acquired\""));
  CHECK(Contains(leases[1], "\"outcome\":\"error\""));
  CHECK(proxy.answered_503() == 2);
  CHECK(Contains(ReadBytes(box.File("err.txt")), "Interrupted"));
  // The command stopped before its write: no watermark (the download had only created an empty state).
  CHECK(!Contains(box.Program("rocky", "state --output table --config /dev/null").out, "a.b.c"));
}

TEST_CASE(
    "Ctrl-C during an upload to a dead peer (state push --force): exit 130, the local state as it was") {
  s3test::S3Fixture s3;
  rocky_test::FaultProxy proxy(std::stoi(s3.Endpoint().substr(s3.Endpoint().rfind(':') + 1)));
  REQUIRE_MESSAGE(proxy.ok(), proxy.error());
  ScopedEnv env;
  UseFixtureCredentials(env);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --output table"), 0);
  CHECK_RUN(box.Rocky("run --output table"), 0);
  UseS3Behind(box, proxy, "max_retries = 3\n");
  const std::string before = ReadBytes(box.File(".rocky-state.redb"));
  proxy.Blackhole();
  proxy.PassNext(1);  // the lease: the upload after it meets the dead peer
  const pid_t pid = Start(box, {"state", "push", "--force"}, box.File("err.txt"));
  WaitFor([&] { return proxy.connections() >= 2; }, 120s, "the upload to reach the proxy");
  StopAndWait(pid, SIGINT, 130, 60s);
  CHECK(Contains(ReadBytes(box.File("err.txt")), "Interrupted"));
  CHECK(ReadBytes(box.File(".rocky-state.redb")) == before);
}

TEST_CASE("Ctrl-C while Valkey never replies: exit 130 at once") {
  rocky_sync_test::RedisServer redis;
  rocky_test::FaultProxy proxy(redis.port());
  REQUIRE_MESSAGE(proxy.ok(), proxy.error());
  Sandbox box;
  CHECK_RUN(box.Rocky("init --output table"), 0);
  std::string text = ReadBytes(box.File("rocky.toml"));
  const std::string local = "backend = \"local\"";
  text.replace(
      text.find(local), local.size(),
      "backend = \"valkey\"\nvalkey_url = \"redis://:" + std::string(rocky_sync_test::kRedisPasswordEscaped) +
          "@127.0.0.1:" + std::to_string(proxy.port()) + "\"\ntransfer_timeout_seconds = 300\n");
  WriteBytes(box.File("rocky.toml"), text);
  // The lease's own connection goes through; the state's (the download) meets a server that never replies.
  proxy.Blackhole();
  proxy.PassNext(1);
  const pid_t pid = Start(box, {"run", "--output", "json"}, box.File("err.txt"));
  WaitFor([&] { return proxy.connections() >= 2; }, 120s, "the download's connection to reach the proxy");
  StopAndWait(pid, SIGINT, 130, 60s);
  CHECK(Contains(ReadBytes(box.File("err.txt")), "Interrupted"));
}
