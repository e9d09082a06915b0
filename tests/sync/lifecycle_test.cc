// The lifecycle's policy without a network: backoff, the circuit breaker, transfer events, and StateSync's
// decisions (retries, budgets, breaker, outcomes, upload policies, the writer lock during Pull) over
// ScriptedBackend, a test double that answers from a script. Nothing here covers S3 itself: the same outcomes
// against the real S3 fixture, through a fault-injecting proxy, are in faults_test.cc.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <deque>
#include <filesystem>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "rocky/engine/db.h"
#include "rocky/sync/backoff.h"
#include "rocky/sync/circuit_breaker.h"
#include "rocky/sync/state_sync.h"
#include "rocky/sync/transfer_event.h"
#include "sync_test_files.h"

namespace {

using namespace std::chrono_literals;
using rocky::base::Result;
using rocky::base::Status;
using rocky::sync::Backoff;
using rocky::sync::CircuitBreaker;
using rocky::sync::Deadline;
using rocky::sync::StateSync;
using rocky::sync::SyncClock;
using rocky::sync::TransferEvent;
using rocky::sync::TransferOutcome;
using rocky::sync::TransferReport;
using rocky_sync_test::TempDir;
using Admission = CircuitBreaker::Admission;
using BreakerState = CircuitBreaker::State;
using TimePoint = std::chrono::steady_clock::time_point;

// ---------------------------------------------------------------------------------------------------------------
// Backoff

rocky::config::RetryConfig Retry(uint64_t initial, double multiplier, uint64_t max, bool jitter) {
  rocky::config::RetryConfig r;
  r.initial_backoff_ms = initial;
  r.backoff_multiplier = multiplier;
  r.max_backoff_ms = max;
  r.jitter = jitter;
  return r;
}

TEST_CASE("backoff without jitter grows by the multiplier and stops at the cap") {
  Backoff b(Retry(100, 2.0, 1000, false), nullptr);
  CHECK(b.Delay(1) == 100ms);
  CHECK(b.Delay(2) == 200ms);
  CHECK(b.Delay(3) == 400ms);
  CHECK(b.Delay(4) == 800ms);
  CHECK(b.Delay(5) == 1000ms);
  CHECK(b.Delay(6) == 1000ms);
  // A huge exponent saturates rather than overflowing.
  CHECK(b.Delay(100000) == 1000ms);
  Backoff flat(Retry(250, 1.0, 30000, false), nullptr);
  CHECK(flat.Delay(7) == 250ms);
  Backoff immediate(Retry(0, 2.0, 30000, true), [] { return 0.9; });
  CHECK(immediate.Delay(3) == 0ms);
}

TEST_CASE("backoff with full jitter draws in [0, ceiling]") {
  double unit = 0.0;
  Backoff b(Retry(100, 3.0, 5000, true), [&] { return unit; });
  CHECK(b.Ceiling(3) == 900ms);
  unit = 0.0;
  CHECK(b.Delay(3) == 0ms);
  unit = 0.5;
  CHECK(b.Delay(3) == 450ms);
  unit = std::nextafter(1.0, 0.0);
  CHECK(b.Delay(3) == 900ms);
  // A misbehaving source stays within bounds.
  unit = 7.0;
  CHECK(b.Delay(3) == 900ms);
  unit = -1.0;
  CHECK(b.Delay(3) == 0ms);
  unit = 0.5;
  CHECK(b.Delay(10) == 2500ms);  // half of the cap
}

TEST_CASE("backoff jitter from a real random source covers the range and never leaves it") {
  std::mt19937_64 engine(42);
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  Backoff b(Retry(1000, 2.0, 30000, true), [&] { return dist(engine); });
  int64_t low = 1'000'000, high = -1;
  double sum = 0;
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) {
    const int64_t d = b.Delay(2).count();
    REQUIRE(d >= 0);
    REQUIRE(d <= 2000);
    low = std::min(low, d);
    high = std::max(high, d);
    sum += static_cast<double>(d);
  }
  CHECK(low < 100);
  CHECK(high > 1900);
  CHECK(sum / draws == doctest::Approx(1000.0).epsilon(0.05));  // uniform: mean at half the ceiling
}

// ---------------------------------------------------------------------------------------------------------------
// Circuit breaker

