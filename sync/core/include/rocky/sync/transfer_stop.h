// A process-wide request to stop every remote-state transfer now: what Ctrl-C and SIGTERM mean to the sync
// layer. A transfer that sees it ends within about a second as interrupted (TransferOutcome::kInterrupted),
// never retried, with the local state file as it was: an HTTP request aborts from curl's progress callback
// (called at least once a second while a request waits), a Valkey command stops waiting for its socket, a
// backoff sleep wakes up.
//
// Process-wide because signals are: the CLI's SIGINT/SIGTERM handler calls RequestTransferStop(), and every
// StateSync, backend and client of the process sees it. There is no way to take a request back but
// ClearTransferStopForTesting (a command that was asked to stop stops).
#pragma once

#include <chrono>

namespace rocky::sync {

// Creates the wake-up pipe the waits poll on. Call it before installing a signal handler that calls
// RequestTransferStop (the handler cannot create it); harmless to call again. Every function below also
// creates it on first use.
void PrepareTransferStop();

// Async-signal-safe (an atomic store and a write(2) to a non-blocking pipe): may be called from a signal
// handler, or any thread.
void RequestTransferStop() noexcept;

// True once RequestTransferStop was called. Async-signal-safe, thread-safe.
bool TransferStopRequested() noexcept;

// A descriptor that becomes readable once a stop is requested (and stays so), for poll(2) beside a socket;
// -1 when the pipe could not be created (then only TransferStopRequested() tells).
int TransferStopFd() noexcept;

// Sleeps for `duration` unless a stop is requested first (then returns at once). True when the whole
// duration passed without a stop request.
bool SleepUnlessStopRequested(std::chrono::milliseconds duration);

// Forgets a request, so one test process can exercise stops more than once. Requires that no transfer runs.
void ClearTransferStopForTesting();

}  // namespace rocky::sync
