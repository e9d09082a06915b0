#include "rocky/sync/s3_client.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "http_transport.h"
#include "rocky/base/strings.h"
#include "rocky/base/temp_file.h"
#include "rocky/sync/s3_error.h"
#include "rocky/sync/state_envelope.h"
#include "s3_error_xml.h"
#include "sigv4.h"

namespace rocky::sync {

using base::Hex;
using base::TempNextTo;
using base::Unlinker;

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string EnvOr(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

// SHA-256 of a file range, streamed: the payload hash SigV4 signs, without holding the body in memory.
Result<std::string> Sha256OfFileRange(const std::string& path, uint64_t offset, uint64_t length) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("opening " + path + ": " + std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::vector<char> buf(size_t{1} << 20);
  Status status;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    status = Status::IOError("hashing " + path + ": OpenSSL SHA-256 unavailable");
  }
  uint64_t done = 0;
  while (status.ok() && done < length) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), length - done));
    ssize_t r = ::pread(fd, buf.data(), want, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      status = Status::IOError("reading " + path + ": " +
                               (r < 0 ? std::strerror(errno) : "shorter than expected"));
      break;
    }
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(r));
    done += static_cast<uint64_t>(r);
  }
  ::close(fd);
  if (!status.ok()) return status;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &md_len);
  return Hex(md, md_len);
}

Result<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::IOError("stat " + path + ": " + std::strerror(errno));
  return static_cast<uint64_t>(st.st_size);
}

// An S3 error response (parsed by s3_error.h).
S3Error ParseS3ErrorResponse(const HttpResponse& response) {
  return ParseS3Error(static_cast<int>(response.status), response.body,
                      response.Header("x-amz-request-id").value_or(""));
}

// An S3 error response as a Status (the codes in s3_client.h); `what` says which operation on which key
// failed.
Status S3ErrorStatus(const HttpResponse& response, const std::string& what) {
  S3Error e = ParseS3ErrorResponse(response);
  const std::string detail = e.ToString();
  // The code is S3Error::ToStatus's (one mapping for every S3 caller); the message adds what to do about it.
  const Status::Code code = e.ToStatus().code();
  switch (e.kind) {
    case S3ErrorKind::kPreconditionFailed:
    case S3ErrorKind::kConflict:
      return Status::FromCode(code,
                              what +
                                  ": conflict: another run wrote the remote state in between (its ETag is "
                                  "no longer the one this run read), so this upload was refused rather "
                                  "than overwrite it; " +
                                  detail);
    case S3ErrorKind::kBadCredentials:
      return Status::FromCode(code, what +
                                        ": S3 refused the credentials (check the access key, the secret and, "
                                        "for temporary credentials, the session token); " +
                                        detail);
    case S3ErrorKind::kAccessDenied:
      return Status::FromCode(code, what +
                                        ": access denied (the identity needs s3:GetObject, s3:PutObject and "
                                        "s3:DeleteObject on the state's prefix); " +
                                        detail);
    default: return Status::FromCode(code, what + ": " + detail);
  }
}

}  // namespace

CredentialsSource FromProvider(CredentialsProvider& provider) {
  return [&provider]() -> Result<Credentials> {
    auto sourced = provider.Get();
    if (!sourced.ok()) return sourced.status();
    return sourced->credentials;
  };
}

