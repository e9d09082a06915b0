// rocky on PostgreSQL, end to end against real servers (tests/support/postgres_fixture.h): the quickstart's
// steps (init --adapter postgres, plan, run, a new row, run, state), a pipeline between two servers through
// named adapters, a table dropped between plan and apply, a lost state re-derived from the targets, and
// exactness after kills: rocky SIGKILLed at random instants and at a known point inside a copy, and the
// server's backend killed mid-copy, the whole server killed mid-copy (then down: clear errors, state
// unchanged; then restarted on its data directory), the server restarted between two tables of a run (the
// first kept, the second failed), and, between two servers, the source server killed mid-COPY (the target's
// transaction keeps nothing), each followed by a rerun that must leave exactly the source's rows and
// watermarks. No output may hold the password.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "postgres_fixture.h"
#include "program_runner.h"
#include "rocky/config/config.h"
#include "rocky/replication/plan.h"
#include "rocky/replication/runner.h"
#include "rocky/state/store.h"
#include "rocky/warehouse/postgres_warehouse.h"

namespace rocky::cli::testing {
namespace {

using rocky_test::PostgresServer;

PostgresServer& Server() {
  static PostgresServer server;
  return server;
}

// A database per case, so the cases sharing the server start from nothing.
std::string FreshDatabase(PostgresServer& server, const std::string& name) {
  server.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)", "postgres");
  server.Exec("CREATE DATABASE " + name, "postgres");
  return name;
}

// Checks that no output of `run` holds the password, then returns a copy (a copy: `run` may be a temporary).
Run NoSecret(const Run& run, const std::string& password) {
  CHECK_MESSAGE(!Contains(run.out, password), "stdout holds the password: " << run.out);
  CHECK_MESSAGE(!Contains(run.err, password), "stderr holds the password: " << run.err);
  return run;
}

pid_t StartRun(const Sandbox& box) {
  const std::string binary = ProgramPath("rocky");
  std::fflush(nullptr);
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

const std::vector<std::pair<std::string, std::string>> kSamplePairs = {
    {"\"fivetran_catalog.src__acme__eu_central__stripe\".charges",
     "\"acme_warehouse.staging__eu_central__stripe\".charges"},
    {"\"fivetran_catalog.src__acme__us_west__shopify\".customers",
     "\"acme_warehouse.staging__us_west__shopify\".customers"},
    {"\"fivetran_catalog.src__acme__us_west__shopify\".orders",
     "\"acme_warehouse.staging__us_west__shopify\".orders"},
    {"\"fivetran_catalog.src__globex__us_east__shopify\".orders",
     "\"globex_warehouse.staging__us_east__shopify\".orders"},
};

// Every target holds exactly its source's rows (as multisets, on the source's columns).
void CheckTargetsMatchSources(PostgresServer& server, const std::string& db) {
  for (const auto& pair : kSamplePairs) {
    // Not a structured binding: clang 14 cannot capture one in INFO's lambda.
    const std::string& source = pair.first;
    const std::string& target = pair.second;
    INFO(source << " -> " << target);
    const std::string cols = server.Scalar(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '" +
            source + "'::regclass AND attnum > 0 AND NOT attisdropped",
        db);
    CHECK(server.Scalar("SELECT (SELECT count(*) FROM (SELECT " + cols + " FROM " + source +
                            " EXCEPT ALL SELECT " + cols + " FROM " + target +
                            ") a) || '|' || (SELECT count(*) FROM (SELECT " + cols + " FROM " + target +
                            " EXCEPT ALL SELECT " + cols + " FROM " + source + ") b)",
                        db) == "0|0");
  }
}

const char* kOrders = "\"fivetran_catalog.src__acme__us_west__shopify\".orders";

TEST_CASE("postgres: the quickstart's steps, without the password in any output or file") {
  PostgresServer& server = Server();
  const std::string db = FreshDatabase(server, "quickstart");
  const std::string url = server.Url(db);
  setenv("PG_URL", url.c_str(), 1);
  Sandbox box;
  const Run init = box.Rocky("init --adapter postgres --url " + ShellQuote(url) + " --output table");
  CHECK_RUN(NoSecret(init, server.password()), 0);
  CHECK(Contains(init.out, "PG_URL"));
  const std::string toml = ReadBytes(box.File("rocky.toml"));
  CHECK(!Contains(toml, server.password()));
  CHECK(Contains(toml, "type = \"postgres\""));
  CHECK(Contains(toml, "url = \"${PG_URL}\""));
  CHECK(server.Scalar("SELECT count(*) FROM " + std::string(kOrders), db) == "2000");

  const Run plan = box.Rocky("plan --output json");
  CHECK_RUN(NoSecret(plan, server.password()), 0);
  CHECK(Contains(plan.out,
                 "CREATE INDEX ON \\\"fivetran_catalog.src__acme__us_west__shopify\\\".\\\"orders\\\""));
  CHECK_RUN(NoSecret(box.Rocky("run --output json"), server.password()), 0);
  CheckTargetsMatchSources(server, db);
  server.Exec("INSERT INTO " + std::string(kOrders) + " VALUES (9001, 7, 19.99, now())", db);
  const Run second = box.Rocky("run --output json");
  CHECK_RUN(NoSecret(second, server.password()), 0);
  CHECK(Contains(second.out, "\"rows_copied\":1,"));
  CheckTargetsMatchSources(server, db);
  const Run state = box.Rocky("state --output table");
  CHECK_RUN(NoSecret(state, server.password()), 0);
  CHECK(Contains(state.out, "acme_warehouse.staging__us_west__shopify.orders"));

  // Failures: wrong password, the server unreachable, TLS required; each names the server, never the secret,
  // and records nothing.
  const std::string wrong = "postgresql://rocky:wrong-" + server.password() +
                            "@127.0.0.1:" + std::to_string(server.port()) + "/" + db;
  setenv("PG_URL", wrong.c_str(), 1);
  const Run denied = box.Rocky("run --output table");
  CHECK_RUN(NoSecret(denied, server.password()), 1);
  CHECK(Contains(denied.err, "password authentication failed"));
  setenv("PG_URL", server.Url(db, "sslmode=require").c_str(), 1);
  const Run tls = box.Rocky("plan --output table");
  CHECK_RUN(NoSecret(tls, server.password()), 1);
  CHECK(Contains(tls.err, "SSL was required"));
  setenv("PG_URL", url.c_str(), 1);
  CHECK_RUN(box.Rocky("run --output table"), 0);
  CheckTargetsMatchSources(server, db);
}

TEST_CASE("postgres: init with a URL that does not connect leaves nothing behind") {
  PostgresServer& server = Server();
  const std::string db = FreshDatabase(server, "initfail");
  const std::string port = std::to_string(server.port());
  Sandbox box;
  const std::vector<std::string> failing = {
      "postgresql://rocky:" + server.password() + "@127.0.0.1:" + std::to_string(rocky_test::FreePort()) +
          "/" + db,                                                                       // nothing listening
      "postgresql://rocky:wrong-" + server.password() + "@127.0.0.1:" + port + "/" + db,  // wrong password
      server.Url("no_such_database"),
  };
  for (const std::string& url : failing) {
    INFO(url);
    const Run init = box.Rocky("init --config project/rocky.toml --adapter postgres --url " +
                               ShellQuote(url) + " --output table");
    CHECK_RUN(NoSecret(init, server.password()), 1);
    CHECK(Contains(init.err, "connecting to postgres:rocky@127.0.0.1:"));
    CHECK(!std::filesystem::exists(box.File("project")));
  }
  CHECK(server.Scalar("SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'fivetran%'",
                      db) == "0");

  // --force over a working project: a URL that does not connect keeps its rocky.toml and its watermarks.
  setenv("PG_URL", server.Url(db).c_str(), 1);
  CHECK_RUN(box.Rocky("init --config project/rocky.toml --adapter postgres --url \"$PG_URL\""), 0);
  CHECK_RUN(box.Rocky("run --config project/rocky.toml"), 0);
  const std::string toml = ReadBytes(box.File("project/rocky.toml"));
  const Run state = box.Rocky("state --output json");
  CHECK(Contains(state.out, "acme_warehouse.staging__us_west__shopify.orders"));
  const Run forced = box.Rocky("init --config project/rocky.toml --force --adapter postgres --url " +
                               ShellQuote(failing[1]) + " --output table");
  CHECK_RUN(NoSecret(forced, server.password()), 1);
  CHECK(Contains(forced.err, "password authentication failed"));
  CHECK(box.Rocky("state --output json").out == state.out);
  CHECK(ReadBytes(box.File("project/rocky.toml")) == toml);
}

TEST_CASE("postgres: a table dropped between plan and apply fails alone, clearly") {
  PostgresServer& server = Server();
  const std::string db = FreshDatabase(server, "dropped");
  setenv("PG_URL", server.Url(db).c_str(), 1);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --adapter postgres --url \"$PG_URL\""), 0);
  CHECK_RUN(box.Rocky("run"), 0);
  server.Exec("INSERT INTO " + std::string(kOrders) + " VALUES (9001, 7, 19.99, now())", db);
  const Run plan = box.Rocky("plan --output json");
  CHECK_RUN(plan, 0);
  const size_t at = plan.out.find("\"plan_id\":\"");
  REQUIRE(at != std::string::npos);
  const std::string plan_id = plan.out.substr(at + 11, 32);
  server.Exec("DROP TABLE \"fivetran_catalog.src__acme__eu_central__stripe\".charges", db);
  const Run apply = box.Rocky("apply " + plan_id + " --output table");
  CHECK_RUN(apply, 1);
  CHECK(Contains(apply.out, "FAILED acme_warehouse.staging__eu_central__stripe.charges"));
  CHECK(Contains(apply.out, "not found"));
  CHECK(server.Scalar("SELECT count(*) FROM \"acme_warehouse.staging__eu_central__stripe\".charges", db) ==
        "1500");
  CHECK(server.Scalar("SELECT count(*) FROM \"acme_warehouse.staging__us_west__shopify\".orders", db) ==
        "2001");
}

