// End to end: `rocky init`, `plan`, `apply`, `run` as a user types them, on the sample SQLite warehouse, in
// a temporary folder; including the failure paths (bad rocky.toml, unknown plan, stale plan, locked state,
// missing source table) and runs killed at random instants.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <simdjson.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "program_runner.h"
#include "rocky/engine/db.h"
#include "rocky/state/store.h"
#include "state_damage.h"

namespace {

using namespace rocky::cli::testing;

constexpr const char* kOrders = "acme_warehouse.staging__us_west__shopify.orders";

// Runs SQL on a warehouse schema file inside the sandbox; returns the first column of the last row, if any.
std::string Sql(const Sandbox& box, const std::string& catalog_schema_file, const std::string& sql) {
  const std::string file = box.File("warehouse/" + catalog_schema_file);
  sqlite3* db = nullptr;
  const int opened = sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  if (opened != SQLITE_OK) sqlite3_close(db);  // SQLite allocates the handle even when the open fails
  REQUIRE_MESSAGE(opened == SQLITE_OK, "cannot open " << file << ": " << sqlite3_errstr(opened));
  sqlite3_busy_timeout(db, 5000);
  std::string last;
  char* error = nullptr;
  const int rc = sqlite3_exec(
      db, sql.c_str(),
      [](void* out, int columns, char** values, char**) {
        if (columns > 0) *static_cast<std::string*>(out) = values[0] != nullptr ? values[0] : "NULL";
        return 0;
      },
      &last, &error);
  INFO(sql << ": " << (error != nullptr ? error : ""));
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
  return last;
}

const std::string kShopify = "fivetran_catalog/src__acme__us_west__shopify.sqlite";
const std::string kShopifyTarget = "acme_warehouse/staging__us_west__shopify.sqlite";

simdjson::dom::element ParseJson(simdjson::dom::parser& parser, const std::string& text) {
  simdjson::dom::element doc;
  const auto error = parser.parse(text).get(doc);
  REQUIRE_MESSAGE(error == simdjson::SUCCESS, "not JSON: " << text);
  return doc;
}

TEST_CASE("init, plan, apply, run: full refresh, then only the new rows") {
  Sandbox box;
  Run init = box.Rocky("init --output table");
  CHECK_RUN(init, 0);
  CHECK(Contains(init.out, "fivetran_catalog.src__acme__us_west__shopify.orders"));
  CHECK(std::filesystem::exists(box.File("rocky.toml")));
  CHECK(std::filesystem::exists(box.File("warehouse/" + kShopify)));
  Run again = box.Rocky("init");
  CHECK_RUN(again, 1);
  CHECK(Contains(again.err, "already exists"));
  CHECK_RUN(box.Rocky("init --force --output table"), 0);

  // plan --output json | jq -r .plan_id; apply "$plan_id"
  Run plan = box.Rocky("plan --output json");
  CHECK_RUN(plan, 0);
  simdjson::dom::parser parser;
  auto doc = ParseJson(parser, plan.out);
  std::string_view plan_id;
  REQUIRE(doc["plan_id"].get_string().get(plan_id) == simdjson::SUCCESS);
  CHECK(plan_id.size() == 32);
  simdjson::dom::array tables;
  REQUIRE(doc["tables"].get_array().get(tables) == simdjson::SUCCESS);
  CHECK(tables.size() == 4);
  for (auto t : tables) {
    CHECK(std::string_view(t["mode"].get_string().value()) == "full");
    CHECK(!std::string_view(t["sql"].get_string().value()).empty());
  }
  const std::string id(plan_id);

  Run apply = box.Rocky("apply " + id + " --output json");
  CHECK_RUN(apply, 0);
  simdjson::dom::parser parser2;
  auto report = ParseJson(parser2, apply.out);
  CHECK(std::string_view(report["command"].get_string().value()) == "apply");
  CHECK(std::string_view(report["status"].get_string().value()) == "success");
  CHECK(std::string_view(report["plan_id"].get_string().value()) == id);
  CHECK(report["tables_copied"].get_uint64().value() == 4);
  CHECK(report["tables_failed"].get_array().value().size() == 0);
  CHECK(report["anomalies"].get_array().value().size() == 0);
  CHECK(report["check_results"].get_array().value().size() > 0);
  CHECK(report["duration_ms"].get_int64().value() >= 0);
  CHECK(Sql(box, kShopifyTarget, "SELECT count(*) FROM orders") == "2000");

  // The same plan again is refused: the watermarks it was built on have moved.
  Run stale = box.Rocky("apply " + id);
  CHECK_RUN(stale, 1);
  CHECK(Contains(stale.err, "out of date"));
  Run unknown = box.Rocky("apply 0123456789abcdef0123456789abcdef");
  CHECK_RUN(unknown, 1);
  CHECK(Contains(unknown.err, "no plan with id '0123456789abcdef0123456789abcdef'"));
  CHECK_RUN(box.Rocky("apply"), 2);

  // New rows in the source: the next run copies exactly those.
  Sql(box, kShopify,
      "INSERT INTO orders (id, customer_id, total, _fivetran_synced) VALUES "
      "(5001, 1, 1.0, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')), (5002, 2, 2.0, strftime('%Y-%m-%dT%H:%M:%SZ', "
      "'now'))");
  Run incremental = box.Rocky("run --output table");
  CHECK_RUN(incremental, 0);
  // The two new rows; each table's row at its watermark is read again and found already there.
  CHECK(Contains(incremental.out, "success, 4 copied, 0 failed, 2 rows copied (2 new)"));
  CHECK(Contains(incremental.out, "incremental"));
  CHECK(Sql(box, kShopifyTarget, "SELECT count(*) FROM orders") == "2002");

  Run state = box.Rocky("state --output table");
  CHECK_RUN(state, 0);
  CHECK(Contains(state.out, kOrders));

  // Every run appended the source's row count: the history shows them with the anomaly check's baseline.
  Run history = box.Rocky(std::string("state history --output json --table ") + kOrders);
  CHECK_RUN(history, 0);
  simdjson::dom::parser parser4;
  auto entries = ParseJson(parser4, history.out)["entries"].get_array().value();
  REQUIRE(entries.size() == 2);
  CHECK(entries.at(0)["count"].get_uint64().value() == 2000);
  CHECK(entries.at(0)["baseline_avg"].is_null());
  CHECK(entries.at(1)["count"].get_uint64().value() == 2002);
  CHECK(entries.at(1)["baseline_avg"].get_double().value() == doctest::Approx(2000.0));

  // Progress lines only go to a terminal; a pipe gets just the report.
  Run json = box.Rocky("run --match 'acme_warehouse.*'");
  CHECK_RUN(json, 0);
  CHECK(json.err.empty());
  simdjson::dom::parser parser3;
  CHECK(ParseJson(parser3, json.out)["tables"].get_array().value().size() == 3);
}

TEST_CASE("apply of a plan whose warehouse folder moved is refused before anything is made there") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  Run plan = box.Rocky("plan --output json");
  CHECK_RUN(plan, 0);
  simdjson::dom::parser parser;
  std::string_view plan_id;
  REQUIRE(ParseJson(parser, plan.out)["plan_id"].get_string().get(plan_id) == simdjson::SUCCESS);
  const std::string id(plan_id);
  const std::string toml = ReadBytes(box.File("rocky.toml"));
  std::string moved = toml;
  REQUIRE(moved.find("path = \"warehouse\"") != std::string::npos);
  moved.replace(moved.find("path = \"warehouse\""), 18, "path = \"moved/warehouse\"");
  WriteBytes(box.File("rocky.toml"), moved);
  const Run refused = box.Rocky("apply " + id + " --output table");
  CHECK_RUN(refused, 1);
  CHECK(Contains(refused.err, "was made for warehouse 'sqlite:" + box.File("warehouse") + "'"));
  CHECK(Contains(refused.err,
                 "now names 'sqlite:" + box.File("moved/warehouse") + "'; run 'rocky plan' again"));
  CHECK(!std::filesystem::exists(box.File("moved")));
  // The plan is still good for the warehouse it was made for.
  WriteBytes(box.File("rocky.toml"), toml);
  CHECK_RUN(box.Rocky("apply " + id + " --output table"), 0);
}