Result<S3Config> ResolveS3Config(S3Config config) {
  if (config.endpoint.empty()) config.endpoint = EnvOr("AWS_ENDPOINT_URL_S3");
  if (config.endpoint.empty()) config.endpoint = EnvOr("AWS_ENDPOINT_URL");
  while (!config.endpoint.empty() && config.endpoint.back() == '/') config.endpoint.pop_back();
  // Userinfo in the endpoint ("http://AKIA:secret@host") is never used (requests are signed with the
  // credential chain's keys) and must never be sent in a Host header nor printed: dropped here, before
  // anything else sees the endpoint.
  if (const size_t scheme = config.endpoint.find("://"); scheme != std::string::npos) {
    // To the LAST '@', as config::RedactUrl reads a userinfo (a password may hold '/' or '@').
    const size_t host = scheme + 3;
    const size_t at = config.endpoint.rfind('@');
    if (at != std::string::npos && at >= host) config.endpoint.erase(host, at + 1 - host);
  }
  if (config.region.empty()) config.region = EnvOr("AWS_REGION");
  if (config.region.empty()) config.region = EnvOr("AWS_DEFAULT_REGION");
  if (config.bucket.empty())
    return Status::InvalidArgument("S3 state: no bucket configured (s3_bucket in [state])");
  if (config.region.empty()) {
    return Status::InvalidArgument(
        "S3 state: no region (s3_region in [state], AWS_REGION or AWS_DEFAULT_REGION)");
  }
  if (!config.endpoint.empty() && config.endpoint.rfind("http://", 0) != 0 &&
      config.endpoint.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("S3 state: the endpoint must start with http:// or https://");
  }
  if (config.part_size == 0) return Status::InvalidArgument("S3 state: part size must be positive");
  return config;
}

CredentialsSource FixedCredentials(Credentials credentials) {
  return [credentials = std::move(credentials)]() -> Result<Credentials> { return credentials; };
}

struct S3Client::Target {
  std::string base;  // scheme://host[:port]
  std::string host;  // the Host header
  std::string path;  // encoded, as sent
};

S3Client::S3Client(S3Config config, CredentialsSource credentials)
    : config_(std::move(config)), credentials_(std::move(credentials)) {}

std::string S3Client::StateKey() const { return config_.prefix + "state.redb"; }

S3Client::Target S3Client::TargetFor(const std::string& key) const {
  Target t;
  if (config_.endpoint.empty()) {
    t.host = config_.bucket + ".s3." + config_.region + ".amazonaws.com";
    t.base = "https://" + t.host;
    t.path = "/" + UriEncode(key, false);
    return t;
  }
  size_t scheme_end = config_.endpoint.find("://") + 3;
  size_t path_start = config_.endpoint.find('/', scheme_end);
  t.host = config_.endpoint.substr(
      scheme_end, path_start == std::string::npos ? std::string::npos : path_start - scheme_end);
  t.base = config_.endpoint.substr(0, path_start);
  std::string base_path = path_start == std::string::npos ? "" : config_.endpoint.substr(path_start);
  t.path = base_path + "/" + UriEncode(config_.bucket, false) + "/" + UriEncode(key, false);
  return t;
}

Result<HttpResponse> S3Client::Send(const std::string& method, const std::string& key, const Headers& query,
                                    Headers headers, HttpCall call, const std::string& payload_hash) {
  auto credentials = credentials_();
  if (!credentials.ok()) return credentials.status().WithContext("S3 credentials");
  Target target = TargetFor(key);
  HttpRequest request;
  request.method = method;
  request.path = target.path;
  request.query = query;
  request.headers = std::move(headers);
  request.headers.emplace_back("Host", target.host);
  SigningParams params;
  params.region = config_.region;
  params.service = "s3";
  params.time = std::chrono::system_clock::now();
  params.mode = SigningMode::kS3;
  params.payload_hash = payload_hash;
  params.add_content_sha256_header = true;
  auto signature = SignRequest(request, *credentials, params);
  if (!signature.ok()) return signature.status().WithContext("signing the S3 request");

  call.method = method;
  call.url = target.base + target.path;
  for (size_t i = 0; i < query.size(); ++i) {
    call.url +=
        (i == 0 ? "?" : "&") + UriEncode(query[i].first, true) + "=" + UriEncode(query[i].second, true);
  }
  call.headers = std::move(request.headers);
  return SendHttp(call, config_.transport);
}

