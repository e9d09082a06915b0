#include "http_transport.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "rocky/base/strings.h"
#include "rocky/dynload/dynload.h"
#include "rocky/sync/transfer_stop.h"

namespace rocky::sync {

using base::Lower;
using base::Trim;

namespace {

// libcurl's curl_global_init, once per process (it is not thread-safe and must run before any handle exists).
// This transport is rocky's only libcurl user, so this is the only flag. Thread-safe.
void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// State shared with curl's callbacks for one request.
struct Transfer {
  CURL* curl = nullptr;
  const HttpCall* call = nullptr;
  const TransportOptions* options = nullptr;
  HttpResponse* response = nullptr;
  // Upload source.
  int upload_fd = -1;
  uint64_t upload_pos = 0;  // bytes of the body sent so far
  uint64_t upload_total = 0;
  // Download sink, opened on the first byte of a 2xx body.
  int download_fd = -1;
  std::string local_error;  // a file error inside a callback, reported instead of curl's "aborted"
  char error_buffer[CURL_ERROR_SIZE] = {};  // curl's reason for a failure (CURLOPT_ERRORBUFFER)
};

size_t ReadBody(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t want = size * nitems;
  uint64_t left = t->upload_total - t->upload_pos;
  if (want > left) want = static_cast<size_t>(left);
  if (want == 0) return 0;
  if (t->upload_fd < 0) {
    std::memcpy(buffer, t->call->body.data() + t->upload_pos, want);
  } else {
    ssize_t r;
    do {
      r = ::pread(t->upload_fd, buffer, want, static_cast<off_t>(t->call->upload_offset + t->upload_pos));
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
      t->local_error =
          "reading " + t->call->upload_path + ": " +
          (r < 0 ? std::string(std::strerror(errno)) : std::string("file shorter than expected"));
      return CURL_READFUNC_ABORT;
    }
    want = static_cast<size_t>(r);
  }
  t->upload_pos += want;
  return want;
}

// Rewinds the body when curl must send it again (a redirect or an authentication round).
int SeekBody(void* userdata, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(userdata);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > t->upload_total) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t->upload_pos = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

size_t WriteBody(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  t->response->body_bytes += n;
  if (t->call->download_path.empty() || status < 200 || status > 299) {
    const uint64_t limit = t->options->max_memory_body;
    if (limit != 0 && t->response->body.size() + n > limit) {
      t->local_error = "response larger than " + std::to_string(limit) + " bytes";
      return 0;  // aborts the transfer
    }
    t->response->body.append(data, n);
    return n;
  }
  if (t->download_fd < 0) {
    t->download_fd = ::open(t->call->download_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (t->download_fd < 0) {
      t->local_error = "creating " + t->call->download_path + ": " + std::strerror(errno);
      return 0;
    }
  }
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::write(t->download_fd, data + done, n - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      t->local_error = "writing " + t->call->download_path + ": " + std::strerror(errno);
      return 0;
    }
    done += static_cast<size_t>(w);
  }
  return n;
}

size_t WriteHeader(char* data, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t n = size * nitems;
  std::string_view line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->response->headers.clear();  // a new response (after 100 Continue or a redirect) starts over
    return n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->response->headers.emplace_back(Lower(Trim(line.substr(0, colon))),
                                      std::string(Trim(line.substr(colon + 1))));
  }
  return n;
}

// curl calls this at least once a second while a request waits (and often while bytes move): a stop request
// (Ctrl-C, SIGTERM) aborts the request there, so it never waits out its whole budget.
// `data` points at the request's TransportOptions (stoppable, cancel).
int OnProgress(void* data, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* options = static_cast<const TransportOptions*>(data);
  if (options->stoppable && TransferStopRequested()) return 1;
  return options->cancel != nullptr && options->cancel->load() ? 1 : 0;
}

}  // namespace

std::optional<std::string> HttpResponse::Header(std::string_view lowercase_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lowercase_name) return value;
  }
  return std::nullopt;
}

