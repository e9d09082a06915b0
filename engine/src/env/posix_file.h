// Access to the descriptor behind a File of the POSIX Env, for the engine's own use (the page map).
#pragma once

#include "rocky/engine/env.h"

namespace rocky::engine {

// The file descriptor of a File that Env::Default() opened, or -1 for any other File (memory, fault
// injection, or a user's Env), whose reads must go through File::Read. The descriptor stays owned by file.
int PosixFileDescriptor(File* file);

}  // namespace rocky::engine