Result<ObjectInfo> S3Client::PutObject(const std::string& key, const std::string& path,
                                       const WriteCondition& condition, const std::string& upload_token) {
  auto size = FileSize(path);
  if (!size.ok()) return size.status();
  if (*size > config_.multipart_threshold) return PutMultipart(key, path, *size, condition, upload_token);
  return PutSingle(key, path, *size, condition, upload_token);
}

namespace {
void AddCondition(Headers& headers, const WriteCondition& condition) {
  if (condition.kind == WriteCondition::Kind::kIfMatch) headers.emplace_back("If-Match", condition.etag);
  if (condition.kind == WriteCondition::Kind::kIfNoneMatch) headers.emplace_back("If-None-Match", "*");
}
}  // namespace

Result<ObjectInfo> S3Client::PutSingle(const std::string& key, const std::string& path, uint64_t size,
                                       const WriteCondition& condition, const std::string& upload_token) {
  const std::string what = "uploading s3://" + config_.bucket + "/" + key;
  auto hash = Sha256OfFileRange(path, 0, size);
  if (!hash.ok()) return hash.status().WithContext(what);
  Headers headers;
  AddCondition(headers, condition);
  if (!upload_token.empty()) headers.emplace_back(kUploadTokenHeader, upload_token);
  HttpCall call;
  call.upload_path = path;
  call.upload_length = size;
  auto response = Send("PUT", key, {}, std::move(headers), std::move(call), *hash);
  if (!response.ok()) return response.status().WithContext(what);
  if (response->status != 200) return S3ErrorStatus(*response, what);
  return ObjectInfo{response->Header("etag").value_or(""), size};
}

Result<ObjectInfo> S3Client::PutMultipart(const std::string& key, const std::string& path, uint64_t size,
                                          const WriteCondition& condition, const std::string& upload_token) {
  const std::string what = "multipart upload of s3://" + config_.bucket + "/" + key;
  const std::string empty_hash = Sha256Hex("");
  Headers metadata;  // an object's metadata is given when its multipart upload starts
  if (!upload_token.empty()) metadata.emplace_back(kUploadTokenHeader, upload_token);
  auto created = Send("POST", key, {{"uploads", ""}}, std::move(metadata), HttpCall{}, empty_hash);
  if (!created.ok()) return created.status().WithContext(what);
  if (created->status != 200) return S3ErrorStatus(*created, what + ": starting");
  const std::string upload_id = xml::FindText(created->body, {"UploadId"}).value_or("");
  if (upload_id.empty()) return Status::IOError(what + ": S3 returned no UploadId");

  // Every failure from here aborts the upload, so S3 keeps (and bills) no orphaned parts.
  auto abort_with = [&](Status error) -> Status {
    auto aborted = Send("DELETE", key, {{"uploadId", upload_id}}, {}, HttpCall{}, empty_hash);
    if (!aborted.ok() || (aborted->status != 204 && aborted->status != 200)) {
      std::string why =
          aborted.ok() ? "HTTP " + std::to_string(aborted->status) : aborted.status().ToString();
      return Status(error).WithContext("(aborting upload " + upload_id + " also failed: " + why + ")");
    }
    return error;
  };

  std::string complete = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  uint64_t offset = 0;
  for (int part = 1; offset < size; ++part) {
    if (part > 10000)
      return abort_with(Status::InvalidArgument(what + ": more than 10000 parts; raise part_size"));
    uint64_t length = std::min(config_.part_size, size - offset);
    auto hash = Sha256OfFileRange(path, offset, length);
    if (!hash.ok()) return abort_with(hash.status().WithContext(what));
    HttpCall call;
    call.upload_path = path;
    call.upload_offset = offset;
    call.upload_length = length;
    auto response = Send("PUT", key, {{"partNumber", std::to_string(part)}, {"uploadId", upload_id}}, {},
                         std::move(call), *hash);
    if (!response.ok())
      return abort_with(response.status().WithContext(what + ", part " + std::to_string(part)));
    if (response->status != 200) {
      return abort_with(S3ErrorStatus(*response, what + ", part " + std::to_string(part)));
    }
    auto etag = response->Header("etag");
    if (!etag)
      return abort_with(Status::IOError(what + ": part " + std::to_string(part) + " returned no ETag"));
    complete +=
        "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>" + *etag + "</ETag></Part>";
    offset += length;
  }
  complete += "</CompleteMultipartUpload>";

  Headers headers;
  AddCondition(headers, condition);
  HttpCall call;
  call.body = complete;
  auto done =
      Send("POST", key, {{"uploadId", upload_id}}, std::move(headers), std::move(call), Sha256Hex(complete));
  if (!done.ok()) return abort_with(done.status().WithContext(what + ": completing"));
  // S3 may answer 200 with an <Error> body when completion fails late.
  if (done->status != 200 || done->body.find("<Error>") != std::string::npos) {
    return abort_with(S3ErrorStatus(*done, what + ": completing"));
  }
  std::string etag = xml::FindText(done->body, {"ETag"}).value_or("");
  if (etag.empty()) etag = done->Header("etag").value_or("");
  return ObjectInfo{etag, size};
}

