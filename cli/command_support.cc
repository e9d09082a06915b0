#include "command_support.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <system_error>

#include "rocky/state/store.h"
#include "version.h"

namespace rocky::cli {

std::string StatePath(const Invocation& invocation) {
  return std::string(invocation.Get("state-path").value_or(state::kDefaultStatePath));
}

std::string ConfigPath(const Invocation& invocation) {
  return std::string(invocation.Get("config").value_or(config::kDefaultConfigPath));
}

engine::Result<config::Config> LoadConfig(const Invocation& invocation) {
  return config::LoadConfigFile(ConfigPath(invocation), config::ProcessEnvironment());
}

CommandHandler ValidatingConfigIfPresent(CommandHandler handler) {
  return [handler = std::move(handler)](const CommandContext& ctx) {
    if (ctx.invocation.Has("config") || FileExists(std::string(config::kDefaultConfigPath))) {
      auto loaded = LoadConfig(ctx.invocation);
      if (!loaded.ok()) return Fail(ctx, loaded.status());
    }
    return handler(ctx);
  };
}

engine::Result<std::optional<config::Config>> LoadConfigIfPresent(const Invocation& invocation) {
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
  ctx.err << "rocky: " << message << '\n';
  return kExitFailure;
}

int Fail(const CommandContext& ctx, const engine::Status& status) { return Fail(ctx, status.message()); }

int Usage(const CommandContext& ctx, std::string_view message) {
  ctx.err << "rocky: " << message << "\nRun '" << ChainName(ctx.invocation.chain) << " --help' for usage.\n";
  return kExitUsage;
}

JsonWriter BeginJson(std::string_view command) {
  JsonWriter json;
  json.BeginObject().Key("version").String(kVersion).Key("command").String(command);
  return json;
}

bool FileExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::symlink_status(path, ec).type() != std::filesystem::file_type::not_found;
}

namespace {

engine::Status ErrnoStatus(int err, const std::string& message) {
  const std::string text = message + ": " + std::strerror(err);
  return err == ENOSPC || err == EDQUOT ? engine::Status::NoSpace(text) : engine::Status::IOError(text);
}

}  // namespace

engine::Result<std::string> ReadWholeFile(const std::string& path, std::string_view what) {
  const bool stdin_input = path == "-";
  const std::string name =
      stdin_input ? std::string(what) + " (stdin)" : std::string(what) + " '" + path + "'";
  const int fd = stdin_input ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "cannot open " + name);
  std::string text;
  char buffer[1 << 16];
  engine::Status status;
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
            ? engine::Status::InvalidArgument(name + " is a directory")
            : ErrnoStatus(err, "cannot read " + name + " (after " + std::to_string(text.size()) + " bytes)");
    break;
  }
  if (!stdin_input) ::close(fd);
  if (!status.ok()) return status;
  return text;
}

engine::Status WriteFileAtomically(const std::string& path, std::string_view bytes, std::string_view what) {
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
  return engine::Status::OK();
}

engine::Result<int> OpenPrivateForAppend(const std::string& path, std::string_view what) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "cannot open " + std::string(what) + " '" + path + "' for appending");
  return fd;
}

}  // namespace rocky::cli
