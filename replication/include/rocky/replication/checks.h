// The checks a pipeline runs after each table's copy ([pipeline.NAME.checks] in rocky.toml): row count
// equality, anomaly detection over the row-count history, and freshness. Pure functions of their inputs, so
// every rule is tested without a warehouse. Checks report; they never fail a run.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "rocky/config/config.h"
#include "rocky/state/store.h"

namespace rocky::replication {

// A row count that does not fit the table's history.
struct Anomaly {
  enum class Kind : unsigned char { kDrop, kSpike, kStalled };
  Kind kind = Kind::kDrop;
  std::string table;  // target, catalog.schema.table
  uint64_t current_count = 0;
  double baseline_avg = 0;   // the count the history predicts for now (previous count + expected growth)
  double deviation_pct = 0;  // (current - baseline_avg) / baseline_avg * 100, signed
  std::string reason;        // one plain sentence with the numbers
};

// "drop", "spike", "stalled".
std::string_view ToString(Anomaly::Kind kind);

// How the table has been growing, from its earlier counts (oldest first, with the times they were taken).
// Intervals in which the count fell (a truncation, deletions) and the ones that only refilled the table up to
// its earlier high-water mark (a resync after a truncation) are left out, so a zero never poisons the
// baseline.
struct GrowthBaseline {
  size_t intervals = 0;        // intervals the rate is made of
  size_t growing = 0;          // of those, the ones in which the count grew
  double rows_per_second = 0;  // total growth / total time over those intervals
  double rows_per_growth = 0;  // average growth of a growing interval
  uint64_t high_water = 0;     // the largest earlier count
};
GrowthBaseline ComputeGrowthBaseline(std::span<const state::CheckEntry> previous);

// Judges `current` (counted at `now_utc`) against `previous` (the table's earlier counts, oldest first, NOT
// including `current`), judging GROWTH against earlier growth and the time between runs rather than totals
// against a mean of totals, so a table growing steadily stays quiet. Only the newest checks.history_length
// previous counts are used; no verdict (nullopt) with fewer than checks.min_history of them.
//   drop:    the count fell by more than anomaly_threshold_pct of the previous count (a truncated source);
//   spike:   it grew by more than the earlier rate predicts for the time since the previous run, and the
//   excess
//            is more than anomaly_threshold_pct of the previous count (or of the high-water mark, after a
//            drop) — a sync that duplicated rows;
//   stalled: it has not changed for so long that the earlier rate predicts at least three times an average
//            growth by now (a connector that stopped), with at least two earlier growths: two runs seconds
//            apart, or a table that never grew, are never flagged.
std::optional<Anomaly> DetectAnomaly(std::string_view table, std::span<const state::CheckEntry> previous,
                                     uint64_t current, std::string_view now_utc,
                                     const config::ChecksConfig& checks);

// One check's verdict on one table, as `rocky run` reports it.
struct CheckResult {
  std::string table;
  std::string check;  // "row_count", "freshness", "anomaly"
  bool passed = true;
  std::string detail;  // a plain sentence with the numbers
};

// row_count: the target holds exactly the source's rows after the copy.
CheckResult CheckRowCount(std::string_view table, uint64_t source_count, uint64_t target_count);

// freshness: the newest timestamp (normalized UTC, as the state store keeps them; nullopt for a table with
// none) is at most threshold_seconds older than `now_utc` (also normalized UTC).
CheckResult CheckFreshness(std::string_view table, const std::optional<std::string>& newest,
                           std::string_view now_utc, uint64_t threshold_seconds);

}  // namespace rocky::replication