TEST_CASE("init --force after runs starts the sample over: a full refresh, no duplicated rows") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  CHECK_RUN(box.Rocky("run"), 0);
  Run reinit = box.Rocky("init --force --output table");
  CHECK_RUN(reinit, 0);
  CHECK(Contains(reinit.out, "Deleted 4 watermarks"));
  CHECK(!std::filesystem::exists(box.File("warehouse/" + kShopifyTarget)));
  Run again = box.Rocky("run --output table");
  CHECK_RUN(again, 0);
  CHECK(Contains(again.out, "5,200 rows copied (5,200 new)"));
  CHECK(Sql(box, kShopifyTarget, "SELECT count(*) || ' ' || count(DISTINCT id) FROM orders") == "2000 2000");
}

TEST_CASE("bad or missing rocky.toml: one clear line, exit 1, nothing written") {
  Sandbox box;
  Run missing = box.Rocky("run");
  CHECK_RUN(missing, 1);
  CHECK(Contains(missing.err, "rocky.toml"));
  CHECK(!std::filesystem::exists(box.File(".rocky-state.redb")));

  WriteBytes(box.File("bad.toml"), "[state]\nbackend = \"local\"\nbakend = 3\n");
  Run bad = box.Rocky("--config bad.toml plan");
  CHECK_RUN(bad, 1);
  CHECK(Contains(bad.err, "bad.toml:3:"));
  CHECK(Contains(bad.err, "bakend"));
  CHECK(!std::filesystem::exists(box.File(".rocky-state.redb")));

  WriteBytes(box.File("syntax.toml"), "[state\n");
  Run syntax = box.Rocky("plan --config syntax.toml");
  CHECK_RUN(syntax, 1);
  CHECK(Contains(syntax.err, "syntax.toml:1:"));
}

