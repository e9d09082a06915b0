// StateSync against the real S3 fixture (s3_fixture.h: s3rver verifying every SigV4 signature) through
// FaultProxy (tests/support/fault_proxy.h), which delays, drops, resets, answers 503 or cuts responses short:
// every transfer outcome, the circuit breaker's three states, the run's shared retry budget, the wall-clock
// budget and both upload policies, over real HTTP. Budgets and backoffs are milliseconds (SyncClock's
// overrides) so the whole binary stays fast under sanitizers.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "fault_proxy.h"
#include "http_transport.h"  // internal to sync/s3: Get() below sends through the transport
#include "rocky/engine/db.h"
#include "rocky/sync/circuit_breaker.h"
#include "rocky/sync/s3_state_backend.h"
#include "rocky/sync/state_sync.h"
#include "s3_fixture.h"
#include "sync_fault_rig.h"

namespace {

using namespace std::chrono_literals;
using rocky::base::Status;
using rocky::sync::StateSync;
using rocky::sync::TransferOutcome;
using rocky_sync_test::S3Client;
using rocky_sync_test::S3Fixture;
using rocky_sync_test::TempDir;
using rocky_test::FaultProxy;
using Clock = std::chrono::steady_clock;

// One server for the whole binary: starting node costs a second or more, and every test works under its own
// prefix. Stopped at exit.
S3Fixture& Server() {
  static S3Fixture fixture;
  return fixture;
}

int ServerPort() {
  const std::string endpoint = Server().Endpoint();
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

std::string UniquePrefix() {
  static std::atomic<int> n{0};
  return "faults/" + std::to_string(::getpid()) + "-" + std::to_string(++n) + "/";
}

// A real state file holding `value` under watermarks/k, plus `padding` incompressible bytes (so that its
// envelope is much larger than any HTTP head, and a response can be cut inside its body).
void MakeState(const std::string& path, const std::string& value, size_t padding = 0) {
  auto db = rocky::engine::Database::Open(path, rocky::engine::Options{});
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  auto w = (*db)->BeginWrite();
  REQUIRE(w.ok());
  auto t = (*w)->OpenTable("watermarks");
  REQUIRE(t.ok());
  REQUIRE((*t)->Insert("k", value).ok());
  if (padding > 0) {
    std::mt19937_64 engine(padding);
    std::string pad(padding, '\0');
    for (char& c : pad) c = static_cast<char>(engine());
    REQUIRE((*t)->Insert("pad", pad).ok());
  }
  REQUIRE((*w)->Commit().ok());
  REQUIRE((*db)->Close().ok());
}

std::string StateValue(const std::string& path) {
  rocky::engine::Options options;
  options.read_only = true;
  auto db = rocky::engine::Database::Open(path, options);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  auto r = (*db)->BeginRead();
  REQUIRE(r.ok());
  auto t = (*r)->OpenTable("watermarks");
  if (!t.ok()) return "";
  std::string value;
  auto found = (*t)->Get("k", &value);
  REQUIRE(found.ok());
  return *found ? value : "";
}

rocky::config::StateConfig Policy() { return rocky_test::FaultTestPolicy(rocky::config::StateBackend::kS3); }

// The shared rig (tests/support/sync_fault_rig.h) with S3 backends through its proxy.
struct Rig : rocky_test::SyncFaultRig {
  Rig() : SyncFaultRig(ServerPort(), UniquePrefix()) {}

  std::unique_ptr<StateSync> Sync(const rocky::config::StateConfig& policy,
                                  std::chrono::milliseconds budget = 3000ms,
                                  const std::string& secret = rocky_sync_test::kSecret) {
    rocky::sync::S3Config config = Server().Config();
    config.endpoint = proxy.Endpoint();
    config.prefix = prefix;
    rocky::sync::Credentials creds;
    creds.access_key_id = rocky_sync_test::kAccessKey;
    creds.secret_access_key = secret;
    return Run(std::make_unique<rocky::sync::S3StateBackend>(config, rocky::sync::FixedCredentials(creds)),
               policy, budget);
  }
};

// ---------------------------------------------------------------------------------------------------------------
// The proxy itself, with plain HTTP to the fixture

rocky::base::Result<rocky::sync::HttpResponse> Get(const FaultProxy& proxy) {
  rocky::sync::HttpCall call;
  call.method = "GET";
  call.url = proxy.Endpoint() + "/__fixture/uploads";
  rocky::sync::TransportOptions options;
  options.connect_timeout = 2s;
  options.low_speed_time = 1s;
  return rocky::sync::SendHttp(call, options);
}

TEST_CASE("fault proxy: pass-through, 503 for N connections, reset, cut short, delay, blackhole") {
  FaultProxy proxy(ServerPort());
  REQUIRE(proxy.ok());
  auto passed = Get(proxy);
  REQUIRE_MESSAGE(passed.ok(), passed.status().ToString());
  CHECK(passed->status == 200);
  CHECK(proxy.connections() == 1);
  CHECK(proxy.requests() == 1);

  proxy.ServiceUnavailable(2, "ServiceUnavailable");
  for (int i = 0; i < 2; ++i) {
    auto refused = Get(proxy);
    REQUIRE(refused.ok());
    CHECK(refused->status == 503);
    CHECK(refused->body.find("<Code>ServiceUnavailable</Code>") != std::string::npos);
  }
  auto after = Get(proxy);
  REQUIRE(after.ok());
  CHECK(after->status == 200);  // the 503s are spent: relaying again
  CHECK(proxy.answered_503() == 2);
  CHECK(proxy.mode() == FaultProxy::Mode::kPass);

  proxy.Reset();
  auto reset = Get(proxy);
  CHECK_FALSE(reset.ok());
  CHECK(reset.status().code() == Status::Code::kIOError);

  // Cut inside a body: curl knows the length it was promised. (Cut inside the head, curl takes what it got as
  // a complete response, which is why the download tests cut bodies.)
  TempDir dir;
  const std::string object = dir.File("object");
  rocky_sync_test::WriteBytes(object, std::string(64 * 1024, 'x'));
  proxy.PassThrough();
  S3Client direct = Server().Client();
  REQUIRE(direct.PutObject("proxy-test/object", object, rocky::sync::WriteCondition::None()).ok());
  rocky::sync::S3Config via_proxy = Server().Config();
  via_proxy.endpoint = proxy.Endpoint();
  S3Client client = Server().Client(via_proxy);
  proxy.CutShort(4096);
  auto cut = client.GetObject("proxy-test/object", dir.File("copy"));
  CHECK_FALSE(cut.ok());
  CHECK(cut.status().code() == Status::Code::kIOError);
  proxy.PassThrough();
  auto whole = client.GetObject("proxy-test/object", dir.File("copy"));
  REQUIRE_MESSAGE(whole.ok(), whole.status().ToString());
  CHECK(rocky_sync_test::ReadBytes(dir.File("copy")).size() == 64 * 1024);

  proxy.Delay(400ms);
  const auto start = Clock::now();
  auto delayed = Get(proxy);
  REQUIRE(delayed.ok());
  CHECK(delayed->status == 200);
  CHECK(Clock::now() - start >= 400ms);

  proxy.Blackhole();
  proxy.ResetCounters();
  auto dropped = Get(proxy);  // curl's low-speed limit gives up on the silent peer
  CHECK_FALSE(dropped.ok());
  CHECK(proxy.connections() == 1);
  CHECK(proxy.requests() == 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Outcomes over real transfers

TEST_CASE("ok and absent: a first run finds nothing, uploads; another machine downloads it") {
  Rig rig;
  const std::string first = rig.dir.File("a/state.redb");
  {
    auto run = rig.Sync(Policy());
    auto pulled = run->Pull(first);
    REQUIRE_MESSAGE(pulled.ok(), pulled.status().ToString());
    CHECK(pulled->outcome == TransferOutcome::kAbsent);
    CHECK(rig.Last().outcome == TransferOutcome::kAbsent);
    MakeState(first, "2026-01-01T00:00:00Z");
    REQUIRE(run->Push(first).ok());
    CHECK(rig.Last().outcome == TransferOutcome::kOk);
    CHECK(rig.Last().event == "state.upload");
    CHECK(rig.Last().bytes > 0);
    // A second upload of the same run is conditional on the first one's ETag, and succeeds.
    MakeState(first, "2026-01-02T00:00:00Z");
    REQUIRE(run->Push(first).ok());
    CHECK(rig.Last().outcome == TransferOutcome::kOk);
  }
  const std::string second = rig.dir.File("b/state.redb");
  auto other = rig.Sync(Policy());
  auto pulled = other->Pull(second);
  REQUIRE(pulled.ok());
  CHECK(pulled->outcome == TransferOutcome::kOk);
  CHECK(rig.Last().outcome == TransferOutcome::kOk);
  CHECK(rig.Last().bytes == pulled->bytes);
  CHECK(StateValue(second) == "2026-01-02T00:00:00Z");
}

TEST_CASE("timeout: a server slower than the budget ends the transfer within the budget") {
  Rig rig;
  const std::string path = rig.dir.File("state.redb");
  MakeState(path, "v");
  auto run = rig.Sync(Policy(), 700ms);
  rig.proxy.Delay(5000ms);
  const auto start = Clock::now();
  CHECK(run->Push(path).ok());  // skip policy
  const auto elapsed = Clock::now() - start;
  CHECK(rig.Last().outcome == TransferOutcome::kTimeout);
  CHECK(elapsed >= 650ms);
  CHECK(elapsed < 700ms + 500ms);
  CHECK(rig.Last().duration_ms < 1200);
  CHECK(rig.Last().error.rfind("RetryBudgetExhausted: ", 0) == 0);
}

TEST_CASE("timeout: a blackholed download is bounded too, and the state is lost") {
  Rig rig;
  const std::string path = rig.dir.File("state.redb");
  MakeState(path, "local");
  auto run = rig.Sync(Policy(), 600ms);
  rig.proxy.Blackhole();
  const auto start = Clock::now();
  auto pulled = run->Pull(path);
  REQUIRE(pulled.ok());
  CHECK(Clock::now() - start < 1200ms);
  CHECK(pulled->outcome == TransferOutcome::kTimeout);
  CHECK(pulled->state_lost);
  CHECK(StateValue(path) == "local");
}

TEST_CASE("error_then_fresh: a wrong secret fails the download once, with no retry, local file untouched") {
  Rig rig;
  const std::string path = rig.dir.File("state.redb");
  MakeState(path, "local");
  auto run = rig.Sync(Policy(), 3000ms, "not-the-secret");
  auto pulled = run->Pull(path);
  REQUIRE(pulled.ok());
  CHECK(pulled->outcome == TransferOutcome::kErrorThenFresh);
  CHECK(pulled->state_lost);
  CHECK(rig.proxy.requests() == 1);
  CHECK(rig.Last().retries == 0);
  CHECK(rig.Last().state_lost);
  CHECK(StateValue(path) == "local");
  // The message names what went wrong, never the secret.
  CHECK(pulled->message.find("not-the-secret") == std::string::npos);
  CHECK(rocky::sync::TransferEventJson(rig.Last()).find("not-the-secret") == std::string::npos);
  REQUIRE(rig.warnings.size() == 1);

  // skipped_after_failure: the run then does not upload, and nothing reaches the server.
  rig.proxy.ResetCounters();
  CHECK(run->Push(path).ok());
  CHECK(rig.Last().outcome == TransferOutcome::kSkippedAfterFailure);
  CHECK(rig.proxy.connections() == 0);
}

TEST_CASE("error: a wrong secret fails an upload once, with no retry; fail policy returns it") {
  Rig rig;
  const std::string path = rig.dir.File("state.redb");
  MakeState(path, "v");
  auto policy = Policy();
  policy.on_upload_failure = rocky::config::UploadFailurePolicy::kFail;
  auto run = rig.Sync(policy, 3000ms, "not-the-secret");
  Status pushed = run->Push(path);
  CHECK_FALSE(pushed.ok());
  CHECK(pushed.code() == Status::Code::kPermissionDenied);
  CHECK(pushed.message().find("not-the-secret") == std::string::npos);
  CHECK(rig.Last().outcome == TransferOutcome::kError);
  CHECK(rig.Last().retries == 0);
  CHECK(rig.proxy.requests() == 1);
}

TEST_CASE("transient_exhausted: 503 SlowDown outlasts max_retries; skip succeeds, fail names the budget") {
  Rig rig;
  const std::string path = rig.dir.File("state.redb");
  MakeState(path, "v");
  auto policy = Policy();
  policy.retry.max_retries = 2;
  SUBCASE("skip") {
    auto run = rig.Sync(policy);
    rig.proxy.ServiceUnavailable(100, "SlowDown");
    CHECK(run->Push(path).ok());
    CHECK(rig.Last().outcome == TransferOutcome::kTransientExhausted);
    CHECK(rig.Last().retries == 2);
    CHECK(rig.proxy.answered_503() == 3);
    CHECK(rig.Last().error.find("SlowDown") != std::string::npos);
    REQUIRE(rig.warnings.size() == 1);
  }
  SUBCASE("fail") {
    policy.on_upload_failure = rocky::config::UploadFailurePolicy::kFail;
    auto run = rig.Sync(policy);
    rig.proxy.ServiceUnavailable(100, "ServiceUnavailable");
    Status pushed = run->Push(path);
    CHECK_FALSE(pushed.ok());
    CHECK(pushed.message().rfind("RetryBudgetExhausted: ", 0) == 0);
    CHECK(rig.proxy.answered_503() == 3);
    CHECK(rig.warnings.empty());
  }
}

TEST_CASE("downloads are retried like uploads: 503, reset and a cut response, then success") {
  Rig rig;
  const std::string source = rig.dir.File("source.redb");
  MakeState(source, "remote", 64 * 1024);
  auto writer = rig.Sync(Policy());
  REQUIRE(writer->Push(source).ok());

  auto run = rig.Sync(Policy());
  const std::string path = rig.dir.File("state.redb");
  rig.proxy.ResetCounters();
  SUBCASE("503") { rig.proxy.ServiceUnavailable(2); }
  SUBCASE("reset then pass") { rig.proxy.Reset(); }
  SUBCASE("cut inside the body, then pass") { rig.proxy.CutShort(8192); }
  std::thread heal([&] {
    // Resets and cut responses repeat until switched off: heal after the first failure.
    // No connection within the limit: the Pull below fails and says why.
    if (rig.proxy.AwaitConnections(1) && rig.proxy.mode() != FaultProxy::Mode::kServiceUnavailable) {
      rig.proxy.PassThrough();
    }
  });
  auto pulled = run->Pull(path);
  heal.join();
  REQUIRE(pulled.ok());
  CHECK(pulled->outcome == TransferOutcome::kOk);
  CHECK(rig.Last().retries >= 1);
  CHECK(StateValue(path) == "remote");
}

TEST_CASE("budget_exhausted: max_retries_per_run is spent across the transfers of one run") {
  Rig rig;
  const std::string path = rig.dir.File("state.redb");
  auto policy = Policy();
  policy.retry.max_retries = 5;
  policy.retry.max_retries_per_run = 3;
  policy.on_upload_failure = rocky::config::UploadFailurePolicy::kFail;
  auto run = rig.Sync(policy);
  rig.proxy.ServiceUnavailable(2);
  auto pulled = run->Pull(path);  // two retries of the run's three
  REQUIRE(pulled.ok());
  CHECK(pulled->outcome == TransferOutcome::kAbsent);
  CHECK(rig.Last().retries == 2);
  MakeState(path, "v");
  rig.proxy.ServiceUnavailable(100);
  rig.proxy.ResetCounters();
  Status pushed = run->Push(path);
  CHECK_FALSE(pushed.ok());
  CHECK(rig.Last().outcome == TransferOutcome::kBudgetExhausted);
  CHECK(rig.Last().retries == 1);
  CHECK(rig.proxy.answered_503() == 2);
  CHECK(pushed.message().rfind("RetryBudgetExhausted: ", 0) == 0);
  // A new run has its own budget.
  auto next = rig.Sync(policy);
  rig.proxy.ServiceUnavailable(1);
  REQUIRE(next->Push(path).ok());
  CHECK(rig.Last().retries == 1);
}

TEST_CASE("circuit breaker over real transfers: opens, refuses, lets one probe through, closes or reopens") {
  Rig rig;
  rig.recovery = 400ms;
  const std::string path = rig.dir.File("state.redb");
  MakeState(path, "v");
  auto policy = Policy();
  policy.retry.max_retries = 0;
  policy.retry.circuit_breaker_threshold = 2;
  policy.on_upload_failure = rocky::config::UploadFailurePolicy::kFail;
  auto run = rig.Sync(policy);
  auto breaker = rocky::sync::SharedCircuitBreaker(rig.location, 0, 0ms);  // the one the run uses
  using State = rocky::sync::CircuitBreaker::State;

  rig.proxy.Reset();
  for (int i = 0; i < 2; ++i) {
    CHECK_FALSE(run->Push(path).ok());
    CHECK(rig.Last().outcome == TransferOutcome::kTransientExhausted);
  }
  CHECK(breaker->state() == State::kOpen);
  // Open: refused at once, nothing sent, in this run and in any other run of the process on this backend.
  rig.proxy.PassThrough();
  rig.proxy.ResetCounters();
  Status refused = run->Push(path);
  CHECK(refused.message().rfind("CircuitOpen: ", 0) == 0);
  CHECK(rig.Last().outcome == TransferOutcome::kCircuitOpen);
  auto other = rig.Sync(policy);
  CHECK(other->Push(path).message().rfind("CircuitOpen: ", 0) == 0);
  CHECK(rig.proxy.connections() == 0);

  // Half-open: after the recovery timeout one probe goes; a failed probe reopens it.
  std::this_thread::sleep_for(450ms);
  rig.proxy.Reset();
  CHECK_FALSE(run->Push(path).ok());
  CHECK(rig.Last().outcome == TransferOutcome::kTransientExhausted);
  CHECK(rig.proxy.connections() == 1);
  CHECK(breaker->state() == State::kOpen);
  CHECK(run->Push(path).message().rfind("CircuitOpen: ", 0) == 0);

  // Next probe, held at the proxy: while it is out, the other run is refused; its success closes the breaker.
  std::this_thread::sleep_for(450ms);
  rig.proxy.ResetCounters();
  rig.proxy.Hold();
  Status probe;
  std::thread prober([&] { probe = run->Push(path); });
  const bool probe_out = rig.proxy.AwaitConnections(1);
  CHECK_MESSAGE(probe_out, "the probe never reached the proxy");
  CHECK(breaker->state() == State::kHalfOpen);
  Status during = other->Push(path);
  CHECK(during.message().rfind("CircuitOpen: ", 0) == 0);
  rig.proxy.Release();
  prober.join();
  CHECK_MESSAGE(probe.ok(), probe.ToString());
  CHECK(breaker->state() == State::kClosed);
  rig.proxy.PassThrough();
  CHECK(run->Push(path).ok());
}

TEST_CASE("conflict: two runs race; the second upload is refused, never retried, an error under skip") {
  Rig rig;
  const std::string a = rig.dir.File("a/state.redb");
  const std::string b = rig.dir.File("b/state.redb");
  auto first = rig.Sync(Policy());
  auto second = rig.Sync(Policy());
  REQUIRE(first->Pull(a).ok());
  REQUIRE(second->Pull(b).ok());
  MakeState(a, "from a");
  MakeState(b, "from b");
  REQUIRE(first->Push(a).ok());
  rig.proxy.ResetCounters();
  Status lost = second->Push(b);
  CHECK(lost.IsBusy());
  CHECK(lost.message().rfind("Conflict: ", 0) == 0);
  CHECK(rig.Last().outcome == TransferOutcome::kConflict);
  CHECK(rig.Last().retries == 0);
  // The remote state is still the first run's.
  const std::string check = rig.dir.File("check.redb");
  auto reader = rig.Sync(Policy());
  auto fetched = reader->Fetch(check);
  REQUIRE(fetched.ok());
  REQUIRE(fetched->has_value());
  CHECK(StateValue(check) == "from a");
}

TEST_CASE(
    "a lost reply: a conditional upload whose write landed is retried and sees its own write, no conflict") {
  Rig rig;
  const std::string path = rig.dir.File("a/state.redb");
  auto run = rig.Sync(Policy());
  REQUIRE(run->Pull(path).ok());
  // The first upload (If-None-Match: *) reaches S3, its 200 is lost; the retry's condition then fails (the
  // object exists): it is this upload's own write, so the upload succeeded.
  MakeState(path, "first");
  rig.proxy.LoseReply("PUT /", 1);
  Status pushed = run->Push(path);
  CHECK_MESSAGE(pushed.ok(), pushed.ToString());
  CHECK(rig.proxy.lost_replies() == 1);
  CHECK(rig.Last().outcome == TransferOutcome::kOk);
  CHECK(rig.Last().retries == 1);
  // The same with If-Match: the second upload's write lands, its reply is lost, the retry's ETag is stale.
  MakeState(path, "second");
  rig.proxy.LoseReply("PUT /", 1);
  pushed = run->Push(path);
  CHECK_MESSAGE(pushed.ok(), pushed.ToString());
  CHECK(rig.proxy.lost_replies() == 2);
  CHECK(rig.Last().outcome == TransferOutcome::kOk);
  // What the retry reported is the object's real ETag: the next conditional upload goes through.
  MakeState(path, "third");
  pushed = run->Push(path);
  CHECK_MESSAGE(pushed.ok(), pushed.ToString());
  const std::string check = rig.dir.File("check.redb");
  auto reader = rig.Sync(Policy());
  auto fetched = reader->Fetch(check);
  REQUIRE(fetched.ok());
  REQUIRE(fetched->has_value());
  CHECK(StateValue(check) == "third");
  // Another run's write is still a conflict: the token is this upload's alone.
  const std::string other = rig.dir.File("b/state.redb");
  auto stale = rig.Sync(Policy());
  REQUIRE(stale->Pull(other).ok());
  MakeState(path, "fourth");
  REQUIRE(run->Push(path).ok());
  MakeState(other, "from a stale run");
  CHECK(stale->Push(other).IsBusy());
  CHECK(rig.Last().outcome == TransferOutcome::kConflict);
}

}  // namespace
