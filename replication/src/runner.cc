#include "rocky/replication/runner.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <utility>

#include "rocky/base/strings.h"
#include "rocky/base/timestamp.h"
#include "rocky/state/store.h"
#include "rocky/warehouse/sqlite_warehouse.h"

namespace rocky::replication {

using base::Quoted;

namespace {

using Clock = std::chrono::system_clock;

std::string Show(const std::optional<std::string>& watermark) { return watermark ? *watermark : "none"; }

int64_t MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
      .count();
}

// "20250315T143000Z-9f2c41d7": sortable by start time, unique across runs started in the same second.
std::string NewRunId(const std::string& started_at) {
  std::string compact;
  for (char c : started_at) {
    if (c != '-' && c != ':') compact += c;
  }
  std::random_device device;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "-%08x", static_cast<unsigned>(device()));
  return compact + suffix;
}

// a < b as cursor values: integers numerically, timestamps as instants. Values of different kinds (a
// cursor_type change the plan let through with --full-refresh) count as different, so the new one is taken.
bool WatermarkLess(const std::string& a, const std::string& b) {
  const bool ai = base::IsIntegerWatermark(a);
  const bool bi = base::IsIntegerWatermark(b);
  if (ai != bi) return true;
  if (ai) return std::stoll(a) < std::stoll(b);
  const std::optional<std::string> ca = warehouse::CanonicalTimestamp(a);
  const std::optional<std::string> cb = warehouse::CanonicalTimestamp(b);
  if (!ca || !cb) return true;
  return *ca < *cb;
}

const config::ChecksConfig* ChecksOf(const config::Config& config, std::string_view pipeline) {
  for (const config::PipelineConfig& p : config.pipelines) {
    if (p.name == pipeline && p.checks.enabled) return &p.checks;
  }
  return nullptr;
}

}  // namespace

std::string_view ToString(TableOutcome::Status status) {
  switch (status) {
    case TableOutcome::Status::kCopied: return "copied";
    case TableOutcome::Status::kFailed: return "failed";
    case TableOutcome::Status::kSkipped: return "skipped";
  }
  return "unknown";
}

uint64_t RunReport::tables_copied() const {
  return static_cast<uint64_t>(std::count_if(tables.begin(), tables.end(), [](const TableOutcome& t) {
    return t.status == TableOutcome::Status::kCopied;
  }));
}

uint64_t RunReport::tables_failed() const {
  return static_cast<uint64_t>(std::count_if(tables.begin(), tables.end(), [](const TableOutcome& t) {
    return t.status == TableOutcome::Status::kFailed;
  }));
}

uint64_t RunReport::rows_copied() const {
  uint64_t n = 0;
  for (const TableOutcome& t : tables) n += t.rows_copied;
  return n;
}

uint64_t RunReport::rows_new() const {
  uint64_t n = 0;
  for (const TableOutcome& t : tables)
    n += t.rows_copied > t.rows_replaced ? t.rows_copied - t.rows_replaced : 0;
  return n;
}

Status VerifyPlanIsCurrent(const Plan& plan, const config::Config& config, state::StateStore& store) {
  if (plan.warehouse != WarehouseId(config)) {
    return Status::InvalidArgument("plan " + plan.plan_id + " was made for warehouse " +
                                   Quoted(plan.warehouse) + ", but " + config.source_path + " now names " +
                                   Quoted(WarehouseId(config)) + "; run 'rocky plan' again");
  }
  for (const TablePlan& t : plan.tables) {
    const std::string target = t.target.Qualified();
    ROCKY_ASSIGN_OR_RETURN(std::optional<state::Watermark> now, store.GetWatermark(target));
    const std::optional<std::string> current =
        now ? std::optional<std::string>(now->last_value) : std::nullopt;
    if (current != t.state_watermark) {
      return Status::InvalidArgument(
          "plan " + plan.plan_id + " is out of date: the watermark of " + Quoted(target) + " was " +
          Show(t.state_watermark) + " when planned and is now " + Show(current) + "; run 'rocky plan' again");
    }
  }
  return Status::OK();
}

