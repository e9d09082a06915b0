#include "app.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
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

namespace {

// A copy, so the handler never reads a CommandSpec that is gone (it may run during static destruction).
char g_program_name[64] = "rocky";

// The last resort for an exception nothing caught (one escaping a thread or a noexcept function ends here
// too): one line naming it, and exit 1 rather than abort()'s 134 and core dump. Errors are values across
// module boundaries, so reaching this is a bug; the line says so.
[[noreturn]] void OnTerminate() {
  const char* what = "an unknown exception";
  std::string text;
  if (std::exception_ptr current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const std::exception& e) {
      text = e.what();
      what = text.c_str();
    } catch (...) {
    }
  }
  std::cerr << g_program_name << ": internal error: " << what
            << " (a bug: please report it with the command line; the state file is as the last completed "
               "commit left it)"
            << std::endl;
  std::_Exit(kExitFailure);
}

}  // namespace

int RunMain(const CommandSpec& root, int argc, char** argv) {
  std::snprintf(g_program_name, sizeof g_program_name, "%s", root.name.c_str());
  std::set_terminate(OnTerminate);
  std::vector<std::string_view> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  int exit_code = kExitFailure;
  try {
    exit_code = RunCommandLine(root, args, std::cout, std::cerr);
  } catch (...) {
    OnTerminate();  // prints the exception current here
  }
  std::cout.flush();
  if (!std::cout) {
    // A closed pipe or a full disk: the output is incomplete, which a script must be able to notice.
    std::cerr << root.name << ": error writing output\n";
    return exit_code == kExitOk ? kExitFailure : exit_code;
  }
  return exit_code;
}

}  // namespace rocky::cli