TEST_CASE("a missing source table fails that table only; a locked state file is a clear error") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  Run plan = box.Rocky("plan --output json");
  CHECK_RUN(plan, 0);
  simdjson::dom::parser parser;
  const std::string id(ParseJson(parser, plan.out)["plan_id"].get_string().value());
  Sql(box, "fivetran_catalog/src__acme__eu_central__stripe.sqlite", "DROP TABLE charges");
  Run apply = box.Rocky("apply " + id + " --output json");
  CHECK_RUN(apply, 1);
  simdjson::dom::parser parser2;
  auto report = ParseJson(parser2, apply.out);
  CHECK(std::string_view(report["status"].get_string().value()) == "partial_failure");
  CHECK(report["tables_copied"].get_uint64().value() == 3);
  auto failed = report["tables_failed"].get_array().value();
  REQUIRE(failed.size() == 1);
  CHECK(std::string_view(failed.at(0)["table"].get_string().value()) ==
        "acme_warehouse.staging__eu_central__stripe.charges");
  CHECK(Contains(std::string(failed.at(0)["error"].get_string().value()), "charges"));

  // Another process holds the state file for writing: rocky waits briefly, then names it (exit 75, "busy").
  auto holder = rocky::state::StateStore::Open(
      box.File(".rocky-state.redb"), rocky::state::StoreOptions{.mode = rocky::state::OpenMode::kReadWrite});
  REQUIRE(holder.ok());
  Run locked = box.Rocky("run");
  CHECK_RUN(locked, 75);
  CHECK(Contains(locked.err, "in use by another rocky"));
  CHECK(Contains(locked.err, std::to_string(getpid())));
}

