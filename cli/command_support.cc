#include "command_support.h"

#include <unistd.h>

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

}  // namespace rocky::cli
