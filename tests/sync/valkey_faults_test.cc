// StateSync over ValkeyStateBackend against Debian's real redis-server (redis_fixture.h) through FaultProxy
// (tests/support/fault_proxy.h): the same lifecycle outcomes faults_test.cc produces over S3, here over the
// RESP protocol and a connection the backend keeps open between commands. Budgets and backoffs are
// milliseconds (SyncClock's overrides) so the binary stays fast under sanitizers.
//
// The proxy's mode applies to connections accepted afterwards, and the backend reuses its connection until a
// failure drops it, so every case sets the fault before its StateSync's first transfer (a new StateSync is a
// new backend, hence a new connection).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fault_proxy.h"
#include "redis_fixture.h"
#include "rocky/sync/circuit_breaker.h"
#include "rocky/sync/state_sync.h"
#include "rocky/sync/valkey_state_backend.h"
#include "state_contents.h"
#include "sync_fault_rig.h"

namespace {

using namespace std::chrono_literals;
using rocky::base::Status;
using rocky::sync::StateSync;
using rocky::sync::TransferOutcome;
using rocky_sync_test::Contents;
using rocky_sync_test::MakeState;
using rocky_sync_test::ReadState;
using rocky_sync_test::RedisServer;
using rocky_test::FaultProxy;
using Clock = std::chrono::steady_clock;

// One server for the whole binary; every Rig works under its own key prefix. Stopped at exit.
RedisServer& Server() {
  static RedisServer server;
  return server;
}

std::string UniquePrefix() {
  static std::atomic<int> n{0};
  return "faults:" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ":";
}

rocky::config::StateConfig Policy() {
  return rocky_test::FaultTestPolicy(rocky::config::StateBackend::kValkey);
}

// The shared rig (tests/support/sync_fault_rig.h) with Valkey backends through its proxy.
struct Rig : rocky_test::SyncFaultRig {
  Rig() : SyncFaultRig(Server().port(), UniquePrefix()) {}

  // The server's URL (with its password) with the proxy's port instead of the server's.
  std::string Url() const {
    return "redis://:" + std::string(rocky_sync_test::kRedisPasswordEscaped) +
           "@127.0.0.1:" + std::to_string(proxy.port());
  }

  std::unique_ptr<StateSync> Sync(const rocky::config::StateConfig& policy,
                                  std::chrono::milliseconds budget = 3000ms) {
    rocky::sync::ValkeyOptions options;
    options.url = Url();
    options.prefix = prefix;
    options.connect_timeout = 5s;  // the budget caps both
    options.command_timeout = 10s;
    auto backend = rocky::sync::ValkeyStateBackend::Open(options);
    REQUIRE_MESSAGE(backend.ok(), backend.status().ToString());
    return Run(std::move(*backend), policy, budget);
  }

