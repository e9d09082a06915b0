// The Valkey state backend against Debian's real redis-server (redis_fixture.h), plaintext and TLS, and the
// valkey_url parser. No mock: when the server cannot start, the tests fail.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "redis_fixture.h"
#include "rocky/sync/valkey_client.h"
#include "rocky/sync/valkey_state_backend.h"
#include "rocky/sync/valkey_url.h"
#include "state_contents.h"

namespace {

using namespace rocky_sync_test;  // NOLINT(google-build-using-namespace): the fixtures' helpers
using rocky::base::Status;
using rocky::sync::Deadline;
using rocky::sync::IsTransient;
using rocky::sync::ParseValkeyUrl;
using rocky::sync::ValkeyOptions;
using rocky::sync::ValkeyStateBackend;
using rocky::sync::WriteCondition;

Deadline Soon(int seconds = 20) { return std::chrono::steady_clock::now() + std::chrono::seconds(seconds); }

std::unique_ptr<ValkeyStateBackend> Open(ValkeyOptions options) {
  auto backend = ValkeyStateBackend::Open(options);
  REQUIRE_MESSAGE(backend.ok(), backend.status().ToString());
  return std::move(*backend);
}

std::unique_ptr<ValkeyStateBackend> Open(const std::string& url, const std::string& ca_file = "") {
  ValkeyOptions options;
  options.url = url;
  options.ca_file = ca_file;
  options.connect_timeout = std::chrono::seconds(5);
  options.command_timeout = std::chrono::seconds(10);
  return Open(options);
}

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Uploads a fresh state through `backend`, downloads it into another path, and compares everything.
void RoundTrip(ValkeyStateBackend& backend, const TempDir& dir) {
  Contents want = MakeState(dir.File("state.redb"), "v1", 200 * 1024);
  auto none = backend.Download(dir.File("copy.redb"), Soon());
  REQUIRE_MESSAGE(none.ok(), none.status().ToString());
  CHECK_FALSE(none->has_value());
  CHECK_FALSE(std::filesystem::exists(dir.File("copy.redb")));

  auto up = backend.Upload(dir.File("state.redb"), std::nullopt, Soon());
  REQUIRE_MESSAGE(up.ok(), up.status().ToString());
  CHECK(up->generation.size() == 32);  // 128 random bits in hex
  CHECK(up->bytes > 200 * 1024);

  auto down = backend.Download(dir.File("copy.redb"), Soon());
  REQUIRE_MESSAGE(down.ok(), down.status().ToString());
  REQUIRE(down->has_value());
  CHECK((*down)->generation == up->generation);
  CHECK((*down)->bytes == up->bytes);
  CHECK(ReadState(dir.File("copy.redb")) == want);

  auto current = backend.CurrentGeneration(Soon());
  REQUIRE(current.ok());
  CHECK(current->value_or("") == up->generation);
  // No temporary file is left next to the state.
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"copy.redb", "state.redb"});
}

TEST_CASE("valkey_url: every scheme, defaults, IPv6, database and %-decoding") {
  auto plain = ParseValkeyUrl("redis://cache.internal");
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->tls);
  CHECK(plain->host == "cache.internal");
  CHECK(plain->port == 6379);
  CHECK(plain->db == 0);
  CHECK_FALSE(plain->has_password);
  CHECK(plain->HostPort() == "cache.internal:6379");

  auto full = ParseValkeyUrl("valkeys://ops%2Bci:p%40ss%3Aw%2Fd@10.0.0.7:6380/3");
  REQUIRE(full.ok());
  CHECK(full->tls);
  CHECK(full->user == "ops+ci");
  CHECK(full->password == "p@ss:w/d");
  CHECK(full->has_password);
  CHECK(full->port == 6380);
  CHECK(full->db == 3);
  CHECK(full->redacted == "valkeys://ops%2Bci:***@10.0.0.7:6380/3");

  auto ipv6 = ParseValkeyUrl("rediss://:pw@[::1]:7000/");
  REQUIRE(ipv6.ok());
  CHECK(ipv6->tls);
  CHECK(ipv6->host == "::1");
  CHECK(ipv6->HostPort() == "[::1]:7000");
  CHECK(ipv6->user.empty());
  CHECK(ipv6->password == "pw");

  auto valkey = ParseValkeyUrl("VALKEY://h:1/15");
  REQUIRE(valkey.ok());
  CHECK_FALSE(valkey->tls);
  CHECK(valkey->db == 15);
}