// Starts `rocky run` in the sandbox with output discarded; returns its pid.
pid_t StartRun(const Sandbox& box) {
  const std::string binary = ProgramPath("rocky");
  std::fflush(nullptr);  // nothing buffered in this process may be written twice by the child
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (chdir(box.dir().c_str()) != 0) _exit(127);
    const int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd < 0 || dup2(null_fd, STDOUT_FILENO) < 0 || dup2(null_fd, STDERR_FILENO) < 0) _exit(127);
    execl(binary.c_str(), binary.c_str(), "run", "--output", "json", static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Waits until process `pid` runs `program` (it has exec'd: until then it is a copy of this test process,
// whose doctest handlers catch SIGINT too) and has a handler for `signal` (the SigCgt mask of
// /proc/PID/status; exec resets caught signals, so the bit is then rocky's own handler). Fails after 60 s.
void WaitUntilCatching(pid_t pid, int signal, const std::string& program) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  const std::string proc = "/proc/" + std::to_string(pid);
  std::error_code ec;
  const auto expected = std::filesystem::canonical(program, ec);
  for (;;) {
    const auto exe = std::filesystem::read_symlink(proc + "/exe", ec);
    std::ifstream status(proc + "/status");
    for (std::string line; !ec && exe == expected && std::getline(status, line);) {
      if (!line.starts_with("SigCgt:")) continue;
      const unsigned long long mask = std::strtoull(line.c_str() + 7, nullptr, 16);
      if ((mask >> (signal - 1)) & 1ULL) return;
    }
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < give_up,
                    "rocky never installed its handler of " << signal);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Every target holds exactly its source's rows: same count, same ids, no id twice.
void CheckTargetsMatchSources(const Sandbox& box) {
  struct Pair {
    std::string source_file, target_file, table;
  };
  const std::vector<Pair> pairs = {
      {kShopify, kShopifyTarget, "orders"},
      {kShopify, kShopifyTarget, "customers"},
      {"fivetran_catalog/src__acme__eu_central__stripe.sqlite",
       "acme_warehouse/staging__eu_central__stripe.sqlite", "charges"},
      {"fivetran_catalog/src__globex__us_east__shopify.sqlite",
       "globex_warehouse/staging__us_east__shopify.sqlite", "orders"},
  };
  for (const Pair& p : pairs) {
    INFO(p.target_file << " " << p.table);
    const std::string q = "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || total(id) FROM " + p.table;
    const std::string source = Sql(box, p.source_file, q);
    const std::string target = Sql(box, p.target_file, q);
    CHECK(source == target);
  }
}

TEST_CASE(
    "runs killed at random instants (SIGKILL) or stopped by Ctrl-C, then run again: no row lost or doubled") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  // Enough rows that a run takes long enough to be killed in the middle of a copy.
  Sql(box, kShopify,
      "WITH RECURSIVE n(i) AS (SELECT 3000 UNION ALL SELECT i + 1 FROM n WHERE i < 150000) "
      "INSERT INTO orders SELECT i, i % 500, i / 100.0, "
      "strftime('%Y-%m-%dT%H:%M:%fZ', '2025-01-01', '+' || (i * 10) || ' seconds') FROM n");
  std::mt19937 rng(12345);
  int64_t next_id = 200000;
  int killed_mid_run = 0;
  for (int round = 0; round < 12; ++round) {
    // Rows keep arriving between runs, newer than everything before (as a connector writes them).
    Sql(box, kShopify,
        "WITH RECURSIVE n(i) AS (SELECT " + std::to_string(next_id) +
            " UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(next_id + 20000) +
            ") INSERT INTO orders SELECT i, i % 500, 1.0, " +
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || (" + std::to_string(round) + " * 100000 + i - " +
            std::to_string(next_id) + ") || ' seconds') FROM n");
    next_id += 20001;
    const pid_t pid = StartRun(box);
    const int signal = round % 3 == 2 ? SIGINT : SIGKILL;
    // Ctrl-C rounds first wait until rocky catches SIGINT (its handler is the first thing main() installs,
    // so from then on a Ctrl-C at any instant must end in exit 130; before it, the process is still being
    // loaded and the signal's default action is all there is). SIGKILL rounds may land anywhere. Then a
    // random instant of the run.
    if (signal == SIGINT) WaitUntilCatching(pid, SIGINT, ProgramPath("rocky"));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 600));
    kill(pid, signal);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ++killed_mid_run;
    if (signal == SIGINT) {
      // Ctrl-C stops cleanly, never by the signal's default action: 130 (whether it skipped the remaining
      // tables or had just finished them), or 0 when the run had already exited before the signal came.
      REQUIRE_MESSAGE(WIFEXITED(status),
                      "rocky died of signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
      CHECK_MESSAGE((WEXITSTATUS(status) == 130 || WEXITSTATUS(status) == 0), "exit " << WEXITSTATUS(status));
    }
    // Every other round, run again right away: the targets must match the sources exactly. The other rounds
    // pile a second kill on top of the first before recovering.
    if (round % 2 == 1) {
      CHECK_RUN(box.Rocky("run --output table"), 0);
      CheckTargetsMatchSources(box);
    }
  }
  CHECK(killed_mid_run > 0);
  CHECK_RUN(box.Rocky("run --output table"), 0);
  CheckTargetsMatchSources(box);
  // The state file is intact after all those kills.
  Run inspect = box.Program("rocky-inspect", ".rocky-state.redb");
  CHECK_RUN(inspect, 0);
}

// Runs rocky.toml's pipeline under `strategy` (and merge_keys for merge).
void UseStrategy(const Sandbox& box, const std::string& lines) {
  std::string toml = ReadBytes(box.File("rocky.toml"));
  const std::string anchor = "timestamp_column = \"_fivetran_synced\"\n";
  REQUIRE(Contains(toml, anchor));
  toml.replace(toml.find(anchor), anchor.size(), anchor + lines);
  WriteBytes(box.File("rocky.toml"), toml);
}

// How many runs the state file records.
size_t RecordedRuns(const Sandbox& box) {
  auto store = rocky::state::StateStore::Open(box.File(".rocky-state.redb"), rocky::state::StoreOptions{});
  REQUIRE(store.ok());
  auto runs = (*store)->ListRuns();
  REQUIRE(runs.ok());
  return runs->size();
}

TEST_CASE(
    "--match or --table selecting nothing: exit 2 naming the filter and the closest tables; no run "
    "recorded") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  CHECK_RUN(box.Rocky("run"), 0);
  REQUIRE(RecordedRuns(box) == 1);
  for (const std::string command : {"run", "plan"}) {
    Run none = box.Rocky(command + " --match 'acme_warehouse.*.ordrs'");
    CHECK_RUN(none, 2);
    CHECK(Contains(none.err,
                   "--match 'acme_warehouse.*.ordrs' matches no table; closest: " + std::string(kOrders)));
    CHECK(none.out.empty());
    Run exact = box.Rocky(command + " --table acme_warehouse.staging.ordrs");
    CHECK_RUN(exact, 2);
    CHECK(Contains(exact.err, "--table 'acme_warehouse.staging.ordrs' matches no table; closest: "));
  }
  CHECK(RecordedRuns(box) == 1);
}

