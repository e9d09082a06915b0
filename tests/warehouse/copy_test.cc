// The SQLite warehouse's copies at the level of statements: that what rocky runs is served by indexes
// (EXPLAIN QUERY PLAN of the very statements), that no edge case deletes or duplicates a row (truncated
// sources, re-runs), the strategies (merge upserts, lookback), integer cursors, the source's constraints
// kept, odd table names, and SQL injection through names, types and expressions.
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "rocky/warehouse/sqlite_warehouse.h"
#include "schema_file.h"
#include "temp_dir.h"

namespace rocky::warehouse {
namespace {

using TempDir = rocky_test::TempDir;  // tests/support/temp_dir.h

using rocky_test::SchemaFile;  // tests/support/schema_file.h

const TableRef kSource{"src", "shop", "orders"};
const TableRef kTarget{"dst", "shop", "orders"};

std::unique_ptr<Warehouse> Open(const TempDir& dir) {
  auto warehouse = OpenSqliteWarehouse(dir.File("wh"));
  REQUIRE(warehouse.ok());
  return std::move(*warehouse);
}

CopyRequest Request(std::optional<std::string> watermark,
                    config::Strategy strategy = config::Strategy::kIncremental) {
  CopyRequest request;
  request.source = kSource;
  request.target = kTarget;
  request.timestamp_column = "synced";
  request.strategy = strategy;
  if (strategy == config::Strategy::kMerge) request.merge_keys = {"id"};
  request.watermark = std::move(watermark);
  request.metadata_columns = {{"_loaded_by", "STRING", "'rocky'"}};
  return request;
}

CopyResult CopyOk(Warehouse& warehouse, const CopyRequest& request) {
  Result<CopyResult> copy = warehouse.Copy(request);
  REQUIRE_MESSAGE(copy.ok(), copy.status().message());
  return *copy;
}

// `rows` orders, one per minute from 2025-03-01T00:00:00Z, with an index on the cursor column.
void FillOrders(SchemaFile& source, int rows, bool index = true) {
  source.Exec(
      "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, total REAL, synced TEXT NOT "
      "NULL)");
  if (index) source.Exec("CREATE INDEX orders_synced ON orders (synced)");
  source.Exec(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(rows) +
      ") INSERT INTO orders SELECT i, 'c' || (i % 7), i * 1.5, strftime('%Y-%m-%dT%H:%M:%SZ', 1740787200 + "
      "60 * i, 'unixepoch') FROM n");
}

// The EXPLAIN QUERY PLAN lines of every statement of `copy` but those expected to read a whole table (the
// COUNT(*) of the row_count check, a full refresh's copy, and schema statements), that scan `table` instead
// of searching an index.
std::vector<std::string> FullScans(const CopyResult& copy, const std::string& table) {
  std::vector<std::string> scans;
  for (const StatementPlan& statement : copy.plans) {
    if (statement.purpose == "count" || statement.purpose == "full" || statement.purpose == "schema")
      continue;
    for (const std::string& line : statement.plan) {
      // "SCAN source.orders" or "SCAN main.orders USING COVERING INDEX x" walk the whole table or index; a
      // range read is "SEARCH source.orders USING INDEX x (synced>?)".
      for (const char* schema : {"source.", "main.", ""}) {
        const std::string scan = "SCAN " + std::string(schema) + table;
        if (line.rfind(scan, 0) == 0 && (line.size() == scan.size() || line[scan.size()] == ' ')) {
          scans.push_back(statement.purpose + ": " + line + "  <- " + statement.sql);
        }
      }
    }
  }
  return scans;
}

TEST_CASE("Copy: every statement of an incremental run is served by an index (EXPLAIN QUERY PLAN)") {
  TempDir dir;
  auto warehouse = Open(dir);
  SchemaFile source(dir.File("wh"), kSource.catalog, kSource.schema);
  FillOrders(source, 5000);
  CHECK_FALSE(warehouse->CursorIndexAdvice(kSource, "synced").value().has_value());

  CopyRequest full = Request(std::nullopt);
  full.explain = true;
  const CopyResult first = CopyOk(*warehouse, full);
  CHECK(first.rows_copied == 5000);
  CHECK(first.max_timestamp == "2025-03-04T11:20:00Z");
  CHECK(FullScans(first, "orders").empty());  // the watermark's MAX reads the target's new index
  SchemaFile target(dir.File("wh"), kTarget.catalog, kTarget.schema);
  CHECK(target.One("SELECT count(*) FROM pragma_index_list('orders') AS il WHERE (SELECT name FROM "
                   "pragma_index_info(il.name) WHERE seqno = 0) = 'synced'") == "1");

  source.Exec(
      "INSERT INTO orders VALUES (9001, 'c1', 1, '2025-03-05T00:00:00Z'), (9002, 'c2', 2, "
      "'2025-03-05T00:00:01Z')");
  for (const config::Strategy strategy : {config::Strategy::kIncremental, config::Strategy::kMerge}) {
    INFO("strategy ", config::ToString(strategy));
    CopyRequest next = Request(first.max_timestamp, strategy);
    next.explain = true;
    const CopyResult copy = CopyOk(*warehouse, next);
    CHECK(copy.cursor_compare == "text");
    CHECK(copy.rows_copied ==
          (strategy == config::Strategy::kMerge ? 3 : 2));  // merge rewrites the boundary row
    std::vector<std::string> scans = FullScans(copy, "orders");
    CHECK_MESSAGE(scans.empty(), scans.front());
    // The read, the window counts and the new MAX all name the index.
    const bool window_searched =
        std::any_of(copy.plans.begin(), copy.plans.end(), [](const StatementPlan& p) {
          return p.purpose == "window" &&
                 std::any_of(p.plan.begin(), p.plan.end(), [](const std::string& line) {
                   return line.find("SEARCH source.orders USING") == 0 &&
                          line.find("synced>?") != std::string::npos;
                 });
        });
    CHECK(window_searched);
  }

  // Without the row counts (a pipeline without checks), not one statement reads a whole table or index.
  CopyRequest uncounted = Request(std::string("2025-03-05T00:00:01Z"));
  uncounted.explain = true;
  uncounted.count_rows = false;
  const CopyResult lean = CopyOk(*warehouse, uncounted);
  CHECK(lean.cursor_compare == "text");
  CHECK(lean.source_rows == 0);
  for (const StatementPlan& statement : lean.plans) {
    CHECK(statement.purpose != "count");
    for (const std::string& line : statement.plan) {
      CHECK_MESSAGE(line.rfind("SCAN source.orders", 0) != 0, statement.sql);
      CHECK_MESSAGE(line.rfind("SCAN main.orders", 0) != 0, statement.sql);
    }
  }

  // Mixed spellings (an offset sorts below the watermark's text): the instant comparison, still on the index.
  source.Exec(
      "INSERT INTO orders VALUES (9003, 'c3', 3, '2025-03-04 20:00:01-04:00')");  // 2025-03-05T00:00:01Z
  CopyRequest mixed = Request(std::string("2025-03-05T00:00:01Z"));
  mixed.explain = true;
  const CopyResult instant = CopyOk(*warehouse, mixed);
  CHECK(instant.cursor_compare == "instant");
  CHECK(instant.rows_copied == 1);
  std::vector<std::string> scans = FullScans(instant, "orders");
  CHECK_MESSAGE(scans.empty(), scans.front());
}

// The statements of `copy` that counted a whole table, by the table they name ("source" or "main").
std::vector<std::string> CountedSchemas(const CopyResult& copy) {
  std::vector<std::string> counted;
  for (const StatementPlan& statement : copy.plans) {
    if (statement.purpose != "count") continue;
    counted.push_back(statement.sql.find("\"source\".") != std::string::npos ? "source" : "main");
  }
  return counted;
}

TEST_CASE("Copy: a remembered row count is reused only while its schema file is unchanged") {
  TempDir dir;
  auto warehouse = Open(dir);
  SchemaFile source(dir.File("wh"), kSource.catalog, kSource.schema);
  FillOrders(source, 3000);
  CopyRequest full = Request(std::nullopt);
  full.explain = true;
  CopyResult copy = CopyOk(*warehouse, full);
  REQUIRE(copy.source_rows_memo.has_value());
  REQUIRE(copy.target_rows_memo.has_value());
  CHECK(copy.source_rows_memo->rows == 3000);
  CHECK(copy.target_rows_memo->rows == 3000);

  // The next copy with what the last one remembered: nothing changed, so nothing is counted.
  auto next = [&](const CopyResult& last) {
    CopyRequest request = Request(last.max_timestamp);
    request.explain = true;
    request.source_rows_memo = last.source_rows_memo;
    request.target_rows_memo = last.target_rows_memo;
    return CopyOk(*warehouse, request);
  };
  CopyResult same = next(copy);
  CHECK(CountedSchemas(same).empty());
  CHECK(same.source_rows == 3000);
  CHECK(same.target_rows == 3000);
  REQUIRE(same.target_rows_memo.has_value());
  CHECK(same.target_rows_memo->version == copy.target_rows_memo->version);
  CHECK(same.source_rows_memo->version == copy.source_rows_memo->version);

  // A row the source lost below the watermark (a truncation): the source's file moved, so it is counted.
  source.Exec("DELETE FROM orders WHERE id = 10");
  CopyResult truncated = next(same);
  CHECK(CountedSchemas(truncated) == std::vector<std::string>{"source"});
  CHECK(truncated.source_rows == 2999);
  CHECK(truncated.target_rows == 3000);

  // Rows removed from the target by hand: the target is counted again, not taken from the memo.
  {
    SchemaFile target(dir.File("wh"), kTarget.catalog, kTarget.schema);
    target.Exec("DELETE FROM orders WHERE id <= 5");
  }
  CopyResult edited = next(truncated);
  CHECK(CountedSchemas(edited) == std::vector<std::string>{"main"});
  CHECK(edited.target_rows == 2995);
  CHECK(edited.source_rows == 2999);

  // New rows: the source is counted, the target's count follows from the memo and the rows inserted, and the
  // memo after the copy is the one the next copy finds.
  source.Exec(
      "INSERT INTO orders VALUES (9001, 'c1', 1, '2025-03-05T00:00:00Z'), (9002, 'c2', 2, "
      "'2025-03-05T00:00:01Z')");
  CopyResult grown = next(edited);
  CHECK(grown.rows_copied == 2);
  CHECK(CountedSchemas(grown) == std::vector<std::string>{"source"});
  CHECK(grown.source_rows == 3001);
  CHECK(grown.target_rows == 2997);
  CopyResult settled = next(grown);
  CHECK(CountedSchemas(settled).empty());
  CHECK(settled.target_rows == 2997);
  CHECK(settled.source_rows == 3001);

  // A memo whose version is not the file's is never believed.
  CopyRequest stale = Request(settled.max_timestamp);
  stale.explain = true;
  stale.source_rows_memo = RowCountMemo{"sqlite1:0:0:0:0:1", 7};
  stale.target_rows_memo = RowCountMemo{settled.target_rows_memo->version + "0", 7};
  CopyResult counted = CopyOk(*warehouse, stale);
  CHECK(CountedSchemas(counted).size() == 2);
  CHECK(counted.source_rows == 3001);
  CHECK(counted.target_rows == 2997);

  // A source in WAL mode keeps its commits out of the header's change counter: no memo, always counted.
  source.Exec("PRAGMA journal_mode=WAL");
  CopyResult wal = next(settled);
  CHECK_FALSE(wal.source_rows_memo.has_value());
  source.Exec("DELETE FROM orders WHERE id = 11");
  CopyRequest after_wal = Request(wal.max_timestamp);
  after_wal.explain = true;
  after_wal.source_rows_memo = settled.source_rows_memo;
  after_wal.target_rows_memo = wal.target_rows_memo;
  CopyResult wal_again = CopyOk(*warehouse, after_wal);
  CHECK(wal_again.source_rows == 3000);
  CHECK(CountedSchemas(wal_again) == std::vector<std::string>{"source"});
}

TEST_CASE("Copy: without a source index the statements scan, and the advice names the index that fixes it") {
  TempDir dir;
  auto warehouse = Open(dir);
  SchemaFile source(dir.File("wh"), kSource.catalog, kSource.schema);
  FillOrders(source, 100, /*index=*/false);
  Result<std::optional<IndexAdvice>> advice = warehouse->CursorIndexAdvice(kSource, "synced");
  REQUIRE(advice.ok());
  REQUIRE(advice->has_value());
  CHECK((*advice)->create_index == "CREATE INDEX \"orders__synced\" ON \"orders\" (\"synced\")");
  CHECK((*advice)->location == dir.File("wh") + "/src/shop.sqlite");
  const CopyResult first = CopyOk(*warehouse, Request(std::nullopt));
  CopyRequest next = Request(first.max_timestamp);
  next.explain = true;
  CHECK_FALSE(FullScans(CopyOk(*warehouse, next), "orders").empty());  // what the test above rules out
  // The advice, followed, works; an INTEGER PRIMARY KEY cursor is the rowid and needs none; a partial index
  // does not count.
  source.Exec((*advice)->create_index);
  CHECK_FALSE(warehouse->CursorIndexAdvice(kSource, "synced").value().has_value());
  CHECK_FALSE(warehouse->CursorIndexAdvice(kSource, "id").value().has_value());
  source.Exec("CREATE INDEX part ON orders (total) WHERE total > 10");
  CHECK(warehouse->CursorIndexAdvice(kSource, "total").value().has_value());
  CHECK(warehouse->CursorIndexAdvice(kSource, "nope").status().code() == Status::Code::kNotFound);
}

TEST_CASE("Copy: a truncated source deletes nothing from the target, and later rows still arrive") {
  TempDir dir;
  auto warehouse = Open(dir);
  SchemaFile source(dir.File("wh"), kSource.catalog, kSource.schema);
  FillOrders(source, 1500);
  // A whole sync batch shares one timestamp, the newest: the watermark's instant.
  source.Exec("UPDATE orders SET synced = '2025-03-02T01:00:00Z' WHERE id > 1400");
  const CopyResult first = CopyOk(*warehouse, Request(std::nullopt));
  REQUIRE(first.max_timestamp == "2025-03-02T01:00:00Z");
  SchemaFile target(dir.File("wh"), kTarget.catalog, kTarget.schema);

  for (const std::string& truncate :
       {std::string("DELETE FROM orders WHERE id > 1400"),  // the batch vanished
        std::string("DELETE FROM orders")}) {               // everything did
    INFO(truncate);
    source.Exec(truncate);
    for (int run = 0; run < 2; ++run) {
      const CopyResult copy = CopyOk(*warehouse, Request(first.max_timestamp));
      CHECK(copy.rows_copied == 0);
      CHECK(copy.target_rows == 1500);
      CHECK(target.One("SELECT count(*) FROM orders") == "1500");
      // Nothing at or above the watermark is left in the source's window, but the target still holds the
      // batch: the window's newest value is unchanged.
      CHECK(copy.max_timestamp == "2025-03-02T01:00:00Z");
    }
  }
  // The connector refills the source with new rows: they arrive, nothing else changes.
  source.Exec(
      "INSERT INTO orders VALUES (5001, 'c', 1, '2025-03-02T01:00:00Z'), (5002, 'c', 2, "
      "'2025-03-03T00:00:00Z')");
  const CopyResult refill = CopyOk(*warehouse, Request(first.max_timestamp));
  // 5001 shares the batch's timestamp and is a different row from any the target holds: it is copied.
  CHECK(refill.rows_copied == 2);
  CHECK(target.One("SELECT count(*) FROM orders") == "1502");
}

TEST_CASE("Copy: identical rows stay as many as the source has; a re-run adds none") {
  TempDir dir;
  auto warehouse = Open(dir);
  SchemaFile source(dir.File("wh"), kSource.catalog, kSource.schema);
  source.Exec(
      "CREATE TABLE orders (customer TEXT, total REAL, synced TEXT); CREATE INDEX s ON orders (synced);"
      "INSERT INTO orders VALUES ('a', 1, '2025-03-01T00:00:00Z'), ('a', 1, '2025-03-01T00:00:00Z')");
  const CopyResult first = CopyOk(*warehouse, Request(std::nullopt));
  CHECK(first.target_rows == 2);
  source.Exec(
      "INSERT INTO orders VALUES ('a', 1, '2025-03-01T00:00:00Z'), (NULL, NULL, '2025-03-01T00:00:00Z')");
  for (int run = 0; run < 3; ++run) {
    const CopyResult copy = CopyOk(*warehouse, Request(first.max_timestamp));
    CHECK(copy.rows_copied == (run == 0 ? 2 : 0));  // the third identical row, and the one with NULLs
    CHECK(copy.target_rows == 4);
  }
}

TEST_CASE("Copy: merge upserts on its keys; an updated row replaces its old version") {
  TempDir dir;
  auto warehouse = Open(dir);
  SchemaFile source(dir.File("wh"), kSource.catalog, kSource.schema);
  FillOrders(source, 10);
  const CopyResult first = CopyOk(*warehouse, Request(std::nullopt, config::Strategy::kMerge));
  SchemaFile target(dir.File("wh"), kTarget.catalog, kTarget.schema);
  CHECK(target.One(
            "SELECT count(*) FROM pragma_index_list('orders') WHERE \"unique\" = 1 AND origin = 'c'") == "1");

  // Row 3 updated in place (newer timestamp), row 11 new.
  source.Exec(
      "UPDATE orders SET total = 99, synced = '2025-03-02T00:00:00Z' WHERE id = 3;"
      "INSERT INTO orders VALUES (11, 'c', 11, '2025-03-02T00:00:01Z')");
  for (int run = 0; run < 2; ++run) {
    const CopyResult copy = CopyOk(*warehouse, Request(first.max_timestamp, config::Strategy::kMerge));
    if (run == 0) {
      CHECK(copy.rows_copied == 3);    // the boundary row 10 (unchanged, rewritten), row 3, row 11
      CHECK(copy.rows_replaced == 2);  // rows 10 and 3 existed
    }
    CHECK(copy.target_rows == 11);
    CHECK(target.Rows("SELECT total, synced FROM orders WHERE id = 3") ==
          std::vector<std::string>{"99.0|2025-03-02T00:00:00Z"});
    CHECK(target.One("SELECT count(*), count(DISTINCT id) FROM orders") == "11|11");
  }

  // Lookback: a row committed late with an older timestamp, within lookback_seconds of the watermark.
  source.Exec("INSERT INTO orders VALUES (12, 'late', 12, '2025-03-01T23:59:00Z')");
  CHECK(CopyOk(*warehouse, Request(std::string("2025-03-02T00:00:01Z"), config::Strategy::kMerge))
            .rows_copied == 1);
  CHECK(target.One("SELECT count(*) FROM orders WHERE id = 12") == "0");  // without lookback it is missed
  CopyRequest late = Request(std::string("2025-03-02T00:00:01Z"), config::Strategy::kMerge);
  late.lookback_seconds = 3600;
  const CopyResult lookback = CopyOk(*warehouse, late);
  CHECK(target.One("SELECT count(*) FROM orders WHERE id = 12") == "1");
  CHECK(lookback.max_timestamp == "2025-03-02T00:00:01Z");
  // An older version read again never replaces a newer one.
  target.Exec("UPDATE orders SET synced = '2025-03-02T00:30:00Z', total = -1 WHERE id = 12");
  CopyOk(*warehouse, late);
  CHECK(target.One("SELECT total FROM orders WHERE id = 12") == "-1.0");

  // lookback_seconds is refused where it would duplicate rows.
  CopyRequest appending = Request(std::string("2025-03-02T00:00:01Z"));
  appending.lookback_seconds = 60;
  Result<CopyResult> refused = warehouse->Copy(appending);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("lookback_seconds needs strategy merge") != std::string::npos);
  // A merge key the source lacks is named.
  CopyRequest bad_key = Request(first.max_timestamp, config::Strategy::kMerge);
  bad_key.merge_keys = {"order_id"};
  refused = warehouse->Copy(bad_key);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("merge key 'order_id' not found in source table src.shop.orders") !=
        std::string::npos);
}

