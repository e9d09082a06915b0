// The tiered backend against both real servers: redis-server (redis_fixture.h) and the S3 fixture
// (s3_fixture.h). Which copy a download used is observed honestly: the Valkey entry is made to hold a
// different (valid) state than S3 under S3's current ETag, so the contents tell where they came from.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "redis_fixture.h"
#include "rocky/config/config.h"
#include "rocky/sync/remote_state_factory.h"
#include "rocky/sync/s3_state_backend.h"
#include "rocky/sync/state_envelope.h"
#include "rocky/sync/state_sync.h"
#include "rocky/sync/tiered_state_backend.h"
#include "rocky/sync/valkey_state_backend.h"
#include "s3_fixture.h"
#include "state_contents.h"

namespace {

using namespace rocky_sync_test;  // NOLINT(google-build-using-namespace): the fixtures' helpers
using rocky::base::Status;
using rocky::sync::Deadline;
using rocky::sync::S3StateBackend;
using rocky::sync::TieredStateBackend;
using rocky::sync::ValkeyOptions;
using rocky::sync::ValkeyStateBackend;
using rocky::sync::WriteCondition;

Deadline Soon() { return std::chrono::steady_clock::now() + std::chrono::seconds(20); }

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::unique_ptr<S3StateBackend> OpenS3(const S3Fixture& s3) {
  Credentials creds;
  creds.access_key_id = kAccessKey;
  creds.secret_access_key = kSecret;
  return std::make_unique<S3StateBackend>(s3.Config(), rocky::sync::FixedCredentials(creds));
}

std::unique_ptr<ValkeyStateBackend> OpenValkey(const RedisServer& redis) {
  ValkeyOptions options;
  options.url = redis.Url();
  options.connect_timeout = std::chrono::seconds(5);
  options.command_timeout = std::chrono::seconds(10);
  auto backend = ValkeyStateBackend::Open(options);
  REQUIRE_MESSAGE(backend.ok(), backend.status().ToString());
  return std::move(*backend);
}

std::unique_ptr<TieredStateBackend> OpenTiered(const S3Fixture& s3, const RedisServer& redis) {
  return std::make_unique<TieredStateBackend>(OpenS3(s3), OpenValkey(redis));
}

// The Valkey entry as stored: its S3 ETag and the state its envelope decodes to.
struct ValkeyEntry {
  std::string s3_etag;
  Contents contents;
};
std::optional<ValkeyEntry> ReadValkeyEntry(ValkeyStateBackend& valkey, const TempDir& dir) {
  auto entry = valkey.FetchEnvelope(dir.File("peek.envelope"), Soon());
  REQUIRE_MESSAGE(entry.ok(), entry.status().ToString());
  if (!entry->has_value()) return std::nullopt;
  REQUIRE(rocky::sync::DecodeEnvelope(dir.File("peek.envelope"), dir.File("peek.redb")).ok());
  ValkeyEntry out{(*entry)->s3_etag, ReadState(dir.File("peek.redb"))};
  std::filesystem::remove(dir.File("peek.envelope"));
  std::filesystem::remove(dir.File("peek.redb"));
  return out;
}

// Puts the envelope of a state tagged `tag` into Valkey under `s3_etag`, as if copied from that S3 version.
Contents PlantInValkey(ValkeyStateBackend& valkey, const TempDir& dir, const std::string& tag,
                       const std::string& s3_etag) {
  Contents planted = MakeState(dir.File("plant.redb"), tag);
  REQUIRE(rocky::sync::EncodeEnvelope(dir.File("plant.redb"), dir.File("plant.envelope")).ok());
  auto stored = valkey.StoreEnvelope(dir.File("plant.envelope"), WriteCondition::None(), s3_etag, Soon());
  REQUIRE_MESSAGE(stored.ok(), stored.status().ToString());
  std::filesystem::remove(dir.File("plant.redb"));
  std::filesystem::remove(dir.File("plant.envelope"));
  return planted;
}

TEST_CASE("tiered: upload goes to both; a download whose Valkey entry matches S3's ETag reads Valkey") {
  S3Fixture s3;
  RedisServer redis;
  TempDir dir;
  auto tiered = OpenTiered(s3, redis);
  CHECK(tiered->Kind() == "tiered");
  CHECK(tiered->Key() == "team/prod/state.redb");
  CHECK(Has(tiered->Location(), "s3://rocky-test/team/prod/state.redb"));
  CHECK(Has(tiered->Location(), "redis://:***@127.0.0.1"));
  CHECK_FALSE(Has(tiered->Location(), kRedisPassword));

  Contents want = MakeState(dir.File("state.redb"), "v1");
  auto up = tiered->Upload(dir.File("state.redb"), std::nullopt, Soon());
  REQUIRE_MESSAGE(up.ok(), up.status().ToString());
  CHECK(up->warnings.empty());
  auto s3_etag = tiered->s3().CurrentGeneration(Soon());
  REQUIRE(s3_etag.ok());
  CHECK(up->generation == s3_etag->value_or(""));
  auto entry = ReadValkeyEntry(tiered->valkey(), dir);
  REQUIRE(entry.has_value());
  CHECK(entry->s3_etag == up->generation);
  CHECK(entry->contents == want);

  // A plain download returns what was uploaded.
  auto down = tiered->Download(dir.File("copy.redb"), Soon());
  REQUIRE_MESSAGE(down.ok(), down.status().ToString());
  REQUIRE(down->has_value());
  CHECK((*down)->generation == up->generation);
  CHECK(ReadState(dir.File("copy.redb")) == want);

  // Proof that a matching entry is read from Valkey: plant a different state under S3's current ETag.
  Contents planted = PlantInValkey(tiered->valkey(), dir, "only-in-valkey", up->generation);
  auto hit = tiered->Download(dir.File("hit.redb"), Soon());
  REQUIRE_MESSAGE(hit.ok(), hit.status().ToString());
  REQUIRE(hit->has_value());
  CHECK((*hit)->generation == up->generation);
  CHECK((*hit)->warnings.empty());
  CHECK(ReadState(dir.File("hit.redb")) == planted);
  CHECK(planted != want);
}

TEST_CASE("tiered: a Valkey miss reads S3 and fills Valkey") {
  S3Fixture s3;
  RedisServer redis;
  TempDir dir;
  // Written through S3 alone: Valkey has nothing.
  Contents want = MakeState(dir.File("state.redb"), "s3-only");
  auto up = OpenS3(s3)->Upload(dir.File("state.redb"), std::nullopt, Soon());
  REQUIRE_MESSAGE(up.ok(), up.status().ToString());
  auto tiered = OpenTiered(s3, redis);
  REQUIRE_FALSE(ReadValkeyEntry(tiered->valkey(), dir).has_value());

  auto down = tiered->Download(dir.File("copy.redb"), Soon());
  REQUIRE_MESSAGE(down.ok(), down.status().ToString());
  REQUIRE(down->has_value());
  CHECK((*down)->generation == up->generation);
  CHECK((*down)->warnings.empty());
  CHECK(ReadState(dir.File("copy.redb")) == want);
  auto entry = ReadValkeyEntry(tiered->valkey(), dir);
  REQUIRE(entry.has_value());
  CHECK(entry->s3_etag == up->generation);
  CHECK(entry->contents == want);

  // No state anywhere: nullopt, nothing touched.
  S3Fixture empty_s3;
  auto none = OpenTiered(empty_s3, redis)->Download(dir.File("none.redb"), Soon());
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  CHECK_FALSE(std::filesystem::exists(dir.File("none.redb")));
}

TEST_CASE(
    "tiered: a stale Valkey entry (S3 changed behind it) is never served; S3 is read and Valkey refreshed") {
  S3Fixture s3;
  RedisServer redis;
  TempDir dir;
  auto tiered = OpenTiered(s3, redis);
  MakeState(dir.File("state.redb"), "v1");
  auto first = tiered->Upload(dir.File("state.redb"), std::nullopt, Soon());
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());

