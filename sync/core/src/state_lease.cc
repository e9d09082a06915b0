#include "rocky/sync/state_lease.h"

#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <utility>

#include "rocky/base/json_writer.h"
#include "rocky/base/timestamp.h"
#include "rocky/sync/backoff.h"
#include "rocky/sync/transfer_stop.h"

namespace rocky::sync {

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int64_t kLeaseFormat = 1;  // "rocky_lease": the record's layout version

uint64_t MillisSince(SteadyClock::time_point start) {
  const auto d = SteadyClock::now() - start;
  return d.count() <= 0 ? 0 : static_cast<uint64_t>(std::chrono::duration_cast<milliseconds>(d).count());
}

std::string NowPlus(milliseconds d) { return base::FormatUtc(std::chrono::system_clock::now() + d); }

void WriteRecord(base::JsonWriter& json, const LeaseRecord& r) {
  // The token stays out of events and outputs: only the holder needs it, and a broken-off lease's token
  // in a log would let a script "renew" someone else's lease by hand.
  json.BeginObject()
      .Key("host")
      .String(r.host)
      .Key("pid")
      .Int(r.pid)
      .Key("command")
      .String(r.command)
      .Key("started_at")
      .String(r.started_at)
      .Key("expires_at")
      .String(r.expires_at)
      .EndObject();
}

std::string HostName() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "unknown-host";
  return host;
}

}  // namespace

std::string LeaseRecord::ToJson() const {
  base::JsonWriter json;
  json.BeginObject()
      .Key("rocky_lease")
      .Int(kLeaseFormat)
      .Key("host")
      .String(host)
      .Key("pid")
      .Int(pid)
      .Key("command")
      .String(command)
      .Key("started_at")
      .String(started_at)
      .Key("expires_at")
      .String(expires_at)
      .Key("lease_ms")
      .Int(lease_ms)
      .Key("token")
      .String(token)
      .Key("renewal")
      .Int(renewal)
      .EndObject();
  return json.str();
}

Result<LeaseRecord> LeaseRecord::FromJson(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  // simdjson reads up to SIMDJSON_PADDING bytes past the end: parse from a padded copy.
  const simdjson::padded_string padded(text);
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
    return Status::Corruption("not a rocky lease (not a JSON object)");
  }
  int64_t format = 0;
  if (doc["rocky_lease"].get(format) != simdjson::SUCCESS) {
    return Status::Corruption("not a rocky lease (no \"rocky_lease\" field)");
  }
  if (format != kLeaseFormat) {
    return Status::NotSupported("a lease written by a newer rocky (format " + std::to_string(format) + ")");
  }
  LeaseRecord r;
  auto str = [&doc](const char* key, std::string* out) {
    std::string_view v;
    if (doc[key].get(v) != simdjson::SUCCESS) return false;
    *out = std::string(v);
    return true;
  };
  auto num = [&doc](const char* key, int64_t* out) { return doc[key].get(*out) == simdjson::SUCCESS; };
  if (!str("host", &r.host) || !num("pid", &r.pid) || !str("command", &r.command) ||
      !str("started_at", &r.started_at) || !str("expires_at", &r.expires_at) ||
      !num("lease_ms", &r.lease_ms) || !str("token", &r.token) || !num("renewal", &r.renewal) ||
      r.lease_ms <= 0) {
    return Status::Corruption("not a rocky lease (a field is missing or of the wrong type)");
  }
  return r;
}

std::string_view LeaseStateName(LeaseInfo::State state) {
  switch (state) {
    case LeaseInfo::State::kFree: return "free";
    case LeaseInfo::State::kHeld: return "held";
    case LeaseInfo::State::kExpired: return "expired";
  }
  return "held";
}

std::string_view LeaseOutcomeName(LeaseOutcome outcome) {
  switch (outcome) {
    case LeaseOutcome::kAcquired: return "acquired";
    case LeaseOutcome::kRenewed: return "renewed";
    case LeaseOutcome::kReleased: return "released";
    case LeaseOutcome::kBusy: return "busy";
    case LeaseOutcome::kTakenOver: return "taken_over";
    case LeaseOutcome::kLost: return "lost";
    case LeaseOutcome::kError: return "error";
  }
  return "error";
}