std::string UrlHost(std::string_view url) {
  size_t start = url.find("://");
  start = start == std::string_view::npos ? 0 : start + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string_view host =
      url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  size_t at = host.rfind('@');  // never echo userinfo
  if (at != std::string_view::npos) host.remove_prefix(at + 1);
  return std::string(host);
}

namespace {

using CurlHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using CurlHeaders = std::unique_ptr<struct curl_slist, decltype(&curl_slist_free_all)>;

bool HasBody(const HttpCall& call) { return call.method == "PUT" || call.method == "POST"; }

// Opens the file a PUT or POST streams its body from (or sizes the in-memory body).
Status OpenUploadSource(const HttpCall& call, Transfer& t, const std::string& where) {
  if (!HasBody(call)) return Status::OK();
  if (call.upload_path.empty()) {
    t.upload_total = call.body.size();
    return Status::OK();
  }
  t.upload_fd = ::open(call.upload_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (t.upload_fd < 0) {
    return Status::IOError(where + ": opening " + call.upload_path + ": " + std::strerror(errno));
  }
  t.upload_total = call.upload_length;
  return Status::OK();
}

// What every request sets whatever its method: the URL and the protocols allowed, timeouts (kTimedOut when
// the deadline has already passed), TLS verification, proxies, no redirects, and the callbacks.
Status SetCommonOptions(CURL* h, const HttpCall& call, const TransportOptions& options, Transfer& t,
                        const std::string& where) {
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t.error_buffer);
  curl_easy_setopt(h, CURLOPT_URL, call.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM, safe in threads
  if (!options.use_proxy) curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  long connect_ms = static_cast<long>(options.connect_timeout.count());
  if (options.deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*options.deadline -
                                                                      std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return Status::TimedOut(where + ": the transfer's time budget ran out before it began");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(left.count()));
    connect_ms = std::min(connect_ms, static_cast<long>(left.count()));
  }
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.low_speed_time.count()));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, options.low_speed_bytes);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, options.verify_tls ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, options.verify_tls ? 2L : 0L);
  std::string ca_bundle = options.ca_bundle;
  if (ca_bundle.empty()) {
    const char* env = std::getenv("AWS_CA_BUNDLE");
    if (env != nullptr) ca_bundle = env;
  }
  // libcurl copies string options, so ca_bundle need not outlive this call.
  if (!ca_bundle.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca_bundle.c_str());
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect would need a new signature
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &WriteHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, const_cast<TransportOptions*>(&options));
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  return Status::OK();
}

// The method, and for PUT and POST the body's source (ReadBody, rewindable with SeekBody).
void SetMethod(CURL* h, const HttpCall& call, Transfer& t) {
  if (call.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (HasBody(call)) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(t.upload_total));
    curl_easy_setopt(h, CURLOPT_READFUNCTION, &ReadBody);
    curl_easy_setopt(h, CURLOPT_READDATA, &t);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, &SeekBody);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &t);
    if (call.method != "PUT") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  } else if (call.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  }
}

// The caller's headers as given, and none of curl's own that would not be signed.
CurlHeaders HeaderList(const HttpCall& call) {
  struct curl_slist* list = nullptr;
  bool has_content_type = false;
  for (const auto& [name, value] : call.headers) {
    std::string line = name + ": " + value;
    list = curl_slist_append(list, line.c_str());
    if (Lower(name) == "content-type") has_content_type = true;
  }
  // No "Expect: 100-continue" round trip: the body is signed and sent anyway, and some servers mishandle it.
  list = curl_slist_append(list, "Expect:");
  // curl would add a Content-Type to a POST; it would not be signed, and S3 does not need it. (STS's form
  // POST sends its own.)
  if (!has_content_type) list = curl_slist_append(list, "Content-Type:");
  return CurlHeaders(list, &curl_slist_free_all);
}

