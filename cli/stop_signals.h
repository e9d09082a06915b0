// Ctrl-C (SIGINT) and SIGTERM for `rocky`: installed first thing in main(), so that a stop at any instant
// after that ends the process with an exit code (130, 143) instead of the signal's default action, which
// would leave no chance to finish or roll back the table in progress, or to keep the state file as it was. A
// stop request makes: a run skip the tables after the one being copied (replication's RunOptions::stop),
// every remote transfer end within about a second (sync/transfer_stop.h), and main() exit 128 + the signal's
// number.
#pragma once

#include <atomic>

namespace rocky::cli {

// Installs the handlers (SIGINT, SIGTERM; SIGPIPE ignored, so a closed stdout is a write error the command
// reports rather than a silent death). Call once, before anything else in main().
void InstallStopHandlers();

// The first stop signal received (SIGINT or SIGTERM), 0 when none.
int StopSignalReceived();

// Set once a stop signal arrived.
const std::atomic<bool>& StopRequestedFlag();

// Set once a stop signal arrived or RequestRunStop() was called: what replication::RunOptions::stop points
// at, so a run stops before its next table for either reason.
const std::atomic<bool>& RunStopFlag();

// Stops a run before its next table without a signal: the remote state's lease was lost (the renewal thread
// calls it). Thread-safe and async-signal-safe (an atomic store). The exit code stays the command's own
// (StopSignalReceived() is still 0).
void RequestRunStop() noexcept;

// 128 + StopSignalReceived() (130 for Ctrl-C, 143 for SIGTERM), as shells report a process a signal stopped.
int ExitCodeForStop();

}  // namespace rocky::cli
