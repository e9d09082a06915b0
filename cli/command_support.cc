#include "command_support.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <system_error>

#include "rocky/base/strings.h"
#include "rocky/state/store.h"
#include "version.h"

namespace rocky::cli {

std::string StatePath(const Invocation& invocation) {
  return std::string(invocation.Get("state-path").value_or(state::kDefaultStatePath));
}

std::string ConfigPath(const Invocation& invocation) {
  return std::string(invocation.Get("config").value_or(config::kDefaultConfigPath));
}

namespace {

std::vector<std::string>& KnownSecrets() {
  static std::vector<std::string> secrets = [] {
    std::vector<std::string> from_env;
    for (const char* name : {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}) {
      const char* value = std::getenv(name);
      if (value != nullptr && *value != '\0') from_env.emplace_back(value);
    }
    return from_env;
  }();
  return secrets;
}

}  // namespace

base::Result<config::Config> LoadConfig(const Invocation& invocation) {
  auto loaded = config::LoadConfigFile(ConfigPath(invocation), config::ProcessEnvironment());
  if (loaded.ok()) {
    for (std::string& secret : config::SecretsOf(*loaded)) KnownSecrets().push_back(std::move(secret));
  }
  return loaded;
}

std::string ForOutput(std::string_view text) { return config::Redact(text, KnownSecrets()); }

CommandHandler ValidatingConfigIfPresent(CommandHandler handler) {
  return [handler = std::move(handler)](const CommandContext& ctx) {
    if (ctx.invocation.Has("config") || FileExists(std::string(config::kDefaultConfigPath))) {
      auto loaded = LoadConfig(ctx.invocation);
      if (!loaded.ok()) return Fail(ctx, loaded.status());
    }
    return handler(ctx);
  };
}

base::Result<std::optional<config::Config>> LoadConfigIfPresent(const Invocation& invocation) {
  if (!invocation.Has("config") && !FileExists(std::string(config::kDefaultConfigPath))) {
    return std::optional<config::Config>();
  }
  auto loaded = LoadConfig(invocation);
  if (!loaded.ok()) return loaded.status();
  return std::optional<config::Config>(std::move(*loaded));
}

OutputFormat FormatOf(const Invocation& invocation) {
  if (invocation.Has("output")) return OutputFormatOf(invocation);
  return isatty(STDOUT_FILENO) ? OutputFormat::kTable : OutputFormat::kJson;
}

int Fail(const CommandContext& ctx, std::string_view message) {
  ctx.err << "rocky: " << ForOutput(message) << '\n';
  return kExitFailure;
}

int Fail(const CommandContext& ctx, const base::Status& status) { return Fail(ctx, status.message()); }

int Usage(const CommandContext& ctx, std::string_view message) {
  ctx.err << "rocky: " << message << "\nRun '" << ChainName(ctx.invocation.chain) << " --help' for usage.\n";
  return kExitUsage;
}

FlagSpec TableFlag(std::string help) {
  return FlagSpec{.name = "table", .value_name = "TABLE", .help = std::move(help)};
}

FlagSpec MatchFlag(std::string help) {
  return FlagSpec{.name = "match", .value_name = "PATTERN", .help = std::move(help)};
}

base::Result<std::string> TableFilterOf(const Invocation& invocation) {
  const std::optional<std::string_view> table = invocation.Get("table");
  const std::optional<std::string_view> match = invocation.Get("match");
  if (table && match) {
    return base::Status::InvalidArgument(
        "--table and --match cannot be combined (--table names one table, --match a "
        "pattern)");
  }
  if (table) {
    if (table->find_first_of("*?") != std::string_view::npos) {
      return base::Status::InvalidArgument("--table takes one exact table name; for a pattern use --match " +
                                           base::Quoted(*table));
    }
    return std::string(*table);
  }
  return std::string(match.value_or(""));
}

std::string TableFilterText(const Invocation& invocation) {
  if (const std::optional<std::string_view> table = invocation.Get("table"))
    return "--table " + base::Quoted(*table);
  if (const std::optional<std::string_view> match = invocation.Get("match"))
    return "--match " + base::Quoted(*match);
  return "";
}

namespace {

// What OpenStateStore found, for BeginJson. A command is one process and opens its state file a few times
// at most (a probe, a reopen after an import): the last open of each path is what holds.
std::vector<StateFileNotice>& OpenedStateFiles() {
  static std::vector<StateFileNotice> notices;
  return notices;
}

}  // namespace

JsonWriter BeginJson(std::string_view command) {
  JsonWriter json;
  json.BeginObject().Key("version").String(kVersion).Key("command").String(command);
  const std::vector<StateFileNotice>& opened = OpenedStateFiles();
  if (opened.empty()) return json;
  const StateFileNotice& notice = opened.back();
  json.Key("discarded_commit");
  if (notice.discarded) {
    json.BeginObject()
        .Key("path")
        .String(notice.path)
        .Key("txn_id")
        .UInt(notice.discarded->txn_id)
        .Key("reason")
        .String(notice.discarded->reason)
        .Key("evidence_path");
    if (notice.discarded->evidence_path.empty()) {
      json.Null();
    } else {
      json.String(notice.discarded->evidence_path);
    }
    json.EndObject();
  } else {
    json.Null();
  }
  json.Key("discarded_copies").BeginArray();
  for (const std::string& copy : notice.discarded_copies) json.String(copy);
  json.EndArray();
  return json;
}

StateFileNotice NoticeFor(const std::string& path, const engine::Database* db) {
  StateFileNotice notice;
  notice.path = path;
  if (db != nullptr) notice.discarded = db->open_report().discarded;
  if (auto copies = engine::FindDiscardedCopies(path); copies.ok())
    notice.discarded_copies = std::move(*copies);
  return notice;
}

std::vector<std::string> NoticeLines(const StateFileNotice& notice) {
  std::vector<std::string> lines;
  std::string discarded_copy;
  if (notice.discarded) {
    const engine::DiscardedCommit& d = *notice.discarded;
    std::string line =
        "the newest commit of the state file " + notice.path + " (txn " + std::to_string(d.txn_id) +
        ") was discarded: " + d.reason +
        ". rocky goes on from the commit before it, so whatever that commit wrote is not in the "
        "state (after a power cut during it, that is expected; otherwise the file was damaged). ";
    if (d.evidence_path.empty()) {
      line += "This command only reads; the next one that writes keeps a copy of the file as it is first.";
    } else {
      discarded_copy = d.evidence_path;
      line += "A copy of the file as it was is kept at " + d.evidence_path +
              " (rocky-inspect it; delete it to acknowledge and stop this warning).";
    }
    lines.push_back(std::move(line));
  }
  for (const std::string& copy : notice.discarded_copies) {
    if (copy == discarded_copy) continue;  // said just above
    lines.push_back(
        copy + " is a copy of the state file " + notice.path +
        " kept when its newest commit was discarded; rocky went on from the commit before it. Look "
        "at it with rocky-inspect, then delete it to acknowledge and stop this warning.");
  }
  return lines;
}

base::Result<std::unique_ptr<state::StateStore>> OpenStateStore(const CommandContext& ctx,
                                                                const std::string& path,
                                                                const state::StoreOptions& options) {
  auto store = state::StateStore::Open(path, options);
  if (!store.ok()) {
    // Copies of discarded commits matter most when the file does not even open.
    StateFileNotice notice = NoticeFor(path, nullptr);
    for (const std::string& line : NoticeLines(notice)) ctx.err << "rocky: warning: " << line << '\n';
    return store;
  }
  StateFileNotice notice = NoticeFor(path, (*store)->database());
  for (const std::string& line : NoticeLines(notice)) ctx.err << "rocky: warning: " << line << '\n';
  std::vector<StateFileNotice>& opened = OpenedStateFiles();
  opened.push_back(std::move(notice));
  return store;
}

bool FileExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::symlink_status(path, ec).type() != std::filesystem::file_type::not_found;
}

