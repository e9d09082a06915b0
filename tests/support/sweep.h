// Sampling of long test sweeps (a crash at every write and sync, hundreds of kills, randomized fault trials).
//
// A sweep is a sequence of points 0..N-1. By default a test runs a sample of them: every `stride`-th point
// starting at an offset drawn from ROCKY_SWEEP_SEED, which scripts/test derives from the commit being tested,
// so each commit covers a different, logged slice and over many commits every point is covered. With
// ROCKY_FULL_SWEEPS=1 every point runs. A test states its stride (how much of the sweep a CI run can afford),
// and Describe() says in the test's output what ran, so a failure can be replayed exactly:
//
//   const tests::Sweep sweep("crash points", total, /*ci_stride=*/4);
//   for (uint64_t k = 0; k < total; ++k) {
//     if (!sweep.Includes(k)) continue;
//     ...
//   }
//   MESSAGE(sweep.Describe());
//
// A failing point found in CI is replayed with the logged seed (ROCKY_SWEEP_SEED=<seed>) or with
// ROCKY_FULL_SWEEPS=1. Header-only, no doctest dependency; thread-safe once constructed.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace rocky::tests {

// True when ROCKY_FULL_SWEEPS is set to anything but "" or "0".
inline bool FullSweeps() {
  const char* v = std::getenv("ROCKY_FULL_SWEEPS");
  return v != nullptr && *v != '\0' && std::string_view(v) != "0";
}

// ROCKY_SWEEP_SEED as an unsigned number (decimal, or hex with 0x), 0 when unset or unreadable.
inline uint64_t SweepSeed() {
  const char* v = std::getenv("ROCKY_SWEEP_SEED");
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 0);
  return (end != nullptr && *end == '\0') ? n : 0;
}

class Sweep {
 public:
  // `points`: the sweep's length. `ci_stride`: in a sampled run, one point in this many runs (1 = all). The
  // offset mixes the seed with the sweep's name, so two sweeps of one run do not sample the same residues.
  Sweep(std::string_view name, uint64_t points, uint64_t ci_stride)
      : name_(name), points_(points), stride_(FullSweeps() || ci_stride == 0 ? 1 : ci_stride) {
    uint64_t h = SweepSeed() ^ 0x9E3779B97F4A7C15ull;
    for (const char c : name) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ull;
    offset_ = stride_ == 1 ? 0 : h % stride_;
  }

  bool Includes(uint64_t point) const { return point % stride_ == offset_; }
  // Points a run of this sweep visits.
  uint64_t SampledPoints() const {
    return points_ <= offset_ ? 0 : (points_ - offset_ + stride_ - 1) / stride_;
  }
  uint64_t stride() const { return stride_; }
  uint64_t offset() const { return offset_; }

  // "crash points: 123 of 490 (one point in 4, from point 2, ROCKY_SWEEP_SEED=0x..; ROCKY_FULL_SWEEPS=1 runs
  // all)".
  std::string Describe() const {
    std::string s = name_ + ": " + std::to_string(SampledPoints()) + " of " + std::to_string(points_);
    if (stride_ == 1) return s + " (all)";
    char seed[32];
    std::snprintf(seed, sizeof seed, "0x%llx", static_cast<unsigned long long>(SweepSeed()));
    return s + " (one point in " + std::to_string(stride_) + ", from point " + std::to_string(offset_) +
           ", ROCKY_SWEEP_SEED=" + seed + "; ROCKY_FULL_SWEEPS=1 runs all)";
  }

 private:
  std::string name_;
  uint64_t points_;
  uint64_t stride_;
  uint64_t offset_ = 0;
};

}  // namespace rocky::tests
