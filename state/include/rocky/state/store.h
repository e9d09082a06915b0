// The state store: what rocky remembers between runs (watermarks, row-count history, run history), kept in
// one engine database file. Layers call downward only: cli -> state -> engine.
//
//   auto store = StateStore::Open(".rocky-state.redb", StoreOptions{.mode = OpenMode::kReadWrite});
//   (*store)->SetWatermark("acme.staging.orders", "2025-03-15T14:30:00Z");
//
// Every record is JSON inside the engine's tables:
//   watermarks     "catalog.schema.table" -> {"last_value": T, "updated_at": T}
//   check_history  "catalog.schema.table" -> [{"count": N, "timestamp": T}, ...] oldest first, capped
//   run_history    20-digit sequence number -> {"id", "started_at", "finished_at", "status", "tables_copied",
//                  "tables_failed", "anomalies"} (the sequence keeps runs in append order)
//   plans          plan id -> {"created_at": T, "plan": "<the planner's JSON, as a string>"}; the newest
//                  kMaxStoredPlans are kept
//   metadata       "schema_version" -> u32, 4 bytes little-endian
// Timestamps are stored as NormalizeTimestamp returns them (UTC, `Z`).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rocky/base/status.h"

namespace rocky::base {
class JsonWriter;
}  // namespace rocky::base

namespace rocky::engine {
class Database;
class WriteTransaction;
}  // namespace rocky::engine

namespace rocky::state {

using base::Result;
using base::Status;

// The state-schema version this build reads and writes. A file stamped with a larger one is refused, by
// readers too, because its records may mean something this build does not know.
inline constexpr uint32_t kSchemaVersion = 1;
// Plans kept for `rocky apply`; saving one more drops the oldest, so the file does not grow with every plan.
inline constexpr size_t kMaxStoredPlans = 20;
// The file the CLI uses when --state-path is not given (relative to the working directory).
inline constexpr std::string_view kDefaultStatePath = ".rocky-state.redb";

struct Watermark {
  std::string table;       // catalog.schema.table
  std::string last_value;  // the replicated column's largest value seen, UTC
  std::string updated_at;  // when the watermark was written, UTC
};

struct CheckEntry {
  uint64_t count = 0;
  std::string timestamp;
};

// A table's exact row count with the version of the warehouse storage it was counted on (the warehouse's
// opaque text, warehouse::RowCountMemo): a cache the runner hands back to the warehouse, which reuses the
// count only while the storage is still at that version. Stored in the `row_counts` table
// (format-spec/STATE.md).
struct RememberedRowCount {
  std::string version;
  uint64_t rows = 0;
};

struct TableChecks {
  std::string table;
  std::vector<CheckEntry> entries;  // oldest first
};

// Members have default initializers so designated initializers may leave any of them out.
struct RunRecord {
  std::string id{};
  std::string started_at{};
  std::string finished_at{};  // empty while the run is going
  std::string status{};       // chosen by the runner: "running", "success", "partial_failure", "crashed", ...
  uint64_t tables_copied = 0;
  uint64_t tables_failed = 0;
  uint64_t anomalies = 0;
};

// Everything a store holds, as export writes it and import reads it.
struct StateSnapshot {
  std::optional<uint32_t> schema_version;  // nullopt: no file, or one that predates versioning
  std::vector<Watermark> watermarks;       // sorted by table
  std::vector<TableChecks> check_history;  // sorted by table
  std::vector<RunRecord> run_history;      // append order
};

enum class OpenMode : unsigned char { kReadOnly, kReadWrite };

struct StoreOptions {
  OpenMode mode = OpenMode::kReadOnly;
  // kReadWrite: how long Open keeps retrying while another process holds the writer lock. A run of rocky
  // holds it for seconds at most, so a short wait spares scripts a spurious failure.
  std::chrono::milliseconds busy_timeout{2000};
  std::chrono::milliseconds busy_retry_interval{50};
  // Entries kept per table in check_history; the oldest are dropped first.
  size_t check_history_cap = 10;
  // Source of updated_at; tests replace it. Empty means the system clock.
  std::function<std::chrono::system_clock::time_point()> clock{};
};

// True when `table` has the form catalog.schema.table: a non-empty catalog and schema without dots, then a
// non-empty table name, which may contain dots ("acme.staging.weird.a.b" is table "weird.a.b").
bool IsQualifiedTableName(std::string_view table);

class StateStore {
 public:
  // Opens the state file. kReadOnly never modifies the file nor waits for a writer, and a missing file opens
  // as an empty store (SchemaVersionOnDisk() nullopt). kReadWrite creates the file (0600, by the engine) and
  // its parent folders, retries while the file is locked by another process, then fails naming that
  // process. Either mode fails, changing nothing, on a directory, a corrupt or foreign file, or a file whose
  // schema version is newer than kSchemaVersion.
  static Result<std::unique_ptr<StateStore>> Open(const std::string& path, const StoreOptions& options);

  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  const std::string& path() const { return path_; }

