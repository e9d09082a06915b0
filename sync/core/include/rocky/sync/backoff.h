// How long the lifecycle waits before retrying a transient failure: exponential backoff with "full jitter"
// (AWS Architecture Blog, "Exponential Backoff And Jitter"): the n-th retry waits a uniform draw in
// [0, min(max_backoff_ms, initial_backoff_ms * backoff_multiplier^(n-1))], so runners that failed together
// (one outage, many pods) spread their retries instead of hammering the backend in lockstep.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "rocky/config/config.h"

namespace rocky::sync {

class Backoff {
 public:
  // `random_unit` returns a uniform draw in [0, 1); it is only called when config.jitter is set, and may then
  // not be null. Injectable so tests see exact delays.
  Backoff(const config::RetryConfig& config, std::function<double()> random_unit);

  // The ceiling of the wait before retry number `retry` (1 for the first retry): initial *
  // multiplier^(retry-1), capped at max_backoff_ms (and never above it, however large `retry` is).
  std::chrono::milliseconds Ceiling(uint32_t retry) const;

  // The wait before retry number `retry`: Ceiling(retry), or with jitter a uniform draw in [0,
  // Ceiling(retry)].
  std::chrono::milliseconds Delay(uint32_t retry) const;

 private:
  config::RetryConfig config_;
  std::function<double()> random_unit_;
};

}  // namespace rocky::sync
