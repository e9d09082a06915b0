// The lease beside the remote state (sync/state_lease.h) against the real S3 fixture (s3rver behind the SigV4
// proxy, which implements conditional PUT and DELETE as AWS documents them) and a real redis-server:
//   - processes racing for a fresh lease, and for an expired one, never both win (sampled with sweep.h: 50
//   races
//     per backend by default, 400 with ROCKY_FULL_SWEEPS=1);
//   - a SIGKILLed holder's lease refuses others until it expires by the server's clock, then is taken over;
//   - a renewal that cannot reach the server loses the lease once (on_lost), and a holder whose lease was
//   taken
//     over loses it on its next renewal and never releases the new holder's;
//   - a lost reply is recognised as the holder's own write; the lease costs one request to take, one per
//     renewal and one to release.
// Every wait is for an event, with a deadline that fails clearly; lease durations are a second or two.
#include "rocky/sync/state_lease.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fault_proxy.h"
#include "redis_fixture.h"
#include "rocky/sync/remote_state_factory.h"
#include "rocky/sync/state_sync.h"
#include "s3_fixture.h"
#include "sweep.h"

namespace {

using namespace std::chrono_literals;
using rocky::base::Result;
using rocky::base::Status;
using rocky::config::StateBackend;
using rocky::config::StateConfig;
using rocky::sync::LeaseEvent;
using rocky::sync::LeaseInfo;
using rocky::sync::LeaseOptions;
using rocky::sync::LeaseOutcome;
using rocky::sync::LeaseRecord;
using rocky::sync::LeaseStore;
using rocky::sync::StateLease;
using rocky_sync_test::RedisServer;
using rocky_sync_test::S3Fixture;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// One server of each for the whole binary (starting node costs a second or more); every test works under its
// own prefix. Stopped at exit.
S3Fixture& S3() {
  static S3Fixture fixture;
  return fixture;
}

RedisServer& Redis() {
  static RedisServer server;
  return server;
}

int PortOf(const std::string& endpoint) { return std::stoi(endpoint.substr(endpoint.rfind(':') + 1)); }

std::string UniquePrefix(const std::string& tag) {
  static std::atomic<int> n{0};
  return "lease/" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + "/";
}

// Credentials and region as a pod has them; nothing else (IMDS off, so nothing waits on 169.254.169.254).
rocky::sync::EnvLookup PodEnvironment() {
  return [](std::string_view name) -> std::optional<std::string> {
    if (name == "AWS_ACCESS_KEY_ID") return std::string(rocky_sync_test::kAccessKey);
    if (name == "AWS_SECRET_ACCESS_KEY") return std::string(rocky_sync_test::kSecret);
    if (name == "AWS_REGION") return std::string(rocky_sync_test::kRegion);
    if (name == "AWS_EC2_METADATA_DISABLED") return std::string("true");
    return std::nullopt;
  };
}

StateConfig S3State(const std::string& prefix, const std::string& endpoint) {
  StateConfig state;
  state.backend = StateBackend::kS3;
  state.s3_bucket = rocky_sync_test::kBucket;
  state.s3_prefix = prefix;
  state.s3_endpoint = endpoint;
  return state;
}

StateConfig ValkeyState(const std::string& prefix, const std::string& url) {
  StateConfig state;
  state.backend = StateBackend::kValkey;
  state.valkey_url = url;
  state.valkey_prefix = prefix;
  return state;
}

std::unique_ptr<LeaseStore> OpenStore(const StateConfig& state) {
  auto backend = rocky::sync::OpenRemoteStateBackend(state, PodEnvironment());
  REQUIRE_MESSAGE(backend.ok(), backend.status().ToString());
  auto store = (*backend)->OpenLease();
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  return std::move(*store);
}

std::string KindOf(const StateConfig& state) { return state.backend == StateBackend::kS3 ? "s3" : "valkey"; }

// Every event a lease emitted, and waits for them.
class Events {
 public:
  rocky::sync::LeaseEventSink Sink() {
    return [this](const LeaseEvent& event) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(event);
      changed_.notify_all();
    };
  }
  // Waits until `count` events with `outcome` were emitted; fails the test after `limit`.
  void Await(LeaseOutcome outcome, size_t count = 1, milliseconds limit = 30s) {
    std::unique_lock<std::mutex> lock(mu_);
    const bool seen = changed_.wait_for(lock, limit, [&] { return CountLocked(outcome) >= count; });
    REQUIRE_MESSAGE(seen, "no " << rocky::sync::LeaseOutcomeName(outcome) << " event (x" << count
                                << ") within " << limit.count() << " ms");
  }
  size_t Count(LeaseOutcome outcome) {
    std::lock_guard<std::mutex> lock(mu_);
    return CountLocked(outcome);
  }
  LeaseEvent Last(LeaseOutcome outcome) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
      if (it->outcome == outcome) return *it;
    }
    FAIL("no " << rocky::sync::LeaseOutcomeName(outcome) << " event");
    return {};
  }

 private:
  size_t CountLocked(LeaseOutcome outcome) const {
    size_t n = 0;
    for (const LeaseEvent& e : events_) n += e.outcome == outcome ? 1 : 0;
    return n;
  }
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<LeaseEvent> events_;
};

