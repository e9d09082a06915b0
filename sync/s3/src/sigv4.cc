// AWS Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html) on
// OpenSSL's one-shot SHA256() and HMAC(), which are thread-safe and need no context objects.
#include "sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <ctime>

#include "rocky/base/strings.h"

namespace rocky::sync {

using base::Hex;
using base::Lower;

namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &out_len);
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

// ASCII only, whatever the process locale (std::isalnum may accept bytes >= 0x80 in some locales).
bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '~';
}

void AppendPercent(std::string& out, unsigned char c) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  out.push_back('%');
  out.push_back(kDigits[c >> 4]);
  out.push_back(kDigits[c & 0xf]);
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Trims and turns every run of whitespace (including the line breaks of a folded header) into one space,
// as the canonical-headers rule requires.
std::string CanonicalHeaderValue(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// RFC 3986 remove_dot_segments plus collapsing of empty segments ("//"), as the generic services do. A
// trailing slash (or a trailing "." / "..", which name a directory) is kept.
std::string NormalizePath(std::string_view path) {
  std::vector<std::string_view> segments;
  bool trailing_slash = false;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(pos, end - pos);
    bool last = end == path.size();
    if (segment.empty() || segment == ".") {
      if (last) trailing_slash = true;
    } else if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
      if (last) trailing_slash = true;
    } else {
      segments.push_back(segment);
      if (last) trailing_slash = false;
    }
    pos = end + 1;
  }
  std::string out = "/";
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    out.append(segments[i]);
  }
  if (trailing_slash && !segments.empty()) out.push_back('/');
  return out;
}

std::string CanonicalPath(std::string_view path, SigningMode mode) {
  if (path.empty()) return "/";
  if (mode == SigningMode::kGeneric) return UriEncode(NormalizePath(path), /*encode_slash=*/false);
  // S3: the wire path is signed as is. Bytes that cannot appear on the wire (a space, raw UTF-8) are
  // encoded, which leaves an already-encoded path unchanged and keeps its %XX escapes single-encoded.
  std::string out;
  for (unsigned char c : path) {
    if (IsUnreserved(c) || c == '/' || c == '%') {
      out.push_back(static_cast<char>(c));
    } else {
      AppendPercent(out, c);
    }
  }
  return out;
}

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) encoded.emplace_back(UriEncode(name, true), UriEncode(value, true));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

// Headers a proxy or the HTTP library may add or change in transit; signing them would break the signature.
bool IsUnsignedHeader(std::string_view lower_name) {
  return lower_name == "authorization" || lower_name == "user-agent" || lower_name == "expect" ||
         lower_name == "x-amzn-trace-id" || lower_name == "connection" || lower_name == "transfer-encoding";
}

struct CanonicalHeaders {
  std::string text;            // "name:value\n" lines
  std::string signed_headers;  // "host;x-amz-date"
};

// Headers grouped by lowercase name (values of repeated names joined with ',' in their order), sorted by
// name.
CanonicalHeaders BuildCanonicalHeaders(const std::vector<std::pair<std::string, std::string>>& headers,
                                       bool skip_security_token) {
  std::vector<std::pair<std::string, std::string>> grouped;
  for (const auto& [name, value] : headers) {
    std::string lower = Lower(name);
    if (IsUnsignedHeader(lower)) continue;
    if (skip_security_token && lower == "x-amz-security-token") continue;
    std::string canonical_value = CanonicalHeaderValue(value);
    auto it = std::find_if(grouped.begin(), grouped.end(), [&](const auto& g) { return g.first == lower; });
    if (it == grouped.end()) {
      grouped.emplace_back(std::move(lower), std::move(canonical_value));
    } else {
      it->second += ',';
      it->second += canonical_value;
    }
  }
  std::stable_sort(grouped.begin(), grouped.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  CanonicalHeaders out;
  for (const auto& [name, value] : grouped) {
    out.text += name + ":" + value + "\n";
    if (!out.signed_headers.empty()) out.signed_headers.push_back(';');
    out.signed_headers += name;
  }
  return out;
}

bool HasHeader(const HttpRequest& request, std::string_view lower_name) {
  return std::any_of(request.headers.begin(), request.headers.end(),
                     [&](const auto& h) { return Lower(h.first) == lower_name; });
}

void RemoveHeader(HttpRequest& request, std::string_view lower_name) {
  std::erase_if(request.headers, [&](const auto& h) { return Lower(h.first) == lower_name; });
}

// "20150830T123600Z" and "20150830".
std::pair<std::string, std::string> AmzDate(std::chrono::system_clock::time_point time) {
  std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char full[32];
  std::strftime(full, sizeof(full), "%Y%m%dT%H%M%SZ", &tm);
  std::string date_time = full;
  return {date_time, date_time.substr(0, 8)};
}

Status Validate(const HttpRequest& request, const Credentials& credentials, const SigningParams& params) {
  if (!HasHeader(request, "host"))
    return Status::InvalidArgument("cannot sign a request without a Host header");
  if (credentials.access_key_id.empty())
    return Status::InvalidArgument("cannot sign: the access key id is empty");
  if (credentials.secret_access_key.empty()) {
    return Status::InvalidArgument("cannot sign: the secret access key is empty");
  }
  if (params.region.empty()) return Status::InvalidArgument("cannot sign: the region is empty");
  if (params.service.empty()) return Status::InvalidArgument("cannot sign: the service is empty");
  if (request.method.empty()) return Status::InvalidArgument("cannot sign: the HTTP method is empty");
  return Status::OK();
}

// The three steps after the canonical request: string to sign, signing key, signature.
void Finish(Signature& sig, const Credentials& credentials, const SigningParams& params,
            const std::string& date_time, const std::string& date) {
  std::string scope = date + "/" + params.region + "/" + params.service + "/aws4_request";
  sig.string_to_sign =
      std::string(kAlgorithm) + "\n" + date_time + "\n" + scope + "\n" + Sha256Hex(sig.canonical_request);
  std::string key = HmacSha256("AWS4" + credentials.secret_access_key, date);
  key = HmacSha256(key, params.region);
  key = HmacSha256(key, params.service);
  key = HmacSha256(key, "aws4_request");
  std::string raw = HmacSha256(key, sig.string_to_sign);
  sig.signature = Hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

std::string PayloadHash(const HttpRequest& request, const SigningParams& params) {
  return params.payload_hash.empty() ? Sha256Hex(request.body) : params.payload_hash;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return Hex(digest, sizeof(digest));
}

std::string UriEncode(std::string_view text, bool encode_slash) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (IsUnreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      AppendPercent(out, c);
    }
  }
  return out;
}