  // No event, warning or message may hold the server's password.
  void CheckNoPassword() const {
    for (const auto& e : events) {
      const std::string json = rocky::sync::TransferEventJson(e);
      CHECK_MESSAGE(json.find(rocky_sync_test::kRedisPassword) == std::string::npos, json);
      CHECK_MESSAGE(json.find(rocky_sync_test::kRedisPasswordEscaped) == std::string::npos, json);
    }
    for (const auto& w : warnings) {
      CHECK_MESSAGE(w.find(rocky_sync_test::kRedisPassword) == std::string::npos, w);
      CHECK_MESSAGE(w.find(rocky_sync_test::kRedisPasswordEscaped) == std::string::npos, w);
    }
  }
};

// Switches the proxy back to pass-through once it accepted its first connection after ResetCounters: a reset
// or a cut repeats until switched off, and the first failure is all a retry test needs.
std::thread HealAfterFirstConnection(FaultProxy& proxy) {
  return std::thread([&proxy] {
    // No connection within the limit: the transfer under test fails and says why.
    if (proxy.AwaitConnections(1)) proxy.PassThrough();
  });
}

TEST_CASE("valkey through the proxy: ok and absent; another run downloads what the first uploaded") {
  Rig rig;
  const std::string first = rig.dir.File("a/state.redb");
  Contents want;
  {
    auto run = rig.Sync(Policy());
    auto pulled = run->Pull(first);
    REQUIRE_MESSAGE(pulled.ok(), pulled.status().ToString());
    CHECK(pulled->outcome == TransferOutcome::kAbsent);
    CHECK(rig.Last().event == "state.download");
    CHECK(rig.Last().outcome == TransferOutcome::kAbsent);
    CHECK(rig.Last().backend == "valkey");
    CHECK(rig.Last().key == rig.prefix + "state.redb");
    MakeState(first, "v1");
    REQUIRE(run->Push(first).ok());
    CHECK(rig.Last().event == "state.upload");
    CHECK(rig.Last().outcome == TransferOutcome::kOk);
    CHECK(rig.Last().bytes > 0);
    // The second upload of the run is conditional on the generation the first one wrote, and succeeds.
    want = MakeState(first, "v2");
    REQUIRE(run->Push(first).ok());
    CHECK(rig.Last().outcome == TransferOutcome::kOk);
    CHECK(rig.Last().retries == 0);
  }
  const std::string second = rig.dir.File("b/state.redb");
  auto other = rig.Sync(Policy());
  auto pulled = other->Pull(second);
  REQUIRE_MESSAGE(pulled.ok(), pulled.status().ToString());
  CHECK(pulled->outcome == TransferOutcome::kOk);
  CHECK_FALSE(pulled->state_lost);
  CHECK(pulled->bytes == rig.Last().bytes);
  CHECK(ReadState(second) == want);
  rig.CheckNoPassword();
}

TEST_CASE("valkey through the proxy: a server slower than the budget ends the transfer as timeout, in time") {
  Rig rig;
  const std::string path = rig.dir.File("state.redb");
  MakeState(path, "v");
  rig.proxy.Delay(5000ms);
  auto run = rig.Sync(Policy(), 600ms);
  const auto start = Clock::now();
  CHECK(run->Push(path).ok());  // skip policy: a warning
  const auto elapsed = Clock::now() - start;
  CHECK(rig.Last().outcome == TransferOutcome::kTimeout);
  CHECK(elapsed >= 550ms);
  CHECK(elapsed < 600ms + 500ms);
  CHECK(rig.Last().duration_ms < 1100);
  CHECK(rig.Last().error.rfind("RetryBudgetExhausted: ", 0) == 0);
  CHECK(rig.warnings.size() == 1);
  rig.CheckNoPassword();
}

TEST_CASE("valkey through the proxy: resets and a cut reply are retried to success, retries counted") {
  Rig rig;
  // Large enough that the reply to the download's read spans many segments, so the cut lands inside it.
  const std::string source = rig.dir.File("source.redb");
  const Contents want = MakeState(source, "remote", 256 * 1024);

  // An upload whose first connection is reset.
  rig.proxy.Reset();
  std::thread heal_upload = HealAfterFirstConnection(rig.proxy);
  auto writer = rig.Sync(Policy());
  const Status pushed = writer->Push(source);
  heal_upload.join();
  REQUIRE_MESSAGE(pushed.ok(), pushed.ToString());
  CHECK(rig.Last().outcome == TransferOutcome::kOk);
  CHECK(rig.Last().retries >= 1);
  CHECK(rig.proxy.connections() >= 2);

  // A download whose first connection is reset, or whose reply is cut short.
  rig.proxy.ResetCounters();
  SUBCASE("reset") { rig.proxy.Reset(); }
  SUBCASE("cut inside the reply") { rig.proxy.CutShort(64 * 1024); }
  std::thread heal_download = HealAfterFirstConnection(rig.proxy);
  auto reader = rig.Sync(Policy());
  const std::string path = rig.dir.File("state.redb");
  auto pulled = reader->Pull(path);
  heal_download.join();
  REQUIRE_MESSAGE(pulled.ok(), pulled.status().ToString());
  CHECK(pulled->outcome == TransferOutcome::kOk);
  CHECK(rig.Last().event == "state.download");
  CHECK(rig.Last().retries >= 1);
  CHECK(ReadState(path) == want);
  rig.CheckNoPassword();
}

TEST_CASE("valkey through the proxy: transient_exhausted when every connection is reset") {
  Rig rig;
  const std::string path = rig.dir.File("state.redb");
  MakeState(path, "v");
  auto policy = Policy();
  policy.retry.max_retries = 2;
  rig.proxy.Reset();
  SUBCASE("skip: a warning, the run goes on") {
    auto run = rig.Sync(policy);
    CHECK(run->Push(path).ok());
    CHECK(rig.Last().outcome == TransferOutcome::kTransientExhausted);
    CHECK(rig.Last().retries == 2);
    CHECK(rig.proxy.connections() == 3);
    CHECK(rig.warnings.size() == 1);
  }
  SUBCASE("fail: the error names the retry budget") {
    policy.on_upload_failure = rocky::config::UploadFailurePolicy::kFail;
    auto run = rig.Sync(policy);
    const Status pushed = run->Push(path);
    CHECK_FALSE(pushed.ok());
    CHECK(pushed.message().rfind("RetryBudgetExhausted: ", 0) == 0);
    CHECK(rig.Last().outcome == TransferOutcome::kTransientExhausted);
    CHECK(rig.proxy.connections() == 3);
    CHECK(pushed.message().find(rocky_sync_test::kRedisPassword) == std::string::npos);
  }
  rig.CheckNoPassword();
}

TEST_CASE("valkey through the proxy: a blackholed download is bounded by the budget; the state is lost") {
  Rig rig;
  const std::string path = rig.dir.File("state.redb");
  const Contents local = MakeState(path, "local");
  rig.proxy.Blackhole();
  auto run = rig.Sync(Policy(), 600ms);
  const auto start = Clock::now();
  auto pulled = run->Pull(path);
  REQUIRE_MESSAGE(pulled.ok(), pulled.status().ToString());
  CHECK(Clock::now() - start < 1100ms);
  CHECK(pulled->outcome == TransferOutcome::kTimeout);
  CHECK(pulled->state_lost);
  CHECK_FALSE(pulled->message.empty());
  CHECK(rig.Last().state_lost);
  CHECK(rig.proxy.connections() >= 1);
  CHECK(ReadState(path) == local);  // untouched
  // The run's upload is then skipped: nothing reaches the server.
  rig.proxy.PassThrough();
  rig.proxy.ResetCounters();
  CHECK(run->Push(path).ok());
  CHECK(rig.Last().outcome == TransferOutcome::kSkippedAfterFailure);
  CHECK(rig.proxy.connections() == 0);
  rig.CheckNoPassword();
}

TEST_CASE("valkey through the proxy: the circuit breaker opens, refuses, lets a probe through, and closes") {
  Rig rig;
  rig.recovery = 300ms;
  const std::string path = rig.dir.File("state.redb");
  MakeState(path, "v");
  auto policy = Policy();
  policy.retry.max_retries = 0;
  policy.retry.circuit_breaker_threshold = 2;
  policy.on_upload_failure = rocky::config::UploadFailurePolicy::kFail;
  rig.proxy.Reset();
  auto run = rig.Sync(policy);
  auto breaker = rocky::sync::SharedCircuitBreaker(rig.location, 0, 0ms);  // the one the run uses
  using State = rocky::sync::CircuitBreaker::State;

  for (int i = 0; i < 2; ++i) {
    CHECK_FALSE(run->Push(path).ok());
    CHECK(rig.Last().outcome == TransferOutcome::kTransientExhausted);
  }
  CHECK(breaker->state() == State::kOpen);
  CHECK(rig.proxy.connections() == 2);

  // Open: refused at once, nothing sent, by this run and by another run on the same backend.
  rig.proxy.PassThrough();
  rig.proxy.ResetCounters();
  CHECK(run->Push(path).message().rfind("CircuitOpen: ", 0) == 0);
  CHECK(rig.Last().outcome == TransferOutcome::kCircuitOpen);
  auto other = rig.Sync(policy);
  auto refused = other->Pull(rig.dir.File("other.redb"));
  REQUIRE(refused.ok());
  CHECK(refused->outcome == TransferOutcome::kCircuitOpen);
  CHECK(refused->state_lost);
  CHECK(rig.proxy.connections() == 0);

  // After the recovery timeout one probe goes through; its success closes the breaker.
  std::this_thread::sleep_for(350ms);
  const Status probe = run->Push(path);
  CHECK_MESSAGE(probe.ok(), probe.ToString());
  CHECK(rig.Last().outcome == TransferOutcome::kOk);
  CHECK(breaker->state() == State::kClosed);
  CHECK(rig.proxy.connections() == 1);
  CHECK(run->Push(path).ok());
  rig.CheckNoPassword();
}

TEST_CASE("valkey through the proxy: conflict: two runs race; the second upload is refused, never retried") {
  Rig rig;
  const std::string a = rig.dir.File("a/state.redb");
  const std::string b = rig.dir.File("b/state.redb");
  auto first = rig.Sync(Policy());
  auto second = rig.Sync(Policy());
  REQUIRE(first->Pull(a).ok());
  REQUIRE(second->Pull(b).ok());
  const Contents from_a = MakeState(a, "from a");
  MakeState(b, "from b");
  REQUIRE(first->Push(a).ok());
  const Status lost = second->Push(b);  // skip policy: a conflict is an error anyway
  CHECK(lost.IsBusy());
  CHECK(lost.message().rfind("Conflict: ", 0) == 0);
  CHECK(rig.Last().outcome == TransferOutcome::kConflict);
  CHECK(rig.Last().retries == 0);
  // The remote state is still the first run's.
  const std::string check = rig.dir.File("check.redb");
  auto reader = rig.Sync(Policy());
  auto fetched = reader->Fetch(check);
  REQUIRE_MESSAGE(fetched.ok(), fetched.status().ToString());
  REQUIRE(fetched->has_value());
  CHECK(ReadState(check) == from_a);
  rig.CheckNoPassword();
}

TEST_CASE("valkey through the proxy: a lost EXEC reply: the retry sees its own write, no false conflict") {
  Rig rig;
  const std::string path = rig.dir.File("a/state.redb");
  auto run = rig.Sync(Policy());
  REQUIRE(run->Pull(path).ok());
  // EXEC runs on the server, its reply is lost; the retry's WATCH/HGET finds a generation that is not the
  // one it was conditional on, but it is this upload's own token.
  MakeState(path, "first");
  rig.proxy.LoseReply("$4\r\nEXEC\r\n", 1);
  Status pushed = run->Push(path);
  CHECK_MESSAGE(pushed.ok(), pushed.ToString());
  CHECK(rig.proxy.lost_replies() == 1);
  CHECK(rig.Last().outcome == TransferOutcome::kOk);
  CHECK(rig.Last().retries == 1);
  const Contents second = MakeState(path, "second");
  rig.proxy.LoseReply("$4\r\nEXEC\r\n", 1);
  pushed = run->Push(path);
  CHECK_MESSAGE(pushed.ok(), pushed.ToString());
  CHECK(rig.proxy.lost_replies() == 2);
  // The generation the retry reported is the stored one: the next conditional upload goes through.
  const Contents third = MakeState(path, "third");
  pushed = run->Push(path);
  CHECK_MESSAGE(pushed.ok(), pushed.ToString());
  const std::string check = rig.dir.File("check.redb");
  auto reader = rig.Sync(Policy());
  auto fetched = reader->Fetch(check);
  REQUIRE_MESSAGE(fetched.ok(), fetched.status().ToString());
  REQUIRE(fetched->has_value());
  CHECK(ReadState(check) == third);
  // Another run's write is still a conflict.
  const std::string other = rig.dir.File("b/state.redb");
  auto stale = rig.Sync(Policy());
  REQUIRE(stale->Pull(other).ok());
  MakeState(path, "fourth");
  REQUIRE(run->Push(path).ok());
  MakeState(other, "from a stale run");
  CHECK(stale->Push(other).IsBusy());
  CHECK(rig.Last().outcome == TransferOutcome::kConflict);
  rig.CheckNoPassword();
}

}  // namespace
