// `rocky` with [state] backend = "s3", end to end against the real S3 fixture (s3rver behind the
// SigV4-verifying proxy, tests/sync/s3_fixture.h): two project folders on "two machines" sharing one
// warehouse and one remote state, so the second folder's run is incremental only because it downloaded the
// first one's watermarks; the transfer events; `rocky state --remote`; `state delete` going up; a wrong
// secret (state lost, upload skipped); and `rocky doctor` against the backend.
#include <doctest/doctest.h>
#include <simdjson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../sync/s3_fixture.h"
#include "program_runner.h"
#include "remote_test_support.h"

namespace {

using namespace rocky::cli::testing;  // NOLINT(google-build-using-namespace): the runner's helpers
namespace s3test = rocky_sync_test;

constexpr const char* kOrders = "acme_warehouse.staging__us_west__shopify.orders";

// Points the project at the S3 fixture (prefix team/bronze/) and its warehouse at `warehouse` (shared by both
// "machines").
void UseS3State(const Sandbox& box, const s3test::S3Fixture& s3, const std::string& warehouse) {
  UseRemoteState(box,
                 "backend = \"s3\"\ns3_bucket = \"" + std::string(s3test::kBucket) +
                     "\"\ns3_prefix = \"team/bronze/\"\ns3_endpoint = \"" + s3.Endpoint() + "\"\n",
                 warehouse);
}

}  // namespace

TEST_CASE("remote state on S3: a second machine's run is incremental because it downloaded the watermarks") {
  s3test::S3Fixture s3;
  ScopedEnv env;
  UseFixtureCredentials(env);
  Sandbox machine_a;
  Sandbox machine_b;
  CHECK_RUN(machine_a.Rocky("init --output table"), 0);
  const std::string warehouse = machine_a.File("warehouse");
  UseS3State(machine_a, s3, warehouse);
  std::filesystem::copy_file(machine_a.File("rocky.toml"), machine_b.File("rocky.toml"));

  // Machine A: nothing remote yet (absent), a full refresh, the state uploaded.
  Run first = machine_a.Rocky("run --output json --events events.jsonl");
  CHECK_RUN(first, 0);
  simdjson::dom::parser p1;
  auto report = ParseJson(p1, first.out);
  CHECK(report["tables_copied"].get_uint64().value() == 4);
  auto remote = report["remote_state"];
  CHECK(Str(remote, "backend") == "s3");
  CHECK(Str(remote, "download") == "absent");
  CHECK(Str(remote, "upload") == "ok");
  CHECK(remote["state_lost"].get_bool().value() == false);
  const auto lines = Lines(machine_a.File("events.jsonl"));
  // The lease around the transfers: taken first, released last (state_lease_test.cc tests it in depth).
  REQUIRE(lines.size() == 4);
  CHECK(Contains(lines.front(), "\"event\":\"state.lease\""));
  CHECK(Contains(lines.front(), "\"outcome\":\"acquired\""));
  CHECK(Contains(lines.back(), "\"event\":\"state.lease\""));
  CHECK(Contains(lines.back(), "\"outcome\":\"released\""));
  CHECK(Str(remote["lease"], "taken") == "acquired");
  CHECK(Str(remote["lease"], "outcome") == "released");
  auto events = EventsNamed(lines, "transfers");
  REQUIRE(events.size() == 2);
  simdjson::dom::parser pe;
  auto down = ParseJson(pe, events[0]);
  CHECK(Str(down, "event") == "state.download");
  CHECK(Str(down, "outcome") == "absent");
  CHECK(Str(down, "key") == "team/bronze/state.redb");
  simdjson::dom::parser pu;
  auto up = ParseJson(pu, events[1]);
  CHECK(Str(up, "event") == "state.upload");
  CHECK(Str(up, "outcome") == "ok");
  CHECK(up["bytes"].get_uint64().value() > 0);
  CHECK((std::filesystem::status(machine_a.File("events.jsonl")).permissions() &
         std::filesystem::perms::others_read) == std::filesystem::perms::none);

  // New source rows; machine B has no local state at all.
  AddOrders(warehouse);
  CHECK_FALSE(std::filesystem::exists(machine_b.File(".rocky-state.redb")));
  Run second = machine_b.Rocky("run --output json");
  CHECK_RUN(second, 0);
  simdjson::dom::parser p2;
  auto incremental = ParseJson(p2, second.out);
  CHECK(Str(incremental["remote_state"], "download") == "ok");
  CHECK(Str(incremental["remote_state"], "upload") == "ok");
  simdjson::dom::array tables;
  REQUIRE(incremental["tables"].get_array().get(tables) == simdjson::SUCCESS);
  REQUIRE(tables.size() == 4);
  for (auto t : tables) CHECK(Str(t, "mode") == "incremental");
  CHECK(incremental["rows_new"].get_uint64().value() == 2);
  CHECK(Sql(warehouse, kShopifyTarget, "SELECT count(*) || ' ' || count(DISTINCT id) FROM orders") ==
        "2002 2002");
  // Events went to stderr without --events, one JSON line each.
  CHECK(Contains(second.err, "\"event\":\"state.download\""));
  CHECK(Contains(second.err, "\"outcome\":\"ok\""));

  // `rocky state` shows the local file; --remote what the bucket holds (here the same watermarks).
  Run shown = machine_a.Rocky("state --remote --output json");
  CHECK_RUN(shown, 0);
  simdjson::dom::parser p3;
  auto state = ParseJson(p3, shown.out);
  CHECK(Str(state, "source") == "remote");
  CHECK(Contains(std::string(Str(state, "location")), "s3://rocky-test/team/bronze/state.redb"));
  CHECK(state["watermarks"].get_array().value().size() == 4);

  // A delete on machine B goes up; machine A sees it remotely, and its next run reloads that table in full.
  Run deleted = machine_b.Rocky(std::string("state delete --table ") + kOrders + " --output table");
  CHECK_RUN(deleted, 0);
  CHECK(Contains(deleted.out, "uploaded (ok)"));
  Run after = machine_a.Rocky("state --remote --output json");
  CHECK_RUN(after, 0);
  simdjson::dom::parser p4;
  CHECK(ParseJson(p4, after.out)["watermarks"].get_array().value().size() == 3);
  Run full = machine_a.Rocky("run --output json --match '*.orders'");
  CHECK_RUN(full, 0);
  simdjson::dom::parser p5;
  auto reload = ParseJson(p5, full.out);
  CHECK(Str(reload["tables"].at(0).value(), "mode") == "full");
}