TEST_CASE("breaker: closed until threshold consecutive failures; a success in between resets the count") {
  CircuitBreaker breaker(3, 1000ms);
  const TimePoint t0{};
  for (int i = 0; i < 2; ++i) breaker.Record(breaker.Admit(t0), false, t0);
  CHECK(breaker.consecutive_failures() == 2);
  breaker.Record(breaker.Admit(t0), true, t0);
  CHECK(breaker.consecutive_failures() == 0);
  for (int i = 0; i < 2; ++i) breaker.Record(breaker.Admit(t0), false, t0);
  CHECK(breaker.state() == BreakerState::kClosed);
  breaker.Record(breaker.Admit(t0), false, t0);
  CHECK(breaker.state() == BreakerState::kOpen);
  CHECK(breaker.Admit(t0 + 999ms) == Admission::kRefused);
}

TEST_CASE("breaker: open lets exactly one probe through after the recovery timeout; success closes it") {
  CircuitBreaker breaker(1, 1000ms);
  const TimePoint t0{};
  breaker.Record(breaker.Admit(t0), false, t0);
  REQUIRE(breaker.state() == BreakerState::kOpen);
  CHECK(breaker.Admit(t0 + 500ms) == Admission::kRefused);
  CHECK(breaker.Admit(t0 + 1000ms) == Admission::kProbe);
  CHECK(breaker.state() == BreakerState::kHalfOpen);
  // While the probe is out, everyone else is refused, however late.
  CHECK(breaker.Admit(t0 + 1001ms) == Admission::kRefused);
  CHECK(breaker.Admit(t0 + 60s) == Admission::kRefused);
  breaker.Record(Admission::kProbe, true, t0 + 60s);
  CHECK(breaker.state() == BreakerState::kClosed);
  CHECK(breaker.consecutive_failures() == 0);
  CHECK(breaker.Admit(t0 + 60s) == Admission::kAdmitted);
}

TEST_CASE("breaker: a failed probe reopens it for another full recovery timeout") {
  CircuitBreaker breaker(2, 1000ms);
  const TimePoint t0{};
  breaker.Record(breaker.Admit(t0), false, t0);
  breaker.Record(breaker.Admit(t0), false, t0);
  REQUIRE(breaker.Admit(t0 + 1500ms) == Admission::kProbe);
  breaker.Record(Admission::kProbe, false, t0 + 2000ms);
  CHECK(breaker.state() == BreakerState::kOpen);
  CHECK(breaker.Admit(t0 + 2999ms) == Admission::kRefused);  // timed from the probe's failure
  CHECK(breaker.Admit(t0 + 3000ms) == Admission::kProbe);
}

TEST_CASE("breaker: a late result of a transfer admitted before it opened changes nothing") {
  CircuitBreaker breaker(1, 1000ms);
  const TimePoint t0{};
  const Admission early = breaker.Admit(t0);
  breaker.Record(breaker.Admit(t0), false, t0);
  REQUIRE(breaker.state() == BreakerState::kOpen);
  breaker.Record(early, true, t0 + 10ms);
  CHECK(breaker.state() == BreakerState::kOpen);
  CHECK(breaker.Admit(t0 + 10ms) == Admission::kRefused);
}

TEST_CASE("breaker: threshold 0 disables it") {
  CircuitBreaker breaker(0, 1000ms);
  const TimePoint t0{};
  for (int i = 0; i < 100; ++i) breaker.Record(breaker.Admit(t0), false, t0);
  CHECK(breaker.state() == BreakerState::kClosed);
  CHECK(breaker.Admit(t0) == Admission::kAdmitted);
}

TEST_CASE("breaker: concurrent callers get one probe between them") {
  CircuitBreaker breaker(5, 10ms);
  const TimePoint t0{};
  for (int i = 0; i < 5; ++i) breaker.Record(breaker.Admit(t0), false, t0);
  REQUIRE(breaker.state() == BreakerState::kOpen);
  for (int round = 0; round < 20; ++round) {
    const TimePoint when = t0 + std::chrono::milliseconds(100 * (round + 1));
    std::atomic<int> probes{0}, admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 200; ++i) {
          Admission a = breaker.Admit(when);
          if (a == Admission::kProbe) ++probes;
          if (a == Admission::kAdmitted) ++admitted;
        }
      });
    }
    for (auto& t : threads) t.join();
    CHECK(probes.load() == 1);
    CHECK(admitted.load() == 0);
    breaker.Record(Admission::kProbe, false, when);  // reopen for the next round
  }
  // Hammer Record and Admit together: the state stays one of the three, and a closing probe closes it.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const TimePoint when = t0 + std::chrono::seconds(10 + i);
        Admission a = breaker.Admit(when);
        breaker.Record(a, (i + t) % 3 == 0, when);
      }
    });
  }
  for (auto& t : threads) t.join();
  const BreakerState s = breaker.state();
  CHECK((s == BreakerState::kClosed || s == BreakerState::kOpen || s == BreakerState::kHalfOpen));
}