  // The open database, for what works on the whole file while the store holds it (a consistent snapshot for
  // an upload between tables: the engine opens a file once per process, so it cannot be reopened by path
  // meanwhile). Null for a read-only store over a missing file. Owned by the store.
  engine::Database* database() { return db_.get(); }

  // The version stamped in the file; nullopt for a missing file or one no write has stamped yet.
  Result<std::optional<uint32_t>> SchemaVersionOnDisk();

  // Sorted by table.
  Result<std::vector<Watermark>> ListWatermarks();
  // One stored watermark, viewed in place; the views are valid only during the callback.
  struct WatermarkView {
    std::string_view table;
    std::string_view last_value;
    std::string_view updated_at;
  };
  // Calls `visit` for every watermark whose table name starts with `prefix` (every one when it is empty), in
  // table order, from one snapshot, reading only that range of the table. Memory stays flat whatever the
  // number of watermarks (nothing is collected). Stops at, and returns, the first error of the read, of a
  // record (as ListWatermarks would report it) or of `visit`.
  Status ForEachWatermark(std::string_view prefix, const std::function<Status(const WatermarkView&)>& visit);
  Result<std::optional<Watermark>> GetWatermark(std::string_view table);
  // Sets or moves the watermark of `table` (catalog.schema.table) to `last_value` (any accepted timestamp,
  // stored normalized, or an integer cursor's value, kept exactly: NormalizeWatermarkValue); updated_at is
  // the time of this write. Returns the stored record.
  Result<Watermark> SetWatermark(std::string_view table, std::string_view last_value);
  // kNotFound naming the table when it has no watermark (nothing is written then).
  Status DeleteWatermark(std::string_view table);
  // Returns how many were removed.
  Result<uint64_t> DeleteAllWatermarks();

  // Appends a row count to the table's history, dropping the oldest beyond check_history_cap.
  Status AppendCheck(std::string_view table, uint64_t count, std::string_view timestamp);
  // Oldest first; empty when the table has none.
  Result<std::vector<CheckEntry>> CheckHistory(std::string_view table);

  // What RecordTableCopy stored.
  struct RecordedCopy {
    std::optional<Watermark> watermark;  // the watermark now stored, if any
    // Not OK when the row count could not be added because the table's check history cannot be read or
    // written (a damaged page of check_history): the watermark was saved without it, and this says why.
    Status history_error;
  };
  // What one table's finished copy leaves behind, written in ONE commit so that a crash never separates the
  // watermark from the row count it goes with. `last_value` nullopt keeps the current watermark (an empty
  // target has none to offer); `row_count` nullopt appends nothing to the check history. `history_cap`
  // overrides StoreOptions::check_history_cap when non-zero. A check history that cannot be read or written
  // does not cost the watermark: it is then saved alone, in a commit of its own, and history_error says why
  // (the copy is in the target; losing its watermark would make the next run copy it again for nothing).
  // `row_counts` (table name -> count) are remembered in the same commit; they are a cache, so when they
  // cannot be written (a damaged page of row_counts) the commit is made without them.
  Result<RecordedCopy> RecordTableCopy(
      std::string_view table, std::optional<std::string_view> last_value, std::optional<uint64_t> row_count,
      size_t history_cap = 0, const std::vector<std::pair<std::string, RememberedRowCount>>& row_counts = {});
  // The count remembered for a table (a source's or a target's `catalog.schema.table`), or nullopt.
  Result<std::optional<RememberedRowCount>> RowCountOf(std::string_view table);

