// The PostgreSQL warehouse against a real server (tests/support/postgres_fixture.h, one shared by the cases
// of this binary, and a second one for the two-server copies): discovery and the catalog.schema mapping, the
// three strategies, integer and timestamp cursors, the statements' plans (index scans, not whole-table
// scans, for every window statement), exactness (nothing duplicated, nothing deleted), and the failures a
// server brings (wrong password, unreachable, TLS refused, statement timeout, restart and a killed backend
// mid-copy, a table dropped before the copy), none of which may print the password or lose a row.
#include "rocky/warehouse/postgres_warehouse.h"

#include <doctest/doctest.h>
#include <signal.h>

#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "postgres_fixture.h"
#include "rocky/warehouse/open.h"
#include "rocky/warehouse/sample_warehouse.h"

namespace rocky::warehouse {
namespace {

using rocky_test::PostgresServer;

PostgresServer& Server() {
  static PostgresServer server;
  return server;
}

// Serves TLS too: the two-server copies then run over TLS (libpq's default sslmode, prefer, takes it).
PostgresServer& SecondServer() {
  static PostgresServer server(/*tls=*/true);
  return server;
}

std::unique_ptr<Warehouse> Open(const std::string& source_url, const std::string& target_url,
                                const PostgresOptions& options = {}) {
  auto opened = OpenPostgresWarehouse(source_url, target_url, options);
  REQUIRE_MESSAGE(opened.ok(), opened.status().message());
  return std::move(*opened);
}

std::unique_ptr<Warehouse> Open() { return Open(Server().Url(), Server().Url()); }

// Drops and makes the schemas a case uses, so the cases sharing the server do not see each other.
void FreshSchemas(PostgresServer& server, const std::vector<std::string>& schemas) {
  for (const std::string& s : schemas) {
    server.Exec("DROP SCHEMA IF EXISTS \"" + s + "\" CASCADE");
  }
  for (const std::string& s : schemas) {
    if (s.rfind("dst.", 0) != 0) server.Exec("CREATE SCHEMA \"" + s + "\"");
  }
}

// Rows of one table not in the other, as multisets, both ways: "0|0" when they hold the same rows.
std::string Difference(PostgresServer& server, const std::string& a, const std::string& b,
                       const std::string& cols) {
  return server.Scalar("SELECT (SELECT count(*) FROM (SELECT " + cols + " FROM " + a + " EXCEPT ALL SELECT " +
                       cols + " FROM " + b + ") x) || '|' || (SELECT count(*) FROM (SELECT " + cols +
                       " FROM " + b + " EXCEPT ALL SELECT " + cols + " FROM " + a + ") y)");
}

CopyRequest Request(const std::string& table, std::optional<std::string> watermark,
                    config::Strategy strategy = config::Strategy::kIncremental) {
  return CopyRequest{.source = TableRef{"src", "s1", table},
                     .target = TableRef{"dst", "t1", table},
                     .timestamp_column = "synced",
                     .strategy = strategy,
                     .merge_keys = strategy == config::Strategy::kMerge ? std::vector<std::string>{"id"}
                                                                        : std::vector<std::string>{},
                     .watermark = std::move(watermark),
                     .explain = true};
}

CopyResult MustCopy(Warehouse& w, const CopyRequest& request) {
  auto copied = w.Copy(request);
  REQUIRE_MESSAGE(copied.ok(), copied.status().message());
  return std::move(*copied);
}

// Every window, guard and max statement is served by an index: no sequential scan of a real table.
void CheckIndexServed(const CopyResult& result) {
  for (const StatementPlan& p : result.plans) {
    if (p.purpose != "window" && p.purpose != "max") continue;
    for (const std::string& line : p.plan) {
      INFO(p.purpose, ": ", p.sql, "\n  ", line);
      CHECK(line.find("Seq Scan on \"") == std::string::npos);
      CHECK(line.find("Seq Scan on orders") == std::string::npos);
    }
  }
}

// 20,000 orders over 20,000 seconds with an index on the cursor, as a connector's table would be.
void MakeOrders(PostgresServer& server, int rows = 20000) {
  server.Exec(
      "CREATE TABLE \"src.s1\".orders (id bigint PRIMARY KEY, customer text NOT NULL, total numeric(10,2), "
      "synced timestamp with time zone NOT NULL)");
  server.Exec(
      "INSERT INTO \"src.s1\".orders SELECT g, 'c' || (g % 97), g / 100.0, timestamptz "
      "'2025-03-01T00:00:00Z' + g * interval '1 second' FROM generate_series(1, " +
      std::to_string(rows) + ") g");
  server.Exec("CREATE INDEX ON \"src.s1\".orders (synced)");
  server.Exec("ANALYZE \"src.s1\".orders");
}

TEST_CASE("postgres: discovery maps catalog.schema onto the URL's database") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "src.s2", "plain_schema", "dst.t1"});
  server.Exec("CREATE TABLE \"src.s1\".a (id int)");
  server.Exec("CREATE TABLE \"src.s1\".\"b.c d\" (id int)");
  server.Exec("CREATE VIEW \"src.s1\".v AS SELECT 1 AS x");
  server.Exec("CREATE TABLE plain_schema.t (id int)");
  auto w = Open();
  auto schemas = w->ListSchemas("src");
  REQUIRE(schemas.ok());
  CHECK(*schemas == std::vector<std::string>{"s1", "s2"});
  auto tables = w->ListTables("src", "s1");
  REQUIRE(tables.ok());
  CHECK(*tables == std::vector<std::string>{"a", "b.c d"});  // BASE TABLEs only: the view is left out
  // The catalog named like the database is the database's own schemas (a connector's layout).
  auto own = w->ListSchemas(PostgresServer::kDatabase);
  REQUIRE(own.ok());
  CHECK(std::find(own->begin(), own->end(), "plain_schema") != own->end());
  CHECK(std::find(own->begin(), own->end(), "public") != own->end());
  CHECK(std::find(own->begin(), own->end(), "src.s1") == own->end());
  CHECK(PostgresSchemaName("rocky", "rocky", "x") == "x");
  CHECK(PostgresSchemaName("rocky", "acme", "x") == "acme.x");
  auto missing = w->ListSchemas("nope");
  CHECK(missing.status().IsNotFound());
  CHECK(w->ListTables("src", "absent").status().IsNotFound());
  auto long_name = w->ListTables("src", std::string(70, 'x'));
  CHECK(long_name.status().message().find("63 bytes") != std::string::npos);
}

TEST_CASE("postgres: full refresh then incremental windows, index-served, nothing duplicated or deleted") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  MakeOrders(server);
  auto w = Open();

  auto advice = w->CursorIndexAdvice(TableRef{"src", "s1", "orders"}, "synced");
  REQUIRE(advice.ok());
  CHECK(!advice->has_value());
  server.Exec("CREATE TABLE \"src.s1\".noidx (id int, synced timestamptz)");
  auto advice2 = w->CursorIndexAdvice(TableRef{"src", "s1", "noidx"}, "synced");
  REQUIRE(advice2.ok());
  REQUIRE(advice2->has_value());
  CHECK((*advice2)->create_index == "CREATE INDEX ON \"src.s1\".\"noidx\" (\"synced\")");
  CHECK((*advice2)->location.find(server.password()) == std::string::npos);

  CopyResult full = MustCopy(*w, Request("orders", std::nullopt));
  CHECK(full.rows_copied == 20000);
  CHECK(full.source_rows == 20000);
  CHECK(full.target_rows == 20000);
  CHECK(full.cursor_compare == "full");
  CHECK(full.max_timestamp == std::optional<std::string>("2025-03-01T05:33:20Z"));
  // The source's types, NOT NULL and primary key are kept.
  CHECK(server.Scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                      "'\"dst.t1\".orders'::regclass AND attname = 'total'") == "numeric(10,2)");
  CHECK(
      server.Scalar("SELECT attnotnull FROM pg_attribute WHERE attrelid = '\"dst.t1\".orders'::regclass AND "
                    "attname = 'customer'") == "t");
  CHECK(server.Scalar("SELECT count(*) FROM pg_index WHERE indrelid = '\"dst.t1\".orders'::regclass AND "
                      "indisprimary") == "1");
  CHECK(Difference(server, "\"src.s1\".orders", "\"dst.t1\".orders", "id, customer, total, synced") == "0|0");

  // New rows: one at exactly the watermark (a second batch in the same second), two later.
  server.Exec(
      "INSERT INTO \"src.s1\".orders VALUES (30001, 'late-batch', 1, '2025-03-01T05:33:20Z'), "
      "(30002, 'n', 2, '2025-03-01T06:00:00Z'), (30003, 'n', 3, '2025-03-01T06:00:00.123456Z')");
  CopyResult inc = MustCopy(*w, Request("orders", full.max_timestamp));
  CHECK(inc.rows_copied == 3);
  CHECK(inc.cursor_compare == "instant");
  CHECK(inc.target_rows == 20003);
  CHECK(inc.source_rows == 20003);
  CHECK(inc.max_timestamp == std::optional<std::string>("2025-03-01T06:00:00.123456Z"));
  CheckIndexServed(inc);
  CHECK(Difference(server, "\"src.s1\".orders", "\"dst.t1\".orders", "id, customer, total, synced") == "0|0");

  // The same window again (a re-run after a crash before the watermark was saved) copies nothing.
  CopyResult again = MustCopy(*w, Request("orders", full.max_timestamp));
  CHECK(again.rows_copied == 0);
  CHECK(again.target_rows == 20003);

  // A truncated source loses nothing in the target.
  server.Exec("DELETE FROM \"src.s1\".orders WHERE id <= 100");
  CopyResult after = MustCopy(*w, Request("orders", inc.max_timestamp));
  CHECK(after.rows_copied == 0);
  CHECK(after.source_rows == 19903);
  CHECK(after.target_rows == 20003);
  CHECK(server.Scalar("SELECT count(*) FROM \"dst.t1\".orders") == "20003");

  // An incremental table whose source changed a copied row (same key, newer cursor) fails, naming merge.
  server.Exec(
      "UPDATE \"src.s1\".orders SET synced = '2025-03-02T00:00:00Z', customer = 'changed' WHERE id = 30002");
  auto conflict = w->Copy(Request("orders", inc.max_timestamp));
  REQUIRE(!conflict.ok());
  CHECK(conflict.status().message().find("strategy = \"merge\"") != std::string::npos);
  CHECK(server.Scalar("SELECT count(*) FROM \"dst.t1\".orders") == "20003");
}

