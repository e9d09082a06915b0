// Temporary folders and file helpers for the state tests.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "file_bytes.h"
#include "temp_dir.h"

namespace rocky::state::testing {

using TempDir = rocky_test::TempDir;  // tests/support/temp_dir.h

using rocky_test::ReadBytes;  // tests/support/file_bytes.h
using rocky_test::WriteBytes;

}  // namespace rocky::state::testing