TEST_CASE("valkey_url: errors are kInvalidArgument, say what is wrong, and never show the password") {
  struct Case {
    const char* url;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"http://:hunter2@cache:6379", "unknown scheme"},
      {"cache:6379", "expected redis://"},
      {"redis://:hunter2@", "no host"},
      {"redis://:hunter2@cache:0", "port"},
      {"redis://:hunter2@cache:65536", "port"},
      {"redis://:hunter2@cache:63x9", "port"},
      {"redis://:hunter2@cache/db1", "database number"},
      {"redis://:hunter2@cache/1?timeout=3", "query"},
      {"redis://:hunter2@[::1", "IPv6"},
      {"redis://:hunter2%zz@cache", "malformed %-escape in the password"},
      {"redis://hunter2@cache", "without ':'"},
      {"redis://u:hunter2@cache:1/-1", "database number"},
  };
  for (const Case& c : cases) {
    std::string url = c.url;
    CAPTURE(url);
    auto r = ParseValkeyUrl(c.url);
    REQUIRE_FALSE(r.ok());
    CAPTURE(r.status().message());
    CHECK(r.status().code() == Status::Code::kInvalidArgument);
    CHECK(Has(r.status().message(), c.says));
    CHECK_FALSE(Has(r.status().message(), "hunter2"));
  }
  // The redacted form is what the message shows.
  auto r = ParseValkeyUrl("redis://:hunter2@cache:99999");
  CHECK(Has(r.status().message(), "redis://:***@cache:99999"));
}

TEST_CASE("valkey: round trip with the default user's password, and with an ACL user") {
  RedisServer server;
  TempDir dir;
  SUBCASE("default user (AUTH password), database 2") {
    auto backend = Open(server.Url("/2"));
    CHECK(backend->Kind() == "valkey");
    CHECK(backend->Key() == "rocky:state:state.redb");
    CHECK(backend->Location() ==
          "redis://:***@127.0.0.1:" + std::to_string(server.port()) + "/2 key rocky:state:state.redb");
    RoundTrip(*backend, dir);
    // Database 2 holds it; database 0 does not.
    auto other = Open(server.Url("/0"));
    auto g = other->CurrentGeneration(Soon());
    REQUIRE(g.ok());
    CHECK_FALSE(g->has_value());
  }
  SUBCASE("ACL user (AUTH user password)") { RoundTrip(*Open(server.UserUrl()), dir); }
}

TEST_CASE("valkey: a wrong password is kPermissionDenied, not retried, and names no password") {
  RedisServer server;
  TempDir dir;
  MakeState(dir.File("state.redb"), "v1");
  const std::string wrong = "redis://:not-the-pw-77@127.0.0.1:" + std::to_string(server.port());
  const std::string wrong_user =
      std::string("redis://") + kRedisUser + ":not-the-pw-77@127.0.0.1:" + std::to_string(server.port());
  for (const std::string& url : {wrong, wrong_user}) {
    CAPTURE(url);
    auto up = Open(url)->Upload(dir.File("state.redb"), std::nullopt, Soon());
    REQUIRE_FALSE(up.ok());
    const Status& s = up.status();
    CHECK(s.code() == Status::Code::kPermissionDenied);
    CHECK_FALSE(IsTransient(s));
    CHECK(Has(s.message(), "password was refused"));
    CHECK(Has(s.message(), "127.0.0.1:" + std::to_string(server.port())));
    CHECK_FALSE(Has(s.message(), "not-the-pw-77"));
  }
  // No password at all against a server that needs one: NOAUTH, also permanent.
  auto none = Open("redis://127.0.0.1:" + std::to_string(server.port()))->CurrentGeneration(Soon());
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().code() == Status::Code::kPermissionDenied);
  CHECK(Has(none.status().message(), "NOAUTH"));
  // A database the server does not have.
  auto db = Open(server.Url("/999"))->CurrentGeneration(Soon());
  REQUIRE_FALSE(db.ok());
  CHECK(db.status().code() == Status::Code::kNotFound);
  CHECK(Has(db.status().message(), "database 999"));
  CHECK_FALSE(Has(db.status().message(), kRedisPassword));
}