TEST_CASE("postgres: two servers through named adapters, and a lost state re-derived from the targets") {
  PostgresServer& source = Server();
  PostgresServer target;
  const std::string db = FreshDatabase(source, "twoservers");
  setenv("SRC_URL", source.Url(db).c_str(), 1);
  setenv("DWH_URL", target.Url().c_str(), 1);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --adapter postgres --url \"$SRC_URL\""), 0);
  std::string toml = ReadBytes(box.File("rocky.toml"));
  const size_t adapter = toml.find("[adapter]");
  const size_t state = toml.find("[state]");
  REQUIRE((adapter != std::string::npos && state != std::string::npos));
  toml.replace(
      adapter, state - adapter,
      "[adapter.src]\ntype = \"postgres\"\nurl = \"${SRC_URL}\"\n\n[adapter.dwh]\ntype = \"postgres\"\n"
      "url = \"${DWH_URL}\"\n\n");
  toml.replace(toml.find("[pipeline.bronze.source]\n"), 25, "[pipeline.bronze.source]\nadapter = \"src\"\n");
  toml.replace(toml.find("[pipeline.bronze.target]\n"), 25, "[pipeline.bronze.target]\nadapter = \"dwh\"\n");
  WriteBytes(box.File("rocky.toml"), toml);
  const Run first = box.Rocky("run --output json");
  CHECK_RUN(NoSecret(NoSecret(first, source.password()), target.password()), 0);
  CHECK(target.Scalar("SELECT count(*) FROM \"acme_warehouse.staging__us_west__shopify\".orders") == "2000");
  source.Exec("INSERT INTO " + std::string(kOrders) + " VALUES (9001, 7, 19.99, now())", db);
  const Run second = box.Rocky("run --output json");
  CHECK_RUN(second, 0);
  CHECK(Contains(second.out, "\"rows_copied\":1,"));
  CHECK(target.Scalar("SELECT count(*) FROM \"acme_warehouse.staging__us_west__shopify\".orders") == "2001");
  CHECK(target.Scalar(
            "SELECT md5(string_agg(id || '|' || total || '|' || _fivetran_synced, ',' ORDER BY id)) FROM "
            "\"acme_warehouse.staging__us_west__shopify\".orders") ==
        source.Scalar(
            "SELECT md5(string_agg(id || '|' || total || '|' || _fivetran_synced, ',' ORDER BY id)) FROM " +
                std::string(kOrders),
            db));

  // The state lost (as after a failed remote download): planning re-derives each watermark from its target
  // on the target server, instead of reloading everything.
  auto config = config::LoadConfigFile(box.File("rocky.toml"), config::ProcessEnvironment());
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  auto warehouse = warehouse::OpenPostgresWarehouse(source.Url(db), target.Url());
  REQUIRE(warehouse.ok());
  auto store = state::StateStore::Open(box.File("fresh.redb"),
                                       state::StoreOptions{.mode = state::OpenMode::kReadWrite});
  REQUIRE(store.ok());
  auto plan =
      replication::BuildPlan(*config, **warehouse, **store, replication::PlanOptions{.state_lost = true});
  REQUIRE_MESSAGE(plan.ok(), plan.status().message());
  REQUIRE(plan->tables.size() == 4);
  for (const replication::TablePlan& t : plan->tables) {
    CHECK(t.mode == replication::CopyMode::kRederived);
    CHECK(t.start_watermark.has_value());
  }
  CHECK(!Contains(plan->warehouse, source.password()));
  CHECK(Contains(plan->warehouse, " -> "));
  // Applied, the re-derived plan copies nothing the targets already hold.
  auto report = replication::ApplyPlan(*plan, *config, **warehouse, **store, replication::RunOptions{});
  REQUIRE_MESSAGE(report.ok(), report.status().message());
  CHECK(report->status == "success");
  CHECK(report->rows_copied() == 0);
  CHECK(target.Scalar("SELECT count(*) FROM \"acme_warehouse.staging__us_west__shopify\".orders") == "2001");
}

