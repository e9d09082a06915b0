// The whole life of a command line, shared by both programs' main(): parse, then print help, the version or a
// usage error, or run the command's handler.
#pragma once

#include <iosfwd>
#include <string_view>
#include <vector>

#include "args.h"

namespace rocky::cli {

// Returns the process exit code: the handler's, 0 after help or the version, kExitUsage after a usage error
// (printed to err with a pointer to --help). Help and the version go to out; --output json turns the version
// into {"program":..., "version":...}. `args` excludes the program name.
int RunCommandLine(const CommandSpec& root, const std::vector<std::string_view>& args, std::ostream& out,
                   std::ostream& err);

// RunCommandLine on main()'s arguments with std::cout and std::cerr. An exception that escapes a handler (or
// any thread: std::terminate) is the last resort's: one line on stderr ("<program>: internal error: ...")
// and exit 1, never abort()'s 134.
int RunMain(const CommandSpec& root, int argc, char** argv);

}  // namespace rocky::cli
