// How the S3 library's HTTP requests behave (timeouts, TLS verification, stopping, proxies, size): part of
// S3Config (s3_client.h), and what the credential providers' requests set. The transport that applies them
// (http_transport.h, the only libcurl user) is internal to the S3 library.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace rocky::sync {

struct TransportOptions {
  // How long establishing the connection (TCP + TLS) may take.
  std::chrono::milliseconds connect_timeout{10'000};
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
  // Whether the usual proxy variables (https_proxy, ...) apply. The credential providers turn it off for
  // link-local metadata services, which a proxy can never reach.
  bool use_proxy = true;
  // A response body kept in memory (not streamed to a file) above this many bytes fails the request with
  // kIOError: a misbehaving endpoint must not make us buffer without bound. 0: no limit (S3's in-memory
  // bodies are error documents and callers' own small objects, which GetSmallObject bounds itself).
  uint64_t max_memory_body = 0;
};

}  // namespace rocky::sync