TEST_CASE("postgres: merge upserts on merge_keys, the newest version wins, lookback re-reads") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  MakeOrders(server);
  auto w = Open();
  CopyResult full = MustCopy(*w, Request("orders", std::nullopt, config::Strategy::kMerge));
  CHECK(full.rows_copied == 20000);
  server.Exec(
      "UPDATE \"src.s1\".orders SET customer = 'updated', synced = '2025-03-02T00:00:00Z' WHERE id IN (5, "
      "6)");
  server.Exec("INSERT INTO \"src.s1\".orders VALUES (50000, 'new', 1, '2025-03-02T00:00:01Z')");
  CopyResult merged = MustCopy(*w, Request("orders", full.max_timestamp, config::Strategy::kMerge));
  // The two updated rows, the new one, and the row at the watermark read again (upserted onto itself).
  CHECK(merged.rows_copied == 4);
  CHECK(merged.rows_replaced == 3);
  CHECK(merged.target_rows == 20001);
  CHECK(server.Scalar("SELECT customer FROM \"dst.t1\".orders WHERE id = 5") == "updated");
  CheckIndexServed(merged);
  CHECK(Difference(server, "\"src.s1\".orders", "\"dst.t1\".orders", "id, customer, total, synced") == "0|0");

  // Lookback re-reads an hour before the watermark; an older version never overwrites a newer one.
  server.Exec(
      "UPDATE \"dst.t1\".orders SET customer = 'newer-in-target', synced = '2025-03-03T00:00:00Z' WHERE id = "
      "6");
  CopyRequest lookback = Request("orders", merged.max_timestamp, config::Strategy::kMerge);
  lookback.lookback_seconds = 3600;
  CopyResult re = MustCopy(*w, lookback);
  CHECK(server.Scalar("SELECT customer FROM \"dst.t1\".orders WHERE id = 6") == "newer-in-target");
  CHECK(re.target_rows == 20001);
}

TEST_CASE("postgres: integer cursors keep 19 digits; timestamp without time zone is UTC") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  server.Exec("CREATE TABLE \"src.s1\".events (id bigint, synced bigint)");
  server.Exec("INSERT INTO \"src.s1\".events VALUES (1, 9007199254740993), (2, 9223372036854775806)");
  auto w = Open();
  CopyRequest r = Request("events", std::nullopt);
  r.cursor_type = config::CursorType::kInteger;
  CopyResult full = MustCopy(*w, r);
  CHECK(full.max_timestamp == std::optional<std::string>("9223372036854775806"));
  server.Exec("INSERT INTO \"src.s1\".events VALUES (3, 9223372036854775807)");
  r.watermark = full.max_timestamp;
  CopyResult inc = MustCopy(*w, r);
  CHECK(inc.rows_copied == 1);
  CHECK(inc.cursor_compare == "integer");
  CHECK(inc.max_timestamp == std::optional<std::string>("9223372036854775807"));

  server.Exec("CREATE TABLE \"src.s1\".naive (id int, synced timestamp without time zone)");
  server.Exec("INSERT INTO \"src.s1\".naive VALUES (1, '2025-03-15 14:30:00.5')");
  CopyResult naive = MustCopy(*w, Request("naive", std::nullopt));
  CHECK(naive.max_timestamp == std::optional<std::string>("2025-03-15T14:30:00.5Z"));
  server.Exec("INSERT INTO \"src.s1\".naive VALUES (2, '2025-03-15 14:30:01')");
  CHECK(MustCopy(*w, Request("naive", naive.max_timestamp)).rows_copied == 1);

  // The wrong kinds of cursor column are refused, naming the column and its type.
  server.Exec("CREATE TABLE \"src.s1\".dated (id int, synced date)");
  auto dated = w->Copy(Request("dated", std::nullopt));
  REQUIRE(!dated.ok());
  CHECK(dated.status().message().find("'synced'") != std::string::npos);
  CHECK(dated.status().message().find("'date'") != std::string::npos);
  server.Exec("CREATE TABLE \"src.s1\".texty (id int, synced text)");
  CopyRequest counter = Request("texty", std::nullopt);
  counter.cursor_type = config::CursorType::kInteger;
  CHECK(w->Copy(counter).status().message().find("declared 'text'") != std::string::npos);
  CopyRequest wrong = Request("naive", std::nullopt);
  wrong.cursor_type = config::CursorType::kInteger;
  CHECK(w->Copy(wrong).status().message().find("smallint, integer or bigint") != std::string::npos);
}

