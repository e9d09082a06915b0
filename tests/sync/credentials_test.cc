// The credentials chain, source by source, against small local HTTP servers that answer as AWS documents its
// services (STS AssumeRoleWithWebIdentity, the ECS/EKS container credentials endpoint, EC2 IMDSv2). The
// process environment is never touched: every test passes its own variables through CredentialsOptions::env.
#include "rocky/sync/credentials.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "sigv4.h"  // internal to sync/s3: UriEncode

using namespace rocky::sync;
namespace fs = std::filesystem;
using rocky::base::Status;

namespace {

constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG+SECRETbPxRfiCYEXAMPLEKEY";
constexpr const char* kToken = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKENabc123";
constexpr const char* kWebToken = "eyJhbGciOiJSUzI1NiJ9.WEBIDENTITYTOKENpayload.sig";
constexpr const char* kContainerAuth = "CONTAINERAUTHTOKEN-9f8e7d";

// ---- a tiny blocking HTTP/1.1 server on 127.0.0.1, one connection at a time, Connection: close ----

struct SeenRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
};

struct Reply {
  int status = 200;
  std::string body;
};

class TestServer {
 public:
  explicit TestServer(std::function<Reply(const SeenRequest&)> handler) : handler_(std::move(handler)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~TestServer() {
    stopping_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<SeenRequest> requests() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  void Loop() {
    while (!stopping_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) {
        if (stopping_) return;
        continue;
      }
      Serve(c);
      close(c);
    }
  }
  void Serve(int c) {
    std::string data;
    char buf[4096];
    size_t header_end;
    while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = read(c, buf, sizeof(buf));
      if (n <= 0) return;
      data.append(buf, static_cast<size_t>(n));
    }
    SeenRequest req;
    std::string head = data.substr(0, header_end);
    size_t line_end = head.find("\r\n");
    std::string request_line = head.substr(0, line_end);
    req.method = request_line.substr(0, request_line.find(' '));
    req.path = request_line.substr(req.method.size() + 1, request_line.rfind(' ') - req.method.size() - 1);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t end = head.find("\r\n", pos);
      if (end == std::string::npos) end = head.size();
      std::string line = head.substr(pos, end - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        size_t v = line.find_first_not_of(' ', colon + 1);
        req.headers[name] = v == std::string::npos ? "" : line.substr(v);
      }
      pos = end + 2;
    }
    size_t length = req.headers.contains("content-length") ? std::stoul(req.headers["content-length"]) : 0;
    req.body = data.substr(header_end + 4);
    while (req.body.size() < length) {
      ssize_t n = read(c, buf, sizeof(buf));
      if (n <= 0) break;
      req.body.append(buf, static_cast<size_t>(n));
    }
    Reply reply = handler_(req);
    {
      std::lock_guard lock(mu_);
      seen_.push_back(req);
    }
    std::string out = "HTTP/1.1 " + std::to_string(reply.status) +
                      " X\r\nContent-Length: " + std::to_string(reply.body.size()) +
                      "\r\nConnection: close\r\n\r\n" + reply.body;
    size_t off = 0;
    while (off < out.size()) {
      // MSG_NOSIGNAL: a client that gives up mid-reply (a body over its limit) must not SIGPIPE the test.
      ssize_t n = send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  }

  std::function<Reply(const SeenRequest&)> handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<SeenRequest> seen_;
};

// A port on 127.0.0.1 where nothing listens (bound, then released).
std::string ClosedUrl() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/rocky-creds-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
  std::string Write(const std::string& name, const std::string& text) const {
    fs::path p = path / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
};

using Vars = std::map<std::string, std::string, std::less<>>;

// Options whose environment is `vars` only; HOME points nowhere useful unless set; IMDS points at a closed
// port so the chain's last source fails fast instead of waiting for 169.254.169.254.
CredentialsOptions Options(Vars vars) {
  if (!vars.contains("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
    vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = ClosedUrl();
  CredentialsOptions o;
  o.env = [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  o.connect_timeout = std::chrono::milliseconds(1000);
  o.total_timeout = std::chrono::milliseconds(3000);
  return o;
}

// AWS's documented AssumeRoleWithWebIdentity response
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html, "Examples").
std::string StsSuccess(const std::string& expiration) {
  return R"(<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A</SubjectFromWebIdentityToken>
    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>)" +
         std::string(kToken) + R"(</SessionToken>
      <SecretAccessKey>)" +
         std::string(kSecret) + R"(</SecretAccessKey>
      <Expiration>)" +
         expiration + R"(</Expiration>
      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
    <SourceIdentity>SourceIdentityValue</SourceIdentity>
    <Provider>www.amazon.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>)";
}

