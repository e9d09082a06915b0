// The SQL each dialect renders, pinned exactly.
#include "rocky/warehouse/dialect.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace rocky::warehouse {
namespace {

SelectSpec OrdersSpec() {
  SelectSpec spec;
  spec.source = {"fivetran_catalog", "src__acme__us_west__shopify", "orders"};
  spec.timestamp_column = "_fivetran_synced";
  spec.watermark = "2025-03-15T14:30:00Z";
  spec.metadata_columns = {{"_loaded_by", "STRING", "NULL"}};
  return spec;
}

TEST_CASE("Databricks dialect: golden incremental and full-refresh SELECT") {
  const std::unique_ptr<SqlDialect> dialect = MakeDatabricksDialect();
  CHECK(dialect->name() == "databricks");
  SelectSpec spec = OrdersSpec();
  CHECK(
      dialect->RenderSelect(spec) ==
      "SELECT *, CAST(NULL AS STRING) AS _loaded_by FROM fivetran_catalog.src__acme__us_west__shopify.orders "
      "WHERE _fivetran_synced > TIMESTAMP '2025-03-15T14:30:00Z'");
  spec.watermark.reset();
  CHECK(dialect->RenderSelect(spec) ==
        "SELECT *, CAST(NULL AS STRING) AS _loaded_by FROM "
        "fivetran_catalog.src__acme__us_west__shopify.orders");
  spec.metadata_columns.clear();
  CHECK(dialect->RenderSelect(spec) == "SELECT * FROM fivetran_catalog.src__acme__us_west__shopify.orders");
}

TEST_CASE("Databricks dialect: backticks only for names that need them; literals escaped") {
  const std::unique_ptr<SqlDialect> dialect = MakeDatabricksDialect();
  SelectSpec spec;
  spec.source = {"my-catalog", "1schema", "we`ird table"};
  spec.timestamp_column = "synced at";
  spec.watermark = "it's\\";
  spec.metadata_columns = {{"loaded-by", "STRING", "'rocky'"}, {"_v", "INT", "1"}};
  CHECK(dialect->RenderSelect(spec) ==
        "SELECT *, CAST('rocky' AS STRING) AS `loaded-by`, CAST(1 AS INT) AS _v FROM `my-catalog`.`1schema`."
        "`we``ird table` WHERE `synced at` > TIMESTAMP 'it\\'s\\\\'");
}

TEST_CASE("SQLite dialect: reads schema alias source, compares through rocky_ts(), maps types") {
  const std::unique_ptr<SqlDialect> dialect = MakeSqliteDialect();
  CHECK(dialect->name() == "sqlite");
  SelectSpec spec = OrdersSpec();
  // The date bound (the day before) keeps the read on an index; rocky_ts() makes it exact.
  CHECK(dialect->RenderSelect(spec) ==
        "SELECT *, CAST(NULL AS TEXT) AS \"_loaded_by\" FROM \"source\".\"orders\" "
        "WHERE \"_fivetran_synced\" >= '2025-03-14' AND rocky_ts(\"_fivetran_synced\") >= "
        "'2025-03-15T14:30:00.000000000Z'");
  // Any spelling of the same instant renders the same literal.
  spec.watermark = "2025-03-15 16:30:00+02:00";
  CHECK(dialect->RenderSelect(spec).ends_with(">= '2025-03-15T14:30:00.000000000Z'"));
  spec.watermark.reset();
  spec.metadata_columns = {
      {"n", "BIGINT", "42"}, {"d", "DECIMAL(10,2)", "1.5"}, {"x", "DOUBLE", "0.5"}, {"q\"", "BOOLEAN", "1"}};
  spec.source.table = "or\"ders";
  CHECK(dialect->RenderSelect(spec) ==
        "SELECT *, CAST(42 AS INTEGER) AS \"n\", CAST(1.5 AS NUMERIC) AS \"d\", CAST(0.5 AS REAL) AS \"x\", "
        "CAST(1 AS INTEGER) AS \"q\"\"\" FROM \"source\".\"or\"\"ders\"");
  // A watermark that is not a timestamp is left for rocky_ts() to reject when the SQL runs.
  spec.watermark = "yesterday'";
  spec.metadata_columns.clear();
  CHECK(dialect->RenderSelect(spec) ==
        "SELECT * FROM \"source\".\"or\"\"ders\" WHERE rocky_ts(\"_fivetran_synced\") >= "
        "rocky_ts('yesterday''')");
}

TEST_CASE("Databricks dialect: MERGE INTO ... USING ... ON keys, pinned by a golden file") {
  const std::unique_ptr<SqlDialect> dialect = MakeDatabricksDialect();
  SelectSpec select = OrdersSpec();
  select.lookback_seconds = 3600;
  const std::string merge = dialect->RenderMerge(
      MergeSpec{select, {"acme_warehouse", "staging__us_west__shopify", "orders"}, {"id", "order line"}});
  const char* root = std::getenv("ROCKY_SOURCE_ROOT");
  REQUIRE_MESSAGE(root != nullptr, "ROCKY_SOURCE_ROOT is not set");
  std::ifstream golden(std::string(root) + "/tests/warehouse/golden/databricks_merge.sql");
  REQUIRE(golden.good());
  std::string expected;
  std::getline(golden, expected);
  CHECK(merge == expected);
}

TEST_CASE("Integer cursors: compared as numbers, lookback shifts a timestamp window") {
  SelectSpec spec = OrdersSpec();
  spec.cursor_type = config::CursorType::kInteger;
  spec.timestamp_column = "version";
  spec.watermark = "9007199254740993";  // above 2^53: kept exactly, never through a double
  spec.metadata_columns.clear();
  CHECK(MakeSqliteDialect()->RenderSelect(spec) ==
        "SELECT * FROM \"source\".\"orders\" WHERE \"version\" >= 9007199254740993");
  CHECK(MakeDatabricksDialect()->RenderSelect(spec) ==
        "SELECT * FROM fivetran_catalog.src__acme__us_west__shopify.orders WHERE version > 9007199254740993");
  SelectSpec late = OrdersSpec();
  late.metadata_columns.clear();
  late.lookback_seconds = 7200;
  CHECK(MakeSqliteDialect()->RenderSelect(late) ==
        "SELECT * FROM \"source\".\"orders\" WHERE \"_fivetran_synced\" >= '2025-03-14' AND "
        "rocky_ts(\"_fivetran_synced\") >= '2025-03-15T12:30:00.000000000Z'");
}

}  // namespace
}  // namespace rocky::warehouse
