// The real file system: Env and File on top of POSIX system calls.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "env/lock_table.h"
#include "env/posix_file.h"
#include "rocky/engine/env.h"
#include "rocky/engine/status.h"

namespace rocky::engine {
namespace {

static_assert(sizeof(off_t) == 8, "rocky needs a 64-bit off_t (build with _FILE_OFFSET_BITS=64)");
constexpr uint64_t kMaxOffset = INT64_MAX;

// Linux transfers at most 0x7ffff000 bytes per call anyway; asking for less keeps every count well inside
// ssize_t.
constexpr size_t kMaxIoChunk = size_t{1} << 30;

// strerror() is not thread-safe. strerror_r has a GNU flavour (returns char*) and an XSI one (returns int and
// fills the buffer); overloading on the return type accepts whichever the C library declares.
[[maybe_unused]] std::string StrerrorResult(int rc, const char* buf, int err) {
  return rc == 0 ? std::string(buf) : "errno " + std::to_string(err);
}
[[maybe_unused]] std::string StrerrorResult(const char* msg, const char* /*buf*/, int /*err*/) {
  return std::string(msg);
}

std::string ErrnoText(int err) {
  char buf[256] = {};
  return StrerrorResult(strerror_r(err, buf, sizeof(buf)), buf, err);
}

// "<path>: <operation>: <strerror>". A missing file is kNotFound and a full disk (or quota) kNoSpace, because
// callers act on those; everything else is kIOError.
Status ErrnoStatus(std::string_view path, std::string_view operation, int err) {
  std::string msg(path);
  msg += ": ";
  msg += operation;
  msg += ": ";
  msg += ErrnoText(err);
  switch (err) {
    case ENOENT: return Status::NotFound(std::move(msg));
    case ENOSPC:
    case EDQUOT: return Status::NoSpace(std::move(msg));
    default: return Status::IOError(std::move(msg));
  }
}

std::string AtOffset(std::string_view what, uint64_t n, uint64_t offset) {
  return std::string(what) + " " + std::to_string(n) + " bytes at offset " + std::to_string(offset);
}

// The kernel rejects ranges whose end does not fit in off_t (EINVAL); saying why is kinder.
Status CheckRange(std::string_view path, std::string_view what, uint64_t offset, uint64_t n) {
  if (offset > kMaxOffset || n > kMaxOffset - offset) {
    return Status::InvalidArgument(std::string(path) + ": " + AtOffset(what, n, offset) +
                                   ": range beyond the largest file offset");
  }
  return Status::OK();
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path, bool read_only)
      : fd_(fd), path_(std::move(path)), read_only_(read_only) {}

  // Closing the descriptor releases this process's record locks on the file; errors from close() cannot be
  // acted on here (and on Linux the descriptor is gone even on EINTR, so it must not be retried).
  ~PosixFile() override { ::close(fd_); }

  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  int fd() const { return fd_; }

  Status Read(uint64_t offset, size_t n, char* dst, size_t* bytes_read) override {
    *bytes_read = 0;
    ROCKY_RETURN_IF_ERROR(CheckRange(path_, "read", offset, n));
    size_t done = 0;
    while (done < n) {
      const size_t chunk = std::min(n - done, kMaxIoChunk);
      const ssize_t r = ::pread(fd_, dst + done, chunk, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        *bytes_read = done;
        return ErrnoStatus(path_, AtOffset("read", n, offset), err);
      }
      if (r == 0) break;  // end of file
      done += static_cast<size_t>(r);
    }
    *bytes_read = done;
    return Status::OK();
  }

  Status Write(uint64_t offset, std::string_view data) override {
    if (read_only_) return ReadOnlyError("write");
    ROCKY_RETURN_IF_ERROR(CheckRange(path_, "write", offset, data.size()));
    size_t done = 0;
    while (done < data.size()) {
      const size_t chunk = std::min(data.size() - done, kMaxIoChunk);
      const ssize_t r = ::pwrite(fd_, data.data() + done, chunk, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        const int err = errno;  // read before building the message, which may allocate and clobber it
        return ErrnoStatus(path_, AtOffset("write", data.size(), offset), err);
      }
      // pwrite on a regular file reports a full disk as ENOSPC, never as 0; looping on 0 could spin forever.
      if (r == 0)
        return Status::IOError(path_ + ": " + AtOffset("write", data.size(), offset) + ": wrote nothing");
      done += static_cast<size_t>(r);
    }
    return Status::OK();
  }

