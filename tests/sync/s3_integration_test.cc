// The S3 client against a real S3-protocol server: s3rver behind tests/fixtures/s3/server.js, which verifies
// every request's SigV4 signature with the official AWS signer and implements conditional PUT as AWS does.
// The test starts it on 127.0.0.1 (a free port) and stops it; when it cannot start, the test fails: there is
// no mock to fall back on. Interoperability is checked with the official AWS SDK (tests/fixtures/s3/sdk.js).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "rocky/engine/db.h"
#include "rocky/sync/s3_client.h"
#include "rocky/sync/state_envelope.h"
#include "s3_fixture.h"
#include "state_contents.h"

extern char** environ;

namespace {

using rocky_sync_test::Contents;
using rocky_sync_test::ReadState;

using namespace rocky_sync_test;  // NOLINT(google-build-using-namespace): the fixture's helpers
using rocky::base::Status;
using rocky::engine::Database;
using rocky::engine::Options;
using rocky::sync::Credentials;
using rocky::sync::S3Client;
using rocky::sync::S3Config;
using rocky::sync::WriteCondition;

// A state database with `tag` in its watermarks and `random_bytes` of incompressible data.
Contents MakeTaggedState(const std::string& path, const std::string& tag, size_t random_bytes = 0) {
  std::filesystem::remove(path);
  auto db = Database::Open(path, Options{});
  REQUIRE(db.ok());
  auto w = (*db)->BeginWrite();
  REQUIRE(w.ok());
  auto t = (*w)->OpenTable("watermarks");
  REQUIRE(t.ok());
  for (int i = 0; i < 100; ++i) {
    REQUIRE((*t)->Insert("acme.orders" + std::to_string(i), tag + std::to_string(i)).ok());
  }
  if (random_bytes > 0) {
    std::mt19937_64 rng(42);
    std::string blob(random_bytes, '\0');
    for (auto& ch : blob) ch = static_cast<char>(rng());
    auto b = (*w)->OpenTable("blobs");
    REQUIRE(b.ok());
    REQUIRE((*b)->Insert("blob", blob).ok());
  }
  REQUIRE((*w)->Commit().ok());
  REQUIRE((*db)->Close().ok());
  return ReadState(path);
}

TEST_CASE("s3: upload and download round-trip the state; HEAD and DELETE") {
  S3Fixture s3;
  TempDir dir;
  S3Client client = s3.Client();
  CHECK(client.StateKey() == "team/prod/state.redb");

  // A first run: nothing stored, the local file untouched.
  WriteBytes(dir.File("local.redb"), "untouched");
  auto none = client.DownloadState(dir.File("local.redb"));
  REQUIRE_MESSAGE(none.ok(), none.status().ToString());
  CHECK_FALSE(none->has_value());
  CHECK(ReadBytes(dir.File("local.redb")) == "untouched");

  Contents want = MakeTaggedState(dir.File("state.redb"), "v1-");
  auto up = client.UploadState(dir.File("state.redb"), std::nullopt);
  REQUIRE_MESSAGE(up.ok(), up.status().ToString());
  CHECK_FALSE(up->etag.empty());

  auto down = client.DownloadState(dir.File("local.redb"));
  REQUIRE_MESSAGE(down.ok(), down.status().ToString());
  REQUIRE(down->has_value());
  CHECK((*down)->etag == up->etag);
  CHECK(ReadState(dir.File("local.redb")) == want);

  auto head = client.HeadObject(client.StateKey());
  REQUIRE(head.ok());
  REQUIRE(head->has_value());
  CHECK((*head)->etag == up->etag);
  CHECK((*head)->size == up->size);
  REQUIRE(client.DeleteObject(client.StateKey()).ok());
  head = client.HeadObject(client.StateKey());
  REQUIRE(head.ok());
  CHECK_FALSE(head->has_value());
  // Only the state file and what the test wrote remain: no temporary files.
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"local.redb", "state.redb"});
}