TEST_CASE("postgres: a text cursor of ISO-8601 timestamps: text order on one spelling, instants when mixed") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  // 20,000 events 5 minutes apart (2025-03-01 to 2025-05-09), their time as text, as some loaders land it.
  server.Exec("CREATE TABLE \"src.s1\".events (id bigint PRIMARY KEY, synced text NOT NULL)");
  const std::string spelled =
      "to_char(timestamp '2025-03-01' + g * interval '5 min', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
  server.Exec("INSERT INTO \"src.s1\".events SELECT g, " + spelled + " FROM generate_series(1, 20000) g");
  // Indexes that do not serve `synced COLLATE "C" >= ...`: another operator class, another collation.
  server.Exec("CREATE INDEX ON \"src.s1\".events (synced text_pattern_ops)");
  server.Exec("CREATE INDEX ON \"src.s1\".events (synced COLLATE \"und-x-icu\")");
  auto w = Open();
  // Only an index in byte order serves the window's text ranges: the advice says which.
  auto advice = w->CursorIndexAdvice(TableRef{"src", "s1", "events"}, "synced");
  REQUIRE(advice.ok());
  REQUIRE(advice->has_value());
  CHECK((*advice)->create_index == "CREATE INDEX ON \"src.s1\".\"events\" (\"synced\" COLLATE \"C\")");
  server.Exec("CREATE INDEX ON \"src.s1\".events (synced COLLATE \"C\")");
  server.Exec("ANALYZE \"src.s1\".events");
  advice = w->CursorIndexAdvice(TableRef{"src", "s1", "events"}, "synced");
  REQUIRE(advice.ok());
  CHECK(!advice->has_value());

  CopyResult full = MustCopy(*w, Request("events", std::nullopt));
  CHECK(full.rows_copied == 20000);
  CHECK(full.max_timestamp == std::optional<std::string>("2025-05-09T10:40:00Z"));

  // One spelling: the bare text compared, on the indexes.
  server.Exec("INSERT INTO \"src.s1\".events SELECT g, " + spelled + " FROM generate_series(20001, 20100) g");
  CopyResult same = MustCopy(*w, Request("events", full.max_timestamp));
  CHECK(same.cursor_compare == "text");
  CHECK(same.rows_copied == 100);
  CHECK(same.max_timestamp == std::optional<std::string>("2025-05-09T19:00:00Z"));
  CheckIndexServed(same);

  // Mixed spellings: an offset whose text sorts below the window's start but whose instant (20:30 UTC) is
  // after it, and a space-separated UTC text with a fraction. The guard sees the first below the start and
  // instants are compared.
  server.Exec(
      "INSERT INTO \"src.s1\".events VALUES (30001, '2025-05-09T18:30:00-02:00'), (30002, '2025-05-09 "
      "21:00:00.5'), (30003, '2025-05-09T17:00:00+00:00')");
  CopyResult mixed = MustCopy(*w, Request("events", same.max_timestamp));
  CHECK(mixed.cursor_compare == "instant");
  CHECK(mixed.rows_copied == 2);  // not 30003: 17:00 is below the watermark, 19:00
  CHECK(mixed.max_timestamp == std::optional<std::string>("2025-05-09T21:00:00.5Z"));
  CheckIndexServed(mixed);
  CHECK(server.Scalar("SELECT count(*) FROM \"dst.t1\".events WHERE id = 30003") == "0");

  // Merge compares versions as instants: the offset spelling of a later instant wins over a text that
  // sorts above it.
  server.Exec("UPDATE \"src.s1\".events SET synced = '2025-05-09T20:00:00-05:00' WHERE id = 10");
  CopyResult merged = MustCopy(*w, Request("events", mixed.max_timestamp, config::Strategy::kMerge));
  CHECK(merged.rows_copied == 2);  // id 10, and id 30002 at the watermark again (replaced by itself)
  CHECK(merged.rows_replaced == 2);
  CHECK(merged.max_timestamp == std::optional<std::string>("2025-05-10T01:00:00Z"));
  CHECK(Difference(server, "\"src.s1\".events", "\"dst.t1\".events", "id, synced") == "1|0");  // 30003

  // A text that is not a timestamp is an error naming it, and the target keeps its rows.
  server.Exec("INSERT INTO \"src.s1\".events VALUES (40000, 'soon')");
  auto bad = w->Copy(Request("events", merged.max_timestamp));
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("soon") != std::string::npos);
  CHECK(server.Scalar("SELECT count(*) FROM \"dst.t1\".events") == "20102");
}

TEST_CASE("postgres: missing tables and odd names are clear errors that change nothing") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  MakeOrders(server, 100);
  auto w = Open();
  CopyResult full = MustCopy(*w, Request("orders", std::nullopt));
  // Dropped between plan and apply.
  server.Exec("DROP TABLE \"src.s1\".orders");
  auto dropped = w->Copy(Request("orders", full.max_timestamp));
  CHECK(dropped.status().IsNotFound());
  CHECK(dropped.status().message().find("source table src.s1.orders not found") != std::string::npos);
  CHECK(server.Scalar("SELECT count(*) FROM \"dst.t1\".orders") == "100");
  // A target lost while its watermark stayed.
  MakeOrders(server, 100);
  server.Exec("DROP TABLE \"dst.t1\".orders");
  auto lost = w->Copy(Request("orders", full.max_timestamp));
  CHECK(lost.status().IsNotFound());
  CHECK(lost.status().message().find("--full-refresh") != std::string::npos);
  // Names with quotes, dots and spaces are identifiers, never SQL.
  server.Exec("CREATE TABLE \"src.s1\".\"we\"\"ird; DROP TABLE x\" (id int, synced timestamptz)");
  server.Exec("INSERT INTO \"src.s1\".\"we\"\"ird; DROP TABLE x\" VALUES (1, now())");
  CHECK(MustCopy(*w, Request("we\"ird; DROP TABLE x", std::nullopt)).rows_copied == 1);
  // A metadata expression cannot smuggle a second statement (the extended protocol refuses it).
  CopyRequest injected = Request("orders", std::nullopt);
  injected.metadata_columns = {{"_loaded_by", "STRING", "NULL); DROP TABLE \"src.s1\".orders; --"}};
  CHECK(!w->Copy(injected).ok());
  CHECK(server.Scalar("SELECT count(*) FROM \"src.s1\".orders") == "100");
  CopyRequest meta = Request("orders", std::nullopt);
  meta.metadata_columns = {{"_loaded_by", "STRING", "'rocky'"}};
  MustCopy(*w, meta);
  CHECK(server.Scalar("SELECT DISTINCT _loaded_by FROM \"dst.t1\".orders") == "rocky");
}

TEST_CASE("postgres: two servers, streamed by COPY or by batched inserts, give the same exact target") {
  PostgresServer& source = Server();
  PostgresServer& target = SecondServer();
  FreshSchemas(source, {"src.s1"});
  FreshSchemas(target, {"dst.t1"});
  MakeOrders(source, 5000);
  for (PostgresTransfer transfer : {PostgresTransfer::kCopy, PostgresTransfer::kInsert}) {
    CAPTURE(static_cast<int>(transfer));
    target.Exec("DROP SCHEMA IF EXISTS \"dst.t1\" CASCADE");
    auto w =
        Open(source.Url(), target.Url(), PostgresOptions{.transfer = transfer, .insert_batch_rows = 700});
    const uint64_t rows = std::stoull(source.Scalar("SELECT count(*) FROM \"src.s1\".orders"));
    CopyResult full = MustCopy(*w, Request("orders", std::nullopt));
    CHECK(full.rows_copied == rows);
    CHECK(full.source_rows == rows);
    CHECK(target.Scalar(
              "SELECT md5(string_agg(id || customer || coalesce(total::text, '') || synced, ',' ORDER BY "
              "id)) FROM \"dst.t1\".orders") ==
          source.Scalar(
              "SELECT md5(string_agg(id || customer || coalesce(total::text, '') || synced, ',' ORDER BY "
              "id)) FROM \"src.s1\".orders"));
    source.Exec("INSERT INTO \"src.s1\".orders VALUES (" +
                std::to_string(90000 + static_cast<int>(transfer)) + ", 'x', NULL, '2025-04-01T00:00:00Z')");
    CopyResult inc = MustCopy(*w, Request("orders", full.max_timestamp));
    CHECK(inc.rows_copied == 1);
    CHECK(inc.target_rows == inc.source_rows);
    CheckIndexServed(inc);
    auto exists = w->TableExists(TableRef{"dst", "t1", "orders"});
    REQUIRE(exists.ok());
    CHECK(*exists);
    // A copy that fails (no target) leaves both sessions usable for the next copy.
    CopyRequest lost = Request("orders", inc.max_timestamp);
    lost.target.table = "no_such_target";
    CHECK(w->Copy(lost).status().code() == Status::Code::kNotFound);
    CHECK(MustCopy(*w, Request("orders", inc.max_timestamp)).source_rows == rows + 1);

    // A text cursor: its window (text, then instants) has its bounds written in, in the COPY too.
    source.Exec("DROP TABLE IF EXISTS \"src.s1\".texts");
    source.Exec("CREATE TABLE \"src.s1\".texts (id int, synced text)");
    source.Exec(
        "INSERT INTO \"src.s1\".texts SELECT g, to_char(timestamp '2025-03-01' + g * interval '1 h', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM generate_series(1, 50) g");
    CopyResult texts = MustCopy(*w, Request("texts", std::nullopt));
    CHECK(texts.max_timestamp == std::optional<std::string>("2025-03-03T02:00:00Z"));
    source.Exec("INSERT INTO \"src.s1\".texts VALUES (51, '2025-03-03T03:00:00Z')");
    CopyResult text_inc = MustCopy(*w, Request("texts", texts.max_timestamp));
    CHECK(text_inc.cursor_compare == "text");
    CHECK(text_inc.rows_copied == 1);
    source.Exec("INSERT INTO \"src.s1\".texts VALUES (52, '2025-03-03T01:00:00-05:00')");
    CopyResult instant_inc = MustCopy(*w, Request("texts", text_inc.max_timestamp));
    CHECK(instant_inc.cursor_compare == "instant");
    CHECK(instant_inc.rows_copied == 1);
    CHECK(instant_inc.max_timestamp == std::optional<std::string>("2025-03-03T06:00:00Z"));
    CHECK(target.Scalar("SELECT count(*) FROM \"dst.t1\".texts") == "52");
  }
}