  Status Sync() override {
    while (::fdatasync(fd_) != 0) {
      if (errno != EINTR) return ErrnoStatus(path_, "fdatasync", errno);
    }
    return Status::OK();
  }

  Status Truncate(uint64_t size) override {
    if (read_only_) return ReadOnlyError("truncate");
    if (size > kMaxOffset) {
      return Status::InvalidArgument(path_ + ": truncate to " + std::to_string(size) +
                                     " bytes: beyond the largest file offset");
    }
    while (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      const int err = errno;
      if (err != EINTR) return ErrnoStatus(path_, "truncate to " + std::to_string(size) + " bytes", err);
    }
    return Status::OK();
  }

  Result<uint64_t> Size() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return ErrnoStatus(path_, "fstat", errno);
    return static_cast<uint64_t>(st.st_size);
  }

  // Classic POSIX record locks rather than OFD locks, because only they make F_GETLK report the holder's pid,
  // which turns "database is locked" into "locked by process 1234". The price is POSIX's per-process
  // semantics: locks are not exclusive between File objects of one process, and closing any descriptor of the
  // file drops all of the process's locks on it; the engine avoids both by opening a file once per process
  // and never closing a descriptor of a file another handle of the process holds (db/open_registry.h).
  Status TryLock(LockKind kind, uint64_t start, uint64_t length) override {
    ROCKY_RETURN_IF_ERROR(env_internal::CheckLockAllowed(path_, read_only_, kind));
    ROCKY_RETURN_IF_ERROR(CheckRange(path_, "lock", start, length));
    struct flock want = MakeFlock(kind == LockKind::kShared ? F_RDLCK : F_WRLCK, start, length);
    // Bounded: between a refused F_SETLK and the F_GETLK that names the holder, the holder may let go.
    for (int attempt = 0; attempt < 100; ++attempt) {
      struct flock fl = want;
      if (::fcntl(fd_, F_SETLK, &fl) == 0) return Status::OK();
      if (errno == EINTR) continue;
      if (errno != EACCES && errno != EAGAIN) return ErrnoStatus(path_, "lock", errno);
      struct flock probe = want;
      if (::fcntl(fd_, F_GETLK, &probe) != 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(path_, "query lock", errno);
      }
      if (probe.l_type != F_UNLCK) return BusyError(probe.l_pid);
    }
    return Status::Busy(path_ + " is locked by another process (it keeps changing hands)");
  }

  Status Unlock(uint64_t start, uint64_t length) override {
    ROCKY_RETURN_IF_ERROR(CheckRange(path_, "unlock", start, length));
    struct flock fl = MakeFlock(F_UNLCK, start, length);
    while (::fcntl(fd_, F_SETLK, &fl) != 0) {
      if (errno != EINTR) return ErrnoStatus(path_, "unlock", errno);
    }
    return Status::OK();
  }

  // F_GETLK never reports the calling process's own locks, which is exactly "by others".
  Result<bool> IsLockedByOthers(uint64_t start, uint64_t length) override {
    ROCKY_RETURN_IF_ERROR(CheckRange(path_, "query lock", start, length));
    struct flock fl = MakeFlock(F_WRLCK, start, length);
    while (::fcntl(fd_, F_GETLK, &fl) != 0) {
      if (errno != EINTR) return ErrnoStatus(path_, "query lock", errno);
    }
    return fl.l_type != F_UNLCK;
  }

 private:
  static struct flock MakeFlock(short type, uint64_t start, uint64_t length) {
    struct flock fl {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = static_cast<off_t>(start);
    fl.l_len = static_cast<off_t>(length);  // 0: to the end of any possible file
    return fl;
  }

  Status BusyError(pid_t pid) const {
    std::string msg = path_ + " is locked by process " + std::to_string(pid);
    // F_GETLK reports -1 for an OFD lock and 0 for a holder in another PID namespace.
    if (pid <= 0) msg += " (an OFD lock or a process in another PID namespace)";
    return Status::Busy(std::move(msg));
  }

  // The kernel would say EBADF; naming the cause is clearer.
  Status ReadOnlyError(std::string_view operation) const {
    return Status::IOError(path_ + ": " + std::string(operation) + ": file is open read-only");
  }

