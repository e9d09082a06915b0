#include "rocky/base/temp_file.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace rocky::base {

std::string TempNextTo(const std::string& path, const char* tag) {
  static std::atomic<uint64_t> counter{0};
  return path + "." + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

Unlinker::~Unlinker() {
  if (!path.empty()) ::unlink(path.c_str());
}

Result<TempFolder> TempFolder::Create(std::string_view tag) {
  // $TMPDIR as std::filesystem::temp_directory_path() reads it, without its exception on a bad value.
  const char* tmpdir = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/rocky-" +
                     std::string(tag) + "-XXXXXX";
  std::string path = tmpl;
  if (::mkdtemp(path.data()) == nullptr) {  // created 0700; glibc fills in the Xs even when it fails
    return Status::IOError("cannot create a temporary folder from " + tmpl +
                           " ($TMPDIR): " + std::strerror(errno));
  }
  return TempFolder(std::move(path));
}

TempFolder::~TempFolder() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

}  // namespace rocky::base
