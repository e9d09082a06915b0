// The real rocky binary with its remote state's lease (sync/state_lease.h), against the S3 fixture and
// redis-server: a second runner exits 75 at once naming the holder, --wait waits for it, a SIGKILLed runner's
// lease is taken over once it expired (doctor says so first), `state unlock` says whose lease it broke, and a
// lease lost mid-run (renewals cut off by FaultProxy, or taken by another runner) stops the run before its
// next table, uploads nothing and says why. The local state's writer lock answers the same way.
//
// A run is held in the middle of its tables by write locks the test takes on every target schema file (a
// copy then waits, up to the warehouse's 5 s busy timeout, counted in SQLite's sleeps) and, where the test
// needs longer, by SIGSTOP: the test decides when it goes on, and every wait is for an event (an --events
// line, a stderr line, an exit) with a deadline that fails clearly.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../support/fault_proxy.h"
#include "../sync/redis_fixture.h"
#include "../sync/s3_fixture.h"
#include "program_runner.h"
#include "remote_test_support.h"
#include "rocky/engine/db.h"

namespace {

using namespace rocky::cli::testing;  // NOLINT(google-build-using-namespace): the runner's helpers
using namespace std::chrono_literals;
namespace s3test = rocky_sync_test;

// A rocky started in the background in `box`: stdout and stderr to files there.
struct Background {
  pid_t pid = -1;
  std::string out_path;
  std::string err_path;

  // Waits for the exit within `limit`; returns the exit code (128 + signal when killed).
  int Wait(std::chrono::seconds limit = 120s) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    int status = 0;
    for (;;) {
      const pid_t done = ::waitpid(pid, &status, WNOHANG);
      REQUIRE(done >= 0);
      if (done == pid) break;
      if (std::chrono::steady_clock::now() > give_up) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        FAIL("rocky (pid " << pid << ") did not exit within " << limit.count() << " s; stderr:\n"
                           << ReadBytes(err_path));
      }
      std::this_thread::sleep_for(10ms);
    }
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string out() const { return ReadBytes(out_path); }
  std::string err() const { return ReadBytes(err_path); }
};

Background Start(const Sandbox& box, const std::vector<std::string>& args, const std::string& name) {
  Background bg;
  bg.out_path = box.File(name + ".out");
  bg.err_path = box.File(name + ".err");
  const std::string binary = ProgramPath("rocky");
  std::fflush(nullptr);
  bg.pid = ::fork();
  REQUIRE(bg.pid >= 0);
  if (bg.pid == 0) {
    if (::chdir(box.dir().c_str()) != 0) ::_exit(127);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(bg.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(bg.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0)
      ::_exit(127);
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return bg;
}

// Waits until the file at `path` holds `needle`, failing after `limit`.
void AwaitText(const std::string& path, const std::string& needle, std::chrono::seconds limit = 60s) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!Contains(ReadBytes(path), needle)) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < give_up, "gave up waiting for '" << needle << "' in "
                                                                                        << path << ":\n"
                                                                                        << ReadBytes(path));
    std::this_thread::sleep_for(10ms);
  }
}

// Write locks (BEGIN IMMEDIATE) on every target schema file of the sample warehouse: a run's copies wait
// (reads go on, so planning does not), until Release().
class TargetLocks {
 public:
  explicit TargetLocks(const std::string& warehouse) {
    for (const auto& catalog : std::filesystem::directory_iterator(warehouse)) {
      const std::string name = catalog.path().filename().string();
      if (name.size() < 10 || name.compare(name.size() - 10, 10, "_warehouse") != 0) continue;
      for (const auto& file : std::filesystem::directory_iterator(catalog.path())) {
        if (file.path().extension() != ".sqlite") continue;
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open_v2(file.path().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
        dbs_.push_back(db);
      }
    }
    REQUIRE(dbs_.size() == 3);
  }
  void Release() {
    for (sqlite3* db : dbs_) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      sqlite3_close(db);
    }
    dbs_.clear();
  }
  ~TargetLocks() { Release(); }
  TargetLocks(const TargetLocks&) = delete;
  TargetLocks& operator=(const TargetLocks&) = delete;

 private:
  std::vector<sqlite3*> dbs_;
};

