// AWS Signature Version 4, written here on OpenSSL (SHA-256, HMAC-SHA256): how every request to S3 (and STS)
// proves who sends it. Pure functions of their inputs, so the AWS signing test suite
// (../shared/vectors/sigv4/) checks every step byte for byte.
// Private to the S3 library: S3Client and the credential providers sign with it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rocky/base/status.h"
#include "rocky/sync/credentials.h"

namespace rocky::sync {

using base::Result;
using base::Status;

// Credentials (the access key that signs) are declared in credentials.h.

// A request as it will be sent. `path` is the URI path exactly as sent on the wire (already percent-encoded
// where needed); `query` holds raw (decoded) names and values; header names keep their case as given.
struct HttpRequest {
  std::string method;  // "GET", "PUT", ...
  std::string path;    // "/bucket/key", "/"
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;  // must include Host
  std::string body;  // used only when the payload hash is computed from it
};

enum class SigningMode : unsigned char {
  kS3,       // S3's rules: the path is used as is (no normalization, no second round of encoding)
  kGeneric,  // other services (STS...): the path is normalized (./, ../, //) and encoded again
};

struct SigningParams {
  std::string region;   // "us-east-1"
  std::string service;  // "s3", "sts"
  std::chrono::system_clock::time_point time;
  SigningMode mode = SigningMode::kS3;
  // The hex SHA-256 of the body to sign ("UNSIGNED-PAYLOAD" is allowed for S3); empty: computed from
  // request.body. S3 requests also carry it as x-amz-content-sha256.
  std::string payload_hash;
  // Adds x-amz-content-sha256 to the request (S3 requires it; the generic test vectors do not have it).
  bool add_content_sha256_header = false;
  // Whether the session token is part of what is signed. S3 and STS sign it; a few services (IoT) want it
  // sent but left out of the signature, which the test suite's "omit_session_token" cases exercise.
  bool sign_session_token = true;
};

// Every intermediate of a signature, for tests and for debugging (none of them contains the secret).
struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // lowercase hex
  std::string authorization;  // the Authorization header value (empty for a presigned request)
};

// Computes the signature and adds to `request` the headers SigV4 needs: X-Amz-Date, X-Amz-Security-Token
// (when the credentials have a session token), x-amz-content-sha256 (when asked) and Authorization.
// kInvalidArgument naming the problem for a request that cannot be signed (no Host header, empty key id).
Result<Signature> SignRequest(HttpRequest& request, const Credentials& credentials,
                              const SigningParams& params);

// Presigned-URL form (query-string signing), as the test suite's query-* cases: adds the X-Amz-* query
// parameters, including X-Amz-Signature, to `request`. `expires` is X-Amz-Expires.
Result<Signature> PresignRequest(HttpRequest& request, const Credentials& credentials,
                                 const SigningParams& params, std::chrono::seconds expires);

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// RFC 3986 percent-encoding as SigV4 wants it (unreserved characters kept, everything else %XX uppercase);
// with encode_slash false, '/' is kept (for paths).
std::string UriEncode(std::string_view text, bool encode_slash);

}  // namespace rocky::sync
