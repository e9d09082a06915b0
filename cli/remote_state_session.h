// The remote half of every command that changes the state (plan, apply, run, state set/delete/import, state
// push --force): when [state] backend is not "local", take the remote state's lease (sync/state_lease.h),
// then download the remote state into the local file before the command opens it, and upload it after the
// command closed it (and, for long runs, between tables), then release the lease. The policy (retries, the
// circuit breaker, the budgets, on_upload_failure) is sync::StateSync's and the lease's; this file only
// connects them to the command line: where events go (--events FILE, else stderr), how warnings are printed,
// what exit a failure gets, --wait.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "args.h"
#include "output.h"
#include "rocky/base/status.h"
#include "rocky/config/config.h"
#include "rocky/state/store.h"
#include "rocky/sync/state_lease.h"
#include "rocky/sync/state_sync.h"

namespace rocky::cli {

class RemoteStateSession {
 public:
  // When `config` (may be null: no rocky.toml) names a remote backend: takes the lease (waiting up to --wait
  // SECONDS for another runner's), then downloads the remote state into `state_path`. Does nothing for
  // "local". Requires that nothing in this process has the state file open. Another runner holding the lease
  // is not an error: the session is returned busy() and nothing was downloaded (RefuseBusy says so).
  // Errors: a backend that cannot be built from the configuration (a missing bucket setting), an --events
  // file that cannot be opened, a lease that cannot be taken (the backend failed), or a local state file in
  // use by another process (kBusy, after --wait). A failed download is not an error: a warning, and
  // state_lost() is true.
  static base::Result<std::unique_ptr<RemoteStateSession>> Begin(const CommandContext& ctx,
                                                                 const config::Config* config,
                                                                 const std::string& state_path);

  // Begin without the lease and the download: the backend, the events and the warnings set up, for a command
  // that only reads the remote state (`rocky state --remote`, `rocky state unlock`), or that takes the lease
  // itself (TakeLease) before something other than a download (`rocky state push --force`).
  static base::Result<std::unique_ptr<RemoteStateSession>> Connect(const CommandContext& ctx,
                                                                   const config::Config* config,
                                                                   const std::string& state_path);

  // Takes the lease for this command (its name from the command line), waiting up to --wait SECONDS. OK and
  // busy() when another runner still holds it; OK and nothing for "local". Errors as Begin's.
  base::Status TakeLease();

  // True when this command does not hold the lease and must not go on: another runner holds it, or a stop
  // request (Ctrl-C, SIGTERM) ended the taking of it or the --wait for it (interrupted()).
  bool busy() const { return busy_; }
  // True when a stop request ended the taking of the lease (or the wait for it): busy() too.
  bool interrupted() const { return !interrupted_.empty(); }
  // For a busy session: "rocky: the remote state is leased by ..." on stderr (naming the holder and when its
  // lease expires by the server's clock), with --output json also the command's JSON on stdout (`error`,
  // `stop_reason` null, remote_state.lease); returns kExitBusy. Interrupted: the stop's message instead, with
  // `stop_reason` "signal", and returns 128 + the signal's number (130, 143), as every stopped command does.
  int RefuseBusy() const;

  // Downloads the remote state into `destination` (not the state file), with the lifecycle's retries; nullopt
  // when there is none. kInvalidArgument for "local".
  base::Result<std::optional<sync::TransferReport>> Fetch(const std::string& destination);
  // Where the remote state lives (redacted), or the local state path for "local".
  std::string Location() const;

  // True when the remote state could not be downloaded and the command goes on from the local file.
  bool state_lost() const { return state_lost_; }
  bool remote() const { return sync_ != nullptr; }
  // True once the lease this command held was lost (the renewal thread said so): the run stops before its
  // next table (RunStopFlag), and the state is not uploaded.
  bool lease_lost() const { return lease_ != nullptr && lease_->lost(); }

  // Uploads the local state, then releases the lease. Requires that this process has the state file closed.
  // OK for "local", on success, and (with on_upload_failure = "skip") after a warning; the failure otherwise.
  // A lease that is no longer held (lost) is not uploaded over, whatever the policy: an error starting
  // "LeaseLost:" (the local state file is kept).
  base::Status Finish();

  // Replaces the remote state with the local file unconditionally (`rocky state push --force`), then releases
  // the lease (TakeLease first); its failure whatever on_upload_failure says. kInvalidArgument for "local".
  // Requires the state file closed.
  base::Status ForcePush();

  ~RemoteStateSession();  // releases the lease if the command did not (an error path)
  RemoteStateSession(const RemoteStateSession&) = delete;
  RemoteStateSession& operator=(const RemoteStateSession&) = delete;

  // Between tables of a run, with the store open: when [state] upload_interval_seconds has passed since the
  // last upload, snapshots the open store and uploads the snapshot (only while the lease is held). A failure
  // is only a warning here (the final upload decides the command's outcome).
  void CheckpointIfDue(state::StateStore& store);

