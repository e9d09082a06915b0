// A whole file's bytes read or written in one call, for tests that build, damage or compare files.
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace rocky_test {

// The file's bytes; empty when it cannot be read (tests then fail on what they expected in it).
inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Replaces the file's contents with `bytes` (created if missing), failing the test when the write fails.
inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  REQUIRE(out.good());
}

}  // namespace rocky_test
