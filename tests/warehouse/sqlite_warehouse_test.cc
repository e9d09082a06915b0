// The embedded SQLite warehouse: file mapping, listing, and copies (full refresh, incremental, failures).
#include "rocky/warehouse/sqlite_warehouse.h"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "schema_file.h"
#include "temp_dir.h"

namespace rocky::warehouse {
namespace {

using TempDir = rocky_test::TempDir;  // tests/support/temp_dir.h

using rocky_test::SchemaFile;  // tests/support/schema_file.h

const TableRef kSource{"fivetran_catalog", "src__acme__us_west__shopify", "orders"};
const TableRef kTarget{"acme_warehouse", "staging__us_west__shopify", "orders"};

CopyRequest Request(std::optional<std::string> watermark) {
  CopyRequest request;
  request.source = kSource;
  request.target = kTarget;
  request.timestamp_column = "_fivetran_synced";
  request.watermark = std::move(watermark);
  request.metadata_columns = {{"_loaded_by", "STRING", "'rocky'"}};
  return request;
}

std::unique_ptr<Warehouse> Open(const TempDir& dir) {
  Result<std::unique_ptr<Warehouse>> warehouse = OpenSqliteWarehouse(dir.path() + "/wh");
  REQUIRE(warehouse.ok());
  return std::move(warehouse).value();
}

std::string WarehouseFolder(const TempDir& dir) { return dir.path() + "/wh"; }

// The source with the timestamps spelled in every accepted form; instants in UTC in the comments.
void FillSource(SchemaFile& source) {
  source.Exec(
      "CREATE TABLE orders (id INTEGER PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(20), _fivetran_synced "
      "TEXT);"
      "INSERT INTO orders VALUES (1, 10.5, 'a', '2025-03-15T14:00:00Z');"           // 14:00
      "INSERT INTO orders VALUES (2, 20, 'b', '2025-03-15 16:30:00+02:00');"        // 14:30
      "INSERT INTO orders VALUES (3, 30, NULL, '2025-03-15T14:30:00.123456789Z');"  // 14:30:00.123456789
      "INSERT INTO orders VALUES (4, 40, 'd', '2025-03-15 14:30:00.5');");  // 14:30:00.5 (no offset: UTC)
}

TEST_CASE("SqliteWarehouse: folder mapping, sorted listings, kNotFound and invalid names") {
  TempDir dir;
  std::unique_ptr<Warehouse> warehouse = Open(dir);
  CHECK(warehouse->dialect().name() == "sqlite");
  CHECK(std::filesystem::is_directory(WarehouseFolder(dir)));

  Result<std::vector<std::string>> schemas = warehouse->ListSchemas("nope");
  REQUIRE_FALSE(schemas.ok());
  CHECK(schemas.status().code() == Status::Code::kNotFound);
  CHECK(schemas.status().message().find("'nope'") != std::string::npos);

  {
    SchemaFile b(WarehouseFolder(dir), "cat", "b_schema");
    b.Exec("CREATE TABLE zeta (x); CREATE TABLE Alpha (x); CREATE TABLE mid (x); CREATE VIEW v AS SELECT 1;");
    SchemaFile a(WarehouseFolder(dir), "cat", "a-schema");
    a.Exec("CREATE TABLE t (x)");
  }
  // Files that are not schemas are ignored.
  std::filesystem::create_directories(WarehouseFolder(dir) + "/cat/dir.sqlite");
  { std::ofstream(WarehouseFolder(dir) + "/cat/notes.txt") << "x"; }

  schemas = warehouse->ListSchemas("cat");
  REQUIRE(schemas.ok());
  CHECK(*schemas == std::vector<std::string>{"a-schema", "b_schema"});
  Result<std::vector<std::string>> tables = warehouse->ListTables("cat", "b_schema");
  REQUIRE(tables.ok());
  CHECK(*tables == std::vector<std::string>{"Alpha", "mid", "zeta"});

  tables = warehouse->ListTables("cat", "c_schema");
  REQUIRE_FALSE(tables.ok());
  CHECK(tables.status().code() == Status::Code::kNotFound);
  CHECK(tables.status().message().find("cat.c_schema") != std::string::npos);

  CHECK(warehouse->TableExists({"cat", "b_schema", "mid"}).value());
  CHECK(warehouse->TableExists({"cat", "b_schema", "MID"}).value());  // SQLite names are case-insensitive
  CHECK_FALSE(warehouse->TableExists({"cat", "b_schema", "v"}).value());
  CHECK_FALSE(warehouse->TableExists({"cat", "b_schema", "missing"}).value());
  CHECK_FALSE(warehouse->TableExists({"cat", "nothing", "mid"}).value());
  CHECK_FALSE(warehouse->TableExists({"other", "nothing", "mid"}).value());

  for (const char* bad : {"", "..", ".hidden", "a/b", "a.b", "a b", "../cat"}) {
    INFO(bad);
    CHECK(warehouse->ListSchemas(bad).status().code() == Status::Code::kInvalidArgument);
    CHECK(warehouse->ListTables("cat", bad).status().code() == Status::Code::kInvalidArgument);
    CHECK(warehouse->TableExists({bad, "s", "t"}).status().code() == Status::Code::kInvalidArgument);
    CHECK(warehouse->TableExists({"cat", bad, "t"}).status().code() == Status::Code::kInvalidArgument);
  }
  CHECK(warehouse->TableExists({"cat", "b_schema", ""}).status().code() == Status::Code::kInvalidArgument);
  CHECK(warehouse->ListSchemas("a.b").status().message().find("'a.b'") != std::string::npos);
}

TEST_CASE("SqliteWarehouse: opening refuses a folder that is a file") {
  TempDir dir;
  { std::ofstream(dir.path() + "/file") << "x"; }
  Result<std::unique_ptr<Warehouse>> warehouse = OpenSqliteWarehouse(dir.path() + "/file");
  REQUIRE_FALSE(warehouse.ok());
  CHECK(warehouse.status().code() == Status::Code::kIOError);
  CHECK(warehouse.status().message().find(dir.path() + "/file") != std::string::npos);
}

TEST_CASE("SqliteWarehouse: full refresh, then incremental copies only rows above the watermark") {
  TempDir dir;
  std::unique_ptr<Warehouse> warehouse = Open(dir);
  SchemaFile source(WarehouseFolder(dir), kSource.catalog, kSource.schema);
  FillSource(source);

  Result<CopyResult> full = warehouse->Copy(Request(std::nullopt));
  REQUIRE_MESSAGE(full.ok(), full.status().ToString());
  CHECK(full->rows_copied == 4);
  CHECK(full->target_rows == 4);
  CHECK(full->max_timestamp == "2025-03-15T14:30:00.5Z");
  CHECK(full->sql == "SELECT *, CAST('rocky' AS TEXT) AS \"_loaded_by\" FROM \"source\".\"orders\"");
  CHECK(warehouse->CountRows(kTarget).value() == 4);
  CHECK(warehouse->MaxTimestamp(kTarget, "_fivetran_synced").value() == "2025-03-15T14:30:00.5Z");
  CHECK(warehouse->MaxTimestamp(kSource, "_fivetran_synced").value() == "2025-03-15T14:30:00.5Z");

  SchemaFile target(WarehouseFolder(dir), kTarget.catalog, kTarget.schema);
  // The source's declared types are kept (constraints are not), plus the metadata column.
  CHECK(target.Rows("SELECT name, type FROM pragma_table_info('orders')") ==
        std::vector<std::string>{"id|INTEGER", "amount|DECIMAL(10,2)", "note|VARCHAR(20)",
                                 "_fivetran_synced|TEXT", "_loaded_by|TEXT"});
  CHECK(target.Rows("SELECT id, note, _loaded_by FROM orders ORDER BY id") ==
        std::vector<std::string>{"1|a|rocky", "2|b|rocky", "3|NULL|rocky", "4|d|rocky"});
  // Rollback journal, not WAL: no side files once the copy is done.
  CHECK(target.Rows("PRAGMA journal_mode") == std::vector<std::string>{"delete"});
  CHECK_FALSE(
      std::filesystem::exists(WarehouseFolder(dir) + "/acme_warehouse/staging__us_west__shopify.sqlite-wal"));

  // New rows in mixed spellings. Row 7 equals the watermark's instant: the inclusive boundary copies it (and
  // row 4, already there at that instant, is read again and skipped). Row 8 arrives late with an older
  // timestamp and row 9 has none: timestamp watermarks cannot see them (a known limitation), so neither is
  // copied. Rows 5 and 7 sort below the watermark's text, so the guard sends this copy to instants.
  source.Exec(
      "INSERT INTO orders VALUES (5, 50, 'e', '2025-03-15T17:00:00+02:00');"  // 15:00
      "INSERT INTO orders VALUES (6, 60, 'f', '2025-03-15T14:30:00.5000001Z');"
      "INSERT INTO orders VALUES (7, 70, 'g', '2025-03-15 10:30:00.5-04:00');"  // == 14:30:00.5
      "INSERT INTO orders VALUES (8, 80, 'h', '2025-03-15T13:00:00Z');"
      "INSERT INTO orders VALUES (9, 90, 'i', NULL);");
  Result<CopyResult> incremental = warehouse->Copy(Request(full->max_timestamp));
  REQUIRE_MESSAGE(incremental.ok(), incremental.status().ToString());
  CHECK(incremental->rows_copied == 3);
  CHECK(incremental->rows_replaced == 0);
  CHECK(incremental->source_rows == 9);
  CHECK(incremental->target_rows == 7);
  CHECK(incremental->max_timestamp == "2025-03-15T15:00:00Z");
  CHECK(incremental->cursor_compare == "instant");
  CHECK(incremental->sql ==
        "SELECT *, CAST('rocky' AS TEXT) AS \"_loaded_by\" FROM \"source\".\"orders\" "
        "WHERE likelihood(\"_fivetran_synced\" >= '2025-03-14', 0.001) AND rocky_ts(\"_fivetran_synced\") >= "
        "'2025-03-15T14:30:00.500000000Z'");
  CHECK(target.Rows("SELECT id FROM orders ORDER BY id") ==
        std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7"});

  // A full refresh replaces the target with exactly the source.
  target.Exec("INSERT INTO orders (id) VALUES (100)");
  full = warehouse->Copy(Request(std::nullopt));
  REQUIRE(full.ok());
  CHECK(full->rows_copied == 9);
  CHECK(full->target_rows == 9);
  CHECK(target.Rows("SELECT count(*) FROM orders WHERE id = 100") == std::vector<std::string>{"0"});
}

TEST_CASE("SqliteWarehouse: a source that gained a column fails the incremental copy with the way out") {
  TempDir dir;
  std::unique_ptr<Warehouse> warehouse = Open(dir);
  SchemaFile source(WarehouseFolder(dir), kSource.catalog, kSource.schema);
  FillSource(source);
  REQUIRE(warehouse->Copy(Request(std::nullopt)).ok());
  source.Exec(
      "ALTER TABLE orders ADD COLUMN vip INTEGER; INSERT INTO orders VALUES (5, 50, 'e', "
      "'2025-03-16T00:00:00Z', 1);");
  Result<CopyResult> copy = warehouse->Copy(Request("2025-03-15T14:30:00.5Z"));
  REQUIRE(!copy.ok());
  CHECK(copy.status().message().find("lacks (vip)") != std::string::npos);
  CHECK(copy.status().message().find("rocky run --full-refresh --table " + kTarget.Qualified()) !=
        std::string::npos);
  CHECK(warehouse->CountRows(kTarget).value() == 4);  // unchanged
  // The way out works: a full refresh takes the new column.
  REQUIRE(warehouse->Copy(Request(std::nullopt)).ok());
  CHECK(warehouse->CountRows(kTarget).value() == 5);
}

TEST_CASE("SqliteWarehouse: re-running the same incremental request duplicates nothing") {
  TempDir dir;
  std::unique_ptr<Warehouse> warehouse = Open(dir);
  SchemaFile source(WarehouseFolder(dir), kSource.catalog, kSource.schema);
  FillSource(source);
  REQUIRE(warehouse->Copy(Request(std::nullopt)).ok());
  source.Exec(
      "INSERT INTO orders VALUES (5, 50, 'e', '2025-03-16T00:00:00Z');"
      "INSERT INTO orders VALUES (6, 60, 'f', '2025-03-16T00:00:01Z');");

  // As after a crash that committed the copy but lost the watermark update: the same request runs again.
  const CopyRequest request = Request("2025-03-15T14:30:00.5Z");
  SchemaFile target(WarehouseFolder(dir), kTarget.catalog, kTarget.schema);
  std::vector<std::string> after_first;
  for (int run = 0; run < 2; ++run) {
    Result<CopyResult> copy = warehouse->Copy(request);
    REQUIRE_MESSAGE(copy.ok(), copy.status().ToString());
    CHECK(copy->rows_copied == (run == 0 ? 2 : 0));  // rows 5 and 6; row 4 at the watermark is already there
    CHECK(copy->rows_replaced == 0);
    CHECK(copy->target_rows == 6);
    CHECK(copy->max_timestamp == "2025-03-16T00:00:01Z");
    const std::vector<std::string> rows = target.Rows("SELECT * FROM orders ORDER BY id");
    if (run == 0) after_first = rows;
    CHECK(rows == after_first);
  }
  CHECK(target.Rows("SELECT count(*), count(DISTINCT id) FROM orders") == std::vector<std::string>{"6|6"});
}

TEST_CASE("SqliteWarehouse: a copy that fails midway leaves the target unchanged") {
  TempDir dir;
  std::unique_ptr<Warehouse> warehouse = Open(dir);
  SchemaFile source(WarehouseFolder(dir), kSource.catalog, kSource.schema);
  FillSource(source);
  REQUIRE(warehouse->Copy(Request(std::nullopt)).ok());
  SchemaFile target(WarehouseFolder(dir), kTarget.catalog, kTarget.schema);
  // A target row above the watermark, which the incremental copy deletes first and must restore on failure.
  target.Exec("INSERT INTO orders VALUES (50, 0, 'late', '2025-03-17T00:00:00Z', 'x')");
  const std::vector<std::string> before = target.Rows("SELECT * FROM orders ORDER BY id");

  source.Exec(
      "INSERT INTO orders VALUES (5, 50, 'e', '2025-03-16T00:00:00Z');"
      "INSERT INTO orders VALUES (6, 60, 'f', 'not a time');");
  for (const std::optional<std::string>& watermark :
       {std::optional<std::string>("2025-03-15T14:30:00.5Z"), std::optional<std::string>()}) {
    INFO(watermark.value_or("full refresh"));
    Result<CopyResult> copy = warehouse->Copy(Request(watermark));
    REQUIRE_FALSE(copy.ok());
    CHECK(copy.status().code() == Status::Code::kInvalidArgument);
    const std::string message = copy.status().message();
    CHECK(message.find(kSource.Qualified()) != std::string::npos);
    CHECK(message.find(kTarget.Qualified()) != std::string::npos);
    CHECK(message.find("'not a time' is not a timestamp") != std::string::npos);
    CHECK(target.Rows("SELECT * FROM orders ORDER BY id") == before);
    CHECK(target.Rows("SELECT name, type FROM pragma_table_info('orders')").size() == 5);
  }
  Result<std::optional<std::string>> max = warehouse->MaxTimestamp(kSource, "_fivetran_synced");
  REQUIRE_FALSE(max.ok());
  CHECK(max.status().code() == Status::Code::kInvalidArgument);
  CHECK(max.status().message().find("'not a time'") != std::string::npos);

  // A SQL error (the target lost the metadata column) rolls back too, with SQLite's message.
  target.Exec(
      "CREATE TABLE narrow AS SELECT id, amount, note, _fivetran_synced FROM orders;"
      "DROP TABLE orders; ALTER TABLE narrow RENAME TO orders;");
  source.Exec("DELETE FROM orders WHERE id = 6");
  const std::vector<std::string> narrow = target.Rows("SELECT * FROM orders ORDER BY id");
  Result<CopyResult> copy = warehouse->Copy(Request("2025-03-15T14:30:00.5Z"));
  REQUIRE_FALSE(copy.ok());
  CHECK(copy.status().message().find("_loaded_by") != std::string::npos);
  CHECK(copy.status().message().find(kTarget.Qualified()) != std::string::npos);
  CHECK(target.Rows("SELECT * FROM orders ORDER BY id") == narrow);
}

TEST_CASE("SqliteWarehouse: missing source, column or target are named; nothing is created") {
  TempDir dir;
  std::unique_ptr<Warehouse> warehouse = Open(dir);

  Result<CopyResult> copy = warehouse->Copy(Request(std::nullopt));
  REQUIRE_FALSE(copy.ok());
  CHECK(copy.status().code() == Status::Code::kNotFound);
  CHECK(copy.status().message().find("source table " + kSource.Qualified() + " not found") !=
        std::string::npos);

  SchemaFile source(WarehouseFolder(dir), kSource.catalog, kSource.schema);
  source.Exec("CREATE TABLE other (x)");
  copy = warehouse->Copy(Request(std::nullopt));
  REQUIRE_FALSE(copy.ok());
  CHECK(copy.status().code() == Status::Code::kNotFound);
  CHECK(copy.status().message().find("source table " + kSource.Qualified() + " not found") !=
        std::string::npos);

  source.Exec("CREATE TABLE orders (id INTEGER, synced TEXT)");
  copy = warehouse->Copy(Request(std::nullopt));
  REQUIRE_FALSE(copy.ok());
  CHECK(copy.status().code() == Status::Code::kNotFound);
  CHECK(copy.status().message().find("column '_fivetran_synced' not found in source table " +
                                     kSource.Qualified()) != std::string::npos);
  CHECK(warehouse->ListSchemas(kTarget.catalog).status().code() == Status::Code::kNotFound);

  Result<std::optional<std::string>> max = warehouse->MaxTimestamp(kSource, "_fivetran_synced");
  CHECK(max.status().code() == Status::Code::kNotFound);
  CHECK(max.status().message().find("'_fivetran_synced'") != std::string::npos);
  max = warehouse->MaxTimestamp({"fivetran_catalog", "src__acme__us_west__shopify", "nope"}, "x");
  CHECK(max.status().code() == Status::Code::kNotFound);
  CHECK(max.status().message().find("fivetran_catalog.src__acme__us_west__shopify.nope") !=
        std::string::npos);
  Result<uint64_t> count = warehouse->CountRows({"fivetran_catalog", "missing", "orders"});
  CHECK(count.status().code() == Status::Code::kNotFound);
  CHECK(count.status().message().find("fivetran_catalog.missing.orders") != std::string::npos);
  CHECK(warehouse->MaxTimestamp(kSource, "synced").value() == std::nullopt);  // empty table

  // Incremental into a target that does not exist: refused, since copying only the window would lose rows.
  source.Exec(
      "DROP TABLE orders; CREATE TABLE orders (id INTEGER, _fivetran_synced TEXT);"
      "INSERT INTO orders VALUES (1, NULL)");
  CHECK(warehouse->MaxTimestamp(kSource, "_fivetran_synced").value() == std::nullopt);  // only NULLs
  copy = warehouse->Copy(Request("2025-03-15T14:30:00Z"));
  REQUIRE_FALSE(copy.ok());
  CHECK(copy.status().code() == Status::Code::kNotFound);
  CHECK(copy.status().message().find("target table " + kTarget.Qualified() + " does not exist") !=
        std::string::npos);
  CHECK_FALSE(warehouse->TableExists(kTarget).value());

  // A full refresh of a table whose timestamps are all NULL has no max timestamp.
  copy = warehouse->Copy(Request(std::nullopt));
  REQUIRE(copy.ok());
  CHECK(copy->target_rows == 1);
  CHECK(copy->max_timestamp == std::nullopt);
}

TEST_CASE("SqliteWarehouse: invalid requests are refused before any file is touched") {
  TempDir dir;
  std::unique_ptr<Warehouse> warehouse = Open(dir);
  SchemaFile source(WarehouseFolder(dir), kSource.catalog, kSource.schema);
  FillSource(source);

  auto refused = [&](const CopyRequest& request, std::string_view needle) {
    Result<CopyResult> copy = warehouse->Copy(request);
    REQUIRE_FALSE(copy.ok());
    CHECK(copy.status().code() == Status::Code::kInvalidArgument);
    CHECK_MESSAGE(copy.status().message().find(needle) != std::string::npos, copy.status().message());
  };
  CopyRequest request = Request(std::nullopt);
  request.target.catalog = "../escape";
  refused(request, "'../escape'");
  request = Request(std::nullopt);
  request.target.schema = "a.b";
  refused(request, "'a.b'");
  request = Request("yesterday");
  refused(request, "watermark 'yesterday'");
  request = Request(std::nullopt);
  request.metadata_columns = {{"_x", "STRING) AS y, (SELECT 1", "NULL"}};
  refused(request, "invalid type");
  request = Request(std::nullopt);
  request.timestamp_column = "";
  refused(request, "timestamp column");
  request = Request(std::nullopt);
  request.target = {kSource.catalog, kSource.schema, "copy"};
  refused(request, "same schema");
  CHECK(warehouse->ListSchemas(kTarget.catalog).status().code() == Status::Code::kNotFound);
}

TEST_CASE("SqliteWarehouse: odd table and column names are quoted") {
  TempDir dir;
  std::unique_ptr<Warehouse> warehouse = Open(dir);
  SchemaFile source(WarehouseFolder(dir), "src", "s-1");
  source.Exec(
      "CREATE TABLE \"my \"\"table\" (\"select\" INTEGER, \"synced at\" TEXT,"
      " twice INTEGER GENERATED ALWAYS AS (\"select\" * 2));"
      "INSERT INTO \"my \"\"table\" VALUES (1, '2025-01-01T00:00:00Z'), (2, '2025-01-02T00:00:00Z')");
  CopyRequest request;
  request.source = {"src", "s-1", "my \"table"};
  request.target = {"dst", "s-2", "my \"table"};
  request.timestamp_column = "synced at";
  request.metadata_columns = {{"from", "BIGINT", "7"}};
  Result<CopyResult> copy = warehouse->Copy(request);
  REQUIRE_MESSAGE(copy.ok(), copy.status().ToString());
  CHECK(copy->target_rows == 2);
  request.watermark = "2025-01-01T00:00:00Z";
  copy = warehouse->Copy(request);
  REQUIRE_MESSAGE(copy.ok(), copy.status().ToString());
  CHECK(copy->rows_copied == 0);  // both rows are at or above the watermark, and both already there
  CHECK(copy->rows_replaced == 0);
  CHECK(copy->max_timestamp == "2025-01-02T00:00:00Z");
  CHECK(warehouse->ListTables("dst", "s-2").value() == std::vector<std::string>{"my \"table"});
  CHECK(warehouse->CountRows(request.target).value() == 2);
  // The generated column's values are copied as plain values.
  SchemaFile target(WarehouseFolder(dir), "dst", "s-2");
  CHECK(target.Rows("SELECT \"select\", twice, \"from\" FROM \"my \"\"table\" ORDER BY 1") ==
        std::vector<std::string>{"1|2|7", "2|4|7"});
}

TEST_CASE("SqliteWarehouse: a copy waits for a concurrent reader instead of failing") {
  TempDir dir;
  std::unique_ptr<Warehouse> warehouse = Open(dir);
  SchemaFile source(WarehouseFolder(dir), kSource.catalog, kSource.schema);
  FillSource(source);
  REQUIRE(warehouse->Copy(Request(std::nullopt)).ok());

  std::promise<void> reading;
  std::thread reader([&] {
    SchemaFile target(WarehouseFolder(dir), kTarget.catalog, kTarget.schema);
    target.Exec("BEGIN; SELECT count(*) FROM orders;");  // holds a SHARED lock until COMMIT
    reading.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    target.Exec("COMMIT");
  });
  reading.get_future().wait();
  Result<CopyResult> copy = warehouse->Copy(Request(std::nullopt));
  reader.join();
  REQUIRE_MESSAGE(copy.ok(), copy.status().ToString());
  CHECK(copy->target_rows == 4);
}

}  // namespace
}  // namespace rocky::warehouse
