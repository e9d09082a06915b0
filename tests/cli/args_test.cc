// The argument parser and the command-line runner, on a program made up for the tests so every feature is
// exercised whether or not rocky's own commands use it yet.
#include "args.h"

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <variant>

#include "app.h"
#include "output.h"
#include "version.h"

namespace rocky::cli {
namespace {

// prog [--state-path PATH] [--output table|json]
//   dump FILE [TABLE] [--limit N] [--verbose]
//   tables list
CommandSpec TestProgram() {
  CommandSpec dump{
      .name = "dump",
      .summary = "Print a table",
      .flags = {FlagSpec{.name = "limit", .value_name = "N", .help = "At most N rows"},
                FlagSpec{.name = "verbose", .help = "Say more"}},
      .positionals = {PositionalSpec{.name = "FILE", .help = "State file"},
                      PositionalSpec{.name = "TABLE", .help = "Table to print", .required = false}},
      .handler =
          [](const CommandContext& context) {
            context.out << "dump " << context.invocation.positionals.at(0) << '\n';
            if (context.invocation.Has("verbose")) context.err << "verbose\n";
            return 7;
          },
  };
  CommandSpec list{
      .name = "list", .summary = "List tables", .handler = [](const CommandContext&) { return 0; }};
  CommandSpec tables{.name = "tables", .summary = "Table commands", .subcommands = {list}};
  return CommandSpec{
      .name = "prog",
      .summary = "A program for tests",
      .flags = {FlagSpec{.name = "state-path", .value_name = "PATH", .help = "State file"}, OutputFlag()},
      .subcommands = {dump, tables},
  };
}

ParseResult Parse(const CommandSpec& root, std::vector<std::string_view> args) {
  return ParseCommandLine(root, args);
}

// Fails the test (showing the parser's message) unless the command line parsed.
const Invocation& Parsed(const ParseResult& result) {
  if (const auto* error = std::get_if<UsageError>(&result))
    FAIL("unexpected usage error: " << error->message);
  return std::get<Invocation>(result);
}

// Fails the test unless the command line was refused; returns the message.
std::string ErrorOf(const ParseResult& result) {
  if (std::holds_alternative<Invocation>(result)) FAIL("parsed, but a usage error was expected");
  return std::get<UsageError>(result).message;
}

struct Captured {
  int exit_code;
  std::string out;
  std::string err;
};

Captured Run(const CommandSpec& root, std::vector<std::string_view> args) {
  std::ostringstream out, err;
  const int exit_code = RunCommandLine(root, args, out, err);
  return {exit_code, out.str(), err.str()};
}

TEST_CASE("a flag's value is taken from the next word or after '='") {
  const CommandSpec root = TestProgram();
  for (const auto& args : {std::vector<std::string_view>{"--state-path", "/tmp/s.redb", "dump", "f"},
                           std::vector<std::string_view>{"--state-path=/tmp/s.redb", "dump", "f"}}) {
    const ParseResult result = Parse(root, args);
    const Invocation& invocation = Parsed(result);
    CHECK(invocation.action == Invocation::Action::kRun);
    CHECK(invocation.command().name == "dump");
    CHECK(invocation.Get("state-path") == "/tmp/s.redb");
  }
}

TEST_CASE("a value after '=' may contain '=' and start with dashes") {
  const CommandSpec root = TestProgram();
  const ParseResult result = Parse(root, {"--state-path=--odd=name", "dump", "f"});
  CHECK(Parsed(result).Get("state-path") == "--odd=name");
}

TEST_CASE("a flag given twice keeps its last value") {
  const CommandSpec root = TestProgram();
  const ParseResult result = Parse(root, {"--output", "json", "dump", "f", "--output=table"});
  CHECK(Parsed(result).Get("output") == "table");
}

TEST_CASE("a parent's flags are accepted after a subcommand, a subcommand's flags not before it") {
  const CommandSpec root = TestProgram();
  const ParseResult after = Parse(root, {"dump", "f", "--state-path", "p", "--limit", "3", "--verbose"});
  const Invocation& invocation = Parsed(after);
  CHECK(invocation.Get("state-path") == "p");
  CHECK(invocation.Get("limit") == "3");
  CHECK(invocation.Has("verbose"));
  CHECK(invocation.Get("verbose") == "");
  CHECK_FALSE(invocation.Has("output"));
  CHECK(invocation.Get("output") == std::nullopt);

  CHECK(ErrorOf(Parse(root, {"--limit", "3", "dump", "f"})) == "unknown flag '--limit' for 'prog'");
}

TEST_CASE("an unknown flag is refused, naming the flag and the command") {
  const CommandSpec root = TestProgram();
  CHECK(ErrorOf(Parse(root, {"dump", "f", "--frobnicate"})) == "unknown flag '--frobnicate' for 'prog dump'");
  CHECK(ErrorOf(Parse(root, {"--frobnicate=1", "dump"})) == "unknown flag '--frobnicate' for 'prog'");
  CHECK(ErrorOf(Parse(root, {"-x"})) == "unknown flag '-x'");
  const UsageError error = std::get<UsageError>(Parse(root, {"tables", "--nope"}));
  CHECK(ChainName(error.chain) == "prog tables");
}

TEST_CASE("a flag without its value is refused") {
  const CommandSpec root = TestProgram();
  CHECK(ErrorOf(Parse(root, {"dump", "f", "--limit"})) == "flag '--limit' needs a value (N)");
  CHECK(ErrorOf(Parse(root, {"--state-path", "--output", "json"})) ==
        "flag '--state-path' needs a value (PATH)");
  CHECK(ErrorOf(Parse(root, {"--state-path="})) == "flag '--state-path' needs a value (PATH)");
}

TEST_CASE("a switch given a value is refused") {
  const CommandSpec root = TestProgram();
  CHECK(ErrorOf(Parse(root, {"dump", "f", "--verbose=yes"})) == "flag '--verbose' takes no value");
  CHECK(ErrorOf(Parse(root, {"--help=1"})) == "flag '--help' takes no value");
}

TEST_CASE("a flag with choices refuses any other value") {
  const CommandSpec root = TestProgram();
  CHECK(ErrorOf(Parse(root, {"--output", "xml"})) ==
        "invalid value 'xml' for flag '--output' (expected table or json)");
  CHECK(Parsed(Parse(root, {"--output", "json", "tables", "list"})).Get("output") == "json");
}

TEST_CASE("commands: unknown ones are named, a missing one is reported") {
  const CommandSpec root = TestProgram();
  CHECK(ErrorOf(Parse(root, {"frobnicate"})) == "unknown command 'frobnicate'");
  CHECK(ErrorOf(Parse(root, {"tables", "drop"})) == "unknown command 'drop'");
  CHECK(ErrorOf(Parse(root, {})) == "no command given");
  CHECK(ErrorOf(Parse(root, {"tables"})) == "no command given");
  CHECK(Parsed(Parse(root, {"tables", "list"})).command().name == "list");
}

TEST_CASE("positional arguments: required, optional, too many, and after '--'") {
  const CommandSpec root = TestProgram();
  CHECK(ErrorOf(Parse(root, {"dump"})) == "missing argument FILE");
  CHECK(Parsed(Parse(root, {"dump", "f"})).positionals == std::vector<std::string>{"f"});
  CHECK(Parsed(Parse(root, {"dump", "f", "t"})).positionals == std::vector<std::string>{"f", "t"});
  CHECK(ErrorOf(Parse(root, {"dump", "f", "t", "extra"})) == "unexpected argument 'extra'");
  CHECK(Parsed(Parse(root, {"dump", "--", "--verbose"})).positionals ==
        std::vector<std::string>{"--verbose"});
  CHECK(Parsed(Parse(root, {"dump", "-"})).positionals == std::vector<std::string>{"-"});
}

TEST_CASE("--help, -h and the help command ask for the help of the command reached") {
  const CommandSpec root = TestProgram();
  for (const auto& args :
       {std::vector<std::string_view>{"dump", "--help", "--bad-flag"},
        std::vector<std::string_view>{"dump", "-h"}, std::vector<std::string_view>{"help", "dump"}}) {
    const ParseResult result = Parse(root, args);
    const Invocation& invocation = Parsed(result);
    CHECK(invocation.action == Invocation::Action::kHelp);
    CHECK(ChainName(invocation.chain) == "prog dump");
  }
  CHECK(ChainName(Parsed(Parse(root, {"help", "tables", "list"})).chain) == "prog tables list");
  CHECK(ChainName(Parsed(Parse(root, {"help"})).chain) == "prog");
  CHECK(ErrorOf(Parse(root, {"help", "nope"})) == "unknown command 'nope'");
  CHECK(Parsed(Parse(root, {"dump", "--version"})).action == Invocation::Action::kVersion);
}

TEST_CASE("root help lists commands and options, and nothing of the subcommands") {
  const CommandSpec root = TestProgram();
  const std::string help = FormatHelp({&root});
  CHECK(help.starts_with("A program for tests\n\nUsage: prog [OPTIONS] COMMAND\n"));
  CHECK(help.find("\nCommands:\n  dump FILE [TABLE]  Print a table\n") != std::string::npos);
  CHECK(help.find("  help [COMMAND]     Show help for prog or one of its commands\n") != std::string::npos);
  CHECK(help.find("  --state-path PATH    State file\n") != std::string::npos);
  CHECK(help.find("  --output table|json  Output format") != std::string::npos);
  CHECK(help.find("  -h, --help           Show this help\n") != std::string::npos);
  CHECK(help.find("  --version            Show the version\n") != std::string::npos);
  CHECK(help.find("--limit") == std::string::npos);
  CHECK(help.find("Global options") == std::string::npos);
}

TEST_CASE("a subcommand's help shows its arguments, its options and the global options") {
  const CommandSpec root = TestProgram();
  const std::string help = FormatHelp({&root, &root.subcommands[0]});
  CHECK(help.starts_with("Print a table\n\nUsage: prog dump [OPTIONS] FILE [TABLE]\n"));
  CHECK(help.find("\nArguments:\n  FILE   State file\n  TABLE  Table to print\n") != std::string::npos);
  CHECK(help.find("\nOptions:\n  --limit N   At most N rows\n  --verbose   Say more\n") != std::string::npos);
  CHECK(help.find("\nGlobal options:\n  --state-path PATH    State file\n") != std::string::npos);
  CHECK(help.find("help [COMMAND]") == std::string::npos);
  CHECK(help.find("--version") == std::string::npos);
}

TEST_CASE("RunCommandLine: usage errors go to stderr with exit code 2 and a pointer to --help") {
  const CommandSpec root = TestProgram();
  const Captured run = Run(root, {"dump", "f", "--frobnicate"});
  CHECK(run.exit_code == kExitUsage);
  CHECK(run.out.empty());
  CHECK(run.err == "prog: unknown flag '--frobnicate' for 'prog dump'\nRun 'prog dump --help' for usage.\n");
}

TEST_CASE("RunCommandLine: help and version go to stdout with exit code 0") {
  const CommandSpec root = TestProgram();
  const Captured help = Run(root, {"tables", "--help"});
  CHECK(help.exit_code == kExitOk);
  CHECK(help.out == FormatHelp({&root, &root.subcommands[1]}));
  CHECK(help.err.empty());

  const Captured version = Run(root, {"--version"});
  CHECK(version.exit_code == kExitOk);
  CHECK(version.out == "prog " + std::string(kVersion) + "\n");

  const Captured json = Run(root, {"--output", "json", "--version"});
  CHECK(json.out == "{\"program\":\"prog\",\"version\":\"" + std::string(kVersion) + "\"}\n");
}

TEST_CASE("RunCommandLine: a command's handler gets the invocation and decides the exit code") {
  const CommandSpec root = TestProgram();
  const Captured run = Run(root, {"dump", "state.redb", "--verbose"});
  CHECK(run.exit_code == 7);
  CHECK(run.out == "dump state.redb\n");
  CHECK(run.err == "verbose\n");
}

}  // namespace
}  // namespace rocky::cli
