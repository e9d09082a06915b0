#include "rocky/replication/checks.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "rocky/base/timestamp.h"

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

// Seconds from `from` to `to` (normalized UTC); 0 when either does not parse or time went backwards.
double SecondsBetween(std::string_view from, std::string_view to) {
  auto a = base::ParseTimestamp(from);
  auto b = base::ParseTimestamp(to);
  if (!a.ok() || !b.ok() || *b < *a) return 0;
  return static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(*b - *a).count());
}

// "3 h", "2 days": how people read a stretch of time between runs.
std::string Duration(double seconds) {
  if (seconds < 120) return Fixed(seconds, 0) + " s";
  if (seconds < 3600) return Fixed(seconds / 60, 0) + " min";
  if (seconds < 172800) return Fixed(seconds / 3600, 1) + " h";
  return Fixed(seconds / 86400, 1) + " days";
}

std::string Rate(double rows_per_second) {
  return Grouped(static_cast<uint64_t>(std::llround(rows_per_second * 3600))) + " rows per hour";
}

}  // namespace

std::string_view ToString(Anomaly::Kind kind) {
  switch (kind) {
    case Anomaly::Kind::kDrop: return "drop";
    case Anomaly::Kind::kSpike: return "spike";
    case Anomaly::Kind::kStalled: return "stalled";
  }
  return "unknown";
}

GrowthBaseline ComputeGrowthBaseline(std::span<const state::CheckEntry> previous) {
  GrowthBaseline baseline;
  double growth = 0;
  double seconds = 0;
  uint64_t high_water = previous.empty() ? 0 : previous[0].count;
  for (size_t i = 1; i < previous.size(); ++i) {
    const uint64_t before = previous[i - 1].count;
    const uint64_t after = previous[i].count;
    const double dt = SecondsBetween(previous[i - 1].timestamp, previous[i].timestamp);
    // A fall (truncation) says nothing about growth, nor does refilling up to the earlier high-water mark;
    // growth beyond that mark in a refilling interval is real but its time is unknown, so it is left out too.
    const bool usable = after >= before && before >= high_water && dt > 0;
    if (usable) {
      ++baseline.intervals;
      growth += static_cast<double>(after - before);
      seconds += dt;
      if (after > before) ++baseline.growing;
    }
    high_water = std::max(high_water, after);
  }
  baseline.high_water = high_water;
  if (seconds > 0) baseline.rows_per_second = growth / seconds;
  if (baseline.growing > 0) baseline.rows_per_growth = growth / static_cast<double>(baseline.growing);
  return baseline;
}

std::optional<Anomaly> DetectAnomaly(std::string_view table, std::span<const state::CheckEntry> previous_all,
                                     uint64_t current, std::string_view now_utc,
                                     const config::ChecksConfig& checks) {
  const size_t min_history = std::max<size_t>(checks.min_history, 1);
  if (previous_all.size() < min_history) return std::nullopt;
  const size_t window = std::min(previous_all.size(), std::max<size_t>(checks.history_length, 1));
  const std::span<const state::CheckEntry> previous = previous_all.subspan(previous_all.size() - window);
  const state::CheckEntry& last = previous.back();
  const double threshold = checks.anomaly_threshold_pct;
  Anomaly anomaly;
  anomaly.table = std::string(table);
  anomaly.current_count = current;
  auto pct = [](double value, double base) { return base > 0 ? (value - base) / base * 100.0 : 0.0; };

  if (current < last.count) {
    const double fall = static_cast<double>(last.count - current);
    if (fall / static_cast<double>(last.count) * 100.0 > threshold) {
      anomaly.kind = Anomaly::Kind::kDrop;
      anomaly.baseline_avg = static_cast<double>(last.count);
      anomaly.deviation_pct = pct(static_cast<double>(current), anomaly.baseline_avg);
      anomaly.reason = "Row count dropped to " + Grouped(current) + " from " + Grouped(last.count) +
                       " at the previous run (" + Signed(anomaly.deviation_pct) + ", threshold " +
                       Fixed(threshold, 1) + "%): was the source truncated?";
      return anomaly;
    }
    return std::nullopt;
  }

  const GrowthBaseline baseline = ComputeGrowthBaseline(previous);
  const double since_last = SecondsBetween(last.timestamp, now_utc);
  // Growth is measured from the high-water mark: refilling a truncated table back to it is not new rows.
  const uint64_t reference = std::max(last.count, baseline.high_water);
  const double expected_growth = baseline.rows_per_second * since_last;
  const double expected_count = static_cast<double>(reference) + expected_growth;
  anomaly.baseline_avg = expected_count;
  anomaly.deviation_pct = pct(static_cast<double>(current), expected_count);

  if (current > reference && baseline.intervals > 0 && reference > 0) {
    const double excess = static_cast<double>(current - reference) - expected_growth;
    if (excess / static_cast<double>(reference) * 100.0 > threshold) {
      anomaly.kind = Anomaly::Kind::kSpike;
      anomaly.reason = "Row count jumped to " + Grouped(current) + " from " + Grouped(reference) + " in " +
                       Duration(since_last) + ", where its growth of " + Rate(baseline.rows_per_second) +
                       " predicts about " + Grouped(static_cast<uint64_t>(std::llround(expected_count))) +
                       " (" + Signed(anomaly.deviation_pct) + ", threshold " + Fixed(threshold, 1) +
                       "% of the previous count): did a sync duplicate rows?";
      return anomaly;
    }
  }

  if (current == last.count) {
    // Since when has the count been flat? The oldest run of the trailing streak at this count. The growth
    // it is judged by is the growth before that streak: the flat runs themselves would dilute it.
    size_t first_flat = previous.size() - 1;
    while (first_flat > 0 && previous[first_flat - 1].count == current) --first_flat;
    const GrowthBaseline before = ComputeGrowthBaseline(previous.first(first_flat + 1));
    const double flat_seconds = SecondsBetween(previous[first_flat].timestamp, now_utc);
    const double expected_by_now = before.rows_per_second * flat_seconds;
    if (before.growing >= 2 && before.rows_per_second > 0 && expected_by_now >= 3 * before.rows_per_growth) {
      const size_t runs = previous.size() - first_flat + 1;
      anomaly.kind = Anomaly::Kind::kStalled;
      anomaly.baseline_avg = static_cast<double>(current) + expected_by_now;
      anomaly.deviation_pct = pct(static_cast<double>(current), anomaly.baseline_avg);
      anomaly.reason = "Row count has stayed at " + Grouped(current) + " for " + Duration(flat_seconds) +
                       " (" + Runs(runs) + "), where its growth of " + Rate(before.rows_per_second) +
                       " predicts about " + Grouped(static_cast<uint64_t>(std::llround(expected_by_now))) +
                       " new rows by now: has the connector stopped syncing?";
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
    result.detail =
        "Source has " + Grouped(source_count) + " rows but the target has " + Grouped(target_count) + " (" +
        (target_count > source_count ? "+" : "-") +
        Grouped(target_count > source_count ? target_count - source_count : source_count - target_count) +
        ").";
  }
  return result;
}

CheckResult CheckFreshness(std::string_view table, const std::optional<std::string>& newest,
                           std::string_view now_utc, uint64_t threshold_seconds) {
  CheckResult result{std::string(table), "freshness", false, {}};
  if (!newest) {
    result.detail = "The table has no timestamp at all, so its freshness cannot be shown.";
    return result;
  }
  auto newest_time = base::ParseTimestamp(*newest);
  auto now_time = base::ParseTimestamp(now_utc);
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