TEST_CASE("--table is one exact name in every command; a pattern is --match") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  CHECK_RUN(box.Rocky("run"), 0);
  REQUIRE(RecordedRuns(box) == 1);
  for (const std::string command : {"run", "plan", "state", "state show"}) {
    INFO(command);
    Run glob = box.Rocky(command + " --table 'acme_warehouse.*'");
    CHECK_RUN(glob, 2);
    CHECK(Contains(glob.err,
                   "--table takes one exact table name; for a pattern use --match 'acme_warehouse.*'"));
    CHECK(glob.out.empty());
    Run both = box.Rocky(command + " --table " + std::string(kOrders) + " --match '*'");
    CHECK_RUN(both, 2);
    CHECK(Contains(both.err, "--table and --match cannot be combined"));
  }
  CHECK(RecordedRuns(box) == 1);  // nothing was run
  // An exact --table selects that one table, in plan as in state show.
  Run plan = box.Rocky(std::string("plan --output json --table ") + kOrders);
  CHECK_RUN(plan, 0);
  CHECK(Contains(plan.out, kOrders));
  CHECK_FALSE(Contains(plan.out, "customers"));
  Run shown = box.Rocky(std::string("state --output json --table ") + kOrders);
  CHECK_RUN(shown, 0);
  CHECK(Contains(shown.out, kOrders));
  CHECK_FALSE(Contains(shown.out, "customers"));
}

TEST_CASE("run --full-refresh [--table PATTERN] reloads those tables without touching the state by hand") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  CHECK_RUN(box.Rocky("run"), 0);
  Sql(box, kShopifyTarget, "DELETE FROM orders WHERE id <= 10");  // a damaged target
  Run reload = box.Rocky(std::string("run --full-refresh --output json --table ") + kOrders);
  CHECK_RUN(reload, 0);
  simdjson::dom::parser parser;
  auto tables = ParseJson(parser, reload.out)["tables"].get_array().value();
  REQUIRE(tables.size() == 1);
  CHECK(std::string_view(tables.at(0)["mode"].get_string().value()) == "full");
  CHECK(tables.at(0)["rows_copied"].get_uint64().value() == 2000);
  CHECK(Sql(box, kShopifyTarget, "SELECT count(*) FROM orders") == "2000");
  Run help = box.Rocky("run --help");
  CHECK(Contains(help.out, "--full-refresh"));
}

TEST_CASE("plan names a source without an index on the cursor, with the CREATE INDEX that fixes it") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  Run plan = box.Rocky(std::string("plan --output table --table ") + kOrders);
  CHECK_RUN(plan, 0);
  CHECK(Contains(plan.out,
                 "NO INDEX on fivetran_catalog.src__acme__us_west__shopify.orders (_fivetran_synced)"));
  CHECK(
      Contains(plan.out, "CREATE INDEX \"orders___fivetran_synced\" ON \"orders\" (\"_fivetran_synced\");"));
  Run json = box.Rocky(std::string("plan --output json --table ") + kOrders);
  simdjson::dom::parser parser;
  auto advice = ParseJson(parser, json.out)["tables"].get_array().value().at(0)["index_advice"];
  const std::string statement(advice["create_index"].get_string().value());
  // Following the advice makes it go away.
  Sql(box, kShopify, statement);
  Run fixed = box.Rocky(std::string("plan --output json --table ") + kOrders);
  simdjson::dom::parser parser2;
  CHECK(ParseJson(parser2, fixed.out)["tables"].get_array().value().at(0)["index_advice"].is_null());
}

