// The remote-state lifecycle of one rocky command: download before it touches the state, upload after (and
// periodically during a long run), each transfer bounded by a wall-clock budget, retried with exponential backoff
// and jitter when the failure is transient (remote_state.h: IsTransient), never when it is permanent, guarded by a
// circuit breaker shared by every transfer to the same backend in the process, and reported as one
// TransferEvent each.
//
//   auto sync = StateSync::Create(config.state, sync::ProcessEnvironment(), sink);   // nullptr for "local"
//   auto pulled = (*sync)->Pull(state_path);      // never fails the command; says whether state was lost
//   ... the command reads and writes only the local file ...
//   auto pushed = (*sync)->Push(state_path);      // an error only when on_upload_failure = "fail"
//
// Policy, from [state] and [state.retry] of rocky.toml (config.h):
//   - transfer_timeout_seconds: one budget per transfer, retries and backoff included; the backend's network
//     waits are capped at what remains (Deadline).
//   - backoff: initial_backoff_ms * backoff_multiplier^(n-1), capped at max_backoff_ms; with jitter, a uniform
//     draw in [0, that] ("full jitter", so runners that failed together do not retry together).
//   - max_retries per transfer; max_retries_per_run shared by all transfers of this StateSync (one per run).
//   - the circuit breaker (circuit_breaker.h) opens after circuit_breaker_threshold consecutive failed
//     transfers, lets one probe through after circuit_breaker_recovery_timeout_seconds, closes on success.
//   - on_upload_failure: "skip" logs and succeeds; "fail" returns an error naming RetryBudgetExhausted or
//     CircuitOpen (or the permanent error). The local state file is kept either way.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "rocky/config/config.h"
#include "rocky/engine/status.h"
#include "rocky/sync/credentials.h"
#include "rocky/sync/remote_state.h"
#include "rocky/sync/transfer_event.h"

namespace rocky::sync {

// Opens the backend `config.backend` names ("s3", "valkey", "tiered"), resolving region, endpoint and
// credentials from `env` as the AWS SDKs do. kInvalidArgument for "local" or a missing setting. Connects
// lazily: an unreachable server is an error of the first transfer, not of this call.
Result<std::unique_ptr<RemoteStateBackend>> OpenRemoteStateBackend(const config::StateConfig& config,
                                                                   const EnvLookup& env);

// Time and sleeping, injectable so tests of backoff and of the breaker's recovery do not wait for real.
struct SyncClock {
  std::function<std::chrono::steady_clock::time_point()> now = [] { return std::chrono::steady_clock::now(); };
  std::function<void(std::chrono::milliseconds)> sleep;  // default: std::this_thread::sleep_for
  std::function<double()> random_unit;                    // uniform in [0, 1); default: a seeded engine
};

// What Pull found.
struct PullResult {
  TransferOutcome outcome = TransferOutcome::kOk;  // kOk, kAbsent, or the failure (kErrorThenFresh, ...)
  // True when the remote state could not be read and the command goes on from the local file as it is:
  // the replication layer re-derives watermarks from existing targets instead of reloading them in full.
  bool state_lost = false;
  std::string message;  // for a warning line when state_lost; empty otherwise
};

class StateSync {
 public:
  // Builds the backend with OpenRemoteStateBackend. Returns nullptr (and OK) when the backend is "local".
  static Result<std::unique_ptr<StateSync>> Create(const config::StateConfig& config, const EnvLookup& env,
                                                   EventSink sink);
  // With a given backend (tests, and Create itself).
  StateSync(std::unique_ptr<RemoteStateBackend> backend, config::StateConfig config, EventSink sink,
            SyncClock clock = {});
  ~StateSync();

  // Downloads the remote state into `state_path`, replacing it atomically while holding the state's writer
  // lock (so no other rocky process is using it). Absent: the local file is left as is (outcome kAbsent).
  // Failure after the policy's retries: a warning, state_lost = true, the local file as it was, and every
  // later Push of this StateSync is skipped (kSkippedAfterFailure). Emits one "state.download" event.
  PullResult Pull(const std::string& state_path);

  // Uploads `state_path`, conditional on the generation Pull saw (or on there being none). Emits one
  // "state.upload" event. OK on success and, with on_upload_failure = "skip", on failure too (the event and a
  // warning say what happened); with "fail", the failure. A conflict is an error under both policies.
  Status Push(const std::string& state_path);

  // Push, but only when at least `interval` passed since the last upload (for long runs, between tables).
  Status PushIfDue(const std::string& state_path, std::chrono::seconds interval);

  // Downloads the remote state into `destination` (any path, e.g. a temporary file for `rocky state --remote`),
  // with the same retries; nullopt when there is none. Does not change what Push is conditional on.
  Result<std::optional<TransferReport>> Fetch(const std::string& destination);

  RemoteStateBackend& backend() { return *backend_; }

 private:
  struct Impl;
  std::unique_ptr<RemoteStateBackend> backend_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rocky::sync