namespace {

using Now = std::function<Clock::time_point()>;

// The watermark a copy moves the table to: never back from the one the plan was built on (checked current
// before the run, and only this run writes it), except for a reload the user asked for. nullopt when the copy
// saw no cursor value (an empty source or target).
std::optional<std::string_view> NewWatermarkOf(const TablePlan& t, const warehouse::CopyResult& copied) {
  if (!copied.max_timestamp) return std::nullopt;
  const bool reset = t.mode == CopyMode::kFull && (t.full_refresh_requested || !t.state_watermark);
  return reset || !t.state_watermark || WatermarkLess(*t.state_watermark, *copied.max_timestamp)
             ? std::string_view(*copied.max_timestamp)
             : std::string_view(*t.state_watermark);
}

// Saves what a committed copy moved: the new watermark and, for a pipeline with checks, the source's row
// count in the history. A reload the user asked for that left the target empty has no newest value: the old
// watermark goes (first, so that a crash before the next commit leaves no watermark, which means a full
// refresh).
Result<state::StateStore::RecordedCopy> RecordCopy(
    state::StateStore& store, const TablePlan& t, const std::string& target,
    const warehouse::CopyResult& copied, const config::ChecksConfig* checks,
    const std::vector<std::pair<std::string, state::RememberedRowCount>>& row_counts) {
  if (!copied.max_timestamp && t.full_refresh_requested && t.state_watermark) {
    Status cleared = store.DeleteWatermark(target);
    if (!cleared.ok() && !cleared.IsNotFound()) return cleared;
  }
  const std::optional<uint64_t> history_count =
      checks != nullptr ? std::optional<uint64_t>(copied.source_rows) : std::nullopt;
  return store.RecordTableCopy(target, NewWatermarkOf(t, copied), history_count,
                               checks != nullptr ? checks->history_length : 0, row_counts);
}

// The count the state remembers for `table` (a source's or a target's), for the warehouse to reuse while
// the table's storage is unchanged. A remembered count that cannot be read is only a cache miss: the copy
// then counts, and `rocky state check` reports a damaged page.
std::optional<warehouse::RowCountMemo> RememberedCount(state::StateStore& store, const std::string& table) {
  Result<std::optional<state::RememberedRowCount>> remembered = store.RowCountOf(table);
  if (!remembered.ok() || !*remembered) return std::nullopt;
  return warehouse::RowCountMemo{(*remembered)->version, (*remembered)->rows};
}

// The row counts a run hands to the warehouse and remembers, carried across the run's own commits. A copy's
// commit that changed a target file from version B to version A (and nothing else did: the warehouse checks)
// changed one table of that file, so a count of any OTHER table of the file that holds at B holds at A too.
// Without this, copying several tables into one schema file would outdate each earlier table's count at every
// later table's commit, and the next run would count them all again.
class RunRowCounts {
 public:
  // `stored` (what the state remembers for `table`) carried through this run's commits that did not change
  // `table`: what the warehouse should compare with the table's current version.
  std::optional<warehouse::RowCountMemo> ForRequest(std::optional<warehouse::RowCountMemo> stored,
                                                    const std::string& table) const {
    if (!stored) return stored;
    for (size_t steps = 0; steps < commits_.size(); ++steps) {  // versions only move forward; bounded anyway
      auto commit = commits_.find(stored->version);
      if (commit == commits_.end() || commit->second.table == table) break;
      stored->version = commit->second.after;
    }
    return stored;
  }

  // After a copy of `source` into `target`: the counts to remember in the copy's state commit, which are its
  // own two when they differ from what was stored, and those of earlier tables of the target's file carried
  // to the version its commit made.
  std::vector<std::pair<std::string, state::RememberedRowCount>> AfterCopy(
      const std::string& source, const std::optional<warehouse::RowCountMemo>& source_stored,
      const std::string& target, const std::optional<warehouse::RowCountMemo>& target_stored,
      const warehouse::CopyResult& copied) {
    std::vector<std::pair<std::string, state::RememberedRowCount>> out;
    auto keep = [&](const std::string& table, const std::optional<warehouse::RowCountMemo>& memo,
                    const std::optional<warehouse::RowCountMemo>& stored) {
      if (!memo) return;
      if (!(stored && stored->version == memo->version && stored->rows == memo->rows)) {
        out.emplace_back(table, state::RememberedRowCount{memo->version, memo->rows});
      }
      Place(table, memo->version, memo->rows);
    };
    keep(source, copied.source_rows_memo, source_stored);
    if (copied.target_version_before) {
      const std::string& before = *copied.target_version_before;
      const std::string& after = copied.target_rows_memo->version;
      commits_[before] = Commit{after, target};
      auto held = by_version_.find(before);
      if (held != by_version_.end()) {
        std::map<std::string, uint64_t> carried = std::move(held->second);
        by_version_.erase(held);
        for (const auto& [table, rows] : carried) {
          if (table == target) continue;
          out.emplace_back(table, state::RememberedRowCount{after, rows});
          Place(table, after, rows);
        }
      }
    }
    keep(target, copied.target_rows_memo, target_stored);
    return out;
  }

