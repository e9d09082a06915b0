// rocky: the command-line front of the state-management system. Global options are declared here so every
// command added under the root accepts them.
#include "app.h"
#include "doctor_command.h"
#include "output.h"
#include "replication_commands.h"
#include "state_commands.h"
#include "stop_signals.h"

namespace {

rocky::cli::CommandSpec RockyCommand() {
  using rocky::cli::FlagSpec;
  return rocky::cli::CommandSpec{
      .name = "rocky",
      .summary = "State management for incremental warehouse replication",
      .description =
          "rocky copies warehouse tables incrementally: each run copies only the rows newer than the\n"
          "table's watermark, kept in a crash-safe single-file state database. Start with `rocky init`.",
      .flags = {FlagSpec{.name = "config", .value_name = "PATH", .help = "Configuration file"},
                FlagSpec{.name = "state-path", .value_name = "PATH", .help = "State file (a rocky database)"},
                FlagSpec{
                    .name = "events",
                    .value_name = "FILE",
                    .help = "Append remote-state transfer events (JSON lines) to FILE instead of stderr"},
                rocky::cli::OutputFlag()},
      .subcommands = {rocky::cli::InitCommand(), rocky::cli::PlanCommand(), rocky::cli::ApplyCommand(),
                      rocky::cli::RunCommand(), rocky::cli::StateCommand(), rocky::cli::DoctorCommand()},
  };
}

}  // namespace

int main(int argc, char** argv) {
  // First, so that a Ctrl-C or SIGTERM at any instant from here on ends in exit 130 / 143 (stop_signals.h).
  rocky::cli::InstallStopHandlers();
  static const rocky::cli::CommandSpec root = RockyCommand();
  const int exit_code = rocky::cli::RunMain(root, argc, argv);
  // A command that was asked to stop says so in its exit code, even one that had just finished its work.
  if (rocky::cli::StopSignalReceived() != 0) return rocky::cli::ExitCodeForStop();
  return exit_code;
}