TEST_CASE("breaker registry: one breaker per location for the whole process") {
  auto a = rocky::sync::SharedCircuitBreaker("s3://registry-test/a", 3, 1000ms);
  auto b = rocky::sync::SharedCircuitBreaker("s3://registry-test/a", 9, 5000ms);
  auto c = rocky::sync::SharedCircuitBreaker("s3://registry-test/c", 3, 1000ms);
  CHECK(a.get() == b.get());
  CHECK(b->threshold() == 3);  // the first registration's settings
  CHECK(a.get() != c.get());
}

// ---------------------------------------------------------------------------------------------------------------
// Events

TEST_CASE("event JSON: fields in order, every outcome name, escaping") {
  TransferEvent e;
  e.event = "state.upload";
  e.backend = "s3";
  e.key = "rocky/state/state.redb";
  e.bytes = 18342;
  e.duration_ms = 412;
  e.retries = 1;
  CHECK(rocky::sync::TransferEventJson(e) ==
        R"({"event":"state.upload","backend":"s3","key":"rocky/state/state.redb","bytes":18342,)"
        R"("duration_ms":412,"retries":1,"outcome":"ok"})");

  e.event = "state.download";
  e.outcome = TransferOutcome::kErrorThenFresh;
  e.state_lost = true;
  e.key = "we\"ird\\key";
  e.error = std::string("line1\nline2\ttab \x01 ctl \x7f del é");
  e.warnings = {"Valkey \"cache\" unreachable", "second"};
  CHECK(rocky::sync::TransferEventJson(e) ==
        R"({"event":"state.download","backend":"s3","key":"we\"ird\\key","bytes":18342,"duration_ms":412,)"
        R"("retries":1,"outcome":"error_then_fresh","state_lost":true,)"
        R"("error":"line1\nline2\ttab \u0001 ctl )"
        "\x7f"
        R"( del é",)"
        R"("warnings":["Valkey \"cache\" unreachable","second"]})");

  // An error quoting a server's reply or a file name may hold any bytes; the event line must still be valid
  // JSON, so invalid UTF-8 (a stray byte, a truncated sequence, an overlong form) becomes U+FFFD.
  e.state_lost = false;
  e.warnings.clear();
  e.error = std::string("reply \xff\xfe, cut \xe2\x82, overlong \xc0\xaf end");
  CHECK(rocky::sync::TransferEventJson(e) ==
        R"({"event":"state.download","backend":"s3","key":"we\"ird\\key","bytes":18342,"duration_ms":412,)"
        R"("retries":1,"outcome":"error_then_fresh",)"
        R"("error":"reply \ufffd\ufffd, cut \ufffd\ufffd, overlong \ufffd\ufffd end"})");

  const std::map<TransferOutcome, std::string> names = {
      {TransferOutcome::kOk, "ok"},
      {TransferOutcome::kAbsent, "absent"},
      {TransferOutcome::kTimeout, "timeout"},
      {TransferOutcome::kErrorThenFresh, "error_then_fresh"},
      {TransferOutcome::kTransientExhausted, "transient_exhausted"},
      {TransferOutcome::kBudgetExhausted, "budget_exhausted"},
      {TransferOutcome::kCircuitOpen, "circuit_open"},
      {TransferOutcome::kSkippedAfterFailure, "skipped_after_failure"},
      {TransferOutcome::kConflict, "conflict"},
      {TransferOutcome::kError, "error"},
  };
  for (const auto& [outcome, name] : names) CHECK(rocky::sync::OutcomeName(outcome) == name);
  CHECK(rocky::sync::FailureName(TransferOutcome::kTimeout) == "RetryBudgetExhausted");
  CHECK(rocky::sync::FailureName(TransferOutcome::kBudgetExhausted) == "RetryBudgetExhausted");
  CHECK(rocky::sync::FailureName(TransferOutcome::kCircuitOpen) == "CircuitOpen");
  CHECK(rocky::sync::FailureName(TransferOutcome::kOk).empty());
}

// ---------------------------------------------------------------------------------------------------------------
// StateSync's policy over a scripted test double