TEST_CASE("remote state on S3: a wrong secret loses nothing: state lost, re-derived, upload skipped") {
  s3test::S3Fixture s3;
  Sandbox box;
  CHECK_RUN(box.Rocky("init --output table"), 0);
  UseS3State(box, s3, box.File("warehouse"));
  {
    ScopedEnv env;
    UseFixtureCredentials(env);
    CHECK_RUN(box.Rocky("run --output json"), 0);
  }
  // The local state file is gone (an ephemeral pod), and the credentials are wrong.
  std::filesystem::remove(box.File(".rocky-state.redb"));
  const std::string wrong = "WRONG-secret-never-printed-0123456789";
  ScopedEnv env;
  UseFixtureCredentials(env, wrong);
  Run run = box.Rocky("run --output json --events events.jsonl");
  CHECK_RUN(run, 0);  // on_upload_failure = "skip" (the default)
  CHECK_FALSE(Contains(run.out + run.err + ReadBytes(box.File("events.jsonl")), wrong));
  simdjson::dom::parser parser;
  auto report = ParseJson(parser, run.out);
  CHECK(report["remote_state"]["state_lost"].get_bool().value() == true);
  CHECK(Str(report["remote_state"], "upload") == "skipped_after_failure");
  // The targets exist, so their watermarks were re-derived from them instead of reloading everything.
  simdjson::dom::array tables;
  REQUIRE(report["tables"].get_array().get(tables) == simdjson::SUCCESS);
  for (auto t : tables) CHECK(Str(t, "mode") == "rederived");
  CHECK(report["rows_new"].get_uint64().value() == 0);
  // The lease could not be taken either (the same refusal): with "skip", the command went on without it and
  // uploaded nothing.
  const auto lines = Lines(box.File("events.jsonl"));
  const auto lease_events = EventsNamed(lines, "state.lease");
  REQUIRE(lease_events.size() == 1);
  CHECK(Contains(lease_events[0], "\"outcome\":\"error\""));
  CHECK(Str(report["remote_state"]["lease"], "taken") == "error");
  auto events = EventsNamed(lines, "transfers");
  REQUIRE(events.size() == 2);
  CHECK(Contains(events[0], "\"state_lost\":true"));
  CHECK(Contains(events[1], "\"outcome\":\"skipped_after_failure\""));
  CHECK(Contains(run.err, "warning"));

  // The same with on_upload_failure = "fail": the run fails, and says why.
  std::string text = ReadBytes(box.File("rocky.toml"));
  const std::string timeout_line = "transfer_timeout_seconds = 20\n";
  REQUIRE(text.find(timeout_line) != std::string::npos);
  text.replace(text.find(timeout_line), timeout_line.size(), timeout_line + "on_upload_failure = \"fail\"\n");
  std::ofstream(box.File("rocky.toml"), std::ios::trunc) << text;
  Run failing = box.Rocky("run --output json");
  CHECK_RUN(failing, 1);
  CHECK_FALSE(Contains(failing.out + failing.err, wrong));
  CHECK(std::filesystem::exists(box.File(".rocky-state.redb")));  // the local state is kept
}

