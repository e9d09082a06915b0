// Shared by the sync tests, whatever library they link: a temporary folder and file helpers.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "file_bytes.h"
#include "temp_dir.h"

namespace rocky_sync_test {

using TempDir = rocky_test::TempDir;  // tests/support/temp_dir.h

inline std::string SourceRoot() {
  const char* root = std::getenv("ROCKY_SOURCE_ROOT");
  REQUIRE_MESSAGE(root != nullptr,
                  "ROCKY_SOURCE_ROOT is not set (run the tests through meson or scripts/test)");
  return root;
}

using rocky_test::ReadBytes;  // tests/support/file_bytes.h
using rocky_test::WriteBytes;

}  // namespace rocky_sync_test
