// What every `rocky` command handler needs: where the state file and rocky.toml are, which output format
// was asked for, and how to report a failure (one line on stderr, exit 1) or a misuse (exit 2).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "output.h"
#include "rocky/base/status.h"
#include "rocky/config/config.h"
#include "rocky/engine/db.h"
#include "rocky/state/store.h"

namespace rocky::cli {

// --state-path, or .rocky-state.redb in the working directory.
std::string StatePath(const Invocation& invocation);
// --config, or rocky.toml in the working directory.
std::string ConfigPath(const Invocation& invocation);
// Loads and validates --config with the process environment; errors name the file, line and column.
base::Result<config::Config> LoadConfig(const Invocation& invocation);

// Wraps a handler that can work without rocky.toml (the state commands on a local file) so that a
// configuration that IS there is still loaded and validated first: an explicit --config, or rocky.toml in the
// working directory. A broken one fails the command with its file:line:col error instead of being ignored
// (it decides, e.g., which backend holds the state).
CommandHandler ValidatingConfigIfPresent(CommandHandler handler);

// rocky.toml when there is one to read (--config given, or rocky.toml in the working directory), loaded and
// validated; nullopt when there is none (the state commands then work on the local file alone).
base::Result<std::optional<config::Config>> LoadConfigIfPresent(const Invocation& invocation);

// --output when given; otherwise a table for a person at a terminal and JSON for a program reading a pipe.
OutputFormat FormatOf(const Invocation& invocation);

// Text made safe to print (config::Redact) with every secret of the configurations this process loaded
// (LoadConfig remembers them: the valkey_url password, s3_endpoint userinfo) and of the AWS credentials in
// the environment. Every line rocky prints that may hold a server's words or a URL goes through it.
std::string ForOutput(std::string_view text);

// "rocky: <message>" on stderr (through ForOutput); returns kExitFailure.
int Fail(const CommandContext& ctx, std::string_view message);
int Fail(const CommandContext& ctx, const base::Status& status);
// Refuses a command line that parsed but does not make sense, the same way the parser does; kExitUsage.
int Usage(const CommandContext& ctx, std::string_view message);

// Choosing tables, the same in every command: --table NAME is always one exact catalog.schema.table (as in
// Rocky's own `rocky state delete --table`), and --match PATTERN a glob over those names (* any run of
// characters, ? one) for the commands that take several (plan, run, state show).
FlagSpec TableFlag(std::string help);
FlagSpec MatchFlag(std::string help);

// What --table or --match selects, as a glob (an exact name is a glob without wildcards); "" when neither is
// given. kInvalidArgument, for Usage, when both are given or --table holds a wildcard (naming --match).
base::Result<std::string> TableFilterOf(const Invocation& invocation);

// "--table 'x'" or "--match 'x'": how messages name the filter the user gave; "" when none.
std::string TableFilterText(const Invocation& invocation);

// Starts the JSON object every command prints: {"version": ..., "command": ...}, and, when the command
// opened the local state file (OpenStateStore), what it must know about it:
//   "discarded_commit": null | {"path", "txn_id", "reason", "evidence_path" (null for a read-only open)},
//   "discarded_copies": ["<state>.discarded-<txn>", ...]  (copies still beside the file)
JsonWriter BeginJson(std::string_view command);

// What opening a state file found that the user must be told about.
struct StateFileNotice {
  std::string path;
  std::optional<engine::DiscardedCommit> discarded;  // this open fell back from the newest commit
  std::vector<std::string> discarded_copies;         // engine::FindDiscardedCopies: kept until deleted
};

// The notice for the state file at `path` as `db` (may be null: no file, or one holding no commit) opened
// it. Never fails: a directory that cannot be listed yields no copies.
StateFileNotice NoticeFor(const std::string& path, const engine::Database* db);

// The warning lines (without "rocky: warning: ") for a notice; empty when there is nothing to say.
std::vector<std::string> NoticeLines(const StateFileNotice& notice);

// state::StateStore::Open for the command's local state file, and then, at once, one "rocky: warning: ..."
// line on stderr for each thing the open found that the user must know (a discarded newest commit: its txn,
// why, and where the copy of the file is; copies of earlier discarded commits still there, until the user
// deletes them), also recorded for BeginJson. Use it for every open of the local state file.
base::Result<std::unique_ptr<state::StateStore>> OpenStateStore(const CommandContext& ctx,
                                                                const std::string& path,
                                                                const state::StoreOptions& options);

// The process that holds the state file's writer lock (FORMAT.md, "Locks": an exclusive POSIX record lock on
// byte 2^62, held while a process has the file open for writing), nullopt when none does or there is no file.
// Requires that this process does not have the file open (asking would drop its own locks).
std::optional<int64_t> StateFileWriterPid(const std::string& path);

// False only when nothing exists at `path`; any other failure counts as existing, so that opening the file
// reports the real error.
bool FileExists(const std::string& path);

// The whole file (or stdin for "-"), read with read(2) so that a read error is reported as one (kIOError
// naming the file and errno), never taken for the end of the file. `what` names the file for people
// ("import file").
base::Result<std::string> ReadWholeFile(const std::string& path, std::string_view what);

// Replaces `path` with `bytes` atomically: written to a temporary file beside it created 0600 (never wider,
// never chmod'ed afterwards), synced, renamed over `path`, and the folder synced. On failure `path` is as it
// was and no temporary file is left. kNoSpace for a full disk, kIOError otherwise, naming the file.
base::Status WriteFileAtomically(const std::string& path, std::string_view bytes, std::string_view what);

// Opens `path` for appending, creating it 0600 if missing (an existing file keeps its mode); returns the
// descriptor (O_CLOEXEC) or kIOError naming `what` and errno.
base::Result<int> OpenPrivateForAppend(const std::string& path, std::string_view what);

}  // namespace rocky::cli
