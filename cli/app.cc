#include "app.h"

#include <iostream>
#include <ostream>
#include <variant>

#include "output.h"
#include "version.h"

namespace rocky::cli {
namespace {

void PrintVersion(const Invocation& invocation, std::ostream& out) {
  const std::string& program = invocation.chain.front()->name;
  if (OutputFormatOf(invocation) == OutputFormat::kJson) {
    JsonWriter json;
    json.BeginObject().Key("program").String(program).Key("version").String(kVersion).EndObject();
    out << json.str() << '\n';
    return;
  }
  out << program << ' ' << kVersion << '\n';
}

}  // namespace

int RunCommandLine(const CommandSpec& root, const std::vector<std::string_view>& args, std::ostream& out,
                   std::ostream& err) {
  ParseResult parsed = ParseCommandLine(root, args);
  if (const auto* error = std::get_if<UsageError>(&parsed)) {
    err << root.name << ": " << error->message << "\nRun '" << ChainName(error->chain)
        << " --help' for usage.\n";
    return kExitUsage;
  }
  const Invocation& invocation = std::get<Invocation>(parsed);
  switch (invocation.action) {
    case Invocation::Action::kHelp: out << FormatHelp(invocation.chain); return kExitOk;
    case Invocation::Action::kVersion: PrintVersion(invocation, out); return kExitOk;
    case Invocation::Action::kRun: break;
  }
  // ParseCommandLine only returns kRun for a command that has a handler.
  return invocation.command().handler(CommandContext{invocation, out, err});
}

int RunMain(const CommandSpec& root, int argc, char** argv) {
  std::vector<std::string_view> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  const int exit_code = RunCommandLine(root, args, std::cout, std::cerr);
  std::cout.flush();
  if (!std::cout) {
    // A closed pipe or a full disk: the output is incomplete, which a script must be able to notice.
    std::cerr << root.name << ": error writing output\n";
    return exit_code == kExitOk ? kExitFailure : exit_code;
  }
  return exit_code;
}

}  // namespace rocky::cli