  const int fd_;
  const std::string path_;
  const bool read_only_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<File>> OpenFile(const std::string& path, const FileOpenOptions& options) override {
    int flags = O_CLOEXEC | (options.read_only ? O_RDONLY : O_RDWR);
    if (options.create) flags |= O_CREAT;
    if (options.create && options.exclusive) flags |= O_EXCL;
    int fd;
    do {
      fd = ::open(path.c_str(), flags, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return ErrnoStatus(path, "open", errno);
    // A directory opens fine read-only and only fails at the first read; refuse it up front.
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoStatus(path, "fstat", err);
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      return ErrnoStatus(path, "open", EISDIR);
    }
    return std::unique_ptr<File>(std::make_unique<PosixFile>(fd, path, options.read_only));
  }

  Result<bool> FileExists(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return ErrnoStatus(path, "stat", errno);
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus(path, "unlink", errno);
    return Status::OK();
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      const int err = errno;
      return ErrnoStatus(from, "rename to " + to, err);
    }
    return Status::OK();
  }

  Result<bool> LinkFile(const std::string& from, const std::string& to) override {
    if (::link(from.c_str(), to.c_str()) == 0) return true;
    int err = errno;
    if (err == EEXIST) return false;
    // File systems without hard links (FAT, some network and FUSE ones) say so with one of these: fall back
    // to a rename that refuses to replace, which is as safe for publishing (only the temporary name is lost).
    if (err == EPERM || err == ENOTSUP || err == EOPNOTSUPP || err == ENOSYS || err == EMLINK) {
      if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
      const int rename_err = errno;
      if (rename_err == EEXIST) return false;
      return ErrnoStatus(
          from, "link to " + to + " (" + ErrnoText(err) + "), then rename without replacing to " + to,
          rename_err);
    }
    return ErrnoStatus(from, "link to " + to, err);
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    const std::string& name = dir.empty() ? kCurrentDir : dir;
    DIR* d = ::opendir(name.c_str());
    if (d == nullptr) return ErrnoStatus(name, "open directory", errno);
    std::vector<std::string> out;
    for (;;) {
      errno = 0;
      const struct dirent* e = ::readdir(d);
      if (e == nullptr) {
        const int err = errno;
        ::closedir(d);
        if (err != 0) return ErrnoStatus(name, "read directory", err);
        return out;
      }
      const std::string_view entry(e->d_name);
      if (entry != "." && entry != "..") out.emplace_back(entry);
    }
  }

  Status SyncDir(const std::string& dir) override {
    const std::string& name = dir.empty() ? kCurrentDir : dir;
    int fd;
    do {
      fd = ::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return ErrnoStatus(name, "open directory", errno);
    Status s;
    while (::fsync(fd) != 0) {
      if (errno != EINTR) {
        s = ErrnoStatus(name, "fsync directory", errno);
        break;
      }
    }
    ::close(fd);
    return s;
  }

  Status CreateDirs(const std::string& dir) override {
    if (dir.empty()) return Status::OK();  // the current directory, as for SyncDir
    // Each prefix ending before a '/' (and the whole path) is one level, created parent first.
    for (size_t end = 1; end <= dir.size(); ++end) {
      if (end < dir.size() && dir[end] != '/') continue;
      if (dir[end - 1] == '/') continue;  // "a//b" or a trailing slash: that level was done already
      const std::string level = dir.substr(0, end);
      ROCKY_RETURN_IF_ERROR(MakeDir(level));
    }
    return Status::OK();
  }

  Result<std::string> FileIdentity(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(path, "stat", errno);
    return std::to_string(static_cast<uint64_t>(st.st_dev)) + ":" +
           std::to_string(static_cast<uint64_t>(st.st_ino));
  }

 private:
  static inline const std::string kCurrentDir = ".";

  // OK when `level` is (or concurrently becomes) a directory.
  static Status MakeDir(const std::string& level) {
    struct stat st {};
    if (::stat(level.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return Status::OK();
      return ErrnoStatus(level, "mkdir", ENOTDIR);
    }
    if (::mkdir(level.c_str(), 0700) == 0) return Status::OK();
    const int err = errno;
    if (err == EEXIST && ::stat(level.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::OK();
    return ErrnoStatus(level, "mkdir", err);
  }
};

}  // namespace

int PosixFileDescriptor(File* file) {
  const auto* posix = dynamic_cast<const PosixFile*>(file);
  return posix == nullptr ? -1 : posix->fd();
}

Env* Env::Default() {
  // Leaked on purpose: a function-local static would be destroyed at exit while detached threads or other
  // static destructors may still be using it.
  static Env* const env = new PosixEnv();
  return env;
}

}  // namespace rocky::engine