 private:
  struct Commit {
    std::string after;
    std::string table;  // the one table the commit changed
  };
  // Records that `table` has `rows` at `version`, forgetting any older version of it.
  void Place(const std::string& table, const std::string& version, uint64_t rows) {
    auto old = version_of_.find(table);
    if (old != version_of_.end() && old->second != version) {
      auto at = by_version_.find(old->second);
      if (at != by_version_.end()) at->second.erase(table);
    }
    version_of_[table] = version;
    by_version_[version][table] = rows;
  }

  std::map<std::string, Commit> commits_;                              // by the version before each commit
  std::map<std::string, std::map<std::string, uint64_t>> by_version_;  // counts this run remembered
  std::map<std::string, std::string> version_of_;                      // table -> its key in by_version_
};

// The pipeline's checks on one copied table, appended to the report (anomalies too). `previous` is the
// row-count history before this copy; `history_error` why it could not be read, which the anomaly check
// reports.
void RunChecks(RunReport& report, const std::string& target, const config::ChecksConfig& checks,
               const warehouse::CopyResult& copied, const std::vector<state::CheckEntry>& previous,
               const std::optional<Status>& history_error, const Now& now) {
  // The source's count (read in the copy's own transaction) is what the history tracks: an incremental
  // target never shrinks, so only the source shows a truncation, and it shows a duplication or a stall first.
  const uint64_t source_count = copied.source_rows;
  if (checks.row_count)
    report.check_results.push_back(CheckRowCount(target, source_count, copied.target_rows));
  if (checks.freshness) {
    report.check_results.push_back(CheckFreshness(target, copied.max_timestamp, base::FormatUtc(now()),
                                                  checks.freshness->threshold_seconds));
  }
  if (history_error) {
    report.check_results.push_back(CheckResult{
        target, "anomaly", false, "Cannot read the row-count history: " + history_error->message()});
    return;
  }
  std::optional<Anomaly> anomaly =
      DetectAnomaly(target, previous, source_count, base::FormatUtc(now()), checks);
  report.check_results.push_back(CheckResult{
      target, "anomaly", !anomaly.has_value(),
      anomaly ? anomaly->reason
              : (previous.size() < checks.min_history
                     ? "No verdict yet: " + std::to_string(previous.size()) + " of " +
                           std::to_string(checks.min_history) + " previous counts recorded."
                     : "Row count " + std::to_string(source_count) + " is in line with its history.")});
  if (anomaly) report.anomalies.push_back(std::move(*anomaly));
}

// Copies one planned table and records its watermark, filling `outcome` (status, counts, error) and adding
// its check results to `report`. A failure is the table's, in outcome.error; the run goes on.
void CopyTable(const TablePlan& t, const config::Config& config, warehouse::Warehouse& warehouse,
               state::StateStore& store, const Now& now, RunRowCounts& run_counts, TableOutcome& outcome,
               RunReport& report) {
  // Row counts walk whole indexes: taken only for a pipeline whose checks use them.
  const config::ChecksConfig* checks = ChecksOf(config, t.pipeline);
  const std::string source_name = t.source.Qualified();
  const std::optional<warehouse::RowCountMemo> source_memo =
      checks != nullptr ? RememberedCount(store, source_name) : std::nullopt;
  const std::optional<warehouse::RowCountMemo> target_memo =
      checks != nullptr ? RememberedCount(store, outcome.target) : std::nullopt;
  auto copied = warehouse.Copy(warehouse::CopyRequest{
      .source = t.source,
      .target = t.target,
      .timestamp_column = t.timestamp_column,
      .cursor_type = t.cursor_type,
      .strategy = t.strategy,
      .merge_keys = t.merge_keys,
      .watermark = t.start_watermark,
      .lookback_seconds = t.lookback_seconds,
      .metadata_columns = t.metadata_columns,
      .count_rows = checks != nullptr,
      .source_rows_memo = run_counts.ForRequest(source_memo, source_name),
      .target_rows_memo = run_counts.ForRequest(target_memo, outcome.target),
  });
  if (!copied.ok()) {
    outcome.status = TableOutcome::Status::kFailed;
    outcome.error = copied.status().message();
    return;
  }
  outcome.rows_copied = copied->rows_copied;
  outcome.rows_replaced = copied->rows_replaced;
  outcome.warnings = copied->warnings;
  outcome.cursor_compare = copied->cursor_compare;

  // The history before this copy's count joins it: what the anomaly check compares the new count with.
  std::vector<state::CheckEntry> previous;
  std::optional<Status> history_error;
  if (auto history = store.CheckHistory(outcome.target); history.ok()) {
    previous = std::move(*history);
  } else {
    history_error = history.status();
  }

  // Counts to remember for the next run: only those that changed, so a run that copies nothing writes none.
  const std::vector<std::pair<std::string, state::RememberedRowCount>> row_counts =
      run_counts.AfterCopy(source_name, source_memo, outcome.target, target_memo, *copied);

  auto recorded = RecordCopy(store, t, outcome.target, *copied, checks, row_counts);
  if (!recorded.ok()) {
    // The copy committed but its watermark did not (or, when the commit's outcome is unknown, may not have):
    // the next run reads the same window again and skips (or, under merge, rewrites) the rows already there.
    outcome.status = TableOutcome::Status::kFailed;
    outcome.error =
        recorded.status().IsOutcomeUnknown()
            ? "copied, but the commit of its new watermark failed and may have been kept (the next "
              "command that opens the state settles it; repeating the copy is harmless): " +
                  recorded.status().message()
            : "copied, but the watermark could not be saved (the old one stays): " +
                  recorded.status().message();
    return;
  }
  outcome.status = TableOutcome::Status::kCopied;
  outcome.watermark_after =
      recorded->watermark ? std::optional<std::string>(recorded->watermark->last_value) : std::nullopt;
  // A damaged check history cost the row count, not the watermark; the anomaly check says so.
  if (!recorded->history_error.ok() && !history_error) history_error = recorded->history_error;
  if (checks != nullptr) RunChecks(report, outcome.target, *checks, *copied, previous, history_error, now);
}

// "success", "failed" (every table), "partial_failure" or "interrupted": the run's status as recorded.
std::string RunStatusOf(bool interrupted, uint64_t failed, size_t tables) {
  if (interrupted) return "interrupted";
  if (failed == 0) return "success";
  return failed == tables ? "failed" : "partial_failure";
}

}  // namespace

