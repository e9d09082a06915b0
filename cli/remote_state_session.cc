#include "remote_state_session.h"

#include <unistd.h>

#include <atomic>
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

  std::ostream* events = &ctx.err;
  if (auto path = ctx.invocation.Get("events")) {
    // Appended to, so that a scheduler can point every run at one file; 0600 like every file holding state
    // metadata (keys and sizes say what the state is called and where it lives).
    const std::string events_path(*path);
    const bool existed = std::filesystem::exists(events_path);
    session->events_file_ = std::make_unique<std::ofstream>(events_path, std::ios::app);
    if (!session->events_file_->is_open()) {
      return Status::IOError("cannot open the events file '" + events_path + "' (--events) for appending");
    }
    if (!existed) {
      std::error_code ec;
      std::filesystem::permissions(events_path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                   std::filesystem::perm_options::replace, ec);
    }
    events = session->events_file_.get();
  }
  RemoteStateSession* self = session.get();
  sync::EventSink sink = [events, self](const sync::TransferEvent& event) {
    *events << sync::TransferEventJson(event) << '\n';
    events->flush();
    (event.event == "state.download" ? self->download_ : self->upload_) = event.outcome;
  };
  std::ostream& err = ctx.err;
  sync::WarningSink warn = [&err](std::string_view line) { err << "rocky: warning: " << line << '\n'; };

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

std::string RemoteStateSession::Location() const { return sync_ == nullptr ? state_path_ : sync_->backend().Location(); }

Status RemoteStateSession::Finish() {
  if (sync_ == nullptr) return Status::OK();
  last_upload_ = std::chrono::steady_clock::now();
  Status s = sync_->Push(state_path_);
  upload_error_ = s.ok() ? std::string() : s.message();
  return s;
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
  json.Key("backend").String(sync_->backend().Kind()).Key("location").String(sync_->backend().Location());
  outcome("download", download_);
  outcome("upload", upload_);
  json.Key("state_lost").Bool(state_lost_);
  json.Key("error");
  if (upload_error_.empty()) {
    json.Null();
  } else {
    json.String(upload_error_);
  }
  json.EndObject();
}

std::string RemoteStateSession::Summary() const {
  if (sync_ == nullptr) return {};
  std::string line = "Remote state " + sync_->backend().Location() + ":";
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
  if (!s.ok()) ctx_.err << "rocky: warning: periodic upload of the state failed: " << s.message() << '\n';
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