  // For the command's output: "remote_state": {"backend", "location", "download", "upload", "state_lost",
  // "error", "lease"} (outcomes as in events, null when that transfer did not happen; "lease": see
  // WriteLeaseJson). Writes nothing for "local".
  void WriteJson(JsonWriter& json) const;
  // One line for the table output ("Remote state s3://...: lease acquired, downloaded (ok), uploaded (ok),
  // lease released."); empty for "local". A lost lease adds a sentence saying what it cost.
  std::string Summary() const;

 private:
  RemoteStateSession(const CommandContext& ctx, std::string state_path)
      : ctx_(ctx), state_path_(std::move(state_path)) {}

  // One JSON line to --events (one write(2) on an O_APPEND descriptor) or stderr. Thread-safe: the lease's
  // renewal thread emits too.
  void WriteEventLine(const std::string& line);
  // Releases the lease (once); a failure to release is a warning (the lease expires on its own).
  void ReleaseLease();
  // "lease": {"taken", "outcome", "holder", "other", "expires_at", "expires_in_ms", "waited_ms", "renewals",
  // "lost", "error"}.
  void WriteLeaseJson(JsonWriter& json) const;

  const CommandContext& ctx_;
  std::string state_path_;
  std::optional<config::StateConfig> state_config_;  // [state] of rocky.toml, when there is one
  int events_fd_ = -1;                               // --events (opened O_APPEND, created 0600); -1: stderr
  std::mutex events_mu_;                             // one event line at a time, whatever the thread
  std::unique_ptr<sync::StateSync> sync_;            // null: backend "local"
  std::chrono::seconds upload_interval_{60};
  bool state_lost_ = false;
  // The outcome of the last transfer each way (from the events), and the final upload's error, for the
  // output.
  std::optional<sync::TransferOutcome> download_;
  std::optional<sync::TransferOutcome> upload_;
  // Finish or ForcePush sent the state while the lease was held: a lease found lost after that (at its
  // release) was lost after the work, and the summary must not say nothing was uploaded.
  bool pushed_ = false;
  std::string upload_error_;
  std::chrono::steady_clock::time_point last_upload_ = std::chrono::steady_clock::now();

  // The lease: taken by TakeLease, released by Finish / ForcePush / the destructor.
  std::unique_ptr<sync::StateLease> lease_;
  bool busy_ = false;
  std::optional<sync::LeaseOutcome> taken_;  // acquired, taken_over or busy
  sync::LeaseInfo seen_;                     // busy: the holder's lease; taken_over: the expired one
  std::chrono::milliseconds waited_{0};
  std::optional<sync::LeaseRecord> mine_;         // this command's lease record (as taken)
  mutable std::mutex lease_mu_;                   // guards the two below (written from the renewal thread)
  std::optional<sync::LeaseOutcome> lease_last_;  // the last step other than "renewed"
  std::optional<sync::LeaseRecord> lease_other_;  // from the last event that named another holder
  std::string lease_error_;
  std::string interrupted_;  // why the taking of the lease stopped (a stop request); empty otherwise
};

// The command's exit once its output is printed: the upload's failure (exit 1, its message on stderr) wins
// over success; a command that already failed (or was interrupted) keeps its own code.
int WithUploadStatus(const CommandContext& ctx, int exit_code, const base::Status& upload);

// RemoteStateSession::Begin with rocky.toml when present (nullptr otherwise, i.e. local).
base::Result<std::unique_ptr<RemoteStateSession>> BeginRemoteState(const CommandContext& ctx,
                                                                   const std::string& state_path);

// The `--wait SECONDS` flag of every command that takes the lease (or, for a local state, its file's writer
// lock).
FlagSpec LeaseWaitFlag();

// Wraps the handler of a command with --wait so that a value that is not a whole number of seconds (0 to
// 604800) is refused as a usage error (exit 2) before anything runs.
CommandHandler CheckingWait(CommandHandler handler);

// OpenStateStore for writing, waiting up to --wait SECONDS while another process holds the state file's
// writer lock (a second rocky on this machine): the local state's counterpart of the lease.
base::Result<std::unique_ptr<state::StateStore>> OpenStateStoreForWriting(const CommandContext& ctx,
                                                                          const std::string& path);

// A lease record as JSON ({"host", "pid", "command", "started_at", "expires_at"}), or null when there is
// none: the form of `lease` in every command's --output json and of state unlock's `holder`.
void WriteLeaseRecordJson(base::JsonWriter& json, const std::optional<sync::LeaseRecord>& record);
// Who holds a lease, for messages: "runner-7, pid 4242 (rocky run, since 2026-03-01T10:00:00Z)".
std::string DescribeLeaseHolder(const sync::LeaseRecord& r);

// Fail() for an open of the state file (or a session's Begin): kExitBusy when another process holds its
// writer lock (kBusy), 128 + the signal's number when a stop request (Ctrl-C, SIGTERM) ended it (a --wait
// for that lock, a download), kExitFailure otherwise. In the first two cases, with --output json, the
// command's JSON is on stdout too, as RefuseBusy prints it (`error`, `stop_reason`: "signal" or null).
int FailOpen(const CommandContext& ctx, const base::Status& status);

}  // namespace rocky::cli
