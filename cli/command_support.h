// What every `rocky` command handler needs: where the state file and rocky.toml are, which output format
// was asked for, and how to report a failure (one line on stderr, exit 1) or a misuse (exit 2).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "args.h"
#include "output.h"
#include "rocky/config/config.h"
#include "rocky/engine/status.h"

namespace rocky::cli {

// --state-path, or .rocky-state.redb in the working directory.
std::string StatePath(const Invocation& invocation);
// --config, or rocky.toml in the working directory.
std::string ConfigPath(const Invocation& invocation);
// Loads and validates --config with the process environment; errors name the file, line and column.
engine::Result<config::Config> LoadConfig(const Invocation& invocation);

// Wraps a handler that can work without rocky.toml (the state commands on a local file) so that a
// configuration that IS there is still loaded and validated first: an explicit --config, or rocky.toml in the
// working directory. A broken one fails the command with its file:line:col error instead of being ignored
// (it decides, e.g., which backend holds the state).
CommandHandler ValidatingConfigIfPresent(CommandHandler handler);

// rocky.toml when there is one to read (--config given, or rocky.toml in the working directory), loaded and
// validated; nullopt when there is none (the state commands then work on the local file alone).
engine::Result<std::optional<config::Config>> LoadConfigIfPresent(const Invocation& invocation);

// --output when given; otherwise a table for a person at a terminal and JSON for a program reading a pipe.
OutputFormat FormatOf(const Invocation& invocation);

// "rocky: <message>" on stderr; returns kExitFailure.
int Fail(const CommandContext& ctx, std::string_view message);
int Fail(const CommandContext& ctx, const engine::Status& status);
// Refuses a command line that parsed but does not make sense, the same way the parser does; kExitUsage.
int Usage(const CommandContext& ctx, std::string_view message);

// Starts the JSON object every command prints: {"version": ..., "command": ...}.
JsonWriter BeginJson(std::string_view command);

// False only when nothing exists at `path`; any other failure counts as existing, so that opening the file
// reports the real error.
bool FileExists(const std::string& path);

}  // namespace rocky::cli