std::string LeaseEventJson(const LeaseEvent& event) {
  base::JsonWriter json;
  json.BeginObject()
      .Key("event")
      .String("state.lease")
      .Key("backend")
      .String(event.backend)
      .Key("key")
      .String(event.key)
      .Key("outcome")
      .String(LeaseOutcomeName(event.outcome))
      .Key("duration_ms")
      .UInt(event.duration_ms);
  if (event.holder) {
    json.Key("holder");
    WriteRecord(json, *event.holder);
  }
  if (event.other) {
    json.Key("other");
    WriteRecord(json, *event.other);
  }
  if (event.expires_in_ms) json.Key("expires_in_ms").Int(*event.expires_in_ms);
  if (!event.error.empty()) json.Key("error").String(event.error);
  json.EndObject();
  return json.str();
}

Result<StateLease::Taking> StateLease::Take(std::unique_ptr<LeaseStore> store,
                                            const std::string& backend_kind, LeaseOptions options,
                                            LeaseEventSink sink) {
  if (options.duration.count() <= 0) return Status::InvalidArgument("the lease's duration must be positive");
  if (options.renew_every.count() <= 0) options.renew_every = options.duration / 3;
  if (options.host.empty()) options.host = HostName();
  if (options.pid == 0) options.pid = static_cast<int64_t>(::getpid());

  LeaseRecord mine;
  mine.host = options.host;
  mine.pid = options.pid;
  mine.command = options.command;
  mine.lease_ms = options.duration.count();
  mine.token = NewUploadToken();

  const auto start = SteadyClock::now();
  const auto wait_until = start + options.wait;
  auto emit = [&](LeaseOutcome outcome, const std::optional<LeaseRecord>& other,
                  std::optional<int64_t> expires, const std::string& error) {
    if (!sink) return;
    LeaseEvent event;
    event.backend = backend_kind;
    event.key = store->Key();
    event.outcome = outcome;
    event.duration_ms = MillisSince(start);
    event.holder = mine;
    event.other = other;
    event.expires_in_ms = expires;
    event.error = error;
    sink(event);
  };
  auto fail = [&](Status error) {
    emit(LeaseOutcome::kError, std::nullopt, std::nullopt, error.message());
    return error;
  };

  auto random = std::make_shared<std::mt19937_64>(std::random_device{}());
  const Backoff backoff(options.retry,
                        [random] { return std::uniform_real_distribution<double>(0.0, 1.0)(*random); });
  uint32_t retries = 0;
  auto budget_start = start;  // transient failures share one budget, restarted by every answer
  bool said_busy = false;
  store->set_stoppable(true);
  const std::string what = "taking the lease " + store->Location();
  for (;;) {
    if (TransferStopRequested()) {
      return fail(Status::IOError("Interrupted: " + what + " was stopped (Ctrl-C or SIGTERM)"));
    }
    mine.started_at = NowPlus(milliseconds(0));
    mine.expires_at = NowPlus(options.duration);
    const auto sent = SteadyClock::now();
    const Deadline deadline = budget_start + options.take_timeout;
    Result<LeaseStore::TakeResult> tried = store->TryTake(mine, deadline);
    if (tried.ok() && tried->taken != LeaseStore::Taken::kBusy) {
      const bool over = tried->taken == LeaseStore::Taken::kTakenOver;
      Taking taking;
      taking.outcome = over ? LeaseOutcome::kTakenOver : LeaseOutcome::kAcquired;
      taking.seen = tried->seen;
      taking.waited = std::chrono::duration_cast<milliseconds>(sent - start);
      emit(taking.outcome, over ? tried->seen.holder : std::nullopt, options.duration.count(), "");
      auto valid_until = sent + options.duration;
      taking.lease.reset(new StateLease(std::move(store), backend_kind, std::move(options), std::move(sink),
                                        mine, valid_until));
      return taking;
    }
    const auto now = SteadyClock::now();
    if (tried.ok()) {
      // Busy: another runner holds a live lease.
      retries = 0;
      budget_start = now;
      const LeaseInfo& seen = tried->seen;
      if (!said_busy) {
        emit(LeaseOutcome::kBusy, seen.holder, seen.expires_in.count(), "");
        said_busy = true;
      }
      if (now >= wait_until) {
        if (options.wait.count() > 0) emit(LeaseOutcome::kBusy, seen.holder, seen.expires_in.count(), "");
        Taking taking;
        taking.outcome = LeaseOutcome::kBusy;
        taking.seen = seen;
        taking.waited = std::chrono::duration_cast<milliseconds>(now - start);
        return taking;
      }
      // Look again within a second (a holder that ends releases its lease at once), sooner when the lease
      // expires sooner, never past the end of the wait.
      milliseconds pause = std::min<milliseconds>(milliseconds(1000), seen.expires_in + milliseconds(50));
      pause = std::max(pause, milliseconds(100));
      pause = std::min(pause, std::chrono::duration_cast<milliseconds>(wait_until - now) + milliseconds(1));
      if (!SleepUnlessStopRequested(pause)) {
        return fail(Status::IOError("Interrupted: waiting for " + what + " was stopped (Ctrl-C or SIGTERM)"));
      }
      continue;
    }
    const Status& error = tried.status();
    if (TransferStopRequested()) {
      return fail(
          Status::IOError("Interrupted: " + what + " was stopped (Ctrl-C or SIGTERM): " + error.message()));
    }
    if (!IsTransient(error)) return fail(error.WithContext(what));
    const std::string after = " after " + std::to_string(retries) + " retries";
    if (retries >= options.retry.max_retries) {
      return fail(error.WithContext("RetryBudgetExhausted: " + what + " failed" + after + " (max_retries " +
                                    std::to_string(options.retry.max_retries) + ")"));
    }
    const milliseconds delay = backoff.Delay(retries + 1);
    if (now + delay >= deadline) {
      return fail(Status::TimedOut("RetryBudgetExhausted: " + what + " ran out of its " +
                                   std::to_string(options.take_timeout.count()) +
                                   " ms budget (transfer_timeout_seconds)" + after +
                                   "; last error: " + error.message()));
    }
    if (!SleepUnlessStopRequested(delay)) {
      return fail(Status::IOError("Interrupted: " + what + " was stopped (Ctrl-C or SIGTERM) after " +
                                  std::to_string(retries) + " retries"));
    }
    ++retries;
  }
}

