// rocky: the command-line front of the state-management system. Global options are declared here so every
// command added under the root accepts them.
#include "app.h"
#include "output.h"
#include "state_commands.h"

namespace {

rocky::cli::CommandSpec RockyCommand() {
  using rocky::cli::FlagSpec;
  return rocky::cli::CommandSpec{
      .name = "rocky",
      .summary = "State management for incremental warehouse replication",
      .description =
          "rocky keeps the state of incremental warehouse replication: the watermarks that let each\n"
          "run copy only what changed, in a crash-safe single-file database.",
      .flags = {FlagSpec{.name = "config", .value_name = "PATH", .help = "Configuration file"},
                FlagSpec{.name = "state-path", .value_name = "PATH", .help = "State file (a rocky database)"},
                rocky::cli::OutputFlag()},
      .subcommands = {rocky::cli::StateCommand()},
  };
}

}  // namespace

int main(int argc, char** argv) { return rocky::cli::RunMain(RockyCommand(), argc, argv); }