// Why curl_easy_perform returned `rc`: a file error inside a callback first, then a stop request or a
// cancel, then curl's own reason (kTimedOut for its timeouts).
Status PerformError(CURLcode rc, const Transfer& t, const TransportOptions& options,
                    const std::string& where) {
  if (!t.local_error.empty()) return Status::IOError(where + ": " + t.local_error);
  if (rc == CURLE_ABORTED_BY_CALLBACK) {
    return Status::IOError(where + (options.cancel != nullptr && options.cancel->load()
                                        ? ": canceled"
                                        : ": interrupted (Ctrl-C or SIGTERM)"));
  }
  std::string detail = t.error_buffer[0] != '\0' ? std::string(t.error_buffer) : curl_easy_strerror(rc);
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Status::TimedOut(where + " timed out: " + detail + " (curl error " +
                            std::to_string(static_cast<int>(rc)) + ")");
  }
  return Status::IOError(where + " failed: " + detail + " (curl error " +
                         std::to_string(static_cast<int>(rc)) + ")");
}

// After a response arrived: a body shorter than its Content-Length is a network failure, the downloaded
// file is synced, and an empty 2xx body still yields the (empty) file the caller asked for.
Status FinishResponse(const HttpCall& call, Transfer& t, const HttpResponse& response,
                      const std::string& where) {
  // curl accepts a connection closed before the promised Content-Length in some cases (a cut inside the
  // headers, for one). A short body is a network failure, worth retrying, never a complete (and then
  // "corrupt") object.
  if (call.method != "HEAD") {
    if (auto length = response.Header("content-length")) {
      char* end = nullptr;
      const unsigned long long promised = std::strtoull(length->c_str(), &end, 10);
      if (end != length->c_str() && *end == '\0' && promised != response.body_bytes) {
        return Status::IOError(where + ": the response was cut short (" +
                               std::to_string(response.body_bytes) + " of " + std::to_string(promised) +
                               " bytes)");
      }
    }
  }
  if (t.download_fd >= 0) {
    if (::fsync(t.download_fd) != 0) {
      return Status::IOError(where + ": syncing " + call.download_path + ": " + std::strerror(errno));
    }
  } else if (!call.download_path.empty() && response.status >= 200 && response.status <= 299) {
    t.download_fd = ::open(call.download_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (t.download_fd < 0) {
      return Status::IOError(where + ": creating " + call.download_path + ": " + std::strerror(errno));
    }
  }
  return Status::OK();
}

}  // namespace

Result<HttpResponse> SendHttp(const HttpCall& call, const TransportOptions& options) {
  const std::string where = call.method + " to " + UrlHost(call.url);
  if (Status loaded = dynload::Require(dynload::Library::kCurl); !loaded.ok())
    return loaded.WithContext(where);
  CurlGlobalInit();
  CurlHandle curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Status::IOError(where + ": could not create a curl handle");
  HttpResponse response;
  Transfer t;
  t.curl = curl.get();
  t.call = &call;
  t.options = &options;
  t.response = &response;
  struct Closer {
    Transfer* t;
    ~Closer() {
      if (t->upload_fd >= 0) ::close(t->upload_fd);
      if (t->download_fd >= 0) ::close(t->download_fd);
    }
  } closer{&t};

  ROCKY_RETURN_IF_ERROR(OpenUploadSource(call, t, where));
  ROCKY_RETURN_IF_ERROR(SetCommonOptions(curl.get(), call, options, t, where));
  SetMethod(curl.get(), call, t);
  CurlHeaders headers = HeaderList(call);
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());

  if (options.stoppable && TransferStopRequested())
    return Status::IOError(where + ": interrupted (Ctrl-C or SIGTERM) before it began");
  if (options.cancel != nullptr && options.cancel->load()) return Status::IOError(where + ": canceled");
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK || !t.local_error.empty()) return PerformError(rc, t, options, where);
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response.status);
  ROCKY_RETURN_IF_ERROR(FinishResponse(call, t, response, where));
  return response;
}

}  // namespace rocky::sync
