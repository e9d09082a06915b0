#include "rocky/base/temp_file.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace rocky::base {

std::string TempNextTo(const std::string& path, const char* tag) {
  static std::atomic<uint64_t> counter{0};
  return path + "." + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

Unlinker::~Unlinker() {
  if (!path.empty()) ::unlink(path.c_str());
}

}  // namespace rocky::base
