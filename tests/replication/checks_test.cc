// The checks' rules, on plain numbers: anomaly detection (drop, spike, stalled) on counts with the times they
// were taken, row count, freshness.
#include "rocky/replication/checks.h"

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rocky/base/timestamp.h"

namespace {

using rocky::config::ChecksConfig;
using rocky::replication::Anomaly;
using rocky::replication::CheckFreshness;
using rocky::replication::CheckRowCount;
using rocky::replication::DetectAnomaly;
using rocky::state::CheckEntry;

ChecksConfig Checks(double threshold = 50, uint32_t min_history = 3, uint32_t history_length = 10) {
  ChecksConfig c;
  c.enabled = true;
  c.anomaly_threshold_pct = threshold;
  c.min_history = min_history;
  c.history_length = history_length;
  return c;
}

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Counts taken `seconds_apart` from each other, from 2025-03-01T00:00:00Z.
std::string At(int64_t seconds) {
  return rocky::base::FormatUtc(
      std::chrono::system_clock::time_point(std::chrono::seconds(1740787200 + seconds)));
}

std::vector<CheckEntry> History(const std::vector<uint64_t>& counts, int64_t seconds_apart = 3600) {
  std::vector<CheckEntry> out;
  for (size_t i = 0; i < counts.size(); ++i)
    out.push_back(CheckEntry{counts[i], At(static_cast<int64_t>(i) * seconds_apart)});
  return out;
}

// Runs the detector the way the runner does, run after run: each count judged against the ones before it
// (capped at history_length), then appended. Returns each run's verdict.
std::vector<std::optional<Anomaly>> Replay(const std::vector<std::pair<uint64_t, int64_t>>& runs,
                                           const ChecksConfig& checks = Checks()) {
  std::vector<CheckEntry> history;
  std::vector<std::optional<Anomaly>> verdicts;
  for (const auto& [count, at] : runs) {
    verdicts.push_back(DetectAnomaly("t", history, count, At(at), checks));
    history.push_back(CheckEntry{count, At(at)});
    if (history.size() > checks.history_length) history.erase(history.begin());
  }
  return verdicts;
}

TEST_CASE("steady growth stays quiet (+1,000 rows per hourly run on 2,000), run after run") {
  std::vector<std::pair<uint64_t, int64_t>> runs;
  for (int i = 0; i < 30; ++i) runs.emplace_back(2000 + 1000 * i, 3600 * i);
  for (const auto& verdict : Replay(runs)) CHECK_FALSE(verdict.has_value());
}

TEST_CASE("a steadily growing table run twice seconds apart is not a stopped connector") {
  std::vector<std::pair<uint64_t, int64_t>> runs;
  for (int i = 0; i < 6; ++i) runs.emplace_back(2000 + 1000 * i, 3600 * i);
  runs.emplace_back(7000, 3600 * 5 + 5);   // 5 s later, nothing new yet
  runs.emplace_back(7000, 3600 * 5 + 10);  // and again
  for (const auto& verdict : Replay(runs)) CHECK_FALSE(verdict.has_value());
}

TEST_CASE("a connector that stopped: flat for three times its usual growth is flagged, with the numbers") {
  std::vector<std::pair<uint64_t, int64_t>> runs;
  for (int i = 0; i < 6; ++i) runs.emplace_back(2000 + 1000 * i, 3600 * i);
  runs.emplace_back(7000, 3600 * 6);  // 1 h flat: expected 1,000
  runs.emplace_back(7000, 3600 * 7);  // 2 h flat
  runs.emplace_back(7000, 3600 * 8);  // 3 h flat: three hours' growth missing
  const auto verdicts = Replay(runs);
  for (size_t i = 0; i + 1 < verdicts.size(); ++i) CHECK_FALSE(verdicts[i].has_value());
  REQUIRE(verdicts.back().has_value());
  CHECK(verdicts.back()->kind == Anomaly::Kind::kStalled);
  CHECK(Contains(verdicts.back()->reason, "stayed at 7,000 for 3.0 h (4 runs)"));
  CHECK(Contains(verdicts.back()->reason, "1,000 rows per hour"));
  CHECK(Contains(verdicts.back()->reason, "stopped syncing"));
  // A static lookup table stays flat forever and is fine; so is one that grew only once.
  CHECK_FALSE(
      DetectAnomaly("t", History({500, 500, 500, 500, 500}), 500, At(3600 * 100), Checks()).has_value());
  CHECK_FALSE(
      DetectAnomaly("t", History({500, 500, 600, 600, 600}), 600, At(3600 * 100), Checks()).has_value());
}

TEST_CASE("a truncated source is a drop; the zero does not poison later baselines") {
  std::vector<std::pair<uint64_t, int64_t>> runs;
  for (int i = 0; i < 6; ++i) runs.emplace_back(10000 + 1000 * i, 3600 * i);
  runs.emplace_back(0, 3600 * 6);       // truncated
  runs.emplace_back(0, 3600 * 6 + 60);  // still empty a minute later: already reported
  runs.emplace_back(17000, 3600 * 7);   // resynced: everything back, plus an hour's growth
  for (int i = 8; i < 20; ++i) runs.emplace_back(10000 + 1000 * i, 3600 * i);  // steady again
  runs.emplace_back(2 * 29000, 3600 * 20);  // and then a sync that duplicated everything
  const auto verdicts = Replay(runs);
  REQUIRE(verdicts[6].has_value());
  CHECK(verdicts[6]->kind == Anomaly::Kind::kDrop);
  CHECK(Contains(verdicts[6]->reason,
                 "dropped to 0 from 15,000 at the previous run (-100.0%, threshold 50.0%)"));
  CHECK(Contains(verdicts[6]->reason, "truncated"));
  CHECK_FALSE(verdicts[7].has_value());
  CHECK_FALSE(verdicts[8].has_value());  // the refill is not a spike
  for (size_t i = 9; i + 1 < verdicts.size(); ++i) CHECK_FALSE(verdicts[i].has_value());
  REQUIRE(verdicts.back().has_value());
  CHECK(verdicts.back()->kind == Anomaly::Kind::kSpike);
}

TEST_CASE("a duplicating sync is a spike: growth far beyond what the earlier rate predicts") {
  const auto previous = History({7000, 8000, 9000, 10000});
  auto a = DetectAnomaly("t", previous, 21000, At(3600 * 4), Checks());
  REQUIRE(a.has_value());
  CHECK(a->kind == Anomaly::Kind::kSpike);
  CHECK(a->baseline_avg == doctest::Approx(11000.0));
  CHECK(a->deviation_pct == doctest::Approx(90.909).epsilon(1e-3));
  CHECK(Contains(a->reason, "jumped to 21,000 from 10,000 in 1.0 h"));
  CHECK(Contains(a->reason, "predicts about 11,000"));
  CHECK(Contains(a->reason, "duplicate"));
  // The same jump over a long gap is what the rate predicts: not a spike.
  CHECK_FALSE(DetectAnomaly("t", previous, 21000, At(3600 * 14), Checks()).has_value());
}

TEST_CASE("no verdict before min_history previous counts; the threshold is exclusive and configurable") {
  CHECK_FALSE(DetectAnomaly("t", History({100, 100}), 1, At(7200), Checks()).has_value());
  CHECK(DetectAnomaly("t", History({100, 100}), 1, At(7200), Checks(50, 2)).has_value());
  CHECK_FALSE(DetectAnomaly("t", History({0, 0, 0}), 5000, At(3 * 3600), Checks()).has_value());
  // No growth so far: any growth is excess. Exactly 50% of the previous count is not over the threshold.
  const auto flat = History({100, 100, 100});
  CHECK_FALSE(DetectAnomaly("t", flat, 150, At(3 * 3600), Checks()).has_value());
  CHECK_FALSE(DetectAnomaly("t", flat, 50, At(3 * 3600), Checks()).has_value());
  CHECK(DetectAnomaly("t", flat, 151, At(3 * 3600), Checks()).has_value());
  CHECK(DetectAnomaly("t", flat, 49, At(3 * 3600), Checks()).has_value());
  CHECK(DetectAnomaly("t", flat, 121, At(3 * 3600), Checks(20)).has_value());
  CHECK_FALSE(DetectAnomaly("t", flat, 121, At(3 * 3600), Checks(25)).has_value());
}

TEST_CASE("only the newest history_length previous counts form the baseline") {
  // Fast growth long ago would excuse a jump now; with a window of 3 only the recent slow growth counts.
  const auto previous = History({1000, 5000, 9000, 9010, 9020, 9030});
  CHECK(DetectAnomaly("t", previous, 15000, At(6 * 3600), Checks(50, 3, 3)).has_value());
  CHECK_FALSE(DetectAnomaly("t", previous, 15000, At(6 * 3600), Checks(50, 3, 10)).has_value());
}

TEST_CASE("the README's worked example") {
  // Hourly runs from 10:00 (At(0)): 2,000, 3,000, 4,000, 5,000.
  const auto history = History({2000, 3000, 4000, 5000});
  const auto h = [](double hours) { return At(static_cast<int64_t>(hours * 3600)); };
  CHECK_FALSE(DetectAnomaly("t", history, 6000, h(4), Checks()).has_value());  // 14:00
  auto with = [&](std::vector<std::pair<uint64_t, double>> more) {
    std::vector<CheckEntry> out = history;
    for (const auto& [count, hours] : more) out.push_back(CheckEntry{count, h(hours)});
    return out;
  };
  CHECK_FALSE(
      DetectAnomaly("t", with({{6000, 4}}), 6000, At(4 * 3600 + 5), Checks()).has_value());  // 14:00:05
  auto spike = DetectAnomaly("t", with({{6000, 4}}), 13000, h(5), Checks());                 // 15:00
  REQUIRE(spike.has_value());
  CHECK(spike->kind == Anomaly::Kind::kSpike);
  CHECK(Contains(spike->reason,
                 "jumped to 13,000 from 6,000 in 1.0 h, where its growth of 1,000 rows per hour "
                 "predicts about 7,000"));
  auto drop = DetectAnomaly("t", with({{6000, 4}}), 0, h(5), Checks());
  REQUIRE(drop.has_value());
  CHECK(drop->kind == Anomaly::Kind::kDrop);
  CHECK_FALSE(DetectAnomaly("t", with({{6000, 4}, {0, 5}}), 8000, h(6), Checks()).has_value());  // refilled
  CHECK_FALSE(DetectAnomaly("t", with({{6000, 4}}), 6000, h(5), Checks()).has_value());
  CHECK_FALSE(DetectAnomaly("t", with({{6000, 4}, {6000, 5}}), 6000, h(6), Checks()).has_value());
  auto stalled = DetectAnomaly("t", with({{6000, 4}, {6000, 5}, {6000, 6}}), 6000, h(7), Checks());
  REQUIRE(stalled.has_value());
  CHECK(stalled->kind == Anomaly::Kind::kStalled);
  CHECK(Contains(stalled->reason, "predicts about 3,000 new rows by now"));
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
