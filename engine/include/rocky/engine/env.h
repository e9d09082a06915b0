// Env: the engine's only door to the operating system.
//
// The engine never calls open/pread/pwrite/fdatasync/fcntl directly; it goes through these classes, so tests
// can run it on an in-memory file system or on one that fails, tears writes and loses power on command
// (see engine/testing/rocky/engine/fault_injection_env.h, a test-only header).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rocky/engine/status.h"

namespace rocky::engine {

enum class LockKind : unsigned char { kShared, kExclusive };

// A random-access file. Offsets are absolute; there is no file position.
// Thread-safe: Read may be called concurrently with Read and Write on other ranges; the engine serialises
// writes itself.
class File {
 public:
  virtual ~File() = default;

  // Reads up to n bytes at offset into dst; *bytes_read < n only at end of file.
  virtual Status Read(uint64_t offset, size_t n, char* dst, size_t* bytes_read) = 0;
  // Writes all of data at offset, extending the file if needed. Fails with kNoSpace on a full disk.
  virtual Status Write(uint64_t offset, std::string_view data) = 0;
  // Makes every completed Write durable (fdatasync: data and the size, not timestamps).
  virtual Status Sync() = 0;
  virtual Status Truncate(uint64_t size) = 0;
  virtual Result<uint64_t> Size() = 0;

  // Advisory byte-range locks, held per File object and released when it is destroyed. The range need not
  // exist in the file. Conflicts return kBusy with a message "locked by process N".
  virtual Status TryLock(LockKind kind, uint64_t start, uint64_t length) = 0;
  virtual Status Unlock(uint64_t start, uint64_t length) = 0;
  // True when another holder (another process, or another File of the same in-memory file) holds any lock in
  // the range that would conflict with an exclusive lock. Locks held through this File are not reported.
  virtual Result<bool> IsLockedByOthers(uint64_t start, uint64_t length) = 0;
};

struct FileOpenOptions {
  bool create = false;     // create when missing (mode 0600)
  bool read_only = false;  // open O_RDONLY; writes fail
  // With `create`: the file must not exist yet (O_EXCL); an existing one fails the open (kIOError "File
  // exists"), so a file made under a fresh temporary name is certainly this caller's.
  bool exclusive = false;
};

// Thread-safe.
class Env {
 public:
  virtual ~Env() = default;

  virtual Result<std::unique_ptr<File>> OpenFile(const std::string& path, const FileOpenOptions& options) = 0;
  virtual Result<bool> FileExists(const std::string& path) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Atomically replaces `to` with `from` (rename(2)).
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Publishes the file at `from` under the name `to` without ever replacing a file there: true when `to` now
  // names it, false (changing nothing) when `to` already exists. link(2) on POSIX, so `from` keeps its name
  // (remove it afterwards); on a file system without hard links, a rename that refuses to replace
  // (renameat2 RENAME_NOREPLACE), after which `from` is gone. Neither name is durable before SyncDir.
  virtual Result<bool> LinkFile(const std::string& from, const std::string& to) = 0;
  // Makes directory entries (creations, links, renames, removals) in `dir` durable. Until then a power loss
  // may undo them.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Names (not paths) of the entries of directory `dir`, without "." and "..", in no particular order.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Creates the directory and its parents (mode 0700); OK when it exists.
  virtual Status CreateDirs(const std::string& dir) = 0;
  // An identity for the file at path that is the same for every open of it (device and inode on POSIX);
  // used to refuse a second open of one file within a process.
  virtual Result<std::string> FileIdentity(const std::string& path) = 0;

  // The real file system. Never destroyed.
  static Env* Default();
};

// An Env that forwards every call to another one: derive from it and override only the calls to change (a
// test that fails one kind of call, or counts them). Thread-safe when `base` is. Does not take ownership;
// requires: `base` outlives it.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* base) : base_(base) {}
  Env* base() const { return base_; }

  Result<std::unique_ptr<File>> OpenFile(const std::string& path, const FileOpenOptions& options) override {
    return base_->OpenFile(path, options);
  }
  Result<bool> FileExists(const std::string& path) override { return base_->FileExists(path); }
  Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  Status RenameFile(const std::string& from, const std::string& to) override {
    return base_->RenameFile(from, to);
  }
  Result<bool> LinkFile(const std::string& from, const std::string& to) override {
    return base_->LinkFile(from, to);
  }
  Status SyncDir(const std::string& dir) override { return base_->SyncDir(dir); }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override { return base_->ListDir(dir); }
  Status CreateDirs(const std::string& dir) override { return base_->CreateDirs(dir); }
  Result<std::string> FileIdentity(const std::string& path) override { return base_->FileIdentity(path); }

 private:
  Env* base_;
};

// A private in-memory file system: files live as long as the Env. For tests and fuzzing. Every change is
// durable at once (Sync and SyncDir have nothing to do). It is the file model of the test-only
// FaultInjectionEnv with that Env's write cache off (engine/src/env/fault_injection_env.cc), so the two
// cannot drift apart.
std::unique_ptr<Env> NewMemoryEnv();

}  // namespace rocky::engine
