// The structured record of one state transfer, emitted once per transfer as a JSON line so that operators can
// alert on it ("outcome != ok") without parsing prose:
//
//   {"event":"state.upload","backend":"s3","key":"rocky/state/state.redb","bytes":18342,"duration_ms":412,
//    "retries":1,"outcome":"ok"}
//
// A failed transfer adds "error" (the message, already free of secrets); a failed download adds
// "state_lost":true (the command goes on from the local file); a transfer with something to say despite its
// outcome adds "warnings".
//
// A failed download's outcome names why it failed when the policy ended it (timeout, transient_exhausted,
// budget_exhausted, circuit_open) and is error_then_fresh when the backend refused for good (credentials,
// access, corrupt object); "state_lost" is on all of them, so an alert on state loss needs only that field.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace rocky::sync {

enum class TransferOutcome : unsigned char {
  kOk,                   // done
  kAbsent,               // download: there is no remote state yet (a first run); the run starts empty
  kTimeout,              // the transfer's wall-clock budget (transfer_timeout_seconds) ran out
  kErrorThenFresh,       // download: failed for good; the run starts from the local file, marked state-lost
  kTransientExhausted,   // transient failures outlasted max_retries for this transfer
  kBudgetExhausted,      // the run's shared max_retries_per_run ran out
  kCircuitOpen,          // the backend's circuit breaker is open: not attempted
  kSkippedAfterFailure,  // upload: not attempted because this run's download failed (uploading a fresh state
                         // over a remote one we could not read would destroy it)
  kConflict,             // upload: another run wrote the remote state since this run downloaded it
  kError,                // a permanent failure (credentials, access denied, missing bucket, corrupt object)
  kInterrupted,          // stopped by Ctrl-C or SIGTERM (transfer_stop.h); the local state file is as it was
};

// "ok", "absent", "timeout", "error_then_fresh", "transient_exhausted", "budget_exhausted", "circuit_open",
// "skipped_after_failure", "conflict", "error", "interrupted".
std::string_view OutcomeName(TransferOutcome outcome);

// The name a failed transfer's error message starts with ("RetryBudgetExhausted: upload to s3://..."), for
// the CLI's JSON and for people: "RetryBudgetExhausted" for kTimeout, kTransientExhausted and
// kBudgetExhausted (the retry policy gave up), "CircuitOpen", "Conflict", "SkippedAfterFailure",
// "Interrupted";
// "" for kOk,
// kAbsent, and the permanent failures (kError, kErrorThenFresh), whose message is the backend's own.
std::string_view FailureName(TransferOutcome outcome);

struct TransferEvent {
  std::string event;    // "state.upload" or "state.download"
  std::string backend;  // "s3", "valkey", "tiered"
  std::string key;      // the remote key
  uint64_t bytes = 0;
  uint64_t duration_ms = 0;  // wall clock, retries and backoff included
  uint32_t retries = 0;      // attempts after the first
  TransferOutcome outcome = TransferOutcome::kOk;
  bool state_lost = false;            // a download that failed: the command goes on from the local file
  std::string error;                  // empty on success; never a secret
  std::vector<std::string> warnings;  // e.g. tiered's "Valkey unreachable"
};

// One line of JSON, no trailing newline.
std::string TransferEventJson(const TransferEvent& event);

// Receives every event. Called on the thread that made the transfer.
using EventSink = std::function<void(const TransferEvent&)>;

}  // namespace rocky::sync