LeaseOptions Options(const std::string& host, milliseconds duration, milliseconds wait = 0ms) {
  LeaseOptions options;
  options.command = "test";
  options.duration = duration;
  options.wait = wait;
  options.take_timeout = 20s;
  options.retry.max_retries = 3;
  options.retry.initial_backoff_ms = 10;
  options.retry.max_backoff_ms = 50;
  options.retry.jitter = false;
  options.host = host;
  return options;
}

StateLease::Taking Take(const StateConfig& state, LeaseOptions options, Events* events = nullptr) {
  auto taken = StateLease::Take(OpenStore(state), KindOf(state), std::move(options),
                                events != nullptr ? events->Sink() : nullptr);
  REQUIRE_MESSAGE(taken.ok(), taken.status().ToString());
  return std::move(*taken);
}

LeaseInfo Inspect(const StateConfig& state) {
  auto info = OpenStore(state)->Inspect(Clock::now() + 20s);
  REQUIRE_MESSAGE(info.ok(), info.status().ToString());
  return *info;
}

// Waits until the lease at `state` is judged `wanted` by the server (a lease left to expire).
void AwaitState(const StateConfig& state, LeaseInfo::State wanted, bool last_expired,
                milliseconds limit = 30s) {
  const auto give_up = Clock::now() + limit;
  for (;;) {
    const LeaseInfo info = Inspect(state);
    if (info.state == wanted && (!last_expired || info.last_expired)) return;
    REQUIRE_MESSAGE(Clock::now() < give_up, "the lease did not become " << rocky::sync::LeaseStateName(wanted)
                                                                        << " within " << limit.count()
                                                                        << " ms");
    std::this_thread::sleep_for(50ms);
  }
}

// --- Racing processes ------------------------------------------------------------------------------------

// Reads one '\n'-terminated line from `fd` within `limit`; "" on EOF or timeout.
std::string ReadLine(int fd, milliseconds limit) {
  std::string line;
  const auto give_up = Clock::now() + limit;
  while (line.empty() || line.back() != '\n') {
    const auto left = std::chrono::duration_cast<milliseconds>(give_up - Clock::now());
    if (left.count() <= 0) return "";
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char c = 0;
    if (::read(fd, &c, 1) != 1) return "";
    line += c;
  }
  line.pop_back();
  return line;
}

