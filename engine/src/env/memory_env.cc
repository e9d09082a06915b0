// NewMemoryEnv(): a private in-memory file system for tests and fuzzing.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "env/lock_table.h"
#include "rocky/engine/env.h"
#include "rocky/engine/status.h"

namespace rocky::engine {
namespace {

// One file's contents: the inode. Shared by every File opened on it and by the Env's name table, so a removed
// or renamed file stays readable through Files already open on it, as on POSIX.
struct Node {
  explicit Node(uint64_t node_id) : id(node_id) {}

  const uint64_t id;  // for FileIdentity: env_internal::NextFileId()
  std::mutex mu;      // guards data and locks
  std::string data;
  env_internal::RangeLocks locks;
};

class MemoryFile final : public File {
 public:
  MemoryFile(std::shared_ptr<Node> node, std::string path, bool read_only)
      : node_(std::move(node)), path_(std::move(path)), read_only_(read_only) {}

  // Releases this File's locks, as closing a descriptor would.
  ~MemoryFile() override {
    std::lock_guard<std::mutex> lock(node_->mu);
    node_->locks.ReleaseAll(pid_);
  }

  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  Status Read(uint64_t offset, size_t n, char* dst, size_t* bytes_read) override {
    std::lock_guard<std::mutex> lock(node_->mu);
    *bytes_read = env_internal::ReadImage(node_->data, offset, n, dst);
    return Status::OK();
  }

  Status Write(uint64_t offset, std::string_view data) override {
    if (read_only_) return ReadOnlyError("write");
    std::lock_guard<std::mutex> lock(node_->mu);
    return env_internal::WriteImage(node_->data, offset, data, path_);
  }

  // Memory is as durable as this file system gets.
  Status Sync() override { return Status::OK(); }

  Status Truncate(uint64_t size) override {
    if (read_only_) return ReadOnlyError("truncate");
    std::lock_guard<std::mutex> lock(node_->mu);
    return env_internal::ResizeImage(node_->data, size, path_);
  }

  Result<uint64_t> Size() override {
    std::lock_guard<std::mutex> lock(node_->mu);
    return static_cast<uint64_t>(node_->data.size());
  }

  Status TryLock(LockKind kind, uint64_t start, uint64_t length) override {
    ROCKY_RETURN_IF_ERROR(env_internal::CheckLockAllowed(path_, read_only_, kind));
    std::lock_guard<std::mutex> lock(node_->mu);
    return node_->locks.TryLock(path_, pid_, kind, start, length);
  }

  Status Unlock(uint64_t start, uint64_t length) override {
    std::lock_guard<std::mutex> lock(node_->mu);
    node_->locks.Unlock(pid_, start, length);
    return Status::OK();
  }

  Result<bool> IsLockedByOthers(uint64_t start, uint64_t length) override {
    std::lock_guard<std::mutex> lock(node_->mu);
    return node_->locks.LockedByOthers(pid_, start, length);
  }

 private:
  Status ReadOnlyError(std::string_view operation) const {
    return Status::IOError(path_ + ": " + std::string(operation) + ": file is open read-only");
  }

  const std::shared_ptr<Node> node_;
  const std::string path_;  // as opened; names the file in errors even after a rename
  const bool read_only_;
  // Each File object acts as its own process for locking, so two Files of one file exclude each other.
  const uint64_t pid_ = env_internal::NextFakePid();
};

// Directories are not modelled: any path names a file, a path's directory is what precedes its last '/'
// (ListDir lists the files there), CreateDirs and SyncDir succeed and do nothing, and RenameFile and LinkFile
// are atomic by construction.
class MemoryEnv final : public Env {
 public:
  Result<std::unique_ptr<File>> OpenFile(const std::string& path, const FileOpenOptions& options) override {
    std::shared_ptr<Node> node;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = files_.find(path);
      if (it != files_.end()) {
        if (options.create && options.exclusive) return Status::IOError(path + ": open: File exists");
        node = it->second;
      } else if (options.create) {
        node = std::make_shared<Node>(env_internal::NextFileId());
        files_.emplace(path, node);
      } else {
        return Status::NotFound(path + ": open: no such file");
      }
    }
    return std::unique_ptr<File>(std::make_unique<MemoryFile>(std::move(node), path, options.read_only));
  }

  Result<bool> FileExists(const std::string& path) override {
    std::lock_guard<std::mutex> lock(mu_);
    return files_.contains(path);
  }

  Status RemoveFile(const std::string& path) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (files_.erase(path) == 0) return Status::NotFound(path + ": remove: no such file");
    return Status::OK();
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(from);
    if (it == files_.end()) return Status::NotFound(from + ": rename to " + to + ": no such file");
    if (from == to) return Status::OK();
    std::shared_ptr<Node> node = std::move(it->second);
    files_.erase(it);
    files_[to] = std::move(node);
    return Status::OK();
  }

  Result<bool> LinkFile(const std::string& from, const std::string& to) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(from);
    if (it == files_.end()) return Status::NotFound(from + ": link to " + to + ": no such file");
    if (files_.contains(to)) return false;
    files_.emplace(to, it->second);
    return true;
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    const std::string want = env_internal::NormalDir(dir);
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& [path, node] : files_) {
      if (env_internal::ParentDir(path) == want) out.push_back(env_internal::BaseName(path));
    }
    return out;
  }

  Status SyncDir(const std::string& /*dir*/) override { return Status::OK(); }
  Status CreateDirs(const std::string& /*dir*/) override { return Status::OK(); }

  Result<std::string> FileIdentity(const std::string& path) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(path);
    if (it == files_.end()) return Status::NotFound(path + ": identity: no such file");
    return "mem:" + std::to_string(it->second->id);
  }

 private:
  std::mutex mu_;  // guards files_ (the name table); each Node guards its own contents
  std::map<std::string, std::shared_ptr<Node>> files_;
};

}  // namespace

std::unique_ptr<Env> NewMemoryEnv() { return std::make_unique<MemoryEnv>(); }

}  // namespace rocky::engine