StateLease::StateLease(std::unique_ptr<LeaseStore> store, std::string backend_kind, LeaseOptions options,
                       LeaseEventSink sink, LeaseRecord record, SteadyClock::time_point valid_until)
    : store_(std::move(store)),
      backend_kind_(std::move(backend_kind)),
      options_(std::move(options)),
      sink_(std::move(sink)),
      first_(record),
      current_(std::move(record)),
      valid_until_(valid_until) {
  // Renewals go on while the command winds down after Ctrl-C (it finishes its table first): their requests
  // must not be aborted by the stop request, which is for transfers. Release cancels one in flight instead.
  store_->set_stoppable(false);
  store_->set_cancel(&cancel_);
  renewer_ = std::thread([this] { RenewLoop(); });
}

StateLease::~StateLease() { (void)Release(); }

bool StateLease::held() const {
  if (lost_.load()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  return SteadyClock::now() < valid_until_;
}

std::string StateLease::lost_reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lost_reason_;
}

LeaseEvent StateLease::NewEvent(LeaseOutcome outcome) const {
  LeaseEvent event;
  event.backend = backend_kind_;
  event.key = store_->Key();
  event.outcome = outcome;
  event.holder = current_;
  return event;
}

void StateLease::Emit(const LeaseEvent& event) const {
  if (sink_) sink_(event);
}

void StateLease::Lose(const std::string& why, std::optional<LeaseRecord> other) {
  if (lost_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lost_reason_ = why;
  }
  // The command stops first (before its next table), then the event says why.
  if (options_.on_lost) options_.on_lost();
  LeaseEvent event = NewEvent(LeaseOutcome::kLost);
  event.other = std::move(other);
  event.error = why;
  Emit(event);
}