// A child process that opens the lease at `state`, waits for `start_read` to close (so every racer fires at
// once), tries to take the lease (no wait, 30 s duration), reports "acquired", "taken_over", "busy" or
// "error: ..." as one line on `report_write`, holds what it took until `release_read` closes, releases it and
// exits. The other ends are closed in the child (a fork copies every descriptor), or the parent's closes
// would never be seen.
pid_t StartRacer(const StateConfig& state, int index, int start_read, int start_write, int report_write,
                 int release_read, int release_write) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid != 0) return pid;
  ::close(start_write);
  ::close(release_write);
  std::string report;
  {
    auto backend = rocky::sync::OpenRemoteStateBackend(state, PodEnvironment());
    std::unique_ptr<LeaseStore> store;
    if (backend.ok()) {
      auto opened = (*backend)->OpenLease();
      if (opened.ok()) store = std::move(*opened);
    }
    char c = 0;
    (void)!::read(start_read, &c, 1);  // EOF: go
    std::unique_ptr<StateLease> held;
    if (store == nullptr) {
      report = "error: cannot open the lease";
    } else {
      LeaseOptions options = Options("racer-" + std::to_string(index), 30s);
      auto taken = StateLease::Take(std::move(store), KindOf(state), options, nullptr);
      if (!taken.ok()) {
        report = "error: " + taken.status().ToString();
      } else {
        report = std::string(rocky::sync::LeaseOutcomeName(taken->outcome));
        held = std::move(taken->lease);
      }
    }
    report += "\n";
    (void)!::write(report_write, report.data(), report.size());
    (void)!::read(release_read, &c, 1);  // EOF: give it back
    if (held) (void)held->Release();
  }
  ::_exit(0);
}

// Two racers for the lease at `state`; returns their reports. Both hold what they took until both reported,
// so two winners would be two holders at once.
std::vector<std::string> Race(const StateConfig& state) {
  int start[2], release[2], reports[2][2];
  REQUIRE(::pipe(start) == 0);
  REQUIRE(::pipe(release) == 0);
  REQUIRE(::pipe(reports[0]) == 0);
  REQUIRE(::pipe(reports[1]) == 0);
  pid_t pids[2];
  for (int i = 0; i < 2; ++i) {
    pids[i] = StartRacer(state, i, start[0], start[1], reports[i][1], release[0], release[1]);
  }
  ::close(start[0]);
  ::close(release[0]);
  ::close(reports[0][1]);
  ::close(reports[1][1]);
  ::close(start[1]);  // go
  std::vector<std::string> out;
  for (int i = 0; i < 2; ++i) out.push_back(ReadLine(reports[i][0], 60s));
  ::close(release[1]);  // release
  for (int i = 0; i < 2; ++i) {
    ::close(reports[i][0]);
    int status = 0;
    const auto give_up = Clock::now() + 60s;
    while (::waitpid(pids[i], &status, WNOHANG) == 0) {
      if (Clock::now() > give_up) {
        ::kill(pids[i], SIGKILL);
        ::waitpid(pids[i], &status, 0);
        FAIL("racer " << i << " did not exit within 60 s of its release");
      }
      std::this_thread::sleep_for(2ms);
    }
    CHECK_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "racer " << i << " ended badly");
  }
  return out;
}

