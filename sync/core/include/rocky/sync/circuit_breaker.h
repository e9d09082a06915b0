// A three-state circuit breaker over the transfers to one backend, so that a backend that is down costs a run
// `threshold` slow failed transfers and then nothing, instead of every transfer's full timeout and retries:
//
//   closed     transfers go through; `threshold` consecutive failed transfers open it
//   open       transfers are refused at once; after `recovery_timeout` the next caller becomes the probe
//   half-open  exactly one probe transfer is out; everyone else is refused until it reports: success closes
//              the breaker, failure opens it again for another `recovery_timeout`
//
// A threshold of 0 disables the breaker: everything is admitted and nothing is counted.
//
// Shared by every transfer to the same backend in the process (SharedCircuitBreaker), which is the point:
// Rocky's original built a new breaker per call, so it never opened.
//
// Time is passed in by the caller (from SyncClock) rather than read here, so tests move it at will and a
// breaker kept in the process-wide registry never holds on to a test's clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace rocky::sync {

class CircuitBreaker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  enum class State : unsigned char { kClosed, kOpen, kHalfOpen };

  // What Admit decided. Every kAdmitted or kProbe must be followed by exactly one Record call with it (else
  // a probe stays out forever and the breaker refuses everyone); kRefused needs nothing.
  enum class Admission : unsigned char { kRefused, kAdmitted, kProbe };

  CircuitBreaker(uint32_t threshold, std::chrono::milliseconds recovery_timeout);

  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // Whether a transfer may start at `now`. Thread-safe.
  Admission Admit(TimePoint now);

  // The outcome of an admitted transfer. Thread-safe. A result of a transfer admitted while closed that
  // arrives after the breaker opened (it was in flight) changes nothing: only the probe decides then.
  void Record(Admission admission, bool success, TimePoint now);

  // Thread-safe snapshots, for messages and tests. state() reports kOpen until a caller actually takes the
  // probe, even when the recovery timeout has passed.
  State state() const;
  uint32_t consecutive_failures() const;
  uint32_t threshold() const { return threshold_; }
  std::chrono::milliseconds recovery_timeout() const { return recovery_timeout_; }

 private:
  const uint32_t threshold_;
  const std::chrono::milliseconds recovery_timeout_;
  mutable std::mutex mu_;
  State state_ = State::kClosed;       // guarded by mu_
  uint32_t consecutive_failures_ = 0;  // guarded by mu_
  TimePoint opened_at_{};              // guarded by mu_; when the breaker last opened
};

// "closed", "open", "half-open".
std::string_view CircuitStateName(CircuitBreaker::State state);

// The process's breaker for the backend at `location` (RemoteStateBackend::Location()), created with these
// settings on first use and kept for the life of the process (a process talks to a handful of backends at
// most). Later calls for the same location get the same breaker whatever settings they pass: one process runs
// one configuration. Thread-safe.
std::shared_ptr<CircuitBreaker> SharedCircuitBreaker(const std::string& location, uint32_t threshold,
                                                     std::chrono::milliseconds recovery_timeout);

}  // namespace rocky::sync
