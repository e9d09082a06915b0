#include "remote_state_session.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <ostream>

#include "command_support.h"
#include "rocky/sync/remote_state_factory.h"
#include "rocky/sync/state_envelope.h"
#include "rocky/sync/transfer_event.h"
#include "rocky/sync/transfer_stop.h"
#include "stop_signals.h"

namespace rocky::cli {

using base::Result;
using base::Status;

namespace {

// The longest --wait: a week. Longer is a scheduler's job.
constexpr uint64_t kMaxWaitSeconds = 7 * 24 * 3600;

// --wait's value (validated by CheckingWait), 0 when not given.
std::chrono::seconds WaitOf(const Invocation& invocation) {
  const auto value = invocation.Get("wait");
  if (!value) return std::chrono::seconds(0);
  return std::chrono::seconds(std::strtoull(std::string(*value).c_str(), nullptr, 10));
}

// "run", "state set": the command line's command, without the program's name.
std::string CommandName(const Invocation& invocation) {
  std::string name;
  for (size_t i = 1; i < invocation.chain.size(); ++i) {
    if (!name.empty()) name += ' ';
    name += invocation.chain[i]->name;
  }
  return name;
}

// Once per process: "rocky: <the engine's "in use for writing ... locked by process N">; waiting up to S s".
void SayWaiting(const CommandContext& ctx, const Status& busy) {
  static bool said = false;
  if (said) return;
  said = true;
  ctx.err << "rocky: " << ForOutput(busy.message()) << "; waiting up to " << WaitOf(ctx.invocation).count()
          << " s for it (--wait)\n";
}

std::string Seconds(std::chrono::milliseconds ms) { return std::to_string((ms.count() + 999) / 1000) + " s"; }

}  // namespace

void WriteLeaseRecordJson(JsonWriter& json, const std::optional<sync::LeaseRecord>& record) {
  if (!record) {
    json.Null();
    return;
  }
  json.BeginObject()
      .Key("host")
      .String(record->host)
      .Key("pid")
      .Int(record->pid)
      .Key("command")
      .String(record->command)
      .Key("started_at")
      .String(record->started_at)
      .Key("expires_at")
      .String(record->expires_at)
      .EndObject();
}

std::string DescribeLeaseHolder(const sync::LeaseRecord& r) {
  return r.host + ", pid " + std::to_string(r.pid) + " (rocky " + r.command + ", since " + r.started_at + ")";
}

Result<std::unique_ptr<RemoteStateSession>> RemoteStateSession::Connect(const CommandContext& ctx,
                                                                        const config::Config* config,
                                                                        const std::string& state_path) {
  std::unique_ptr<RemoteStateSession> session(new RemoteStateSession(ctx, state_path));
  if (config != nullptr) session->state_config_ = config->state;
  if (config == nullptr || config->state.backend == config::StateBackend::kLocal) return session;

  if (auto path = ctx.invocation.Get("events")) {
    // Appended to, so that a scheduler can point every run at one file; created 0600 like every file holding
    // state metadata (keys and sizes say what the state is called and where it lives).
    ROCKY_ASSIGN_OR_RETURN(session->events_fd_,
                           OpenPrivateForAppend(std::string(*path), "events file (--events)"));
  }
  RemoteStateSession* self = session.get();
  sync::EventSink sink = [self](const sync::TransferEvent& event) {
    self->WriteEventLine(ForOutput(sync::TransferEventJson(event)) + "\n");
    (event.event == "state.download" ? self->download_ : self->upload_) = event.outcome;
  };
  std::ostream& err = ctx.err;
  sync::WarningSink warn = [&err](std::string_view line) {
    err << "rocky: warning: " << ForOutput(line) << '\n';
  };

  auto created = sync::OpenStateSync(config->state, sync::ProcessEnvironment(), sink, warn);
  if (!created.ok()) return created.status().WithContext("[state] in " + config->source_path);
  session->sync_ = std::move(*created);
  session->upload_interval_ = std::chrono::seconds(config->state.upload_interval_seconds);
  return session;
}

void RemoteStateSession::WriteEventLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(events_mu_);
  if (events_fd_ < 0) {
    ctx_.err << line << std::flush;
    return;
  }
  // One write(2) per line on an O_APPEND descriptor: lines of concurrent runs never interleave.
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(events_fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ctx_.err << "rocky: warning: cannot append to the events file (--events): " << std::strerror(errno)
               << '\n';
      break;
    }
    done += static_cast<size_t>(n);
  }
}