Result<Signature> SignRequest(HttpRequest& request, const Credentials& credentials,
                              const SigningParams& params) {
  ROCKY_RETURN_IF_ERROR(Validate(request, credentials, params));
  // Re-signing (a retry) replaces the previous signature's headers instead of duplicating them.
  RemoveHeader(request, "authorization");
  RemoveHeader(request, "x-amz-date");
  RemoveHeader(request, "x-amz-security-token");
  if (params.add_content_sha256_header) RemoveHeader(request, "x-amz-content-sha256");

  auto [date_time, date] = AmzDate(params.time);
  std::string payload_hash = PayloadHash(request, params);
  bool has_token = !credentials.session_token.empty();
  if (has_token) request.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  request.headers.emplace_back("X-Amz-Date", date_time);
  if (params.add_content_sha256_header) request.headers.emplace_back("x-amz-content-sha256", payload_hash);

  CanonicalHeaders headers = BuildCanonicalHeaders(request.headers, has_token && !params.sign_session_token);
  Signature sig;
  sig.canonical_request = request.method + "\n" + CanonicalPath(request.path, params.mode) + "\n" +
                          CanonicalQuery(request.query) + "\n" + headers.text + "\n" +
                          headers.signed_headers + "\n" + payload_hash;
  Finish(sig, credentials, params, date_time, date);
  sig.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" + date +
                      "/" + params.region + "/" + params.service +
                      "/aws4_request, SignedHeaders=" + headers.signed_headers +
                      ", Signature=" + sig.signature;
  request.headers.emplace_back("Authorization", sig.authorization);
  return sig;
}

Result<Signature> PresignRequest(HttpRequest& request, const Credentials& credentials,
                                 const SigningParams& params, std::chrono::seconds expires) {
  ROCKY_RETURN_IF_ERROR(Validate(request, credentials, params));
  if (expires.count() <= 0 || expires.count() > 7 * 24 * 3600) {
    return Status::InvalidArgument("cannot presign: X-Amz-Expires must be between 1 and 604800 seconds");
  }
  auto [date_time, date] = AmzDate(params.time);
  std::string payload_hash = PayloadHash(request, params);
  CanonicalHeaders headers = BuildCanonicalHeaders(request.headers, /*skip_security_token=*/false);
  bool has_token = !credentials.session_token.empty();
  auto& q = request.query;
  q.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
  q.emplace_back("X-Amz-Credential", credentials.access_key_id + "/" + date + "/" + params.region + "/" +
                                         params.service + "/aws4_request");
  q.emplace_back("X-Amz-Date", date_time);
  q.emplace_back("X-Amz-SignedHeaders", headers.signed_headers);
  q.emplace_back("X-Amz-Expires", std::to_string(expires.count()));
  if (has_token && params.sign_session_token)
    q.emplace_back("X-Amz-Security-Token", credentials.session_token);

  Signature sig;
  sig.canonical_request = request.method + "\n" + CanonicalPath(request.path, params.mode) + "\n" +
                          CanonicalQuery(q) + "\n" + headers.text + "\n" + headers.signed_headers + "\n" +
                          payload_hash;
  Finish(sig, credentials, params, date_time, date);
  // A token left out of the signature still travels with the request, in the same place.
  if (has_token && !params.sign_session_token)
    q.emplace_back("X-Amz-Security-Token", credentials.session_token);
  q.emplace_back("X-Amz-Signature", sig.signature);
  return sig;
}

}  // namespace rocky::sync