TEST_CASE("valkey: server down, unknown host and a silent server are clear, transient errors") {
  TempDir dir;
  MakeState(dir.File("state.redb"), "v1");
  std::string before = ReadBytes(dir.File("state.redb"));
  SUBCASE("connection refused (a server that was up, then killed)") {
    RedisServer server;
    auto backend = Open(server.Url());
    REQUIRE(backend->Upload(dir.File("state.redb"), std::nullopt, Soon()).ok());
    server.Stop();
    // The open connection breaks first; the next call's new connection is refused.
    auto lost = backend->Download(dir.File("state.redb"), Soon());
    REQUIRE_FALSE(lost.ok());
    CHECK(lost.status().code() == Status::Code::kIOError);
    CHECK(Has(lost.status().message(), "connection lost"));
    auto down = backend->Download(dir.File("state.redb"), Soon());
    REQUIRE_FALSE(down.ok());
    CHECK(down.status().code() == Status::Code::kIOError);
    CHECK(IsTransient(down.status()));
    CHECK(Has(down.status().message(), "connection refused"));
    CHECK(Has(down.status().message(), "127.0.0.1:" + std::to_string(server.port())));
    CHECK_FALSE(Has(down.status().message(), kRedisPassword));
    CHECK(ReadBytes(dir.File("state.redb")) == before);
    auto legs = backend->Probe(Soon());
    REQUIRE(legs.size() == 1);
    CHECK(legs[0].backend == "valkey");
    CHECK_FALSE(legs[0].status.ok());
    CHECK(Has(legs[0].hint, "is Valkey up"));
  }
  SUBCASE("a host name that does not resolve") {
    auto r = Open("redis://:pw@no-such-host.invalid:6379")->CurrentGeneration(Soon());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kIOError);
    CHECK(Has(r.status().message(), "cannot resolve host name 'no-such-host.invalid'"));
  }
  SUBCASE("a server that accepts but never answers: kTimedOut within the command timeout") {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    ValkeyOptions options;
    options.url = "redis://:pw@127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    options.command_timeout = std::chrono::milliseconds(300);
    auto start = std::chrono::steady_clock::now();
    auto r = Open(options)->CurrentGeneration(Soon());
    auto took = std::chrono::steady_clock::now() - start;
    ::close(fd);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kTimedOut);
    CHECK(IsTransient(r.status()));
    CHECK(took < std::chrono::seconds(5));
    // And the transfer's deadline caps the wait when it is shorter than the command timeout.
    ValkeyOptions slow = options;
    slow.command_timeout = std::chrono::seconds(60);
    auto deadline_start = std::chrono::steady_clock::now();
    int fd2 = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(::bind(fd2, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd2, 4) == 0);
    auto capped =
        Open(slow)->CurrentGeneration(std::chrono::steady_clock::now() + std::chrono::milliseconds(400));
    ::close(fd2);
    REQUIRE_FALSE(capped.ok());
    CHECK(capped.status().code() == Status::Code::kTimedOut);
    CHECK(std::chrono::steady_clock::now() - deadline_start < std::chrono::seconds(5));
  }
}

TEST_CASE(
    "valkey: after a server restart, the broken connection is one transient error, then it reconnects") {
  for (const bool tls : {false, true}) {
    CAPTURE(tls);
    RedisServer server(tls);
    TempDir dir;
    MakeState(dir.File("state.redb"), "v1");
    auto backend = Open(server.Url(), server.ca_file());
    REQUIRE(backend->Upload(dir.File("state.redb"), std::nullopt, Soon()).ok());
    server.Restart();
    auto lost = backend->CurrentGeneration(Soon());
    REQUIRE_FALSE(lost.ok());
    CHECK(lost.status().code() == Status::Code::kIOError);
    CHECK(IsTransient(lost.status()));
    CHECK(Has(lost.status().message(), "connection lost"));
    auto again = backend->CurrentGeneration(Soon());
    REQUIRE_MESSAGE(again.ok(), again.status().ToString());
    CHECK_FALSE(again->has_value());  // no persistence: the restarted server is empty
  }
}