Status RemoteStateSession::TakeLease() {
  if (sync_ == nullptr || lease_ != nullptr || busy_) return Status::OK();
  ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<sync::LeaseStore> store, sync_->backend().OpenLease());
  const config::StateConfig& state = *state_config_;
  sync::LeaseOptions options;
  options.command = CommandName(ctx_.invocation);
  options.duration = std::chrono::seconds(state.lease_seconds);
  options.wait = WaitOf(ctx_.invocation);
  options.take_timeout = std::chrono::seconds(state.transfer_timeout_seconds);
  options.retry = state.retry;
  // From the renewal thread: the run stops before its next table (an atomic store, nothing more).
  options.on_lost = [] { RequestRunStop(); };
  const std::chrono::seconds wait = WaitOf(ctx_.invocation);
  sync::LeaseEventSink sink = [this, wait, said_waiting = false](const sync::LeaseEvent& event) mutable {
    WriteEventLine(ForOutput(sync::LeaseEventJson(event)) + "\n");
    if (event.outcome == sync::LeaseOutcome::kBusy && wait.count() > 0 && !said_waiting) {
      // Called on the command's thread while Take waits (busy events come from there only).
      said_waiting = true;
      ctx_.err << "rocky: the remote state's lease is held by "
               << (event.other ? ForOutput(DescribeLeaseHolder(*event.other)) : std::string("another runner"))
               << "; waiting up to " << wait.count() << " s for it (--wait)\n";
    }
    if (event.outcome == sync::LeaseOutcome::kRenewed) return;
    std::lock_guard<std::mutex> lock(lease_mu_);
    lease_last_ = event.outcome;
    if (event.other) lease_other_ = event.other;
    if (!event.error.empty()) lease_error_ = event.error;
  };
  auto taken = sync::StateLease::Take(std::move(store), std::string(sync_->backend().Kind()),
                                      std::move(options), std::move(sink));
  if (!taken.ok()) {
    if (!sync::TransferStopRequested()) return taken.status();
    // Ctrl-C or SIGTERM while the lease was taken or waited for (--wait): nothing was done, and the command
    // says so as it refuses a busy lease (RefuseBusy), its JSON included, rather than as a failure.
    busy_ = true;
    interrupted_ = taken.status().message();
    return Status::OK();
  }
  taken_ = taken->outcome;
  seen_ = taken->seen;
  waited_ = taken->waited;
  if (taken->lease == nullptr) {
    busy_ = true;
    return Status::OK();
  }
  lease_ = std::move(taken->lease);
  mine_ = lease_->record_at_take();
  return Status::OK();
}

Result<std::unique_ptr<RemoteStateSession>> RemoteStateSession::Begin(const CommandContext& ctx,
                                                                      const config::Config* config,
                                                                      const std::string& state_path) {
  ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<RemoteStateSession> session, Connect(ctx, config, state_path));
  if (session->sync_ == nullptr) return session;
  // The lease first: the remote state is this command's to read and write only while it holds it.
  if (Status took = session->TakeLease(); !took.ok()) {
    // The backend failed (another runner holding the lease is busy(), not an error). A stop request, or
    // on_upload_failure = "fail", ends the command; "skip" trades the guard for liveness as it does for a
    // failed download: the command goes on from what it can read, and uploads nothing (Finish).
    if (sync::TransferStopRequested() ||
        session->state_config_->on_upload_failure == config::UploadFailurePolicy::kFail) {
      return took;
    }
    {
      std::lock_guard<std::mutex> lock(session->lease_mu_);
      session->lease_error_ = took.message();
    }
    ctx.err << "rocky: warning: " << ForOutput(took.message())
            << "; going on WITHOUT the lease (on_upload_failure = \"skip\"): this command will not upload "
               "the state, and nothing keeps another runner from running meanwhile\n";
  }
  if (session->busy_) return session;
  // The local file may be held by another rocky on this machine (its writer lock): wait for it as --wait
  // says.
  const auto wait_until = std::chrono::steady_clock::now() + WaitOf(ctx.invocation);
  for (;;) {
    auto pulled = session->sync_->Pull(state_path);
    if (pulled.ok()) {
      session->state_lost_ = pulled->state_lost;
      break;
    }
    if (!pulled.status().IsBusy() || std::chrono::steady_clock::now() >= wait_until) return pulled.status();
    SayWaiting(ctx, pulled.status());
    if (!sync::SleepUnlessStopRequested(std::chrono::milliseconds(200))) return pulled.status();
  }
  session->last_upload_ = std::chrono::steady_clock::now();
  return session;
}

