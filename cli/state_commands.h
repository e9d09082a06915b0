// `rocky state` and its subcommands: show, set, delete, history, export, import. They read and write the
// state file through the state library (cli -> state -> engine) and never touch the engine directly.
#pragma once

#include "args.h"

namespace rocky::cli {

// The `state` command tree, to add under the `rocky` root. Its handlers read the root's global flags
// --state-path and --output.
CommandSpec StateCommand();

}  // namespace rocky::cli