// A project on S3 at `endpoint` (prefix team/lease/) with `lease_seconds`, warehouse `warehouse`.
void UseS3(const Sandbox& box, const std::string& endpoint, const std::string& warehouse, int lease_seconds) {
  UseRemoteState(box,
                 "backend = \"s3\"\ns3_bucket = \"" + std::string(s3test::kBucket) +
                     "\"\ns3_prefix = \"team/lease/\"\ns3_endpoint = \"" + endpoint +
                     "\"\nlease_seconds = " + std::to_string(lease_seconds) + "\n",
                 warehouse);
}

// Two machines sharing the S3 fixture and one warehouse, after a first full run, with two new source rows so
// the next run has something to copy.
struct TwoMachines {
  Sandbox a;
  Sandbox b;
  std::string warehouse;

  TwoMachines(const std::string& endpoint, int lease_seconds) {
    CHECK_RUN(a.Rocky("init --output table"), 0);
    warehouse = a.File("warehouse");
    UseS3(a, endpoint, warehouse, lease_seconds);
    std::filesystem::copy_file(a.File("rocky.toml"), b.File("rocky.toml"));
    CHECK_RUN(a.Rocky("run --output table"), 0);
    AddOrders(warehouse);
  }
};

std::string Quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace

TEST_CASE("lease: a second runner exits 75 at once naming the holder; --wait waits for it; doctor names it") {
  s3test::S3Fixture s3;
  ScopedEnv env;
  UseFixtureCredentials(env);
  TwoMachines m(s3.Endpoint(), 30);
  Background holder;
  Background waiter;
  {
    // The holder, stopped (SIGSTOP) in its first copy with the lease held: it goes on when continued.
    TargetLocks locks(m.warehouse);
    holder = Start(m.a, {"run", "--output", "json", "--events", "events.jsonl"}, "holder");
    AwaitText(m.a.File("events.jsonl"), "\"event\":\"state.download\"");
    REQUIRE(::kill(holder.pid, SIGSTOP) == 0);
    locks.Release();
    const std::string pid = std::to_string(holder.pid);

    Run busy = m.b.Rocky("run --output json");
    CHECK_RUN(busy, 75);
    simdjson::dom::parser parser;
    auto doc = ParseJson(parser, busy.out);
    CHECK(Contains(std::string(Str(doc, "error")), "leased by another runner"));
    auto lease = doc["remote_state"]["lease"];
    CHECK(Str(lease, "taken") == "busy");
    CHECK(lease["other"]["pid"].get_int64().value() == holder.pid);
    CHECK(Str(lease["other"], "command") == "run");
    CHECK_FALSE(std::string(Str(lease, "expires_at")).empty());
    CHECK(lease["expires_in_ms"].get_int64().value() > 0);
    CHECK(Contains(busy.err, "pid " + pid + " (rocky run"));
    CHECK(Contains(busy.err, "its lease expires at "));
    CHECK(Contains(busy.err, "by the server's clock"));
    CHECK_FALSE(std::filesystem::exists(m.b.File(".rocky-state.redb")));  // nothing was done

    Run busy_set = m.b.Rocky("state set --table a.b.c --value 2026-01-01T00:00:00Z --output table");
    CHECK_RUN(busy_set, 75);
    CHECK(Contains(busy_set.err, "pid " + pid));

    Run doctor = m.b.Rocky("doctor --check lease --output json");
    CHECK_RUN(doctor, 0);
    simdjson::dom::parser p2;
    auto check = ParseJson(p2, doctor.out)["checks"].at(0).value();
    CHECK(Str(check, "name") == "lease");
    CHECK(Str(check, "status") == "healthy");
    CHECK(Contains(std::string(Str(check, "message")), "held by"));
    CHECK(Contains(std::string(Str(check, "message")), "pid " + pid));

    Run unlock = m.b.Rocky("state unlock");
    CHECK_RUN(unlock, 2);
    CHECK(Contains(unlock.err, "pid " + pid));
    CHECK(Contains(unlock.err, "still live"));
    CHECK(Contains(unlock.err, "--yes"));

    // --wait: refused first (one busy event), then taken when the holder releases.
    waiter = Start(m.b,
                   {"state", "set", "--table", "x.y.z", "--value", "2026-01-01T00:00:00Z", "--wait", "120",
                    "--output", "json", "--events", "events.jsonl"},
                   "waiter");
    AwaitText(m.b.File("events.jsonl"), "\"outcome\":\"busy\"");
    AwaitText(waiter.err_path, "waiting up to 120 s");
    REQUIRE(::kill(holder.pid, SIGCONT) == 0);
  }
  CHECK(holder.Wait() == 0);
  const auto holder_events = Lines(m.a.File("events.jsonl"));
  REQUIRE(!holder_events.empty());
  CHECK(Contains(holder_events.front(), "\"outcome\":\"acquired\""));
  CHECK(Contains(holder_events.back(), "\"outcome\":\"released\""));
  CHECK(waiter.Wait() == 0);
  simdjson::dom::parser p3;
  auto waited = ParseJson(p3, waiter.out());
  CHECK(Str(waited["remote_state"]["lease"], "taken") == "acquired");  // released, not expired
  CHECK(waited["remote_state"]["lease"]["waited_ms"].get_int64().value() > 0);
  CHECK(Str(waited["remote_state"], "upload") == "ok");
  const auto waiter_events = EventsNamed(Lines(m.b.File("events.jsonl")), "state.lease");
  REQUIRE(waiter_events.size() == 3);
  CHECK(Contains(waiter_events[0], "\"outcome\":\"busy\""));
  CHECK(Contains(waiter_events[1], "\"outcome\":\"acquired\""));
  CHECK(Contains(waiter_events[2], "\"outcome\":\"released\""));
  // The holder's rows and the waiter's watermark both reached the remote state, one after the other.
  CHECK(Sql(m.warehouse, kShopifyTarget, "SELECT count(*) || ' ' || count(DISTINCT id) FROM orders") ==
        "2002 2002");
  Run remote = m.a.Rocky("state --remote --output table --table x.y.z");
  CHECK(Contains(remote.out, "x.y.z"));
}