TEST_CASE("s3: a conditional upload never overwrites a state another run wrote") {
  S3Fixture s3;
  TempDir dir;
  S3Client client = s3.Client();
  MakeTaggedState(dir.File("state.redb"), "a-");
  auto first = client.UploadState(dir.File("state.redb"), std::nullopt);
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());

  // Another run that also saw no object loses.
  auto again = client.UploadState(dir.File("state.redb"), std::nullopt);
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().IsBusy());
  CHECK(again.status().message().find("another run wrote the remote state") != std::string::npos);

  // Run B reads, run A writes, run B's upload conditioned on what it read is refused.
  auto seen = client.DownloadState(dir.File("b.redb"));
  REQUIRE(seen.ok());
  REQUIRE(seen->has_value());
  MakeTaggedState(dir.File("state.redb"), "run-a-");
  auto a = client.UploadState(dir.File("state.redb"), (*seen)->etag);
  REQUIRE_MESSAGE(a.ok(), a.status().ToString());
  MakeTaggedState(dir.File("b.redb"), "run-b-");
  auto b = client.UploadState(dir.File("b.redb"), (*seen)->etag);
  REQUIRE_FALSE(b.ok());
  CHECK(b.status().IsBusy());
  CHECK(b.status().message().find("PreconditionFailed") != std::string::npos);

  auto now = client.DownloadState(dir.File("check.redb"));
  REQUIRE(now.ok());
  CHECK(ReadState(dir.File("check.redb"))["watermarks"]["acme.orders0"] == "run-a-0");
  // With the current ETag the upload goes through.
  auto b2 = client.UploadState(dir.File("b.redb"), (*now)->etag);
  REQUIRE_MESSAGE(b2.ok(), b2.status().ToString());
}

TEST_CASE("s3: a wrong secret is a clear authentication error that names no secret") {
  S3Fixture s3;
  TempDir dir;
  const std::string wrong = "WRONG-secret-value-do-not-print";
  S3Client client = s3.Client(wrong);
  MakeTaggedState(dir.File("state.redb"), "x-");
  auto up = client.UploadState(dir.File("state.redb"), std::nullopt);
  REQUIRE_FALSE(up.ok());
  CHECK(up.status().code() == Status::Code::kPermissionDenied);
  const std::string text = up.status().ToString();
  CHECK(text.find("SignatureDoesNotMatch") != std::string::npos);
  CHECK(text.find("refused the credentials") != std::string::npos);
  CHECK(text.find(wrong) == std::string::npos);
  CHECK(text.find(kSecret) == std::string::npos);
  auto down = client.DownloadState(dir.File("local.redb"));
  REQUIRE_FALSE(down.ok());
  CHECK(down.status().code() == Status::Code::kPermissionDenied);
  CHECK_FALSE(std::filesystem::exists(dir.File("local.redb")));
}

TEST_CASE("s3: multipart upload above the threshold, and a failed one is aborted") {
  S3Fixture s3;
  TempDir dir;
  S3Config config = s3.Config();
  config.multipart_threshold = 6 << 20;
  config.part_size = 5 << 20;
  S3Client client = s3.Client(config);
  Contents want = MakeTaggedState(dir.File("state.redb"), "big-", 13 << 20);  // incompressible: 3 parts
  auto up = client.UploadState(dir.File("state.redb"), std::nullopt);
  REQUIRE_MESSAGE(up.ok(), up.status().ToString());
  CHECK(up->size > (12u << 20));
  CHECK(s3.Uploads() == "{\"open\":[],\"completed\":1}");
  auto down = client.DownloadState(dir.File("local.redb"));
  REQUIRE_MESSAGE(down.ok(), down.status().ToString());
  CHECK(ReadState(dir.File("local.redb")) == want);

  // A multipart upload whose completion is refused (stale ETag) leaves the object as it was.
  MakeTaggedState(dir.File("state.redb"), "other-", 13 << 20);
  auto stale =
      client.UploadState(dir.File("state.redb"), std::string("\"0123456789abcdef0123456789abcdef\""));
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.status().IsBusy());
  CHECK_MESSAGE(stale.status().message().find("aborting") == std::string::npos, stale.status().ToString());
  CHECK(s3.Uploads() == "{\"open\":[],\"completed\":1}");  // aborted: no parts left

  // A part refused half way (the credentials turn bad for exactly one request: the second part's) aborts the
  // upload, so no parts are left either.
  int calls = 0;
  S3Client flaky(config, [&calls]() -> rocky::base::Result<Credentials> {
    Credentials c;
    c.access_key_id = kAccessKey;
    c.secret_access_key = ++calls == 3 ? "not-the-secret" : kSecret;  // 1 create, 2 part 1, 3 part 2
    return c;
  });
  auto half = flaky.UploadState(dir.File("state.redb"), up->etag);
  REQUIRE_FALSE(half.ok());
  CHECK_MESSAGE(half.status().message().find("part 2") != std::string::npos, half.status().ToString());
  CHECK(half.status().message().find("SignatureDoesNotMatch") != std::string::npos);
  CHECK(calls == 4);  // the abort was sent (and signed properly)
  CHECK(s3.Uploads() == "{\"open\":[],\"completed\":1}");
  auto head = client.HeadObject(client.StateKey());
  REQUIRE(head.ok());
  REQUIRE(head->has_value());
  CHECK((*head)->etag == up->etag);
}

