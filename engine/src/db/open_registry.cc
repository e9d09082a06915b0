#include "db/open_registry.h"

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "env/posix_file.h"

namespace rocky::engine {

namespace {

struct Registry {
  std::mutex mu;
  // Held file -> descriptors of it opened since and kept open until it is released (see the header).
  std::map<std::string, std::vector<std::unique_ptr<File>>> held;
  // Files whose identity could not be read: whether this process holds them is unknown, so never closed.
  std::vector<std::unique_ptr<File>> unidentified;
};

Registry& Reg() {
  static auto* reg = new Registry();  // never destroyed: databases may close during exit
  return *reg;
}

std::string PosixKey(uint64_t dev, uint64_t ino) {
  return "posix|" + std::to_string(dev) + ":" + std::to_string(ino);
}

std::string EnvKey(const Env* env, const std::string& identity) {
  return std::to_string(reinterpret_cast<uintptr_t>(env)) + "|" + identity;
}

// The key of a file before opening it, from its path; empty when the path names no file (yet).
std::string KeyOfPath(Env* env, const std::string& path) {
  if (env == Env::Default()) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "";
    return PosixKey(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
  }
  Result<std::string> identity = env->FileIdentity(path);
  return identity.ok() ? EnvKey(env, identity.value()) : "";
}

// The key of an open file: of the descriptor itself when there is one, so that a file replaced at `path`
// after the open cannot be mistaken for another.
Result<std::string> KeyOfFile(Env* env, const std::string& path, File* file) {
  const int fd = PosixFileDescriptor(file);
  if (fd >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Status::IOError(path + ": fstat failed");
    return PosixKey(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
  }
  ROCKY_ASSIGN_OR_RETURN(std::string identity, env->FileIdentity(path));
  return EnvKey(env, identity);
}

Status AlreadyOpen(const std::string& path) {
  return Status::Busy(path + " is already open in this process");
}

Result<std::unique_ptr<File>> Open(Env* env, const std::string& path, const FileOpenOptions& options,
                                   std::string* key) {
  ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env->OpenFile(path, options));
  Result<std::string> k = KeyOfFile(env, path, file.get());
  if (!k.ok()) {
    Registry& reg = Reg();
    std::lock_guard lock(reg.mu);
    reg.unidentified.push_back(std::move(file));
    return k.status();
  }
  *key = std::move(k).value();
  return file;
}

}  // namespace

Result<std::unique_ptr<File>> OpenRegistry::OpenAndAcquire(Env* env, const std::string& path,
                                                           const FileOpenOptions& options, std::string* key) {
  key->clear();
  Registry& reg = Reg();
  // The usual refusal: the path names a file this process holds. No descriptor is opened at all.
  const std::string before = KeyOfPath(env, path);
  if (!before.empty()) {
    std::lock_guard lock(reg.mu);
    if (reg.held.count(before) != 0) return AlreadyOpen(path);
  }
  std::string k;
  ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<File> file, Open(env, path, options, &k));
  std::lock_guard lock(reg.mu);
  auto [it, inserted] = reg.held.try_emplace(k);
  if (!inserted) {
    // The file appeared at `path` after the check above. Closing this descriptor would drop the holder's
    // locks: keep it until the holder releases the file.
    it->second.push_back(std::move(file));
    return AlreadyOpen(path);
  }
  *key = std::move(k);
  return file;
}

Result<std::unique_ptr<File>> OpenRegistry::OpenUnregistered(Env* env, const std::string& path,
                                                             const FileOpenOptions& options,
                                                             std::string* key) {
  return Open(env, path, options, key);
}

void OpenRegistry::Dispose(const std::string& key, std::unique_ptr<File> file) {
  Registry& reg = Reg();
  std::lock_guard lock(reg.mu);
  auto it = reg.held.find(key);
  if (it != reg.held.end()) {
    it->second.push_back(std::move(file));
    return;
  }
  file.reset();  // under the mutex: no Database can register (and then lock) the file meanwhile
}

void OpenRegistry::Release(const std::string& key) {
  Registry& reg = Reg();
  std::lock_guard lock(reg.mu);
  auto it = reg.held.find(key);
  if (it == reg.held.end()) return;
  it->second.clear();  // the holder's descriptor is closed already, and its locks with it
  reg.held.erase(it);
}

}  // namespace rocky::engine
