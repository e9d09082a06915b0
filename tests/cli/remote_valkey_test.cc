// `rocky` with [state] backend = "valkey" and "tiered", end to end against Debian's real redis-server
// (tests/sync/redis_fixture.h) and the S3 fixture: the Valkey URL (with its password) comes from the
// environment through ${VALKEY_URL}, two project folders share one warehouse and one remote state, and the
// password appears in no output; tiered goes on from S3 when Valkey dies, and `rocky doctor` tells a dead
// cache (a warning) from a refused S3 (critical).
#include <doctest/doctest.h>
#include <simdjson.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../sync/redis_fixture.h"
#include "../sync/s3_fixture.h"
#include "program_runner.h"
#include "remote_test_support.h"

namespace {

using namespace rocky::cli::testing;  // NOLINT(google-build-using-namespace): the runner's helpers
namespace fx = rocky_sync_test;

// Two folders sharing `warehouse` (in the first) and the same rocky.toml.
void SetUpPair(const Sandbox& a, const Sandbox& b, const std::string& state) {
  CHECK_RUN(a.Rocky("init --output table"), 0);
  UseRemoteState(a, state, a.File("warehouse"));
  std::filesystem::copy_file(a.File("rocky.toml"), b.File("rocky.toml"));
}

// Neither form of the server's password (plain, or %-escaped as in the URL) is in `text`.
void CheckNoPassword(const std::string& text) {
  CHECK_FALSE(Contains(text, fx::kRedisPassword));
  CHECK_FALSE(Contains(text, fx::kRedisPasswordEscaped));
}

void CheckAllIncremental(simdjson::dom::element report) {
  simdjson::dom::array tables;
  REQUIRE(report["tables"].get_array().get(tables) == simdjson::SUCCESS);
  REQUIRE(tables.size() == 4);
  for (auto t : tables) CHECK(Str(t, "mode") == "incremental");
  CHECK(report["rows_new"].get_uint64().value() == 2);
}

}  // namespace

TEST_CASE("remote state on Valkey: password from the environment, a second folder's run is incremental") {
  fx::RedisServer redis;
  ScopedEnv env;
  env.Set("VALKEY_URL", redis.Url("/1"));
  Sandbox machine_a;
  Sandbox machine_b;
  SetUpPair(machine_a, machine_b,
            "backend = \"valkey\"\nvalkey_url = \"${VALKEY_URL}\"\nvalkey_prefix = \"team:bronze:\"\n");
  CheckNoPassword(ReadBytes(machine_a.File("rocky.toml")));
  const std::string warehouse = machine_a.File("warehouse");

  Run first = machine_a.Rocky("run --output json --events events.jsonl");
  CHECK_RUN(first, 0);
  simdjson::dom::parser p1;
  auto report = ParseJson(p1, first.out);
  CHECK(report["tables_copied"].get_uint64().value() == 4);
  CHECK(Str(report["remote_state"], "backend") == "valkey");
  CHECK(Str(report["remote_state"], "download") == "absent");
  CHECK(Str(report["remote_state"], "upload") == "ok");
  const std::string events = ReadBytes(machine_a.File("events.jsonl"));
  CHECK(Contains(events, "\"event\":\"state.download\""));
  CHECK(Contains(events, "\"event\":\"state.upload\""));
  CHECK(Contains(events, "\"key\":\"team:bronze:state.redb\""));

  AddOrders(warehouse);
  Run second = machine_b.Rocky("run --output json");
  CHECK_RUN(second, 0);
  simdjson::dom::parser p2;
  auto incremental = ParseJson(p2, second.out);
  CHECK(Str(incremental["remote_state"], "download") == "ok");
  CHECK(Str(incremental["remote_state"], "upload") == "ok");
  CheckAllIncremental(incremental);

  Run shown = machine_a.Rocky("state --remote --output json");
  CHECK_RUN(shown, 0);
  simdjson::dom::parser p3;
  auto state = ParseJson(p3, shown.out);
  CHECK(Str(state, "source") == "remote");
  const std::string location(Str(state, "location"));
  CHECK(Contains(location, "redis://:***@127.0.0.1:" + std::to_string(redis.port()) + "/1"));
  CHECK(Contains(location, "team:bronze:state.redb"));
  CHECK(state["watermarks"].get_array().value().size() == 4);

  CheckNoPassword(first.out + first.err + events + second.out + second.err + shown.out + shown.err);
}