TEST_CASE("postgres: connection failures are clear and never show the password") {
  PostgresServer& server = Server();
  const std::string wrong = "postgresql://rocky:not-the-" + server.password() +
                            "@127.0.0.1:" + std::to_string(server.port()) + "/rocky";
  auto bad = OpenPostgresWarehouse(wrong, wrong);
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("password authentication failed") != std::string::npos);
  CHECK(bad.status().message().find(server.password()) == std::string::npos);
  CHECK(bad.status().message().find("postgres:rocky@127.0.0.1:" + std::to_string(server.port()) + "/rocky") !=
        std::string::npos);

  const int closed = rocky_test::FreePort();
  const std::string nowhere =
      "host=127.0.0.1 port=" + std::to_string(closed) + " user=rocky password=" + server.password();
  auto unreachable = OpenPostgresWarehouse(nowhere, nowhere);
  REQUIRE(!unreachable.ok());
  CHECK(unreachable.status().message().find("Connection refused") != std::string::npos);
  CHECK(unreachable.status().message().find(server.password()) == std::string::npos);

  auto tls =
      OpenPostgresWarehouse(server.Url("rocky", "sslmode=require"), server.Url("rocky", "sslmode=require"));
  REQUIRE(!tls.ok());
  CHECK(tls.status().message().find("SSL") != std::string::npos);
  CHECK(tls.status().message().find("sslmode=require") != std::string::npos);
  CHECK(tls.status().message().find(server.password()) == std::string::npos);

  CHECK(DescribePostgresUrl(server.Keywords()).find(server.password()) == std::string::npos);
  CHECK(DescribePostgresUrl("postgresql://u:secret@h/db?password=other") == "postgres:u@h/db");
  CHECK(DescribePostgresUrl("not a = valid = string") == "postgres:(invalid connection string)");
}

TEST_CASE("postgres: sslmode is honoured: verify-full against the server's CA, refused against another CA") {
  PostgresServer& server = SecondServer();
  const std::string verified = server.Url("rocky", "sslmode=verify-full&sslrootcert=" + server.ca_file());
  auto ok = OpenPostgresWarehouse(verified, verified);
  REQUIRE_MESSAGE(ok.ok(), ok.status().message());
  // The warehouse's session is encrypted, as the server reports it.
  CHECK(server.Scalar("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid WHERE "
                      "a.application_name = 'rocky' AND s.ssl") == "1");
  char dir[] = "/tmp/rocky-pg-ca-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  rocky_test::TestPki foreign(dir, "foreign");
  const std::string wrong_ca = server.Url("rocky", "sslmode=verify-full&sslrootcert=" + foreign.ca_file());
  auto refused = OpenPostgresWarehouse(wrong_ca, wrong_ca);
  REQUIRE(!refused.ok());
  CHECK(refused.status().message().find("certificate verify failed") != std::string::npos);
  CHECK(refused.status().message().find(server.password()) == std::string::npos);
  CHECK(refused.status().message().find("sslmode=verify-full") != std::string::npos);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// A session that holds a lock on a table until it is destroyed, so that a copy blocks at a known statement.
class LockHolder {
 public:
  LockHolder(PostgresServer& server, const std::string& table)
      : conn_(PQconnectdb(server.Keywords().c_str())) {
    REQUIRE(PQstatus(conn_) == CONNECTION_OK);
    PQclear(PQexec(conn_, "BEGIN"));
    PGresult* r = PQexec(conn_, ("LOCK TABLE " + table + " IN ACCESS EXCLUSIVE MODE").c_str());
    REQUIRE(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
  }
  ~LockHolder() { PQfinish(conn_); }

 private:
  PGconn* conn_;
};

TEST_CASE("postgres: one server, the source counted on a second session in the copy's snapshot") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  MakeOrders(server, 3000);
  for (const bool concurrent : {true, false}) {
    CAPTURE(concurrent);
    server.Exec("DROP SCHEMA IF EXISTS \"dst.t1\" CASCADE");
    const std::string app = concurrent ? "rocky-counts-on" : "rocky-counts-off";
    const std::string url = server.Url("rocky", "application_name=" + app);
    auto w = Open(url, url, PostgresOptions{.concurrent_counts = concurrent});
    CopyResult full = MustCopy(*w, Request("orders", std::nullopt));
    CHECK(full.source_rows == 3000);
    // The copy held inside its transaction (its snapshot taken) while 10 rows are committed to the source:
    // they are in neither the window nor the source's count, although that count starts only afterwards.
    std::future<Result<CopyResult>> copy;
    {
      LockHolder lock(server, "\"dst.t1\".orders");
      copy = std::async(std::launch::async, [&] { return w->Copy(Request("orders", full.max_timestamp)); });
      server.WaitForBlockedQuery("CREATE INDEX IF NOT EXISTS%");
      server.Exec(
          "INSERT INTO \"src.s1\".orders SELECT g, 'late', 1, timestamptz '2025-06-01' + g * interval '1 s' "
          "FROM generate_series(50001, 50010) g");
    }
    Result<CopyResult> counted = copy.get();
    REQUIRE_MESSAGE(counted.ok(), counted.status().message());
    CHECK(counted->source_rows == 3000);
    CHECK(counted->target_rows == 3000);
    CHECK(counted->rows_copied == 0);
    // Concurrent: a second session of the warehouse counted the source.
    CHECK(server.Scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + app + "'") ==
          (concurrent ? "2" : "1"));
    CopyResult next = MustCopy(*w, Request("orders", counted->max_timestamp));
    CHECK(next.rows_copied == 10);
    CHECK(next.source_rows == 3010);
    CHECK(next.target_rows == 3010);
    server.Exec("DELETE FROM \"src.s1\".orders WHERE id > 50000");
  }

  // The source's count failing (a statement timeout while the source is locked) fails the copy, and the
  // next copy works: the second session's transaction was ended.
  const std::string timed_url = server.Url("rocky", "options=-c%20statement_timeout%3D300");
  auto timed = Open(timed_url, timed_url);
  CopyResult full = MustCopy(*timed, Request("orders", std::nullopt));
  std::optional<Result<CopyResult>> r;
  {
    LockHolder lock(server, "\"src.s1\".orders");
    CopyRequest request = Request("orders", full.max_timestamp);
    request.explain = false;  // an EXPLAIN would time out first, aborting the transaction
    r = timed->Copy(request);
  }
  REQUIRE(!r->ok());
  CHECK(r->status().code() == Status::Code::kTimedOut);
  CHECK(r->status().message().find("counting the rows of src.s1.orders") != std::string::npos);
  CHECK(MustCopy(*timed, Request("orders", full.max_timestamp)).source_rows == 3000);
}

// ---- Remembered row counts through rocky's change marks (postgres_warehouse.h) ----

const char* kSourceSql = "\"src.s1\".\"orders\"";
const char* kTargetSql = "\"dst.t1\".\"orders\"";

// Whether the copy ran the whole-table count of `table_sql` (its plans record every count it ran, whichever
// session ran it).
bool Counted(const CopyResult& r, const std::string& table_sql) {
  for (const StatementPlan& p : r.plans) {
    if (p.purpose == "count" && p.sql == "SELECT count(*) FROM " + table_sql) return true;
  }
  return false;
}

// What a run's state keeps between copies, as the runner does: a copy's memo replaces the stored one, none
// keeps it.
struct Remembered {
  std::optional<RowCountMemo> source;
  std::optional<RowCountMemo> target;
  std::optional<std::string> watermark;
};

CopyResult Step(Warehouse& w, Remembered& m) {
  CopyRequest request = Request("orders", m.watermark);
  request.source_rows_memo = m.source;
  request.target_rows_memo = m.target;
  CopyResult c = MustCopy(w, request);
  if (c.source_rows_memo) m.source = c.source_rows_memo;
  if (c.target_rows_memo) m.target = c.target_rows_memo;
  if (c.max_timestamp) m.watermark = c.max_timestamp;
  return c;
}

// A plain libpq session of the superuser, for another writer's transactions.
class OtherSession {
 public:
  explicit OtherSession(PostgresServer& server) : conn_(PQconnectdb(server.Keywords().c_str())) {
    REQUIRE(PQstatus(conn_) == CONNECTION_OK);
  }
  ~OtherSession() { PQfinish(conn_); }
  void Exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    const ExecStatusType st = PQresultStatus(r);
    INFO(sql, ": ", PQerrorMessage(conn_));
    CHECK((st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK));
    PQclear(r);
  }

 private:
  PGconn* conn_;
};

std::string SourceCount(PostgresServer& server) {
  return server.Scalar("SELECT count(*) FROM " + std::string(kSourceSql));
}

