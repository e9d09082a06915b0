// S3StateBackend and OpenRemoteStateBackend against the real S3 fixture (s3_fixture.h): what `[state] backend
// = "s3"` in rocky.toml gives the lifecycle. Also the transport's guarantees a backend relies on, each
// against a real local peer: TLS verification on by default (and AWS_CA_BUNDLE honoured) with `openssl
// s_server`, a stalled server cut off by the stall timeout, and the per-transfer deadline.
#include "rocky/sync/s3_state_backend.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "http_transport.h"  // internal to sync/s3: the transport tests below
#include "rocky/config/config.h"
#include "rocky/engine/db.h"
#include "rocky/sync/remote_state.h"
#include "rocky/sync/remote_state_factory.h"
#include "rocky/sync/state_sync.h"
#include "s3_fixture.h"

namespace {

using namespace rocky_sync_test;  // NOLINT(google-build-using-namespace): the fixture's helpers
using rocky::base::Status;
using rocky::engine::Database;
using rocky::engine::Options;
using rocky::sync::Deadline;
using rocky::sync::OpenRemoteStateBackend;
using rocky::sync::RemoteStateBackend;

Deadline In(std::chrono::milliseconds ms) { return std::chrono::steady_clock::now() + ms; }
Deadline Generous() { return In(std::chrono::seconds(30)); }

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A small state database whose only table holds `tag`.
void MakeState(const std::string& path, const std::string& tag) {
  std::filesystem::remove(path);
  auto db = Database::Open(path, Options{});
  REQUIRE(db.ok());
  auto w = (*db)->BeginWrite();
  REQUIRE(w.ok());
  auto t = (*w)->OpenTable("watermarks");
  REQUIRE(t.ok());
  REQUIRE((*t)->Insert("acme.orders", tag).ok());
  REQUIRE((*w)->Commit().ok());
  REQUIRE((*db)->Close().ok());
}

std::string ReadTag(const std::string& path) {
  Options options;
  options.read_only = true;
  options.create_if_missing = false;
  auto db = Database::Open(path, options);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  auto r = (*db)->BeginRead();
  REQUIRE(r.ok());
  auto t = (*r)->OpenTable("watermarks");
  REQUIRE(t.ok());
  std::string value;
  auto found = (*t)->Get("acme.orders", &value);
  REQUIRE(found.ok());
  REQUIRE(*found);
  return value;
}

// The environment a pipeline on a pod would have: credentials and region from variables, nothing else (no
// HOME, so no shared files; IMDS disabled so a test never waits on 169.254.169.254).
rocky::sync::EnvLookup PodEnvironment(const std::string& secret) {
  auto vars = std::make_shared<std::map<std::string, std::string, std::less<>>>(
      std::map<std::string, std::string, std::less<>>{
          {"AWS_ACCESS_KEY_ID", kAccessKey},
          {"AWS_SECRET_ACCESS_KEY", secret},
          {"AWS_REGION", kRegion},
          {"AWS_EC2_METADATA_DISABLED", "true"},
      });
  return [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars->find(name);
    if (it == vars->end()) return std::nullopt;
    return it->second;
  };
}

rocky::config::StateConfig S3StateConfig(const S3Fixture& s3) {
  rocky::config::StateConfig state;
  state.backend = rocky::config::StateBackend::kS3;
  state.s3_bucket = kBucket;
  state.s3_prefix = "pipelines/bronze/";
  state.s3_endpoint = s3.Endpoint();
  return state;
}

std::unique_ptr<RemoteStateBackend> Open(const rocky::config::StateConfig& state, const std::string& secret) {
  auto backend = OpenRemoteStateBackend(state, PodEnvironment(secret));
  REQUIRE_MESSAGE(backend.ok(), backend.status().ToString());
  return std::move(*backend);
}

// A TCP listener on 127.0.0.1 that accepts connections and never answers: a hung server.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { ::close(fd_); }
  std::string Endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace

TEST_CASE("s3 backend: [state] backend = \"s3\" round-trips the state through the lifecycle's calls") {
  S3Fixture s3;
  TempDir dir;
  auto backend = Open(S3StateConfig(s3), kSecret);
  CHECK(backend->Kind() == "s3");
  CHECK(backend->Key() == "pipelines/bronze/state.redb");
  CHECK(backend->Location() ==
        "s3://" + std::string(kBucket) + "/pipelines/bronze/state.redb at " + s3.Endpoint());

  // First run: nothing remote; the local file is not touched.
  WriteBytes(dir.File("local.redb"), "untouched");
  auto none = backend->Download(dir.File("local.redb"), Generous());
  REQUIRE_MESSAGE(none.ok(), none.status().ToString());
  CHECK_FALSE(none->has_value());
  CHECK(ReadBytes(dir.File("local.redb")) == "untouched");
  auto no_generation = backend->CurrentGeneration(Generous());
  REQUIRE(no_generation.ok());
  CHECK_FALSE(no_generation->has_value());

  MakeState(dir.File("state.redb"), "2026-11-21T10:00:00Z");
  auto up = backend->Upload(dir.File("state.redb"), std::nullopt, Generous());
  REQUIRE_MESSAGE(up.ok(), up.status().ToString());
  CHECK_FALSE(up->generation.empty());
  CHECK(up->bytes > 0);
  auto generation = backend->CurrentGeneration(Generous());
  REQUIRE(generation.ok());
  REQUIRE(generation->has_value());
  CHECK(**generation == up->generation);

  // Another machine (another backend object, same configuration) downloads it.
  auto other = Open(S3StateConfig(s3), kSecret);
  auto down = other->Download(dir.File("local.redb"), Generous());
  REQUIRE_MESSAGE(down.ok(), down.status().ToString());
  REQUIRE(down->has_value());
  CHECK((*down)->generation == up->generation);
  CHECK((*down)->bytes == up->bytes);
  CHECK(ReadTag(dir.File("local.redb")) == "2026-11-21T10:00:00Z");

  // The next upload is conditional on what was downloaded; a stale generation is a conflict.
  MakeState(dir.File("local.redb"), "2026-11-21T11:00:00Z");
  auto second = other->Upload(dir.File("local.redb"), (*down)->generation, Generous());
  REQUIRE_MESSAGE(second.ok(), second.status().ToString());
  auto stale = backend->Upload(dir.File("state.redb"), up->generation, Generous());
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.status().IsBusy());
  CHECK(Contains(stale.status().message(), "another run wrote the remote state"));
  auto absent_expected = backend->Upload(dir.File("state.redb"), std::nullopt, Generous());
  REQUIRE_FALSE(absent_expected.ok());
  CHECK(absent_expected.status().IsBusy());
}

