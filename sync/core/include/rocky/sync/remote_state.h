// Where the state lives remotely: one interface over S3, Valkey and the tiered pair, so the lifecycle
// (state_sync.h: download before a run, upload after, retries, circuit breaker, events) and `rocky doctor`
// never care which backend they talk to.
//
// Every backend moves the same thing: the verified, compressed envelope of a consistent snapshot of the state
// file (state_envelope.h), stored under `<prefix>state.redb`. A download is verified in full before it
// replaces the local file (atomically); an upload is conditional on the remote copy still being the one this
// run downloaded, so another run's state is never silently overwritten.
//
// Errors are Status values whose code is the contract the lifecycle's retry policy acts on (IsTransient
// below):
//   kIOError           network failure, connection refused or reset, HTTP 5xx / 429 / SlowDown: transient
//   kTimedOut          the deadline passed (or a transfer stalled): transient while time remains
//   kPermissionDenied  credentials refused, access denied: permanent
//   kNotFound          the bucket (or database) does not exist: permanent (a missing object is not an error)
//   kBusy              a conditional write lost: another run wrote the state in between: permanent
//   kInvalidArgument   a bad request or configuration, a value above the backend's size limit: permanent
//   kCorruption        a downloaded object failed verification (the local state is untouched): permanent
//   kNotSupported      a newer envelope or state format: permanent
//   kNoSpace           the local disk is full: permanent
// Messages name the backend, the host and the key, never a password, a secret key or a token.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rocky/base/status.h"
#include "rocky/sync/lease_store.h"

namespace rocky::sync {

using base::Result;
using base::Status;

// The wall-clock instant by which an operation must be finished, retries included. Backends cap every network
// wait (connect, each read) at what remains, and fail with kTimedOut once it has passed.
using Deadline = std::chrono::steady_clock::time_point;

// Whether repeating the same call may succeed (kIOError, kTimedOut); everything else fails the same way
// again.
bool IsTransient(const Status& status);

// What one successful transfer moved.
struct TransferReport {
  // Identifies the remote copy this run holds, for the next conditional upload: S3's ETag, the generation
  // token stored beside a Valkey value. Opaque to callers.
  std::string generation;
  uint64_t bytes = 0;  // envelope bytes sent or received
  // Things that went wrong without failing the transfer (tiered: "Valkey unreachable, read from S3"). Already
  // free of secrets; the lifecycle logs them.
  std::vector<std::string> warnings;
};

// One leg of a `rocky doctor --check state_rw` probe: a uniquely named object written, read back and deleted.
struct ProbeLeg {
  std::string backend;                   // "s3" or "valkey"
  std::string location;                  // as Location() prints it, redacted
  Status status;                         // the first step that failed, or OK
  std::chrono::milliseconds latency{0};  // the whole write + read + delete
  // What to do about a failure, for people: the permissions an access-denied needs, "check the endpoint's
  // host name" for a name-resolution failure, ... Empty when there is nothing useful to add.
  std::string hint;
};

// What an upload is conditional on, and how a retried upload recognises its own write.
struct UploadRequest {
  // nullopt: only when there is no remote state yet; otherwise only when the remote copy is still this
  // generation (what Download or the last Upload returned). kBusy ("conflict") when the condition fails.
  std::optional<std::string> expected_generation;
  // Replace whatever the remote holds, whatever its generation (`rocky state push --force`, after a corrupt
  // object): expected_generation is then ignored.
  bool force = false;
  // Identifies this upload, the same for every retry of it (NewUploadToken()): stored with the state, so that
  // when an attempt's write landed but its reply was lost, the retry, which then finds its condition failed,
  // sees its own token and reports success instead of a false conflict. Required non-empty.
  std::string token;
};

// How a write of the state (or of a lease) is conditioned, so that an upload never silently overwrites a
// state another run wrote: S3 sends it as If-Match / If-None-Match, Valkey checks it under WATCH.
struct WriteCondition {
  enum class Kind : unsigned char {
    kNone,         // unconditional
    kIfMatch,      // only if the stored generation (S3's ETag) is still `etag`
    kIfNoneMatch,  // only if there is nothing stored (If-None-Match: *)
  };
  Kind kind = Kind::kNone;
  std::string etag;

  static WriteCondition None() { return {}; }
  static WriteCondition IfMatch(std::string etag) { return {Kind::kIfMatch, std::move(etag)}; }
  static WriteCondition IfAbsent() { return {Kind::kIfNoneMatch, {}}; }
};

// A fresh random upload token (128 bits, hex).
std::string NewUploadToken();

// A remote home for the state. Implementations: S3StateBackend (s3_state_backend.h), ValkeyStateBackend
// (valkey_state_backend.h), TieredStateBackend (tiered_state_backend.h). Not thread-safe: one caller at a
// time.
class RemoteStateBackend {
 public:
  virtual ~RemoteStateBackend() = default;

  // "s3", "valkey" or "tiered": the `backend` value of rocky.toml, and the `backend` field of events.
  virtual std::string_view Kind() const = 0;
  // The key the state is stored under ("rocky/state/state.redb", "rocky:state:state.redb").
  virtual std::string Key() const = 0;
  // Where, for people: "s3://bucket/rocky/state/state.redb", "redis://:***@cache:6379/0 key
  // rocky:state:state.redb". Never holds a secret.
  virtual std::string Location() const = 0;

  // Fetches the remote state and, once verified in full, replaces the file at `state_path` with it atomically
  // (the caller holds the state's writer lock). nullopt, touching nothing, when there is no remote state yet.
  // On any error the local file is exactly as it was.
  virtual Result<std::optional<TransferReport>> Download(const std::string& state_path,
                                                         Deadline deadline) = 0;

  // Uploads a consistent snapshot of the state file at `state_path` (which may be open and written by this
  // process) as `request` says (UploadRequest: its condition, or force). kBusy when the condition fails and
  // the remote copy is not this upload's own earlier write (request.token).
  virtual Result<TransferReport> Upload(const std::string& state_path, const UploadRequest& request,
                                        Deadline deadline) = 0;
  // The same with a fresh token, conditional on `expected_generation` (nullopt: on there being none). A
  // derived class that overrides Upload needs `using RemoteStateBackend::Upload;` to keep this one visible.
  Result<TransferReport> Upload(const std::string& state_path,
                                const std::optional<std::string>& expected_generation, Deadline deadline) {
    return Upload(state_path, UploadRequest{expected_generation, false, NewUploadToken()}, deadline);
  }

  // The current remote generation without downloading it; nullopt when there is no remote state.
  virtual Result<std::optional<std::string>> CurrentGeneration(Deadline deadline) = 0;

  // Writes, reads back and deletes a uniquely named probe object next to the state (never the state itself),
  // without retries: one leg per backend (two for tiered).
  virtual std::vector<ProbeLeg> Probe(Deadline deadline) = 0;

  // The lease beside this state (state_lease.h: `<key>.lease`), with its own client and connection, so that
  // its renewal thread never shares this backend's (which is not thread-safe). Tiered: S3's. kNotSupported
  // for a backend without one (test doubles).
  virtual Result<std::unique_ptr<LeaseStore>> OpenLease();
};

}  // namespace rocky::sync
