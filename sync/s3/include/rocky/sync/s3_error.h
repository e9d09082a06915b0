// S3 (and STS) error responses, parsed into a typed error that the retry policy can act on: which failures
// are worth retrying (transient) and which will fail the same way again (permanent). The parser takes
// arbitrary bytes (a proxy's HTML page, a truncated body, nothing at all for HEAD) and never fails.
#pragma once

#include <string>
#include <string_view>

#include "rocky/base/status.h"

namespace rocky::sync {

// Whether repeating the request can help. Decides retries (issue 10): transient errors are retried with
// backoff, permanent ones are reported at once.
enum class S3ErrorClass : unsigned char {
  kTransient,  // timeouts, HTTP 5xx, 429, SlowDown and other throttling
  kPermanent,  // bad credentials, access denied, missing bucket or key, bad request, conditional-write
               // conflict
};

// What went wrong, coarser than the code, for messages and `rocky doctor` hints.
enum class S3ErrorKind : unsigned char {
  kBadCredentials,      // InvalidAccessKeyId, SignatureDoesNotMatch, expired or invalid token
  kAccessDenied,        // AccessDenied, 403 without a body
  kNoSuchBucket,        // NoSuchBucket
  kNotFound,            // NoSuchKey, NoSuchUpload, 404 without a body
  kPreconditionFailed,  // PreconditionFailed (412): the object changed since it was read (If-Match)
  kConflict,            // 409 (ConditionalRequestConflict, OperationAborted, ...)
  kThrottled,           // SlowDown, 429, Throttling
  kTimeout,             // RequestTimeout (S3's "your upload stalled"), 408
  kServerError,         // InternalError, ServiceUnavailable, other 5xx
  kBadRequest,          // other 4xx
  kOther,               // a status S3 does not use for errors (1xx-3xx given by mistake)
};

struct S3Error {
  int http_status = 0;
  std::string code;        // "NoSuchKey"; when the body has none, a name derived from the status ("NotFound")
  std::string message;     // the server's <Message>, printable ASCII, at most 512 bytes; may be empty
  std::string request_id;  // <RequestId> or the x-amz-request-id header; for AWS support
  std::string host_id;     // <HostId> (x-amz-id-2), likewise
  S3ErrorKind kind = S3ErrorKind::kOther;
  S3ErrorClass error_class = S3ErrorClass::kPermanent;

  bool transient() const { return error_class == S3ErrorClass::kTransient; }

  // One line: "S3 NoSuchBucket (HTTP 404): The specified bucket does not exist [request id
  // 4442587FB7D0A2F9]".
  std::string ToString() const;

  // For callers that speak Status, with the codes of remote_state.h's retry contract: kNotFound for a missing
  // key or bucket, kBusy for a precondition failure or conflict (another writer got there first),
  // kPermissionDenied for bad credentials or access denied, kInvalidArgument for another client error,
  // kIOError for the transient kinds (throttling, timeouts, 5xx). The message is ToString().
  base::Status ToStatus() const;
};

// Parses an error response body
// (<Error><Code>..</Code><Message>..</Message><RequestId>..</RequestId>...</Error>, or STS's
// <ErrorResponse><Error>...</Error><RequestId>..</RequestId></ErrorResponse>). Anything that is not such a
// document yields an error built from the status alone. `request_id_header` (x-amz-request-id) is used when
// the body has none.
S3Error ParseS3Error(int http_status, std::string_view body, std::string_view request_id_header = {});

// The classification rule on its own: transient for 5xx, 429, 408 and the throttling and timeout codes
// whatever their status; permanent otherwise.
S3ErrorKind ClassifyS3ErrorKind(int http_status, std::string_view code);
S3ErrorClass ClassOf(S3ErrorKind kind);

std::string_view KindName(S3ErrorKind kind);

}  // namespace rocky::sync
