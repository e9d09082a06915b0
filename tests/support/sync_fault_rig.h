// What the remote-state fault tests share whatever the backend (tests/sync/faults_test.cc over S3,
// tests/sync/valkey_faults_test.cc over Valkey): a FaultProxy in front of the test's real server, one key
// prefix, and StateSyncs (runs) over backends that reach the server through the proxy, recording every event
// and warning. Budgets and backoffs are milliseconds (SyncClock's overrides) so the binaries stay fast under
// sanitizers.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fault_proxy.h"
#include "rocky/config/config.h"
#include "rocky/sync/remote_state.h"
#include "rocky/sync/state_sync.h"
#include "rocky/sync/transfer_event.h"
#include "temp_dir.h"

namespace rocky_test {

// The retry policy the fault tests start from: three retries with 10 to 50 ms jittered backoffs, ten per run,
// no circuit breaker. The transfer timeout is replaced by the rig's millisecond budget.
inline rocky::config::StateConfig FaultTestPolicy(rocky::config::StateBackend backend) {
  rocky::config::StateConfig c;
  c.backend = backend;
  c.transfer_timeout_seconds = 60;
  c.retry.max_retries = 3;
  c.retry.initial_backoff_ms = 10;
  c.retry.backoff_multiplier = 2.0;
  c.retry.max_backoff_ms = 50;
  c.retry.jitter = true;
  c.retry.circuit_breaker_threshold = 0;
  c.retry.max_retries_per_run = 10;
  return c;
}

// A test derives from it and builds its backend (pointed at proxy's port, under prefix), then hands it to
// Run.
struct SyncFaultRig {
  // Requires the proxy to start (fails the test, saying why, when it does not).
  SyncFaultRig(int server_port, std::string key_prefix) : proxy(server_port), prefix(std::move(key_prefix)) {
    REQUIRE_MESSAGE(proxy.ok(), proxy.error());
  }

  // One run over `backend` (its Location() kept in `location`), whose transfers have `budget` each and whose
  // breaker recovers after `recovery`; its events and warnings are appended to the rig's.
  std::unique_ptr<rocky::sync::StateSync> Run(std::unique_ptr<rocky::sync::RemoteStateBackend> backend,
                                              const rocky::config::StateConfig& policy,
                                              std::chrono::milliseconds budget) {
    location = backend->Location();
    rocky::sync::SyncClock clock;
    clock.transfer_timeout = budget;
    clock.breaker_recovery = recovery;
    return std::make_unique<rocky::sync::StateSync>(
        std::move(backend), policy, [this](const rocky::sync::TransferEvent& e) { events.push_back(e); },
        clock, [this](std::string_view w) { warnings.emplace_back(w); });
  }

  // The newest event (requires one).
  const rocky::sync::TransferEvent& Last() const {
    REQUIRE(!events.empty());
    return events.back();
  }

  FaultProxy proxy;
  std::string prefix;
  std::string location;
  std::chrono::milliseconds recovery{300};
  std::vector<rocky::sync::TransferEvent> events;
  std::vector<std::string> warnings;
  TempDir dir;
};

}  // namespace rocky_test
