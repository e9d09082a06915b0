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

// One table's copy, done in ONE target transaction so that a run killed at any instant leaves the target
// either before or after the whole copy, never in between.
struct CopyRequest {
  TableRef source;
  TableRef target;
  std::string timestamp_column;
  // nullopt: full refresh — the target is created or replaced by all the source's rows.
  // A watermark (normalized UTC): incremental — target rows with a timestamp AT OR above it are deleted and
  // the source's rows at or above it inserted, in the same transaction. The boundary is inclusive because
  // the watermark is the newest timestamp already copied: a row committed later with that same timestamp
  // (two connector batches in one second) would otherwise never be copied; replacing the window makes the
  // re-copy of the boundary rows harmless. Re-running the same request after a crash that lost the
  // watermark update therefore duplicates nothing. Rows that arrive late with a timestamp below the
  // watermark, or with no timestamp, are not copied: a limitation of timestamp watermarks (a full refresh
  // takes them, and the row_count check shows the difference).
  std::optional<std::string> watermark;
  std::vector<config::MetadataColumn> metadata_columns;
};

struct CopyResult {
  uint64_t rows_copied = 0;    // rows inserted into the target by this copy
  uint64_t rows_replaced = 0;  // incremental: target rows at or above the watermark deleted first (re-copied)
  uint64_t target_rows = 0;    // the target's row count after the copy, read in the same transaction
  uint64_t source_rows = 0;    // the source's row count, read in the same transaction (the snapshot copied)
  // The largest timestamp now in the target, in the state store's form (state::NormalizeTimestamp: RFC 3339
  // UTC with `Z`, trailing fraction zeros dropped); nullopt when the target is empty or every timestamp is
  // NULL. This, not the wall clock, becomes the new watermark.
  std::optional<std::string> max_timestamp;
  std::string sql;            // the SELECT that was executed (the dialect's rendering)
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
  // Largest value of `column`, in the state store's form (as CopyResult::max_timestamp); nullopt when the
  // table has no non-NULL value. kNotFound for a missing table or column; kInvalidArgument naming the value when one is not a timestamp.
  virtual Result<std::optional<std::string>> MaxTimestamp(const TableRef& table, std::string_view column) = 0;
  // Performs the copy (see CopyRequest). On any error the target is unchanged and the status names the
  // table and what failed (missing source, SQL error with SQLite's message, a value that is not a timestamp).
  virtual Result<CopyResult> Copy(const CopyRequest& request) = 0;
};

}  // namespace rocky::warehouse