TEST_CASE("Copy: an incremental table with a primary key refuses a row changed in place, naming merge") {
  TempDir dir;
  auto warehouse = Open(dir);
  SchemaFile source(dir.File("wh"), kSource.catalog, kSource.schema);
  FillOrders(source, 10);
  const CopyResult first = CopyOk(*warehouse, Request(std::nullopt));
  source.Exec("UPDATE orders SET total = 99, synced = '2025-03-02T00:00:00Z' WHERE id = 3");
  Result<CopyResult> copy = warehouse->Copy(Request(first.max_timestamp));
  REQUIRE_FALSE(copy.ok());
  CHECK(copy.status().message().find("strategy = \"merge\"") != std::string::npos);
  SchemaFile target(dir.File("wh"), kTarget.catalog, kTarget.schema);
  CHECK(target.One("SELECT count(*) FROM orders") == "10");
}

TEST_CASE("Copy: integer cursors compare as numbers and keep their exact value") {
  TempDir dir;
  auto warehouse = Open(dir);
  SchemaFile source(dir.File("wh"), kSource.catalog, kSource.schema);
  source.Exec(
      "CREATE TABLE orders (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, note TEXT);"
      "CREATE INDEX v ON orders (version);"
      "INSERT INTO orders VALUES (1, 9, 'a'), (2, 10, 'b'), (3, 9007199254740993, 'c')");
  CopyRequest request = Request(std::nullopt);
  request.timestamp_column = "version";
  request.cursor_type = config::CursorType::kInteger;
  request.explain = true;
  const CopyResult first = CopyOk(*warehouse, request);
  CHECK(first.max_timestamp == "9007199254740993");  // 2^53 + 1: not what a double would give
  CHECK(first.cursor_compare == "full");

  source.Exec("INSERT INTO orders VALUES (4, 9007199254740994, 'd'), (5, 11, 'late')");
  request.watermark = first.max_timestamp;
  const CopyResult next = CopyOk(*warehouse, request);
  CHECK(next.cursor_compare == "integer");
  CHECK(next.rows_copied == 1);  // 10 < 11 < the watermark: numbers, not text ("11" > "10" > "9...")
  CHECK(next.max_timestamp == "9007199254740994");
  CHECK(FullScans(next, "orders").empty());

  // A timestamp watermark for an integer cursor, or a text column, is refused with the way out.
  request.watermark = "2025-03-01T00:00:00Z";
  Result<CopyResult> refused = warehouse->Copy(request);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("--full-refresh") != std::string::npos);
  request.watermark.reset();
  request.timestamp_column = "note";
  refused = warehouse->Copy(request);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("cursor_type is \"integer\" but column 'note'") != std::string::npos);
}

