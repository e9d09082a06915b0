#include "rocky/sync/transfer_stop.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

namespace rocky::sync {
namespace {

std::atomic<bool> g_requested{false};
// The pipe's ends; -1 until PrepareTransferStop made them. Atomics so the signal handler reads them safely.
std::atomic<int> g_read_fd{-1};
std::atomic<int> g_write_fd{-1};

}  // namespace

void PrepareTransferStop() {
  static std::once_flag once;
  std::call_once(once, [] {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return;
    g_read_fd.store(fds[0]);
    g_write_fd.store(fds[1]);
    if (g_requested.load()) {
      const char byte = 1;
      (void)!::write(fds[1], &byte, 1);
    }
  });
}

void RequestTransferStop() noexcept {
  const int saved_errno = errno;  // a signal handler must leave errno as it found it
  if (!g_requested.exchange(true)) {
    const int fd = g_write_fd.load();
    if (fd >= 0) {
      const char byte = 1;
      (void)!::write(fd, &byte, 1);
    }
  }
  errno = saved_errno;
}

bool TransferStopRequested() noexcept { return g_requested.load(); }

int TransferStopFd() noexcept {
  PrepareTransferStop();
  return g_read_fd.load();
}

bool SleepUnlessStopRequested(std::chrono::milliseconds duration) {
  const auto end = std::chrono::steady_clock::now() + duration;
  const int fd = TransferStopFd();
  for (;;) {
    if (TransferStopRequested()) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return true;
    pollfd p{fd, POLLIN, 0};
    // Without the pipe, wake up every 100 ms to look at the flag.
    const int wait =
        fd >= 0 ? static_cast<int>(left.count()) : static_cast<int>(std::min<long long>(left.count(), 100));
    (void)::poll(fd >= 0 ? &p : nullptr, fd >= 0 ? 1 : 0, wait);  // EINTR: loop and look again
  }
}

void ClearTransferStopForTesting() {
  const int fd = TransferStopFd();
  g_requested.store(false);
  if (fd < 0) return;
  char buffer[64];
  while (::read(fd, buffer, sizeof buffer) > 0) {
  }
}

}  // namespace rocky::sync
