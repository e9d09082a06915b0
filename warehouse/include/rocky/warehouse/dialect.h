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
  // Normalized UTC watermark ("2025-03-15T14:30:00Z") or an integer cursor's value: only rows whose cursor is
  // greater are selected (Databricks, as Rocky documents it), or greater or equal (SQLite, whose copy skips
  // the rows the target already holds). nullopt: every row (full refresh).
  std::optional<std::string> watermark;
  std::vector<config::MetadataColumn> metadata_columns;
  config::CursorType cursor_type = config::CursorType::kTimestamp;
  uint64_t lookback_seconds = 0;  // merge: the window starts this long before the watermark
};

// An upsert of a source's rows into a target on key columns (strategy = "merge").
struct MergeSpec {
  SelectSpec select;  // the rows to merge
  TableRef target;
  std::vector<std::string> merge_keys;
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
  // The statement that upserts RenderSelect(spec.select) into spec.target on spec.merge_keys.
  // Databricks: MERGE INTO target USING (select) ON keys WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN
  // INSERT *. SQLite: INSERT INTO target SELECT ... ON CONFLICT (keys) DO UPDATE (the warehouse runs its own,
  // with the column lists it reads from the source; this rendering is what `rocky plan` shows).
  virtual std::string RenderMerge(const MergeSpec& spec) const = 0;
};

// SQLite: the source table is read through the schema alias "source" (the warehouse attaches the source
// schema's file under that name, see sqlite_warehouse.h). Timestamps compare as instants, served by an
// index: `col >= 'YYYY-MM-DD' AND rocky_ts(col) >= 'W'` (the date bound is the day before the watermark,
// which no spelling of a later instant sorts below). A run may use the equivalent bare text comparison
// instead when the data allows it (see sqlite_warehouse.h).
std::unique_ptr<SqlDialect> MakeSqliteDialect();
// Databricks SQL: catalog.schema.table, TIMESTAMP literals, CAST(value AS type) metadata columns.
std::unique_ptr<SqlDialect> MakeDatabricksDialect();

}  // namespace rocky::warehouse
