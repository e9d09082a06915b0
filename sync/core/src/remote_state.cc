#include "rocky/sync/remote_state.h"

#include <sys/random.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <random>

#include "rocky/sync/state_lease.h"

namespace rocky::sync {

Result<std::unique_ptr<LeaseStore>> RemoteStateBackend::OpenLease() {
  return Status::NotSupported("the " + std::string(Kind()) + " backend " + Location() + " keeps no lease");
}

bool IsTransient(const Status& status) {
  return status.code() == Status::Code::kIOError || status.code() == Status::Code::kTimedOut;
}

namespace {

// The kernel's generator (getrandom(2), the source OpenSSL's RAND_bytes seeds from): the lifecycle links no
// TLS library. False when it fails, which is not expected once the kernel's pool is initialized.
bool KernelRandom(unsigned char* out, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::getrandom(out + done, size - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string NewUploadToken() {
  unsigned char raw[16];
  if (!KernelRandom(raw, sizeof raw)) {
    // The kernel's generator failing is not expected; a seeded engine still makes tokens differ per upload.
    static std::mt19937_64 fallback(
        std::random_device{}() ^
        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
    for (unsigned char& c : raw) c = static_cast<unsigned char>(fallback());
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

}  // namespace rocky::sync
