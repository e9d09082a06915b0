// One command at a time per remote state, across machines: a lease kept beside the remote state object.
//
// Every command that changes the remote state (plan, apply, run, state set / delete / import, state push
// --force) takes the lease before it downloads, keeps it renewed while it works, and releases it when it ends
// (also after Ctrl-C and errors). A second runner finds the lease held and is refused at once (or waits for
// it,
// `--wait`); a runner that died holding it (SIGKILL, a lost pod) leaves a lease that expires, and the next
// runner takes it over.
//
// Where the lease lives (LeaseStore, one per backend kind; RemoteStateBackend::OpenLease builds it):
//   S3      the object `<prefix>state.redb.lease`, a small JSON record (LeaseRecord). Taken with PUT
//           If-None-Match: * (only one creator wins); an expired one is taken over with PUT If-Match on the
//           ETag that was read (only one taker wins: S3 checks the condition and writes atomically); renewed
//           with PUT If-Match on the holder's own ETag (a record that differs at every renewal, so no ETag
//           ever comes back); released with DELETE If-Match on it. Expiry is judged by the server's clock
//           alone: the lease may be taken over once the server's Date is at least its Last-Modified +
//           lease_seconds + 1 s (both headers count whole seconds; the extra second makes the truncation
//           safe).
//   Valkey  the key `<prefix>state.redb.lease`, taken with SET key value NX PX ttl, so the server expires it;
//           renewed and released by a Lua script (EVAL) that compares the value with the holder's own first,
//           inside the server. A second key, `<prefix>state.redb.lease.last` (no TTL), keeps the newest
//           holder's record until it releases, so a lease that expired instead of being released is reported
//           as taken over, naming its holder.
//   tiered  the S3 lease (the durable leg).
//
// The holder's own view: its lease is good until (the instant it sent its last successful take or renewal) +
// lease_seconds, on its own monotonic clock. The server wrote that record after the request was sent, so the
// server's expiry is never earlier: the holder always knows it lost the lease before anyone can take it over.
// No two machines' clocks are ever compared.
//
// Holding: a background thread renews the lease every renew_every (a third of lease_seconds); a failed
// renewal is retried with backoff until the holder's view of the lease ends, and then the lease is lost. A
// renewal that finds another record in place (taken over, or broken with `rocky state unlock`) loses it at
// once. Losing calls LeaseOptions::on_lost (from the renewal thread), emits a "lost" event, and held() turns
// false: the command must stop before its next table and must not upload the state (the remote state is no
// longer its to write).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "rocky/base/status.h"
#include "rocky/config/config.h"
#include "rocky/sync/lease_store.h"
#include "rocky/sync/remote_state.h"

namespace rocky::sync {

// One step of the lease, emitted as a JSON line like the transfer events (transfer_event.h):
//   {"event":"state.lease","backend":"s3","key":"rocky/prod/state.redb.lease","outcome":"acquired",
//    "duration_ms":14,"holder":{"host":"runner-7","pid":4242,"command":"run","started_at":"...",
//    "expires_at":"..."},"expires_in_ms":60000}
// "holder" is this process's lease (for busy: the one it asked for); "other" (busy, taken_over, lost when
// known) the other party's: the live holder that refused us, the expired holder we replaced, the holder that
// took ours. "error" says why for
// lost and error. No token and no secret is ever in an event.
enum class LeaseOutcome : unsigned char {
  kAcquired,   // taken: there was none
  kRenewed,    // renewed by the background thread
  kReleased,   // given back at the end of the command
  kBusy,       // another runner holds it (with --wait: still, when the wait ended)
  kTakenOver,  // taken from a holder whose lease had expired (it crashed or was cut off)
  kLost,       // lost mid-command: a renewal failed until the lease ran out, or another took it over
  kError,      // could not be taken or released: the backend failed (the message says how)
};

// "acquired", "renewed", "released", "busy", "taken_over", "lost", "error".
std::string_view LeaseOutcomeName(LeaseOutcome outcome);

struct LeaseEvent {
  std::string backend;  // "s3", "valkey", "tiered"
  std::string key;
  LeaseOutcome outcome = LeaseOutcome::kAcquired;
  uint64_t duration_ms = 0;  // this step, waits and retries included
  std::optional<LeaseRecord> holder;
  std::optional<LeaseRecord> other;
  std::optional<int64_t> expires_in_ms;  // busy: the other's time left (server clock); ours otherwise
  std::string error;                     // never a secret (the caller's sink redacts messages anyway)
};

// One line of JSON (the project's JsonWriter), no trailing newline.
std::string LeaseEventJson(const LeaseEvent& event);

// Receives every lease event. Called from the command's thread and from the renewal thread: must be
// thread-safe.
using LeaseEventSink = std::function<void(const LeaseEvent&)>;

struct LeaseOptions {
  std::string command;  // what this holder runs, for the record ("run", "state set")
  std::chrono::milliseconds duration{std::chrono::seconds(60)};  // [state] lease_seconds
  // How often the holder renews: a third of `duration` when zero.
  std::chrono::milliseconds renew_every{0};
  // How long to wait for a lease another runner holds (--wait SECONDS); zero: refused at once.
  std::chrono::milliseconds wait{0};
  // The budget of one take (its retries included) and the retry policy for transient failures: [state]
  // transfer_timeout_seconds and [state.retry].
  std::chrono::milliseconds take_timeout{std::chrono::seconds(300)};
  config::RetryConfig retry;
  // Called once, from the renewal thread, when the lease is lost. Must be thread-safe and quick (set a flag).
  std::function<void()> on_lost;
  // What this process says about itself (tests pin them); empty / 0: gethostname(), getpid().
  std::string host;
  int64_t pid = 0;
};

// A lease taken and held: renewed in the background until Release() (or destruction, which releases).
class StateLease {
 public:
  // What Take found.
  struct Taking {
    std::unique_ptr<StateLease> lease;           // null when busy
    LeaseOutcome outcome = LeaseOutcome::kBusy;  // kAcquired, kTakenOver or kBusy
    LeaseInfo seen;  // kBusy: the live lease that refused us; kTakenOver: the expired one replaced
    std::chrono::milliseconds waited{0};
  };