// A RemoteStateBackend test double: each call takes the next scripted Status (OK when the script is empty)
// and records what it was asked. A successful Download writes `content` into the destination by rename, as
// real backends do; Upload records the generation it was conditional on. Not S3: see faults_test.cc for that.
class ScriptedBackend final : public rocky::sync::RemoteStateBackend {
 public:
  struct Shared {
    std::deque<Status> script;
    bool remote_exists = true;
    std::string content = "remote state bytes";
    int downloads = 0;
    int uploads = 0;
    std::vector<std::optional<std::string>> upload_conditions;
    std::vector<std::string> upload_tokens;  // one per attempt
    std::vector<Deadline> deadlines;
    std::function<void()> on_call;  // runs at the start of every call (advances a fake clock, ...)
    int generation = 0;
  };

  ScriptedBackend(std::shared_ptr<Shared> shared, std::string location)
      : shared_(std::move(shared)), location_(std::move(location)) {}

  std::string_view Kind() const override { return "s3"; }
  std::string Key() const override { return "team/state.redb"; }
  std::string Location() const override { return location_; }

  Result<std::optional<TransferReport>> Download(const std::string& state_path, Deadline deadline) override {
    ++shared_->downloads;
    shared_->deadlines.push_back(deadline);
    Status s = Next();
    if (!s.ok()) return s;
    if (!shared_->remote_exists) return std::optional<TransferReport>();
    const std::string temp = state_path + ".download";
    rocky_sync_test::WriteBytes(temp, shared_->content);
    std::filesystem::rename(temp, state_path);
    TransferReport report;
    report.generation = "g" + std::to_string(shared_->generation);
    report.bytes = shared_->content.size();
    return std::optional<TransferReport>(report);
  }

  using rocky::sync::RemoteStateBackend::Upload;
  Result<TransferReport> Upload(const std::string&, const rocky::sync::UploadRequest& request,
                                Deadline deadline) override {
    ++shared_->uploads;
    shared_->upload_conditions.push_back(request.expected_generation);
    shared_->upload_tokens.push_back(request.token);
    shared_->deadlines.push_back(deadline);
    Status s = Next();
    if (!s.ok()) return s;
    TransferReport report;
    report.generation = "g" + std::to_string(++shared_->generation);
    report.bytes = 100;
    report.warnings = warnings;
    return report;
  }

  Result<std::optional<std::string>> CurrentGeneration(Deadline) override {
    return std::optional<std::string>("g" + std::to_string(shared_->generation));
  }
  std::vector<rocky::sync::ProbeLeg> Probe(Deadline) override { return {}; }

  std::vector<std::string> warnings;

 private:
  Status Next() {
    if (shared_->on_call) shared_->on_call();
    if (shared_->script.empty()) return Status::OK();
    Status s = shared_->script.front();
    shared_->script.pop_front();
    return s;
  }

  std::shared_ptr<Shared> shared_;
  std::string location_;
};

// A fake clock: sleeping moves it; nothing waits for real.
struct FakeTime {
  TimePoint now = TimePoint{} + 1000h;
  std::vector<std::chrono::milliseconds> sleeps;

  SyncClock Clock() {
    SyncClock c;
    c.now = [this] { return now; };
    c.sleep = [this](std::chrono::milliseconds d) {
      sleeps.push_back(d);
      now += d;
    };
    c.random_unit = [] { return 0.5; };
    return c;
  }
};

// A unique location per test, so each gets its own process-wide breaker.
std::string UniqueLocation() {
  static std::atomic<int> n{0};
  return "s3://scripted/" + std::to_string(++n) + "/state.redb";
}

rocky::config::StateConfig Policy() {
  rocky::config::StateConfig c;
  c.backend = rocky::config::StateBackend::kS3;
  c.transfer_timeout_seconds = 60;
  c.retry.max_retries = 3;
  c.retry.initial_backoff_ms = 100;
  c.retry.backoff_multiplier = 2.0;
  c.retry.max_backoff_ms = 1000;
  c.retry.jitter = false;
  c.retry.circuit_breaker_threshold = 0;
  c.retry.max_retries_per_run = 10;
  return c;
}

struct Harness {
  explicit Harness(rocky::config::StateConfig config = Policy(), std::string location = UniqueLocation())
      : shared(std::make_shared<ScriptedBackend::Shared>()) {
    auto backend = std::make_unique<ScriptedBackend>(shared, location);
    scripted = backend.get();
    sync = std::make_unique<StateSync>(
        std::move(backend), config, [this](const TransferEvent& e) { events.push_back(e); }, time.Clock(),
        [this](std::string_view w) { warnings.emplace_back(w); });
  }
  const TransferEvent& Last() const {
    REQUIRE(!events.empty());
    return events.back();
  }