TEST_CASE(
    "lease: a SIGKILLed runner's lease refuses others, doctor reports it expired, then it is taken over") {
  s3test::S3Fixture s3;
  ScopedEnv env;
  UseFixtureCredentials(env);
  TwoMachines m(s3.Endpoint(), 3);
  pid_t dead = -1;
  {
    TargetLocks locks(m.warehouse);
    Background holder = Start(m.a, {"run", "--output", "json", "--events", "events.jsonl"}, "holder");
    AwaitText(m.a.File("events.jsonl"), "\"event\":\"state.download\"");
    dead = holder.pid;
    REQUIRE(::kill(holder.pid, SIGKILL) == 0);
    CHECK(holder.Wait() == 128 + SIGKILL);
  }
  // Live until it expires by the server's clock: the doctor says held, then expired (waited for).
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  std::string message;
  for (;;) {
    Run doctor = m.b.Rocky("doctor --check lease --output json");
    simdjson::dom::parser parser;
    auto check = ParseJson(parser, doctor.out)["checks"].at(0).value();
    message = std::string(Str(check, "message"));
    if (Str(check, "status") == "warning") break;
    CHECK(Contains(message, "held by"));
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < give_up, "the lease never expired: " << message);
    std::this_thread::sleep_for(200ms);
  }
  CHECK(Contains(message, "expired"));
  CHECK(Contains(message, "pid " + std::to_string(dead)));

  Run next = m.b.Rocky("run --output json --wait 60 --events events.jsonl");
  CHECK_RUN(next, 0);
  simdjson::dom::parser parser;
  auto doc = ParseJson(parser, next.out);
  CHECK(Str(doc["remote_state"]["lease"], "taken") == "taken_over");
  CHECK(doc["remote_state"]["lease"]["other"]["pid"].get_int64().value() == dead);
  const auto events = EventsNamed(Lines(m.b.File("events.jsonl")), "state.lease");
  REQUIRE(!events.empty());
  CHECK(Contains(events.front(), "\"outcome\":\"taken_over\""));
  CHECK(Contains(events.front(), "\"pid\":" + std::to_string(dead)));
  // The killed run copied nothing it kept (its copies were waiting); the taker copied every new row once.
  CHECK(Sql(m.warehouse, kShopifyTarget, "SELECT count(*) || ' ' || count(DISTINCT id) FROM orders") ==
        "2002 2002");
}