TEST_CASE(
    "a source table named with dots, a quote and a space gets a watermark; later runs are incremental") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  Sql(box, kShopify,
      "CREATE TABLE \"weird.a.b\" (id INTEGER PRIMARY KEY, _fivetran_synced TEXT);"
      "INSERT INTO \"weird.a.b\" VALUES (1, '2025-03-15T14:00:00Z');"
      "CREATE TABLE \"it's odd\" (id INTEGER PRIMARY KEY, _fivetran_synced TEXT);"
      "INSERT INTO \"it's odd\" VALUES (1, '2025-03-15T14:00:00Z');");
  CHECK_RUN(box.Rocky("run"), 0);
  Sql(box, kShopify, "INSERT INTO \"weird.a.b\" VALUES (2, '2025-03-15T15:00:00Z');");
  Run second = box.Rocky("run --output json");
  CHECK_RUN(second, 0);
  CHECK(Contains(second.out, "\"table\":\"acme_warehouse.staging__us_west__shopify.weird.a.b\""));
  Run state = box.Rocky("state --output json");
  CHECK_RUN(state, 0);
  CHECK(Contains(state.out, "acme_warehouse.staging__us_west__shopify.weird.a.b"));
  CHECK(Contains(state.out, "2025-03-15T15:00:00Z"));
  CHECK(Contains(state.out, "acme_warehouse.staging__us_west__shopify.it's odd"));
  CHECK(Sql(box, kShopifyTarget, "SELECT count(*) FROM \"weird.a.b\"") == "2");
}

// Targets under merge after truncations: every current source row is in the target with the source's
// values, ids are unique, and the target also holds exactly the `deleted` rows the source lost.
void CheckMergedTargets(const Sandbox& box, int64_t deleted) {
  const std::string target = box.File("warehouse/" + kShopifyTarget);
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(target.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  const std::string attach = "ATTACH " + ShellQuote(box.File("warehouse/" + kShopify)) + " AS src";
  REQUIRE(sqlite3_exec(db, attach.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  auto one = [&](const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    const int64_t value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
  };
  const int64_t source_rows = one("SELECT count(*) FROM src.orders");
  CHECK(one("SELECT count(*) FROM main.orders") == source_rows + deleted);
  CHECK(one("SELECT count(DISTINCT id) FROM main.orders") == source_rows + deleted);
  CHECK(one("SELECT count(*) FROM src.orders s JOIN main.orders t USING (id) WHERE s.total IS t.total AND "
            "s._fivetran_synced IS t._fivetran_synced") == source_rows);
  sqlite3_close(db);
}

TEST_CASE("merge: runs killed at random instants, with rows updated in place and a truncated source") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  UseStrategy(box, "strategy = \"merge\"\nmerge_keys = [\"id\"]\n");
  Sql(box, kShopify,
      "WITH RECURSIVE n(i) AS (SELECT 3000 UNION ALL SELECT i + 1 FROM n WHERE i < 150000) "
      "INSERT INTO orders SELECT i, i % 500, i / 100.0, "
      "strftime('%Y-%m-%dT%H:%M:%fZ', '2025-01-01', '+' || (i * 10) || ' seconds') FROM n");
  CHECK_RUN(box.Rocky("run"), 0);
  std::mt19937 rng(4242);
  int64_t next_id = 200000;
  int64_t deleted = 0;
  for (int round = 0; round < 8; ++round) {
    // New rows, rows updated in place (a new total and a newer timestamp), and at round 4 a truncation of
    // the newest rows: the target must keep those.
    Sql(box, kShopify,
        "WITH RECURSIVE n(i) AS (SELECT " + std::to_string(next_id) +
            " UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(next_id + 20000) +
            ") INSERT INTO orders SELECT i, i % 500, 1.0, " +
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || (" + std::to_string(round) + " * 100000 + i - " +
            std::to_string(next_id) + ") || ' seconds') FROM n;" +
            "UPDATE orders SET total = total + 1000, _fivetran_synced = strftime('%Y-%m-%dT%H:%M:%fZ', "
            "'now', '+" +
            std::to_string(round * 100000 + 50000) + " seconds') WHERE id % 997 = " + std::to_string(round) +
            ";");
    next_id += 20001;
    if (round == 4) {
      CHECK_RUN(box.Rocky("run"), 0);  // copied first, so the rows to delete are in the target
      deleted += std::stoll(
          Sql(box, kShopify, "SELECT count(*) FROM orders WHERE id >= " + std::to_string(next_id - 40002)));
      Sql(box, kShopify, "DELETE FROM orders WHERE id >= " + std::to_string(next_id - 40002));
    }
    const pid_t pid = StartRun(box);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 600));
    kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (round % 2 == 1) {
      CHECK_RUN(box.Rocky("run --output table"), 0);
      CheckMergedTargets(box, deleted);
    }
  }
  CHECK(deleted > 0);
  CHECK_RUN(box.Rocky("run --output table"), 0);
  CheckMergedTargets(box, deleted);
}

TEST_CASE("incremental: a run killed after the source was truncated, then run again, deletes nothing") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  CHECK_RUN(box.Rocky("run"), 0);
  // The newest sync batch shares one timestamp, then vanishes from the source.
  Sql(box, kShopify,
      "INSERT INTO orders SELECT id + 100000, customer_id, total, '2030-01-01T00:00:00Z' FROM orders");
  CHECK_RUN(box.Rocky("run"), 0);
  Sql(box, kShopify, "DELETE FROM orders WHERE id > 100000");
  std::mt19937 rng(777);
  for (int round = 0; round < 4; ++round) {
    const pid_t pid = StartRun(box);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
    kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    Run again = box.Rocky("run --output json");
    CHECK_RUN(again, 0);
    CHECK(Sql(box, kShopifyTarget, "SELECT count(*) || ' ' || count(DISTINCT id) FROM orders") ==
          "4000 4000");
    Run state = box.Rocky(std::string("state --output json --table ") + kOrders);
    CHECK(Contains(state.out, "2030-01-01T00:00:00Z"));  // never moved back
  }
}

