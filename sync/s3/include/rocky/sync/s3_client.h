// The S3 client of the remote state: object PUT (multipart above a threshold) / GET / HEAD / DELETE, signed
// with SigV4 and sent over libcurl (both internal to the S3 library); and UploadState / DownloadState, the
// two calls the sync lifecycle uses, which move a verified envelope (state_envelope.h) of the state under
// `<prefix>state.redb`.
//
// Errors are Status values whose code says what the caller may do:
//   kBusy             a conditional write lost: another run wrote the state in between (never retry blindly)
//   kInvalidArgument  authentication or permission refused (wrong secret, expired token): retrying won't help
//   kNotFound         no such object (or bucket)
//   kCorruption       a downloaded object failed verification (the local state is untouched)
//   kIOError          network, timeout, or a server-side (5xx) failure: may be retried
// Messages carry S3's error code, message and request id, never a secret.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rocky/base/status.h"
#include "rocky/sync/credentials.h"
#include "rocky/sync/remote_state.h"
#include "rocky/sync/transport_options.h"

namespace rocky::sync {

using base::Result;
using base::Status;

// The HTTP transport's request and response (http_transport.h), internal to the S3 library: named here only
// by S3Client's private members.
struct HttpCall;
struct HttpResponse;

// Where the state lives and how to reach it.
struct S3Config {
  std::string bucket;
  std::string prefix = "rocky/state/";  // the object key is prefix + "state.redb"
  std::string region;                   // required (SigV4 signs it)
  // Empty: AWS, virtual-hosted style (https://<bucket>.s3.<region>.amazonaws.com/<key>). Otherwise a custom
  // endpoint ("http://127.0.0.1:9000", "https://minio.local"), path style (<endpoint>/<bucket>/<key>), which
  // MinIO, Ceph, R2 and friends accept whatever the bucket's name.
  std::string endpoint;
  // Objects larger than this go up in parts, so one failed request does not restart a huge upload and no
  // single request exceeds S3's 5 GiB PUT limit.
  uint64_t multipart_threshold = uint64_t{64} << 20;
  // Size of each part but the last (S3 wants at least 5 MiB; 10,000 parts at most).
  uint64_t part_size = uint64_t{16} << 20;
  TransportOptions transport;
};

// Fills what the configuration left empty from the environment as the AWS SDKs do: the endpoint from
// AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL; the region from AWS_REGION, then AWS_DEFAULT_REGION. Drops any
// userinfo from the endpoint ("http://KEY:SECRET@host" -> "http://host"): requests are signed with the
// credential chain's keys, and a secret there must never reach a Host header or a message.
// kInvalidArgument naming the missing setting when there is no bucket or no region.
Result<S3Config> ResolveS3Config(S3Config config);

// Where credentials come from: called before each request, so temporary credentials that a provider refreshes
// are picked up. A std::function rather than CredentialsProvider itself, so tests can hand in fixed (or
// failing) credentials.
using CredentialsSource = std::function<Result<Credentials>()>;
CredentialsSource FixedCredentials(Credentials credentials);
// The credential chain with its refresh (credentials.h); `provider` must outlive the source.
CredentialsSource FromProvider(CredentialsProvider& provider);

// WriteCondition (remote_state.h) says how a PUT is conditioned: If-Match, If-None-Match: *, or neither.

struct ObjectInfo {
  std::string etag;  // as S3 returns it, quotes included
  uint64_t size = 0;
  // HeadObject: the upload token the object was written with (metadata kUploadTokenMetadata), empty if none.
  std::string upload_token{};
};

// A small object read into memory (a lease record), with what it takes to judge its age by the server's clock
// alone.
struct SmallObject {
  std::string body;
  std::string etag;
  std::string last_modified;  // the Last-Modified header as sent (IMF-fixdate, whole seconds)
  std::string date;           // the response's Date header: the server's clock when it answered
};

// The object metadata holding an upload's token (UploadRequest::token), as the x-amz-meta- header sends it.
inline constexpr const char* kUploadTokenHeader = "x-amz-meta-rocky-upload-token";

class S3Client {
 public:
  // `config` should come from ResolveS3Config.
  S3Client(S3Config config, CredentialsSource credentials);

  // Uploads the whole file at `path` as `key`: one PUT up to the multipart threshold, a
  // multipart upload above it (parts streamed from the file; aborted on any failure so no parts are left).
  // `upload_token`, when not empty, is stored as the object's metadata (kUploadTokenHeader).
  Result<ObjectInfo> PutObject(const std::string& key, const std::string& path,
                               const WriteCondition& condition, const std::string& upload_token = "");
  // Writes the object to `path` (created or replaced; a partial file on failure).
  Result<ObjectInfo> GetObject(const std::string& key, const std::string& path);
  // nullopt when there is no such object.
  Result<std::optional<ObjectInfo>> HeadObject(const std::string& key);
  // Succeeds when the object is gone (also when it never existed, as S3 does).
  Status DeleteObject(const std::string& key);

