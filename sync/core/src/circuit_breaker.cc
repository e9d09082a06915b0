#include "rocky/sync/circuit_breaker.h"

#include <map>

namespace rocky::sync {

CircuitBreaker::CircuitBreaker(uint32_t threshold, std::chrono::milliseconds recovery_timeout)
    : threshold_(threshold), recovery_timeout_(recovery_timeout) {}

CircuitBreaker::Admission CircuitBreaker::Admit(TimePoint now) {
  if (threshold_ == 0) return Admission::kAdmitted;
  std::lock_guard<std::mutex> lock(mu_);
  switch (state_) {
    case State::kClosed: return Admission::kAdmitted;
    case State::kOpen:
      if (now - opened_at_ < recovery_timeout_) return Admission::kRefused;
      state_ = State::kHalfOpen;  // this caller is the one probe
      return Admission::kProbe;
    case State::kHalfOpen: return Admission::kRefused;  // the probe is out
  }
  return Admission::kRefused;
}

void CircuitBreaker::Record(Admission admission, bool success, TimePoint now) {
  if (threshold_ == 0 || admission == Admission::kRefused) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (admission == Admission::kProbe) {
    if (success) {
      state_ = State::kClosed;
      consecutive_failures_ = 0;
    } else {
      state_ = State::kOpen;
      opened_at_ = now;
    }
    return;
  }
  if (state_ != State::kClosed) return;  // admitted before it opened: the probe decides now
  if (success) {
    consecutive_failures_ = 0;
    return;
  }
  if (++consecutive_failures_ >= threshold_) {
    state_ = State::kOpen;
    opened_at_ = now;
  }
}

CircuitBreaker::State CircuitBreaker::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

uint32_t CircuitBreaker::consecutive_failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return consecutive_failures_;
}

std::string_view CircuitStateName(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed: return "closed";
    case CircuitBreaker::State::kOpen: return "open";
    case CircuitBreaker::State::kHalfOpen: return "half-open";
  }
  return "unknown";
}

std::shared_ptr<CircuitBreaker> SharedCircuitBreaker(const std::string& location, uint32_t threshold,
                                                     std::chrono::milliseconds recovery_timeout) {
  // Leaked on purpose: breakers must outlive every StateSync, including ones destroyed during static
  // destruction.
  static std::mutex* mu = new std::mutex;
  static auto* registry = new std::map<std::string, std::shared_ptr<CircuitBreaker>>;
  std::lock_guard<std::mutex> lock(*mu);
  auto [it, inserted] = registry->try_emplace(location);
  if (inserted) it->second = std::make_shared<CircuitBreaker>(threshold, recovery_timeout);
  return it->second;
}

}  // namespace rocky::sync
