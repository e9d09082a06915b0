// The AWS default credentials chain. Documented behaviour followed here:
//   https://docs.aws.amazon.com/sdkref/latest/guide/standardized-credentials.html
//   https://docs.aws.amazon.com/sdkref/latest/guide/file-format.html
//   https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html
//   https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html
//   https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html
#include "rocky/sync/credentials.h"

#include <simdjson.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "http_transport.h"
#include "rocky/base/strings.h"
#include "rocky/base/timestamp.h"
#include "rocky/sync/s3_error.h"
#include "s3_error_xml.h"
#include "sigv4.h"

namespace rocky::sync {

using base::Lower;
using base::Trim;

namespace {

using Section = std::map<std::string, std::string>;

// An unset and an empty variable mean the same: not configured.
std::optional<std::string> Env(const CredentialsOptions& o, std::string_view name) {
  std::optional<std::string> v = o.env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

// Replaces every occurrence of each secret by "***": remote text (an STS message) quoted in an error must not
// echo a token back.
std::string Scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const std::string& secret : secrets) {
    if (secret.size() < 4) continue;
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3)) {
      text.replace(pos, secret.size(), "***");
    }
    // A quoted text cut short (messages are bounded) may end in the start of a secret: cut it there.
    std::string_view head = std::string_view(secret).substr(0, 8);
    if (size_t pos = text.find(head); pos != std::string::npos) text = text.substr(0, pos) + "***";
  }
  return text;
}

// "~/x" -> "$HOME/x", as the SDKs expand the file variables.
std::string ExpandHome(const std::string& path, const CredentialsOptions& o) {
  if (path.starts_with("~/")) {
    if (std::optional<std::string> home = Env(o, "HOME")) return *home + path.substr(1);
  }
  return path;
}

enum class FileState { kRead, kMissing };

Result<FileState> ReadWholeFile(const std::string& path, std::string& out) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return FileState::kMissing;
    return Status::IOError("cannot read " + path + ": " + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return FileState::kRead;
}

// An expiration as AWS writes them ("2026-11-21T10:00:00Z", fractions and "+hh:mm" offsets allowed), read by
// the project's one timestamp parser (rocky/base/timestamp.h); nullopt for anything else. The text comes
// from the network (IMDS, ECS, STS): nothing here may read past it.
std::optional<std::chrono::system_clock::time_point> ParseIso8601(std::string_view text) {
  auto parsed = base::ParseTimestamp(text);
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

// --- shared files
// -------------------------------------------------------------------------------------------

// INI as the AWS file format documents it. In the config file a profile's section is "[profile name]" (and
// "[default]"); in the credentials file it is "[name]". Indented lines continue a nested value (s3 = ...) and
// are skipped. Messages name the file and line, never the line's text (it may hold a key).
Result<std::map<std::string, Section>> ParseProfileFile(const std::string& text, const std::string& path,
                                                        bool config_file) {
  std::map<std::string, Section> sections;
  Section* current = nullptr;
  std::istringstream in(text);
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    std::string line(Trim(raw));
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      size_t close = line.find(']');
      if (close == std::string::npos) {
        return Status::InvalidArgument(path + ":" + std::to_string(line_no) + ": section header without ']'");
      }
      std::string name(Trim(line.substr(1, close - 1)));
      current = nullptr;
      if (config_file) {
        if (name.starts_with("profile ") || name.starts_with("profile\t")) {
          name = Trim(name.substr(8));
        } else if (name != "default") {
          continue;  // [sso-session x], [services y]: not profiles
        }
      }
      current = &sections[name];
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(raw[0])) != 0) continue;  // nested sub-property
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument(path + ":" + std::to_string(line_no) +
                                     ": expected 'key = value' or a [section] header");
    }
    if (current == nullptr) continue;  // a key outside any profile section
    std::string key = Lower(Trim(line.substr(0, eq)));
    std::string value(Trim(line.substr(eq + 1)));
    (*current)[key] = value;
  }
  return sections;
}

struct ProfileFile {
  std::string path;
  bool present = false;
  std::map<std::string, Section> sections;
};