TEST_CASE(
    "lease: `state unlock --yes` breaks a live lease saying whose it was; its holder stops, uploads "
    "nothing") {
  s3test::S3Fixture s3;
  ScopedEnv env;
  UseFixtureCredentials(env);
  // Renewals every 2 s: the holder's first one after it is continued finds the lease gone (or, were it
  // stopped longer than 6 s, finds its own lease run out): lost either way.
  TwoMachines m(s3.Endpoint(), 6);
  Background holder;
  {
    // The holder, stopped (SIGSTOP) in its first copy, which waits for these locks when it is continued.
    TargetLocks locks(m.warehouse);
    holder = Start(m.a, {"run", "--output", "json", "--events", "events.jsonl"}, "holder");
    AwaitText(m.a.File("events.jsonl"), "\"event\":\"state.download\"");
    REQUIRE(::kill(holder.pid, SIGSTOP) == 0);
    Run broken = m.b.Rocky("state unlock --yes --output json");
    CHECK_RUN(broken, 0);
    simdjson::dom::parser parser;
    auto doc = ParseJson(parser, broken.out);
    CHECK(doc["broken"].get_bool().value() == true);
    CHECK(Str(doc, "state") == "held");
    CHECK(doc["holder"]["pid"].get_int64().value() == holder.pid);
    // Another runner takes the lease and writes the state meanwhile.
    CHECK_RUN(m.b.Rocky("state set --table x.y.z --value 2026-01-01T00:00:00Z --output table"), 0);
    // Continued, the holder's next renewal finds the lease gone; its copy still waits for the locks.
    REQUIRE(::kill(holder.pid, SIGCONT) == 0);
    AwaitText(m.a.File("events.jsonl"), "\"outcome\":\"lost\"");
  }
  CHECK(holder.Wait() == 1);
  simdjson::dom::parser parser;
  auto report = ParseJson(parser, holder.out());
  CHECK(Str(report, "status") == "interrupted");
  CHECK(Str(report, "stop_reason") == "lease_lost");
  CHECK(report["remote_state"]["lease"]["lost"].get_bool().value() == true);
  CHECK(report["remote_state"]["upload"].is_null());
  CHECK(Contains(std::string(Str(report["remote_state"], "error")), "LeaseLost"));
  // The other runner's write survived: the holder did not upload over it.
  Run remote = m.b.Rocky("state --remote --output table --table x.y.z");
  CHECK(Contains(remote.out, "x.y.z"));
  CHECK(Contains(holder.err(), "LeaseLost"));
}

TEST_CASE(
    "lease: renewals cut off mid-run lose the lease; the run stops before its next table, no table "
    "half-copied, nothing uploaded, and the output says why") {
  s3test::S3Fixture s3;
  rocky_test::FaultProxy proxy(std::stoi(s3.Endpoint().substr(s3.Endpoint().rfind(':') + 1)));
  REQUIRE_MESSAGE(proxy.ok(), proxy.error());
  ScopedEnv env;
  UseFixtureCredentials(env);
  TwoMachines m(proxy.Endpoint(), 2);
  const std::string before = m.a.Rocky("state --remote --output json").out;
  const std::string counts_sql = "SELECT count(*) FROM orders";
  const std::string target_before = Sql(m.warehouse, kShopifyTarget, counts_sql);
  const std::string source_count = Sql(m.warehouse, kShopify, counts_sql);
  Background run;
  {
    TargetLocks locks(m.warehouse);
    run = Start(m.a, {"run", "--output", "json", "--events", "events.jsonl"}, "run");
    AwaitText(m.a.File("events.jsonl"), "\"event\":\"state.download\"");
    proxy.Blackhole();  // every renewal from now on meets a dead peer
    AwaitText(m.a.File("events.jsonl"), "\"outcome\":\"lost\"");
  }
  CHECK(run.Wait() == 1);
  simdjson::dom::parser parser;
  auto report = ParseJson(parser, run.out());
  CHECK(Str(report, "status") == "interrupted");
  CHECK(Str(report, "stop_reason") == "lease_lost");
  auto lease = report["remote_state"]["lease"];
  CHECK(lease["lost"].get_bool().value() == true);
  CHECK(Str(lease, "outcome") == "lost");
  CHECK(Contains(std::string(Str(lease, "error")), "renewal failed"));
  CHECK(report["remote_state"]["upload"].is_null());
  // The table in progress when the lease was lost finished as a whole (or failed as a whole); every later one
  // was skipped.
  simdjson::dom::array tables;
  REQUIRE(report["tables"].get_array().get(tables) == simdjson::SUCCESS);
  int skipped = 0;
  for (auto t : tables) skipped += Str(t, "status") == "skipped" ? 1 : 0;
  CHECK(skipped >= 3);
  const std::string target_after = Sql(m.warehouse, kShopifyTarget, counts_sql);
  CHECK((target_after == target_before || target_after == source_count));
  CHECK(Contains(run.err(), "LeaseLost"));

  // The next run takes the lease over (it was never released) and ends with every row exactly once.
  proxy.PassThrough();
  CHECK(m.a.Rocky("state --remote --output json").out == before);  // nothing was uploaded
  Run next = m.b.Rocky("run --output json --wait 60");
  CHECK_RUN(next, 0);
  simdjson::dom::parser p2;
  CHECK(Str(ParseJson(p2, next.out)["remote_state"]["lease"], "taken") == "taken_over");
  CHECK(Sql(m.warehouse, kShopifyTarget, "SELECT count(*) || ' ' || count(DISTINCT id) FROM orders") ==
        source_count + " " + source_count);
}

