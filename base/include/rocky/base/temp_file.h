// Temporary files beside the file they stand in for: downloads and imports are written to one, checked, then
// renamed over the target (same folder, so same filesystem, so the rename is atomic). And temporary folders
// for what is only looked at (a remote state fetched to show or check it).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "rocky/base/status.h"

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

// A private folder (mode 0700, a name no other process can take) under $TMPDIR, or /tmp when $TMPDIR is unset
// or empty, removed with everything in it when the object goes away. Move-only.
class TempFolder {
 public:
  // Makes "<dir>/rocky-<tag>-XXXXXX" (mkdtemp). kIOError "cannot create a temporary folder from <template>
  // ($TMPDIR): <the system's error>" when it cannot.
  static Result<TempFolder> Create(std::string_view tag);

  TempFolder(TempFolder&& other) noexcept : path_(std::exchange(other.path_, std::string())) {}
  TempFolder& operator=(TempFolder&&) = delete;
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  ~TempFolder();

  const std::string& path() const { return path_; }

 private:
  explicit TempFolder(std::string path) : path_(std::move(path)) {}

  std::string path_;  // empty once moved from
};

}  // namespace rocky::base