// The container endpoint's and IMDS's documented credential document.
std::string CredentialJson(const std::string& expiration, bool imds) {
  std::string out = "{\n";
  if (imds)
    out += R"(  "Code" : "Success", "LastUpdated" : "2026-11-21T09:00:00Z", "Type" : "AWS-HMAC",)"
           "\n";
  out += R"(  "AccessKeyId" : "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey" : ")" + std::string(kSecret) +
         R"(", "Token" : ")" + std::string(kToken) + R"(", "Expiration" : ")" + expiration + "\"\n}";
  if (!imds) out.insert(1, R"( "RoleArn": "arn:aws:iam::123456789012:role/task",)");
  return out;
}

std::string Iso(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// A secret (or any long piece of it) in a message fails the test.
void CheckNoSecret(const Status& s) {
  CAPTURE(s.ToString());
  for (std::string_view secret : {std::string_view(kSecret), std::string_view(kToken),
                                  std::string_view(kWebToken), std::string_view(kContainerAuth)}) {
    CHECK_FALSE(Contains(s.ToString(), secret));
    CHECK_FALSE(Contains(s.ToString(), secret.substr(0, 12)));
  }
}

}  // namespace

TEST_CASE("credentials, environment: both keys, the optional token, and a half-configured pair") {
  auto r = CredentialsFromEnvironment(Options(
      {{"AWS_ACCESS_KEY_ID", "AKIDENV"}, {"AWS_SECRET_ACCESS_KEY", kSecret}, {"AWS_SESSION_TOKEN", kToken}}));
  REQUIRE(r.ok());
  CHECK(r->credentials.access_key_id == "AKIDENV");
  CHECK(r->credentials.secret_access_key == kSecret);
  CHECK(r->credentials.session_token == kToken);
  CHECK(!r->credentials.expiration);
  CHECK(r->source == "environment");

  CHECK(CredentialsFromEnvironment(Options({})).status().IsNotFound());
  CHECK(CredentialsFromEnvironment(Options({{"AWS_ACCESS_KEY_ID", ""}}))
            .status()
            .IsNotFound());  // empty = unset
  auto half = CredentialsFromEnvironment(Options({{"AWS_SECRET_ACCESS_KEY", kSecret}}));
  REQUIRE(!half.ok());
  CHECK(half.status().code() == Status::Code::kInvalidArgument);
  CHECK(Contains(half.status().message(), "AWS_ACCESS_KEY_ID is not"));
  CheckNoSecret(half.status());
}

