// One HTTP(S) request over libcurl (OpenSSL): what the S3 client (and the credential providers) send. Bodies
// go from memory or stream from a file range, and responses into memory or stream into a file, so an object
// of any size moves with bounded memory.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rocky/base/status.h"

namespace rocky::sync {

using base::Result;
using base::Status;

struct TransportOptions {
  // How long establishing the connection (TCP + TLS) may take.
  std::chrono::seconds connect_timeout{10};
  // A transfer that moves fewer than low_speed_bytes per second for low_speed_time is stalled and aborted:
  // a dead peer must not hang a run forever, yet a slow large transfer has no total deadline.
  std::chrono::seconds low_speed_time{30};
  long low_speed_bytes = 1;
  // Certificate and host-name verification; only a test against a self-signed server may turn it off.
  bool verify_tls = true;
  // A PEM bundle of trusted CAs; empty: AWS_CA_BUNDLE when set, else the system's store.
  std::string ca_bundle;
  // When set, the whole request (connect included) must finish by then: the lifecycle's per-transfer
  // wall-clock budget. A request started after it fails at once.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // Whether a stop request (Ctrl-C, SIGTERM: transfer_stop.h) aborts the request. Only the lease's renewals
  // and release turn it off: they must go out while a stopping command winds down, within their own deadline.
  bool stoppable = true;
  // When set, the request is aborted (within about a second) once it turns true: how the lease's renewal
  // thread is stopped mid-request when its command ends. Not owned; must outlive the request.
  const std::atomic<bool>* cancel = nullptr;
};

struct HttpCall {
  std::string method;  // GET, PUT, POST, HEAD, DELETE
  std::string url;     // scheme://host[:port]/path?query, already encoded
  std::vector<std::pair<std::string, std::string>> headers;  // sent as given (Host included)
  // The body, from memory unless upload_path is set, in which case upload_length bytes from upload_offset of
  // that file are streamed.
  std::string body;
  std::string upload_path;
  uint64_t upload_offset = 0;
  uint64_t upload_length = 0;
  // When set, a 2xx response body is written to this file (created 0600, or truncated); other bodies (S3
  // error XML) stay in memory so they can be reported.
  std::string download_path;
};

struct HttpResponse {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, values trimmed
  std::string body;                                          // empty when streamed to download_path
  uint64_t body_bytes = 0;

  // The first header of that (lowercase) name.
  std::optional<std::string> Header(std::string_view lowercase_name) const;
};

// Sends one request. A response of any status (404, 503...) is a Response; only a failure to get one is a
// Status, naming the method and host, never the URL's query nor any header (they may carry signatures or
// tokens): kTimedOut when the deadline passed or the transfer stalled (low_speed_time), kIOError for the rest
// (name resolution, connection refused or reset, TLS, a local file error).
Result<HttpResponse> SendHttp(const HttpCall& call, const TransportOptions& options);

// libcurl's curl_global_init, once per process (it is not thread-safe and must run before any handle exists):
// the one flag for every libcurl user here (this transport and the credential providers' requests).
// Thread-safe.
void CurlGlobalInit();

// "host[:port]" of a URL, for messages.
std::string UrlHost(std::string_view url);

}  // namespace rocky::sync