TEST_CASE(
    "lease: Ctrl-C mid-run and a command that fails both release it; the next runner simply acquires it") {
  s3test::S3Fixture s3;
  ScopedEnv env;
  UseFixtureCredentials(env);
  TwoMachines m(s3.Endpoint(), 30);
  Background run;
  {
    TargetLocks locks(m.warehouse);
    run = Start(m.a, {"run", "--output", "json", "--events", "events.jsonl"}, "run");
    AwaitText(m.a.File("events.jsonl"), "\"event\":\"state.download\"");
    REQUIRE(::kill(run.pid, SIGINT) == 0);
  }  // the table in progress goes on and finishes; the rest are skipped
  CHECK(run.Wait() == 130);
  const auto leases = EventsNamed(Lines(m.a.File("events.jsonl")), "state.lease");
  REQUIRE(leases.size() == 2);
  CHECK(Contains(leases[0], "\"outcome\":\"acquired\""));
  CHECK(Contains(leases[1], "\"outcome\":\"released\""));

  Run next = m.b.Rocky("state set --table x.y.z --value 2026-01-01T00:00:00Z --output json");
  CHECK_RUN(next, 0);
  simdjson::dom::parser parser;
  CHECK(Str(ParseJson(parser, next.out)["remote_state"]["lease"], "taken") == "acquired");

  // A command refused after it took the lease (an import over a state that is not empty, without --yes).
  CHECK_RUN(m.b.Rocky("state export export.json --output table"), 0);
  Run refused = m.b.Rocky("state import export.json --events import.jsonl");
  CHECK_RUN(refused, 2);
  const auto import_leases = EventsNamed(Lines(m.b.File("import.jsonl")), "state.lease");
  REQUIRE(import_leases.size() == 2);
  CHECK(Contains(import_leases[1], "\"outcome\":\"released\""));
  Run after = m.a.Rocky("state set --table x.y.z --value 2026-01-02T00:00:00Z --output json");
  CHECK_RUN(after, 0);
  simdjson::dom::parser p2;
  CHECK(Str(ParseJson(p2, after.out)["remote_state"]["lease"], "taken") == "acquired");
}

