// `rocky plan`, `rocky apply`, `rocky run` and `rocky init`: replication from the warehouse's source tables
// to their targets, driven by rocky.toml and the state file (cli -> replication -> warehouse, state).
#pragma once

#include "args.h"

namespace rocky::cli {

// Each reads the root's global flags --config, --state-path and --output.
CommandSpec PlanCommand();
CommandSpec ApplyCommand();
CommandSpec RunCommand();
CommandSpec InitCommand();

}  // namespace rocky::cli