void StateLease::RenewLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  auto next = valid_until_ - options_.duration + options_.renew_every;
  const milliseconds first_pause{100};
  milliseconds pause = first_pause;
  const milliseconds max_pause = std::max(first_pause, options_.renew_every / 2);
  for (;;) {
    wake_.wait_until(lock, next, [this] { return stopping_; });
    if (stopping_) return;
    const auto until = valid_until_;
    lock.unlock();

    LeaseRecord renewed = current_;
    ++renewed.renewal;
    renewed.expires_at = NowPlus(options_.duration);
    const auto sent = SteadyClock::now();
    const auto started = sent;
    Result<std::optional<LeaseInfo>> result =
        sent < until
            ? store_->Renew(renewed, until)
            : Result<std::optional<LeaseInfo>>(Status::TimedOut("the lease ran out before its renewal"));
    {
      // Release canceled this renewal (or it ended as Release began): the command is ending, and Release
      // decides what the lease's state is. Nothing is lost here.
      std::lock_guard<std::mutex> stopping(mu_);
      if (stopping_) return;
    }
    if (result.ok() && !result->has_value()) {
      lock.lock();
      current_ = renewed;
      valid_until_ = sent + options_.duration;
      next = sent + options_.renew_every;
      pause = first_pause;
      ++renewals_;
      lock.unlock();
      LeaseEvent event = NewEvent(LeaseOutcome::kRenewed);
      event.duration_ms = MillisSince(started);
      event.expires_in_ms = options_.duration.count();
      Emit(event);
      lock.lock();
      continue;
    }
    if (result.ok()) {
      // Another record is in place: taken over (our renewals stopped long enough for it to expire on the
      // server), or broken with `rocky state unlock`.
      const LeaseInfo& now_there = **result;
      const std::string who = now_there.holder && now_there.state != LeaseInfo::State::kFree
                                  ? "another runner holds it now (" + now_there.holder->host + ", pid " +
                                        std::to_string(now_there.holder->pid) + ", rocky " +
                                        now_there.holder->command + ")"
                                  : "it was removed (rocky state unlock)";
      Lose("the lease was lost: " + who,
           now_there.state != LeaseInfo::State::kFree ? now_there.holder : std::nullopt);
      return;
    }
    const Status& error = result.status();
    const auto now = SteadyClock::now();
    if (now >= until || !IsTransient(error)) {
      Lose("the lease was lost: its renewal failed" +
               std::string(now >= until ? " until the lease ran out" : " for good") + ": " + error.message(),
           std::nullopt);
      return;
    }
    lock.lock();
    next = std::min<SteadyClock::time_point>(now + pause, until);
    pause = std::min(pause * 2, max_pause);
  }
}

Status StateLease::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (released_) return Status::OK();
    released_ = true;
    stopping_ = true;
  }
  cancel_.store(true);  // a renewal in flight ends now (within about a second)
  wake_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  cancel_.store(false);
  if (lost_.load()) return Status::OK();  // "lost" was said; the lease is someone else's or nobody's
  bool expired = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    expired = SteadyClock::now() >= valid_until_;
  }
  if (expired) {
    // The renewal thread was stopped before it noticed: the lease may be another runner's by now, and
    // releasing it could free theirs. (Release's DELETE is conditional, but not every S3-compatible server
    // honours If-Match on DELETE.)
    Lose("the lease was lost: it ran out before the command ended", std::nullopt);
    return Status::OK();
  }
  store_->set_stoppable(false);
  const auto start = SteadyClock::now();
  // After Ctrl-C the command must end within about a second: one attempt of at most a second. Otherwise up
  // to 5 s with retries. Either way, a lease not released expires on its own after lease_seconds.
  const bool stopping = TransferStopRequested();
  const milliseconds budget =
      std::min(options_.take_timeout, stopping ? milliseconds(1000) : milliseconds(5000));
  const Deadline deadline = start + budget;
  milliseconds pause{100};
  Result<LeaseStore::Released> released = Status::TimedOut("no time to release the lease");
  int attempts = 0;
  for (;;) {
    ++attempts;
    released = store_->Release(deadline);
    if (released.ok() || !IsTransient(released.status()) || stopping) break;
    const auto now = SteadyClock::now();
    if (now + pause >= deadline) break;
    std::this_thread::sleep_for(pause);
    pause *= 2;
  }
  LeaseEvent event = NewEvent(LeaseOutcome::kReleased);
  event.duration_ms = MillisSince(start);
  if (!released.ok()) {
    event.outcome = LeaseOutcome::kError;
    event.error = "releasing the lease failed (it expires on its own after lease_seconds): " +
                  released.status().message();
    Emit(event);
    return Status::FromCode(released.status().code(), event.error);
  }
  if (*released == LeaseStore::Released::kNotOurs) {
    Lose("the lease was lost: another runner held it when this command released it", std::nullopt);
    return Status::Busy("the lease " + store_->Location() + " was another runner's when this command ended");
  }
  if (*released == LeaseStore::Released::kAbsent && attempts == 1) {
    // Nothing of this release was sent before, so the lease was removed while this command held it: broken
    // with `rocky state unlock --yes` (or taken over and released by another runner) since the last renewal,
    // which could not notice it. Saying "released" would hide that another runner may have run meanwhile.
    Lose(
        "the lease was lost: it was removed (rocky state unlock, or another runner's take-over) since its "
        "last "
        "renewal, before this command released it",
        std::nullopt);
    return Status::OK();
  }
  // kAbsent after an earlier attempt that failed in transit: that attempt landed and its reply was lost.
  Emit(event);
  return Status::OK();
}

}  // namespace rocky::sync