TEST_CASE("valkey: an envelope above the value limit is kInvalidArgument and stores nothing") {
  RedisServer server;
  TempDir dir;
  MakeState(dir.File("state.redb"), "v1", 64 * 1024);
  ValkeyOptions options;
  options.url = server.Url();
  options.max_value_bytes = 16 * 1024;
  auto backend = Open(options);
  auto up = backend->Upload(dir.File("state.redb"), std::nullopt, Soon());
  REQUIRE_FALSE(up.ok());
  CHECK(up.status().code() == Status::Code::kInvalidArgument);
  CHECK(Has(up.status().message(), "above the largest value Valkey stores (16384 bytes)"));
  auto current = backend->CurrentGeneration(Soon());
  REQUIRE(current.ok());
  CHECK_FALSE(current->has_value());
  CHECK(rocky::sync::kValkeyMaxValueBytes == 512u * 1024 * 1024);
}

TEST_CASE(
    "valkey: a reply above max_reply_bytes is refused, the connection dropped, the next command works") {
  RedisServer server;
  auto url = ParseValkeyUrl(server.Url());
  REQUIRE(url.ok());
  rocky::sync::ValkeyClientOptions options{*url, "", std::chrono::seconds(5), std::chrono::seconds(5)};
  options.max_reply_bytes = 64 * 1024;
  rocky::sync::ValkeyClient client(options);
  const std::string value(256 * 1024, 'v');  // the limit bounds replies, not commands
  REQUIRE(client.Command({"SET", "big", value}, Soon()).ok());
  auto big = client.Command({"GET", "big"}, Soon());
  REQUIRE_FALSE(big.ok());
  CHECK(big.status().code() == Status::Code::kInvalidArgument);
  CHECK_FALSE(IsTransient(big.status()));
  CHECK(Has(big.status().message(), "a reply above 65536 bytes"));
  CHECK_FALSE(Has(big.status().message(), kRedisPassword));
  // The rest of that reply is never taken for the next command's: it runs on a new connection.
  auto length = client.Command({"STRLEN", "big"}, Soon());
  REQUIRE_MESSAGE(length.ok(), length.status().ToString());
  CHECK(length->integer() == 256 * 1024);
  CHECK(rocky::sync::ValkeyClientOptions{}.max_reply_bytes > rocky::sync::kValkeyMaxValueBytes);
}

TEST_CASE("valkey: two writers: the second one's conditional upload is kBusy, never an overwrite") {
  RedisServer server;
  TempDir dir;
  auto a = Open(server.Url());
  auto b = Open(server.Url());
  MakeState(dir.File("a.redb"), "from-a");
  MakeState(dir.File("b.redb"), "from-b");

  // Both saw no state; A writes first.
  auto first = a->Upload(dir.File("a.redb"), std::nullopt, Soon());
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  auto lost = b->Upload(dir.File("b.redb"), std::nullopt, Soon());
  REQUIRE_FALSE(lost.ok());
  CHECK(lost.status().code() == Status::Code::kBusy);
  CHECK(Has(lost.status().message(), "another run wrote the state in between"));

  // Both downloaded generation g1; A writes g2; B's write conditional on g1 loses.
  auto g2 = a->Upload(dir.File("a.redb"), first->generation, Soon());
  REQUIRE_MESSAGE(g2.ok(), g2.status().ToString());
  CHECK(g2->generation != first->generation);
  auto stale = b->Upload(dir.File("b.redb"), first->generation, Soon());
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.status().code() == Status::Code::kBusy);
  CHECK_FALSE(IsTransient(stale.status()));

  // What is stored is still A's.
  auto down = b->Download(dir.File("check.redb"), Soon());
  REQUIRE(down.ok());
  CHECK((*down)->generation == g2->generation);
  CHECK(ReadState(dir.File("check.redb")) == ReadState(dir.File("a.redb")));
  // And B, after downloading the current generation, can write.
  auto ok = b->Upload(dir.File("b.redb"), g2->generation, Soon());
  CHECK(ok.ok());
}