TEST_CASE("s3 backend: the credential chain, region and endpoint come from the environment given") {
  S3Fixture s3;
  TempDir dir;
  rocky::config::StateConfig state = S3StateConfig(s3);
  state.s3_endpoint.clear();  // from AWS_ENDPOINT_URL_S3 instead
  auto vars = std::make_shared<std::map<std::string, std::string, std::less<>>>(
      std::map<std::string, std::string, std::less<>>{
          {"AWS_ENDPOINT_URL_S3", s3.Endpoint()},
          {"AWS_DEFAULT_REGION", kRegion},
          {"AWS_SHARED_CREDENTIALS_FILE", dir.File("credentials")},
          {"AWS_CONFIG_FILE", dir.File("config")},
          {"AWS_PROFILE", "rocky"},
          {"AWS_EC2_METADATA_DISABLED", "true"},
      });
  WriteBytes(dir.File("credentials"),
             std::string("[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = "
                         "nope\n[rocky]\naws_access_key_id = ") +
                 kAccessKey + "\naws_secret_access_key = " + kSecret + "\n");
  WriteBytes(dir.File("config"), "");
  rocky::sync::EnvLookup env = [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars->find(name);
    if (it == vars->end()) return std::nullopt;
    return it->second;
  };
  auto backend = OpenRemoteStateBackend(state, env);
  REQUIRE_MESSAGE(backend.ok(), backend.status().ToString());
  MakeState(dir.File("state.redb"), "from-profile");
  auto up = (*backend)->Upload(dir.File("state.redb"), std::nullopt, Generous());
  REQUIRE_MESSAGE(up.ok(), up.status().ToString());
  auto down = (*backend)->Download(dir.File("copy.redb"), Generous());
  REQUIRE_MESSAGE(down.ok(), down.status().ToString());
  CHECK(ReadTag(dir.File("copy.redb")) == "from-profile");

  // No region anywhere: a clear error naming the settings.
  (*vars).erase("AWS_DEFAULT_REGION");
  auto no_region = OpenRemoteStateBackend(state, env);
  REQUIRE_FALSE(no_region.ok());
  CHECK(Contains(no_region.status().message(), "s3_region"));
  // "local" has no remote.
  state.backend = rocky::config::StateBackend::kLocal;
  CHECK(OpenRemoteStateBackend(state, env).status().code() == Status::Code::kInvalidArgument);
}

TEST_CASE("OpenStateSync returns no StateSync for the local backend") {
  rocky::config::StateConfig local;
  auto created = rocky::sync::OpenStateSync(local, rocky::sync::ProcessEnvironment(), nullptr);
  REQUIRE(created.ok());
  CHECK(*created == nullptr);
}