TEST_CASE("credentials, shared files: profiles, config-file sections, precedence, bad files") {
  TempDir dir;
  std::string creds =
      dir.Write("home/.aws/credentials",
                "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = " +
                    std::string(kSecret) +
                    "\n\n[dev]\r\naws_access_key_id=AKIDDEV\r\n"
                    "aws_secret_access_key=" +
                    kSecret + "\r\naws_session_token=" + kToken + "\r\n");
  dir.Write(
      "home/.aws/config",
      "[default]\nregion = eu-west-1\n[profile cfg]\naws_access_key_id = AKIDCFG\naws_secret_access_key = " +
          std::string(kSecret) +
          "\ns3 =\n  max_concurrent_requests = 4\n[profile dev]\n"
          "aws_access_key_id = AKIDDEVCONFIG\naws_secret_access_key = x\n[profile role]\n"
          "role_arn = arn:aws:iam::1:role/r\nsource_profile = default\n[sso-session s]\nsso_region = x\n");
  std::string home = (dir.path / "home").string();

  auto def = CredentialsFromProfile(Options({{"HOME", home}}));
  REQUIRE(def.ok());
  CHECK(def->credentials.access_key_id == "AKIDDEFAULT");
  CHECK(Contains(def->source, "profile default in " + creds));

  // The credentials file wins over the config file for the same profile; CRLF line ends are fine.
  auto dev = CredentialsFromProfile(Options({{"HOME", home}, {"AWS_PROFILE", "dev"}}));
  REQUIRE(dev.ok());
  CHECK(dev->credentials.access_key_id == "AKIDDEV");
  CHECK(dev->credentials.session_token == kToken);

  auto cfg = CredentialsFromProfile(Options({{"HOME", home}, {"AWS_PROFILE", "cfg"}}));
  REQUIRE(cfg.ok());
  CHECK(cfg->credentials.access_key_id == "AKIDCFG");

  // Explicit file locations.
  std::string other =
      dir.Write("elsewhere/creds", "[default]\naws_access_key_id=AKIDOTHER\naws_secret_access_key=s\n");
  auto moved = CredentialsFromProfile(Options({{"HOME", home}, {"AWS_SHARED_CREDENTIALS_FILE", other}}));
  REQUIRE(moved.ok());
  CHECK(moved->credentials.access_key_id == "AKIDOTHER");

  // Not configured: no files at all.
  CHECK(CredentialsFromProfile(Options({{"HOME", (dir.path / "nohome").string()}})).status().IsNotFound());
  CHECK(CredentialsFromProfile(Options({})).status().IsNotFound());

  // A profile the user asked for that does not exist, an unsupported profile type, a broken file.
  auto missing = CredentialsFromProfile(Options({{"HOME", home}, {"AWS_PROFILE", "nope"}}));
  REQUIRE(!missing.ok());
  CHECK(missing.status().code() == Status::Code::kInvalidArgument);
  CHECK(Contains(missing.status().message(), "'nope'"));
  auto role = CredentialsFromProfile(Options({{"HOME", home}, {"AWS_PROFILE", "role"}}));
  REQUIRE(!role.ok());
  CHECK(role.status().code() == Status::Code::kNotSupported);
  CHECK(Contains(role.status().message(), "role_arn"));

  std::string broken =
      dir.Write("broken", "[default]\naws_access_key_id = AKID\n" + std::string(kSecret) + "\n");
  auto bad = CredentialsFromProfile(Options({{"AWS_SHARED_CREDENTIALS_FILE", broken}}));
  REQUIRE(!bad.ok());
  CHECK(bad.status().code() == Status::Code::kInvalidArgument);
  CHECK(Contains(bad.status().message(), broken + ":3:"));
  CheckNoSecret(bad.status());

  std::string half = dir.Write("half", "[default]\naws_access_key_id = AKID\n");
  auto h = CredentialsFromProfile(Options({{"AWS_SHARED_CREDENTIALS_FILE", half}}));
  REQUIRE(!h.ok());
  CHECK(Contains(h.status().message(), "without aws_secret_access_key"));

  fs::create_directories(dir.path / "unreadable");
  std::string locked = dir.Write("locked", "[default]\n");
  fs::permissions(locked, fs::perms::none);
  if (geteuid() != 0) {  // root reads anything
    auto lr = CredentialsFromProfile(Options({{"AWS_SHARED_CREDENTIALS_FILE", locked}}));
    REQUIRE(!lr.ok());
    CHECK(lr.status().code() == Status::Code::kIOError);
    CHECK(Contains(lr.status().message(), locked));
  }
}

