// The remote-state lifecycle of one rocky command: download before it touches the state, upload after (and
// periodically during a long run), each transfer bounded by a wall-clock budget, retried with exponential
// backoff and jitter when the failure is transient (remote_state.h: IsTransient), never when it is permanent,
// guarded by a circuit breaker shared by every transfer to the same backend in the process, and reported as
// one TransferEvent each.
//
//   auto sync = OpenStateSync(config.state, sync::ProcessEnvironment(), sink, warn);  // null: "local"
//   auto pulled = (*sync)->Pull(state_path);  // an error only when the local state is in use or unusable;
//                                             // a failed download is a warning and pulled->state_lost
//   ... the command opens, reads, writes and closes only the local file ...
//   auto pushed = (*sync)->Push(state_path);  // an error only with on_upload_failure = "fail", or a conflict
//
// Call Pull before the command opens the state file and Push after it closed it (or between its transactions
// with the Database closed): the engine opens a file once per process, so Pull's own open, and the upload's
// snapshot of the file, are refused while the command holds it.
//
// Warnings (a failed download, an upload skipped or failed under "skip", a backend's own warnings such as
// tiered's "Valkey unreachable") go to the WarningSink, one line each, already free of secrets, and are also
// in the events ("error", "warnings"); the CLI prints them on stderr. With no WarningSink they are only in
// the events and in PullResult::message.
//
// Policy, from [state] and [state.retry] of rocky.toml (config.h):
//   - transfer_timeout_seconds: one budget per transfer, retries and backoff included; the backend's network
//     waits are capped at what remains (Deadline).
//   - backoff: initial_backoff_ms * backoff_multiplier^(n-1), capped at max_backoff_ms; with jitter, a
//     uniform draw in [0, that] ("full jitter", so runners that failed together do not retry together).
//   - max_retries per transfer; max_retries_per_run shared by all transfers of this StateSync (one per run).
//   - the circuit breaker (circuit_breaker.h) opens after circuit_breaker_threshold consecutive failed
//     transfers, lets one probe through after circuit_breaker_recovery_timeout_seconds, closes on success.
//     A transfer "fails" for the breaker when the backend could not be reached or did not answer in time
//     (it ended in timeout, transient_exhausted or budget_exhausted). A permanent error (wrong credentials, a
//     corrupt object) or a conflict is an answer from a working backend: it counts as a success, since the
//     breaker is there to stop spending the run's time on an outage, and permanent errors are never retried.
//   - a transient error is retried while all of these hold: the transfer made fewer than max_retries retries,
//     the run's max_retries_per_run is not spent, and the backoff wait ends before the transfer's deadline
//     (otherwise the transfer ends at once as timeout rather than sleeping past its budget).
//   - on_upload_failure: "skip" logs and succeeds; "fail" returns an error naming RetryBudgetExhausted or
//     CircuitOpen (or the permanent error). The local state file is kept either way.
//   - a stop request (Ctrl-C, SIGTERM: transfer_stop.h) ends a transfer at once, backoff sleeps included, as
//     kInterrupted, never retried; Pull, Push and Fetch then return an error whose message starts with
//     "Interrupted", whatever the policy, and the local state file is as it was.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rocky/base/status.h"
#include "rocky/config/config.h"
#include "rocky/sync/remote_state.h"
#include "rocky/sync/transfer_event.h"

