// rocky-inspect: reads a state file without the rest of rocky (no configuration, no remote state) and never
// writes to it, so it is safe to point at the file of a running or crashed replication.
#include "app.h"
#include "output.h"

namespace {

// Each dump command is one entry of `subcommands`, with a handler that opens the file read-only.
rocky::cli::CommandSpec InspectCommand() {
  return rocky::cli::CommandSpec{
      .name = "rocky-inspect",
      .summary = "Offline dumper of a state file; never modifies it",
      .description = "rocky-inspect: offline dumper of a state file; never modifies it.",
      .flags = {rocky::cli::OutputFlag()},
      .subcommands = {},
  };
}

}  // namespace

int main(int argc, char** argv) { return rocky::cli::RunMain(InspectCommand(), argc, argv); }
