// Planning: what a run will do to each table, decided before anything is copied, so that it can be shown
// (`rocky plan`), stored in the state file under a content hash, and applied later (`rocky apply PLAN_ID`)
// only if the watermarks it was built on have not moved.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rocky/base/status.h"
#include "rocky/config/config.h"
#include "rocky/warehouse/table_ref.h"
#include "rocky/warehouse/warehouse.h"

namespace rocky::state {
class StateStore;
}

namespace rocky::replication {

using base::Result;
using base::Status;

enum class CopyMode : unsigned char {
  kFull,         // no watermark: copy every row, replacing the target
  kIncremental,  // copy the rows above the stored watermark
  kRederived,    // the state was lost but the target exists: incremental from MAX(timestamp) of the target
};

// "full", "incremental", "rederived".
std::string_view ToString(CopyMode mode);

struct TablePlan {
  std::string pipeline;
  warehouse::TableRef source;
  warehouse::TableRef target;
  std::string timestamp_column;
  std::vector<config::MetadataColumn> metadata_columns;
  config::CursorType cursor_type = config::CursorType::kTimestamp;
  config::Strategy strategy = config::Strategy::kIncremental;
  std::vector<std::string> merge_keys;
  uint64_t lookback_seconds = 0;
  // `--full-refresh` asked for this table: the copy reloads it and the new watermark is the reloaded
  // target's newest value, even below the old one (a reload, like `rocky state delete` then run). Without
  // it a watermark never moves back.
  bool full_refresh_requested = false;
  CopyMode mode = CopyMode::kFull;
  // The watermark the state store held when planning (normalized UTC); apply refuses if it changed.
  std::optional<std::string> state_watermark;
  // Where the copy starts: state_watermark for kIncremental, the target's MAX for kRederived, none for kFull.
  std::optional<std::string> start_watermark;
  std::string sql;  // the SELECT (merge: the upsert) the copy runs, in the warehouse's dialect
  // Not part of the plan's identity (nor of its stored JSON): the index the source lacks for index-served
  // incremental reads, when it lacks one (only looked up for tables that read a window).
  std::optional<warehouse::IndexAdvice> index_advice;
};

struct Plan {
  std::string plan_id;  // 32 hex digits: XXH3-128 of the canonical JSON of `warehouse` and `tables`
  // The warehouse it was planned against ("sqlite:<adapter.path>"): a plan applied to another warehouse
  // would copy between tables it never looked at.
  std::string warehouse;
  std::vector<TablePlan> tables;  // sorted by target
  // Targets discovered but left out by PlanOptions::table_pattern (for the "did you mean" of an empty match).
  std::vector<std::string> unmatched_targets;
};

struct PlanOptions {
  // Only tables whose target (catalog.schema.table) matches this glob (`*`, `?`) are planned; empty: all.
  std::string table_pattern{};
  // Set by the sync layer when the remote state could not be downloaded and the run starts from an empty
  // state: tables whose target exists re-derive their watermark from it instead of reloading everything.
  bool state_lost = false;
  // `rocky run --full-refresh`: every planned table (those matching table_pattern) is reloaded in full.
  bool full_refresh = false;
};

// The warehouse each pipeline reads and writes through: one per source/target adapter pair, which the caller
// opens (and owns) once per pair, shared by the pipelines naming that pair. `fallback`, when set, serves any
// pipeline not in `by_pipeline` (every pipeline then uses it: the one-warehouse form, and a stored plan's
// pipeline since removed from rocky.toml).
struct PipelineWarehouses {
  std::map<std::string, warehouse::Warehouse*, std::less<>> by_pipeline;
  warehouse::Warehouse* fallback = nullptr;

  // kNotFound naming the pipeline when it has no warehouse.
  Result<warehouse::Warehouse*> For(std::string_view pipeline) const;
};

// Discovers every pipeline's source tables (through its own warehouse) and decides each one's copy. Two
// sources mapping to the same target are an error naming both, whichever warehouses they are in: the state
// keys watermarks by target name. A pipeline whose source catalog does not exist is an error naming it.
Result<Plan> BuildPlan(const config::Config& config, const PipelineWarehouses& warehouses,
                       state::StateStore& store, const PlanOptions& options);
// Every pipeline through `warehouse`.
Result<Plan> BuildPlan(const config::Config& config, warehouse::Warehouse& warehouse,
                       state::StateStore& store, const PlanOptions& options);

// The plan as JSON: {"plan_id", "warehouse", "tables": [{"pipeline", "source", "target", "timestamp_column",
// "metadata_columns", "mode", "state_watermark", "start_watermark", "sql"}]}; the stored form. Fields added
// since (cursor_type, strategy, merge_keys, lookback_seconds, full_refresh_requested) are written only when
// they differ from their defaults, so a plan saved by an earlier rocky keeps its id.
std::string PlanToJson(const Plan& plan);
// Parses PlanToJson's output and checks the id matches the content: kCorruption naming the field otherwise.
Result<Plan> PlanFromJson(std::string_view json);

// The id of a plan's content (what BuildPlan puts in plan_id).
std::string ComputePlanId(std::string_view warehouse, const std::vector<TablePlan>& tables);

// "sqlite:/abs/path/warehouse": how a plan names the warehouse of `config`; "SOURCE -> TARGET" for two
// PostgreSQL servers; when the pipelines use several adapter pairs, each pipeline's as "NAME=ID", joined by
// "; " (one pair keeps the one-pair form, so plans stored before keep their ids).
std::string WarehouseId(const config::Config& config);

// `*` matches any run of characters (dots included), `?` any one character.
bool GlobMatch(std::string_view pattern, std::string_view text);

// Up to `limit` of `names` closest to `pattern` (edit distance, ties by name), for "no table matches" errors.
std::vector<std::string> ClosestNames(std::string_view pattern, const std::vector<std::string>& names,
                                      size_t limit = 3);

}  // namespace rocky::replication