namespace rocky::sync {

// Time and sleeping, injectable so tests of backoff and of the breaker's recovery do not wait for real.
// A fake `now` is also what Deadlines are computed from, so only policy tests with a scripted backend should
// fake it; tests against real servers shorten the budgets below instead.
struct SyncClock {
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
  std::function<void(std::chrono::milliseconds)> sleep;  // default: std::this_thread::sleep_for
  std::function<double()> random_unit;                   // uniform in [0, 1); default: a seeded engine
  // The config gives these in whole seconds; when non-zero, these replace them, so tests run faults against
  // real servers in milliseconds. The CLI leaves them at zero.
  std::chrono::milliseconds transfer_timeout{0};  // replaces transfer_timeout_seconds
  std::chrono::milliseconds breaker_recovery{0};  // replaces circuit_breaker_recovery_timeout_seconds
};

// Receives one warning line at a time (no trailing newline). Called on the thread that made the transfer.
using WarningSink = std::function<void(std::string_view)>;

// What Pull found.
struct PullResult {
  TransferOutcome outcome = TransferOutcome::kOk;  // kOk, kAbsent, or the failure (kErrorThenFresh, ...)
  // True when the remote state could not be read and the command goes on from the local file as it is:
  // the replication layer re-derives watermarks from existing targets instead of reloading them in full.
  bool state_lost = false;
  std::string message;  // for a warning line when state_lost; empty otherwise
  uint64_t bytes = 0;   // downloaded envelope bytes (0 unless kOk)
};

// One StateSync per command (per run): max_retries_per_run is counted over its transfers. Not thread-safe:
// one caller at a time (the breaker it shares with other StateSyncs is).
class StateSync {
 public:
  // With a given backend: OpenStateSync (remote_state_factory.h) builds it from [state] of rocky.toml; tests
  // hand in their own. `sink` and `warn` may be null.
  StateSync(std::unique_ptr<RemoteStateBackend> backend, config::StateConfig config, EventSink sink,
            SyncClock clock = {}, WarningSink warn = nullptr);
  ~StateSync();

  StateSync(const StateSync&) = delete;
  StateSync& operator=(const StateSync&) = delete;

  // Downloads the remote state into `state_path`, replacing it atomically while holding the state's writer
  // lock (so no other rocky process is using it). Absent: the local file is left as is (outcome kAbsent).
  // Failure after the policy's retries: a warning, state_lost = true, the local file as it was, and every
  // later Push of this StateSync is skipped (kSkippedAfterFailure). Emits one "state.download" event.
  //
  // An interrupted download (transfer_stop.h) is an error ("Interrupted: ...") after its event: the command
  // must stop. Any other error is about the local state, not the download, and no event is emitted:
  // kBusy when another process (or this one) has the state open for writing ("database ... is in use for
  // writing: ... locked by process N"), or whatever else keeps the local file from opening (a corrupt
  // file, a directory that cannot be created). The command must stop: downloading over a state another
  // process is writing would lose its writes, and going on without the download would fork the state.
  Result<PullResult> Pull(const std::string& state_path);

  // Uploads `state_path`, conditional on the generation Pull saw (or on there being none: Push without Pull
  // creates the remote state and is a conflict if one exists). Emits one "state.upload" event. OK on success
  // and, with on_upload_failure = "skip", on failure too (the event and a warning say what happened); with
  // "fail", the failure, its message starting with FailureName (transfer_event.h) when the policy ended it.
  // A conflict is an error (kBusy, "Conflict: ...") under both policies. After a success, later Pushes are
  // conditional on the generation this one wrote.
  Status Push(const std::string& state_path);

  // Replaces the remote state with `state_path` whatever the remote holds (no condition): `rocky state push
  // --force`, the way out of a remote object that every download refuses (corrupt, foreign). Not skipped
  // after a failed download; its failure is returned whatever on_upload_failure says. Emits one
  // "state.upload" event; later Pushes are conditional on what it wrote.
  Status ForcePush(const std::string& state_path);

  // Push, but only when at least `interval` passed since the last upload attempt (or, before any, since
  // Pull), for long runs, between tables. Does nothing after a failed download (the final Push reports the
  // skip once).
  Status PushIfDue(const std::string& state_path, std::chrono::seconds interval);

  // Downloads the remote state into `destination` (any path, e.g. a temporary file for `rocky state
  // --remote`), with the same retries; nullopt when there is none. Does not change what Push is conditional
  // on. Emits one "state.download" event. A failure is returned (named as in Push), never only warned about.
  Result<std::optional<TransferReport>> Fetch(const std::string& destination);

  RemoteStateBackend& backend() { return *backend_; }

 private:
  Status PushImpl(const std::string& state_path, bool force);

  struct Impl;
  std::unique_ptr<RemoteStateBackend> backend_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rocky::sync