  // Another writer updates S3 only (e.g. a runner configured with backend = "s3").
  Contents newer = MakeState(dir.File("other.redb"), "v2-by-another-run");
  auto second = OpenS3(s3)->Upload(dir.File("other.redb"), first->generation, Soon());
  REQUIRE_MESSAGE(second.ok(), second.status().ToString());
  REQUIRE(second->generation != first->generation);
  REQUIRE(ReadValkeyEntry(tiered->valkey(), dir)->s3_etag == first->generation);

  auto down = tiered->Download(dir.File("copy.redb"), Soon());
  REQUIRE_MESSAGE(down.ok(), down.status().ToString());
  REQUIRE(down->has_value());
  CHECK((*down)->generation == second->generation);
  CHECK(ReadState(dir.File("copy.redb")) == newer);
  auto entry = ReadValkeyEntry(tiered->valkey(), dir);
  REQUIRE(entry.has_value());
  CHECK(entry->s3_etag == second->generation);
  CHECK(entry->contents == newer);

  // And an upload conditional on the stale generation loses to the other writer.
  auto lost = tiered->Upload(dir.File("state.redb"), first->generation, Soon());
  REQUIRE_FALSE(lost.ok());
  CHECK(lost.status().code() == Status::Code::kBusy);
}

TEST_CASE("tiered: Valkey down: downloads read S3 with a warning, uploads succeed with a warning") {
  S3Fixture s3;
  RedisServer redis;
  TempDir dir;
  auto tiered = OpenTiered(s3, redis);
  Contents v1 = MakeState(dir.File("state.redb"), "v1");
  auto first = tiered->Upload(dir.File("state.redb"), std::nullopt, Soon());
  REQUIRE(first.ok());
  redis.Stop();

  auto down = tiered->Download(dir.File("copy.redb"), Soon());
  REQUIRE_MESSAGE(down.ok(), down.status().ToString());
  REQUIRE(down->has_value());
  CHECK(ReadState(dir.File("copy.redb")) == v1);
  REQUIRE((*down)->warnings.size() >= 1);
  CHECK(Has((*down)->warnings[0], "Valkey unavailable, state read from S3"));
  CHECK(Has((*down)->warnings[0], "connection lost"));  // the connection the upload opened
  for (const auto& w : (*down)->warnings) CHECK_FALSE(Has(w, kRedisPassword));

  Contents v2 = MakeState(dir.File("state.redb"), "v2");
  auto up = tiered->Upload(dir.File("state.redb"), first->generation, Soon());
  REQUIRE_MESSAGE(up.ok(), up.status().ToString());
  REQUIRE(up->warnings.size() == 1);
  CHECK(Has(up->warnings[0], "uploaded to S3 but not to Valkey"));
  auto s3_copy = OpenS3(s3)->Download(dir.File("s3.redb"), Soon());
  REQUIRE(s3_copy.ok());
  CHECK((*s3_copy)->generation == up->generation);
  CHECK(ReadState(dir.File("s3.redb")) == v2);

  auto legs = tiered->Probe(Soon());
  REQUIRE(legs.size() == 2);
  CHECK(legs[0].backend == "s3");
  CHECK_MESSAGE(legs[0].status.ok(), legs[0].status.ToString());
  CHECK(legs[1].backend == "valkey");
  CHECK_FALSE(legs[1].status.ok());
}