  std::shared_ptr<ScriptedBackend::Shared> shared;
  ScriptedBackend* scripted = nullptr;
  FakeTime time;
  std::vector<TransferEvent> events;
  std::vector<std::string> warnings;
  std::unique_ptr<StateSync> sync;
  TempDir dir;
};

Status Transient() { return Status::IOError("PUT to s3.test: HTTP 503 SlowDown"); }

TEST_CASE("policy: a transient failure is retried with backoff and the event counts the retries") {
  Harness h;
  h.shared->script = {Transient(), Status::TimedOut("stalled")};
  auto pulled = h.sync->Pull(h.dir.File("state.redb"));
  REQUIRE(pulled.ok());
  CHECK(pulled->outcome == TransferOutcome::kOk);
  CHECK_FALSE(pulled->state_lost);
  CHECK(rocky_sync_test::ReadBytes(h.dir.File("state.redb")) == "remote state bytes");
  CHECK(h.shared->downloads == 3);
  CHECK(h.time.sleeps == std::vector<std::chrono::milliseconds>{100ms, 200ms});
  CHECK(h.Last().event == "state.download");
  CHECK(h.Last().retries == 2);
  CHECK(h.Last().outcome == TransferOutcome::kOk);
  CHECK(h.Last().duration_ms == 300);
  CHECK(h.Last().bytes == 18);
  // Every attempt of one transfer got the same deadline: one budget, retries included.
  REQUIRE(h.shared->deadlines.size() == 3);
  CHECK(h.shared->deadlines[0] == h.shared->deadlines[2]);
}

TEST_CASE("policy: absent remote state leaves the local file and the upload is conditional on absence") {
  Harness h;
  h.shared->remote_exists = false;
  auto pulled = h.sync->Pull(h.dir.File("state.redb"));
  REQUIRE(pulled.ok());
  CHECK(pulled->outcome == TransferOutcome::kAbsent);
  CHECK(h.Last().outcome == TransferOutcome::kAbsent);
  CHECK(std::filesystem::exists(h.dir.File("state.redb")));  // created empty, under the lock
  REQUIRE(h.sync->Push(h.dir.File("state.redb")).ok());
  REQUIRE(h.sync->Push(h.dir.File("state.redb")).ok());
  REQUIRE(h.shared->upload_conditions.size() == 2);
  CHECK_FALSE(h.shared->upload_conditions[0].has_value());
  CHECK(h.shared->upload_conditions[1] == std::optional<std::string>("g1"));  // our own upload
  CHECK(h.Last().outcome == TransferOutcome::kOk);
}

TEST_CASE("policy: a permanent error is never retried; a download failure skips later uploads") {
  Harness h;
  h.shared->script = {Status::PermissionDenied("s3: AccessDenied for key team/state.redb")};
  auto pulled = h.sync->Pull(h.dir.File("state.redb"));
  REQUIRE(pulled.ok());
  CHECK(pulled->outcome == TransferOutcome::kErrorThenFresh);
  CHECK(pulled->state_lost);
  CHECK(pulled->message.find("AccessDenied") != std::string::npos);
  CHECK(h.shared->downloads == 1);
  CHECK(h.time.sleeps.empty());
  CHECK(h.Last().outcome == TransferOutcome::kErrorThenFresh);
  CHECK(h.Last().state_lost);
  REQUIRE(h.warnings.size() == 1);

  CHECK(h.sync->Push(h.dir.File("state.redb")).ok());  // skip policy
  CHECK(h.shared->uploads == 0);
  CHECK(h.Last().event == "state.upload");
  CHECK(h.Last().outcome == TransferOutcome::kSkippedAfterFailure);
  CHECK(h.warnings.size() == 2);
  // Periodic pushes stay quiet: the final Push reports the skip once.
  h.time.now += 1h;
  CHECK(h.sync->PushIfDue(h.dir.File("state.redb"), 1s).ok());
  CHECK(h.events.size() == 2);
}

TEST_CASE("policy: skipped_after_failure fails the command under on_upload_failure = fail") {
  auto config = Policy();
  config.on_upload_failure = rocky::config::UploadFailurePolicy::kFail;
  Harness h(config);
  h.shared->script = {Status::Corruption("downloaded object is truncated")};
  REQUIRE(h.sync->Pull(h.dir.File("state.redb")).ok());
  Status pushed = h.sync->Push(h.dir.File("state.redb"));
  CHECK_FALSE(pushed.ok());
  CHECK(pushed.message().rfind("SkippedAfterFailure: ", 0) == 0);
  CHECK(h.shared->uploads == 0);
}