TEST_CASE("s3 backend: failures carry the retry contract's codes, and the probe says what to fix") {
  S3Fixture s3;
  TempDir dir;
  MakeState(dir.File("state.redb"), "x");

  SUBCASE("the probe writes, reads back and deletes an object next to the state") {
    auto backend = Open(S3StateConfig(s3), kSecret);
    auto legs = backend->Probe(Generous());
    REQUIRE(legs.size() == 1);
    CHECK_MESSAGE(legs[0].status.ok(), legs[0].status.ToString());
    CHECK(legs[0].backend == "s3");
    CHECK(legs[0].hint.empty());
    // Deleted afterwards: the bucket holds nothing under the prefix (the state was never written here).
    CHECK_FALSE(backend->CurrentGeneration(Generous())->has_value());
    CHECK(Contains(s3.Uploads(), "\"open\":[]"));
  }
  SUBCASE("a wrong secret: kPermissionDenied, no secret in any message, a hint about credentials") {
    const std::string wrong = "WRONG-secret-do-not-print-0123456789";
    auto backend = Open(S3StateConfig(s3), wrong);
    auto up = backend->Upload(dir.File("state.redb"), std::nullopt, Generous());
    REQUIRE_FALSE(up.ok());
    CHECK(up.status().code() == Status::Code::kPermissionDenied);
    CHECK_FALSE(rocky::sync::IsTransient(up.status()));
    CHECK_FALSE(Contains(up.status().ToString(), wrong));
    auto legs = backend->Probe(Generous());
    REQUIRE(legs.size() == 1);
    CHECK(legs[0].status.code() == Status::Code::kPermissionDenied);
    CHECK(Contains(legs[0].hint, "credentials"));
    CHECK_FALSE(Contains(legs[0].status.ToString() + legs[0].hint, wrong));
  }
  SUBCASE("a missing bucket: kNotFound and a hint naming the bucket") {
    auto state = S3StateConfig(s3);
    state.s3_bucket = "no-such-bucket";
    auto backend = Open(state, kSecret);
    auto down = backend->Download(dir.File("local.redb"), Generous());
    REQUIRE_FALSE(down.ok());
    CHECK(down.status().IsNotFound());
    CHECK(Contains(down.status().message(), "NoSuchBucket"));
    auto legs = backend->Probe(Generous());
    CHECK(legs[0].status.IsNotFound());
    CHECK(Contains(legs[0].hint, "no-such-bucket"));
  }
  SUBCASE("nothing listening: kIOError (transient) and a hint about connecting") {
    auto state = S3StateConfig(s3);
    {
      SilentServer closed;
      state.s3_endpoint = closed.Endpoint();
    }  // bound, then closed: refused
    auto backend = Open(state, kSecret);
    auto down = backend->Download(dir.File("local.redb"), Generous());
    REQUIRE_FALSE(down.ok());
    CHECK(down.status().code() == Status::Code::kIOError);
    CHECK(rocky::sync::IsTransient(down.status()));
    CHECK(Contains(down.status().message(), "127.0.0.1"));
    auto legs = backend->Probe(Generous());
    CHECK(Contains(legs[0].hint, "connect"));
  }
  SUBCASE("a name that does not resolve: the hint says so") {
    auto state = S3StateConfig(s3);
    state.s3_endpoint = "http://rocky-no-such-host.invalid:9000";
    auto backend = Open(state, kSecret);
    auto legs = backend->Probe(Generous());
    REQUIRE_FALSE(legs[0].status.ok());
    CHECK(Contains(legs[0].hint, "does not resolve"));
  }
}

TEST_CASE("s3 backend: a hung server ends at the deadline with kTimedOut, not at the stall timeout") {
  SilentServer hung;
  TempDir dir;
  rocky::config::StateConfig state;
  state.backend = rocky::config::StateBackend::kS3;
  state.s3_bucket = kBucket;
  state.s3_endpoint = hung.Endpoint();
  auto backend = Open(state, kSecret);
  const auto start = std::chrono::steady_clock::now();
  auto down = backend->Download(dir.File("local.redb"), In(std::chrono::milliseconds(700)));
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(down.ok());
  CHECK(down.status().code() == Status::Code::kTimedOut);
  CHECK(rocky::sync::IsTransient(down.status()));
  CHECK(took >= std::chrono::milliseconds(600));
  CHECK(took < std::chrono::seconds(5));
  // A deadline already past fails without sending anything.
  auto late = backend->CurrentGeneration(In(std::chrono::milliseconds(-1)));
  CHECK(late.status().code() == Status::Code::kTimedOut);
  CHECK_FALSE(std::filesystem::exists(dir.File("local.redb")));
}

TEST_CASE("transport: a stalled transfer is cut off by the stall timeout (no deadline given)") {
  SilentServer hung;
  rocky::sync::HttpCall call;
  call.method = "GET";
  call.url = hung.Endpoint() + "/bucket/key";
  rocky::sync::TransportOptions options;
  options.low_speed_time = std::chrono::seconds(1);
  const auto start = std::chrono::steady_clock::now();
  auto r = rocky::sync::SendHttp(call, options);
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kTimedOut);
  CHECK(took < std::chrono::seconds(10));
}