TEST_CASE("postgres: remembered counts are reused while no transaction changed a table, recounted after") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  MakeOrders(server, 3000);
  auto w = Open(Server().Url(), Server().Url(), PostgresOptions{.mark_source_changes = true});
  Remembered m;
  CopyResult full = Step(*w, m);
  CHECK(full.source_rows == 3000);
  // The new target is marked from its creation; the source gets its trigger after this copy.
  REQUIRE(full.target_rows_memo.has_value());
  CHECK(full.target_rows_memo->version.rfind("pg1:", 0) == 0);
  CHECK(!full.source_rows_memo.has_value());
  CHECK(full.warnings.empty());
  const std::string trigger_of_source = "SELECT tgenabled FROM pg_trigger WHERE tgrelid = '" +
                                        std::string(kSourceSql) +
                                        "'::regclass AND tgname = 'rocky_mark_changes'";
  CHECK(server.Scalar(trigger_of_source) == "A");

  CopyResult second = Step(*w, m);  // the source counted once more (its trigger is new), the target not
  CHECK(Counted(second, kSourceSql));
  CHECK(!Counted(second, kTargetSql));
  CHECK(second.source_rows == 3000);
  CHECK(second.target_rows == 3000);
  REQUIRE(second.source_rows_memo.has_value());

  for (int run = 0; run < 2; ++run) {  // nothing changed: no count at all, the memos as they were
    const Remembered before = m;
    CopyResult idle = Step(*w, m);
    CHECK(!Counted(idle, kSourceSql));
    CHECK(!Counted(idle, kTargetSql));
    CHECK(idle.source_rows == 3000);
    CHECK(idle.target_rows == 3000);
    CHECK(m.source->version == before.source->version);
    CHECK(m.target->version == before.target->version);
  }

  // Another session's insert, update, delete, truncate of the source: each recounted, exactly.
  const std::vector<std::pair<std::string, std::string>> changes = {
      {"INSERT INTO \"src.s1\".orders SELECT g, 'new', 1, timestamptz '2025-06-01' + g * interval '1 s' FROM "
       "generate_series(50001, 50010) g",
       "3010"},
      {"UPDATE \"src.s1\".orders SET customer = 'changed' WHERE id = 1", "3010"},
      {"DELETE FROM \"src.s1\".orders WHERE id <= 5", "3005"},
      {"TRUNCATE \"src.s1\".orders", "0"},
  };
  for (const auto& change : changes) {
    const std::string& sql = change.first;
    CAPTURE(sql);
    server.Exec(sql);
    CopyResult after = Step(*w, m);
    CHECK(Counted(after, kSourceSql));
    CHECK(std::to_string(after.source_rows) == change.second);
    // The target's own writes (the 10 rows copied) are in its remembered count: never counted again.
    CHECK(!Counted(after, kTargetSql));
    CHECK(std::to_string(after.target_rows) ==
          server.Scalar("SELECT count(*) FROM " + std::string(kTargetSql)));
    CopyResult idle = Step(*w, m);
    CHECK(!Counted(idle, kSourceSql));
    CHECK(!Counted(idle, kTargetSql));
    CHECK(std::to_string(idle.source_rows) == change.second);
  }
  // A hand DELETE on the target (by another session): counted again, exactly.
  server.Exec("DELETE FROM \"dst.t1\".orders WHERE id <= 7");
  CopyResult edited = Step(*w, m);
  CHECK(Counted(edited, kTargetSql));
  CHECK(edited.target_rows == 3003);
  CHECK(!Counted(Step(*w, m), kTargetSql));
  // The marks accounted for are deleted after each count: the marks table stays small.
  CHECK(std::stoi(server.Scalar("SELECT count(*) FROM rocky_meta.table_changes WHERE relid IN ('" +
                                std::string(kSourceSql) + "'::regclass, '" + std::string(kTargetSql) +
                                "'::regclass)")) <= 2);
}

TEST_CASE("postgres: a writer that wrote before the count and committed after it: the next copy recounts") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  MakeOrders(server, 2000);
  auto w = Open(Server().Url(), Server().Url(), PostgresOptions{.mark_source_changes = true});
  Remembered m;
  Step(*w, m);
  Step(*w, m);
  REQUIRE(!Counted(Step(*w, m), kSourceSql));  // remembered
  // A writer that wrote before the next count's snapshot and commits after it: the count does not see its
  // row, and its transaction is in progress in the snapshot remembered with the count: listed in it, below
  // its xmax, since a later transaction (a committed row, which also makes the next copy count) ended before.
  OtherSession writer(server);
  writer.Exec("BEGIN");
  writer.Exec("INSERT INTO \"src.s1\".orders VALUES (90001, 'slow', 1, '2025-07-01T00:00:00Z')");
  server.Exec("INSERT INTO \"src.s1\".orders VALUES (90000, 'committed', 1, '2025-07-01T00:00:00Z')");
  // And one that began before the count and writes only after it.
  OtherSession late(server);
  late.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
  late.Exec("SELECT 1");
  CopyResult during = Step(*w, m);
  CHECK(Counted(during, kSourceSql));
  CHECK(during.source_rows == 2001);
  REQUIRE(during.source_rows_memo.has_value());
  CHECK(during.source_rows_memo->version.find("::0") == std::string::npos);  // the writer is in its list
  CHECK(!Counted(Step(*w, m), kSourceSql));  // nothing committed since: remembered
  writer.Exec("COMMIT");
  CopyResult next = Step(*w, m);
  CHECK(Counted(next, kSourceSql));
  CHECK(next.source_rows == 2002);
  late.Exec("INSERT INTO \"src.s1\".orders VALUES (90002, 'late', 1, '2025-07-02T00:00:00Z')");
  CopyResult open = Step(*w, m);  // the late writer has not committed: the count holds
  CHECK(!Counted(open, kSourceSql));
  CHECK(open.source_rows == 2002);
  late.Exec("COMMIT");
  CopyResult settled = Step(*w, m);
  CHECK(Counted(settled, kSourceSql));
  CHECK(settled.source_rows == 2003);
  CHECK(SourceCount(server) == "2003");
  CHECK(!Counted(Step(*w, m), kSourceSql));
}