TEST_CASE("policy: max_retries per transfer ends in transient_exhausted") {
  auto config = Policy();
  config.retry.max_retries = 2;
  Harness h(config);
  h.shared->script = {Transient(), Transient(), Transient(), Transient()};
  Status pushed = h.sync->Push(h.dir.File("state.redb"));
  CHECK(pushed.ok());  // skip
  CHECK(h.shared->uploads == 3);
  CHECK(h.Last().outcome == TransferOutcome::kTransientExhausted);
  CHECK(h.Last().retries == 2);
  CHECK(h.Last().error.rfind("RetryBudgetExhausted: ", 0) == 0);
  CHECK(h.Last().error.find("SlowDown") != std::string::npos);
  REQUIRE(h.warnings.size() == 1);
  CHECK(h.warnings[0].find("stale") != std::string::npos);
}

TEST_CASE("policy: max_retries_per_run is shared by every transfer of the run") {
  auto config = Policy();
  config.retry.max_retries = 3;
  config.retry.max_retries_per_run = 4;
  config.on_upload_failure = rocky::config::UploadFailurePolicy::kFail;
  Harness h(config);
  // Pull: two failures then success (2 retries of the run's 4).
  h.shared->script = {Transient(), Transient()};
  REQUIRE(h.sync->Pull(h.dir.File("state.redb")).ok());
  CHECK(h.Last().retries == 2);
  // First push: one failure then success (3 of 4).
  h.shared->script = {Transient()};
  REQUIRE(h.sync->Push(h.dir.File("state.redb")).ok());
  // Second push: fails twice: one retry left in the run, then the run's budget is spent although the
  // transfer's own max_retries (3) is not.
  h.shared->script = {Transient(), Transient(), Transient()};
  Status pushed = h.sync->Push(h.dir.File("state.redb"));
  CHECK_FALSE(pushed.ok());
  CHECK(pushed.message().rfind("RetryBudgetExhausted: ", 0) == 0);
  CHECK(pushed.message().find("max_retries_per_run 4") != std::string::npos);
  CHECK(h.Last().outcome == TransferOutcome::kBudgetExhausted);
  CHECK(h.Last().retries == 1);
  // Nothing is left for a later transfer of this run either: one attempt, no retry.
  h.shared->script = {Transient()};
  const int before = h.shared->uploads;
  CHECK_FALSE(h.sync->Push(h.dir.File("state.redb")).ok());
  CHECK(h.shared->uploads == before + 1);
  CHECK(h.Last().outcome == TransferOutcome::kBudgetExhausted);
  // A new StateSync (a new run) has its own budget.
  Harness next(config);
  next.shared->script = {Transient(), Transient()};
  CHECK(next.sync->Push(next.dir.File("state.redb")).ok());
  CHECK(next.Last().retries == 2);
}

TEST_CASE("policy: the wall-clock budget ends the transfer as timeout, without sleeping past it") {
  auto config = Policy();
  config.transfer_timeout_seconds = 1;
  config.retry.max_retries = 10;
  config.retry.initial_backoff_ms = 300;
  config.retry.max_backoff_ms = 300;
  config.retry.backoff_multiplier = 1.0;
  SUBCASE("an attempt that takes the whole budget") {
    Harness h(config);
    h.shared->on_call = [&] { h.time.now += 1200ms; };
    h.shared->script = {Status::TimedOut("GET to s3.test: the transfer's time budget ran out")};
    CHECK(h.sync->Push(h.dir.File("s")).ok());
    CHECK(h.Last().outcome == TransferOutcome::kTimeout);
    CHECK(h.shared->uploads == 1);
    CHECK(h.time.sleeps.empty());
  }
  SUBCASE("a backoff that would overrun the deadline is not slept") {
    Harness h(config);
    h.shared->on_call = [&] { h.time.now += 200ms; };
    h.shared->script = {Transient(), Transient(), Transient(), Transient()};
    CHECK(h.sync->Push(h.dir.File("s")).ok());
    // Attempt 1 ends at 200 ms, the 300 ms backoff at 500, attempt 2 at 700; another 300 ms wait would reach
    // the 1000 ms deadline and leave nothing for an attempt: the transfer ends there, unslept.
    CHECK(h.shared->uploads == 2);
    CHECK(h.time.sleeps == std::vector<std::chrono::milliseconds>{300ms});
    CHECK(h.Last().outcome == TransferOutcome::kTimeout);
    CHECK(h.Last().duration_ms <= 1000);
    CHECK(h.Last().error.find("would overrun") != std::string::npos);
  }
  SUBCASE("SyncClock's millisecond budget replaces the config's seconds") {
    auto sub = config;
    sub.transfer_timeout_seconds = 300;
    auto shared = std::make_shared<ScriptedBackend::Shared>();
    FakeTime time;
    SyncClock clock = time.Clock();
    clock.transfer_timeout = 250ms;
    std::vector<TransferEvent> events;
    StateSync sync(
        std::make_unique<ScriptedBackend>(shared, UniqueLocation()), sub,
        [&](const TransferEvent& e) { events.push_back(e); }, clock);
    TempDir dir;
    REQUIRE(sync.Pull(dir.File("s")).ok());
    REQUIRE(shared->deadlines.size() == 1);
    CHECK(shared->deadlines[0] - time.now == 250ms);
  }
}