Result<ProfileFile> LoadProfileFile(const std::string& path, bool config_file) {
  ProfileFile f;
  f.path = path;
  std::string text;
  ROCKY_ASSIGN_OR_RETURN(FileState state, ReadWholeFile(path, text));
  if (state == FileState::kMissing) return f;
  f.present = true;
  ROCKY_ASSIGN_OR_RETURN(f.sections, ParseProfileFile(text, path, config_file));
  return f;
}

// Credentials in one profile section: kNotFound when it holds no keys.
Result<SourcedCredentials> FromSection(const Section& s, const std::string& profile,
                                       const std::string& path) {
  auto get = [&](const char* key) -> std::string {
    auto it = s.find(key);
    return it == s.end() ? std::string() : it->second;
  };
  std::string id = get("aws_access_key_id");
  std::string secret = get("aws_secret_access_key");
  std::string where = "profile " + profile + " in " + path;
  if (id.empty() && secret.empty()) {
    for (const char* unsupported : {"role_arn", "credential_process", "sso_session", "sso_start_url"}) {
      if (s.contains(unsupported)) {
        return Status::NotSupported(where + " uses " + unsupported +
                                    ", which rocky does not support; give it aws_access_key_id and "
                                    "aws_secret_access_key, or use another credential source");
      }
    }
    return Status::NotFound(where + " has no aws_access_key_id");
  }
  if (id.empty()) return Status::InvalidArgument(where + ": aws_secret_access_key without aws_access_key_id");
  if (secret.empty())
    return Status::InvalidArgument(where + ": aws_access_key_id without aws_secret_access_key");
  SourcedCredentials out;
  out.credentials.access_key_id = id;
  out.credentials.secret_access_key = secret;
  out.credentials.session_token = get("aws_session_token");
  out.source = where;
  return out;
}

// --- JSON credential documents (container and instance metadata)
// --------------------------------------------

// {"AccessKeyId": ..., "SecretAccessKey": ..., "Token": ..., "Expiration": "2026-...Z"} (IMDS adds "Code").
Result<Credentials> ParseCredentialJson(const std::string& body, const std::string& what) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
    return Status::Corruption(what + ": the response is not a JSON object");
  }
  std::string_view code;
  if (doc["Code"].get(code) == simdjson::SUCCESS && code != "Success") {
    return Status::IOError(what + ": the response's Code is '" + std::string(code.substr(0, 64)) +
                           "', not 'Success'");
  }
  Credentials c;
  std::string_view v;
  if (doc["AccessKeyId"].get(v) != simdjson::SUCCESS || v.empty()) {
    return Status::Corruption(what + ": the response has no AccessKeyId");
  }
  c.access_key_id = v;
  if (doc["SecretAccessKey"].get(v) != simdjson::SUCCESS || v.empty()) {
    return Status::Corruption(what + ": the response has no SecretAccessKey");
  }
  c.secret_access_key = v;
  if (doc["Token"].get(v) == simdjson::SUCCESS) c.session_token = v;
  if (doc["Expiration"].get(v) == simdjson::SUCCESS) {
    c.expiration = ParseIso8601(v);
    if (!c.expiration)
      return Status::Corruption(what + ": the response's Expiration is not an ISO 8601 time");
  }
  return c;
}

// Credential documents are a few KiB: a bigger answer is refused rather than buffered without bound.
constexpr uint64_t kMaxCredentialBody = 1 << 20;

// Sends one request of a credential provider with the S3 transport (http_transport.h): bounded in time
// (connect_timeout, and total_timeout from now) and in size, TLS verified against AWS_CA_BUNDLE or the
// system's store, no redirects. Not aborted by a stop request: it is short, and the transfer that needs the
// credentials stops right after. `use_proxy` is false for link-local metadata services, which a proxy can
// never reach.
Result<HttpResponse> SendProviderRequest(const HttpCall& call, const CredentialsOptions& o, bool use_proxy) {
  TransportOptions t;
  t.connect_timeout = o.connect_timeout;
  t.deadline = std::chrono::steady_clock::now() + o.total_timeout;
  t.verify_tls = true;
  if (std::optional<std::string> ca = Env(o, "AWS_CA_BUNDLE")) t.ca_bundle = ExpandHome(*ca, o);
  t.stoppable = false;
  t.use_proxy = use_proxy;
  t.max_memory_body = kMaxCredentialBody;
  return SendHttp(call, t);
}