TEST_CASE("postgres: a disabled, dropped or replaced trigger, an old or foreign memo: counted, exactly") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  MakeOrders(server, 1000);
  auto w = Open(Server().Url(), Server().Url(), PostgresOptions{.mark_source_changes = true});
  Remembered m;
  Step(*w, m);
  Step(*w, m);
  REQUIRE(!Counted(Step(*w, m), kSourceSql));

  // An older remembered count (a state file restored from before a change): the change's marks were deleted
  // after the newer count, and that clearing is recorded, so the older count is not taken for true.
  {
    const Remembered before_delete = m;
    server.Exec("DELETE FROM \"src.s1\".orders WHERE id <= 4");
    CopyResult recounted = Step(*w, m);
    CHECK(Counted(recounted, kSourceSql));
    CHECK(recounted.source_rows == 996);
    CHECK(server.Scalar("SELECT count(*) FROM rocky_meta.table_changes WHERE relid = '" +
                        std::string(kSourceSql) + "'::regclass") == "0");
    Remembered stale = m;
    stale.source = before_delete.source;
    CopyResult judged = Step(*w, stale);
    CHECK(Counted(judged, kSourceSql));
    CHECK(judged.source_rows == 996);
    server.Exec(
        "INSERT INTO \"src.s1\".orders SELECT g, 'c', 1, timestamptz '2025-03-01T00:00:00Z' + g * "
        "interval '1 second' FROM generate_series(1, 4) g");
    CHECK(Step(*w, m).source_rows == 1000);
  }
  const Remembered old = m;

  // Disabled around a write, then enabled again as it was: the trigger's row changed, so the count is taken.
  server.Exec("ALTER TABLE \"src.s1\".orders DISABLE TRIGGER rocky_mark_changes");
  server.Exec("DELETE FROM \"src.s1\".orders WHERE id <= 10");
  server.Exec("ALTER TABLE \"src.s1\".orders ENABLE ALWAYS TRIGGER rocky_mark_changes");
  CopyResult disabled = Step(*w, m);
  CHECK(Counted(disabled, kSourceSql));
  CHECK(disabled.source_rows == 990);
  CHECK(!Counted(Step(*w, m), kSourceSql));

  // An older remembered count (a state file restored from before): the marks of the delete were cleared
  // after the new count, and the clearing is recorded, so the old count is not taken for true.
  {
    Remembered stale = m;
    stale.source = old.source;
    CopyResult judged = Step(*w, stale);
    CHECK(Counted(judged, kSourceSql));
    CHECK(judged.source_rows == 990);
  }

  // Left disabled (by a superuser's DISABLE TRIGGER ALL, say): counted on every copy, not re-enabled.
  server.Exec("ALTER TABLE \"src.s1\".orders DISABLE TRIGGER ALL");
  CHECK(Counted(Step(*w, m), kSourceSql));
  server.Exec("DELETE FROM \"src.s1\".orders WHERE id <= 20");
  CopyResult still = Step(*w, m);
  CHECK(Counted(still, kSourceSql));
  CHECK(still.source_rows == 980);
  CHECK(server.Scalar("SELECT tgenabled FROM pg_trigger WHERE tgname = 'rocky_mark_changes' AND tgrelid = '" +
                      std::string(kSourceSql) + "'::regclass") == "D");

  // Dropped: counted, and installed again after that copy (mark_source_changes allows it); counted once more
  // (a new trigger), then remembered.
  server.Exec("DROP TRIGGER rocky_mark_changes ON \"src.s1\".orders");
  server.Exec("DELETE FROM \"src.s1\".orders WHERE id <= 30");
  CopyResult dropped = Step(*w, m);
  CHECK(Counted(dropped, kSourceSql));
  CHECK(dropped.source_rows == 970);
  CHECK(server.Scalar("SELECT tgenabled FROM pg_trigger WHERE tgname = 'rocky_mark_changes' AND tgrelid = '" +
                      std::string(kSourceSql) + "'::regclass") == "A");
  auto next_run = Open(Server().Url(), Server().Url(), PostgresOptions{.mark_source_changes = true});
  CHECK(Counted(Step(*next_run, m), kSourceSql));
  CopyResult back = Step(*next_run, m);
  CHECK(!Counted(back, kSourceSql));
  CHECK(back.source_rows == 970);

  // Memos of another warehouse (SQLite's), or of another table, with wrong rows: ignored, counted.
  Remembered foreign = m;
  foreign.source = RowCountMemo{"sqlite1:65024:10958811:196608:1796678606706471670:1", 12345};
  foreign.target = RowCountMemo{m.source->version, 12345};  // the source's version for the target
  CopyResult ignored = Step(*next_run, foreign);
  CHECK(Counted(ignored, kSourceSql));
  CHECK(Counted(ignored, kTargetSql));
  CHECK(ignored.source_rows == 970);
  CHECK(ignored.target_rows == std::stoull(server.Scalar("SELECT count(*) FROM " + std::string(kTargetSql))));
  Remembered garbled = m;
  garbled.source = RowCountMemo{m.source->version + ":1", 12345};
  CHECK(Step(*next_run, garbled).source_rows == 970);
  // The same count on another WAL timeline (after a promotion or a point-in-time recovery, transaction ids
  // may have been reused): counted.
  Remembered other_timeline = m;
  const size_t timeline = m.source->version.find(":00000001:");
  REQUIRE(timeline != std::string::npos);
  other_timeline.source->version.replace(timeline, 10, ":00000002:");
  other_timeline.source->rows = 12345;
  CopyResult moved = Step(*next_run, other_timeline);
  CHECK(Counted(moved, kSourceSql));
  CHECK(moved.source_rows == 970);
  m = other_timeline;  // the newest count, which the marks were cleared up to
  REQUIRE(!Counted(Step(*next_run, m), kSourceSql));

  // A child table inheriting from the source (its rows are in the source's count, its writes leave no mark on
  // the source): counted on every copy while it exists.
  server.Exec("CREATE TABLE \"src.s1\".orders_child () INHERITS (\"src.s1\".orders)");
  CHECK(Counted(Step(*next_run, m), kSourceSql));
  server.Exec("INSERT INTO \"src.s1\".orders_child VALUES (70000, 'child', 1, '2025-01-01T00:00:00Z')");
  CopyResult inherited = Step(*next_run, m);
  CHECK(Counted(inherited, kSourceSql));
  CHECK(inherited.source_rows == 971);
  server.Exec("DROP TABLE \"src.s1\".orders_child");
  CHECK(Step(*next_run, m).source_rows == 970);

  // The marks table dropped by hand: writers of marked tables go on (the trigger skips the mark), the copy
  // counts; the next run makes a new marks table, whose new oid no older count's version names.
  server.Exec("DROP TABLE rocky_meta.table_changes");
  server.Exec("DELETE FROM \"src.s1\".orders WHERE id <= 40");  // does not fail for lack of the table
  CopyResult unmarked = Step(*next_run, m);
  CHECK(Counted(unmarked, kSourceSql));
  CHECK(Counted(unmarked, kTargetSql));
  CHECK(unmarked.source_rows == 960);
  auto third_run = Open(Server().Url(), Server().Url(), PostgresOptions{.mark_source_changes = true});
  CHECK(Counted(Step(*third_run, m), kSourceSql));
  CopyResult again = Step(*third_run, m);
  CHECK(!Counted(again, kSourceSql));
  CHECK(!Counted(again, kTargetSql));
  CHECK(again.source_rows == 960);
}

TEST_CASE("postgres: two counts of one source kept apart (two projects) settle, and stay exact") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1", "dst.t2"});
  MakeOrders(server, 800);
  auto w = Open(Server().Url(), Server().Url(), PostgresOptions{.mark_source_changes = true});
  Remembered a;
  Remembered b;
  auto step_b = [&] {  // the second project copies the same source into its own target
    CopyRequest request = Request("orders", b.watermark);
    request.target.schema = "t2";
    request.source_rows_memo = b.source;
    request.target_rows_memo = b.target;
    CopyResult c = MustCopy(*w, request);
    if (c.source_rows_memo) b.source = c.source_rows_memo;
    if (c.target_rows_memo) b.target = c.target_rows_memo;
    if (c.max_timestamp) b.watermark = c.max_timestamp;
    return c;
  };
  for (int round = 0; round < 3; ++round) {
    Step(*w, a);
    step_b();
  }
  CopyResult quiet_a = Step(*w, a);
  CopyResult quiet_b = step_b();
  CHECK(!Counted(quiet_a, kSourceSql));
  CHECK(!Counted(quiet_b, kSourceSql));
  server.Exec("DELETE FROM \"src.s1\".orders WHERE id <= 8");
  CopyResult changed_a = Step(*w, a);
  CopyResult changed_b = step_b();
  CHECK(Counted(changed_a, kSourceSql));
  CHECK(Counted(changed_b, kSourceSql));
  CHECK(changed_a.source_rows == 792);
  CHECK(changed_b.source_rows == 792);
  CopyResult settled_a = Step(*w, a);
  CopyResult settled_b = step_b();
  CHECK(!Counted(settled_a, kSourceSql));
  CHECK(!Counted(settled_b, kSourceSql));
  CHECK(settled_b.source_rows == 792);
}

TEST_CASE("postgres: sources are marked only with mark_source_changes, and only when rocky owns them") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  MakeOrders(server, 500);
  {
    auto w = Open();  // no opt-in: the source is counted on every copy and gets no trigger
    Remembered m;
    for (int run = 0; run < 3; ++run) {
      CopyResult c = Step(*w, m);
      CHECK(Counted(c, kSourceSql));
      CHECK(c.source_rows == 500);
      CHECK(!c.source_rows_memo.has_value());
    }
    CHECK(server.Scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = '" + std::string(kSourceSql) +
                        "'::regclass") == "0");
  }

  // A role that may read the source but does not own it, in a database of its own (whose rocky_meta it
  // makes): the copy works and counts exactly, and says once per warehouse why the source is not marked.
  server.Exec("DROP DATABASE IF EXISTS marks_owner WITH (FORCE)", "postgres");
  server.Exec("DROP ROLE IF EXISTS marks_reader", "postgres");
  server.Exec("CREATE ROLE marks_reader LOGIN PASSWORD 'reader-pw'", "postgres");
  server.Exec("CREATE DATABASE marks_owner", "postgres");
  server.Exec("GRANT CREATE ON DATABASE marks_owner TO marks_reader", "postgres");
  server.Exec("CREATE SCHEMA \"src.s1\"", "marks_owner");
  server.Exec("CREATE TABLE \"src.s1\".orders (id bigint PRIMARY KEY, synced timestamptz NOT NULL)",
              "marks_owner");
  server.Exec(
      "INSERT INTO \"src.s1\".orders SELECT g, timestamptz '2025-03-01' + g * interval '1 s' FROM "
      "generate_series(1, 300) g",
      "marks_owner");
  server.Exec("GRANT USAGE ON SCHEMA \"src.s1\" TO marks_reader", "marks_owner");
  server.Exec("GRANT SELECT ON \"src.s1\".orders TO marks_reader", "marks_owner");
  const std::string url =
      "postgresql://marks_reader:reader-pw@127.0.0.1:" + std::to_string(server.port()) + "/marks_owner";
  for (int run = 0; run < 2; ++run) {
    auto w = Open(url, url, PostgresOptions{.mark_source_changes = true});
    Remembered m;
    CopyResult full = Step(*w, m);
    REQUIRE(full.warnings.size() == 1);
    INFO(full.warnings[0]);
    CHECK(full.warnings[0].find("source table src.s1.orders") != std::string::npos);
    CHECK(full.warnings[0].find("permission denied for table orders") != std::string::npos);
    CHECK(full.warnings[0].find("rocky's role must own the table") != std::string::npos);
    CHECK(full.warnings[0].find("reader-pw") == std::string::npos);
    CHECK(full.source_rows == 300 + static_cast<uint64_t>(run));
    server.Exec("INSERT INTO \"src.s1\".orders VALUES (" + std::to_string(1000 + run) + ", now())",
                "marks_owner");
    CopyResult again = Step(*w, m);
    CHECK(again.warnings.empty());  // said once
    CHECK(Counted(again, kSourceSql));
    CHECK(again.source_rows == 301 + static_cast<uint64_t>(run));
    CHECK(!again.source_rows_memo.has_value());
    // The target is the role's own: marked and remembered.
    CHECK(!Counted(Step(*w, m), kTargetSql));
  }
  server.Exec("DROP DATABASE marks_owner WITH (FORCE)", "postgres");
}

