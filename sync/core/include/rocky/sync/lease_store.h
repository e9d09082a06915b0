// The lease's records and the primitive operations on one backend's lease (LeaseStore). What the lease is
// for, and how each backend keeps it, is in state_lease.h; RemoteStateBackend::OpenLease (remote_state.h)
// builds a store. Apart from remote_state.h so that it can name LeaseStore without a cycle.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rocky/base/status.h"

namespace rocky::sync {

using base::Result;
using base::Status;

// As in remote_state.h: the instant by which a call must be done.
using Deadline = std::chrono::steady_clock::time_point;

// What a lease says about its holder: the JSON body of the S3 object, the value of the Valkey key.
//   {"rocky_lease":1,"host":"runner-7","pid":4242,"command":"run","started_at":"2026-03-01T10:00:00Z",
//    "expires_at":"2026-03-01T10:01:20Z","lease_ms":60000,"token":"9f0c...","renewal":4}
// started_at and expires_at are on the holder's clock, for people only (expiry is judged by the server's).
struct LeaseRecord {
  std::string host;
  int64_t pid = 0;
  std::string command;     // "run", "state set", ...
  std::string started_at;  // RFC 3339 UTC: when the holder took the lease
  std::string expires_at;  // RFC 3339 UTC: the holder's last renewal + lease_ms, on the holder's clock
  int64_t lease_ms = 0;    // the holder's lease_seconds: how long after its last write the lease lasts
  std::string token;       // random per take: tells the holder's own writes from anyone else's
  int64_t renewal = 0;     // 0 when taken, +1 per renewal: every write differs, so does every ETag

  // The JSON above (the project's JsonWriter), one line.
  std::string ToJson() const;
  // Parses ToJson's output; kCorruption naming what is wrong with anything else.
  static Result<LeaseRecord> FromJson(std::string_view json);
};

// What a look at the lease found.
struct LeaseInfo {
  enum class State : unsigned char {
    kFree,     // no lease
    kHeld,     // a live lease
    kExpired,  // a lease whose holder did not renew it in time: the next taker takes it over
  };
  State state = State::kFree;
  // kHeld, kExpired: who holds (held) it. kFree on Valkey: the last holder, when its lease expired instead
  // of being released (then `last_expired` is true).
  std::optional<LeaseRecord> holder;
  bool last_expired = false;
  // kHeld: how long until it may be taken over, by the server's clock.
  std::chrono::milliseconds expires_in{0};
  // kHeld, kExpired (S3): the server-clock instant (RFC 3339 UTC) from which it may be taken over; empty when
  // the server does not say (Valkey gives only the time left; it is then the server's TIME plus that).
  std::string expires_at;
  // Opaque: what a conditional take-over or break compares (the S3 ETag, the Valkey value).
  std::string version;
  // Not empty when something is at the lease's key that is not a rocky lease (its holder and expiry then
  // unknown): why. Nothing takes it over; `rocky state unlock --yes` removes it.
  std::string unreadable;
};

// "free", "held", "expired".
std::string_view LeaseStateName(LeaseInfo::State state);

// The primitive operations on one backend's lease. Not thread-safe: one caller at a time (StateLease hands
// it from the command's thread to its renewal thread and back, never sharing it). Errors follow the retry
// contract of remote_state.h (kIOError, kTimedOut transient; kPermissionDenied, kInvalidArgument permanent).
class LeaseStore {
 public:
  virtual ~LeaseStore() = default;

  virtual std::string_view Kind() const = 0;  // "s3" or "valkey" (tiered: "s3")
  virtual std::string Key() const = 0;        // the lease's object key / Valkey key
  virtual std::string Location() const = 0;   // for people, never holding a secret

  enum class Taken : unsigned char { kAcquired, kTakenOver, kBusy };
  struct TakeResult {
    Taken taken = Taken::kBusy;
    // kBusy: the live lease found. kTakenOver: the expired lease replaced (its holder).
    LeaseInfo seen;
  };
  // One attempt to take the lease with `mine` (renewal 0): free -> kAcquired; expired -> kTakenOver,
  // conditional on the version read, so of two takers only one wins (the other gets kBusy); live -> kBusy.
  // A write of this same record whose reply was lost counts as taken.
  virtual Result<TakeResult> TryTake(const LeaseRecord& mine, Deadline deadline) = 0;

  // Rewrites the lease with `next` (renewal + 1, a new expires_at), conditional on it still being the one
  // this store last wrote: nullopt when renewed; otherwise the lease is lost and this is what holds it now
  // (free when it was broken, another holder when it was taken over). A write of this same record whose reply
  // was lost counts as renewed.
  virtual Result<std::optional<LeaseInfo>> Renew(const LeaseRecord& next, Deadline deadline) = 0;

  enum class Released : unsigned char { kReleased, kAbsent, kNotOurs };
  // Removes the lease if it still is the one this store last wrote: kReleased; kAbsent when there is none
  // (broken, or an earlier attempt of this release landed); kNotOurs when another holder's is there.
  virtual Result<Released> Release(Deadline deadline) = 0;

  // What the lease holds now, judged by the server's clock.
  virtual Result<LeaseInfo> Inspect(Deadline deadline) = 0;

  // Removes the lease whatever holds it (`rocky state unlock --yes`), conditional on it still being `seen`
  // (seen.version): kBusy when it changed since (renewed, or taken by another), so a live lease renewed in
  // between is never broken by mistake. OK when it is already gone.
  virtual Status Break(const LeaseInfo& seen, Deadline deadline) = 0;

  // Whether a stop request (Ctrl-C, SIGTERM: transfer_stop.h) aborts this store's requests. True by default
  // (taking the lease, waiting for it); StateLease turns it off for renewals and the release, which must go
  // on while the command finishes its table and winds down (each has its own short deadline).
  virtual void set_stoppable(bool stoppable) = 0;

  // A flag that, once true, makes the request in flight (and any later one) fail soon (within about a second
  // for S3, 50 ms for Valkey): how StateLease stops its renewal thread mid-request when the command ends.
  // Null: none. Not owned; must outlive the store's requests. The only member another thread may act on.
  virtual void set_cancel(const std::atomic<bool>* cancel) = 0;
};

}  // namespace rocky::sync