TEST_CASE("postgres: remembered row counts reach the state and come back; a hand edit is counted again") {
  PostgresServer& server = Server();
  const std::string db = FreshDatabase(server, "remembered");
  setenv("PG_URL", server.Url(db).c_str(), 1);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --adapter postgres --url \"$PG_URL\""), 0);
  std::string toml = ReadBytes(box.File("rocky.toml"));
  const std::string type_line = "type = \"postgres\"\n";
  REQUIRE(toml.find(type_line) != std::string::npos);
  toml.replace(toml.find(type_line), type_line.size(), type_line + "mark_source_changes = true\n");
  WriteBytes(box.File("rocky.toml"), toml);
  const std::string target = "acme_warehouse.staging__us_west__shopify.orders";
  const std::string source = "fivetran_catalog.src__acme__us_west__shopify.orders";
  auto remembered = [&](const std::string& table) -> std::optional<state::RememberedRowCount> {
    auto store = state::StateStore::Open(box.File(".rocky-state.redb"), state::StoreOptions{});
    REQUIRE_MESSAGE(store.ok(), store.status().message());
    auto count = (*store)->RowCountOf(table);
    REQUIRE(count.ok());
    return *count;
  };
  CHECK_RUN(box.Rocky("run"), 0);  // full refresh: targets marked; the sources get their trigger after
  CHECK_RUN(box.Rocky("run"), 0);  // the sources counted once more, now under their trigger
  const auto target_count = remembered(target);
  const auto source_count = remembered(source);
  REQUIRE(target_count.has_value());
  REQUIRE(source_count.has_value());
  CHECK(target_count->version.rfind("pg1:", 0) == 0);
  CHECK(source_count->version.rfind("pg1:", 0) == 0);
  CHECK(target_count->rows == 2000);
  CHECK(source_count->rows == 2000);
  // Nothing changed: the counts the state hands back hold, so nothing is rewritten and the checks pass.
  const Run idle = box.Rocky("run --output json");
  CHECK_RUN(idle, 0);
  CHECK(!Contains(idle.out, "\"passed\":false"));
  CHECK(remembered(target)->version == target_count->version);
  CHECK(remembered(source)->version == source_count->version);
  // A hand DELETE on the target: its count is taken again and the row_count check says so, exactly.
  server.Exec("DELETE FROM \"acme_warehouse.staging__us_west__shopify\".orders WHERE id <= 5", db);
  const Run edited = box.Rocky("run --output table");
  CHECK_RUN(edited, 0);
  CHECK_MESSAGE(Contains(edited.out, "Source has 2,000 rows but the target has 1,995"), edited.out);
  CHECK(remembered(target)->rows == 1995);
  CHECK(remembered(target)->version != target_count->version);
  CHECK(!Contains(edited.out, "WARNING"));
}

TEST_CASE("postgres: mark_source_changes on a source rocky's role does not own: a warning, exact counts") {
  PostgresServer& server = Server();
  const std::string db = FreshDatabase(server, "notowner");
  server.Exec("DROP ROLE IF EXISTS cli_marks", "postgres");
  server.Exec("CREATE ROLE cli_marks LOGIN PASSWORD 'cli-marks-pw'", "postgres");
  server.Exec("ALTER DATABASE " + db + " OWNER TO cli_marks", "postgres");
  const std::string url =
      "postgresql://cli_marks:cli-marks-pw@127.0.0.1:" + std::to_string(server.port()) + "/" + db;
  setenv("PG_URL", url.c_str(), 1);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --adapter postgres --url \"$PG_URL\""), 0);  // the samples are the role's own
  std::string toml = ReadBytes(box.File("rocky.toml"));
  const std::string type_line = "type = \"postgres\"\n";
  toml.replace(toml.find(type_line), type_line.size(), type_line + "mark_source_changes = true\n");
  WriteBytes(box.File("rocky.toml"), toml);
  // One source belongs to someone else; rocky's role may only read it.
  server.Exec("ALTER TABLE " + std::string(kOrders) + " OWNER TO rocky", db);
  server.Exec("GRANT SELECT ON " + std::string(kOrders) + " TO cli_marks", db);
  const Run table = box.Rocky("run --output table");
  CHECK_RUN(NoSecret(table, "cli-marks-pw"), 0);
  CHECK_MESSAGE(Contains(table.out,
                         "WARNING acme_warehouse.staging__us_west__shopify.orders: source table "
                         "fivetran_catalog.src__acme__us_west__shopify.orders: mark_source_changes is "
                         "on, but rocky cannot install its change-marking trigger"),
                table.out);
  CHECK(Contains(table.out, "permission denied for table orders"));
  // Only that table warns; the others' sources got their trigger.
  size_t warnings = 0;
  for (size_t at = table.out.find("WARNING "); at != std::string::npos;
       at = table.out.find("WARNING ", at + 1))
    ++warnings;
  CHECK(warnings == 1);
  const Run json = box.Rocky("run --output json");
  CHECK_RUN(NoSecret(json, "cli-marks-pw"), 0);
  CHECK(Contains(json.out,
                 "\"warnings\":[\"source table fivetran_catalog.src__acme__us_west__shopify.orders: "));
  CHECK(!Contains(json.out, "\"passed\":false,\"detail\":\"Source has"));  // the counts are exact
  CHECK(server.Scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'rocky_mark_changes'", db) == "7");
}

