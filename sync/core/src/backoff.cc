#include "rocky/sync/backoff.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace rocky::sync {

Backoff::Backoff(const config::RetryConfig& config, std::function<double()> random_unit)
    : config_(config), random_unit_(std::move(random_unit)) {}

std::chrono::milliseconds Backoff::Ceiling(uint32_t retry) const {
  const double cap = static_cast<double>(config_.max_backoff_ms);
  const double multiplier = std::max(config_.backoff_multiplier, 1.0);
  const uint32_t exponent = retry == 0 ? 0 : retry - 1;
  // In double, so a large exponent saturates at infinity (and then at the cap) instead of overflowing.
  double ceiling = static_cast<double>(config_.initial_backoff_ms) * std::pow(multiplier, exponent);
  if (!(ceiling < cap)) ceiling = cap;  // also catches NaN and infinity
  return std::chrono::milliseconds(static_cast<int64_t>(ceiling));
}

std::chrono::milliseconds Backoff::Delay(uint32_t retry) const {
  const std::chrono::milliseconds ceiling = Ceiling(retry);
  if (!config_.jitter || ceiling.count() == 0) return ceiling;
  double unit = random_unit_();
  // A source that strays outside [0, 1) must not produce a wait above the ceiling or below zero.
  if (!(unit >= 0.0)) unit = 0.0;
  if (unit >= 1.0) unit = std::nextafter(1.0, 0.0);
  // [0, ceiling] inclusive: ceiling + 1 whole milliseconds to draw from.
  const auto drawn = static_cast<int64_t>(unit * static_cast<double>(ceiling.count() + 1));
  return std::chrono::milliseconds(std::min<int64_t>(drawn, ceiling.count()));
}

}  // namespace rocky::sync
