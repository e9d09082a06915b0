// The engine's error type is the base library's Status and Result (rocky/base/status.h), the one error type
// of every layer. This header keeps the engine's own spelling, engine::Status, working inside the engine and
// for code written against it; new code outside the engine includes rocky/base/status.h.
#pragma once

#include "rocky/base/status.h"

namespace rocky::engine {

using base::CodeName;
using base::Result;
using base::Status;

}  // namespace rocky::engine