bool IsAllowedPlainHttpHost(std::string host) {
  // Strip the port (and IPv6 brackets).
  if (host.starts_with("[")) {
    host = host.substr(1, host.find(']') - 1);
  } else if (size_t colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  host = Lower(host);
  return host == "localhost" || host.starts_with("127.") || host == "::1" || host == "169.254.170.2" ||
         host == "169.254.170.23" || host == "fd00:ec2::23";
}

}  // namespace

std::string RedactedCredentials(const Credentials& c) {
  std::string out = (c.access_key_id.empty() ? std::string("(no key id)") : c.access_key_id) + " / secret " +
                    (c.secret_access_key.empty() ? "(none)" : "***");
  if (!c.session_token.empty()) out += " / token ***";
  return out;
}

Result<SourcedCredentials> CredentialsFromEnvironment(const CredentialsOptions& o) {
  std::optional<std::string> id = Env(o, "AWS_ACCESS_KEY_ID");
  std::optional<std::string> secret = Env(o, "AWS_SECRET_ACCESS_KEY");
  if (!id && !secret) return Status::NotFound("environment: AWS_ACCESS_KEY_ID is not set");
  if (!secret) {
    return Status::InvalidArgument("environment: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
  }
  if (!id) {
    return Status::InvalidArgument("environment: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
  }
  SourcedCredentials out;
  out.credentials.access_key_id = *id;
  out.credentials.secret_access_key = *secret;
  out.credentials.session_token = Env(o, "AWS_SESSION_TOKEN").value_or("");
  out.source = "environment";
  return out;
}

Result<SourcedCredentials> CredentialsFromProfile(const CredentialsOptions& o) {
  std::optional<std::string> home = Env(o, "HOME");
  std::optional<std::string> creds_path = Env(o, "AWS_SHARED_CREDENTIALS_FILE");
  std::optional<std::string> config_path = Env(o, "AWS_CONFIG_FILE");
  if (!creds_path && home) creds_path = *home + "/.aws/credentials";
  if (!config_path && home) config_path = *home + "/.aws/config";
  std::optional<std::string> explicit_profile = Env(o, "AWS_PROFILE");
  std::string profile = explicit_profile.value_or("default");

  std::vector<ProfileFile> files;  // credentials file first: it wins over the config file
  if (creds_path) {
    Result<ProfileFile> f = LoadProfileFile(ExpandHome(*creds_path, o), /*config_file=*/false);
    if (!f.ok()) return f.status().WithContext("shared credentials file");
    files.push_back(std::move(*f));
  }
  if (config_path) {
    Result<ProfileFile> f = LoadProfileFile(ExpandHome(*config_path, o), /*config_file=*/true);
    if (!f.ok()) return f.status().WithContext("shared config file");
    files.push_back(std::move(*f));
  }
  bool profile_seen = false;
  for (const ProfileFile& f : files) {
    auto it = f.sections.find(profile);
    if (it == f.sections.end()) continue;
    profile_seen = true;
    Result<SourcedCredentials> c = FromSection(it->second, profile, f.path);
    if (c.ok() || !c.status().IsNotFound()) return c;
  }
  if (explicit_profile && !profile_seen) {
    std::string where;
    for (const ProfileFile& f : files) where += (where.empty() ? "" : " or ") + f.path;
    return Status::InvalidArgument("AWS_PROFILE names profile '" + profile + "', which is not in " +
                                   (where.empty() ? std::string("any file (HOME is not set)") : where));
  }
  return Status::NotFound("shared files: no credentials for profile " + profile);
}

Result<SourcedCredentials> CredentialsFromWebIdentity(const CredentialsOptions& o) {
  std::optional<std::string> token_file = Env(o, "AWS_WEB_IDENTITY_TOKEN_FILE");
  std::optional<std::string> role = Env(o, "AWS_ROLE_ARN");
  if (!token_file && !role) return Status::NotFound("web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set");
  if (!token_file)
    return Status::InvalidArgument(
        "web identity: AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not");
  if (!role)
    return Status::InvalidArgument(
        "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
  // Read on every call: EKS rotates the projected token file.
  std::string token;
  std::string path = ExpandHome(*token_file, o);
  Result<FileState> read = ReadWholeFile(path, token);
  if (!read.ok()) return read.status().WithContext("web identity");
  if (*read == FileState::kMissing)
    return Status::NotFound("web identity: the token file " + path + " does not exist");
  token = std::string(Trim(token));
  if (token.empty()) return Status::InvalidArgument("web identity: the token file " + path + " is empty");

  std::string session =
      Env(o, "AWS_ROLE_SESSION_NAME")
          .value_or(
              "rocky-" +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::seconds>(o.now().time_since_epoch()).count()));
  std::string endpoint = o.sts_endpoint;
  if (endpoint.empty()) endpoint = Env(o, "AWS_ENDPOINT_URL_STS").value_or("");
  if (endpoint.empty()) {
    std::string region = Env(o, "AWS_REGION").value_or(Env(o, "AWS_DEFAULT_REGION").value_or("us-east-1"));
    endpoint = "https://sts." + region + ".amazonaws.com";
  }
  while (endpoint.ends_with("/")) endpoint.pop_back();

  // AssumeRoleWithWebIdentity is not signed: the token is the proof. POST keeps it out of the URL (and so out
  // of any proxy or server log of request lines).
  HttpCall r;
  r.method = "POST";
  r.url = endpoint + "/";
  r.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}, {"Accept", "text/xml"}};
  r.body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + UriEncode(*role, true) +
           "&RoleSessionName=" + UriEncode(session, true) + "&WebIdentityToken=" + UriEncode(token, true);
  std::string what =
      "web identity: STS AssumeRoleWithWebIdentity at " + UrlHost(r.url) + " for role " + *role;
  Result<HttpResponse> resp = SendProviderRequest(r, o, /*use_proxy=*/true);
  if (!resp.ok()) return Status::IOError(Scrub(what + ": " + resp.status().message(), {token}));
  if (resp->status != 200) {
    S3Error e = ParseS3Error(static_cast<int>(resp->status), resp->body);
    std::string msg = what + " failed: STS " + e.code + " (HTTP " + std::to_string(resp->status) + ")";
    if (!e.message.empty()) msg += ": " + e.message;
    if (!e.request_id.empty()) msg += " [request id " + e.request_id + "]";
    msg = Scrub(msg, {token, UriEncode(token, true)});
    // The same codes as every S3 error (S3Error::ToStatus), with the scrubbed message.
    return Status::FromCode(e.ToStatus().code(), msg);
  }
  std::optional<std::string_view> creds = xml::FindElement(resp->body, "Credentials");
  if (!creds) return Status::Corruption(what + ": the response has no <Credentials>");
  SourcedCredentials out;
  out.credentials.access_key_id = xml::FindText(*creds, {"AccessKeyId"}).value_or("");
  out.credentials.secret_access_key = xml::FindText(*creds, {"SecretAccessKey"}).value_or("");
  out.credentials.session_token = xml::FindText(*creds, {"SessionToken"}).value_or("");
  std::string expiration = xml::FindText(*creds, {"Expiration"}).value_or("");
  if (out.credentials.access_key_id.empty() || out.credentials.secret_access_key.empty() ||
      out.credentials.session_token.empty()) {
    return Status::Corruption(what + ": the response lacks AccessKeyId, SecretAccessKey or SessionToken");
  }
  out.credentials.expiration = ParseIso8601(expiration);
  if (!out.credentials.expiration)
    return Status::Corruption(what + ": the response's Expiration is not ISO 8601");
  out.source = "web identity (role " + *role + ")";
  return out;
}