// Runs `points` races (sampled), the first half on fresh leases and the second on expired ones (left by a
// holder that never released), and checks that every race had exactly one winner. (Halves, not parity: a
// sample takes one point in `stride`, all of one parity when the stride is even.)
void RaceMany(const std::string& name, uint64_t points,
              const std::function<StateConfig(const std::string&)>& at, milliseconds expired_duration) {
  const rocky::tests::Sweep sweep(name, points, /*ci_stride=*/8);
  auto is_stale = [points](uint64_t k) { return k >= points / 2; };
  // The expired leases first, all at once, so that one wait covers them all, and it runs while the fresh
  // races do: taken through the store with a short duration and never renewed nor released, as a holder
  // that died right after taking would leave them.
  std::map<uint64_t, StateConfig> expired;
  for (uint64_t k = 0; k < points; ++k) {
    if (!sweep.Includes(k) || !is_stale(k)) continue;
    const StateConfig state = at(UniquePrefix(name + "-expired"));
    LeaseRecord dead;
    dead.host = "dead-holder";
    dead.pid = 1;
    dead.command = "run";
    dead.started_at = "2026-01-01T00:00:00Z";
    dead.expires_at = "2026-01-01T00:00:01Z";
    dead.lease_ms = expired_duration.count();
    dead.token = "dead-" + std::to_string(k);
    auto taken = OpenStore(state)->TryTake(dead, Clock::now() + 20s);
    REQUIRE_MESSAGE(taken.ok(), taken.status().ToString());
    REQUIRE(taken->taken == LeaseStore::Taken::kAcquired);
    expired.emplace(k, state);
  }
  bool awaited = false;
  auto await_expired = [&] {
    for (const auto& [k, state] : expired) {
      AwaitState(state,
                 state.backend == StateBackend::kS3 ? LeaseInfo::State::kExpired : LeaseInfo::State::kFree,
                 state.backend != StateBackend::kS3);
    }
    awaited = true;
  };
  int fresh_races = 0, stale_races = 0;
  int contended = 0;
  for (uint64_t k = 0; k < points; ++k) {
    if (!sweep.Includes(k)) continue;
    const bool stale = is_stale(k);
    if (stale && !awaited) await_expired();
    (stale ? stale_races : fresh_races) += 1;
    const StateConfig state = stale ? expired.at(k) : at(UniquePrefix(name + "-fresh"));
    const std::vector<std::string> reports = Race(state);
    // Built first: INFO captures its expression by reference and prints it lazily.
    const std::string race = name + " race " + std::to_string(k) +
                             (stale ? " (expired lease): " : " (fresh lease): ") + reports[0] + " / " +
                             reports[1];
    INFO(race);
    int winners = 0, busy = 0;
    for (const std::string& r : reports) {
      REQUIRE_MESSAGE(r.rfind("error", 0) != 0, r);
      if (r == "acquired" || r == "taken_over") ++winners;
      if (r == "busy") ++busy;
      // An expired lease is taken over (naming its dead holder), never simply acquired.
      if (stale && r != "busy") CHECK(r == "taken_over");
      if (!stale && r != "busy") CHECK(r == "acquired");
    }
    CHECK(winners == 1);
    CHECK(busy == 1);
    contended += busy;
  }
  CHECK(fresh_races > 0);
  CHECK(stale_races > 0);
  MESSAGE(sweep.Describe() << ": " << fresh_races << " on fresh leases, " << stale_races
                           << " on expired ones; every race had exactly one holder (" << contended
                           << " refused)");
}

}  // namespace

TEST_CASE("the lease record: JSON round trip; anything else at the key is refused, naming why") {
  LeaseRecord r;
  r.host = "runner-7";
  r.pid = 4242;
  r.command = "state set";
  r.started_at = "2026-03-01T10:00:00Z";
  r.expires_at = "2026-03-01T10:01:00Z";
  r.lease_ms = 60000;
  r.token = "0123456789abcdef";
  r.renewal = 3;
  auto back = LeaseRecord::FromJson(r.ToJson());
  REQUIRE_MESSAGE(back.ok(), back.status().ToString());
  CHECK(back->host == r.host);
  CHECK(back->pid == r.pid);
  CHECK(back->command == r.command);
  CHECK(back->lease_ms == r.lease_ms);
  CHECK(back->token == r.token);
  CHECK(back->renewal == 3);
  CHECK(LeaseRecord::FromJson("not json").status().IsCorruption());
  CHECK(LeaseRecord::FromJson("{\"hello\":1}").status().IsCorruption());
  CHECK(LeaseRecord::FromJson("{\"rocky_lease\":9}").status().code() ==
        rocky::base::Status::Code::kNotSupported);
  // The event names the holder but never carries its token.
  LeaseEvent event;
  event.backend = "s3";
  event.key = "k";
  event.outcome = LeaseOutcome::kTakenOver;
  event.holder = r;
  event.other = r;
  event.expires_in_ms = 5;
  const std::string json = rocky::sync::LeaseEventJson(event);
  CHECK(json.find("\"event\":\"state.lease\"") != std::string::npos);
  CHECK(json.find("\"outcome\":\"taken_over\"") != std::string::npos);
  CHECK(json.find("\"pid\":4242") != std::string::npos);
  CHECK(json.find(r.token) == std::string::npos);
}