TEST_CASE("remote state tiered: Valkey dies, the next run goes on from S3; doctor tells a cache from S3") {
  fx::S3Fixture s3;
  fx::RedisServer redis;
  ScopedEnv env;
  UseFixtureCredentials(env);
  env.Set("VALKEY_URL", redis.Url());
  Sandbox machine_a;
  Sandbox machine_b;
  SetUpPair(machine_a, machine_b,
            "backend = \"tiered\"\ns3_bucket = \"" + std::string(fx::kBucket) +
                "\"\ns3_prefix = \"team/bronze/\"\ns3_endpoint = \"" + s3.Endpoint() +
                "\"\nvalkey_url = \"${VALKEY_URL}\"\n");
  const std::string warehouse = machine_a.File("warehouse");
  std::string seen;  // every output, checked for the password at the end

  Run first = machine_a.Rocky("run --output json");
  CHECK_RUN(first, 0);
  seen += first.out + first.err;
  simdjson::dom::parser p1;
  auto report = ParseJson(p1, first.out);
  CHECK(Str(report["remote_state"], "backend") == "tiered");
  CHECK(Str(report["remote_state"], "download") == "absent");
  CHECK(Str(report["remote_state"], "upload") == "ok");

  // Both legs up, S3's credentials wrong: critical, whatever Valkey says.
  {
    ScopedEnv wrong;
    wrong.Set("AWS_SECRET_ACCESS_KEY", "WRONG-secret-never-printed-0123456789");
    Run refused = machine_a.Rocky("doctor --check state_rw --output json");
    CHECK_RUN(refused, 1);
    seen += refused.out + refused.err;
    CHECK_FALSE(Contains(refused.out + refused.err, "WRONG-secret-never-printed"));
    simdjson::dom::parser p;
    auto doc = ParseJson(p, refused.out);
    CHECK(Str(doc, "overall") == "critical");
    CHECK(Str(doc["checks"].at(0).value(), "status") == "critical");
  }

  redis.Stop();
  AddOrders(warehouse);
  Run events_run = machine_b.Rocky("run --output json --events events.jsonl");
  CHECK_RUN(events_run, 0);
  seen += events_run.out + events_run.err;
  simdjson::dom::parser p2;
  auto second = ParseJson(p2, events_run.out);
  CHECK(Str(second["remote_state"], "download") == "ok");  // from S3
  CHECK(Str(second["remote_state"], "upload") == "ok");    // to S3; Valkey's failure is only a warning
  CHECK(second["remote_state"]["state_lost"].get_bool().value() == false);
  CheckAllIncremental(second);
  CHECK(Contains(events_run.err, "warning"));
  CHECK(Contains(events_run.err, "Valkey"));
  const std::string events = ReadBytes(machine_b.File("events.jsonl"));
  seen += events;
  CHECK(Contains(events, "\"warnings\""));

  // S3 has the second run's state: machine A sees the new watermarks remotely.
  Run shown = machine_a.Rocky("state --remote --output json");
  CHECK_RUN(shown, 0);
  seen += shown.out + shown.err;
  simdjson::dom::parser p4;
  CHECK(ParseJson(p4, shown.out)["watermarks"].get_array().value().size() == 4);

  // Valkey down, S3 fine: a warning (the cache only slows runs down), exit 0.
  Run doctor = machine_b.Rocky("doctor --check state_rw --output json");
  CHECK_RUN(doctor, 0);
  seen += doctor.out + doctor.err;
  simdjson::dom::parser p3;
  auto doc = ParseJson(p3, doctor.out);
  CHECK(Str(doc, "overall") == "warning");
  CHECK(Str(doc["checks"].at(0).value(), "status") == "warning");

  CheckNoPassword(seen);
}

TEST_CASE(
    "secrets: a Valkey error reply that echoes AUTH, and a valkey_url with ?password=, print no password") {
  // A server on which AUTH is an unknown command: Redis answers "ERR unknown command 'AUTH', with args
  // beginning with: '<password>'", the password itself.
  fx::RedisServer redis(false, {"--rename-command", "AUTH", ""});
  ScopedEnv env;
  env.Set("VALKEY_URL", redis.Url());
  Sandbox box;
  CHECK_RUN(box.Rocky("init --output table"), 0);
  UseRemoteState(box, "backend = \"valkey\"\nvalkey_url = \"${VALKEY_URL}\"\n", box.File("warehouse"));
  Run run = box.Rocky("run --output json --events events.jsonl");
  CHECK_RUN(run, 0);  // the download failed (a warning): it goes on from the local file, upload skipped
  Run doctor = box.Rocky("doctor --output json");
  Run remote = box.Rocky("state --remote --output json");
  const std::string everything = run.out + run.err + ReadBytes(box.File("events.jsonl")) + doctor.out +
                                 doctor.err + remote.out + remote.err;
  CHECK(Contains(everything, "unknown command"));
  CHECK(Contains(everything, "with args beginning with: (not shown)"));
  CheckNoPassword(everything);

  // A password in the URL's query: refused (queries are not supported), and the message shows it hidden.
  env.Set("VALKEY_URL", "redis://127.0.0.1:" + std::to_string(redis.port()) + "/0?password=hunter2-in-query");
  Run query = box.Rocky("run --output json --events events2.jsonl");
  CHECK_RUN(query, 1);
  Run query_doctor = box.Rocky("doctor --output json");
  const std::string printed = query.out + query.err + query_doctor.out + query_doctor.err;
  CHECK(Contains(printed, "?password=***"));
  CHECK_FALSE(Contains(printed, "hunter2"));
}