TEST_CASE("postgres: rocky SIGKILLed mid-copy, and the server's backend killed mid-copy, then rerun: exact") {
  PostgresServer& server = Server();
  const std::string db = FreshDatabase(server, "kills");
  setenv("PG_URL", server.Url(db).c_str(), 1);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --adapter postgres --url \"$PG_URL\""), 0);
  server.Exec("INSERT INTO " + std::string(kOrders) +
                  " SELECT g, g % 500, g / 100.0, timestamptz '2025-01-01' + g * interval '10 s' FROM "
                  "generate_series(3000, 60000) g",
              db);
  CHECK_RUN(box.Rocky("run"), 0);
  int64_t next_id = 200000;
  auto arrive = [&](int round) {
    server.Exec("INSERT INTO " + std::string(kOrders) + " SELECT g, g % 500, 1.0, now() + (" +
                    std::to_string(round) + " * 100000 + g - " + std::to_string(next_id) +
                    ") * interval '1 s' FROM generate_series(" + std::to_string(next_id) + ", " +
                    std::to_string(next_id + 20000) + ") g",
                db);
    next_id += 20001;
  };

  SUBCASE("at a known point inside the copy's transaction") {
    arrive(0);
    {
      // The copy of the orders table blocks on this lock after its transaction began.
      PGconn* holder = PQconnectdb(server.Keywords(db).c_str());
      REQUIRE(PQstatus(holder) == CONNECTION_OK);
      PQclear(PQexec(holder, "BEGIN"));
      PQclear(PQexec(
          holder, "LOCK TABLE \"acme_warehouse.staging__us_west__shopify\".orders IN ACCESS EXCLUSIVE MODE"));
      const pid_t pid = StartRun(box);
      server.WaitForBlockedQuery("CREATE INDEX IF NOT EXISTS%");
      kill(pid, SIGKILL);
      int status = 0;
      REQUIRE(waitpid(pid, &status, 0) == pid);
      CHECK(WIFSIGNALED(status));
      PQfinish(holder);
    }
    CHECK_RUN(box.Rocky("run --output table"), 0);
    CheckTargetsMatchSources(server, db);
  }
  SUBCASE("the server's backend killed inside the copy (the server restarts all sessions)") {
    arrive(0);
    Run failed;
    {
      PGconn* holder = PQconnectdb(server.Keywords(db).c_str());
      REQUIRE(PQstatus(holder) == CONNECTION_OK);
      PQclear(PQexec(holder, "BEGIN"));
      PQclear(PQexec(
          holder, "LOCK TABLE \"acme_warehouse.staging__us_west__shopify\".orders IN ACCESS EXCLUSIVE MODE"));
      std::thread killer(
          [&] { server.KillBackend(server.WaitForBlockedQuery("CREATE INDEX IF NOT EXISTS%")); });
      failed = box.Rocky("run --output table");
      killer.join();
      PQfinish(holder);
    }
    CHECK_RUN(NoSecret(failed, server.password()), 1);
    CHECK(Contains(failed.out, "FAILED acme_warehouse.staging__us_west__shopify.orders"));
    CHECK_RUN(box.Rocky("run --output table"), 0);
    CheckTargetsMatchSources(server, db);
  }
  SUBCASE("at random instants, rows arriving between runs") {
    std::mt19937 rng(2121);
    int killed = 0;
    for (int round = 0; round < 6; ++round) {
      arrive(round);
      const pid_t pid = StartRun(box);
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 400));
      kill(pid, SIGKILL);
      int status = 0;
      REQUIRE(waitpid(pid, &status, 0) == pid);
      if (WIFSIGNALED(status)) ++killed;
      if (round % 2 == 1) {
        CHECK_RUN(box.Rocky("run --output table"), 0);
        CheckTargetsMatchSources(server, db);
      }
    }
    MESSAGE("rocky killed before finishing in " << killed << " of 6 rounds");
  }
  CHECK_RUN(box.Rocky("run --output table"), 0);
  CheckTargetsMatchSources(server, db);
}

