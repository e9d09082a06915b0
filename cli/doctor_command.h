// `rocky doctor`: checks that a project can run, each check with a status (healthy, warning, critical), a
// message that says what was found, and suggestions for what to fix. Output in the shape of the reference
// schema doctor.schema.json; exit 1 when any check is critical.
//
//   config        rocky.toml loads and validates (critical when it does not; a warning when there is none)
//   state_file    the local state file opens and passes the engine's integrity check
//   state_schema  the file's state-schema version is one this build supports
//   state_rw      a probe object written, read back and deleted on the configured backend (both legs for
//                 tiered), bounded by transfer_timeout_seconds and without retries; for "local", the same
//                 with a probe file beside the state file
#pragma once

#include "args.h"

namespace rocky::cli {

CommandSpec DoctorCommand();

}  // namespace rocky::cli
