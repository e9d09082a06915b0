// The warehouse replication reads from and writes to, behind one interface so that adapters for cloud
// warehouses can come later. The embedded default is SQLite (sqlite_warehouse.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dialect.h"
#include "table_ref.h"

namespace rocky::warehouse {

// A table's exact row count remembered with the version of the storage it was counted on, so that a later
// copy that finds the storage at that same version takes the count instead of walking the table again. The
// version is the warehouse's own opaque text (SQLite: the schema file's identity, size, modification time and
// header change counter, which every committed write moves; a count is reused only when the version read in
// the copy's transaction equals it exactly. PostgreSQL: the table's identity and the snapshot it was counted
// in; a count is reused only when rocky's change marks show that no transaction changed the table since,
// postgres_warehouse.h), so a table that changed in any way is counted again.
struct RowCountMemo {
  std::string version{};
  uint64_t rows = 0;
};

// One table's copy, done in ONE target transaction so that a run killed at any instant leaves the target
// either before or after the whole copy, never in between.
// Members have default initializers so designated initializers may leave any of them out.
struct CopyRequest {
  TableRef source{};
  TableRef target{};
  std::string timestamp_column{};  // the cursor column (Rocky's key name, whatever cursor_type says)
  config::CursorType cursor_type = config::CursorType::kTimestamp;
  config::Strategy strategy = config::Strategy::kIncremental;
  std::vector<std::string>
      merge_keys{};  // kMerge: the columns of the target's unique index and of the upsert
  // nullopt: full refresh — the target is created or replaced by all the source's rows (keeping the source's
  // primary key and NOT NULL constraints), with an index on the cursor column (and a unique one on
  // merge_keys).
  // A watermark (normalized UTC timestamp, or an integer's decimal text): the WINDOW is the source's rows
  // whose cursor is at or above it (for kMerge, at or above it minus lookback_seconds). The boundary is
  // inclusive because the watermark is the newest value already copied: a row committed later with that
  // same value (two connector batches in one second) would otherwise never be copied.
  //   kIncremental: the window's rows that the target does not already hold are appended (a multiset
  //     difference on the source's columns: SELECT ... EXCEPT SELECT ..., each row numbered among its
  //     identical copies), so re-reading the boundary duplicates nothing and NOTHING is deleted: rows the
  //     source no longer has (a truncation, a resync) stay in the target.
  //   kMerge: the window is upserted on merge_keys (INSERT ... ON CONFLICT DO UPDATE), a row replacing its
  //     target row only when its cursor is not older.
  // Rows that arrive late with a cursor below the window, or with a NULL cursor, are not copied (the
  // row_count check shows the difference; lookback_seconds or a full refresh takes them).
  std::optional<std::string> watermark{};
  uint64_t lookback_seconds = 0;  // kMerge with a timestamp cursor only (refused otherwise)
  std::vector<config::MetadataColumn> metadata_columns{};
  // Count the source's and the target's rows (CopyResult::source_rows/target_rows) for the row_count check
  // and the anomaly history. Each count walks every leaf page of the table's smallest index, the only
  // work of an incremental copy that grows with the table; false skips it (both counts are then 0).
  bool count_rows = true;
  // With count_rows: counts a previous copy remembered (CopyResult::*_rows_memo), used instead of a walk when
  // their version is the table's current one. Wrong or stale memos cost nothing but the walk.
  std::optional<RowCountMemo> source_rows_memo{};
  std::optional<RowCountMemo> target_rows_memo{};
  // Diagnostics for tests: record EXPLAIN QUERY PLAN of every statement the copy runs (CopyResult::plans).
  bool explain = false;
};

// How a copy compared the cursor (CopyResult::cursor_compare), decided per table on every run:
//   "text":    the bare column against the watermark spelled as the target's newest value (index range)
//   "instant": an index range from a date bound, then rocky_ts() on the rows in it (mixed spellings)
//   "integer": the bare column against the integer (index range)
//   "full":    no comparison (full refresh)

struct StatementPlan {
  // "count" (a whole-table COUNT(*) for the row_count check) and "full" (a full refresh's copy) read whole
  // tables by design; "schema" is DDL; "window" (the incremental read), "guard" (the text comparison's
  // two range counts) and "max" (the new watermark) are served by indexes.
  std::string purpose;
  std::string sql;
  std::vector<std::string> plan;  // EXPLAIN QUERY PLAN detail lines
};

struct CopyResult {
  uint64_t rows_copied = 0;    // rows written into the target: inserted, plus (kMerge) updated in place
  uint64_t rows_replaced = 0;  // kMerge: of rows_copied, target rows replaced by a newer version
  // With CopyRequest::count_rows (else 0): the target's row count after the copy and the source's (the
  // snapshot copied), both read in the copy's transaction.
  uint64_t target_rows = 0;
  uint64_t source_rows = 0;
  // With count_rows: the counts above with the version they hold for, for the next copy's request; nullopt
  // when the warehouse cannot tell a version (for SQLite: a file in WAL mode, or a target another writer
  // committed to between this copy's commit and the version's read).
  std::optional<RowCountMemo> source_rows_memo;
  std::optional<RowCountMemo> target_rows_memo;
  // With target_rows_memo, when this copy's commit changed the target's storage: its version just before the
  // copy (target_rows_memo->version is the one just after), only that commit lying between them. The copy
  // wrote no other table, so a count of another table remembered at this version holds at the new one too.
  std::optional<std::string> target_version_before;
  // The largest cursor value in the target's window (the whole target for a full refresh), in the state
  // store's form (timestamps: RFC 3339 UTC with `Z`, trailing fraction zeros dropped; integers: decimal);
  // nullopt when the window is empty or every cursor in it is NULL. The runner makes the new watermark from
  // it, never from the wall clock, and never moves a watermark back.
  std::optional<std::string> max_timestamp;
  std::string cursor_compare;        // see above
  std::string sql;                   // the SELECT that reads the source (the dialect's rendering)
  std::vector<StatementPlan> plans;  // when CopyRequest::explain
  // What the copy could not do that the user should know about, though the copy itself succeeded and its
  // counts are exact (PostgreSQL: a source whose changes rocky was asked to mark but cannot, and why).
  std::vector<std::string> warnings;
};

// An index that would let incremental reads of a source table be served by an index (no full scan).
struct IndexAdvice {
  std::string create_index;  // the statement that adds it, to run in `location`
  std::string location;      // where to run it (for SQLite: the schema's file)
};

class Warehouse {
 public:
  virtual ~Warehouse() = default;
  virtual const SqlDialect& dialect() const = 0;