  // Takes the lease, waiting up to options.wait while another runner holds it, retrying transient failures
  // as [state.retry] says within options.take_timeout; then starts renewing it. Emits "acquired",
  // "taken_over" or "busy" (once when first refused, once more when a wait ends without it), or "error".
  // Busy is not an error (Taking::lease is null). Errors: the backend failed for good (kPermissionDenied,
  // ...), the budget ran out (kTimedOut), or a stop request (a message starting "Interrupted").
  static Result<Taking> Take(std::unique_ptr<LeaseStore> store, const std::string& backend_kind,
                             LeaseOptions options, LeaseEventSink sink);

  ~StateLease();  // Release(), its result ignored (the event says it)
  StateLease(const StateLease&) = delete;
  StateLease& operator=(const StateLease&) = delete;

  // True while the lease is this process's: not lost, and its last take or renewal is recent enough (the
  // holder's own view above). Thread-safe.
  bool held() const;
  // True once the lease was lost (on_lost was called). Thread-safe.
  bool lost() const { return lost_.load(); }
  // Why it was lost; empty while held. Thread-safe.
  std::string lost_reason() const;
  // Successful renewals so far. Thread-safe.
  uint64_t renewals() const { return renewals_.load(); }
  const LeaseRecord& record_at_take() const { return first_; }

  // Stops the renewal thread (canceling a renewal in flight: within about a second) and gives the lease back
  // when it is still ours, ignoring stop requests but within a short budget (5 s with retries; once a stop
  // was requested, one attempt of at most 1 s): a lease that cannot be released expires on its own. Emits
  // "released" or "error" (nothing when it was lost: "lost" was said), or "lost" when the lease is found gone
  // or another's at this point (broken by `rocky state unlock` since the last renewal). Idempotent.
  Status Release();

 private:
  StateLease(std::unique_ptr<LeaseStore> store, std::string backend_kind, LeaseOptions options,
             LeaseEventSink sink, LeaseRecord record, std::chrono::steady_clock::time_point valid_until);
  void RenewLoop();
  void Lose(const std::string& why, std::optional<LeaseRecord> other);
  LeaseEvent NewEvent(LeaseOutcome outcome) const;
  void Emit(const LeaseEvent& event) const;

  std::unique_ptr<LeaseStore> store_;
  std::string backend_kind_;
  LeaseOptions options_;
  LeaseEventSink sink_;
  LeaseRecord first_;    // as taken
  LeaseRecord current_;  // as last written (renewal thread only, then Release)

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;                              // guarded by mu_
  bool released_ = false;                              // guarded by mu_
  std::chrono::steady_clock::time_point valid_until_;  // guarded by mu_
  std::string lost_reason_;                            // guarded by mu_
  std::atomic<bool> lost_{false};
  std::atomic<bool> cancel_{false};  // the store's cancel flag: set by Release to end a renewal in flight
  std::atomic<uint64_t> renewals_{0};
  std::thread renewer_;
};

}  // namespace rocky::sync