TEST_CASE("s3: busy names the holder and its expiry by the server's clock; a release frees it at once") {
  const StateConfig state = S3State(UniquePrefix("s3-busy"), S3().Endpoint());
  Events a_events, b_events;
  StateLease::Taking a = Take(state, Options("host-a", 5s), &a_events);
  REQUIRE(a.lease != nullptr);
  CHECK(a.outcome == LeaseOutcome::kAcquired);
  CHECK(a.lease->held());

  StateLease::Taking b = Take(state, Options("host-b", 5s), &b_events);
  CHECK(b.lease == nullptr);
  CHECK(b.outcome == LeaseOutcome::kBusy);
  REQUIRE(b.seen.holder.has_value());
  CHECK(b.seen.holder->host == "host-a");
  CHECK(b.seen.state == LeaseInfo::State::kHeld);
  // Last-Modified + 5 s + 1 s against Date, both whole seconds: between 4 and 6 s left.
  CHECK(b.seen.expires_in > 4s);
  CHECK(b.seen.expires_in <= 6s);
  CHECK_FALSE(b.seen.expires_at.empty());
  CHECK(b_events.Count(LeaseOutcome::kBusy) == 1);
  CHECK(b_events.Last(LeaseOutcome::kBusy).other->host == "host-a");

  CHECK(a.lease->Release().ok());
  a_events.Await(LeaseOutcome::kReleased);
  CHECK(Inspect(state).state == LeaseInfo::State::kFree);
  StateLease::Taking c = Take(state, Options("host-c", 5s));
  REQUIRE(c.lease != nullptr);
  CHECK(c.outcome == LeaseOutcome::kAcquired);  // released, not expired: nobody is "taken over"
  CHECK(c.lease->Release().ok());
}

TEST_CASE("s3: two processes race for the lease, fresh or expired, and never both hold it") {
  RaceMany(
      "s3 lease races", 400, [](const std::string& prefix) { return S3State(prefix, S3().Endpoint()); },
      1000ms);
}

TEST_CASE("valkey: two processes race for the lease, fresh or expired, and never both hold it") {
  RaceMany(
      "valkey lease races", 400, [](const std::string& prefix) { return ValkeyState(prefix, Redis().Url()); },
      300ms);
}

TEST_CASE(
    "a SIGKILLed holder's lease refuses others until it expires by the server's clock, then is taken over") {
  for (const bool s3 : {true, false}) {
    CAPTURE(s3);
    const StateConfig state = s3 ? S3State(UniquePrefix("kill"), S3().Endpoint())
                                 : ValkeyState(UniquePrefix("kill"), Redis().Url());
    int report[2];
    REQUIRE(::pipe(report) == 0);
    std::fflush(nullptr);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      // No REQUIRE in the child: it reports, and the parent judges.
      ::close(report[0]);
      std::string line = "failed\n";
      std::unique_ptr<StateLease> held;
      auto backend = rocky::sync::OpenRemoteStateBackend(state, PodEnvironment());
      if (backend.ok()) {
        auto store = (*backend)->OpenLease();
        if (store.ok()) {
          auto taken = StateLease::Take(std::move(*store), KindOf(state), Options("doomed", 2s), nullptr);
          if (taken.ok() && taken->lease) {
            held = std::move(taken->lease);
            line = "held\n";
          }
        }
      }
      (void)!::write(report[1], line.data(), line.size());
      for (;;) ::pause();  // holding (and renewing) until killed
    }
    ::close(report[1]);
    REQUIRE(ReadLine(report[0], 60s) == "held");
    ::close(report[0]);
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);

    // Still live: refused at once, naming the dead holder.
    Events events;
    StateLease::Taking refused = Take(state, Options("next", 2s), &events);
    CHECK(refused.lease == nullptr);
    REQUIRE(refused.seen.holder.has_value());
    CHECK(refused.seen.holder->host == "doomed");
    CHECK(refused.seen.holder->pid == child);

    // Waiting: taken over once it expired, naming whose it was.
    const auto start = Clock::now();
    StateLease::Taking next = Take(state, Options("next", 2s, 30s), &events);
    REQUIRE(next.lease != nullptr);
    CHECK(next.outcome == LeaseOutcome::kTakenOver);
    REQUIRE(next.seen.holder.has_value());
    CHECK(next.seen.holder->pid == child);
    CHECK(events.Last(LeaseOutcome::kTakenOver).other->pid == child);
    MESSAGE(std::string(s3 ? "s3" : "valkey")
            << ": the killed holder's lease was taken over after "
            << std::chrono::duration_cast<milliseconds>(Clock::now() - start).count()
            << " ms of waiting (lease_seconds 2)");
    CHECK(next.lease->Release().ok());
  }
}

