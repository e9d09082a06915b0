// The checks' rules, on plain numbers: anomaly detection (drop, spike, stalled), row count, freshness.
#include "rocky/replication/checks.h"

#include <doctest/doctest.h>

#include <vector>

namespace {

using rocky::config::ChecksConfig;
using rocky::replication::Anomaly;
using rocky::replication::CheckFreshness;
using rocky::replication::CheckRowCount;
using rocky::replication::DetectAnomaly;

ChecksConfig Checks(double threshold = 50, uint32_t min_history = 3, uint32_t history_length = 10) {
  ChecksConfig c;
  c.enabled = true;
  c.anomaly_threshold_pct = threshold;
  c.min_history = min_history;
  c.history_length = history_length;
  return c;
}

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST_CASE("a truncated source is a drop, with the numbers in the reason") {
  const std::vector<uint64_t> previous{150432, 151200, 152100};
  auto a = DetectAnomaly("acme.s.orders", previous, 12, Checks());
  REQUIRE(a.has_value());
  CHECK(a->kind == Anomaly::Kind::kDrop);
  CHECK(a->table == "acme.s.orders");
  CHECK(a->current_count == 12);
  CHECK(a->baseline_avg == doctest::Approx(151244.0));
  CHECK(a->deviation_pct == doctest::Approx(-99.99207).epsilon(1e-4));
  CHECK(Contains(a->reason, "dropped to 12 from the average of 151,244 over the previous 3 runs"));
  CHECK(Contains(a->reason, "-100.0%"));
  CHECK(Contains(a->reason, "truncated"));
}

TEST_CASE("a duplicating sync is a spike") {
  const std::vector<uint64_t> previous{1000, 1010, 1020, 1030};
  auto a = DetectAnomaly("t", previous, 2100, Checks());
  REQUIRE(a.has_value());
  CHECK(a->kind == Anomaly::Kind::kSpike);
  CHECK(a->baseline_avg == doctest::Approx(1015.0));
  CHECK(a->deviation_pct == doctest::Approx(106.896).epsilon(1e-3));
  CHECK(Contains(a->reason, "jumped to 2,100"));
}

TEST_CASE("the baseline is the previous counts only; including the current one would hide the spike") {
  // Mean of previous = 100; the current 155 is +55% (an anomaly at 50%). Had 155 been part of its own
  // baseline (mean 113.75), it would be +36% and pass unnoticed.
  const std::vector<uint64_t> previous{100, 100, 100};
  auto a = DetectAnomaly("t", previous, 155, Checks());
  REQUIRE(a.has_value());
  CHECK(a->baseline_avg == doctest::Approx(100.0));
  CHECK(a->deviation_pct == doctest::Approx(55.0));
}

TEST_CASE("no verdict before min_history previous counts, nor on a zero baseline") {
  CHECK(!DetectAnomaly("t", std::vector<uint64_t>{100, 100}, 1, Checks()).has_value());
  CHECK(DetectAnomaly("t", std::vector<uint64_t>{100, 100}, 1, Checks(50, 2)).has_value());
  CHECK(!DetectAnomaly("t", std::vector<uint64_t>{0, 0, 0}, 5000, Checks()).has_value());
}

TEST_CASE("the threshold is exclusive and configurable") {
  const std::vector<uint64_t> previous{100, 100, 100};
  CHECK(!DetectAnomaly("t", previous, 150, Checks()).has_value());  // exactly +50%
  CHECK(!DetectAnomaly("t", previous, 50, Checks()).has_value());   // exactly -50%
  CHECK(DetectAnomaly("t", previous, 151, Checks()).has_value());
  CHECK(DetectAnomaly("t", previous, 121, Checks(20)).has_value());
  CHECK(!DetectAnomaly("t", previous, 121, Checks(25)).has_value());
}

TEST_CASE("only the newest history_length previous counts form the baseline") {
  // Old counts of 10 would drag the mean down; with a window of 3 only the 1000s count.
  const std::vector<uint64_t> previous{10, 10, 10, 1000, 1000, 1000};
  CHECK(!DetectAnomaly("t", previous, 1000, Checks(50, 3, 3)).has_value());
  auto whole = DetectAnomaly("t", previous, 1000, Checks(50, 3, 10));
  REQUIRE(whole.has_value());
  CHECK(whole->kind == Anomaly::Kind::kSpike);
}

TEST_CASE("a connector that stopped: flat after growing is flagged; a table that never grew is not") {
  const std::vector<uint64_t> growing_then_flat{100, 110, 120, 130, 130};
  auto a = DetectAnomaly("t", growing_then_flat, 130, Checks());
  REQUIRE(a.has_value());
  CHECK(a->kind == Anomaly::Kind::kStalled);
  CHECK(Contains(a->reason, "stayed at 130 for 3 runs after growing from 100"));
  CHECK(Contains(a->reason, "stopped syncing"));

  // Two flat runs are not yet "several" with min_history 3.
  CHECK(!DetectAnomaly("t", std::vector<uint64_t>{100, 110, 120, 130}, 130, Checks()).has_value());
  // A static lookup table stays flat forever and is fine.
  CHECK(!DetectAnomaly("t", std::vector<uint64_t>{500, 500, 500, 500, 500}, 500, Checks()).has_value());
  // One increase before the flat run is not a growth trend.
  CHECK(!DetectAnomaly("t", std::vector<uint64_t>{500, 500, 600, 600, 600}, 600, Checks()).has_value());
  // Still growing: nothing to report.
  CHECK(!DetectAnomaly("t", std::vector<uint64_t>{100, 110, 120, 130, 140}, 150, Checks()).has_value());
}

TEST_CASE("row count check compares source and target") {
  auto ok = CheckRowCount("t", 1500, 1500);
  CHECK(ok.passed);
  CHECK(ok.check == "row_count");
  CHECK(Contains(ok.detail, "1,500"));
  auto bad = CheckRowCount("t", 1500, 1502);
  CHECK(!bad.passed);
  CHECK(Contains(bad.detail, "Source has 1,500 rows but the target has 1,502 (+2)"));
}

TEST_CASE("freshness compares the newest timestamp with now") {
  auto fresh = CheckFreshness("t", std::string("2025-03-15T14:00:00Z"), "2025-03-15T15:00:00Z", 3600);
  CHECK(fresh.passed);
  auto stale = CheckFreshness("t", std::string("2025-03-15T14:00:00Z"), "2025-03-15T15:00:01Z", 3600);
  CHECK(!stale.passed);
  CHECK(Contains(stale.detail, "3601 s old"));
  CHECK(Contains(stale.detail, "stale"));
  auto none = CheckFreshness("t", std::nullopt, "2025-03-15T15:00:00Z", 3600);
  CHECK(!none.passed);
}

}  // namespace