TEST_CASE("postgres: two servers: the source's marks are read on the source's session") {
  PostgresServer& source = Server();
  PostgresServer& target = SecondServer();
  FreshSchemas(source, {"src.s1"});
  FreshSchemas(target, {"dst.t1"});
  target.Exec("DROP SCHEMA IF EXISTS \"dst.t1\" CASCADE");
  MakeOrders(source, 1000);
  auto w = Open(source.Url(), target.Url(), PostgresOptions{.mark_source_changes = true});
  Remembered m;
  Step(*w, m);
  Step(*w, m);
  CopyResult idle = Step(*w, m);
  CHECK(!Counted(idle, kSourceSql));
  CHECK(!Counted(idle, kTargetSql));
  CHECK(idle.source_rows == 1000);
  CHECK(idle.target_rows == 1000);
  source.Exec("DELETE FROM \"src.s1\".orders WHERE id <= 3");
  CopyResult changed = Step(*w, m);
  CHECK(Counted(changed, kSourceSql));
  CHECK(changed.source_rows == 997);
  CHECK(!Counted(changed, kTargetSql));
}

TEST_CASE("postgres: an UNLOGGED table is not marked: a crash restart empties it, and the count says so") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  MakeOrders(server, 1000);
  auto w = Open(Server().Url(), Server().Url(), PostgresOptions{.mark_source_changes = true});
  Remembered m;
  Step(*w, m);
  Step(*w, m);
  REQUIRE(!Counted(Step(*w, m), kSourceSql));  // remembered while logged
  // SET UNLOGGED rewrites the table but keeps its oid and rocky's trigger; from then on it is counted.
  server.Exec("ALTER TABLE " + std::string(kSourceSql) + " SET UNLOGGED");
  CopyResult unlogged = Step(*w, m);
  CHECK(Counted(unlogged, kSourceSql));
  CHECK(unlogged.source_rows == 1000);
  // An immediate shutdown: crash recovery resets the unlogged table to empty, and no trigger fires.
  server.Restart();
  server.WaitAccepting();
  REQUIRE(SourceCount(server) == "0");
  CopyResult after = Step(*w, m);
  CHECK(Counted(after, kSourceSql));
  CHECK(after.source_rows == 0);
  CHECK(after.target_rows == 1000);
}

TEST_CASE("postgres: a source read from a hot standby is counted: its snapshots list no writer in progress") {
  PostgresServer& primary = Server();
  FreshSchemas(primary, {"src.s1"});
  MakeOrders(primary, 1000);
  // The source is marked on the primary (its trigger and marks table replicate to the standby).
  auto on_primary = Open(primary.Url(), primary.Url(), PostgresOptions{.mark_source_changes = true});
  FreshSchemas(primary, {"dst.t1"});
  Remembered p;
  Step(*on_primary, p);
  Step(*on_primary, p);
  PostgresServer standby(PostgresServer::StandbyOf{primary});
  PostgresServer& target = SecondServer();
  FreshSchemas(target, {"dst.t1"});
  auto w = Open(standby.Url(), target.Url(), PostgresOptions{.mark_source_changes = true});
  Remembered m;
  Step(*w, m);
  Step(*w, m);
  // A writer in progress while the standby counts (a later transaction, committed, makes it count).
  OtherSession writer(primary);
  writer.Exec("BEGIN");
  writer.Exec("INSERT INTO \"src.s1\".orders VALUES (90001, 'slow', 1, '2025-07-01T00:00:00Z')");
  primary.Exec("INSERT INTO \"src.s1\".orders VALUES (90000, 'committed', 1, '2025-07-01T00:00:00Z')");
  standby.WaitReplayed(primary);
  CopyResult during = Step(*w, m);
  CHECK(during.source_rows == 1001);
  CHECK(!during.source_rows_memo.has_value());  // nothing remembered from a standby's snapshot
  writer.Exec("COMMIT");
  standby.WaitReplayed(primary);
  CopyResult next = Step(*w, m);
  CHECK(Counted(next, kSourceSql));
  CHECK(next.source_rows == 1002);
  CHECK(SourceCount(primary) == "1002");
}

TEST_CASE("postgres: a source that is an inheritance child or a partition is counted: its parent writes it") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1", "src.parents"});
  MakeOrders(server, 1000);
  auto w = Open(Server().Url(), Server().Url(), PostgresOptions{.mark_source_changes = true});
  Remembered m;
  Step(*w, m);
  Step(*w, m);
  REQUIRE(!Counted(Step(*w, m), kSourceSql));  // remembered
  // A DELETE on an inheritance parent deletes the child's rows, firing only the parent's statement triggers.
  server.Exec("CREATE TABLE \"src.parents\".legacy (LIKE " + std::string(kSourceSql) + ")");
  server.Exec("ALTER TABLE " + std::string(kSourceSql) + " INHERIT \"src.parents\".legacy");
  server.Exec("DELETE FROM \"src.parents\".legacy WHERE id <= 10");
  CopyResult child = Step(*w, m);
  CHECK(Counted(child, kSourceSql));
  CHECK(child.source_rows == 990);
  CHECK(Counted(Step(*w, m), kSourceSql));  // counted while it is a child
  // An INSERT routed into a partition fires only the partitioned table's statement triggers.
  server.Exec("ALTER TABLE " + std::string(kSourceSql) + " NO INHERIT \"src.parents\".legacy");
  server.Exec("CREATE TABLE \"src.parents\".ranged (LIKE " + std::string(kSourceSql) +
              ") PARTITION BY RANGE (id)");
  server.Exec("ALTER TABLE \"src.parents\".ranged ATTACH PARTITION " + std::string(kSourceSql) +
              " FOR VALUES FROM (MINVALUE) TO (MAXVALUE)");
  Step(*w, m);
  server.Exec("INSERT INTO \"src.parents\".ranged VALUES (90000, 'routed', 1, '2025-07-01T00:00:00Z')");
  CopyResult partition = Step(*w, m);
  CHECK(Counted(partition, kSourceSql));
  CHECK(partition.source_rows == 991);
  CHECK(SourceCount(server) == "991");
  server.Exec("DROP SCHEMA \"src.parents\" CASCADE");  // with the source: no other case sees them
}