Result<ObjectInfo> S3Client::GetObject(const std::string& key, const std::string& path) {
  const std::string what = "downloading s3://" + config_.bucket + "/" + key;
  HttpCall call;
  call.download_path = path;
  auto response = Send("GET", key, {}, {}, std::move(call), Sha256Hex(""));
  if (!response.ok()) return response.status().WithContext(what);
  if (response->status != 200) return S3ErrorStatus(*response, what);
  return ObjectInfo{response->Header("etag").value_or(""), response->body_bytes};
}

Result<std::optional<ObjectInfo>> S3Client::HeadObject(const std::string& key) {
  const std::string what = "looking up s3://" + config_.bucket + "/" + key;
  auto response = Send("HEAD", key, {}, {}, HttpCall{}, Sha256Hex(""));
  if (!response.ok()) return response.status().WithContext(what);
  if (response->status == 404) return std::optional<ObjectInfo>();
  if (response->status != 200) return S3ErrorStatus(*response, what);
  ObjectInfo info;
  info.etag = response->Header("etag").value_or("");
  info.size = std::strtoull(response->Header("content-length").value_or("0").c_str(), nullptr, 10);
  info.upload_token = response->Header(kUploadTokenHeader).value_or("");
  return std::optional<ObjectInfo>(info);
}

Status S3Client::DeleteObject(const std::string& key) {
  const std::string what = "deleting s3://" + config_.bucket + "/" + key;
  auto response = Send("DELETE", key, {}, {}, HttpCall{}, Sha256Hex(""));
  if (!response.ok()) return response.status().WithContext(what);
  if (response->status != 204 && response->status != 200) return S3ErrorStatus(*response, what);
  return Status::OK();
}

namespace {
// A failed request on a small object, with conditional failures (412, 409) as kBusy whatever S3Error's
// wording for the state object says.
Status SmallObjectError(const HttpResponse& response, const std::string& what) {
  const S3Error e = ParseS3ErrorResponse(response);
  if (e.kind == S3ErrorKind::kPreconditionFailed || e.kind == S3ErrorKind::kConflict) {
    return Status::Busy(what + ": the condition failed: " + e.ToString());
  }
  return S3ErrorStatus(response, what);
}
}  // namespace

Result<ObjectInfo> S3Client::PutBytes(const std::string& key, std::string_view body,
                                      const WriteCondition& condition) {
  const std::string what = "writing s3://" + config_.bucket + "/" + key;
  Headers headers;
  AddCondition(headers, condition);
  HttpCall call;
  call.body = std::string(body);
  auto response = Send("PUT", key, {}, std::move(headers), std::move(call), Sha256Hex(body));
  if (!response.ok()) return response.status().WithContext(what);
  if (response->status != 200) return SmallObjectError(*response, what);
  return ObjectInfo{response->Header("etag").value_or(""), body.size()};
}