TEST_CASE("policy: conflict is never retried and is an error under skip too") {
  Harness h;
  h.shared->script = {Status::Busy("s3: PreconditionFailed: the state changed since this run downloaded it")};
  Status pushed = h.sync->Push(h.dir.File("s"));
  CHECK(pushed.IsBusy());
  CHECK(pushed.message().rfind("Conflict: ", 0) == 0);
  CHECK(h.shared->uploads == 1);
  CHECK(h.Last().outcome == TransferOutcome::kConflict);
}

TEST_CASE("policy: a permanent upload error is outcome error and the backend's message, fail policy") {
  auto config = Policy();
  config.on_upload_failure = rocky::config::UploadFailurePolicy::kFail;
  Harness h(config);
  h.shared->script = {Status::PermissionDenied("s3: SignatureDoesNotMatch")};
  Status pushed = h.sync->Push(h.dir.File("s"));
  CHECK(pushed.code() == Status::Code::kPermissionDenied);
  CHECK(pushed.message().find("SignatureDoesNotMatch") != std::string::npos);
  CHECK(h.shared->uploads == 1);
  CHECK(h.Last().outcome == TransferOutcome::kError);
  CHECK(h.warnings.empty());
}

TEST_CASE("policy: the breaker opens after threshold failed transfers, is shared, and recovers") {
  auto config = Policy();
  config.retry.max_retries = 1;
  config.retry.max_retries_per_run = 100;
  config.retry.circuit_breaker_threshold = 2;
  config.retry.circuit_breaker_recovery_timeout_seconds = 30;
  const std::string location = UniqueLocation();
  Harness h(config, location);
  for (int i = 0; i < 2; ++i) {
    h.shared->script = {Transient(), Transient()};
    CHECK(h.sync->Push(h.dir.File("s")).ok());
    CHECK(h.Last().outcome == TransferOutcome::kTransientExhausted);
  }
  // Open: not attempted, in this StateSync and in another one on the same backend (a later command of the
  // same process).
  const int uploads = h.shared->uploads;
  CHECK(h.sync->Push(h.dir.File("s")).ok());
  CHECK(h.Last().outcome == TransferOutcome::kCircuitOpen);
  CHECK(h.Last().error.rfind("CircuitOpen: ", 0) == 0);
  CHECK(h.shared->uploads == uploads);
  auto strict = config;
  strict.on_upload_failure = rocky::config::UploadFailurePolicy::kFail;
  Harness other(strict, location);
  other.time.now = h.time.now;
  Status refused = other.sync->Push(other.dir.File("s"));
  CHECK(refused.message().rfind("CircuitOpen: ", 0) == 0);
  CHECK(other.shared->uploads == 0);
  // After the recovery timeout one probe goes through; its success closes the breaker.
  h.time.now += 31s;
  CHECK(h.sync->Push(h.dir.File("s")).ok());
  CHECK(h.Last().outcome == TransferOutcome::kOk);
  CHECK(h.shared->uploads == uploads + 1);
  CHECK(h.sync->Push(h.dir.File("s")).ok());
  CHECK(h.Last().outcome == TransferOutcome::kOk);
}

TEST_CASE("policy: permanent errors do not open the breaker") {
  auto config = Policy();
  config.retry.circuit_breaker_threshold = 1;
  Harness h(config);
  for (int i = 0; i < 3; ++i) {
    h.shared->script = {Status::PermissionDenied("denied")};
    CHECK(h.sync->Push(h.dir.File("s")).ok());
    CHECK(h.Last().outcome == TransferOutcome::kError);
  }
  CHECK(h.shared->uploads == 3);
}

