// fuzz_s3_error: arbitrary bytes as an S3/STS error response body. ParseS3Error must never crash, hang, leak
// or throw, and what it returns must be safe to log: bounded, printable, and classified consistently.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "rocky/sync/s3_error.h"

using namespace rocky::sync;

namespace {

void Require(bool ok, const char* what) {
  if (!ok) {
    __builtin_trap();
  }
  (void)what;
}

bool PrintableAscii(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7F) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  // The first two bytes pick the status, so every classification branch is reachable.
  int status = size >= 2 ? 100 + (data[0] * 256 + data[1]) % 500 : 500;
  S3Error e = ParseS3Error(status, body, size >= 3 ? body.substr(2, 40) : std::string_view());
  Require(e.http_status == status, "status kept");
  Require(!e.code.empty() && e.code.size() <= 64, "code non-empty, bounded");
  Require(e.message.size() <= 512, "message bounded");
  Require(e.request_id.size() <= 128 && e.host_id.size() <= 256, "ids bounded");
  Require(PrintableAscii(e.code) && PrintableAscii(e.message) && PrintableAscii(e.request_id) &&
              PrintableAscii(e.host_id),
          "printable");
  Require(e.kind == ClassifyS3ErrorKind(status, e.code), "kind matches the rule");
  Require(e.error_class == ClassOf(e.kind), "class matches the kind");
  std::string line = e.ToString();
  Require(PrintableAscii(line), "ToString printable");
  Require(!e.ToStatus().ok(), "an error is never OK");
  return 0;
}