  // Schemas of a catalog, sorted; an unknown catalog is kNotFound naming it.
  virtual Result<std::vector<std::string>> ListSchemas(std::string_view catalog) = 0;
  // Tables of a schema, sorted; an unknown schema is kNotFound naming catalog.schema.
  virtual Result<std::vector<std::string>> ListTables(std::string_view catalog, std::string_view schema) = 0;
  virtual Result<bool> TableExists(const TableRef& table) = 0;
  // kNotFound naming the table when it does not exist.
  virtual Result<uint64_t> CountRows(const TableRef& table) = 0;
  // Largest value of the cursor `column`, in the state store's form (as CopyResult::max_timestamp), read
  // through an index on the column when there is one; nullopt when the table has no non-NULL value.
  // kNotFound for a missing table or column; kInvalidArgument naming the value when it is not a timestamp
  // (or an integer, for kInteger).
  virtual Result<std::optional<std::string>> MaxTimestamp(
      const TableRef& table, std::string_view column,
      config::CursorType type = config::CursorType::kTimestamp) = 0;
  // nullopt when an index serves range reads on `column` of `table` (an index whose first column it is, not
  // partial; or the rowid, for an INTEGER PRIMARY KEY); otherwise the index to create. kNotFound for a
  // missing table or column.
  virtual Result<std::optional<IndexAdvice>> CursorIndexAdvice(const TableRef& table,
                                                               std::string_view column) = 0;
  // Performs the copy (see CopyRequest). On any error the target is unchanged and the status names the
  // table and what failed (missing source, SQL error with SQLite's message, a value that is not a timestamp).
  virtual Result<CopyResult> Copy(const CopyRequest& request) = 0;
};

}  // namespace rocky::warehouse
