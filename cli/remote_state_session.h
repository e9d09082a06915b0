// The remote half of every command that changes the state (plan, apply, run, state set/delete/import): when
// [state] backend is not "local", download the remote state into the local file before the command opens it,
// and upload it after the command closed it (and, for long runs, between tables). The policy (retries, the
// circuit breaker, the budgets, on_upload_failure) is sync::StateSync's; this file only connects it to the
// command line: where events go (--events FILE, else stderr), how warnings are printed, what exit a failure gets.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "args.h"
#include "output.h"
#include "rocky/config/config.h"
#include "rocky/engine/status.h"
#include "rocky/state/store.h"
#include "rocky/sync/state_sync.h"

namespace rocky::cli {

class RemoteStateSession {
 public:
  // Downloads the remote state into `state_path` when `config` (may be null: no rocky.toml) names a remote
  // backend; does nothing for "local". Requires that nothing in this process has the state file open.
  // Errors: a backend that cannot be built from the configuration (a missing bucket setting), an --events file
  // that cannot be opened, or a local state file in use by another process. A failed download is not an
  // error: a warning, and state_lost() is true.
  static engine::Result<std::unique_ptr<RemoteStateSession>> Begin(const CommandContext& ctx,
                                                                   const config::Config* config,
                                                                   const std::string& state_path);

  // Begin without the download: the backend, the events and the warnings set up, for a command that only
  // reads the remote state (`rocky state --remote`).
  static engine::Result<std::unique_ptr<RemoteStateSession>> Connect(const CommandContext& ctx,
                                                                     const config::Config* config,
                                                                     const std::string& state_path);

  // Downloads the remote state into `destination` (not the state file), with the lifecycle's retries; nullopt
  // when there is none. kInvalidArgument for "local".
  engine::Result<std::optional<sync::TransferReport>> Fetch(const std::string& destination);
  // Where the remote state lives (redacted), or the local state path for "local".
  std::string Location() const;

  // True when the remote state could not be downloaded and the command goes on from the local file.
  bool state_lost() const { return state_lost_; }
  bool remote() const { return sync_ != nullptr; }

  // Uploads the local state. Requires that this process has the state file closed. OK for "local", on
  // success, and (with on_upload_failure = "skip") after a warning; the failure otherwise.
  engine::Status Finish();

  // Replaces the remote state with the local file unconditionally (`rocky state push --force`); its
  // failure whatever on_upload_failure says. kInvalidArgument for "local". Requires the state file closed.
  engine::Status ForcePush();

  ~RemoteStateSession();
  RemoteStateSession(const RemoteStateSession&) = delete;
  RemoteStateSession& operator=(const RemoteStateSession&) = delete;

  // Between tables of a run, with the store open: when [state] upload_interval_seconds has passed since the
  // last upload, snapshots the open store and uploads the snapshot. A failure is only a warning here (the final
  // upload decides the command's outcome).
  void CheckpointIfDue(state::StateStore& store);

  // For the command's output: "remote_state": {"backend", "location", "download", "upload", "state_lost",
  // "error"} (outcomes as in events, null when that transfer did not happen). Writes nothing for "local".
  void WriteJson(JsonWriter& json) const;
  // One line for the table output ("Remote state s3://...: downloaded (ok), uploaded (ok)."); empty for "local".
  std::string Summary() const;

 private:
  RemoteStateSession(const CommandContext& ctx, std::string state_path) : ctx_(ctx), state_path_(std::move(state_path)) {}

  const CommandContext& ctx_;
  std::string state_path_;
  int events_fd_ = -1;                          // --events (opened O_APPEND, created 0600); -1: stderr
  std::unique_ptr<sync::StateSync> sync_;       // null: backend "local"
  std::chrono::seconds upload_interval_{60};
  bool state_lost_ = false;
  // The outcome of the last transfer each way (from the events), and the final upload's error, for the output.
  std::optional<sync::TransferOutcome> download_;
  std::optional<sync::TransferOutcome> upload_;
  std::string upload_error_;
  std::chrono::steady_clock::time_point last_upload_ = std::chrono::steady_clock::now();
};

// The command's exit once its output is printed: the upload's failure (exit 1, its message on stderr) wins
// over success; a command that already failed (or was interrupted) keeps its own code.
int WithUploadStatus(const CommandContext& ctx, int exit_code, const engine::Status& upload);

// RemoteStateSession::Begin with rocky.toml when present (nullptr otherwise, i.e. local).
engine::Result<std::unique_ptr<RemoteStateSession>> BeginRemoteState(const CommandContext& ctx,
                                                                     const std::string& state_path);

}  // namespace rocky::cli
