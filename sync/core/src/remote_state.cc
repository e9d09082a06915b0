#include "rocky/sync/remote_state.h"

#include <openssl/rand.h>

#include <chrono>
#include <random>

#include "rocky/sync/state_lease.h"

namespace rocky::sync {

Result<std::unique_ptr<LeaseStore>> RemoteStateBackend::OpenLease() {
  return Status::NotSupported("the " + std::string(Kind()) + " backend " + Location() + " keeps no lease");
}

bool IsTransient(const Status& status) {
  return status.code() == Status::Code::kIOError || status.code() == Status::Code::kTimedOut;
}

std::string NewUploadToken() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    // OpenSSL's generator failing is not expected; a seeded engine still makes tokens differ per upload.
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