Result<RunReport> ApplyPlan(const Plan& plan, const config::Config& config, warehouse::Warehouse& warehouse,
                            state::StateStore& store, const RunOptions& options) {
  return ApplyPlan(plan, config, PipelineWarehouses{.by_pipeline = {}, .fallback = &warehouse}, store,
                   options);
}

Result<RunReport> ApplyPlan(const Plan& plan, const config::Config& config,
                            const PipelineWarehouses& warehouses, state::StateStore& store,
                            const RunOptions& options) {
  const Now now = [&options] { return options.clock ? options.clock() : Clock::now(); };
  const auto run_start = std::chrono::steady_clock::now();
  RunReport report;
  report.plan_id = plan.plan_id;
  report.started_at = base::FormatUtc(now());
  report.run_id = NewRunId(report.started_at);
  bool interrupted = false;
  // Recorded before the first copy, so a run killed half way leaves a trace (the next run marks it
  // "crashed"); a store that cannot even record the start is not one to copy into.
  ROCKY_ASSIGN_OR_RETURN(
      const uint64_t run_sequence,
      store.BeginRun(state::RunRecord{
          .id = report.run_id, .started_at = report.started_at, .finished_at = {}, .status = "running"}));

  RunRowCounts run_counts;
  for (size_t i = 0; i < plan.tables.size(); ++i) {
    const TablePlan& t = plan.tables[i];
    TableOutcome outcome;
    outcome.pipeline = t.pipeline;
    outcome.source = t.source.Qualified();
    outcome.target = t.target.Qualified();
    outcome.mode = t.mode;
    outcome.watermark_before = t.state_watermark;
    outcome.watermark_after = t.state_watermark;
    if (interrupted || (options.stop != nullptr && options.stop->load())) {
      interrupted = true;
      outcome.error = "the run was interrupted before this table";
      report.tables.push_back(std::move(outcome));
      continue;
    }
    const auto table_start = std::chrono::steady_clock::now();
    Result<warehouse::Warehouse*> warehouse = warehouses.For(t.pipeline);
    if (warehouse.ok()) {
      CopyTable(t, config, **warehouse, store, now, run_counts, outcome, report);
    } else {
      outcome.status = TableOutcome::Status::kFailed;
      outcome.error = warehouse.status().message();
    }
    outcome.duration_ms = MillisSince(table_start);
    report.tables.push_back(std::move(outcome));
    if (options.on_table_done) options.on_table_done(report.tables.back(), i + 1, plan.tables.size());
  }

  const uint64_t failed = report.tables_failed();
  report.status = RunStatusOf(interrupted, failed, report.tables.size());
  report.finished_at = base::FormatUtc(now());
  report.duration_ms = MillisSince(run_start);
  ROCKY_RETURN_IF_ERROR(store.FinishRun(run_sequence, state::RunRecord{
                                                          .id = report.run_id,
                                                          .started_at = report.started_at,
                                                          .finished_at = report.finished_at,
                                                          .status = report.status,
                                                          .tables_copied = report.tables_copied(),
                                                          .tables_failed = failed,
                                                          .anomalies = report.anomalies.size(),
                                                      }));
  return report;
}

}  // namespace rocky::replication