TEST_CASE("lease on valkey: busy at once naming the holder; a killed holder's lease is taken over") {
  rocky_sync_test::RedisServer redis;
  ScopedEnv env;
  env.Set("VALKEY_URL", redis.Url());
  Sandbox a, b;
  CHECK_RUN(a.Rocky("init --output table"), 0);
  const std::string warehouse = a.File("warehouse");
  UseRemoteState(a, "backend = \"valkey\"\nvalkey_url = \"${VALKEY_URL}\"\nlease_seconds = 3\n", warehouse);
  std::filesystem::copy_file(a.File("rocky.toml"), b.File("rocky.toml"));
  CHECK_RUN(a.Rocky("run --output table"), 0);
  AddOrders(warehouse);
  pid_t dead = -1;
  {
    TargetLocks locks(warehouse);
    Background holder = Start(a, {"run", "--output", "json", "--events", "events.jsonl"}, "holder");
    AwaitText(a.File("events.jsonl"), "\"event\":\"state.download\"");
    REQUIRE(::kill(holder.pid, SIGSTOP) == 0);  // in its first copy, holding the lease
    dead = holder.pid;
    Run busy = b.Rocky("run --output table");
    CHECK_RUN(busy, 75);
    CHECK(Contains(busy.err, "pid " + std::to_string(dead)));
    REQUIRE(::kill(holder.pid, SIGKILL) == 0);
    CHECK(holder.Wait() == 128 + SIGKILL);
  }
  Run next = b.Rocky("run --output json --wait 60");
  CHECK_RUN(next, 0);
  simdjson::dom::parser parser;
  auto doc = ParseJson(parser, next.out);
  CHECK(Str(doc["remote_state"]["lease"], "taken") == "taken_over");
  CHECK(doc["remote_state"]["lease"]["other"]["pid"].get_int64().value() == dead);
  Run doctor = b.Rocky("doctor --check lease --output table");
  CHECK_RUN(doctor, 0);
  CHECK(Contains(doctor.out, "free"));
}

TEST_CASE(
    "the local state's lock answers like the lease: exit 75 naming the process, --wait, doctor, unlock") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init --output table"), 0);
  CHECK_RUN(box.Rocky("run --output table"), 0);
  const std::string me = std::to_string(::getpid());
  Background waiter;
  {
    // This test process holds the state file's writer lock, as a running rocky would.
    auto db = rocky::engine::Database::Open(box.File(".rocky-state.redb"), rocky::engine::Options{});
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    Run busy = box.Rocky("state set --table a.b.c --value 2026-01-01T00:00:00Z --output table");
    CHECK_RUN(busy, 75);
    CHECK(Contains(busy.err, "locked by process " + me));
    CHECK_RUN(box.Rocky("run --output table"), 75);
    Run doctor = box.Rocky("doctor --check lease --output table");
    CHECK_RUN(doctor, 0);
    CHECK(Contains(doctor.out, "held by process " + me));
    Run unlock = box.Rocky("state unlock --output json");
    CHECK_RUN(unlock, 0);
    simdjson::dom::parser parser;
    auto doc = ParseJson(parser, unlock.out);
    CHECK(Str(doc, "backend") == "local");
    CHECK(doc["broken"].get_bool().value() == false);
    CHECK(doc["holder"]["pid"].get_int64().value() == ::getpid());
    waiter =
        Start(box, {"state", "set", "--table", "a.b.c", "--value", "2026-01-01T00:00:00Z", "--wait", "120"},
              "waiter");
    AwaitText(waiter.err_path, "waiting up to 120 s");
    REQUIRE((*db)->Close().ok());
  }
  CHECK(waiter.Wait() == 0);
  CHECK(Contains(box.Rocky("state --output table").out, "a.b.c"));
  Run doctor = box.Rocky("doctor --check lease --output table");
  CHECK(Contains(doctor.out, "free"));
}