TEST_CASE("tiered: S3 down fails uploads and downloads, even with a matching Valkey entry") {
  auto s3 = std::make_unique<S3Fixture>();
  RedisServer redis;
  TempDir dir;
  auto tiered = OpenTiered(*s3, redis);
  MakeState(dir.File("state.redb"), "v1");
  auto first = tiered->Upload(dir.File("state.redb"), std::nullopt, Soon());
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  s3.reset();

  MakeState(dir.File("state.redb"), "v2");
  auto up = tiered->Upload(dir.File("state.redb"), first->generation, Soon());
  REQUIRE_FALSE(up.ok());
  CHECK(up.status().code() == Status::Code::kIOError);
  CHECK(Has(up.status().message(), "(required)"));
  // Valkey was not written either: it still holds the first upload.
  auto entry = ReadValkeyEntry(tiered->valkey(), dir);
  REQUIRE(entry.has_value());
  CHECK(entry->s3_etag == first->generation);

  // Valkey holds an entry with the last known ETag, but it cannot be checked against S3: never served.
  MakeState(dir.File("local.redb"), "local");
  const std::string before = ReadBytes(dir.File("local.redb"));
  auto down = tiered->Download(dir.File("local.redb"), Soon());
  REQUIRE_FALSE(down.ok());
  CHECK(down.status().code() == Status::Code::kIOError);
  CHECK(ReadBytes(dir.File("local.redb")) == before);
}

TEST_CASE("OpenRemoteStateBackend: [state] backend = \"valkey\" and \"tiered\" move the state") {
  S3Fixture s3;
  RedisServer redis;
  TempDir dir;
  std::map<std::string, std::string> vars = {{"AWS_ACCESS_KEY_ID", kAccessKey},
                                             {"AWS_SECRET_ACCESS_KEY", kSecret}};
  rocky::sync::EnvLookup env = [&vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  rocky::config::StateConfig state;
  state.valkey_url = redis.Url();
  state.valkey_prefix = "team:";
  state.s3_bucket = kBucket;
  state.s3_region = kRegion;
  state.s3_endpoint = s3.Endpoint();
  state.s3_prefix = "team/prod/";

  for (auto kind : {rocky::config::StateBackend::kValkey, rocky::config::StateBackend::kTiered}) {
    state.backend = kind;
    CAPTURE(rocky::config::ToString(kind));
    auto backend = rocky::sync::OpenRemoteStateBackend(state, env);
    REQUIRE_MESSAGE(backend.ok(), backend.status().ToString());
    CHECK((*backend)->Kind() == rocky::config::ToString(kind));
    CHECK(Has((*backend)->Location(), "team:state.redb"));
    CHECK_FALSE(Has((*backend)->Location(), kRedisPassword));
    Contents want = MakeState(dir.File("state.redb"), std::string(rocky::config::ToString(kind)));
    auto current = (*backend)->CurrentGeneration(Soon());
    REQUIRE_MESSAGE(current.ok(), current.status().ToString());
    auto up = (*backend)->Upload(dir.File("state.redb"), *current, Soon());
    REQUIRE_MESSAGE(up.ok(), up.status().ToString());
    auto down = (*backend)->Download(dir.File("copy.redb"), Soon());
    REQUIRE_MESSAGE(down.ok(), down.status().ToString());
    REQUIRE(down->has_value());
    CHECK((*down)->generation == up->generation);
    CHECK(ReadState(dir.File("copy.redb")) == want);
  }

  // A malformed URL is refused when the backend is opened, redacted.
  state.backend = rocky::config::StateBackend::kValkey;
  state.valkey_url = "redis://:hunter2@cache:notaport";
  auto bad = rocky::sync::OpenRemoteStateBackend(state, env);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == Status::Code::kInvalidArgument);
  CHECK_FALSE(Has(bad.status().message(), "hunter2"));
}

}  // namespace