  // Stores a plan under its id (replacing one with the same id), dropping the oldest beyond kMaxStoredPlans.
  Status SavePlan(std::string_view plan_id, std::string_view plan_json);
  // The plan's JSON as saved, or nullopt when no plan has that id.
  Result<std::optional<std::string>> LoadPlan(std::string_view plan_id);

  Status AppendRun(const RunRecord& run);
  // A run's record from its start, so that a run killed half way still leaves one: appends `run` (status
  // typically "running", finished_at empty) and returns its sequence number for FinishRun. In the same
  // commit, records an earlier writer left "running" become "crashed": only one writer exists at a time (the
  // lock), so none of them can still be going.
  Result<uint64_t> BeginRun(const RunRecord& run);
  // Replaces the record BeginRun returned `sequence` for (kNotFound when there is none).
  Status FinishRun(uint64_t sequence, const RunRecord& run);
  // Append order.
  Result<std::vector<RunRecord>> ListRuns();

  // Gives the file's free space back to the filesystem (engine::Database::Compact). First commits once (the
  // schema version stamped again), because the pages the last commit freed stay reserved until the next
  // commit (the previous commit, kept for crash recovery, still uses them) and Compact alone would find them
  // in use: right after `delete --all` it would shrink nothing. A file with only a few free pages (16) is
  // left as it is: that commit could only append its pages to a packed file. Requires kReadWrite.
  Status Compact();

  // Everything, from one read transaction; the first unreadable page or record fails the whole export.
  Result<StateSnapshot> Export();

  // What ExportSalvage could not read.
  struct SalvageReport {
    StateSnapshot snapshot;  // every entry that could be read and parsed
    // One sentence each, naming the table and the keys (or key range) lost and why; empty: nothing was lost.
    std::vector<std::string> unreadable;
    uint64_t entries_lost = 0;  // entries the tables say they hold that are not in the snapshot, when known
  };
  // Export for a damaged file: each table is read up to its first damage from the front and from the back,
  // so one damaged page loses only the entries on it; a record that does not parse is left out and named.
  // Fails only when the file has no readable commit at all (Open would have refused it).
  Result<SalvageReport> ExportSalvage();
  // Replaces the whole state with `snapshot` in one transaction, after validating all of it (table names,
  // timestamps, schema version). An error before the commit writes nothing; a failed commit says by its code
  // whether the import certainly did not happen or may have been kept (kOutcomeUnknown: the engine's
  // Commit()). When the file is damaged where the import
  // must drop the old tables (a page of check_history, say), the import is written to a new file beside it
  // (with the saved plans that can be read) which then replaces it by rename; the damaged file is kept under
  // kept_damaged_file() and this store holds the new one.
  // Takes the snapshot by value: a caller done with it moves it in, and the store normalizes it in place.
  Status Import(StateSnapshot snapshot);
  // Where the last Import kept the damaged file it replaced ("<path>.damaged-<UTC time>"); empty otherwise.
  const std::string& kept_damaged_file() const { return kept_damaged_file_; }

 private:
  StateStore(std::string path, StoreOptions options, std::unique_ptr<engine::Database> db);

  // A write transaction with the schema version checked and, on a version-less file, stamped (the
  // migrate-on-first-write rule), so every write goes through here.
  Result<std::unique_ptr<engine::WriteTransaction>> BeginWrite();
  Status RequireWritable() const;
  std::string Now() const;

  Status ImportIntoNewFile(const StateSnapshot& snapshot, const Status& damage);

  std::string path_;
  StoreOptions options_;
  std::unique_ptr<engine::Database> db_;  // null: read-only store over a missing file
  std::string kept_damaged_file_;
};

// The export document: {"format": "rocky-state", "schema_version": N|null, "watermarks": [...],
// "check_history": [{"table", "entries": [...]}], "run_history": [...]}.
std::string SnapshotToJson(const StateSnapshot& snapshot);
// Parses and fully validates an export document; kInvalidArgument naming the first bad field.
Result<StateSnapshot> SnapshotFromJson(std::string_view json);

// Writes one watermark as the JSON object the export document and the commands' --output json share:
// {"table": ..., "last_value": ..., "updated_at": ...}.
void WriteWatermarkJson(base::JsonWriter& json, std::string_view table, std::string_view last_value,
                        std::string_view updated_at);

}  // namespace rocky::state