TEST_CASE("Ctrl-C while --wait waits for the lease or the local lock: exit 130 and the JSON document") {
  SUBCASE("the remote state's lease (valkey), held by a stopped run") {
    rocky_sync_test::RedisServer redis;
    ScopedEnv env;
    env.Set("VALKEY_URL", redis.Url());
    Sandbox a, b;
    CHECK_RUN(a.Rocky("init --output table"), 0);
    const std::string warehouse = a.File("warehouse");
    UseRemoteState(a, "backend = \"valkey\"\nvalkey_url = \"${VALKEY_URL}\"\nlease_seconds = 30\n",
                   warehouse);
    std::filesystem::copy_file(a.File("rocky.toml"), b.File("rocky.toml"));
    CHECK_RUN(a.Rocky("run --output table"), 0);
    AddOrders(warehouse);
    TargetLocks locks(warehouse);
    Background holder = Start(a, {"run", "--output", "json", "--events", "events.jsonl"}, "holder");
    AwaitText(a.File("events.jsonl"), "\"event\":\"state.download\"");
    REQUIRE(::kill(holder.pid, SIGSTOP) == 0);  // in its first copy, holding the lease
    Background waiter =
        Start(b, {"run", "--output", "json", "--wait", "120", "--events", "events.jsonl"}, "waiter");
    AwaitText(waiter.err_path, "waiting up to 120 s");
    REQUIRE(::kill(waiter.pid, SIGINT) == 0);
    CHECK(waiter.Wait() == 130);
    simdjson::dom::parser parser;
    auto doc = ParseJson(parser, waiter.out());
    CHECK(Str(doc, "command") == "run");
    CHECK(Str(doc, "stop_reason") == "signal");
    CHECK(Contains(std::string(Str(doc, "error")), "Interrupted"));
    CHECK(Contains(std::string(Str(doc, "error")), "Nothing was done"));
    CHECK(Contains(std::string(Str(doc["remote_state"]["lease"], "error")), "Interrupted"));
    CHECK(doc["remote_state"]["lease"]["other"]["pid"].get_int64().value() == holder.pid);
    CHECK(Contains(waiter.err(), "Interrupted"));
    CHECK_FALSE(std::filesystem::exists(b.File(".rocky-state.redb")));  // nothing was done
    REQUIRE(::kill(holder.pid, SIGKILL) == 0);
    CHECK(holder.Wait() == 128 + SIGKILL);
  }
  SUBCASE("the local state file's writer lock, held by this test") {
    Sandbox box;
    CHECK_RUN(box.Rocky("init --output table"), 0);
    CHECK_RUN(box.Rocky("run --output table"), 0);
    const std::string before = ReadBytes(box.File(".rocky-state.redb"));
    auto db = rocky::engine::Database::Open(box.File(".rocky-state.redb"), rocky::engine::Options{});
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    Background waiter = Start(box, {"run", "--output", "json", "--wait", "120"}, "waiter");
    AwaitText(waiter.err_path, "waiting up to 120 s");
    REQUIRE(::kill(waiter.pid, SIGINT) == 0);
    CHECK(waiter.Wait() == 130);
    simdjson::dom::parser parser;
    auto doc = ParseJson(parser, waiter.out());
    CHECK(Str(doc, "command") == "run");
    CHECK(Str(doc, "stop_reason") == "signal");
    CHECK(Contains(std::string(Str(doc, "error")), "locked by process " + std::to_string(::getpid())));
    CHECK(Contains(std::string(Str(doc, "error")), "nothing was done"));
    REQUIRE((*db)->Close().ok());
    CHECK(ReadBytes(box.File(".rocky-state.redb")) == before);
    // Refused without a signal (no --wait): exit 75, and the same document with no stop_reason.
    auto again = rocky::engine::Database::Open(box.File(".rocky-state.redb"), rocky::engine::Options{});
    REQUIRE(again.ok());
    Run busy = box.Rocky("run --output json");
    CHECK_RUN(busy, 75);
    simdjson::dom::parser p2;
    auto refused = ParseJson(p2, busy.out);
    CHECK(refused["stop_reason"].is_null());
    CHECK(Contains(std::string(Str(refused, "error")), "locked by process " + std::to_string(::getpid())));
    REQUIRE((*again)->Close().ok());
  }
}

TEST_CASE("--wait takes whole seconds (exit 2 otherwise); the new flags and commands have --help") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init --output table"), 0);
  for (const std::string bad : {"-1", "abc", "1.5", "", "999999999"}) {
    Run run = box.Rocky("state set --table a.b.c --value 2026-01-01T00:00:00Z --wait " + Quote(bad));
    CHECK_RUN(run, 2);
    CHECK(Contains(run.err, "--wait"));
  }
  CHECK(Contains(box.Rocky("run --help").out, "--wait SECONDS"));
  CHECK(Contains(box.Rocky("state unlock --help").out, "--yes"));
  CHECK(Contains(box.Rocky("doctor --help").out, "lease"));
  CHECK_RUN(box.Rocky("doctor --check lease --output table"), 0);
}
