#include "stop_signals.h"

#include <csignal>

#include "rocky/sync/transfer_stop.h"

namespace rocky::cli {
namespace {

std::atomic<bool> g_stop_requested{false};
std::atomic<bool> g_run_stop{false};  // a signal, or RequestRunStop()
std::atomic<int> g_stop_signal{0};

// Async-signal-safe: atomics and sync::RequestTransferStop (an atomic store and a write(2)).
extern "C" void OnStopSignal(int signal) {
  int expected = 0;
  g_stop_signal.compare_exchange_strong(expected, signal);
  g_stop_requested.store(true);
  g_run_stop.store(true);
  sync::RequestTransferStop();
}

}  // namespace

void InstallStopHandlers() {
  sync::PrepareTransferStop();  // the handler cannot create the wake-up pipe itself
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  // Restart interrupted system calls: waits that must end on a stop poll the stop pipe (transfer_stop.h) or
  // look at the flag, and nothing else has to cope with EINTR.
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, nullptr);
}

int StopSignalReceived() { return g_stop_signal.load(); }

const std::atomic<bool>& StopRequestedFlag() { return g_stop_requested; }

const std::atomic<bool>& RunStopFlag() { return g_run_stop; }

void RequestRunStop() noexcept { g_run_stop.store(true); }

int ExitCodeForStop() { return 128 + StopSignalReceived(); }

}  // namespace rocky::cli