TEST_CASE("s3: a truncated, corrupt or foreign object is refused and the local state is left as it was") {
  S3Fixture s3;
  TempDir dir;
  S3Client client = s3.Client();
  MakeTaggedState(dir.File("state.redb"), "good-");
  REQUIRE(rocky::sync::WriteStateSnapshot(dir.File("state.redb"), dir.File("snap.redb")).ok());
  REQUIRE(rocky::sync::EncodeEnvelope(dir.File("snap.redb"), dir.File("env")).ok());
  const std::string good = ReadBytes(dir.File("env"));
  Contents local = MakeTaggedState(dir.File("local.redb"), "local-");
  const std::string local_bytes = ReadBytes(dir.File("local.redb"));

  std::string corrupt = good;
  corrupt[good.size() / 2] ^= 0x10;
  for (const auto& [what, bytes, words] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"truncated", good.substr(0, good.size() - 7), "truncated"},
           {"corrupt", corrupt, "corrupt"},
           {"foreign", "{\"not\": \"a state\"}", "foreign"}}) {
    const std::string& kind = what;  // CAPTURE's lambda cannot capture a structured binding before clang 16
    CAPTURE(kind);
    WriteBytes(dir.File("object"), bytes);
    REQUIRE(client.PutObject(client.StateKey(), dir.File("object"), WriteCondition::None()).ok());
    auto down = client.DownloadState(dir.File("local.redb"));
    REQUIRE_FALSE(down.ok());
    CHECK(down.status().IsCorruption());
    CHECK(down.status().message().find(words) != std::string::npos);
    CHECK(ReadBytes(dir.File("local.redb")) == local_bytes);
  }
  CHECK(ReadState(dir.File("local.redb")) == local);
}

TEST_CASE("s3: interoperability with the official AWS SDK for JavaScript") {
  S3Fixture s3;
  TempDir dir;
  S3Client client = s3.Client();

  // Ours up, the SDK's down: the SDK reads the exact envelope, which decodes to our state.
  Contents want = MakeTaggedState(dir.File("state.redb"), "ours-");
  auto up = client.UploadState(dir.File("state.redb"), std::nullopt);
  REQUIRE_MESSAGE(up.ok(), up.status().ToString());
  REQUIRE(s3.Sdk("get", client.StateKey(), dir.File("sdk-got.env")) == 0);
  CHECK(ReadBytes(dir.File("sdk-got.env.etag")) == up->etag + "\n");
  auto decoded = rocky::sync::DecodeEnvelope(dir.File("sdk-got.env"), dir.File("sdk-state.redb"));
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
  CHECK(ReadState(dir.File("sdk-state.redb")) == want);

  // The SDK's up, ours down.
  Contents theirs = MakeTaggedState(dir.File("theirs.redb"), "sdk-");
  REQUIRE(rocky::sync::WriteStateSnapshot(dir.File("theirs.redb"), dir.File("theirs.snap")).ok());
  REQUIRE(rocky::sync::EncodeEnvelope(dir.File("theirs.snap"), dir.File("theirs.env")).ok());
  REQUIRE(s3.Sdk("put", client.StateKey(), dir.File("theirs.env")) == 0);
  auto down = client.DownloadState(dir.File("local.redb"));
  REQUIRE_MESSAGE(down.ok(), down.status().ToString());
  REQUIRE(down->has_value());
  CHECK((*down)->etag + "\n" == ReadBytes(dir.File("theirs.env.etag")));
  CHECK(ReadState(dir.File("local.redb")) == theirs);

  // And a plain object with a key that needs encoding, both ways.
  const std::string key = "team/odd key+chars=~(1).bin";
  WriteBytes(dir.File("plain"), "payload \x01\x02 bytes");
  REQUIRE(client.PutObject(key, dir.File("plain"), WriteCondition::None()).ok());
  REQUIRE(s3.Sdk("get", key, dir.File("plain.sdk")) == 0);
  CHECK(ReadBytes(dir.File("plain.sdk")) == ReadBytes(dir.File("plain")));
}

}  // namespace