TEST_CASE("valkey: a corrupt stored envelope is kCorruption and leaves the local state as it was") {
  RedisServer server;
  TempDir dir;
  auto backend = Open(server.Url());
  MakeState(dir.File("state.redb"), "v1");
  REQUIRE(backend->Upload(dir.File("state.redb"), std::nullopt, Soon()).ok());
  // Flip a byte in the middle of the stored envelope, through the real server.
  auto url = ParseValkeyUrl(server.Url());
  REQUIRE(url.ok());
  rocky::sync::ValkeyClient client({*url, "", std::chrono::seconds(5), std::chrono::seconds(5)});
  auto stored = client.Command({"HGET", backend->Key(), "envelope"}, Soon());
  REQUIRE(stored.ok());
  std::string bytes(stored->str());
  bytes[bytes.size() / 2] ^= 0x5a;
  REQUIRE(client.Command({"HSET", backend->Key(), "envelope", bytes}, Soon()).ok());

  MakeState(dir.File("local.redb"), "local");
  const std::string before = ReadBytes(dir.File("local.redb"));
  auto down = backend->Download(dir.File("local.redb"), Soon());
  REQUIRE_FALSE(down.ok());
  CHECK(down.status().code() == Status::Code::kCorruption);
  CHECK(ReadBytes(dir.File("local.redb")) == before);
}

TEST_CASE("valkey: Probe writes, reads back and deletes its own key") {
  RedisServer server;
  auto backend = Open(server.Url());
  auto legs = backend->Probe(Soon());
  REQUIRE(legs.size() == 1);
  CHECK_MESSAGE(legs[0].status.ok(), legs[0].status.ToString());
  CHECK(legs[0].hint.empty());
  CHECK_FALSE(Has(legs[0].location, kRedisPassword));
  auto url = ParseValkeyUrl(server.Url());
  rocky::sync::ValkeyClient client({*url, "", std::chrono::seconds(5), std::chrono::seconds(5)});
  auto keys = client.Command({"DBSIZE"}, Soon());
  REQUIRE(keys.ok());
  CHECK(keys->integer() == 0);  // nothing left behind
}

TEST_CASE("valkey over TLS: round trip verified against the test CA, by IP address and by name") {
  RedisServer server(/*tls=*/true);
  TempDir dir;
  RoundTrip(*Open(server.Url(), server.ca_file()), dir);
  auto by_name =
      Open("rediss://:" + std::string(kRedisPasswordEscaped) + "@localhost:" + std::to_string(server.port()),
           server.ca_file());
  auto g = by_name->CurrentGeneration(Soon());
  REQUIRE_MESSAGE(g.ok(), g.status().ToString());
  CHECK(g->has_value());
}

TEST_CASE("valkey over TLS: a state of tens of megabytes crosses the tunnel intact both ways") {
  RedisServer server(/*tls=*/true);
  TempDir dir;
  auto backend = Open(server.Url(), server.ca_file());
  Contents want = MakeState(dir.File("state.redb"), "big", 24 << 20);  // incompressible: ~24 MB on the wire
  auto up = backend->Upload(dir.File("state.redb"), std::nullopt, Soon(60));
  REQUIRE_MESSAGE(up.ok(), up.status().ToString());
  CHECK(up->bytes > (24u << 20));
  auto down = backend->Download(dir.File("copy.redb"), Soon(60));
  REQUIRE_MESSAGE(down.ok(), down.status().ToString());
  REQUIRE(down->has_value());
  CHECK((*down)->bytes == up->bytes);
  CHECK(ReadState(dir.File("copy.redb")) == want);
}