TEST_CASE(
    "a damaged check_history page: run saves every watermark, the check names the damage, export --salvage") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  CHECK_RUN(box.Rocky("run"), 0);
  // Two commits that do not touch check_history, so the damaged page is not one the newest commit wrote.
  CHECK_RUN(box.Rocky("state set --table other.schema.one --value 2026-01-01T00:00:00Z"), 0);
  CHECK_RUN(box.Rocky("state set --table other.schema.two --value 2026-01-01T00:00:00Z"), 0);
  const std::string state = box.File(".rocky-state.redb");
  rocky_test::DamagePage(state, rocky_test::TableRootPage(state, "check_history"));
  Sql(box, kShopify,
      "INSERT INTO orders (id, customer_id, total, _fivetran_synced) VALUES "
      "(9001, 1, 1.0, strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+1 hour'))");

  // Every table is copied and every watermark saved; the anomaly check says why it has no verdict.
  Run run = box.Rocky("run --output json");
  CHECK_RUN(run, 0);
  simdjson::dom::parser parser;
  auto report = ParseJson(parser, run.out);
  CHECK(report["tables_copied"].get_uint64().value() == 4);
  CHECK(report["tables_failed"].get_array().value().size() == 0);
  int damage_reported = 0;
  // Named first: value() of a temporary simdjson_result would leave the loop's range dangling.
  const simdjson::dom::array check_results = report["check_results"].get_array().value();
  for (auto check : check_results) {
    if (std::string_view(check["check"].get_string().value()) != "anomaly") continue;
    CHECK(!check["passed"].get_bool().value());
    const std::string detail(check["detail"].get_string().value());
    CHECK(Contains(detail, "row-count history"));
    ++damage_reported;
  }
  CHECK(damage_reported == 4);
  simdjson::dom::parser state_parser;
  auto watermarks = ParseJson(state_parser, box.Rocky("state").out)["watermarks"].get_array().value();
  CHECK(watermarks.size() == 6);
  bool orders_advanced = false;
  for (auto w : watermarks) {
    if (std::string_view(w["table"].get_string().value()) == kOrders) {
      orders_advanced = std::string_view(w["updated_at"].get_string().value()) >= "2026";
      const std::string last(w["last_value"].get_string().value());
      CHECK(last == Sql(box, kShopifyTarget, "SELECT max(_fivetran_synced) FROM orders"));
    }
  }
  CHECK(orders_advanced);

  // A plain export stops at the damage and says what to do; --salvage writes the rest and lists the loss.
  Run whole = box.Rocky("state export whole.json");
  CHECK_RUN(whole, 1);
  CHECK(Contains(whole.err, "--salvage"));
  CHECK(!std::filesystem::exists(box.File("whole.json")));
  Run salvage = box.Rocky("state export --salvage saved.json --output json");
  CHECK_RUN(salvage, 1);  // something was lost
  CHECK(Contains(salvage.err, "not salvaged: table 'check_history'"));
  simdjson::dom::parser salvage_parser;
  auto salvaged = ParseJson(salvage_parser, salvage.out);
  CHECK(salvaged["watermarks"].get_uint64().value() == 6);
  CHECK(salvaged["run_history"].get_uint64().value() == 2);
  CHECK(salvaged["salvage"]["entries_lost"].get_uint64().value() == 4);
  // Imported over the damaged file itself (whose damaged tables cannot even be dropped): a new file takes its
  // place, the damaged one is kept, and the state is healthy again.
  Run imported = box.Rocky("state import saved.json --yes --output json");
  CHECK_RUN(imported, 0);
  simdjson::dom::parser import_parser;
  const std::string kept(ParseJson(import_parser, imported.out)["kept_damaged_file"].get_string().value());
  CHECK(kept.starts_with(".rocky-state.redb.damaged-"));
  CHECK(std::filesystem::exists(box.File(kept)));
  CHECK_RUN(box.Program("rocky-inspect", ".rocky-state.redb"), 0);
  CHECK(box.Rocky("state").out.find(kOrders) != std::string::npos);
  CHECK_RUN(box.Rocky("doctor --check state_file"), 0);
  CHECK_RUN(box.Rocky("run"), 0);
}

