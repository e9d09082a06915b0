// The state in Valkey (or Redis): RemoteStateBackend over ValkeyClient. The state is one hash at
// `<prefix>state.redb` with three fields, written and read in one command each so they always belong
// together:
//   envelope    the verified, compressed envelope of a state snapshot (state_envelope.h), as for S3
//   generation  a random 128-bit hex token, new at every write: what a conditional upload compares
//   s3_etag     the S3 ETag this envelope was copied from (tiered_state_backend.h); empty when not tiered
//
// A conditional write WATCHes the key, checks the generation, then replaces the hash in MULTI/EXEC, so a
// write by another run in between aborts it (kBusy) instead of being overwritten.
//
// Memory: hiredis needs a whole value in memory, so an upload holds the envelope twice (our copy and
// hiredis's formatted command) and a download about twice (the reader's buffer and the reply). That is
// bounded by the value limit below (Valkey's own 512 MB maximum), checked on the file's size before anything
// is read.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "rocky/sync/remote_state.h"
#include "rocky/sync/valkey_client.h"

namespace rocky::sync {

// Valkey's largest string value (proto-max-bulk-len's default, 512 MB).
inline constexpr uint64_t kValkeyMaxValueBytes = uint64_t{512} << 20;

struct ValkeyOptions {
  std::string url;  // valkey_url (holds the password: never printed, see ValkeyUrl::redacted)
  std::string prefix = "rocky:state:";
  std::string ca_file;  // valkey_ca_file: PEM CAs for rediss:// / valkeys://; empty: the system's store
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds command_timeout{60'000};  // each wait (ValkeyClientOptions)
  // An envelope above this is refused with kInvalidArgument before it is read; tests lower it.
  uint64_t max_value_bytes = kValkeyMaxValueBytes;
};

// Not thread-safe (RemoteStateBackend), and owns one connection, opened on first use and reopened after a
// failure.
class ValkeyStateBackend final : public RemoteStateBackend {
 public:
  // Parses the URL (kInvalidArgument, redacted); does not connect.
  static Result<std::unique_ptr<ValkeyStateBackend>> Open(const ValkeyOptions& options);

  std::string_view Kind() const override { return "valkey"; }
  std::string Key() const override { return prefix_ + "state.redb"; }
  // "redis://:***@cache:6379/0 key rocky:state:state.redb".
  std::string Location() const override;

  Result<std::optional<TransferReport>> Download(const std::string& state_path, Deadline deadline) override;
  using RemoteStateBackend::Upload;
  // The generation written is request.token, so a retry whose condition fails because its own earlier
  // attempt landed (the EXEC reply was lost) finds its token there and succeeds.
  Result<TransferReport> Upload(const std::string& state_path, const UploadRequest& request,
                                Deadline deadline) override;
  Result<std::optional<std::string>> CurrentGeneration(Deadline deadline) override;
  std::vector<ProbeLeg> Probe(Deadline deadline) override;
  // The key `<prefix>state.redb.lease`, over a connection of its own.
  Result<std::unique_ptr<LeaseStore>> OpenLease() override;

  // The raw entry, for the tiered backend, which copies S3's envelope bytes here tagged with S3's ETag.
  struct StoredEntry {
    std::string generation;
    std::string s3_etag;  // empty when written by the Valkey backend itself
    uint64_t bytes = 0;   // of the envelope
  };
  // Writes the stored envelope to `envelope_path` (replacing it, unverified: the caller decodes it) and
  // returns its fields; nullopt, writing nothing, when there is no entry.
  Result<std::optional<StoredEntry>> FetchEnvelope(const std::string& envelope_path, Deadline deadline);
  // Stores the envelope file at `envelope_path` with `s3_etag` under `generation` (a fresh random one when
  // empty), returned. `condition`: None (tiered: S3 decides, this is a cache; or a forced upload),
  // IfMatch(generation), or IfAbsent; kBusy when it fails, unless the entry's generation already is
  // `generation` (this store's own earlier attempt landed): then success. kInvalidArgument above
  // max_value_bytes.
  Result<std::string> StoreEnvelope(const std::string& envelope_path, const WriteCondition& condition,
                                    const std::string& s3_etag, Deadline deadline,
                                    const std::string& generation = "");

 private:
  ValkeyStateBackend(ValkeyClientOptions client_options, std::string prefix, uint64_t max_value_bytes);

  Result<std::string> ConditionalStore(std::string_view envelope, const std::string& generation,
                                       const WriteCondition& condition, const std::string& s3_etag,
                                       Deadline deadline);

  ValkeyClientOptions client_options_;  // also the lease's
  ValkeyClient client_;
  std::string prefix_;
  uint64_t max_value_bytes_;
};

}  // namespace rocky::sync
