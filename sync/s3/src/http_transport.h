// One HTTP(S) request over libcurl (OpenSSL): what the S3 client and the credential providers (STS, container
// and instance metadata) send; the only libcurl wrapper in rocky. Bodies
// go from memory or stream from a file range, and responses into memory or stream into a file, so an object
// of any size moves with bounded memory.
// Private to the S3 library: S3Client (s3_client.h) and the credential providers (credentials.h) are its
// public face; TransportOptions (transport_options.h) is public because S3Config carries it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rocky/base/status.h"
#include "rocky/sync/transport_options.h"

namespace rocky::sync {

using base::Result;
using base::Status;

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
// (name resolution, connection refused or reset, TLS, a local file error, an in-memory body above
// options.max_memory_body). Only http:// and https:// URLs; redirects are never followed.
Result<HttpResponse> SendHttp(const HttpCall& call, const TransportOptions& options);

// "host[:port]" of a URL, for messages.
std::string UrlHost(std::string_view url);

}  // namespace rocky::sync