TEST_CASE("credentials, web identity: STS AssumeRoleWithWebIdentity request, response and errors") {
  TempDir dir;
  std::string token_file = dir.Write("token", std::string(kWebToken) + "\n");
  auto expiration = std::chrono::system_clock::now() + std::chrono::hours(1);
  TestServer sts([&](const SeenRequest&) { return Reply{200, StsSuccess(Iso(expiration))}; });
  CredentialsOptions o = Options({{"AWS_WEB_IDENTITY_TOKEN_FILE", token_file},
                                  {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/rocky"},
                                  {"AWS_ROLE_SESSION_NAME", "run-42"}});
  o.sts_endpoint = sts.url();
  auto r = CredentialsFromWebIdentity(o);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->credentials.access_key_id == "ASgeIAIOSFODNN7EXAMPLE");
  CHECK(r->credentials.secret_access_key == kSecret);
  CHECK(r->credentials.session_token == kToken);
  REQUIRE(r->credentials.expiration);
  CHECK(std::chrono::abs(*r->credentials.expiration - expiration) < std::chrono::seconds(2));
  CHECK(Contains(r->source, "arn:aws:iam::123456789012:role/rocky"));

  auto seen = sts.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].path == "/");
  CHECK(Contains(seen[0].headers["content-type"], "application/x-www-form-urlencoded"));
  CHECK(Contains(seen[0].body, "Action=AssumeRoleWithWebIdentity"));
  CHECK(Contains(seen[0].body, "Version=2011-06-15"));
  CHECK(Contains(seen[0].body, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Frocky"));
  CHECK(Contains(seen[0].body, "RoleSessionName=run-42"));
  CHECK(Contains(seen[0].body, "WebIdentityToken=" + UriEncode(kWebToken, true)));

  // STS's documented error shape; the message must not echo the token even if STS did.
  TestServer refusing([&](const SeenRequest&) {
    return Reply{400, std::string("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
                                  "<Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Token ") +
                          kWebToken +
                          " is expired</Message></Error><RequestId>req-1</RequestId></ErrorResponse>"};
  });
  o.sts_endpoint = refusing.url();
  auto err = CredentialsFromWebIdentity(o);
  REQUIRE(!err.ok());
  CHECK(err.status().code() == Status::Code::kPermissionDenied);
  CHECK(Contains(err.status().message(), "InvalidIdentityToken"));
  CHECK(Contains(err.status().message(), "req-1"));
  CheckNoSecret(err.status());

  TestServer garbage([&](const SeenRequest&) { return Reply{200, "<html>not sts</html>"}; });
  o.sts_endpoint = garbage.url();
  auto g = CredentialsFromWebIdentity(o);
  REQUIRE(!g.ok());
  CHECK(g.status().IsCorruption());

  o.sts_endpoint = ClosedUrl();
  auto down = CredentialsFromWebIdentity(o);
  REQUIRE(!down.ok());
  CHECK(down.status().code() == Status::Code::kIOError);
  CHECK(Contains(down.status().message(), "web identity"));

  CHECK(CredentialsFromWebIdentity(Options({})).status().IsNotFound());
  auto no_role = CredentialsFromWebIdentity(Options({{"AWS_WEB_IDENTITY_TOKEN_FILE", token_file}}));
  CHECK(no_role.status().code() == Status::Code::kInvalidArgument);
  auto no_file =
      CredentialsFromWebIdentity(Options({{"AWS_WEB_IDENTITY_TOKEN_FILE", (dir.path / "absent").string()},
                                          {"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}}));
  REQUIRE(!no_file.ok());
  CHECK(Contains(no_file.status().message(), "absent"));
}

TEST_CASE(
    "credentials: the Expiration a server sends is read by the project's timestamp parser, never past its "
    "end") {
  std::string expiration;
  TestServer ecs([&](const SeenRequest&) { return Reply{200, CredentialJson(expiration, false)}; });
  auto fetch = [&](const std::string& value) {
    expiration = value;
    return CredentialsFromContainer(Options({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", ecs.url() + "/c"}}));
  };
  // 2026-11-21T10:00:00Z is 1795255200 s after the epoch.
  const auto expected = std::chrono::system_clock::time_point(std::chrono::seconds(1795255200));
  for (const char* good : {"2026-11-21T10:00:00Z", "2026-11-21T10:00:00.123Z", "2026-11-21T12:00:00+02:00",
                           "2026-11-21T05:30:00-04:30"}) {
    auto r = fetch(good);
    REQUIRE_MESSAGE(r.ok(), good << ": " << r.status().ToString());
    REQUIRE(r->credentials.expiration);
    CHECK_MESSAGE(*r->credentials.expiration == expected, good);
  }
  // Malformed offsets: the old parser accepted "+1:2" with sscanf("%2d:%2d") and then stepped 6 bytes on,
  // past the end of the text (a heap over-read on network data).
  for (const char* bad : {"2026-11-21T10:00:00+1:2", "2026-11-21T10:00:00+1", "2026-11-21T10:00:00+01:2",
                          "2026-11-21T10:00:00+", "2026-11-21T10:00:00", "2026-11-21T10:00:00Zjunk",
                          "2026-13-21T10:00:00Z", "soon"}) {
    auto r = fetch(bad);
    REQUIRE_MESSAGE(!r.ok(), bad);
    CHECK_MESSAGE(r.status().code() == Status::Code::kCorruption, bad);
    CHECK(Contains(r.status().message(), "Expiration"));
  }
}

TEST_CASE("credentials, container: relative and full URI, authorization token and token file") {
  auto expiration = std::chrono::system_clock::now() + std::chrono::hours(6);
  TestServer ecs([&](const SeenRequest& r) {
    // The endpoint checks the Authorization header when the agent configured one (EKS Pod Identity does).
    if (r.path == "/v2/credentials/abc") return Reply{200, CredentialJson(Iso(expiration), false)};
    if (r.path == "/auth" && r.headers.contains("authorization") &&
        r.headers.at("authorization") == kContainerAuth) {
      return Reply{200, CredentialJson(Iso(expiration), false)};
    }
    if (r.path == "/auth") return Reply{401, R"({"code":"AccessDenied","message":"bad token"})"};
    return Reply{404, ""};
  });
  CredentialsOptions rel = Options({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc"}});
  rel.container_relative_base = ecs.url();
  auto r = CredentialsFromContainer(rel);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->credentials.access_key_id == "ASIAIOSFODNN7EXAMPLE");
  CHECK(r->credentials.session_token == kToken);
  CHECK(r->credentials.expiration.has_value());

  auto full = CredentialsFromContainer(Options({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", ecs.url() + "/auth"},
                                                {"AWS_CONTAINER_AUTHORIZATION_TOKEN", kContainerAuth}}));
  REQUIRE_MESSAGE(full.ok(), full.status().ToString());
  CHECK(ecs.requests().back().headers.at("authorization") == kContainerAuth);

  // The token file takes precedence over the variable (EKS Pod Identity rotates the file).
  TempDir dir;
  std::string token_file = dir.Write("token", std::string(kContainerAuth) + "\n");
  auto from_file =
      CredentialsFromContainer(Options({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", ecs.url() + "/auth"},
                                        {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong"},
                                        {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file}}));
  CHECK(from_file.ok());

  auto refused =
      CredentialsFromContainer(Options({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", ecs.url() + "/auth"},
                                        {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token-123"}}));
  REQUIRE(!refused.ok());
  CHECK(Contains(refused.status().message(), "HTTP 401"));
  CHECK_FALSE(Contains(refused.status().message(), "wrong-token-123"));

  auto plain_remote = CredentialsFromContainer(
      Options({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://credentials.example.com/creds"}}));
  REQUIRE(!plain_remote.ok());
  CHECK(plain_remote.status().code() == Status::Code::kInvalidArgument);
  CHECK(Contains(plain_remote.status().message(), "https://"));

  CHECK(CredentialsFromContainer(Options({})).status().IsNotFound());
}

TEST_CASE("credentials: an endpoint's answer above 1 MiB is refused, not buffered") {
  // Credential documents are a few KiB; the transport stops reading past the limit.
  TestServer ecs([](const SeenRequest&) { return Reply{200, std::string(size_t{2} << 20, 'x')}; });
  CredentialsOptions o = Options({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc"}});
  o.container_relative_base = ecs.url();
  auto r = CredentialsFromContainer(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kIOError);
  CHECK(Contains(r.status().message(), "response larger than 1048576 bytes"));

  // Exactly at the limit is still read (and then judged: not JSON).
  TestServer at_limit([](const SeenRequest&) { return Reply{200, std::string(size_t{1} << 20, 'x')}; });
  o.container_relative_base = at_limit.url();
  auto whole = CredentialsFromContainer(o);
  REQUIRE_FALSE(whole.ok());
  CHECK_FALSE(Contains(whole.status().message(), "larger than"));
}

namespace {

// IMDSv2 as documented: PUT /latest/api/token with a TTL header returns a token; every metadata GET must
// carry it in X-aws-ec2-metadata-token (401 otherwise); the role list, then the role's credential document.
struct FakeImds {
  std::string credentials_body;
  int role_status = 200;
  std::atomic<int> credential_fetches{0};
  TestServer server{[this](const SeenRequest& r) { return Handle(r); }};

  Reply Handle(const SeenRequest& r) {
    if (r.method == "PUT" && r.path == "/latest/api/token") {
      if (!r.headers.contains("x-aws-ec2-metadata-token-ttl-seconds")) return Reply{400, ""};
      return Reply{200, "IMDSSESSIONTOKEN=="};
    }
    if (!r.headers.contains("x-aws-ec2-metadata-token") ||
        r.headers.at("x-aws-ec2-metadata-token") != "IMDSSESSIONTOKEN==") {
      return Reply{401, ""};
    }
    if (r.method == "GET" && r.path == "/latest/meta-data/iam/security-credentials/") {
      return Reply{role_status, role_status == 200 ? "rocky-node-role\n" : ""};
    }
    if (r.method == "GET" && r.path == "/latest/meta-data/iam/security-credentials/rocky-node-role") {
      ++credential_fetches;
      return Reply{200, credentials_body};
    }
    return Reply{404, ""};
  }
};

}  // namespace

TEST_CASE("credentials, instance metadata: the IMDSv2 token flow, no role, disabled, unreachable") {
  FakeImds imds;
  imds.credentials_body = CredentialJson(Iso(std::chrono::system_clock::now() + std::chrono::hours(6)), true);
  auto r =
      CredentialsFromInstanceMetadata(Options({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.server.url()}}));
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->credentials.access_key_id == "ASIAIOSFODNN7EXAMPLE");
  CHECK(r->credentials.secret_access_key == kSecret);
  CHECK(Contains(r->source, "rocky-node-role"));
  auto seen = imds.server.requests();
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].method == "PUT");
  CHECK(seen[0].headers["x-aws-ec2-metadata-token-ttl-seconds"] == "21600");
  CHECK(seen[1].headers["x-aws-ec2-metadata-token"] == "IMDSSESSIONTOKEN==");
  CHECK(seen[2].path == "/latest/meta-data/iam/security-credentials/rocky-node-role");

  imds.role_status = 404;
  auto no_role =
      CredentialsFromInstanceMetadata(Options({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.server.url()}}));
  CHECK(no_role.status().IsNotFound());
  CHECK(Contains(no_role.status().message(), "no IAM role"));

  imds.role_status = 200;
  imds.credentials_body =
      std::string(R"({"Code":"Failure","Message":"x","SecretAccessKey":")") + kSecret + "\"}";
  auto failed =
      CredentialsFromInstanceMetadata(Options({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.server.url()}}));
  REQUIRE(!failed.ok());
  CHECK(Contains(failed.status().message(), "Failure"));
  CheckNoSecret(failed.status());

  size_t before = imds.server.requests().size();
  auto disabled = CredentialsFromInstanceMetadata(Options(
      {{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.server.url()}, {"AWS_EC2_METADATA_DISABLED", "TRUE"}}));
  CHECK(disabled.status().IsNotFound());
  CHECK(imds.server.requests().size() == before);  // not even a token request

  auto away = CredentialsFromInstanceMetadata(Options({}));
  CHECK(away.status().IsNotFound());
  CHECK(Contains(away.status().message(), "no metadata service"));
}

TEST_CASE("credentials: metadata services are reached directly, never through http_proxy; STS through it") {
  // A proxy that records what reaches it and refuses it.
  TestServer proxy([](const SeenRequest&) { return Reply{502, "proxy says no"}; });
  struct ProxyVariable {
    explicit ProxyVariable(const std::string& url) {
      REQUIRE(::setenv("http_proxy", url.c_str(), 1) == 0);
      REQUIRE(::setenv("NO_PROXY", "", 1) == 0);
      REQUIRE(::setenv("no_proxy", "", 1) == 0);
    }
    ~ProxyVariable() {
      ::unsetenv("http_proxy");
      ::unsetenv("NO_PROXY");
      ::unsetenv("no_proxy");
    }
  } variable(proxy.url());

  FakeImds imds;
  imds.credentials_body = CredentialJson(Iso(std::chrono::system_clock::now() + std::chrono::hours(6)), true);
  auto from_imds =
      CredentialsFromInstanceMetadata(Options({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.server.url()}}));
  CHECK_MESSAGE(from_imds.ok(), from_imds.status().ToString());
  CHECK(imds.server.requests().size() == 3);
  CHECK(proxy.requests().empty());

  // STS is an ordinary HTTPS service: a configured proxy applies (here it refuses).
  TempDir dir;
  std::string token_file = dir.Write("token", std::string(kWebToken) + "\n");
  TestServer sts([](const SeenRequest&) { return Reply{500, ""}; });
  CredentialsOptions o = Options({{"AWS_WEB_IDENTITY_TOKEN_FILE", token_file},
                                  {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/rocky"}});
  o.sts_endpoint = sts.url();
  auto via_proxy = CredentialsFromWebIdentity(o);
  CHECK_FALSE(via_proxy.ok());
  CHECK(sts.requests().empty());
  CHECK(proxy.requests().size() == 1);
}

TEST_CASE("credentials chain: the SDK order, and a broken configured source stops the chain") {
  TempDir dir;
  std::string creds =
      dir.Write("creds", "[default]\naws_access_key_id=AKIDPROFILE\naws_secret_access_key=s\n");
  std::string token_file = dir.Write("token", kWebToken);
  auto exp = Iso(std::chrono::system_clock::now() + std::chrono::hours(1));
  TestServer sts([&](const SeenRequest&) { return Reply{200, StsSuccess(exp)}; });
  TestServer ecs([&](const SeenRequest&) { return Reply{200, CredentialJson(exp, false)}; });
  FakeImds imds;
  imds.credentials_body = CredentialJson(exp, true);

  Vars all = {{"AWS_ACCESS_KEY_ID", "AKIDENV"},
              {"AWS_SECRET_ACCESS_KEY", kSecret},
              {"AWS_SHARED_CREDENTIALS_FILE", creds},
              {"AWS_WEB_IDENTITY_TOKEN_FILE", token_file},
              {"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"},
              {"AWS_CONTAINER_CREDENTIALS_FULL_URI", ecs.url() + "/creds"},
              {"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.server.url()}};
  auto resolve = [&](const Vars& vars) {
    CredentialsOptions o = Options(vars);
    o.sts_endpoint = sts.url();
    return ResolveCredentialsChain(o);
  };
  Vars v = all;
  auto r = resolve(v);
  REQUIRE(r.ok());
  CHECK(r->source == "environment");
  v.erase("AWS_ACCESS_KEY_ID");
  v.erase("AWS_SECRET_ACCESS_KEY");
  r = resolve(v);
  REQUIRE(r.ok());
  CHECK(r->credentials.access_key_id == "AKIDPROFILE");
  v.erase("AWS_SHARED_CREDENTIALS_FILE");
  r = resolve(v);
  REQUIRE(r.ok());
  CHECK(Contains(r->source, "web identity"));
  v.erase("AWS_WEB_IDENTITY_TOKEN_FILE");
  v.erase("AWS_ROLE_ARN");
  r = resolve(v);
  REQUIRE(r.ok());
  CHECK(Contains(r->source, "container"));
  v.erase("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  r = resolve(v);
  REQUIRE(r.ok());
  CHECK(Contains(r->source, "instance metadata"));
  v.erase("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  r = resolve(v);
  REQUIRE(!r.ok());
  CHECK(r.status().IsNotFound());
  for (const char* source :
       {"environment", "shared files", "web identity", "container", "instance metadata"}) {
    CHECK(Contains(r.status().message(), source));
  }

  // Web identity configured but STS unreachable: the error is reported, the container endpoint never asked.
  size_t ecs_before = ecs.requests().size();
  Vars broken = all;
  broken.erase("AWS_ACCESS_KEY_ID");
  broken.erase("AWS_SECRET_ACCESS_KEY");
  broken.erase("AWS_SHARED_CREDENTIALS_FILE");
  CredentialsOptions o = Options(broken);
  o.sts_endpoint = ClosedUrl();
  auto stopped = ResolveCredentialsChain(o);
  REQUIRE(!stopped.ok());
  CHECK(Contains(stopped.status().message(), "web identity"));
  CHECK(ecs.requests().size() == ecs_before);
}

TEST_CASE(
    "credentials provider: cached, refreshed 5 minutes before expiry, stale-but-valid on refresh failure") {
  using namespace std::chrono;
  auto t0 = system_clock::from_time_t(1'800'000'000);
  auto now = t0;
  int calls = 0;
  bool fail = false;
  CredentialsOptions o = Options({});
  o.now = [&] { return now; };
  CredentialsProvider p(o, [&]() -> Result<SourcedCredentials> {
    ++calls;
    if (fail) return Status::IOError("web identity: STS unreachable");
    SourcedCredentials c{{"AKID" + std::to_string(calls), kSecret, kToken, now + hours(1)}, "test"};
    return c;
  });
  REQUIRE(p.Get().ok());
  CHECK(calls == 1);
  now = t0 + minutes(54);
  CHECK(p.Get()->credentials.access_key_id == "AKID1");
  CHECK(calls == 1);
  now = t0 + minutes(56);  // inside the 5-minute window
  CHECK(p.Get()->credentials.access_key_id == "AKID2");
  CHECK(calls == 2);

  fail = true;
  now = t0 + minutes(56 + 57);  // refresh due, fails, cached still valid for 3 more minutes
  auto stale = p.Get();
  REQUIRE(stale.ok());
  CHECK(stale->credentials.access_key_id == "AKID2");
  now = t0 + minutes(56 + 61);  // expired: the failure is reported
  auto expired = p.Get();
  REQUIRE(!expired.ok());
  CHECK(Contains(expired.status().message(), "STS unreachable"));

  fail = false;
  p.Invalidate();
  CHECK(p.Get().ok());
}

TEST_CASE(
    "credentials provider: over IMDS, near-expiry credentials are fetched again; concurrent Get is safe") {
  FakeImds imds;
  // Expiring in 2 minutes: inside the refresh window, so every Get() fetches again.
  imds.credentials_body =
      CredentialJson(Iso(std::chrono::system_clock::now() + std::chrono::minutes(2)), true);
  CredentialsProvider short_lived(Options({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.server.url()}}));
  REQUIRE(short_lived.Get().ok());
  REQUIRE(short_lived.Get().ok());
  CHECK(imds.credential_fetches == 2);

  imds.credentials_body = CredentialJson(Iso(std::chrono::system_clock::now() + std::chrono::hours(6)), true);
  CredentialsProvider p(Options({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.server.url()}}));
  int before = imds.credential_fetches;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 20; ++j) ok += p.Get().ok() ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 160);
  CHECK(imds.credential_fetches - before == 1);
}

TEST_CASE("credentials: no error message from any source ever contains a secret or a token") {
  TempDir dir;
  std::vector<Status> errors;
  auto collect = [&](const Result<SourcedCredentials>& r) {
    REQUIRE(!r.ok());
    errors.push_back(r.status());
  };
  collect(CredentialsFromEnvironment(
      Options({{"AWS_SECRET_ACCESS_KEY", kSecret}, {"AWS_SESSION_TOKEN", kToken}})));
  collect(CredentialsFromProfile(Options(
      {{"AWS_SHARED_CREDENTIALS_FILE", dir.Write("a", std::string("[default]\n") + kSecret + "\n")}})));
  collect(CredentialsFromProfile(
      Options({{"AWS_SHARED_CREDENTIALS_FILE",
                dir.Write("b", std::string("[default]\naws_secret_access_key=") + kSecret)}})));
  collect(CredentialsFromProfile(
      Options({{"AWS_SHARED_CREDENTIALS_FILE", dir.Write("c", std::string("[") + kSecret + "\n")}})));

  std::string token_file = dir.Write("token", kWebToken);
  Vars wi = {{"AWS_WEB_IDENTITY_TOKEN_FILE", token_file}, {"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}};
  TestServer echo([&](const SeenRequest& r) {  // a hostile endpoint echoing everything it got
    return Reply{403, "<Error><Code>AccessDenied</Code><Message>" + r.body + " " +
                          (r.headers.contains("authorization") ? r.headers.at("authorization") : "") +
                          "</Message></Error>"};
  });
  CredentialsOptions o = Options(wi);
  o.sts_endpoint = echo.url();
  collect(CredentialsFromWebIdentity(o));
  o.sts_endpoint = ClosedUrl();
  collect(CredentialsFromWebIdentity(o));
  TestServer half_sts([&](const SeenRequest&) {
    return Reply{
        200, std::string("<Credentials><SecretAccessKey>") + kSecret + "</SecretAccessKey></Credentials>"};
  });
  o.sts_endpoint = half_sts.url();
  collect(CredentialsFromWebIdentity(o));

  collect(CredentialsFromContainer(Options({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", echo.url() + "/c"},
                                            {"AWS_CONTAINER_AUTHORIZATION_TOKEN", kContainerAuth}})));
  collect(CredentialsFromContainer(Options({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", ClosedUrl() + "/c"},
                                            {"AWS_CONTAINER_AUTHORIZATION_TOKEN", kContainerAuth}})));
  TestServer bad_json([&](const SeenRequest&) {
    return Reply{200, std::string(R"({"AccessKeyId":"A","SecretAccessKey":")") + kSecret +
                          R"(","Expiration":"soon"})"};
  });
  collect(CredentialsFromContainer(Options({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", bad_json.url() + "/c"},
                                            {"AWS_CONTAINER_AUTHORIZATION_TOKEN", kContainerAuth}})));
  collect(CredentialsFromContainer(Options({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/c"},
                                            {"AWS_CONTAINER_AUTHORIZATION_TOKEN", kContainerAuth}})));
  CredentialsProvider p(Options({}), [] { return Result<SourcedCredentials>(Status::NotFound("none")); });
  collect(p.Get());
  REQUIRE(errors.size() == 12);
  for (const Status& s : errors) CheckNoSecret(s);

  CHECK(RedactedCredentials({"AKIDX", kSecret, kToken, {}}) == "AKIDX / secret *** / token ***");
}

TEST_CASE("credentials: AWS_CA_BUNDLE is the trust store of HTTPS credential endpoints") {
  // A bundle that does not exist must fail the TLS setup, naming it; proof that the variable reaches TLS.
  TestServer plain([](const SeenRequest&) { return Reply{200, "{}"}; });
  std::string https = "https" + plain.url().substr(4);
  auto r = CredentialsFromContainer(Options({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", https + "/c"},
                                             {"AWS_CA_BUNDLE", "/nonexistent/rocky-ca.pem"}}));
  REQUIRE(!r.ok());
  CHECK(r.status().code() == Status::Code::kIOError);
  CHECK(Contains(r.status().message(), "/nonexistent/rocky-ca.pem"));
}