TEST_CASE("s3: a renewal that cannot reach the server loses the lease once; nothing is released after") {
  rocky_test::FaultProxy proxy(PortOf(S3().Endpoint()));
  REQUIRE_MESSAGE(proxy.ok(), proxy.error());
  const StateConfig state = S3State(UniquePrefix("renew-fail"), proxy.Endpoint());
  Events events;
  std::atomic<int> lost_calls{0};
  LeaseOptions options = Options("host-a", 1500ms);
  options.on_lost = [&lost_calls] { ++lost_calls; };
  StateLease::Taking a = Take(state, options, &events);
  REQUIRE(a.lease != nullptr);
  events.Await(LeaseOutcome::kRenewed);
  proxy.Blackhole();
  events.Await(LeaseOutcome::kLost);
  CHECK(lost_calls.load() == 1);
  CHECK_FALSE(a.lease->held());
  CHECK(a.lease->lost());
  CHECK(a.lease->lost_reason().find("renewal failed") != std::string::npos);
  CHECK(a.lease->Release().ok());
  CHECK(events.Count(LeaseOutcome::kReleased) == 0);
  CHECK(events.Count(LeaseOutcome::kLost) == 1);
  CHECK(lost_calls.load() == 1);
}

TEST_CASE("valkey: a renewal against a server that went away loses the lease once") {
  RedisServer redis;
  const StateConfig state = ValkeyState(UniquePrefix("renew-fail"), redis.Url());
  Events events;
  std::atomic<int> lost_calls{0};
  LeaseOptions options = Options("host-a", 1500ms);
  options.on_lost = [&lost_calls] { ++lost_calls; };
  StateLease::Taking a = Take(state, options, &events);
  REQUIRE(a.lease != nullptr);
  events.Await(LeaseOutcome::kRenewed);
  redis.Stop();
  events.Await(LeaseOutcome::kLost);
  CHECK(lost_calls.load() == 1);
  CHECK_FALSE(a.lease->held());
  CHECK(a.lease->Release().ok());
  CHECK(events.Count(LeaseOutcome::kReleased) == 0);
}

TEST_CASE(
    "a lease broken and taken by another: the holder's next renewal loses it, and it never frees theirs") {
  for (const bool s3 : {true, false}) {
    CAPTURE(s3);
    const StateConfig state = s3 ? S3State(UniquePrefix("stolen"), S3().Endpoint())
                                 : ValkeyState(UniquePrefix("stolen"), Redis().Url());
    Events a_events;
    LeaseOptions options = Options("host-a", 30s);
    options.renew_every = 200ms;
    StateLease::Taking a = Take(state, options, &a_events);
    REQUIRE(a.lease != nullptr);
    // `rocky state unlock --yes`: broken conditionally on what was read, then another runner takes it. A
    // renewal (every 200 ms) between the read and the break makes the break refuse (kBusy, by design): read
    // again until a break lands, within a deadline.
    auto breaker = OpenStore(state);
    Result<LeaseInfo> seen = Status::IOError("not read yet");
    const auto give_up = Clock::now() + 30s;
    for (;;) {
      seen = breaker->Inspect(Clock::now() + 20s);
      REQUIRE(seen.ok());
      REQUIRE(seen->holder.has_value());
      CHECK(seen->holder->host == "host-a");
      const Status broken = breaker->Break(*seen, Clock::now() + 20s);
      if (broken.ok()) break;
      REQUIRE_MESSAGE(broken.IsBusy(), broken.ToString());
      REQUIRE_MESSAGE(Clock::now() < give_up, "every break met a renewal for 30 s");
    }
    StateLease::Taking b = Take(state, Options("host-b", 30s));
    REQUIRE(b.lease != nullptr);
    a_events.Await(LeaseOutcome::kLost);
    // Lost to host-b, or (a renewal between the break and b's take) to nobody: "removed".
    const LeaseEvent lost = a_events.Last(LeaseOutcome::kLost);
    if (lost.other.has_value()) {
      CHECK(lost.other->host == "host-b");
    } else {
      CHECK(lost.error.find("removed") != std::string::npos);
    }
    CHECK(a.lease->Release().ok());
    const LeaseInfo after = Inspect(state);
    CHECK(after.state == LeaseInfo::State::kHeld);
    REQUIRE(after.holder.has_value());
    CHECK(after.holder->host == "host-b");
    // A break conditional on a version that is gone changes nothing.
    CHECK(breaker->Break(*seen, Clock::now() + 20s).IsBusy());
    CHECK(Inspect(state).holder->host == "host-b");
    CHECK(b.lease->Release().ok());
  }
}

