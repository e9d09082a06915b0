// Temporary files beside the file they stand in for: downloads and imports are written to one, checked, then
// renamed over the target (same folder, so same filesystem, so the rename is atomic).
#pragma once

#include <string>
#include <utility>

namespace rocky::base {

// A path next to `path` no other call in any process returns: "<path>.<tag>-<pid>-<counter>". Thread-safe.
// Creates nothing; the caller creates the file (0600, O_EXCL).
std::string TempNextTo(const std::string& path, const char* tag);

// Removes `path` when the scope ends, whatever happened (a file renamed away in between is simply not there:
// the unlink's ENOENT is ignored). Clear `path` to keep the file.
struct Unlinker {
  std::string path;
  Unlinker() = default;
  explicit Unlinker(std::string p) : path(std::move(p)) {}
  ~Unlinker();
  Unlinker(const Unlinker&) = delete;
  Unlinker& operator=(const Unlinker&) = delete;
};

}  // namespace rocky::base