TEST_CASE("rocky doctor: every check, and state_rw against the S3 backend") {
  s3test::S3Fixture s3;
  Sandbox box;
  CHECK_RUN(box.Rocky("init --output table"), 0);
  UseS3State(box, s3, box.File("warehouse"));
  ScopedEnv env;
  UseFixtureCredentials(env);
  CHECK_RUN(box.Rocky("run --output json"), 0);

  Run doctor = box.Rocky("doctor --output json");
  CHECK_RUN(doctor, 0);
  simdjson::dom::parser parser;
  auto doc = ParseJson(parser, doctor.out);
  CHECK(Str(doc, "command") == "doctor");
  CHECK(Str(doc, "overall") == "healthy");
  simdjson::dom::array checks;
  REQUIRE(doc["checks"].get_array().get(checks) == simdjson::SUCCESS);
  std::vector<std::string> names;
  for (auto c : checks) {
    names.emplace_back(Str(c, "name"));
    CHECK_MESSAGE(Str(c, "status") == "healthy", Str(c, "message"));
    uint64_t ms = 0;
    CHECK(c["duration_ms"].get_uint64().get(ms) == simdjson::SUCCESS);
    simdjson::dom::array details;
    REQUIRE(c["details"].get_array().get(details) == simdjson::SUCCESS);
    for (auto pair : details) CHECK(pair.get_array().value().size() == 2);
  }
  CHECK(names == std::vector<std::string>{"config", "warehouse", "state_file", "state_schema", "remote_state",
                                          "lease", "state_rw"});
  CHECK(doc["suggestions"].get_array().value().size() == 0);

  Run table = box.Rocky("doctor --check state_rw --output table");
  CHECK_RUN(table, 0);
  CHECK(Contains(table.out, "state_rw"));
  CHECK(Contains(table.out, "wrote, read back and deleted a probe object"));
  CHECK(Contains(table.out, "Overall: healthy"));

  // Wrong credentials: critical, exit 1, a hint about credentials, no secret anywhere.
  const std::string wrong = "WRONG-secret-never-printed-0123456789";
  env.Set("AWS_SECRET_ACCESS_KEY", wrong);
  Run bad = box.Rocky("doctor --check state_rw --output json");
  CHECK_RUN(bad, 1);
  CHECK_FALSE(Contains(bad.out + bad.err, wrong));
  simdjson::dom::parser p2;
  auto failed = ParseJson(p2, bad.out);
  CHECK(Str(failed, "overall") == "critical");
  CHECK(Contains(std::string(Str(failed["checks"].at(0).value(), "message")), "SignatureDoesNotMatch"));
  CHECK(Contains(std::string(failed["suggestions"].at(0).value().get_string().value()), "credentials"));

  // A damaged state file is critical in state_file: every byte after the first two pages flipped, so whatever
  // pages the last commit reaches are damaged.
  {
    const std::string path = box.File(".rocky-state.redb");
    std::string bytes = ReadBytes(path);
    REQUIRE(bytes.size() > 8192);
    for (size_t i = 8192; i < bytes.size(); ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
  Run damaged = box.Rocky("doctor --check state_file --output table");
  CHECK_RUN(damaged, 1);
  CHECK(Contains(damaged.out, "critical"));
  CHECK(Contains(damaged.out, "rocky-inspect"));

  // A broken rocky.toml is critical in config.
  std::ofstream(box.File("rocky.toml"), std::ios::app) << "\n[state]\nbackend = \"nope\"\n";
  Run broken = box.Rocky("doctor --output json");
  CHECK_RUN(broken, 1);
  simdjson::dom::parser p3;
  simdjson::dom::array broken_checks;
  REQUIRE(ParseJson(p3, broken.out)["checks"].get_array().get(broken_checks) == simdjson::SUCCESS);
  CHECK(Str(broken_checks.at(0).value(), "status") == "critical");
  // The checks that need the configuration are critical too, and say they did not run; state_rw also says
  // why.
  std::map<std::string, std::pair<std::string, std::string>> needing_config;  // name -> (status, message)
  for (auto check : broken_checks) {
    const std::string name(Str(check, "name"));
    if (name == "warehouse" || name == "remote_state" || name == "lease" || name == "state_rw") {
      needing_config[name] = {std::string(Str(check, "status")), std::string(Str(check, "message"))};
    }
  }
  REQUIRE(needing_config.size() == 4);
  for (const auto& check : needing_config) {  // not a structured binding: clang 14's INFO cannot capture one
    const std::string& status = check.second.first;
    const std::string& message = check.second.second;
    INFO(check.first, ": ", message);
    CHECK(status == "critical");
    CHECK(message.rfind("not run: the configuration does not load", 0) == 0);
  }
  CHECK(needing_config["lease"].second == "not run: the configuration does not load");
  CHECK(Contains(needing_config["state_rw"].second, "(rocky.toml:"));
}

TEST_CASE("remote state on S3: a long run uploads between tables (upload_interval_seconds = 0: after each)") {
  s3test::S3Fixture s3;
  ScopedEnv env;
  UseFixtureCredentials(env);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --output table"), 0);
  UseS3State(box, s3, box.File("warehouse"));
  std::string text = ReadBytes(box.File("rocky.toml"));
  const std::string timeout_line = "transfer_timeout_seconds = 20\n";
  REQUIRE(text.find(timeout_line) != std::string::npos);
  text.replace(text.find(timeout_line), timeout_line.size(), timeout_line + "upload_interval_seconds = 0\n");
  std::ofstream(box.File("rocky.toml"), std::ios::trunc) << text;

  Run run = box.Rocky("run --output json --events events.jsonl");
  CHECK_RUN(run, 0);
  // One download, one upload after each of the 4 tables (each conditional on the one before, so none is a
  // conflict), and the final one.
  auto events = EventsNamed(Lines(box.File("events.jsonl")), "transfers");
  REQUIRE(events.size() == 6);
  CHECK(Contains(events[0], "\"event\":\"state.download\""));
  for (size_t i = 1; i < events.size(); ++i) {
    CHECK(Contains(events[i], "\"event\":\"state.upload\""));
    CHECK(Contains(events[i], "\"outcome\":\"ok\""));
  }
  Run remote = box.Rocky("state --remote --output json");
  CHECK_RUN(remote, 0);
  simdjson::dom::parser parser;
  CHECK(ParseJson(parser, remote.out)["watermarks"].get_array().value().size() == 4);
}

TEST_CASE("secrets: a secret in s3_endpoint's userinfo is in no output, event, warning or doctor report") {
  s3test::S3Fixture s3;
  ScopedEnv env;
  UseFixtureCredentials(env);
  env.Set("SECRET_IN_URL", "s3cr3t-in-the-endpoint");
  Sandbox box;
  CHECK_RUN(box.Rocky("init --output table"), 0);
  std::string endpoint = s3.Endpoint();
  endpoint.insert(endpoint.find("://") + 3, "AKIAEXAMPLE:${SECRET_IN_URL}@");
  UseRemoteState(box,
                 "backend = \"s3\"\ns3_bucket = \"" + std::string(s3test::kBucket) + "\"\ns3_endpoint = \"" +
                     endpoint + "\"\n",
                 box.File("warehouse"));
  Run run = box.Rocky("run --output json --events events.jsonl");
  CHECK_RUN(run, 0);
  simdjson::dom::parser parser;
  auto report = ParseJson(parser, run.out);
  CHECK(Str(report["remote_state"], "upload") == "ok");
  // A failing transfer too: its error and warning quote the location.
  env.Set("AWS_SECRET_ACCESS_KEY", "wrong-secret");
  Run failing = box.Rocky("run --output json --events events.jsonl");
  Run doctor = box.Rocky("doctor --output json");
  Run shown = box.Rocky("state --remote --output json");
  Run table = box.Rocky("run --output table");
  const std::string everything = run.out + run.err + failing.out + failing.err +
                                 ReadBytes(box.File("events.jsonl")) + doctor.out + doctor.err + shown.out +
                                 shown.err + table.out + table.err;
  CHECK(Contains(everything, "at http://127.0.0.1:"));
  CHECK_FALSE(Contains(everything, "s3cr3t-in-the-endpoint"));
  CHECK_FALSE(Contains(everything, "wrong-secret"));
  CHECK_FALSE(Contains(everything, "AKIAEXAMPLE:"));
}

namespace {

// Every file `rocky ARGS` creates, from its system calls (strace -f: openat/open/creat that carry O_CREAT,
// and that succeeded), with the mode it asked for. A path that already existed (before the command, or
// created earlier in it with 0600) may be opened with O_CREAT and another mode: nothing is created then
// (SQLite opens its database files that way after rocky created them 0600).
struct Creation {
  std::string path;
  std::string mode;
};

std::vector<Creation> CreationsOf(const Sandbox& box, const std::string& args, int* exit_code) {
  const std::string trace = box.File(".trace");
  // LeakSanitizer cannot run under ptrace (it would fail the exit of a sanitizer build): off, under strace.
  const std::string command =
      "cd " + ShellQuote(box.dir()) +
      " && ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" strace -f -qq -o " +
      ShellQuote(trace) + " -e trace=open,openat,creat -e status=successful " +
      ShellQuote(ProgramPath("rocky")) + " " + args + " >/dev/null 2>&1 </dev/null";
  const int status = std::system(command.c_str());
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::vector<Creation> out;
  std::ifstream in(trace);
  for (std::string line; std::getline(in, line);) {
    const bool creat = line.find(" creat(") != std::string::npos;
    if (line.find("O_CREAT") == std::string::npos && !creat) continue;
    const size_t open_quote = line.find('"');
    const size_t close_quote = line.find('"', open_quote + 1);
    const size_t mode_end = line.rfind(") = ");
    const size_t mode_start = line.rfind(", ", mode_end);
    if (open_quote == std::string::npos || close_quote == std::string::npos ||
        mode_end == std::string::npos || mode_start == std::string::npos) {
      continue;
    }
    std::string path = line.substr(open_quote + 1, close_quote - open_quote - 1);
    if (!path.starts_with("/")) path = box.dir() + "/" + path;
    out.push_back(Creation{std::filesystem::path(path).lexically_normal().string(),
                           line.substr(mode_start + 2, mode_end - mode_start - 2)});
  }
  std::remove(trace.c_str());
  return out;
}

}  // namespace

TEST_CASE(
    "every file rocky creates is created 0600: events, exports, downloads, envelopes, probes, warehouse") {
  REQUIRE(std::system("command -v strace >/dev/null") == 0);
  s3test::S3Fixture s3;
  ScopedEnv env;
  UseFixtureCredentials(env);
  Sandbox box;
  ::umask(022);
  std::set<std::string> existing;  // created 0600, or there before: O_CREAT on them creates nothing
  auto check = [&](const std::string& args, int expected_exit) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(box.dir())) {
      existing.insert(std::filesystem::path(entry.path()).lexically_normal().string());
    }
    int exit_code = -1;
    const std::vector<Creation> created = CreationsOf(box, args, &exit_code);
    INFO("rocky " << args);
    CHECK(exit_code == expected_exit);
    CHECK(!created.empty());
    for (const Creation& c : created) {
      if (c.mode == "0600") {
        existing.insert(c.path);
        continue;
      }
      CHECK_MESSAGE(existing.count(c.path) == 1, c.path << " created with mode " << c.mode);
    }
  };
  check("init --output table", 0);
  UseS3State(box, s3, box.File("warehouse"));
  check("run --output json --events events.jsonl", 0);  // download (absent), targets, state, envelope, upload
  check("run --output json --events events.jsonl", 0);  // a real download this time
  check("state --remote --events events.jsonl", 0);
  check("state export out.json", 0);
  check("doctor --output json", 0);
  check("state push --force --output json", 0);
  check("state import out.json --yes --output json", 0);
  check("plan --output json", 0);
  // What stays behind is 0600 too.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(box.dir())) {
    if (!entry.is_regular_file()) continue;
    INFO(entry.path());
    CHECK((std::filesystem::status(entry.path()).permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  }
}

TEST_CASE(
    "a corrupt remote object: every run skips its upload until doctor names it and state push --force "
    "replaces it") {
  s3test::S3Fixture s3;
  ScopedEnv env;
  UseFixtureCredentials(env);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --output table"), 0);
  UseS3State(box, s3, box.File("warehouse"));
  CHECK_RUN(box.Rocky("run --output json"), 0);
  // The object at the state's key becomes garbage (a bad copy by hand, a bit flip in the store, ...).
  {
    rocky::sync::S3Config config = s3.Config();
    config.prefix = "team/bronze/";
    auto client = s3.Client(config);
    const std::string garbage = box.File("garbage.bin");
    WriteBytes(garbage, std::string(4096, 'x'));
    REQUIRE(client.PutObject(client.StateKey(), garbage, rocky::sync::WriteCondition::None()).ok());
  }
  for (int i = 0; i < 2; ++i) {
    Run run = box.Rocky("run --output json");
    CHECK_RUN(run, 0);
    simdjson::dom::parser parser;
    auto report = ParseJson(parser, run.out);
    CHECK(Str(report["remote_state"], "download") == "error_then_fresh");
    CHECK(Str(report["remote_state"], "upload") == "skipped_after_failure");
  }
  Run doctor = box.Rocky("doctor --output json");
  CHECK_RUN(doctor, 1);
  simdjson::dom::parser parser;
  auto doc = ParseJson(parser, doctor.out);
  bool named = false;
  // Named first: value() of a temporary simdjson_result would leave the loop's range dangling.
  const simdjson::dom::array checks = doc["checks"].get_array().value();
  for (auto c : checks) {
    if (Str(c, "name") != "remote_state") continue;
    named = true;
    CHECK(Str(c, "status") == "critical");
    CHECK(Contains(std::string(Str(c, "message")), "skips its upload"));
  }
  CHECK(named);
  CHECK(Contains(doctor.out, "rocky state push --force"));

  Run refused = box.Rocky("state push");
  CHECK_RUN(refused, 2);
  CHECK(Contains(refused.err, "--force"));
  Run pushed = box.Rocky("state push --force --output json");
  CHECK_RUN(pushed, 0);
  simdjson::dom::parser push_parser;
  CHECK(Str(ParseJson(push_parser, pushed.out)["remote_state"], "upload") == "ok");
  Run after = box.Rocky("run --output json");
  CHECK_RUN(after, 0);
  simdjson::dom::parser after_parser;
  auto report = ParseJson(after_parser, after.out);
  CHECK(Str(report["remote_state"], "download") == "ok");
  CHECK(Str(report["remote_state"], "upload") == "ok");
  CHECK_RUN(box.Rocky("doctor --check remote_state"), 0);
}