int RemoteStateSession::RefuseBusy() const {
  if (interrupted()) {
    const std::string message = interrupted_ + ". Nothing was done";
    if (FormatOf(ctx_.invocation) == OutputFormat::kJson) {
      JsonWriter json = BeginJson(CommandName(ctx_.invocation));
      json.Key("error").String(ForOutput(message)).Key("stop_reason").String("signal");
      WriteJson(json);
      json.EndObject();
      ctx_.out << json.str() << '\n';
    }
    ctx_.err << "rocky: " << ForOutput(message) << '\n';
    return StopSignalReceived() != 0 ? ExitCodeForStop() : kExitFailure;
  }
  std::string message = "the remote state " + Location() + " is leased by another runner";
  if (seen_.holder) message += ": " + DescribeLeaseHolder(*seen_.holder);
  if (!seen_.expires_at.empty()) {
    message += "; its lease expires at " + seen_.expires_at + " (in " + Seconds(seen_.expires_in) +
               " by the server's clock) unless its holder renews it";
  } else {
    message += "; its lease expires in " + Seconds(seen_.expires_in) +
               " (by the server's clock) unless its holder renews it";
  }
  message +=
      ". Nothing was done. --wait SECONDS waits for it; `rocky state unlock --yes` breaks a lease whose "
      "holder is gone";
  if (FormatOf(ctx_.invocation) == OutputFormat::kJson) {
    JsonWriter json = BeginJson(CommandName(ctx_.invocation));
    json.Key("error").String(ForOutput(message)).Key("stop_reason").Null();
    WriteJson(json);
    json.EndObject();
    ctx_.out << json.str() << '\n';
  }
  ctx_.err << "rocky: " << ForOutput(message) << '\n';
  return kExitBusy;
}

Result<std::optional<sync::TransferReport>> RemoteStateSession::Fetch(const std::string& destination) {
  if (sync_ == nullptr)
    return Status::InvalidArgument("[state] backend is \"local\": there is no remote state");
  return sync_->Fetch(destination);
}

std::string RemoteStateSession::Location() const {
  return sync_ == nullptr ? state_path_ : ForOutput(sync_->backend().Location());
}

void RemoteStateSession::ReleaseLease() {
  if (lease_ == nullptr) return;
  Status released = lease_->Release();
  if (!released.ok()) ctx_.err << "rocky: warning: " << ForOutput(released.message()) << '\n';
}

Status RemoteStateSession::Finish() {
  if (sync_ == nullptr) return Status::OK();
  last_upload_ = std::chrono::steady_clock::now();
  Status s;
  if (lease_ != nullptr && !lease_->held()) {
    // Another runner may hold the lease, and have downloaded the state, by now: the remote state is its to
    // write. The targets keep what this run copied; the next run reads those rows again and skips them.
    std::string why = lease_->lost_reason();
    if (why.empty()) why = "the lease ran out";
    s = Status::Busy("LeaseLost: not uploading the state to " + sync_->backend().Location() + ": " + why +
                     "; the local state file is kept");
  } else if (lease_ == nullptr && !state_lost_) {
    // Going on without the lease (it could not be taken, and on_upload_failure = "skip"): never upload
    // without it. (After a failed download, Push skips by itself, with its event.)
    ctx_.err << "rocky: warning: not uploading the state to " << ForOutput(sync_->backend().Location())
             << ": this command could not take the lease; the local state file is kept\n";
  } else {
    pushed_ = true;
    s = sync_->Push(state_path_);
  }
  upload_error_ = s.ok() ? std::string() : s.message();
  ReleaseLease();
  return s;
}

