#include "remote_state_session.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <ostream>

#include "command_support.h"
#include "rocky/sync/state_envelope.h"
#include "rocky/sync/transfer_event.h"

namespace rocky::cli {

using engine::Result;
using engine::Status;

Result<std::unique_ptr<RemoteStateSession>> RemoteStateSession::Connect(const CommandContext& ctx,
                                                                        const config::Config* config,
                                                                        const std::string& state_path) {
  std::unique_ptr<RemoteStateSession> session(new RemoteStateSession(ctx, state_path));
  if (config == nullptr || config->state.backend == config::StateBackend::kLocal) return session;

  if (auto path = ctx.invocation.Get("events")) {
    // Appended to, so that a scheduler can point every run at one file; created 0600 like every file holding
    // state metadata (keys and sizes say what the state is called and where it lives).
    ROCKY_ASSIGN_OR_RETURN(session->events_fd_,
                           OpenPrivateForAppend(std::string(*path), "events file (--events)"));
  }
  RemoteStateSession* self = session.get();
  std::ostream& err_stream = ctx.err;
  sync::EventSink sink = [self, &err_stream](const sync::TransferEvent& event) {
    const std::string line = ForOutput(sync::TransferEventJson(event)) + "\n";
    if (self->events_fd_ < 0) {
      err_stream << line << std::flush;
    } else {
      // One write(2) per line on an O_APPEND descriptor: lines of concurrent runs never interleave.
      size_t done = 0;
      while (done < line.size()) {
        const ssize_t n = ::write(self->events_fd_, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          err_stream << "rocky: warning: cannot append to the events file (--events): "
                     << std::strerror(errno) << '\n';
          break;
        }
        done += static_cast<size_t>(n);
      }
    }
    (event.event == "state.download" ? self->download_ : self->upload_) = event.outcome;
  };
  std::ostream& err = ctx.err;
  sync::WarningSink warn = [&err](std::string_view line) {
    err << "rocky: warning: " << ForOutput(line) << '\n';
  };

  auto created = sync::StateSync::Create(config->state, sync::ProcessEnvironment(), sink, warn);
  if (!created.ok()) return created.status().WithContext("[state] in " + config->source_path);
  session->sync_ = std::move(*created);
  session->upload_interval_ = std::chrono::seconds(config->state.upload_interval_seconds);
  return session;
}

Result<std::unique_ptr<RemoteStateSession>> RemoteStateSession::Begin(const CommandContext& ctx,
                                                                      const config::Config* config,
                                                                      const std::string& state_path) {
  ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<RemoteStateSession> session, Connect(ctx, config, state_path));
  if (session->sync_ == nullptr) return session;
  auto pulled = session->sync_->Pull(state_path);
  if (!pulled.ok()) return pulled.status();
  session->state_lost_ = pulled->state_lost;
  session->last_upload_ = std::chrono::steady_clock::now();
  return session;
}

Result<std::optional<sync::TransferReport>> RemoteStateSession::Fetch(const std::string& destination) {
  if (sync_ == nullptr) return Status::InvalidArgument("[state] backend is \"local\": there is no remote state");
  return sync_->Fetch(destination);
}

std::string RemoteStateSession::Location() const {
  return sync_ == nullptr ? state_path_ : ForOutput(sync_->backend().Location());
}

Status RemoteStateSession::Finish() {
  if (sync_ == nullptr) return Status::OK();
  last_upload_ = std::chrono::steady_clock::now();
  Status s = sync_->Push(state_path_);
  upload_error_ = s.ok() ? std::string() : s.message();
  return s;
}

Status RemoteStateSession::ForcePush() {
  if (sync_ == nullptr)
    return Status::InvalidArgument("[state] backend is \"local\": there is no remote state");
  last_upload_ = std::chrono::steady_clock::now();
  Status s = sync_->ForcePush(state_path_);
  upload_error_ = s.ok() ? std::string() : s.message();
  return s;
}

RemoteStateSession::~RemoteStateSession() {
  if (events_fd_ >= 0) ::close(events_fd_);
}

void RemoteStateSession::WriteJson(JsonWriter& json) const {
  if (sync_ == nullptr) return;
  auto outcome = [&json](const char* key, const std::optional<sync::TransferOutcome>& o) {
    json.Key(key);
    if (o) {
      json.String(sync::OutcomeName(*o));
    } else {
      json.Null();
    }
  };
  json.Key("remote_state").BeginObject();
  json.Key("backend")
      .String(sync_->backend().Kind())
      .Key("location")
      .String(ForOutput(sync_->backend().Location()));
  outcome("download", download_);
  outcome("upload", upload_);
  json.Key("state_lost").Bool(state_lost_);
  json.Key("error");
  if (upload_error_.empty()) {
    json.Null();
  } else {
    json.String(ForOutput(upload_error_));
  }
  json.EndObject();
}

std::string RemoteStateSession::Summary() const {
  if (sync_ == nullptr) return {};
  std::string line = "Remote state " + ForOutput(sync_->backend().Location()) + ":";
  if (download_) line += " downloaded (" + std::string(sync::OutcomeName(*download_)) + ")";
  if (upload_) line += std::string(download_ ? "," : "") + " uploaded (" + std::string(sync::OutcomeName(*upload_)) + ")";
  if (state_lost_) line += "; the download failed, so watermarks missing locally are re-derived from the targets";
  return line + ".";
}

void RemoteStateSession::CheckpointIfDue(state::StateStore& store) {
  if (sync_ == nullptr || state_lost_) return;
  if (std::chrono::steady_clock::now() - last_upload_ < upload_interval_) return;
  last_upload_ = std::chrono::steady_clock::now();
  engine::Database* db = store.database();
  if (db == nullptr) return;
  // The store holds the file open, so the upload works from a snapshot of it taken through the open database.
  static std::atomic<uint64_t> counter{0};
  const std::string snapshot = state_path_ + ".checkpoint-" + std::to_string(::getpid()) + "-" +
                               std::to_string(counter++);
  Status s = sync::WriteStateSnapshot(*db, snapshot);
  if (s.ok()) s = sync_->Push(snapshot);
  std::error_code ec;
  std::filesystem::remove(snapshot, ec);
  if (!s.ok())
    ctx_.err << "rocky: warning: periodic upload of the state failed: " << ForOutput(s.message()) << '\n';
}

int WithUploadStatus(const CommandContext& ctx, int exit_code, const Status& upload) {
  if (upload.ok()) return exit_code;
  const int failed = Fail(ctx, upload);
  return exit_code == kExitOk ? failed : exit_code;
}

Result<std::unique_ptr<RemoteStateSession>> BeginRemoteState(const CommandContext& ctx, const std::string& state_path) {
  auto config = LoadConfigIfPresent(ctx.invocation);
  if (!config.ok()) return config.status();
  return RemoteStateSession::Begin(ctx, config->has_value() ? &**config : nullptr, state_path);
}

}  // namespace rocky::cli
