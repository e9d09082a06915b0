// Helpers of the in-memory file system (fault_injection_env.cc: FaultInjectionEnv and NewMemoryEnv):
// emulated advisory byte-range locks, reads and writes of a file image held in a std::string, and path names.
//
// The real Env uses POSIX record locks, which are held per process. The in-memory Envs have no processes, so
// each File object plays one: it gets a fake pid, and its locks conflict with those of every other File of
// the same file, with the same "locked by process N" message. Within one owner the POSIX rules apply: a new
// lock replaces the owner's locks on the overlapping bytes (so shared can be upgraded to exclusive), and an
// unlock may split a range.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rocky/engine/env.h"
#include "rocky/engine/status.h"

namespace rocky::engine::env_internal {

// A fake pid for a new File object. Process-wide so that no two File objects ever share one, even across
// Envs; it starts high so that a message cannot be mistaken for one naming a real low-numbered process.
inline uint64_t NextFakePid() {
  static std::atomic<uint64_t> next{1'000'000};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// A number for a new in-memory file, for Env::FileIdentity. Process-wide rather than per Env: the engine may
// keep one process-wide registry of open identities, and files of two different Envs must never collide there
// (which also rules out using the path).
inline uint64_t NextFileId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// POSIX fcntl refuses a write lock on a descriptor not open for writing (EBADF); the emulation refuses it
// too, so a test on a memory Env catches the engine exclusively locking a read-only file.
inline Status CheckLockAllowed(std::string_view path, bool read_only, LockKind kind) {
  if (read_only && kind == LockKind::kExclusive) {
    return Status::IOError(std::string(path) + ": exclusive lock on a file opened read-only");
  }
  return Status::OK();
}

// The locks of one file. Not thread-safe: the owning Env guards it with the mutex that guards the file.
class RangeLocks {
 public:
  // Takes (or converts) `owner`'s lock on the range, or returns kBusy naming the first conflicting owner.
  // A length of 0 means "to the end of any possible file", as l_len = 0 does for fcntl.
  Status TryLock(std::string_view path, uint64_t owner, LockKind kind, uint64_t start, uint64_t length) {
    const uint64_t end = End(start, length);
    for (const Lock& l : locks_) {
      if (l.owner != owner && Overlaps(l, start, end) &&
          (kind == LockKind::kExclusive || l.kind == LockKind::kExclusive)) {
        return Status::Busy(std::string(path) + " is locked by process " + std::to_string(l.owner));
      }
    }
    Remove(owner, start, end);
    locks_.push_back({owner, start, end, kind});
    return Status::OK();
  }

  // Releases `owner`'s locks on the range; unlocking bytes that are not locked is not an error (as in POSIX).
  void Unlock(uint64_t owner, uint64_t start, uint64_t length) { Remove(owner, start, End(start, length)); }

  // True when an owner other than `owner` holds any lock on the range (any lock conflicts with exclusive).
  bool LockedByOthers(uint64_t owner, uint64_t start, uint64_t length) const {
    const uint64_t end = End(start, length);
    for (const Lock& l : locks_) {
      if (l.owner != owner && Overlaps(l, start, end)) return true;
    }
    return false;
  }

  // Called when the File object goes away, which releases its locks as closing the descriptor would.
  void ReleaseAll(uint64_t owner) {
    std::erase_if(locks_, [owner](const Lock& l) { return l.owner == owner; });
  }

 private:
  // [begin, end); end == UINT64_MAX stands for "unbounded".
  struct Lock {
    uint64_t owner;
    uint64_t begin;
    uint64_t end;
    LockKind kind;
  };

  static uint64_t End(uint64_t start, uint64_t length) {
    if (length == 0 || length > UINT64_MAX - start) return UINT64_MAX;
    return start + length;
  }
  static bool Overlaps(const Lock& l, uint64_t begin, uint64_t end) { return l.begin < end && begin < l.end; }

  // Cuts [begin, end) out of `owner`'s locks, keeping the pieces on either side.
  void Remove(uint64_t owner, uint64_t begin, uint64_t end) {
    std::vector<Lock> kept;
    kept.reserve(locks_.size() + 1);
    for (const Lock& l : locks_) {
      if (l.owner != owner || !Overlaps(l, begin, end)) {
        kept.push_back(l);
        continue;
      }
      if (l.begin < begin) kept.push_back({l.owner, l.begin, begin, l.kind});
      if (end < l.end) kept.push_back({l.owner, end, l.end, l.kind});
    }
    locks_ = std::move(kept);
  }

  std::vector<Lock> locks_;
};

// --- File images ---

// Resizes an in-memory file. A size the process cannot hold is reported as a full disk (kNoSpace) rather than
// as an exception, which must not escape the engine.
inline Status ResizeImage(std::string& image, uint64_t size, std::string_view path) {
  if (size > image.max_size()) {
    return Status::NoSpace(std::string(path) + ": size " + std::to_string(size) +
                           " exceeds the in-memory limit");
  }
  try {
    image.resize(static_cast<size_t>(size));
  } catch (const std::bad_alloc&) {
    return Status::NoSpace(std::string(path) + ": out of memory growing to " + std::to_string(size) +
                           " bytes");
  } catch (const std::length_error&) {
    return Status::NoSpace(std::string(path) + ": size " + std::to_string(size) +
                           " exceeds the in-memory limit");
  }
  return Status::OK();
}

// pwrite semantics: a write past the end extends the file and zero-fills the gap; an empty write changes
// nothing, not even the size.
inline Status WriteImage(std::string& image, uint64_t offset, std::string_view data, std::string_view path) {
  if (data.empty()) return Status::OK();
  if (data.size() > UINT64_MAX - offset) {
    return Status::InvalidArgument(std::string(path) + ": write at offset " + std::to_string(offset) +
                                   " overflows the file size");
  }
  const uint64_t end = offset + data.size();
  if (end > image.size()) ROCKY_RETURN_IF_ERROR(ResizeImage(image, end, path));
  std::memcpy(image.data() + offset, data.data(), data.size());
  return Status::OK();
}

// --- Names ---

// The directory part of a path as the in-memory Envs see it (they have no real directories: a path's
// directory is everything before its last '/'): "/a/b" -> "/a", "/b" -> "/", "b" -> ".".
inline std::string ParentDir(std::string_view path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

// The last component: "/a/b" -> "b".
inline std::string BaseName(std::string_view path) {
  const size_t slash = path.find_last_of('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// The same directory for SyncDir and ListDir arguments: "" and "." alike, and without a trailing '/'.
inline std::string NormalDir(std::string_view dir) {
  if (dir.empty()) return ".";
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  return std::string(dir);
}

// pread semantics: returns the number of bytes copied, short only at the end of the file.
inline size_t ReadImage(const std::string& image, uint64_t offset, size_t n, char* dst) {
  if (offset >= image.size()) return 0;
  const size_t count = static_cast<size_t>(std::min<uint64_t>(n, image.size() - offset));
  std::memcpy(dst, image.data() + offset, count);
  return count;
}

}  // namespace rocky::engine::env_internal