Status RemoteStateSession::ForcePush() {
  if (sync_ == nullptr)
    return Status::InvalidArgument("[state] backend is \"local\": there is no remote state");
  last_upload_ = std::chrono::steady_clock::now();
  Status s;
  if (lease_ != nullptr && !lease_->held()) {
    s = Status::Busy("LeaseLost: not replacing the remote state " + sync_->backend().Location() + ": " +
                     lease_->lost_reason());
  } else {
    pushed_ = true;
    s = sync_->ForcePush(state_path_);
  }
  upload_error_ = s.ok() ? std::string() : s.message();
  ReleaseLease();
  return s;
}

RemoteStateSession::~RemoteStateSession() {
  // Before the events file closes: the release emits its event there.
  ReleaseLease();
  lease_.reset();
  if (events_fd_ >= 0) ::close(events_fd_);
}

void RemoteStateSession::WriteLeaseJson(JsonWriter& json) const {
  json.Key("lease");
  {
    std::lock_guard<std::mutex> lock(lease_mu_);
    if (!taken_ && lease_error_.empty()) {
      json.Null();
      return;
    }
  }
  std::optional<sync::LeaseOutcome> last;
  std::optional<sync::LeaseRecord> other;
  std::string error;
  {
    std::lock_guard<std::mutex> lock(lease_mu_);
    last = lease_last_;
    other = lease_other_;
    error = lease_error_;
  }
  json.BeginObject();
  const sync::LeaseOutcome taken = taken_.value_or(sync::LeaseOutcome::kError);
  json.Key("taken").String(sync::LeaseOutcomeName(taken));
  json.Key("outcome").String(sync::LeaseOutcomeName(last.value_or(taken)));
  json.Key("holder");
  WriteLeaseRecordJson(json, mine_);
  json.Key("other");
  WriteLeaseRecordJson(json, other);
  // Busy: when the other runner's lease may be taken over, by the server's clock.
  json.Key("expires_at");
  if (busy_ && !seen_.expires_at.empty()) {
    json.String(seen_.expires_at);
  } else {
    json.Null();
  }
  json.Key("expires_in_ms");
  if (busy_ && !interrupted()) {
    json.Int(seen_.expires_in.count());
  } else {
    json.Null();
  }
  json.Key("waited_ms").Int(waited_.count());
  json.Key("renewals").UInt(lease_ != nullptr ? lease_->renewals() : 0);
  json.Key("lost").Bool(lease_lost());
  json.Key("error");
  if (error.empty()) {
    json.Null();
  } else {
    json.String(ForOutput(error));
  }
  json.EndObject();
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
  WriteLeaseJson(json);
  json.EndObject();
}

std::string RemoteStateSession::Summary() const {
  if (sync_ == nullptr) return {};
  std::string line = "Remote state " + ForOutput(sync_->backend().Location()) + ":";
  std::vector<std::string> parts;
  // A wait worth mentioning is one --wait made (not the request's own milliseconds).
  const std::string waited = waited_ >= std::chrono::seconds(1) ? " after waiting " + Seconds(waited_) : "";
  if (!taken_) parts.push_back("lease NOT taken (the backend failed; nothing uploaded)");
  if (taken_ == sync::LeaseOutcome::kAcquired) parts.push_back("lease acquired" + waited);
  if (taken_ == sync::LeaseOutcome::kTakenOver) {
    parts.push_back("lease taken over" + waited +
                    (seen_.holder
                         ? " from " + DescribeLeaseHolder(*seen_.holder) + ", whose lease had expired"
                         : std::string()));
  }
  if (download_) parts.push_back("downloaded (" + std::string(sync::OutcomeName(*download_)) + ")");
  if (upload_) parts.push_back("uploaded (" + std::string(sync::OutcomeName(*upload_)) + ")");
  std::optional<sync::LeaseOutcome> last;
  {
    std::lock_guard<std::mutex> lock(lease_mu_);
    last = lease_last_;
  }
  if (last == sync::LeaseOutcome::kReleased) parts.push_back("lease released");
  for (size_t i = 0; i < parts.size(); ++i) line += (i == 0 ? " " : ", ") + parts[i];
  if (state_lost_)
    line += "; the download failed, so watermarks missing locally are re-derived from the targets";
  if (lease_lost() && pushed_) {
    // Found at the release, after the upload (conditional on the remote state being the one downloaded, so
    // it never overwrote another runner's): the work is done, but another runner may have run meanwhile.
    line += ". LEASE LOST after the upload: " + ForOutput(lease_->lost_reason()) +
            "; another runner may have started meanwhile";
  } else if (lease_lost()) {
    line +=
        ". LEASE LOST: " + ForOutput(lease_->lost_reason()) +
        "; the run stopped before its next table and did not upload the state (the local state file keeps "
        "what it did; the next run copies nothing twice)";
  }
  return line + ".";
}