TEST_CASE("doctor --check warehouse on SQLite: the folder and the schema patterns, never creating anything") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  const Run healthy = box.Rocky("doctor --check warehouse --output json");
  CHECK_RUN(healthy, 0);
  simdjson::dom::parser parser;
  auto check = ParseJson(parser, healthy.out)["checks"].at(0);
  CHECK(std::string_view(check["name"].get_string().value()) == "warehouse");
  CHECK(std::string_view(check["status"].get_string().value()) == "healthy");
  const std::string message(check["message"].get_string().value());
  CHECK(Contains(message, "sqlite:" + box.File("warehouse") + " opens"));
  CHECK(Contains(message, "pipeline bronze matches 3 schemas"));
  CHECK(Contains(healthy.out, "[\"pipeline.bronze.schemas\",\"3\"]"));

  // A schema pattern that matches nothing: a warning naming the schemas there are.
  std::string toml = ReadBytes(box.File("rocky.toml"));
  const std::string prefix = "prefix = \"src__\"";
  REQUIRE(toml.find(prefix) != std::string::npos);
  WriteBytes(box.File("rocky.toml"),
             std::string(toml).replace(toml.find(prefix), prefix.size(), "prefix = \"raw__\""));
  const Run nothing = box.Rocky("doctor --check warehouse --output table");
  CHECK_RUN(nothing, 0);
  CHECK(Contains(nothing.out, "warning"));
  CHECK(Contains(nothing.out, "pipeline bronze: no schema of catalog 'fivetran_catalog' matches"));
  CHECK(Contains(nothing.out, "src__acme__us_west__shopify"));
  WriteBytes(box.File("rocky.toml"), toml);

  // The folder missing (moved away), then a plain file: critical, and the doctor creates nothing.
  std::filesystem::rename(box.File("warehouse"), box.File("moved"));
  const Run missing = box.Rocky("doctor --check warehouse --output table");
  CHECK_RUN(missing, 1);
  CHECK(Contains(missing.out, "the SQLite warehouse folder " + box.File("warehouse") + " does not exist"));
  CHECK(!std::filesystem::exists(box.File("warehouse")));
  WriteBytes(box.File("warehouse"), "not a folder");
  const Run file = box.Rocky("doctor --check warehouse --output table");
  CHECK_RUN(file, 1);
  CHECK(Contains(file.out, "is not a folder"));
  // Every check runs by default, the warehouse's among them.
  CHECK(Contains(box.Rocky("doctor --output table").out, "warehouse"));
}

TEST_CASE("a run_history key that is not a number: rocky run fails with one line, never abort()'s exit 134") {
  Sandbox box;
  CHECK_RUN(box.Rocky("init"), 0);
  CHECK_RUN(box.Rocky("run"), 0);
  {
    auto db = rocky::engine::Database::Open(box.File(".rocky-state.redb"), rocky::engine::Options{});
    REQUIRE(db.ok());
    auto w = (*db)->BeginWrite();
    REQUIRE(w.ok());
    auto t = (*w)->OpenTable("run_history");
    REQUIRE(t.ok());
    REQUIRE((*t)->Insert("zz-not-a-number", "{}").ok());
    REQUIRE((*w)->Commit().ok());
  }
  Run run = box.Rocky("run");
  CHECK_RUN(run, 1);
  CHECK(Contains(run.err, "run_history key 'zz-not-a-number'"));
  CHECK(std::count(run.err.begin(), run.err.end(), '\n') == 1);
}

}  // namespace
