// S3 error responses (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html) and the tolerant
// XML reader they are parsed with.
#include "rocky/sync/s3_error.h"

#include <array>
#include <cstdint>

#include "rocky/config/config.h"
#include "s3_error_xml.h"

namespace rocky::sync {
namespace xml {
namespace {

bool IsNameChar(char c) {
  return c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '/' && c != '>' && c != '<';
}

std::string_view LocalName(std::string_view name) {
  size_t colon = name.rfind(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// One markup item starting at doc[pos] == '<'.
struct Tag {
  enum Type { kOpen, kClose, kSelfClosing, kOther } type = kOther;
  std::string_view name;
  size_t end = 0;  // index just past the item
};

// nullopt when the item is not terminated (the document is cut short).
std::optional<Tag> ReadTag(std::string_view doc, size_t pos) {
  Tag tag;
  std::string_view rest = doc.substr(pos);
  auto skip_to = [&](std::string_view terminator) -> std::optional<Tag> {
    size_t end = doc.find(terminator, pos);
    if (end == std::string_view::npos) return std::nullopt;
    tag.end = end + terminator.size();
    return tag;
  };
  if (rest.starts_with("<!--")) return skip_to("-->");
  if (rest.starts_with("<![CDATA[")) return skip_to("]]>");
  if (rest.starts_with("<?")) return skip_to("?>");
  if (rest.starts_with("<!")) return skip_to(">");
  size_t i = pos + 1;
  bool closing = i < doc.size() && doc[i] == '/';
  if (closing) ++i;
  size_t name_start = i;
  while (i < doc.size() && IsNameChar(doc[i])) ++i;
  tag.name = LocalName(doc.substr(name_start, i - name_start));
  // Attributes: a '>' inside a quoted value does not end the tag.
  char quote = 0;
  for (; i < doc.size(); ++i) {
    char c = doc[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '>') {
      break;
    }
  }
  if (i >= doc.size()) return std::nullopt;
  tag.end = i + 1;
  if (closing) {
    tag.type = Tag::kClose;
  } else if (i > pos + 1 && doc[i - 1] == '/') {
    tag.type = Tag::kSelfClosing;
  } else {
    tag.type = Tag::kOpen;
  }
  if (tag.name.empty()) tag.type = Tag::kOther;
  return tag;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes the entity starting at text[0] == '&'; returns how many bytes it took, 0 if it is not one.
size_t DecodeEntity(std::string_view text, std::string& out) {
  size_t semi = text.find(';');
  if (semi == std::string_view::npos || semi > 10) return 0;
  std::string_view name = text.substr(1, semi - 1);
  static constexpr std::array<std::pair<std::string_view, char>, 5> kNamed = {
      {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}}};
  for (const auto& [n, c] : kNamed) {
    if (name == n) {
      out.push_back(c);
      return semi + 1;
    }
  }
  if (name.size() < 2 || name[0] != '#') return 0;
  bool hex = name[1] == 'x' || name[1] == 'X';
  std::string_view digits = name.substr(hex ? 2 : 1);
  if (digits.empty()) return 0;
  uint32_t cp = 0;
  for (char c : digits) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (hex && c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (hex && c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      return 0;
    }
    cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
    if (cp > 0x10FFFF) return 0;
  }
  if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  AppendUtf8(out, cp);
  return semi + 1;
}

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

std::optional<std::string_view> FindElement(std::string_view doc, std::string_view name) {
  size_t pos = doc.find('<');
  size_t content_start = 0;
  int depth = 0;  // >0 once the element is open: nesting of same-named elements inside it
  while (pos != std::string_view::npos && pos < doc.size()) {
    std::optional<Tag> tag = ReadTag(doc, pos);
    if (!tag) return std::nullopt;
    if (tag->name == name) {
      if (depth == 0) {
        if (tag->type == Tag::kSelfClosing) return std::string_view();
        if (tag->type == Tag::kOpen) {
          depth = 1;
          content_start = tag->end;
        }
      } else if (tag->type == Tag::kOpen) {
        ++depth;
      } else if (tag->type == Tag::kClose && --depth == 0) {
        return doc.substr(content_start, pos - content_start);
      }
    }
    pos = doc.find('<', tag->end);
  }
  return std::nullopt;
}

std::string Text(std::string_view content) {
  std::string out;
  size_t i = 0;
  while (i < content.size()) {
    char c = content[i];
    if (c == '<') {
      if (content.substr(i).starts_with("<![CDATA[")) {
        size_t end = content.find("]]>", i + 9);
        if (end == std::string_view::npos) end = content.size();
        out.append(content.substr(i + 9, end - i - 9));
        i = end == content.size() ? end : end + 3;
        continue;
      }
      std::optional<Tag> tag = ReadTag(content, i);
      i = tag ? tag->end : content.size();
      continue;
    }
    if (c == '&') {
      size_t used = DecodeEntity(content.substr(i), out);
      if (used > 0) {
        i += used;
        continue;
      }
    }
    out.push_back(c);
    ++i;
  }
  size_t b = 0;
  while (b < out.size() && IsXmlSpace(out[b])) ++b;
  size_t e = out.size();
  while (e > b && IsXmlSpace(out[e - 1])) --e;
  return out.substr(b, e - b);
}

std::optional<std::string> FindText(std::string_view doc, std::initializer_list<std::string_view> path) {
  std::string_view scope = doc;
  for (std::string_view name : path) {
    std::optional<std::string_view> inner = FindElement(scope, name);
    if (!inner) return std::nullopt;
    scope = *inner;
  }
  return Text(scope);
}

}  // namespace xml

namespace {

// Server text goes into logs and terminals: printable ASCII only, bounded.
std::string Printable(std::string_view text, size_t limit) {
  std::string out;
  for (char c : text) {
    if (out.size() >= limit) break;
    auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7F ? c : (u == '\n' || u == '\t' || u == '\r' ? ' ' : '?'));
  }
  return out;
}

// Codes and ids are identifiers: anything else in them is dropped.
std::string Identifier(std::string_view text, size_t limit) {
  std::string out;
  for (char c : text) {
    if (out.size() >= limit) break;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
        c == '-' || c == '+' || c == '/' || c == '=') {
      out.push_back(c);
    }
  }
  return out;
}

std::string CodeFromStatus(int status) {
  switch (status) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 408: return "RequestTimeout";
    case 409: return "Conflict";
    case 412: return "PreconditionFailed";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 501: return "NotImplemented";
    case 502: return "BadGateway";
    case 503: return "ServiceUnavailable";
    case 504: return "GatewayTimeout";
    default: return "HTTP" + std::to_string(status);
  }
}

template <size_t N>
bool OneOf(std::string_view code, const std::array<std::string_view, N>& codes) {
  for (std::string_view c : codes) {
    if (code == c) return true;
  }
  return false;
}

constexpr std::array<std::string_view, 14> kThrottleCodes = {"SlowDown",
                                                             "SlowDownRead",
                                                             "SlowDownWrite",
                                                             "Throttling",
                                                             "ThrottlingException",
                                                             "ThrottledException",
                                                             "RequestThrottled",
                                                             "RequestThrottledException",
                                                             "TooManyRequests",
                                                             "TooManyRequestsException",
                                                             "RequestLimitExceeded",
                                                             "BandwidthLimitExceeded",
                                                             "ProvisionedThroughputExceededException",
                                                             "PriorRequestNotComplete"};
constexpr std::array<std::string_view, 3> kTimeoutCodes = {"RequestTimeout", "RequestTimeoutException",
                                                           "IDPCommunicationError"};
constexpr std::array<std::string_view, 5> kServerCodes = {"InternalError", "InternalFailure",
                                                          "ServiceUnavailable", "ServiceUnavailableException",
                                                          "ServiceFailure"};
constexpr std::array<std::string_view, 11> kCredentialCodes = {
    "InvalidAccessKeyId",    "SignatureDoesNotMatch", "ExpiredToken",
    "ExpiredTokenException", "InvalidToken",          "TokenRefreshRequired",
    "InvalidClientTokenId",  "InvalidIdentityToken",  "UnrecognizedClientException",
    "AuthFailure",           "MissingSecurityHeader"};
constexpr std::array<std::string_view, 4> kAccessCodes = {"AccessDenied", "AllAccessDisabled",
                                                          "AccountProblem", "AccessDeniedException"};
constexpr std::array<std::string_view, 3> kNotFoundCodes = {"NoSuchKey", "NoSuchUpload", "NoSuchVersion"};

}  // namespace

S3ErrorKind ClassifyS3ErrorKind(int http_status, std::string_view code) {
  if (OneOf(code, kThrottleCodes) || http_status == 429) return S3ErrorKind::kThrottled;
  if (OneOf(code, kTimeoutCodes) || http_status == 408) return S3ErrorKind::kTimeout;
  if (OneOf(code, kServerCodes) || http_status >= 500) return S3ErrorKind::kServerError;
  if (OneOf(code, kCredentialCodes) || http_status == 401) return S3ErrorKind::kBadCredentials;
  if (OneOf(code, kAccessCodes)) return S3ErrorKind::kAccessDenied;
  if (code == "NoSuchBucket") return S3ErrorKind::kNoSuchBucket;
  if (OneOf(code, kNotFoundCodes)) return S3ErrorKind::kNotFound;
  if (code == "PreconditionFailed" || http_status == 412) return S3ErrorKind::kPreconditionFailed;
  if (http_status == 409) return S3ErrorKind::kConflict;
  if (http_status == 403) return S3ErrorKind::kAccessDenied;
  if (http_status == 404) return S3ErrorKind::kNotFound;
  if (http_status >= 400) return S3ErrorKind::kBadRequest;
  return S3ErrorKind::kOther;
}

S3ErrorClass ClassOf(S3ErrorKind kind) {
  switch (kind) {
    case S3ErrorKind::kThrottled:
    case S3ErrorKind::kTimeout:
    case S3ErrorKind::kServerError: return S3ErrorClass::kTransient;
    default: return S3ErrorClass::kPermanent;
  }
}

std::string_view KindName(S3ErrorKind kind) {
  switch (kind) {
    case S3ErrorKind::kBadCredentials: return "bad credentials";
    case S3ErrorKind::kAccessDenied: return "access denied";
    case S3ErrorKind::kNoSuchBucket: return "no such bucket";
    case S3ErrorKind::kNotFound: return "not found";
    case S3ErrorKind::kPreconditionFailed: return "precondition failed";
    case S3ErrorKind::kConflict: return "conflict";
    case S3ErrorKind::kThrottled: return "throttled";
    case S3ErrorKind::kTimeout: return "timeout";
    case S3ErrorKind::kServerError: return "server error";
    case S3ErrorKind::kBadRequest: return "bad request";
    case S3ErrorKind::kOther: return "other";
  }
  return "other";
}

S3Error ParseS3Error(int http_status, std::string_view body, std::string_view request_id_header) {
  S3Error e;
  e.http_status = http_status;
  if (std::optional<std::string_view> error = xml::FindElement(body, "Error")) {
    if (auto code = xml::FindText(*error, {"Code"})) e.code = Identifier(*code, 64);
    if (auto message = xml::FindText(*error, {"Message"})) e.message = Printable(*message, 512);
    if (auto id = xml::FindText(*error, {"RequestId"})) e.request_id = Identifier(*id, 128);
    if (auto host = xml::FindText(*error, {"HostId"})) e.host_id = Identifier(*host, 256);
  }
  if (e.request_id.empty()) {
    // STS puts RequestId beside <Error>, not inside it.
    if (auto id = xml::FindText(body, {"RequestId"})) e.request_id = Identifier(*id, 128);
  }
  if (e.request_id.empty()) e.request_id = Identifier(request_id_header, 128);
  if (e.code.empty()) e.code = CodeFromStatus(http_status);
  e.kind = ClassifyS3ErrorKind(http_status, e.code);
  e.error_class = ClassOf(e.kind);
  return e;
}

std::string S3Error::ToString() const {
  std::string out = "S3 " + code + " (HTTP " + std::to_string(http_status) + ", " +
                    std::string(KindName(kind)) + ", " + (transient() ? "transient" : "permanent") + ")";
  // The server's words: redacted, as every server message is before it is printed (config::Redact).
  if (!message.empty()) out += ": " + config::Redact(message);
  if (!request_id.empty()) out += " [request id " + request_id + "]";
  return out;
}

base::Status S3Error::ToStatus() const {
  switch (kind) {
    case S3ErrorKind::kNoSuchBucket:
    case S3ErrorKind::kNotFound: return base::Status::NotFound(ToString());
    case S3ErrorKind::kPreconditionFailed:
    case S3ErrorKind::kConflict: return base::Status::Busy(ToString());
    case S3ErrorKind::kBadCredentials:
    case S3ErrorKind::kAccessDenied: return base::Status::PermissionDenied(ToString());
    case S3ErrorKind::kBadRequest:
    case S3ErrorKind::kOther: return base::Status::InvalidArgument(ToString());
    case S3ErrorKind::kThrottled:
    case S3ErrorKind::kTimeout:
    case S3ErrorKind::kServerError: return base::Status::IOError(ToString());
  }
  return base::Status::IOError(ToString());
}

}  // namespace rocky::sync
