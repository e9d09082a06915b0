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

namespace rocky::replication {

// A row count that does not fit the table's history.
struct Anomaly {
  enum class Kind : unsigned char { kDrop, kSpike, kStalled };
  Kind kind = Kind::kDrop;
  std::string table;  // target, catalog.schema.table
  uint64_t current_count = 0;
  double baseline_avg = 0;   // mean of the previous counts considered
  double deviation_pct = 0;  // (current - baseline) / baseline * 100, signed
  std::string reason;        // one plain sentence with the numbers
};

// "drop", "spike", "stalled".
std::string_view ToString(Anomaly::Kind kind);

// Judges `current` against `previous` (the table's earlier counts, oldest first, NOT including `current`:
// including it would dilute the very signal being measured). Only the newest checks.history_length previous
// counts form the baseline. No verdict (nullopt) with fewer than checks.min_history previous counts or a
// zero baseline (a table that was empty has no meaningful percentage).
//   drop:    deviation below -anomaly_threshold_pct (a truncated source).
//   spike:   deviation above +anomaly_threshold_pct (a sync that duplicated rows).
//   stalled: the count is unchanged for the last min_history runs counting this one, after at least two
//            consecutive increases just before (a connector that stopped while the table had been growing).
std::optional<Anomaly> DetectAnomaly(std::string_view table, std::span<const uint64_t> previous, uint64_t current,
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
CheckResult CheckFreshness(std::string_view table, const std::optional<std::string>& newest, std::string_view now_utc,
                           uint64_t threshold_seconds);

}  // namespace rocky::replication