void RemoteStateSession::CheckpointIfDue(state::StateStore& store) {
  if (sync_ == nullptr || state_lost_) return;
  if (lease_ != nullptr && !lease_->held()) return;  // not ours to write any more
  if (std::chrono::steady_clock::now() - last_upload_ < upload_interval_) return;
  last_upload_ = std::chrono::steady_clock::now();
  engine::Database* db = store.database();
  if (db == nullptr) return;
  // The store holds the file open, so the upload works from a snapshot of it taken through the open database.
  static std::atomic<uint64_t> counter{0};
  const std::string snapshot =
      state_path_ + ".checkpoint-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
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

Result<std::unique_ptr<RemoteStateSession>> BeginRemoteState(const CommandContext& ctx,
                                                             const std::string& state_path) {
  auto config = LoadConfigIfPresent(ctx.invocation);
  if (!config.ok()) return config.status();
  return RemoteStateSession::Begin(ctx, config->has_value() ? &**config : nullptr, state_path);
}

FlagSpec LeaseWaitFlag() {
  return FlagSpec{.name = "wait",
                  .value_name = "SECONDS",
                  .help =
                      "When another runner holds the state (the remote state's lease, or the local state "
                      "file), wait up to SECONDS for it instead of exiting 75 at once"};
}

CommandHandler CheckingWait(CommandHandler handler) {
  return [handler = std::move(handler)](const CommandContext& ctx) {
    if (const auto value = ctx.invocation.Get("wait")) {
      const std::string text(*value);
      char* end = nullptr;
      errno = 0;
      const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
      if (text.empty() || text[0] == '-' || text[0] == '+' || *end != '\0' || errno != 0 ||
          n > kMaxWaitSeconds) {
        return Usage(ctx, "--wait takes a whole number of seconds from 0 to " +
                              std::to_string(kMaxWaitSeconds) + ", not '" + text + "'");
      }
    }
    return handler(ctx);
  };
}

Result<std::unique_ptr<state::StateStore>> OpenStateStoreForWriting(const CommandContext& ctx,
                                                                    const std::string& path) {
  const auto wait_until = std::chrono::steady_clock::now() + WaitOf(ctx.invocation);
  for (;;) {
    auto store = OpenStateStore(ctx, path, state::StoreOptions{.mode = state::OpenMode::kReadWrite});
    if (store.ok() || !store.status().IsBusy() || std::chrono::steady_clock::now() >= wait_until)
      return store;
    SayWaiting(ctx, store.status());
    if (!sync::SleepUnlessStopRequested(std::chrono::milliseconds(200))) return store;
  }
}

int FailOpen(const CommandContext& ctx, const Status& status) {
  const bool stopped = StopSignalReceived() != 0;
  if (!status.IsBusy() && !stopped) return Fail(ctx, status);
  const std::string message =
      status.message() + (!status.IsBusy() ? "; nothing was done"
                          : stopped        ? "; stopped (Ctrl-C or SIGTERM) while waiting for it; nothing "
                                             "was done"
                                           : "; nothing was done (--wait SECONDS waits for it)");
  if (FormatOf(ctx.invocation) == OutputFormat::kJson) {
    JsonWriter json = BeginJson(CommandName(ctx.invocation));
    json.Key("error").String(ForOutput(message)).Key("stop_reason");
    if (stopped) {
      json.String("signal");
    } else {
      json.Null();
    }
    json.EndObject();
    ctx.out << json.str() << '\n';
  }
  Fail(ctx, message);
  return stopped ? ExitCodeForStop() : kExitBusy;
}

}  // namespace rocky::cli