TEST_CASE("postgres: pipelines with their own adapter pairs (SQLite and PostgreSQL) in one rocky.toml") {
  PostgresServer& server = Server();
  const std::string db = FreshDatabase(server, "pairs");
  setenv("PG_URL", server.Url(db).c_str(), 1);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --adapter postgres --url \"$PG_URL\""), 0);  // the sample in PostgreSQL
  CHECK_RUN(box.Rocky("init --force"), 0);                               // and in ./warehouse (SQLite)
  const std::string pattern =
      "schema_pattern = { prefix = \"src__\", separator = \"__\", components = [\"tenant\", \"regions...\", "
      "\"source\"] }\n";
  auto pipeline = [&](const std::string& name, const std::string& adapter, const std::string& catalog) {
    return "[pipeline." + name + "]\ntimestamp_column = \"_fivetran_synced\"\n[pipeline." + name +
           ".source]\nadapter = \"" + adapter + "\"\ncatalog = \"fivetran_catalog\"\n" + pattern +
           "[pipeline." + name + ".target]\nadapter = \"" + adapter + "\"\ncatalog_template = \"" + catalog +
           "\"\nschema_template = \"staging__{regions}__{source}\"\n[pipeline." + name +
           ".checks]\nenabled = true\n\n";
  };
  WriteBytes(
      box.File("rocky.toml"),
      "[adapter.lite]\ntype = \"sqlite\"\npath = \"warehouse\"\n\n[adapter.pg]\ntype = \"postgres\"\nurl = "
      "\"${PG_URL}\"\n\n[state]\nbackend = \"local\"\n\n" +
          pipeline("laptop", "lite", "{tenant}_warehouse") + pipeline("server", "pg", "{tenant}_dwh"));
  const Run first = box.Rocky("run --output json");
  CHECK_RUN(NoSecret(first, server.password()), 0);
  CHECK(Contains(first.out, "\"tables_copied\":8"));
  CHECK(server.Scalar("SELECT count(*) FROM \"acme_dwh.staging__us_west__shopify\".orders", db) == "2000");
  CHECK(std::filesystem::exists(box.File("warehouse/acme_warehouse/staging__us_west__shopify.sqlite")));
  // Nothing of one pipeline went to the other's warehouse.
  CHECK(server.Scalar("SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE "
                      "'acme\\_warehouse.%'",
                      db) == "0");
  CHECK(!std::filesystem::exists(box.File("warehouse/acme_dwh")));

  // A new row on the server: only the server's pipeline copies it; plan then apply, one state file.
  server.Exec("INSERT INTO " + std::string(kOrders) + " VALUES (9001, 7, 19.99, now())", db);
  const Run plan = box.Rocky("plan --output json");
  CHECK_RUN(NoSecret(plan, server.password()), 0);
  const size_t at = plan.out.find("\"plan_id\":\"");
  REQUIRE(at != std::string::npos);
  const Run apply = box.Rocky("apply " + plan.out.substr(at + 11, 32) + " --output json");
  CHECK_RUN(NoSecret(apply, server.password()), 0);
  CHECK(Contains(apply.out, "\"rows_copied\":1,"));
  CHECK(server.Scalar("SELECT count(*) FROM \"acme_dwh.staging__us_west__shopify\".orders", db) == "2001");
  // A plan names each pipeline's warehouse: one of them moved, the plan is refused.
  const Run replan = box.Rocky("plan --output json");
  CHECK_RUN(replan, 0);
  const std::string toml = ReadBytes(box.File("rocky.toml"));
  std::string moved = toml;
  moved.replace(moved.find("path = \"warehouse\""), 18, "path = \"elsewhere\"");
  WriteBytes(box.File("rocky.toml"), moved);
  const Run stale = box.Rocky("apply " + replan.out.substr(replan.out.find("\"plan_id\":\"") + 11, 32));
  CHECK_RUN(NoSecret(stale, server.password()), 1);
  CHECK(Contains(stale.err, "laptop=sqlite:" + box.File("warehouse") + "; server=postgres:rocky@127.0.0.1:"));
  CHECK(Contains(stale.err, "laptop=sqlite:" + box.File("elsewhere")));
  CHECK(!std::filesystem::exists(box.File("elsewhere")));  // refused before the warehouse was opened
  WriteBytes(box.File("rocky.toml"), toml);
  const Run state = box.Rocky("state --output table");
  CHECK(Contains(state.out, "acme_dwh.staging__us_west__shopify.orders"));
  CHECK(Contains(state.out, "acme_warehouse.staging__us_west__shopify.orders"));
  const Run doctor = box.Rocky("doctor --check warehouse --output table");
  CHECK_RUN(NoSecret(doctor, server.password()), 0);
  CHECK(Contains(doctor.out, "pipeline laptop matches 3 schemas"));
  CHECK(Contains(doctor.out, "pipeline server matches 3 schemas"));

  // The server down: the command stops before anything runs, for both pipelines, naming the server.
  setenv("PG_URL",
         server.Url(db)
             .replace(server.Url(db).find(std::to_string(server.port())),
                      std::to_string(server.port()).size(), std::to_string(rocky_test::FreePort()))
             .c_str(),
         1);
  const Run down = box.Rocky("run --output table");
  CHECK_RUN(NoSecret(down, server.password()), 1);
  CHECK(Contains(down.err, "Connection refused"));
  CHECK(box.Rocky("state --output table").out == state.out);
}

TEST_CASE("postgres: doctor --check warehouse: reachable, credentials, patterns; never the password") {
  PostgresServer& server = Server();
  const std::string db = FreshDatabase(server, "doctor");
  setenv("PG_URL", server.Url(db).c_str(), 1);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --adapter postgres --url \"$PG_URL\""), 0);
  const std::string name = "postgres:rocky@127.0.0.1:" + std::to_string(server.port()) + "/" + db;
  const Run healthy = box.Rocky("doctor --check warehouse --output json");
  CHECK_RUN(NoSecret(healthy, server.password()), 0);
  CHECK(Contains(healthy.out, "\"status\":\"healthy\""));
  CHECK(Contains(healthy.out, name + " opens; pipeline bronze matches 3 schemas"));

  // A wrong password: critical, the server's words, a suggestion about credentials, no password.
  setenv("PG_URL",
         ("postgresql://rocky:wrong-" + server.password() + "@127.0.0.1:" + std::to_string(server.port()) +
          "/" + db)
             .c_str(),
         1);
  const Run denied = box.Rocky("doctor --check warehouse --output json");
  CHECK_RUN(NoSecret(denied, server.password()), 1);
  CHECK(Contains(denied.out, "\"status\":\"critical\""));
  CHECK(Contains(denied.out, "password authentication failed"));
  CHECK(Contains(denied.out, "The server refused the credentials"));

  // Nothing listening on the port: critical, naming the server, a suggestion about reaching it.
  const int closed = rocky_test::FreePort();
  setenv(
      "PG_URL",
      ("postgresql://rocky:" + server.password() + "@127.0.0.1:" + std::to_string(closed) + "/" + db).c_str(),
      1);
  const Run unreachable = box.Rocky("doctor --check warehouse --output table");
  CHECK_RUN(NoSecret(unreachable, server.password()), 1);
  CHECK(Contains(unreachable.out, "connecting to postgres:rocky@127.0.0.1:" + std::to_string(closed)));
  CHECK(Contains(unreachable.out, "Connection refused"));
  CHECK(Contains(unreachable.out, "The server was not reached"));

  // Reached, but the pipeline's catalog has no schema the pattern matches: a warning.
  setenv("PG_URL", server.Url(db).c_str(), 1);
  server.Exec(
      "ALTER SCHEMA \"fivetran_catalog.src__acme__us_west__shopify\" RENAME TO "
      "\"fivetran_catalog.raw__acme__us_west__shopify\"; ALTER SCHEMA "
      "\"fivetran_catalog.src__acme__eu_central__stripe\" RENAME TO \"fivetran_catalog.raw__acme__eu\"; "
      "ALTER SCHEMA \"fivetran_catalog.src__globex__us_east__shopify\" RENAME TO "
      "\"fivetran_catalog.raw__globex\"",
      db);
  const Run nothing = box.Rocky("doctor --check warehouse --output table");
  CHECK_RUN(NoSecret(nothing, server.password()), 0);
  CHECK(Contains(nothing.out, "warning"));
  CHECK(Contains(nothing.out, "no schema of catalog 'fivetran_catalog' matches its schema_pattern"));
  CHECK(Contains(nothing.out, "raw__acme__us_west__shopify"));
}

