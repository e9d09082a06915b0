// How a warehouse spells the queries replication runs. The SQLite dialect's SQL is what `rocky run` executes
// on the embedded warehouse; the Databricks dialect only renders (for `rocky plan` and the golden test) until
// that adapter exists.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rocky/config/config.h"
#include "table_ref.h"

namespace rocky::warehouse {

// What to read from a source table.
struct SelectSpec {
  TableRef source;
  std::string timestamp_column;
  // Normalized UTC watermark ("2025-03-15T14:30:00Z"): only rows whose timestamp is greater are selected
  // (Databricks, as Rocky documents it), or greater or equal (SQLite, whose copy replaces that window).
  // nullopt: every row (full refresh).
  std::optional<std::string> watermark;
  std::vector<config::MetadataColumn> metadata_columns;
};

class SqlDialect {
 public:
  virtual ~SqlDialect() = default;
  virtual std::string_view name() const = 0;  // "sqlite", "databricks"
  // The SELECT that reads the rows to copy, exactly as executed (or as it would be, for dialects that only
  // render). Identifiers are quoted where the dialect needs it (Databricks: only names that are not
  // [A-Za-z_][A-Za-z0-9_]*; SQLite: always, so keywords are safe); string literals are always escaped.
  // Metadata column values are SQL expressions from the config and are embedded as written.
  virtual std::string RenderSelect(const SelectSpec& spec) const = 0;
};

// SQLite: the source table is read through the schema alias "source" (the warehouse attaches the source
// schema's file under that name, see sqlite_warehouse.h) and timestamps compare through the rocky_ts() SQL
// function the warehouse registers, so that any ISO-8601 spelling of an instant compares correctly.
std::unique_ptr<SqlDialect> MakeSqliteDialect();
// Databricks SQL: catalog.schema.table, TIMESTAMP literals, CAST(value AS type) metadata columns.
std::unique_ptr<SqlDialect> MakeDatabricksDialect();

}  // namespace rocky::warehouse
