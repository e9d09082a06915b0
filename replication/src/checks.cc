#include "rocky/replication/checks.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "rocky/state/timestamp.h"

namespace rocky::replication {
namespace {

// 1234567 -> "1,234,567": counts are read by people comparing magnitudes.
std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  const size_t first = digits.size() % 3 == 0 ? 3 : digits.size() % 3;
  out += digits.substr(0, first);
  for (size_t i = first; i < digits.size(); i += 3) {
    out += ',';
    out += digits.substr(i, 3);
  }
  return out;
}

std::string Fixed(double v, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  return buffer;
}

std::string Signed(double pct) { return (pct >= 0 ? "+" : "") + Fixed(pct, 1) + "%"; }

std::string Runs(size_t n) { return std::to_string(n) + (n == 1 ? " run" : " runs"); }

// Trailing runs (counting `current`) with exactly `current` rows.
size_t FlatStreak(std::span<const uint64_t> previous, uint64_t current) {
  size_t streak = 1;
  for (size_t i = previous.size(); i > 0 && previous[i - 1] == current; --i) ++streak;
  return streak;
}

// Consecutive strict increases ending at previous[end] (looking backwards).
size_t IncreasesEndingAt(std::span<const uint64_t> previous, size_t end) {
  size_t increases = 0;
  for (size_t i = end; i > 0 && previous[i - 1] < previous[i]; --i) ++increases;
  return increases;
}

}  // namespace

std::string_view ToString(Anomaly::Kind kind) {
  switch (kind) {
    case Anomaly::Kind::kDrop:
      return "drop";
    case Anomaly::Kind::kSpike:
      return "spike";
    case Anomaly::Kind::kStalled:
      return "stalled";
  }
  return "unknown";
}

std::optional<Anomaly> DetectAnomaly(std::string_view table, std::span<const uint64_t> previous, uint64_t current,
                                     const config::ChecksConfig& checks) {
  const size_t min_history = std::max<size_t>(checks.min_history, 1);
  if (previous.size() < min_history) return std::nullopt;
  const size_t window = std::min(previous.size(), std::max<size_t>(checks.history_length, 1));
  const std::span<const uint64_t> baseline_counts = previous.subspan(previous.size() - window);
  long double sum = 0;
  for (uint64_t c : baseline_counts) sum += static_cast<long double>(c);
  const double baseline = static_cast<double>(sum / static_cast<long double>(window));
  if (baseline <= 0) return std::nullopt;
  const double deviation = (static_cast<double>(current) - baseline) / baseline * 100.0;

  Anomaly anomaly;
  anomaly.table = std::string(table);
  anomaly.current_count = current;
  anomaly.baseline_avg = baseline;
  anomaly.deviation_pct = deviation;
  const std::string average = "the average of " + Grouped(static_cast<uint64_t>(std::llround(baseline))) +
                              " over the previous " + Runs(window);
  if (deviation < -checks.anomaly_threshold_pct) {
    anomaly.kind = Anomaly::Kind::kDrop;
    anomaly.reason = "Row count dropped to " + Grouped(current) + " from " + average + " (" + Signed(deviation) +
                     ", threshold " + Fixed(checks.anomaly_threshold_pct, 1) + "%): was the source truncated?";
    return anomaly;
  }
  if (deviation > checks.anomaly_threshold_pct) {
    anomaly.kind = Anomaly::Kind::kSpike;
    anomaly.reason = "Row count jumped to " + Grouped(current) + " from " + average + " (" + Signed(deviation) +
                     ", threshold " + Fixed(checks.anomaly_threshold_pct, 1) + "%): did a sync duplicate rows?";
    return anomaly;
  }

  // A stall needs at least two runs of the same count (one repeat could be a quiet hour) and growth right
  // before it, so a table that is simply static is never flagged.
  const size_t streak = FlatStreak(previous, current);
  const size_t needed = std::max<size_t>(min_history, 2);
  if (streak >= needed && streak - 1 < previous.size()) {
    const size_t first_flat = previous.size() - (streak - 1);  // index in previous of the streak's first run
    const size_t increases = IncreasesEndingAt(previous, first_flat);
    if (first_flat < previous.size() && increases >= 2) {
      const uint64_t grew_from = previous[first_flat - increases];
      anomaly.kind = Anomaly::Kind::kStalled;
      anomaly.reason = "Row count has stayed at " + Grouped(current) + " for " + Runs(streak) + " after growing from " +
                       Grouped(grew_from) + " over the " + Runs(increases) +
                       " before: has the connector stopped syncing?";
      return anomaly;
    }
  }
  return std::nullopt;
}

CheckResult CheckRowCount(std::string_view table, uint64_t source_count, uint64_t target_count) {
  CheckResult result{std::string(table), "row_count", source_count == target_count, {}};
  if (result.passed) {
    result.detail = "Source and target both have " + Grouped(source_count) + " rows.";
  } else {
    result.detail = "Source has " + Grouped(source_count) + " rows but the target has " + Grouped(target_count) +
                    " (" + (target_count > source_count ? "+" : "-") +
                    Grouped(target_count > source_count ? target_count - source_count : source_count - target_count) +
                    ").";
  }
  return result;
}

CheckResult CheckFreshness(std::string_view table, const std::optional<std::string>& newest, std::string_view now_utc,
                           uint64_t threshold_seconds) {
  CheckResult result{std::string(table), "freshness", false, {}};
  if (!newest) {
    result.detail = "The table has no timestamp at all, so its freshness cannot be shown.";
    return result;
  }
  auto newest_time = state::ParseTimestamp(*newest);
  auto now_time = state::ParseTimestamp(now_utc);
  if (!newest_time.ok() || !now_time.ok()) {
    result.detail = "Cannot judge freshness: " +
                    (newest_time.ok() ? now_time.status().message() : newest_time.status().message());
    return result;
  }
  const auto age = std::chrono::duration_cast<std::chrono::seconds>(*now_time - *newest_time).count();
  result.passed = age <= static_cast<int64_t>(threshold_seconds);
  result.detail = "Newest row is from " + *newest + ", " + std::to_string(age) + " s old (threshold " +
                  std::to_string(threshold_seconds) + " s)" + (result.passed ? "." : ": the data is stale.");
  return result;
}

}  // namespace rocky::replication