Result<std::optional<SmallObject>> S3Client::GetSmallObject(const std::string& key, uint64_t limit) {
  const std::string what = "reading s3://" + config_.bucket + "/" + key;
  auto response = Send("GET", key, {}, {}, HttpCall{}, Sha256Hex(""));
  if (!response.ok()) return response.status().WithContext(what);
  if (response->status == 404 && ParseS3ErrorResponse(*response).code == "NoSuchKey") {
    return std::optional<SmallObject>();
  }
  if (response->status != 200) return SmallObjectError(*response, what);
  if (response->body.size() > limit) {
    return Status::Corruption(what + ": " + std::to_string(response->body.size()) + " bytes, more than the " +
                              std::to_string(limit) + " expected there");
  }
  SmallObject object;
  object.body = std::move(response->body);
  object.etag = response->Header("etag").value_or("");
  object.last_modified = response->Header("last-modified").value_or("");
  object.date = response->Header("date").value_or("");
  return std::optional<SmallObject>(std::move(object));
}

Status S3Client::DeleteObjectIfMatch(const std::string& key, const std::string& etag) {
  const std::string what = "deleting s3://" + config_.bucket + "/" + key;
  auto response = Send("DELETE", key, {}, {{"If-Match", etag}}, HttpCall{}, Sha256Hex(""));
  if (!response.ok()) return response.status().WithContext(what);
  if (response->status == 204 || response->status == 200) return Status::OK();
  return SmallObjectError(*response, what);
}

Result<ObjectInfo> S3Client::UploadState(const std::string& state_path, const UploadRequest& request) {
  Unlinker envelope{TempNextTo(state_path, "upload-envelope")};
  ROCKY_RETURN_IF_ERROR(EncodeStateEnvelope(state_path, envelope.path, "upload-snapshot").status());
  return PutStateEnvelope(envelope.path, request);
}

Result<ObjectInfo> S3Client::PutStateEnvelope(const std::string& envelope_path,
                                              const UploadRequest& request) {
  WriteCondition condition = request.force ? WriteCondition::None()
                             : request.expected_generation
                                 ? WriteCondition::IfMatch(*request.expected_generation)
                                 : WriteCondition::IfAbsent();
  auto put = PutObject(StateKey(), envelope_path, condition, request.token);
  if (put.ok() || !put.status().IsBusy() || request.token.empty()) return put;
  // The condition failed. When the object is this upload's own (an earlier attempt's write landed and its
  // reply was lost, so the policy retried), the upload is done; anything else is a real conflict.
  auto head = HeadObject(StateKey());
  if (head.ok() && head->has_value() && (*head)->upload_token == request.token) {
    return ObjectInfo{(*head)->etag, (*head)->size, request.token};
  }
  return put;
}

Result<std::optional<ObjectInfo>> S3Client::DownloadState(const std::string& state_path) {
  Unlinker envelope{TempNextTo(state_path, "download-envelope")};
  const std::string key = StateKey();
  const std::string what = "downloading s3://" + config_.bucket + "/" + key;
  HttpCall call;
  call.download_path = envelope.path;
  auto response = Send("GET", key, {}, {}, std::move(call), Sha256Hex(""));
  if (!response.ok()) return response.status().WithContext(what);
  if (response->status == 404 && ParseS3ErrorResponse(*response).code == "NoSuchKey") {
    return std::optional<ObjectInfo>();  // a first run: nothing stored yet
  }
  if (response->status != 200) return S3ErrorStatus(*response, what);
  auto decoded = DecodeEnvelope(envelope.path, state_path);
  if (!decoded.ok()) return decoded.status().WithContext(what);
  return std::optional<ObjectInfo>(ObjectInfo{response->Header("etag").value_or(""), response->body_bytes});
}

}  // namespace rocky::sync