TEST_CASE("Copy: a full refresh keeps the source's primary key and NOT NULL constraints") {
  TempDir dir;
  auto warehouse = Open(dir);
  SchemaFile source(dir.File("wh"), kSource.catalog, kSource.schema);
  FillOrders(source, 3);
  source.Exec(
      "CREATE TABLE lines (order_id INTEGER NOT NULL, line INT NOT NULL, sku TEXT, synced TEXT, "
      "PRIMARY KEY (order_id, line));"
      "INSERT INTO lines VALUES (1, 1, 'x', '2025-03-01T00:00:00Z')");
  CopyOk(*warehouse, Request(std::nullopt));
  CopyRequest lines = Request(std::nullopt);
  lines.source.table = lines.target.table = "lines";
  CopyOk(*warehouse, lines);
  SchemaFile target(dir.File("wh"), kTarget.catalog, kTarget.schema);
  CHECK(target.Rows("SELECT name, type, \"notnull\", pk FROM pragma_table_info('orders')") ==
        std::vector<std::string>{"id|INTEGER|0|1", "customer|TEXT|1|0", "total|REAL|0|0", "synced|TEXT|1|0",
                                 "_loaded_by|TEXT|0|0"});
  // Still the rowid: the same ids, and no extra index for the key.
  CHECK(target.One("SELECT count(*) FROM pragma_index_list('orders') WHERE origin = 'pk'") == "0");
  CHECK(target.Rows("SELECT name, \"notnull\", pk FROM pragma_table_info('lines')") ==
        std::vector<std::string>{"order_id|1|1", "line|1|2", "sku|0|0", "synced|0|0", "_loaded_by|0|0"});
  CHECK(target.ExecCode("INSERT INTO lines VALUES (1, 1, 'dup', NULL, NULL)") ==
        SQLITE_CONSTRAINT_PRIMARYKEY);
  CHECK(target.ExecCode("INSERT INTO orders (id, customer, synced) VALUES (99, NULL, 'x')") ==
        SQLITE_CONSTRAINT_NOTNULL);
}