// The watermark of `table` in `rocky state --output json` ("" when none).
std::string WatermarkOf(const Sandbox& box, const std::string& table) {
  const Run state = box.Rocky("state --output json");
  REQUIRE(state.exit_code == 0);
  const std::string key = "{\"table\":\"" + table + "\",\"last_value\":\"";
  const size_t at = state.out.find(key);
  if (at == std::string::npos) return "";
  const size_t start = at + key.size();
  return state.out.substr(start, state.out.find('"', start) - start);
}

// The watermark a complete copy of `table` (its _fivetran_synced) leaves: the newest value, as rocky writes
// it (UTC, trailing zeros of the fraction dropped, 'Z').
std::string NewestCursor(const PostgresServer& server, const std::string& table, const std::string& db) {
  std::string newest = server.Scalar(
      "SELECT to_char(max(_fivetran_synced) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') FROM " +
          table,
      db);
  while (newest.back() == '0') newest.pop_back();
  if (newest.back() == '.') newest.pop_back();
  return newest + "Z";
}

TEST_CASE("postgres: the server killed (SIGKILL of every process) mid-copy, down, restarted: rerun exact") {
  PostgresServer& server = Server();
  const std::string db = FreshDatabase(server, "srvkill");
  setenv("PG_URL", server.Url(db).c_str(), 1);
  Sandbox box;
  CHECK_RUN(box.Rocky("init --adapter postgres --url \"$PG_URL\""), 0);
  CHECK_RUN(box.Rocky("run"), 0);
  const std::string orders_target = "acme_warehouse.staging__us_west__shopify.orders";
  const std::string watermark_before = WatermarkOf(box, orders_target);
  REQUIRE(!watermark_before.empty());
  server.Exec("INSERT INTO " + std::string(kOrders) +
                  " SELECT g, g % 500, 1.0, now() + g * interval '1 ms' FROM generate_series(10000, 30000) g",
              db);
  // A gate on the target: its 5,000th inserted row waits for an advisory lock this test holds. The sequence
  // is not transactional, so it shows from outside how many rows the copy's open transaction has inserted.
  server.Exec(
      "CREATE SEQUENCE public.gate_rows; CREATE FUNCTION public.gate() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ "
      "BEGIN IF nextval('public.gate_rows') = 5000 THEN PERFORM pg_advisory_xact_lock(2121); END IF; RETURN "
      "NEW; END $$; CREATE TRIGGER gate BEFORE INSERT ON \"acme_warehouse.staging__us_west__shopify\".orders "
      "FOR EACH ROW EXECUTE FUNCTION public.gate()",
      db);
  PGconn* holder = PQconnectdb(server.Keywords(db).c_str());
  REQUIRE(PQstatus(holder) == CONNECTION_OK);
  PQclear(PQexec(holder, "SELECT pg_advisory_lock(2121)"));
  Run interrupted;
  std::thread run([&] { interrupted = box.Rocky("run --output table"); });
  server.WaitForBlockedQuery("INSERT INTO%orders%");
  // Mid-copy: 4,999 rows are in the target's open transaction.
  CHECK(server.Scalar("SELECT last_value FROM public.gate_rows", db) == "5000");
  server.Crash();
  run.join();
  PQfinish(holder);
  const std::string server_name = "postgres:rocky@127.0.0.1:" + std::to_string(server.port()) + "/" + db;
  CHECK_RUN(NoSecret(interrupted, server.password()), 1);
  CHECK(Contains(interrupted.out, "FAILED " + orders_target + ": "));
  CHECK(Contains(interrupted.out, "was lost (server restarted or unreachable)"));
  CHECK(Contains(interrupted.out, server_name));
  CHECK(WatermarkOf(box, orders_target) == watermark_before);

  // While the server is down: every command that needs it says so, naming it, and changes no state.
  const Run state_before = box.Rocky("state --output json");
  for (const std::string command : {"run --output table", "plan --output json"}) {
    INFO(command);
    const Run down = box.Rocky(command);
    CHECK_RUN(NoSecret(down, server.password()), 1);
    CHECK(Contains(down.err, "connecting to " + server_name + ": "));
    CHECK(Contains(down.err, "Connection refused"));
  }
  CHECK(box.Rocky("state --output json").out == state_before.out);

  // Restarted on the same data directory (recovering from its WAL): nothing of the killed copy is there,
  // and a rerun leaves exactly the source's rows and the source's newest cursor as the watermark.
  server.Start();
  CHECK(server.Scalar("SELECT count(*) FROM \"acme_warehouse.staging__us_west__shopify\".orders", db) ==
        "2000");
  server.Exec("DROP TRIGGER gate ON \"acme_warehouse.staging__us_west__shopify\".orders", db);
  CHECK_RUN(box.Rocky("run --output table"), 0);
  CheckTargetsMatchSources(server, db);
  CHECK(WatermarkOf(box, orders_target) == NewestCursor(server, kOrders, db));
}

// A project of its own for the failure tests below: one source schema, fivetran_catalog.src__acme__app, with
// the tables alpha and beta (id, v, _fivetran_synced; `rows` each, one second apart from 2025-01-01), copied
// to acme_warehouse.staging__app without checks (no counts: nothing reads a table but its own copy). The
// adapters' URLs come from the environment.
const char* kAlpha = "\"fivetran_catalog.src__acme__app\".alpha";
const char* kBeta = "\"fivetran_catalog.src__acme__app\".beta";
const char* kAlphaTarget = "\"acme_warehouse.staging__app\".alpha";
const char* kBetaTarget = "\"acme_warehouse.staging__app\".beta";

void CreateAppSources(const PostgresServer& server, const std::string& db, int rows) {
  server.Exec("CREATE SCHEMA \"fivetran_catalog.src__acme__app\"", db);
  for (const char* table : {kAlpha, kBeta}) {
    server.Exec(std::string("CREATE TABLE ") + table +
                    " (id bigint PRIMARY KEY, v text NOT NULL, _fivetran_synced timestamptz NOT NULL)",
                db);
    server.Exec(std::string("INSERT INTO ") + table +
                    " SELECT g, 'row ' || g, timestamptz '2025-01-01 00:00:00+00' + g * interval '1 s' FROM "
                    "generate_series(1, " +
                    std::to_string(rows) + ") g",
                db);
  }
}