std::optional<int64_t> StateFileWriterPid(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = static_cast<off_t>(uint64_t{1} << 62);  // FORMAT.md, "Locks": the writer's byte
  lock.l_len = 1;
  const bool asked = ::fcntl(fd, F_GETLK, &lock) == 0;
  // Closing drops this process's locks on the file; callers hold none (they never have it open).
  ::close(fd);
  if (!asked || lock.l_type == F_UNLCK) return std::nullopt;
  return static_cast<int64_t>(lock.l_pid);
}

namespace {

base::Status ErrnoStatus(int err, const std::string& message) {
  const std::string text = message + ": " + std::strerror(err);
  return err == ENOSPC || err == EDQUOT ? base::Status::NoSpace(text) : base::Status::IOError(text);
}

}  // namespace

base::Result<std::string> ReadWholeFile(const std::string& path, std::string_view what) {
  const bool stdin_input = path == "-";
  const std::string name =
      stdin_input ? std::string(what) + " (stdin)" : std::string(what) + " '" + path + "'";
  const int fd = stdin_input ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "cannot open " + name);
  std::string text;
  char buffer[1 << 16];
  base::Status status;
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      text.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    const int err = errno;
    status =
        err == EISDIR
            ? base::Status::InvalidArgument(name + " is a directory")
            : ErrnoStatus(err, "cannot read " + name + " (after " + std::to_string(text.size()) + " bytes)");
    break;
  }
  if (!stdin_input) ::close(fd);
  if (!status.ok()) return status;
  return text;
}

base::Status WriteFileAtomically(const std::string& path, std::string_view bytes, std::string_view what) {
  const std::string name = std::string(what) + " '" + path + "'";
  std::filesystem::path target(path);
  std::string dir = target.parent_path().string();
  if (dir.empty()) dir = ".";
  std::string temp = (target.parent_path() / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());  // O_CREAT | O_EXCL, mode 0600
  if (fd < 0) return ErrnoStatus(errno, "cannot create a temporary file beside " + name);
  auto fail = [&](int err, const std::string& doing) {
    ::close(fd);
    ::unlink(temp.c_str());
    return ErrnoStatus(err, "cannot write " + name + " (" + doing + ")");
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(n < 0 ? errno : EIO, "writing");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail(errno, "syncing");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return ErrnoStatus(err, "cannot write " + name + " (closing)");
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return ErrnoStatus(err, "cannot write " + name + " (renaming into place)");
  }
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    const bool synced = ::fsync(dir_fd) == 0;
    const int err = errno;
    ::close(dir_fd);
    if (!synced) return ErrnoStatus(err, name + " was written, but syncing its folder failed");
  }
  return base::Status::OK();
}

base::Result<int> OpenPrivateForAppend(const std::string& path, std::string_view what) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "cannot open " + std::string(what) + " '" + path + "' for appending");
  return fd;
}

}  // namespace rocky::cli
