// Shared by the sync tests, whatever library they link: a temporary folder and file helpers.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "temp_dir.h"

namespace rocky_sync_test {

using TempDir = rocky_test::TempDir;  // tests/support/temp_dir.h

inline std::string SourceRoot() {
  const char* root = std::getenv("ROCKY_SOURCE_ROOT");
  REQUIRE_MESSAGE(root != nullptr,
                  "ROCKY_SOURCE_ROOT is not set (run the tests through meson or scripts/test)");
  return root;
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  REQUIRE(out.good());
}

}  // namespace rocky_sync_test