TEST_CASE("a lease broken before the holder's next renewal: its release says it was lost, not released") {
  for (const bool s3 : {true, false}) {
    CAPTURE(s3);
    const StateConfig state = s3 ? S3State(UniquePrefix("broken"), S3().Endpoint())
                                 : ValkeyState(UniquePrefix("broken"), Redis().Url());
    Events events;
    StateLease::Taking a = Take(state, Options("host-a", 60s), &events);  // no renewal within the test
    REQUIRE(a.lease != nullptr);
    auto breaker = OpenStore(state);
    auto seen = breaker->Inspect(Clock::now() + 20s);
    REQUIRE(seen.ok());
    REQUIRE(breaker->Break(*seen, Clock::now() + 20s).ok());
    CHECK(a.lease->held());  // it cannot know yet: nothing was asked of the server
    CHECK(a.lease->Release().ok());
    CHECK(a.lease->lost());
    CHECK(a.lease->lost_reason().find("removed") != std::string::npos);
    CHECK(events.Count(LeaseOutcome::kLost) == 1);
    CHECK(events.Count(LeaseOutcome::kReleased) == 0);
    CHECK(events.Count(LeaseOutcome::kRenewed) == 0);
  }
}

TEST_CASE("s3: a take whose reply was lost is recognised as the holder's own write") {
  rocky_test::FaultProxy proxy(PortOf(S3().Endpoint()));
  REQUIRE_MESSAGE(proxy.ok(), proxy.error());
  const StateConfig state = S3State(UniquePrefix("lost-reply"), proxy.Endpoint());
  proxy.LoseReply("PUT /", 1);
  Events events;
  StateLease::Taking a = Take(state, Options("host-a", 5s), &events);
  CHECK(proxy.lost_replies() == 1);
  REQUIRE(a.lease != nullptr);
  CHECK(a.outcome == LeaseOutcome::kAcquired);
  CHECK(events.Count(LeaseOutcome::kBusy) == 0);
  CHECK(Inspect(state).holder->host == "host-a");
  CHECK(a.lease->Release().ok());
  CHECK(Inspect(state).state == LeaseInfo::State::kFree);
}

TEST_CASE("s3: the lease costs one request to take, one per renewal, one to release") {
  rocky_test::FaultProxy proxy(PortOf(S3().Endpoint()));
  REQUIRE_MESSAGE(proxy.ok(), proxy.error());
  const StateConfig state = S3State(UniquePrefix("requests"), proxy.Endpoint());
  proxy.ResetCounters();
  Events events;
  StateLease::Taking a = Take(state, Options("host-a", 1500ms), &events);
  REQUIRE(a.lease != nullptr);
  events.Await(LeaseOutcome::kRenewed, 3);
  CHECK(a.lease->Release().ok());
  events.Await(LeaseOutcome::kReleased);
  const int renewals = static_cast<int>(a.lease->renewals());
  // A renewal canceled by the release may have reached the proxy too.
  const int extra = proxy.requests() - (2 + renewals);
  MESSAGE(proxy.requests() << " requests for " << renewals << " renewals");
  CHECK(extra >= 0);
  CHECK(extra <= 1);
}
