// Command-line parsing shared by `rocky` and `rocky-inspect`.
//
// A program describes itself as a tree of CommandSpecs (the root is the program, its children are
// subcommands) and ParseCommandLine turns the arguments into an Invocation or a UsageError. Nothing throws:
// a bad command line is a value the caller prints (exit code 2), so main() needs no try/catch.
//
// Accepted syntax:
//   --flag value, --flag=value   a flag taking a value (given as a separate word, the value may not start
//                                with "--"; use --flag=--odd for that)
//   --switch                     a flag taking no value
//   -h, --help                   help for the command reached so far, on every command
//   help [COMMAND...]            the same, as a built-in command of a root that takes commands
//   --version                    the program's version, on every command
//   --                           everything after it is positional
// Flags declared on a command are accepted after it and after any of its subcommands (global options).
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace rocky::cli {

// The specs below are built with designated initializers; every member has a default ({}) so leaving one out
// is not a -Wmissing-field-initializers warning.

// Exit codes of both programs.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and failed
inline constexpr int kExitUsage = 2;    // the command line was wrong; nothing ran
// Another runner holds the state (the remote state's lease, or the local state file's writer lock): nothing
// was done; try again later (sysexits.h's EX_TEMPFAIL, which schedulers know as "retry").
inline constexpr int kExitBusy = 75;

struct FlagSpec {
  std::string name{};        // without the leading dashes: "state-path"
  std::string value_name{};  // shown in help ("PATH"); empty makes the flag a switch that takes no value
  std::string help{};
  // When non-empty, the only values accepted; help shows them in place of value_name ("table|json").
  std::vector<std::string> choices{};
  // When non-empty, a flag that no longer exists: using it is a usage error that names this replacement
  // ("--output json"), so an old script fails saying what to write instead; help does not show it.
  std::string replaced_by{};
};

struct PositionalSpec {
  std::string name{};  // shown in help ("FILE")
  std::string help{};
  // Optional positionals must come after every required one.
  bool required = true;
};

struct CommandContext;

// What a runnable command does; returns the process exit code.
using CommandHandler = std::function<int(const CommandContext&)>;

struct CommandSpec {
  std::string name{};     // the program name at the root, the word typed for a subcommand
  std::string summary{};  // one line, shown in the parent's command list
  // Shown by --help under the usage line; the summary is shown when empty.
  std::string description{};
  std::vector<FlagSpec> flags{};
  std::vector<PositionalSpec> positionals{};
  std::vector<CommandSpec> subcommands{};
  // Set on commands that do something themselves; a command without one needs a subcommand. A command with
  // both a handler and subcommands runs its handler when no subcommand is given (and takes no positionals).
  CommandHandler handler{};
};

// The commands from the root to the one reached; pointers into the root CommandSpec, which must outlive it.
using CommandChain = std::vector<const CommandSpec*>;

// "rocky-inspect dump": the chain's names joined by spaces.
std::string ChainName(const CommandChain& chain);

// A command line that asks for something.
struct Invocation {
  enum class Action : unsigned char { kRun, kHelp, kVersion };

  Action action = Action::kRun;
  // Ends with the command to run, or the command whose help was asked for.
  CommandChain chain;
  // Flag name -> value; switches map to "". A flag given twice keeps its last value.
  std::map<std::string, std::string, std::less<>> flags;
  std::vector<std::string> positionals;

  const CommandSpec& command() const { return *chain.back(); }
  bool Has(std::string_view flag) const { return flags.find(flag) != flags.end(); }
  // The flag's value, or nullopt when it was not given.
  std::optional<std::string_view> Get(std::string_view flag) const;
};

// Why a command line was refused. The message names the offending word; chain ends with the command whose
// --help the user should read.
struct UsageError {
  std::string message;
  CommandChain chain;
};

// What a handler gets: the invocation and where to write.
struct CommandContext {
  const Invocation& invocation;
  std::ostream& out;
  std::ostream& err;
};

using ParseResult = std::variant<Invocation, UsageError>;

// `args` excludes the program name (argv + 1).
ParseResult ParseCommandLine(const CommandSpec& root, const std::vector<std::string_view>& args);

// The text --help prints for chain.back(), listing the flags of its ancestors as global options.
std::string FormatHelp(const CommandChain& chain);

}  // namespace rocky::cli