namespace {

// `openssl s_server -www` on 127.0.0.1 with a self-signed certificate for 127.0.0.1 made here: a real TLS
// peer.
class TlsServer {
 public:
  explicit TlsServer(const TempDir& dir) : cert_(dir.File("cert.pem")) {
    const std::string key = dir.File("key.pem");
    std::string make =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext "
        "subjectAltName=IP:127.0.0.1 -keyout '" +
        key + "' -out '" + cert_ + "' >'" + dir.File("req.log") + "' 2>&1";
    REQUIRE_MESSAGE(std::system(make.c_str()) == 0, "openssl req failed: " << ReadBytes(dir.File("req.log")));
    // s_server quits at the end of its stdin: give it a pipe that stays open until the destructor. It binds
    // port 0 and prints "ACCEPT 127.0.0.1:<port>" once listening: no port is picked beforehand that another
    // test binary running in parallel could take.
    int stdin_pipe[2];
    int stdout_pipe[2];
    REQUIRE(::pipe2(stdin_pipe, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(stdout_pipe, O_CLOEXEC) == 0);
    stdin_fd_ = stdin_pipe[1];
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int null_fd = ::open("/dev/null", O_RDWR);
      ::dup2(stdin_pipe[0], 0);
      ::dup2(stdout_pipe[1], 1);
      ::dup2(null_fd, 2);
      ::execlp("openssl", "openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", cert_.c_str(), "-key",
               key.c_str(), "-www", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(stdin_pipe[0]);
    ::close(stdout_pipe[1]);
    std::string out;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (out.find("ACCEPT ") == std::string::npos ||
           out.find('\n', out.find("ACCEPT ")) == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      pollfd p{stdout_pipe[0], POLLIN, 0};
      REQUIRE_MESSAGE((left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) == 1),
                      "openssl s_server did not start within 30 s: " << out);
      char buf[256];
      const ssize_t n = ::read(stdout_pipe[0], buf, sizeof buf);
      REQUIRE_MESSAGE(n > 0, "openssl s_server exited at start: " << out);
      out.append(buf, static_cast<size_t>(n));
    }
    // Its stdout is not read from here on: nothing else is printed without a client asking for it (-www).
    stdout_fd_ = stdout_pipe[0];
    const size_t at = out.find("ACCEPT ");
    port_ = std::stoi(out.substr(out.find(':', at) + 1));
    REQUIRE(port_ > 0);
  }
  ~TlsServer() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  std::string Endpoint() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const std::string& cert() const { return cert_; }

 private:
  std::string cert_;
  int port_ = 0;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
};

}  // namespace

TEST_CASE("transport: TLS certificates are verified by default; AWS_CA_BUNDLE trusts another CA") {
  TempDir dir;
  TlsServer tls(dir);
  auto state = rocky::config::StateConfig{};
  state.backend = rocky::config::StateBackend::kS3;
  state.s3_bucket = kBucket;
  state.s3_endpoint = tls.Endpoint();

  // Untrusted (self-signed): refused before any request is sent.
  auto backend = Open(state, kSecret);
  auto legs = backend->Probe(Generous());
  REQUIRE_FALSE(legs[0].status.ok());
  CHECK(legs[0].status.code() == Status::Code::kIOError);
  INFO(legs[0].status.ToString());
  CHECK(Contains(legs[0].hint, "AWS_CA_BUNDLE"));

  // Trusted through AWS_CA_BUNDLE: the TLS handshake succeeds and an HTTP answer comes back (s_server's
  // status page is not an S3 response, so the request itself fails, but no longer on TLS). A GET, which
  // s_server -www answers at once and then closes; it never answers a HEAD, which would wait for the whole
  // deadline.
  auto vars = std::make_shared<std::map<std::string, std::string, std::less<>>>(
      std::map<std::string, std::string, std::less<>>{
          {"AWS_ACCESS_KEY_ID", kAccessKey},
          {"AWS_SECRET_ACCESS_KEY", kSecret},
          {"AWS_REGION", kRegion},
          {"AWS_EC2_METADATA_DISABLED", "true"},
          {"AWS_CA_BUNDLE", tls.cert()},
      });
  auto trusting = OpenRemoteStateBackend(state, [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars->find(name);
    if (it == vars->end()) return std::nullopt;
    return it->second;
  });
  REQUIRE(trusting.ok());
  auto got = (*trusting)->Download(dir.File("downloaded.redb"), Generous());
  if (!got.ok()) {
    INFO(got.status().ToString());
    CHECK_FALSE(Contains(got.status().message(), "SSL"));
    CHECK_FALSE(Contains(got.status().message(), "certificate"));
    CHECK(got.status().code() != Status::Code::kTimedOut);
  }
}