// Rows `first`..`last` arriving in `table`, newer than every row before them.
void Arrive(const PostgresServer& server, const std::string& db, const std::string& table, int first,
            int last) {
  server.Exec("INSERT INTO " + table +
                  " SELECT g, 'row ' || g, timestamptz '2025-02-01 00:00:00+00' + g * interval '1 s' FROM "
                  "generate_series(" +
                  std::to_string(first) + ", " + std::to_string(last) + ") g",
              db);
}

// `adapters` is the [adapter...] part; `source_adapter`/`target_adapter` the names the pipeline uses (empty
// for the single [adapter]).
void WriteAppConfig(const Sandbox& box, const std::string& adapters, const std::string& source_adapter,
                    const std::string& target_adapter) {
  WriteBytes(box.File("rocky.toml"),
             adapters +
                 "\n[state]\nbackend = \"local\"\n\n[pipeline.app]\ntimestamp_column = "
                 "\"_fivetran_synced\"\n\n[pipeline.app.source]\n" +
                 (source_adapter.empty() ? "" : "adapter = \"" + source_adapter + "\"\n") +
                 "catalog = \"fivetran_catalog\"\nschema_pattern = { prefix = \"src__\", separator = \"__\", "
                 "components = [\"tenant\", \"source\"] }\n\n[pipeline.app.target]\n" +
                 (target_adapter.empty() ? "" : "adapter = \"" + target_adapter + "\"\n") +
                 "catalog_template = \"{tenant}_warehouse\"\nschema_template = \"staging__{source}\"\n");
}

// A fingerprint of a table's rows (all of them, in id order), comparable across servers.
std::string RowsDigest(const PostgresServer& server, const std::string& table, const std::string& db) {
  return server.Scalar(
      "SELECT count(*) || ':' || coalesce(md5(string_agg(id || '|' || v || '|' || to_char(_fivetran_synced "
      "AT "
      "TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), ',' ORDER BY id)), '-') FROM " +
          table,
      db);
}

TEST_CASE(
    "postgres: the server restarted between two tables: the first kept, the second failed, rerun exact") {
  PostgresServer& server = Server();
  const std::string db = FreshDatabase(server, "between");
  CreateAppSources(server, db, 1000);
  setenv("PG_URL", server.Url(db).c_str(), 1);
  Sandbox box;
  WriteAppConfig(box, "[adapter]\ntype = \"postgres\"\nurl = \"${PG_URL}\"\n", "", "");
  CHECK_RUN(NoSecret(box.Rocky("run --output table"), server.password()), 0);
  const std::string alpha = "acme_warehouse.staging__app.alpha";
  const std::string beta = "acme_warehouse.staging__app.beta";
  const std::string beta_before = WatermarkOf(box, beta);
  CHECK(WatermarkOf(box, alpha) == "2025-01-01T00:16:40Z");
  CHECK(beta_before == "2025-01-01T00:16:40Z");
  Arrive(server, db, kAlpha, 1001, 1100);
  Arrive(server, db, kBeta, 1001, 1100);
  const std::string state_file_before = ReadBytes(box.File(".rocky-state.redb"));

  // beta's target locked by this test: the run copies alpha (committing it and its watermark), then waits in
  // beta's copy, whose transaction has begun, at its first statement on the target.
  const std::string server_name = "postgres:rocky@127.0.0.1:" + std::to_string(server.port()) + "/" + db;
  Run failed;
  {
    PGconn* holder = PQconnectdb(server.Keywords(db).c_str());
    REQUIRE(PQstatus(holder) == CONNECTION_OK);
    PQclear(PQexec(holder, "BEGIN"));
    PQclear(PQexec(holder, (std::string("LOCK TABLE ") + kBetaTarget + " IN ACCESS EXCLUSIVE MODE").c_str()));
    std::thread run([&] { failed = box.Rocky("run --output table"); });
    const int backend = server.WaitForBlockedQuery("CREATE INDEX IF NOT EXISTS%beta%");
    // The waiting backend is rocky's, and what it waits for is the lock on beta's target.
    CHECK(server.Scalar("SELECT application_name || '|' || (SELECT count(*) FROM pg_locks WHERE pid = " +
                            std::to_string(backend) + " AND NOT granted AND relation = '" + kBetaTarget +
                            "'::regclass) FROM pg_stat_activity WHERE pid = " + std::to_string(backend),
                        db) == "rocky|1");
    // alpha is committed, rows and all, before beta began.
    CHECK(RowsDigest(server, kAlphaTarget, db) == RowsDigest(server, kAlpha, db));
    // Restarted (fast shutdown: sessions ended, a checkpoint, the same data directory), under the waiting
    // copy.
    server.Stop();
    server.Start();
    run.join();
    PQfinish(holder);
  }
  setenv("PG_URL", server.Url(db).c_str(), 1);  // Start() keeps the port unless another process took it
  CHECK_RUN(NoSecret(failed, server.password()), 1);
  CHECK(Contains(failed.out, "FAILED " + beta + ": copying fivetran_catalog.src__acme__app.beta to " + beta));
  CHECK(Contains(failed.out, server_name));
  CHECK(!Contains(failed.out, "FAILED " + alpha));
  CHECK(Contains(failed.out, "1 copied, 1 failed"));
  CHECK(state_file_before != ReadBytes(box.File(".rocky-state.redb")));

  // The state says exactly what happened: alpha's watermark at its newest row, beta's as before; the targets
  // agree (alpha complete, beta without the new rows).
  CHECK(WatermarkOf(box, alpha) == NewestCursor(server, kAlpha, db));
  CHECK(WatermarkOf(box, alpha) == "2025-02-01T00:18:20Z");
  CHECK(WatermarkOf(box, beta) == beta_before);
  CHECK(RowsDigest(server, kAlphaTarget, db) == RowsDigest(server, kAlpha, db));
  CHECK(server.Scalar(std::string("SELECT count(*) || ' ' || max(id) FROM ") + kBetaTarget, db) ==
        "1000 1000");

  // The rerun copies beta's new rows (and nothing of alpha again): both exact, both watermarks at the newest.
  const Run rerun = box.Rocky("run --output table");
  CHECK_RUN(NoSecret(rerun, server.password()), 0);
  CHECK(Contains(rerun.out, "100 rows copied (100 new)"));
  for (const auto& pair : {std::pair{kAlpha, kAlphaTarget}, std::pair{kBeta, kBetaTarget}}) {
    // Not a structured binding: clang 14 cannot capture one in INFO's lambda.
    const std::string target = pair.second;
    INFO(target);
    CHECK(RowsDigest(server, target, db) == RowsDigest(server, pair.first, db));
  }
  CHECK(WatermarkOf(box, alpha) == NewestCursor(server, kAlpha, db));
  CHECK(WatermarkOf(box, beta) == NewestCursor(server, kBeta, db));
}

