#include "db/open_registry.h"

#include <cstdint>
#include <mutex>
#include <set>

namespace rocky::engine {

namespace {

std::mutex& Mu() {
  static std::mutex mu;
  return mu;
}

std::set<std::string>& Held() {
  static auto* held = new std::set<std::string>();  // never destroyed: databases may close during exit
  return *held;
}

}  // namespace

std::string OpenRegistry::Key(const Env* env, const std::string& file_identity) {
  return std::to_string(reinterpret_cast<uintptr_t>(env)) + "|" + file_identity;
}

bool OpenRegistry::Acquire(const std::string& key) {
  std::lock_guard lock(Mu());
  return Held().insert(key).second;
}

void OpenRegistry::Release(const std::string& key) {
  std::lock_guard lock(Mu());
  Held().erase(key);
}

}  // namespace rocky::engine
