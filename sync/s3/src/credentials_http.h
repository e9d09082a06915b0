// The small HTTP requests of the credential providers (STS, container and instance metadata endpoints) over
// libcurl: bounded in time and size, TLS verified, no redirects. Separate from the S3 transport because these
// bodies are tiny and their failures must read as "which credential source failed", never show a URL's query.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "rocky/base/status.h"

namespace rocky::sync::credentials_http {

struct Request {
  std::string method;  // GET, PUT, POST
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds total_timeout{5000};
  std::string ca_bundle;  // AWS_CA_BUNDLE; empty: the system's store
  bool use_proxy = true;  // false for link-local metadata services, which a proxy can never reach
};

struct Response {
  long status = 0;
  std::string body;
};

// Bodies above this are refused: credential documents are a few KiB, and a misbehaving endpoint must not make
// us buffer without bound.
constexpr size_t kMaxBody = 1 << 20;

// kIOError naming the host (never the path or query) and curl's reason when no response arrives.
base::Result<Response> Send(const Request& request);

// "host:port" of a URL, for messages.
std::string HostOf(const std::string& url);

}  // namespace rocky::sync::credentials_http