TEST_CASE("postgres: two servers, the SOURCE server killed mid-COPY: the target keeps nothing, rerun exact") {
  // The target is the shared server; the source a server of this case's own, killed and restarted.
  PostgresServer& target = Server();
  const std::string target_db = FreshDatabase(target, "srcdown");
  PostgresServer source;
  const std::string source_db = PostgresServer::kDatabase;
  CreateAppSources(source, source_db, 3000);
  source.Exec(std::string("DROP TABLE ") + kBeta, source_db);
  // rocky reads the source as a role without superuser rights (as a reader role would), so that a row-level
  // security policy applies to it: the gate. Its policy function waits, at row 15,000 of a COPY (the copy's
  // read), for an advisory lock this test holds, so the source's COPY is held mid-stream; nothing else
  // (planning, EXPLAIN, this test's own queries) waits.
  const std::string reader_password = source.password() + "-reader";
  source.Exec("CREATE ROLE reader LOGIN PASSWORD '" + reader_password +
                  "'; GRANT USAGE ON SCHEMA \"fivetran_catalog.src__acme__app\" TO reader; GRANT SELECT ON " +
                  kAlpha +
                  " TO reader; CREATE FUNCTION public.gate(id bigint) RETURNS boolean LANGUAGE plpgsql AS $$ "
                  "BEGIN IF id = 15000 AND current_query() LIKE 'COPY%' THEN PERFORM "
                  "pg_advisory_xact_lock(2121); END IF; RETURN true; END $$; ALTER TABLE " +
                  kAlpha + " ENABLE ROW LEVEL SECURITY; CREATE POLICY gate ON " + kAlpha +
                  " FOR SELECT TO reader USING (public.gate(id))",
              source_db);
  auto source_url = [&] {
    return "postgresql://reader:" + reader_password + "@127.0.0.1:" + std::to_string(source.port()) + "/" +
           source_db;
  };
  setenv("SRC_URL", source_url().c_str(), 1);
  setenv("DWH_URL", target.Url(target_db).c_str(), 1);
  Sandbox box;
  WriteAppConfig(box,
                 "[adapter.src]\ntype = \"postgres\"\nurl = \"${SRC_URL}\"\n\n[adapter.dwh]\ntype = "
                 "\"postgres\"\nurl = \"${DWH_URL}\"\n",
                 "src", "dwh");
  auto no_secret = [&](const Run& run) {
    return NoSecret(NoSecret(run, source.password()), target.password());
  };
  CHECK_RUN(no_secret(box.Rocky("run --output table")), 0);
  const std::string alpha = "acme_warehouse.staging__app.alpha";
  CHECK(RowsDigest(target, kAlphaTarget, target_db) == RowsDigest(source, kAlpha, source_db));
  Arrive(source, source_db, kAlpha, 10000, 30000);
  const Run state_before = box.Rocky("state --output json");
  CHECK_RUN(state_before, 0);
  const std::string target_before = RowsDigest(target, kAlphaTarget, target_db);

  const std::string source_name =
      "postgres:reader@127.0.0.1:" + std::to_string(source.port()) + "/" + source_db;
  Run failed;
  {
    PGconn* holder = PQconnectdb(source.Keywords(source_db).c_str());
    REQUIRE(PQstatus(holder) == CONNECTION_OK);
    PQclear(PQexec(holder, "SELECT pg_advisory_lock(2121)"));
    std::thread run([&] { failed = box.Rocky("run --output table"); });
    source.WaitForBlockedQuery("COPY (SELECT%");
    // Mid-COPY: the target's session is inside its COPY ... FROM STDIN, in the copy's open transaction
    // (waited for: rocky starts it once the source's COPY answered, which may be after the gate closed).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (target.Scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rocky' AND state = "
                         "'active' AND query LIKE 'COPY pg_temp.rocky_window%FROM STDIN'",
                         target_db) != "1") {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                      "the target's COPY did not start within 60 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    source.Crash();  // SIGKILL of the postmaster and every process it started
    run.join();
    PQfinish(holder);
  }
  CHECK_RUN(no_secret(failed), 1);
  CHECK(Contains(failed.out,
                 "FAILED " + alpha + ": copying fivetran_catalog.src__acme__app.alpha to " + alpha));
  CHECK(Contains(failed.out, "reading fivetran_catalog.src__acme__app.alpha on " + source_name));
  CHECK(Contains(failed.out, "the connection to " + source_name + " was lost"));
  CHECK(Contains(failed.out, "0 copied, 1 failed"));
  // The target's transaction rolled back: the target as it was, no transfer table, nothing in progress; the
  // state's watermarks as they were.
  CHECK(RowsDigest(target, kAlphaTarget, target_db) == target_before);
  CHECK(target.Scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rocky'", target_db) ==
        "0");
  CHECK(box.Rocky("state --output json").out == state_before.out);

  // The source restarted on its data directory (recovering from its WAL, the gate released with its holder's
  // session): the rerun copies the window, and the target holds exactly the source's rows.
  source.Start();
  source.Exec(std::string("ALTER TABLE ") + kAlpha + " DISABLE ROW LEVEL SECURITY", source_db);
  setenv("SRC_URL", source_url().c_str(), 1);
  const Run rerun = box.Rocky("run --output table");
  CHECK_RUN(no_secret(rerun), 0);
  CHECK(Contains(rerun.out, "20,001 rows copied (20,001 new)"));
  CHECK(RowsDigest(target, kAlphaTarget, target_db) == RowsDigest(source, kAlpha, source_db));
  CHECK(WatermarkOf(box, alpha) == NewestCursor(source, kAlpha, source_db));
  CHECK(WatermarkOf(box, alpha) == "2025-02-01T08:20:00Z");
}

}  // namespace
}  // namespace rocky::cli::testing