  // For small objects held in memory (the lease). PUT of `body`: kBusy when the condition fails (412
  // PreconditionFailed, or 409 ConditionalRequestConflict when a concurrent write won), kNotFound when
  // If-Match finds no object. Returns the new ETag.
  Result<ObjectInfo> PutBytes(const std::string& key, std::string_view body, const WriteCondition& condition);
  // GET into memory, refused above `limit` bytes (kCorruption: not what the caller stores there); nullopt
  // when there is no such object.
  Result<std::optional<SmallObject>> GetSmallObject(const std::string& key, uint64_t limit = 64 * 1024);
  // DELETE only if the object's ETag is still `etag` (If-Match, as AWS documents conditional deletes): kBusy
  // when it is not, kNotFound when there is no object.
  Status DeleteObjectIfMatch(const std::string& key, const std::string& etag);

  // Whether a stop request aborts this client's requests (TransportOptions::stoppable); true by default.
  void set_stoppable(bool stoppable) { config_.transport.stoppable = stoppable; }
  // TransportOptions::cancel for this client's requests (null: none).
  void set_cancel(const std::atomic<bool>* cancel) { config_.transport.cancel = cancel; }

  // The state object's key: prefix + "state.redb".
  std::string StateKey() const;

  // Every later request must finish by `deadline` (kTimedOut otherwise); nullopt: only the transport's
  // connect and stall timeouts apply. How the lifecycle's per-transfer wall-clock budget reaches the network.
  void set_deadline(std::optional<std::chrono::steady_clock::time_point> deadline) {
    config_.transport.deadline = deadline;
  }
  const S3Config& config() const { return config_; }

  // Takes a consistent snapshot of the state database at `state_path` (which may be open and written by
  // others), wraps it in an envelope and uploads it under StateKey() as `request` says: conditional on the
  // object still having request.expected_generation (the ETag DownloadState returned), or on there being no
  // object when it is nullopt, or unconditionally with request.force. Returns the new object's ETag.
  // Temporary files go next to the state file and are removed.
  Result<ObjectInfo> UploadState(const std::string& state_path, const UploadRequest& request);
  // The same, conditional on `expected_etag` (nullopt: on there being no object), with a fresh token.
  Result<ObjectInfo> UploadState(const std::string& state_path,
                                 const std::optional<std::string>& expected_etag) {
    return UploadState(state_path, UploadRequest{expected_etag, false, NewUploadToken()});
  }
  // Uploads an envelope file as the state object, as `request` says; a failed condition whose object carries
  // request.token is this upload's own earlier write (its reply was lost): success, with that object's ETag.
  Result<ObjectInfo> PutStateEnvelope(const std::string& envelope_path, const UploadRequest& request);
  // Downloads the state object and, once verified in full, replaces `state_path` with it atomically. Returns
  // nullopt, touching nothing, when there is no object yet (a first run); the ETag to pass to the next
  // UploadState otherwise.
  Result<std::optional<ObjectInfo>> DownloadState(const std::string& state_path);

 private:
  struct Target;
  Target TargetFor(const std::string& key) const;
  Result<HttpResponse> Send(const std::string& method, const std::string& key,
                            const std::vector<std::pair<std::string, std::string>>& query,
                            std::vector<std::pair<std::string, std::string>> headers, HttpCall call,
                            const std::string& payload_hash);
  Result<ObjectInfo> PutSingle(const std::string& key, const std::string& path, uint64_t size,
                               const WriteCondition& condition, const std::string& upload_token);
  Result<ObjectInfo> PutMultipart(const std::string& key, const std::string& path, uint64_t size,
                                  const WriteCondition& condition, const std::string& upload_token);

  S3Config config_;
  CredentialsSource credentials_;
};

// Gives `client` a deadline for the calls made while it lives and restores "no deadline" when the scope ends,
// so a transfer's deadline never outlives the transfer (the S3 and tiered backends' calls). Not thread-safe:
// the client must not be shared by concurrent transfers.
class ScopedDeadline {
 public:
  ScopedDeadline(S3Client& client, std::optional<std::chrono::steady_clock::time_point> deadline)
      : client_(client) {
    client_.set_deadline(deadline);
  }
  ~ScopedDeadline() { client_.set_deadline(std::nullopt); }
  ScopedDeadline(const ScopedDeadline&) = delete;
  ScopedDeadline& operator=(const ScopedDeadline&) = delete;

 private:
  S3Client& client_;
};

}  // namespace rocky::sync