TEST_CASE("postgres: a database with a FOR ALL TABLES publication gets no rocky_meta: counted, said once") {
  PostgresServer& server = Server();
  server.Exec("DROP DATABASE IF EXISTS marks_published WITH (FORCE)", "postgres");
  server.Exec("CREATE DATABASE marks_published", "postgres");
  server.Exec("CREATE SCHEMA \"src.s1\"", "marks_published");
  server.Exec("CREATE TABLE \"src.s1\".orders (id bigint PRIMARY KEY, synced timestamptz NOT NULL)",
              "marks_published");
  server.Exec(
      "INSERT INTO \"src.s1\".orders SELECT g, timestamptz '2025-03-01' + g * interval '1 s' FROM "
      "generate_series(1, 300) g",
      "marks_published");
  // Its subscribers would be sent rocky's marks table, which they lack: their apply would stop.
  server.Exec("CREATE PUBLICATION everything FOR ALL TABLES", "marks_published");
  auto w = Open(server.Url("marks_published"), server.Url("marks_published"),
                PostgresOptions{.mark_source_changes = true});
  Remembered m;
  CopyResult full = Step(*w, m);
  CHECK(full.source_rows == 300);
  CHECK(full.target_rows == 300);
  CHECK(!full.target_rows_memo.has_value());
  REQUIRE(full.warnings.size() == 2);  // the targets' marks, and the sources' (mark_source_changes)
  for (const std::string& warning : full.warnings) {
    INFO(warning);
    CHECK(warning.find("FOR ALL TABLES publication (everything)") != std::string::npos);
    CHECK(warning.find(server.password()) == std::string::npos);
  }
  server.Exec("INSERT INTO \"src.s1\".orders VALUES (301, '2025-03-02')", "marks_published");
  CopyResult next = Step(*w, m);
  CHECK(next.warnings.empty());  // said once per warehouse
  CHECK(next.source_rows == 301);
  CHECK(next.target_rows == 301);
  CHECK(!next.source_rows_memo.has_value());
  CHECK(server.Scalar("SELECT to_regnamespace('rocky_meta') IS NULL", "marks_published") == "t");
  CHECK(server.Scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'rocky_mark_changes'",
                      "marks_published") == "0");
  w.reset();
  server.Exec("DROP DATABASE marks_published WITH (FORCE)", "postgres");
}

TEST_CASE(
    "postgres: a data directory restored from a file-level copy: the count taken after it is not reused") {
  PostgresServer server;  // its own: its data directory is copied and put back
  FreshSchemas(server, {"src.s1", "dst.t1"});
  MakeOrders(server, 1000);
  auto w = Open(server.Url(), server.Url(), PostgresOptions{.mark_source_changes = true});
  Remembered m;
  Step(*w, m);
  Step(*w, m);
  // A copy of the stopped data directory (as a disk snapshot would be), then deletes counted and remembered.
  server.Stop();
  const std::string copy = server.data_dir() + ".copy";
  REQUIRE(std::system(("cp -a " + server.data_dir() + " " + copy).c_str()) == 0);
  server.Start();
  server.Exec("DELETE FROM " + std::string(kSourceSql) + " WHERE id <= 100");
  CopyResult deleted = Step(*w, m);
  CHECK(deleted.source_rows == 900);
  REQUIRE(!Counted(Step(*w, m), kSourceSql));  // remembered: 900
  // The copy put back: crash recovery only (the same timeline), the deletes gone, and transaction ids past
  // the remembered snapshot's reused.
  server.Stop();
  std::filesystem::remove_all(server.data_dir());
  std::filesystem::rename(copy, server.data_dir());
  server.Start();
  const std::string xmax = server.Scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())");
  for (int i = 0; i < 200; ++i) server.Exec("SELECT pg_current_xact_id()");
  REQUIRE(SourceCount(server) == "1000");
  CopyResult restored = Step(*w, m);
  CHECK(Counted(restored, kSourceSql));
  CHECK(restored.source_rows == 1000);
  INFO("xmax after the restore: ", xmax);
}

TEST_CASE("postgres: a statement timeout, a server restart and a killed backend mid-copy lose nothing") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  MakeOrders(server, 2000);
  auto w = Open();
  CopyResult full = MustCopy(*w, Request("orders", std::nullopt));
  server.Exec(
      "INSERT INTO \"src.s1\".orders SELECT g, 'more', 1, timestamptz '2025-04-01' + g * interval '1 s' "
      "FROM generate_series(100001, 100500) g");

  SUBCASE("statement timeout") {
    auto timed = Open(server.Url("rocky", "options=-c%20statement_timeout%3D300"),
                      server.Url("rocky", "options=-c%20statement_timeout%3D300"));
    std::optional<Result<CopyResult>> r;
    {
      LockHolder lock(server, "\"dst.t1\".orders");
      r = timed->Copy(Request("orders", full.max_timestamp));
    }
    REQUIRE(!r->ok());
    CHECK(r->status().code() == Status::Code::kTimedOut);
    CHECK(r->status().message().find("statement timeout") != std::string::npos);
    CHECK(r->status().message().find(server.password()) == std::string::npos);
  }
  SUBCASE("server restarted mid-copy") {
    std::future<Result<CopyResult>> copy;
    {
      LockHolder lock(server, "\"dst.t1\".orders");
      copy = std::async(std::launch::async, [&] { return w->Copy(Request("orders", full.max_timestamp)); });
      server.WaitForBlockedQuery("CREATE INDEX IF NOT EXISTS%");
      server.Restart();
    }
    Result<CopyResult> r = copy.get();
    REQUIRE(!r.ok());
    CHECK(r.status().code() == Status::Code::kIOError);
    CHECK(r.status().message().find(server.password()) == std::string::npos);
  }
  SUBCASE("the copy's backend killed (SIGKILL): the server recovers") {
    std::future<Result<CopyResult>> copy;
    {
      LockHolder lock(server, "\"dst.t1\".orders");
      copy = std::async(std::launch::async, [&] { return w->Copy(Request("orders", full.max_timestamp)); });
      // Returns once the server has recovered.
      server.KillBackend(server.WaitForBlockedQuery("CREATE INDEX IF NOT EXISTS%"));
      Result<CopyResult> r = copy.get();
      REQUIRE(!r.ok());
    }
  }
  // The target is as before; the same warehouse (its session re-opened) then copies exactly the rest.
  CHECK(server.Scalar("SELECT count(*) FROM \"dst.t1\".orders") == "2000");
  Result<CopyResult> rerun = w->Copy(Request("orders", full.max_timestamp));
  for (int i = 0; i < 100 && !rerun.ok(); ++i) {  // the server may still be finishing its recovery
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rerun = w->Copy(Request("orders", full.max_timestamp));
  }
  REQUIRE_MESSAGE(rerun.ok(), rerun.status().message());
  CHECK(rerun->rows_copied == 500);
  CHECK(Difference(server, "\"src.s1\".orders", "\"dst.t1\".orders", "id, customer, total, synced") == "0|0");
}

TEST_CASE("postgres: a server restarted between two copies: the next copy re-opens the session") {
  PostgresServer& server = Server();
  FreshSchemas(server, {"src.s1", "dst.t1"});
  MakeOrders(server, 100);
  auto w = Open();
  CopyResult full = MustCopy(*w, Request("orders", std::nullopt));
  server.Restart();  // the warehouse's idle session is gone, which libpq learns only at its next statement
  server.Exec("INSERT INTO \"src.s1\".orders VALUES (500, 'after restart', 1, '2025-06-01T00:00:00Z')");
  CopyResult next = MustCopy(*w, Request("orders", full.max_timestamp));
  CHECK(next.rows_copied == 1);
}

TEST_CASE("postgres: the sample warehouse and the OpenWarehouse factory") {
  PostgresServer& server = Server();
  for (const char* s :
       {"fivetran_catalog.src__acme__eu_central__stripe", "fivetran_catalog.src__acme__us_west__shopify",
        "fivetran_catalog.src__globex__us_east__shopify"}) {
    server.Exec("DROP SCHEMA IF EXISTS \"" + std::string(s) + "\" CASCADE");
  }
  auto sample = CreatePostgresSampleWarehouse(server.Url(), false);
  REQUIRE_MESSAGE(sample.ok(), sample.status().message());
  CHECK(sample->tables.size() == 4);
  CHECK(server.Scalar("SELECT count(*) FROM \"fivetran_catalog.src__acme__us_west__shopify\".orders") ==
        "2000");
  auto again = CreatePostgresSampleWarehouse(server.Url(), false);
  CHECK(again.status().message().find("already exists") != std::string::npos);
  CHECK(CreatePostgresSampleWarehouse(server.Url(), true).ok());

  config::AdapterConfig pg{.name = "default", .type = "postgres", .path = "", .url = server.Url()};
  auto opened = OpenWarehouse(pg, pg);
  REQUIRE(opened.ok());
  CHECK((*opened)->dialect().name() == "postgres");
  CHECK(DescribeAdapter(pg).find(server.password()) == std::string::npos);
  config::AdapterConfig lite{.name = "lite", .type = "sqlite", .path = "/tmp/x", .url = ""};
  CHECK(OpenWarehouse(lite, pg).status().code() == Status::Code::kNotSupported);
}

}  // namespace
}  // namespace rocky::warehouse