TEST_CASE("policy: a download the breaker refuses is circuit_open and the state is lost") {
  auto config = Policy();
  config.retry.max_retries = 0;
  config.retry.circuit_breaker_threshold = 1;
  Harness h(config);
  h.shared->script = {Transient()};
  REQUIRE(h.sync->Push(h.dir.File("s")).ok());
  auto pulled = h.sync->Pull(h.dir.File("state.redb"));
  REQUIRE(pulled.ok());
  CHECK(pulled->outcome == TransferOutcome::kCircuitOpen);
  CHECK(pulled->state_lost);
  CHECK(h.Last().state_lost);
  CHECK(h.shared->downloads == 0);
}

TEST_CASE("policy: backend warnings reach the event and the warning sink") {
  Harness h;
  h.scripted->warnings = {"Valkey unreachable, wrote S3 only"};
  REQUIRE(h.sync->Push(h.dir.File("s")).ok());
  CHECK(h.Last().warnings == h.scripted->warnings);
  CHECK(h.warnings == h.scripted->warnings);
}

TEST_CASE("policy: PushIfDue uploads only once the interval passed since the last upload attempt") {
  Harness h;
  REQUIRE(h.sync->Pull(h.dir.File("state.redb")).ok());
  CHECK(h.sync->PushIfDue(h.dir.File("state.redb"), 60s).ok());
  CHECK(h.shared->uploads == 0);
  h.time.now += 61s;
  CHECK(h.sync->PushIfDue(h.dir.File("state.redb"), 60s).ok());
  CHECK(h.shared->uploads == 1);
  h.time.now += 30s;
  CHECK(h.sync->PushIfDue(h.dir.File("state.redb"), 60s).ok());
  CHECK(h.shared->uploads == 1);
}

TEST_CASE("policy: Fetch returns failures and does not change what Push is conditional on") {
  Harness h;
  REQUIRE(h.sync->Pull(h.dir.File("state.redb")).ok());  // generation g0
  h.shared->generation = 7;
  auto fetched = h.sync->Fetch(h.dir.File("copy"));
  REQUIRE(fetched.ok());
  REQUIRE(fetched->has_value());
  CHECK((*fetched)->generation == "g7");
  CHECK(rocky_sync_test::ReadBytes(h.dir.File("copy")) == "remote state bytes");
  REQUIRE(h.sync->Push(h.dir.File("state.redb")).ok());
  CHECK(h.shared->upload_conditions.back() == std::optional<std::string>("g0"));

  h.shared->script = {Status::PermissionDenied("denied")};
  auto failed = h.sync->Fetch(h.dir.File("copy2"));
  CHECK(failed.status().code() == Status::Code::kPermissionDenied);
  CHECK(h.Last().outcome == TransferOutcome::kError);
  CHECK_FALSE(h.Last().state_lost);
}

TEST_CASE("Pull holds the writer lock: a state in use is the caller's error, not a download failure") {
  Harness h;
  const std::string path = h.dir.File("state.redb");
  auto db = rocky::engine::Database::Open(path, rocky::engine::Options{});
  REQUIRE(db.ok());
  auto pulled = h.sync->Pull(path);
  CHECK_FALSE(pulled.ok());
  CHECK(pulled.status().IsBusy());
  CHECK(h.shared->downloads == 0);
  CHECK(h.events.empty());
  REQUIRE((*db)->Close().ok());
  db = Result<std::unique_ptr<rocky::engine::Database>>(Status::NotFound("closed"));
  auto again = h.sync->Pull(path);
  REQUIRE(again.ok());
  CHECK(again->outcome == TransferOutcome::kOk);
}

TEST_CASE("Pull refuses, without downloading, while another process has the state open for writing") {
  Harness h;
  const std::string path = h.dir.File("state.redb");
  int ready[2], release[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(release) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child: another rocky process with the state open, until the parent closes its end of `release`
    // (the child closes its own copy, or it would wait for itself).
    ::close(release[1]);
    ::close(ready[0]);
    auto db = rocky::engine::Database::Open(path, rocky::engine::Options{});
    char c = db.ok() ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    (void)!::read(release[0], &c, 1);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  REQUIRE(c == 'y');
  auto pulled = h.sync->Pull(path);
  ::close(release[1]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(ready[0]);
  REQUIRE_FALSE(pulled.ok());
  CHECK(pulled.status().IsBusy());
  CHECK(pulled.status().message().find("locked by process " + std::to_string(pid)) != std::string::npos);
  CHECK(h.shared->downloads == 0);
  CHECK(h.events.empty());
  // Once it is gone, the download goes through.
  auto again = h.sync->Pull(path);
  REQUIRE(again.ok());
  CHECK(again->outcome == TransferOutcome::kOk);
}

}  // namespace