TEST_CASE("Copy: table names with dots, quotes and spaces") {
  TempDir dir;
  auto warehouse = Open(dir);
  SchemaFile source(dir.File("wh"), kSource.catalog, kSource.schema);
  for (const std::string& name :
       {std::string("weird.a.b"), std::string("it's a \"table\""), std::string("a; b")}) {
    INFO(name);
    std::string quoted = "\"";
    for (const char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    quoted += "\"";
    source.Exec("CREATE TABLE " + quoted +
                " (id INTEGER PRIMARY KEY, synced TEXT);"
                "INSERT INTO " +
                quoted + " VALUES (1, '2025-03-01T00:00:00Z')");
    CopyRequest request = Request(std::nullopt);
    request.source.table = request.target.table = name;
    const CopyResult first = CopyOk(*warehouse, request);
    source.Exec("INSERT INTO " + quoted + " VALUES (2, '2025-03-02T00:00:00Z')");
    request.watermark = first.max_timestamp;
    CHECK(CopyOk(*warehouse, request).rows_copied == 1);
    CHECK(warehouse->CountRows(request.target).value() == 2);
  }
}

TEST_CASE("Copy: SQL in a source column's declared type is refused, and runs nowhere") {
  TempDir dir;
  auto warehouse = Open(dir);
  SchemaFile source(dir.File("wh"), kSource.catalog, kSource.schema);
  FillOrders(source, 3);
  SchemaFile target(dir.File("wh"), kTarget.catalog, kTarget.schema);
  target.Exec("CREATE TABLE victim (x); INSERT INTO victim VALUES (1)");
  // SQLite takes a quoted string as a type name and keeps it as the declared type.
  source.Exec(
      "CREATE TABLE evil (id INTEGER, payload 'x); DROP TABLE victim; --', synced TEXT);"
      "INSERT INTO evil VALUES (1, 'p', '2025-03-01T00:00:00Z')");
  REQUIRE(source.One("SELECT type FROM pragma_table_info('evil') WHERE name = 'payload'") ==
          "x); DROP TABLE victim; --");
  CopyRequest request = Request(std::nullopt);
  request.source.table = request.target.table = "evil";
  Result<CopyResult> copy = warehouse->Copy(request);
  REQUIRE_FALSE(copy.ok());
  CHECK(copy.status().message().find("column 'payload' has a declared type rocky does not copy: "
                                     "'x); DROP TABLE victim; --'") != std::string::npos);
  CHECK(target.One("SELECT count(*) FROM victim") == "1");
  // Ordinary declared types still pass, parameters and all.
  source.Exec(
      "CREATE TABLE fine (id BIGINT, amount DECIMAL(10, 2), name VARCHAR(255), t TIMESTAMP_NTZ, "
      "synced TEXT); INSERT INTO fine VALUES (1, 1.5, 'n', 'x', '2025-03-01T00:00:00Z')");
  request.source.table = request.target.table = "fine";
  CopyOk(*warehouse, request);

  // A metadata expression that tries a second statement: refused by prepare, nothing runs.
  request = Request(std::nullopt);
  request.metadata_columns = {{"_loaded_by", "STRING", "1 AS TEXT) AS x FROM orders; DROP TABLE victim; --"}};
  copy = warehouse->Copy(request);
  REQUIRE_FALSE(copy.ok());
  CHECK_MESSAGE(
      copy.status().message().find("refusing SQL that is not exactly one statement") != std::string::npos,
      copy.status().message());
  CHECK(target.One("SELECT count(*) FROM victim") == "1");
}

}  // namespace
}  // namespace rocky::warehouse
