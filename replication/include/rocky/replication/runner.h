// Applying a plan: the watermark lifecycle of every table, then the checks, then the run record.
//
// Per table, in plan order:
//   1. copy (full, incremental, merge or re-derived) in ONE warehouse transaction: an incremental copy
//   appends
//      only the window's rows the target does not hold yet and a merge upserts on its keys, so a run killed
//      after the copy but before step 2 reads the same window again next time and duplicates nothing, and
//      nothing the source lost (a truncation) is deleted from the target;
//   2. one state commit: the new watermark = the largest cursor value in the target's window (never the wall
//      clock, so rows the source stamps late but still above the old watermark are not skipped), but never
//      below the old watermark (only `rocky state set`/`delete` and a requested full refresh move one back),
//      and, when the pipeline's checks are enabled, the source's row count appended to the check history
//      (counting walks each table's smallest index, so a pipeline without checks does not pay for it);
//   3. checks (row_count, freshness, anomaly against the PREVIOUS counts) — reported, never failing the run.
// A failed table keeps its old watermark (unless the commit of its new one failed with an unknown outcome:
// engine kOutcomeUnknown, which the table's error says) and the run goes on with the others.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "checks.h"
#include "plan.h"

namespace rocky::replication {

struct TableOutcome {
  enum class Status : unsigned char { kCopied, kFailed, kSkipped };
  Status status = Status::kSkipped;
  std::string pipeline;
  std::string source;  // catalog.schema.table
  std::string target;
  CopyMode mode = CopyMode::kFull;
  uint64_t rows_copied = 0;    // rows the copy wrote into the target (inserted, plus merge's updates)
  uint64_t rows_replaced = 0;  // merge: of rows_copied, target rows replaced by a newer version
  std::string cursor_compare;  // how the window was read (warehouse.h: "text", "instant", "integer", "full")
  std::optional<std::string> watermark_before;  // the state's watermark when the table started
  std::optional<std::string> watermark_after;   // the state's watermark when it finished
  std::string error;                            // kFailed: why (one line), kSkipped: why not run
  // kCopied: what the warehouse could not do though the copy succeeded (warehouse::CopyResult::warnings).
  std::vector<std::string> warnings;
  int64_t duration_ms = 0;
};

// "copied", "failed", "skipped".
std::string_view ToString(TableOutcome::Status status);

struct RunReport {
  std::string run_id;
  std::string plan_id;
  std::string status;  // "success", "partial_failure" (some tables failed), "failed" (all), "interrupted"
  std::string started_at;
  std::string finished_at;
  std::vector<TableOutcome> tables;
  std::vector<CheckResult> check_results;
  std::vector<Anomaly> anomalies;
  int64_t duration_ms = 0;

  uint64_t tables_copied() const;
  uint64_t tables_failed() const;
  uint64_t rows_copied() const;
  // Rows the target gained: copied minus replaced (merge's updates), per table, never below zero.
  uint64_t rows_new() const;
};

struct RunOptions {
  // Polled between tables: once set, the remaining tables are skipped and the run ends "interrupted" (the
  // table being copied finishes or rolls back as a whole first). Ctrl-C sets it. Not owned; may be null.
  const std::atomic<bool>* stop = nullptr;
  // Called after each table with the number of tables done so far (for a terminal progress line).
  std::function<void(const TableOutcome& outcome, size_t done, size_t total)> on_table_done;
  // Source of timestamps (updated_at, freshness, run times); empty means the system clock.
  std::function<std::chrono::system_clock::time_point()> clock;
};

// Refuses (kInvalidArgument naming the table and both values) when a watermark the plan was built on has
// changed in `store` since planning, before copying anything.
// Also refuses a plan made against another warehouse than `config`'s (naming both).
Status VerifyPlanIsCurrent(const Plan& plan, const config::Config& config, state::StateStore& store);

// Runs `plan` (after VerifyPlanIsCurrent) and appends the run record. Errors of single tables are in the
// report; the returned status is an error only when the run could not be recorded at all (the state file
// failed), in which case the tables already copied keep their watermarks (each was its own commit).
// `config` supplies each pipeline's checks (a plan's pipeline missing from it runs without checks).
// Each table is copied through its pipeline's warehouse in `warehouses` (a table whose pipeline has none
// fails alone).
Result<RunReport> ApplyPlan(const Plan& plan, const config::Config& config,
                            const PipelineWarehouses& warehouses, state::StateStore& store,
                            const RunOptions& options);
// Every table through `warehouse`.
Result<RunReport> ApplyPlan(const Plan& plan, const config::Config& config, warehouse::Warehouse& warehouse,
                            state::StateStore& store, const RunOptions& options);

}  // namespace rocky::replication