TEST_CASE(
    "valkey over TLS: a server stopped mid-command times out; killed, the next call is a clear, "
    "transient error, and the process lives") {
  RedisServer server(/*tls=*/true);
  auto url = ParseValkeyUrl(server.Url());
  REQUIRE(url.ok());
  rocky::sync::ValkeyClient client(
      {*url, server.ca_file(), std::chrono::milliseconds(300), std::chrono::milliseconds(300)});
  const std::string value(8 << 20, 'v');  // more than the socket buffers take
  REQUIRE(client.Command({"SET", "k", value}, Soon()).ok());
  rocky::sync::ValkeyClient connected(
      {*url, server.ca_file(), std::chrono::seconds(5), std::chrono::seconds(5)});
  REQUIRE(connected.Command({"PING"}, Soon()).ok());  // for the kill below
  server.Pause();
  auto start = std::chrono::steady_clock::now();
  auto hung = client.Command({"SET", "k", value}, Soon());  // the write stalls once the buffers are full
  REQUIRE_FALSE(hung.ok());
  CHECK(hung.status().code() == Status::Code::kTimedOut);
  CHECK(IsTransient(hung.status()));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  // A new connection: the kernel completes the TCP connect, the handshake gets no answer.
  auto handshake = client.Command({"PING"}, Soon());
  REQUIRE_FALSE(handshake.ok());
  CHECK(handshake.status().code() == Status::Code::kTimedOut);
  CHECK(Has(handshake.status().message(), "TLS handshake"));
  // Killed with a connection open: writing to it fails (EPIPE, whose SIGPIPE must not end this process),
  // and so does the next connect.
  server.Stop();
  auto lost = connected.Command({"SET", "k", value}, Soon());
  REQUIRE_FALSE(lost.ok());
  CHECK(lost.status().code() == Status::Code::kIOError);
  CHECK(IsTransient(lost.status()));
  CHECK(Has(lost.status().message(), "connection lost"));
  auto down = connected.Command({"PING"}, Soon());
  REQUIRE_FALSE(down.ok());
  CHECK(IsTransient(down.status()));
  CHECK(Has(down.status().message(), "connection refused"));
  CHECK_FALSE(Has(lost.status().message() + down.status().message(), kRedisPassword));
}

TEST_CASE("valkey over TLS: an untrusted certificate is a clear, permanent error") {
  RedisServer server(/*tls=*/true);
  TempDir other;
  TestPki untrusted(other.path(), "untrusted");
  SUBCASE("another CA") {
    auto r = Open(server.Url(), untrusted.ca_file())->CurrentGeneration(Soon());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kPermissionDenied);
    CHECK_FALSE(IsTransient(r.status()));
    CHECK(Has(r.status().message(), "TLS certificate verification failed"));
    CHECK(Has(r.status().message(), untrusted.ca_file()));
    CHECK_FALSE(Has(r.status().message(), kRedisPassword));
  }
  SUBCASE("a certificate from the trusted CA for another host, by IP address and by name") {
    TempDir elsewhere_dir;
    TestPki elsewhere(elsewhere_dir.path(), "elsewhere", "DNS:cache.elsewhere.test");
    RedisServer wrong_host(
        /*tls=*/true, {"--tls-cert-file", elsewhere.cert_file(), "--tls-key-file", elsewhere.key_file()});
    for (const std::string host : {"127.0.0.1", "localhost"}) {
      CAPTURE(host);
      auto r = Open("rediss://:" + std::string(kRedisPasswordEscaped) + "@" + host + ":" +
                        std::to_string(wrong_host.port()),
                    elsewhere.ca_file())
                   ->CurrentGeneration(Soon());
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == Status::Code::kPermissionDenied);
      CHECK_FALSE(IsTransient(r.status()));
      CHECK(Has(r.status().message(), "TLS certificate verification failed"));
      CHECK(Has(r.status().message(), "mismatch"));
      CHECK_FALSE(Has(r.status().message(), kRedisPassword));
    }
  }
  SUBCASE("the system's store (no valkey_ca_file)") {
    auto r = Open(server.Url())->CurrentGeneration(Soon());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kPermissionDenied);
    CHECK(Has(r.status().message(), "valkey_ca_file"));
  }
  SUBCASE("plaintext client against the TLS port") {
    auto plain =
        "redis://:" + std::string(kRedisPasswordEscaped) + "@127.0.0.1:" + std::to_string(server.port());
    ValkeyOptions options;
    options.url = plain;
    options.command_timeout = std::chrono::seconds(2);
    auto r = Open(options)->CurrentGeneration(Soon());
    // The server drops a connection that does not start with a handshake.
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kIOError);
    CHECK(Has(r.status().message(), "connection lost"));
  }
}

}  // namespace
