#include "rocky/sync/state_sync.h"

#include <random>
#include <thread>
#include <utility>

#include "rocky/engine/db.h"
#include "rocky/sync/backoff.h"
#include "rocky/sync/circuit_breaker.h"
#include "rocky/sync/transfer_stop.h"

namespace rocky::sync {

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

uint64_t ElapsedMs(SteadyTime start, SteadyTime end) {
  if (end <= start) return 0;
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(end - start).count());
}

// How one transfer ended once the policy was done with it.
template <typename T>
struct Attempted {
  TransferOutcome outcome = TransferOutcome::kOk;
  std::optional<T> value;  // set when outcome is kOk
  Status error;            // set otherwise; the message starts with FailureName(outcome) when it has one
  uint32_t retries = 0;
  uint64_t duration_ms = 0;
};

}  // namespace

struct StateSync::Impl {
  Impl(config::StateConfig config_in, EventSink sink_in, SyncClock clock_in, WarningSink warn_in,
       const std::string& location)
      : config(std::move(config_in)),
        sink(std::move(sink_in)),
        warn(std::move(warn_in)),
        clock(std::move(clock_in)),
        backoff(config.retry, nullptr),
        run_retries_left(config.retry.max_retries_per_run) {
    if (!clock.now) clock.now = [] { return std::chrono::steady_clock::now(); };
    // A backoff sleep ends early on Ctrl-C / SIGTERM (transfer_stop.h); Run looks at the request after it.
    if (!clock.sleep) clock.sleep = [](std::chrono::milliseconds d) { (void)SleepUnlessStopRequested(d); };
    if (!clock.random_unit) {
      auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
      clock.random_unit = [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
    }
    backoff = Backoff(config.retry, clock.random_unit);
    transfer_budget = clock.transfer_timeout.count() > 0
                          ? clock.transfer_timeout
                          : std::chrono::milliseconds(std::chrono::seconds(config.transfer_timeout_seconds));
    const std::chrono::milliseconds recovery =
        clock.breaker_recovery.count() > 0 ? clock.breaker_recovery
                                           : std::chrono::milliseconds(std::chrono::seconds(
                                                 config.retry.circuit_breaker_recovery_timeout_seconds));
    breaker = SharedCircuitBreaker(location, config.retry.circuit_breaker_threshold, recovery);
    last_push_attempt = clock.now();
  }

  // Runs `call` under the policy: the breaker's admission, one deadline for every attempt, retries of
  // transient errors with backoff within max_retries and the run's shared budget. `what` ("upload to
  // s3://...") starts the messages this adds.
  template <typename T, typename Call>
  Attempted<T> Run(const std::string& what, Call&& call) {
    Attempted<T> done;
    const SteadyTime start = clock.now();
    const Deadline deadline = start + transfer_budget;
    auto finish = [&](TransferOutcome outcome, Status error) {
      done.outcome = outcome;
      done.error = std::move(error);
      done.duration_ms = ElapsedMs(start, clock.now());
      return std::move(done);
    };

    const CircuitBreaker::Admission admission = breaker->Admit(start);
    if (admission == CircuitBreaker::Admission::kRefused) {
      return finish(
          TransferOutcome::kCircuitOpen,
          Status::IOError("CircuitOpen: " + what + " not attempted: the backend's circuit breaker is " +
                          std::string(CircuitStateName(breaker->state())) + " after " +
                          std::to_string(breaker->threshold()) +
                          " consecutive failed transfers (circuit_breaker_threshold); it lets one probe "
                          "through " +
                          std::to_string(breaker->recovery_timeout().count()) + " ms after opening"));
    }
    // Only a backend that could not be reached or did not answer in time counts against the breaker
    // (state_sync.h says why).
    auto record = [&](bool backend_answered) { breaker->Record(admission, backend_answered, clock.now()); };
    // A stop request (Ctrl-C, SIGTERM) ends the transfer before another attempt and is never retried; it says
    // nothing about the backend, so the breaker is told that it answered (a probe slot is given back).
    auto interrupted = [&]() {
      record(true);
      return finish(TransferOutcome::kInterrupted,
                    Status::IOError("Interrupted: " + what + " was stopped (Ctrl-C or SIGTERM) after " +
                                    std::to_string(done.retries) + " retries"));
    };

    for (;;) {
      if (TransferStopRequested()) return interrupted();
      Result<T> result = call(deadline);
      if (result.ok()) {
        record(true);
        done.value = std::move(result).value();
        return finish(TransferOutcome::kOk, Status::OK());
      }
      Status error = result.status();
      const SteadyTime now = clock.now();
      if (TransferStopRequested()) return interrupted();
      if (error.IsBusy()) {
        record(true);
        return finish(TransferOutcome::kConflict, error.WithContext("Conflict: " + what));
      }
      if (!IsTransient(error)) {
        record(true);
        return finish(TransferOutcome::kError, error.WithContext(what));
      }
      const std::string budget_ms = std::to_string(transfer_budget.count());
      const std::string after = " after " + std::to_string(done.retries) + " retries";
      if (now >= deadline) {
        record(false);
        return finish(TransferOutcome::kTimeout,
                      Status::TimedOut("RetryBudgetExhausted: " + what + " ran out of its " + budget_ms +
                                       " ms budget (transfer_timeout_seconds)" + after +
                                       "; last error: " + error.message()));
      }
      if (done.retries >= config.retry.max_retries) {
        record(false);
        return finish(TransferOutcome::kTransientExhausted,
                      error.WithContext("RetryBudgetExhausted: " + what + " failed" + after +
                                        " (max_retries " + std::to_string(config.retry.max_retries) + ")"));
      }
      if (run_retries_left == 0) {
        record(false);
        return finish(TransferOutcome::kBudgetExhausted,
                      error.WithContext("RetryBudgetExhausted: " + what + " failed" + after +
                                        " and the run's retries are spent (max_retries_per_run " +
                                        std::to_string(config.retry.max_retries_per_run) + ")"));
      }
      const std::chrono::milliseconds delay = backoff.Delay(done.retries + 1);
      if (now + delay >= deadline) {
        // Sleeping would use the rest of the budget (or more) and leave nothing for the attempt.
        record(false);
        return finish(TransferOutcome::kTimeout,
                      Status::TimedOut("RetryBudgetExhausted: " + what + " would overrun its " + budget_ms +
                                       " ms budget (transfer_timeout_seconds) by waiting " +
                                       std::to_string(delay.count()) + " ms to retry" + after +
                                       "; last error: " + error.message()));
      }
      clock.sleep(delay);
      ++done.retries;
      --run_retries_left;
    }
  }

  void Emit(const TransferEvent& event) const {
    if (sink) sink(event);
  }

  void Warn(const std::string& line) const {
    if (warn) warn(line);
  }

  config::StateConfig config;
  EventSink sink;
  WarningSink warn;
  SyncClock clock;
  Backoff backoff;
  std::shared_ptr<CircuitBreaker> breaker;  // shared with every StateSync of the process on this backend
  std::chrono::milliseconds transfer_budget{0};
  uint32_t run_retries_left;  // max_retries_per_run, counted down over every transfer of this StateSync
  bool download_failed = false;
  std::optional<std::string> generation;  // what the next upload is conditional on
  SteadyTime last_push_attempt;
};

StateSync::StateSync(std::unique_ptr<RemoteStateBackend> backend, config::StateConfig config, EventSink sink,
                     SyncClock clock, WarningSink warn)
    : backend_(std::move(backend)) {
  const std::string location = backend_->Location();
  impl_ =
      std::make_unique<Impl>(std::move(config), std::move(sink), std::move(clock), std::move(warn), location);
}

StateSync::~StateSync() = default;

namespace {

TransferEvent NewEvent(const RemoteStateBackend& backend, const char* name) {
  TransferEvent event;
  event.event = name;
  event.backend = std::string(backend.Kind());
  event.key = backend.Key();
  return event;
}

}  // namespace

Result<PullResult> StateSync::Pull(const std::string& state_path) {
  // Why opening the database is enough to make the replacement safe: the engine's writer lock is a POSIX
  // record lock (fcntl F_SETLK) on a byte of the state file's inode, and every rocky process takes it before
  // writing. While this Database is open, no other process can have the file open for writing, so none can
  // lose writes into the inode the download unlinks. The backend writes the downloaded state to a temporary
  // file beside it and rename()s it over the path (state_envelope.h, DecodeEnvelope): the directory entry
  // moves to the new inode atomically, while our descriptor, and so our lock, stay on the old one. POSIX
  // drops a process's locks when it closes *any* descriptor of the file; the backend only opens its temporary
  // files and the directory, never the state file, so the lock holds until Close below. A process that opens
  // the path after the rename gets the new, complete file; nobody can get a half-written one.
  engine::Options options;  // read_only = false: take the writer lock; create_if_missing: a first run
  auto db = engine::Database::Open(state_path, options);
  if (!db.ok()) return db.status().WithContext("opening the local state to replace it with the remote one");

  const std::string what = "download of the state from " + backend_->Location();
  Attempted<std::optional<TransferReport>> done = impl_->Run<std::optional<TransferReport>>(
      what, [&](Deadline deadline) { return backend_->Download(state_path, deadline); });
  Status closed = (*db)->Close();

  TransferEvent event = NewEvent(*backend_, "state.download");
  event.duration_ms = done.duration_ms;
  event.retries = done.retries;
  if (done.outcome == TransferOutcome::kInterrupted) {
    // The command is stopping: neither "lost" nor a state to go on from. The local file is as it was (a
    // download replaces it only once complete and verified).
    event.outcome = done.outcome;
    event.error = done.error.message();
    impl_->Emit(event);
    return Status::FromCode(done.error.code(), done.error.message() + "; the local state file is unchanged");
  }
  PullResult pulled;
  if (done.outcome == TransferOutcome::kOk) {
    impl_->download_failed = false;
    if (done.value->has_value()) {
      TransferReport& report = **done.value;
      impl_->generation = report.generation;
      event.bytes = report.bytes;
      event.warnings = report.warnings;
      pulled.bytes = report.bytes;
      pulled.outcome = TransferOutcome::kOk;
    } else {
      impl_->generation.reset();
      pulled.outcome = TransferOutcome::kAbsent;
    }
  } else {
    impl_->download_failed = true;
    // A permanent refusal is "error, then fresh"; a failure the policy ended keeps its own name.
    pulled.outcome =
        done.outcome == TransferOutcome::kError ? TransferOutcome::kErrorThenFresh : done.outcome;
    pulled.state_lost = true;
    pulled.message =
        "the remote state could not be downloaded (" + std::string(OutcomeName(pulled.outcome)) +
        "); going on from the local state file, and this run will not upload: " + done.error.message();
    event.state_lost = true;
    event.error = done.error.message();
  }
  event.outcome = pulled.outcome;
  impl_->Emit(event);
  for (const std::string& warning : event.warnings) impl_->Warn(warning);
  if (pulled.state_lost) impl_->Warn(pulled.message);
  impl_->last_push_attempt = impl_->clock.now();

  // The old inode's Database closing badly says nothing about the new file; it matters only when the local
  // file is still the one the command will use.
  const bool replaced = done.outcome == TransferOutcome::kOk && done.value->has_value();
  if (!closed.ok() && !replaced) return closed.WithContext("closing the local state after the download");
  return pulled;
}

Status StateSync::Push(const std::string& state_path) { return PushImpl(state_path, /*force=*/false); }

Status StateSync::ForcePush(const std::string& state_path) { return PushImpl(state_path, /*force=*/true); }

Status StateSync::PushImpl(const std::string& state_path, bool force) {
  const bool fail_on_error = force || impl_->config.on_upload_failure == config::UploadFailurePolicy::kFail;
  TransferEvent event = NewEvent(*backend_, "state.upload");
  impl_->last_push_attempt = impl_->clock.now();

  if (impl_->download_failed && !force) {
    event.outcome = TransferOutcome::kSkippedAfterFailure;
    Status skipped =
        Status::IOError("SkippedAfterFailure: not uploading the state to " + backend_->Location() +
                        ": this run could not download the remote state, and uploading the local one over it "
                        "could destroy it; "
                        "the local state file is kept");
    event.error = skipped.message();
    impl_->Emit(event);
    if (fail_on_error) return skipped;
    impl_->Warn(skipped.message());
    return Status::OK();
  }

  const std::string what =
      (force ? "forced upload of the state to " : "upload of the state to ") + backend_->Location();
  // One token for every attempt of this upload: a retry after a lost reply recognises its own write.
  const UploadRequest request{impl_->generation, force, NewUploadToken()};
  Attempted<TransferReport> done = impl_->Run<TransferReport>(
      what, [&](Deadline deadline) { return backend_->Upload(state_path, request, deadline); });
  event.outcome = done.outcome;
  event.duration_ms = done.duration_ms;
  event.retries = done.retries;
  if (done.outcome == TransferOutcome::kOk) {
    impl_->generation = done.value->generation;
    impl_->download_failed = false;  // after a forced upload, the remote state is this one
    event.bytes = done.value->bytes;
    event.warnings = done.value->warnings;
    impl_->Emit(event);
    for (const std::string& warning : event.warnings) impl_->Warn(warning);
    return Status::OK();
  }
  event.error = done.error.message();
  impl_->Emit(event);
  // A conflict means another run's state is newer than ours: succeeding would hide that this run's result is
  // not the remote state, under either policy. An interrupted upload stops the command under either too.
  if (fail_on_error || done.outcome == TransferOutcome::kConflict ||
      done.outcome == TransferOutcome::kInterrupted) {
    return done.error;
  }
  impl_->Warn(done.error.message() +
              " (on_upload_failure = \"skip\": the remote state is stale, the local state "
              "file is kept)");
  return Status::OK();
}

Status StateSync::PushIfDue(const std::string& state_path, std::chrono::seconds interval) {
  if (impl_->download_failed) return Status::OK();
  if (impl_->clock.now() - impl_->last_push_attempt < interval) return Status::OK();
  return Push(state_path);
}

Result<std::optional<TransferReport>> StateSync::Fetch(const std::string& destination) {
  const std::string what = "download of the state from " + backend_->Location();
  Attempted<std::optional<TransferReport>> done = impl_->Run<std::optional<TransferReport>>(
      what, [&](Deadline deadline) { return backend_->Download(destination, deadline); });
  TransferEvent event = NewEvent(*backend_, "state.download");
  event.outcome = done.outcome;
  event.duration_ms = done.duration_ms;
  event.retries = done.retries;
  if (done.outcome != TransferOutcome::kOk) {
    event.error = done.error.message();
    impl_->Emit(event);
    return done.error;
  }
  if (!done.value->has_value()) {
    event.outcome = TransferOutcome::kAbsent;
  } else {
    event.bytes = (*done.value)->bytes;
    event.warnings = (*done.value)->warnings;
  }
  impl_->Emit(event);
  for (const std::string& warning : event.warnings) impl_->Warn(warning);
  return std::move(*done.value);
}

}  // namespace rocky::sync