Result<SourcedCredentials> CredentialsFromContainer(const CredentialsOptions& o) {
  std::optional<std::string> relative = Env(o, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  std::optional<std::string> full = Env(o, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (!relative && !full) return Status::NotFound("container: AWS_CONTAINER_CREDENTIALS_*_URI is not set");
  HttpCall r;
  r.method = "GET";
  if (relative) {  // the SDKs give the relative form precedence
    r.url = o.container_relative_base + (relative->starts_with("/") ? "" : "/") + *relative;
  } else {
    r.url = *full;
    // Plain HTTP only to the loopback and the documented ECS / EKS Pod Identity addresses: anywhere else the
    // authorization token and the credentials would cross a network unencrypted.
    std::string lower = Lower(*full);
    if (lower.starts_with("http://")) {
      if (!IsAllowedPlainHttpHost(UrlHost(*full))) {
        return Status::InvalidArgument("container: AWS_CONTAINER_CREDENTIALS_FULL_URI uses http:// to " +
                                       UrlHost(*full) +
                                       ", which is neither loopback nor an ECS/EKS address; use https://");
      }
    } else if (!lower.starts_with("https://")) {
      return Status::InvalidArgument("container: AWS_CONTAINER_CREDENTIALS_FULL_URI is not an http(s) URL");
    }
  }
  std::string token;
  if (std::optional<std::string> token_file = Env(o, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
    std::string path = ExpandHome(*token_file, o);
    Result<FileState> read = ReadWholeFile(path, token);
    if (!read.ok()) return read.status().WithContext("container: authorization token file");
    if (*read == FileState::kMissing) {
      return Status::InvalidArgument("container: the authorization token file " + path + " does not exist");
    }
    token = std::string(Trim(token));
  } else {
    token = Env(o, "AWS_CONTAINER_AUTHORIZATION_TOKEN").value_or("");
  }
  if (token.find_first_of("\r\n") != std::string::npos) {
    return Status::InvalidArgument("container: the authorization token contains a line break");
  }
  if (!token.empty()) r.headers.emplace_back("Authorization", token);
  std::string what = "container credentials from " + UrlHost(r.url);
  Result<HttpResponse> resp = SendProviderRequest(r, o, /*use_proxy=*/false);
  if (!resp.ok()) return Status::IOError(Scrub("container: " + resp.status().message(), {token}));
  if (resp->status != 200) {
    return Status::IOError(
        what + ": HTTP " + std::to_string(resp->status) +
        (resp->status == 401 || resp->status == 403 ? " (authorization token refused)" : ""));
  }
  Result<Credentials> c = ParseCredentialJson(resp->body, what);
  if (!c.ok()) return c.status();
  return SourcedCredentials{std::move(*c), what};
}

Result<SourcedCredentials> CredentialsFromInstanceMetadata(const CredentialsOptions& o) {
  if (Lower(Env(o, "AWS_EC2_METADATA_DISABLED").value_or("")) == "true") {
    return Status::NotFound("instance metadata: disabled by AWS_EC2_METADATA_DISABLED");
  }
  std::string endpoint = Env(o, "AWS_EC2_METADATA_SERVICE_ENDPOINT").value_or("http://169.254.169.254");
  while (endpoint.ends_with("/")) endpoint.pop_back();
  std::string host = UrlHost(endpoint);

  // IMDSv2: a session token first (PUT, which a misconfigured proxy or an SSRF cannot forge), then the role.
  HttpCall put;
  put.method = "PUT";
  put.url = endpoint + "/latest/api/token";
  put.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
  Result<HttpResponse> token_resp = SendProviderRequest(put, o, /*use_proxy=*/false);
  if (!token_resp.ok()) {
    // Not on EC2 (or IMDS unreachable): the usual case on a laptop, so "not configured", not a failure.
    return Status::NotFound("instance metadata: no metadata service at " + host + " (" +
                            token_resp.status().message() + ")");
  }
  if (token_resp->status == 403 || token_resp->status == 404 || token_resp->status == 405) {
    return Status::NotFound("instance metadata: " + host + " refused an IMDSv2 token (HTTP " +
                            std::to_string(token_resp->status) + "; IMDS disabled or IMDSv2 unsupported)");
  }
  if (token_resp->status != 200 || Trim(token_resp->body).empty()) {
    return Status::IOError("instance metadata: IMDSv2 token request to " + host + " answered HTTP " +
                           std::to_string(token_resp->status));
  }
  std::string imds_token(Trim(token_resp->body));
  if (imds_token.find_first_of("\r\n") != std::string::npos) {
    return Status::Corruption("instance metadata: the IMDSv2 token from " + host + " contains a line break");
  }

  HttpCall get;
  get.method = "GET";
  get.headers = {{"X-aws-ec2-metadata-token", imds_token}};
  get.url = endpoint + "/latest/meta-data/iam/security-credentials/";
  Result<HttpResponse> role_resp = SendProviderRequest(get, o, /*use_proxy=*/false);
  if (!role_resp.ok())
    return Status::IOError(Scrub("instance metadata: " + role_resp.status().message(), {imds_token}));
  if (role_resp->status == 404)
    return Status::NotFound("instance metadata: no IAM role is attached to this instance");
  if (role_resp->status != 200) {
    return Status::IOError("instance metadata: listing the instance's role at " + host + " answered HTTP " +
                           std::to_string(role_resp->status));
  }
  std::string role(Trim(role_resp->body.substr(0, role_resp->body.find('\n'))));
  if (role.empty()) return Status::NotFound("instance metadata: no IAM role is attached to this instance");

  get.url = endpoint + "/latest/meta-data/iam/security-credentials/" + UriEncode(role, true);
  Result<HttpResponse> creds_resp = SendProviderRequest(get, o, /*use_proxy=*/false);
  std::string what = "instance metadata (role " + role.substr(0, 128) + ")";
  if (!creds_resp.ok())
    return Status::IOError(Scrub(what + ": " + creds_resp.status().message(), {imds_token}));
  if (creds_resp->status != 200) {
    return Status::IOError(what + ": HTTP " + std::to_string(creds_resp->status));
  }
  ROCKY_ASSIGN_OR_RETURN(Credentials c, ParseCredentialJson(creds_resp->body, what));
  return SourcedCredentials{std::move(c), what};
}

Result<SourcedCredentials> ResolveCredentialsChain(const CredentialsOptions& o) {
  using Source = Result<SourcedCredentials> (*)(const CredentialsOptions&);
  static constexpr Source kSources[] = {&CredentialsFromEnvironment, &CredentialsFromProfile,
                                        &CredentialsFromWebIdentity, &CredentialsFromContainer,
                                        &CredentialsFromInstanceMetadata};
  std::string tried;
  for (Source source : kSources) {
    Result<SourcedCredentials> r = source(o);
    if (r.ok() || !r.status().IsNotFound()) return r;
    tried += "\n  " + r.status().message();
  }
  return Status::NotFound("no AWS credentials found; tried, in order:" + tried);
}

CredentialsProvider::CredentialsProvider(CredentialsOptions options,
                                         std::function<Result<SourcedCredentials>()> resolve)
    : options_(std::move(options)), resolve_(std::move(resolve)) {
  if (!resolve_) {
    resolve_ = [this] { return ResolveCredentialsChain(options_); };
  }
}

Result<SourcedCredentials> CredentialsProvider::Get() {
  std::lock_guard lock(mu_);
  const auto now = options_.now();
  if (cached_ &&
      (!cached_->credentials.expiration || *cached_->credentials.expiration - now > kRefreshWindow)) {
    return *cached_;
  }
  Result<SourcedCredentials> fresh = resolve_();
  if (fresh.ok()) {
    cached_ = *fresh;
    return fresh;
  }
  if (cached_ && cached_->credentials.expiration && *cached_->credentials.expiration > now) return *cached_;
  return fresh.status();
}

void CredentialsProvider::Invalidate() {
  std::lock_guard lock(mu_);
  cached_.reset();
}

}  // namespace rocky::sync
