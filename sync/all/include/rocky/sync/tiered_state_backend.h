// The tiered backend: S3 for durability, Valkey in front of it for speed, and never a stale read.
//
// Download: S3's current ETag first (a HEAD: its failure is the download's failure, because a Valkey copy
// that cannot be checked against S3 is never used). When Valkey holds an entry copied from exactly that ETag,
// its envelope is used (verified like any download). On a Valkey miss, a stale entry (S3 changed behind it)
// or any Valkey error, the object is read from S3 and copied into Valkey for the next reader, best effort.
//
// Upload: one snapshot and one envelope, sent to S3 conditionally (required: its failure, kBusy included, is
// the upload's failure), then the same bytes to Valkey tagged with the new ETag (best effort). A Valkey
// failure is a warning in TransferReport::warnings, never an error. The generation is always S3's ETag.
//
// Valkey is written unconditionally: it is a cache keyed by S3's ETag, and a cache entry that lost a race
// just fails the ETag check on the next read.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rocky/sync/remote_state.h"
#include "rocky/sync/s3_state_backend.h"
#include "rocky/sync/valkey_state_backend.h"

namespace rocky::sync {

// Not thread-safe (RemoteStateBackend). Owns both legs.
class TieredStateBackend final : public RemoteStateBackend {
 public:
  TieredStateBackend(std::unique_ptr<S3StateBackend> s3, std::unique_ptr<ValkeyStateBackend> valkey);

  std::string_view Kind() const override { return "tiered"; }
  std::string Key() const override { return s3_->Key(); }  // S3's: the copy that counts
  // "s3://bucket/prefix/state.redb, cached in redis://:***@cache:6379/0 key rocky:state:state.redb".
  std::string Location() const override;

  Result<std::optional<TransferReport>> Download(const std::string& state_path, Deadline deadline) override;
  using RemoteStateBackend::Upload;
  Result<TransferReport> Upload(const std::string& state_path, const UploadRequest& request,
                                Deadline deadline) override;
  // S3's ETag.
  Result<std::optional<std::string>> CurrentGeneration(Deadline deadline) override;
  // S3's leg, then Valkey's.
  std::vector<ProbeLeg> Probe(Deadline deadline) override;
  // S3's lease: the durable leg decides who may write the state.
  Result<std::unique_ptr<LeaseStore>> OpenLease() override { return s3_->OpenLease(); }

  S3StateBackend& s3() { return *s3_; }
  ValkeyStateBackend& valkey() { return *valkey_; }

 private:
  // Reads S3's object and installs it; `warnings` gets the Valkey refresh's failure.
  Result<std::optional<TransferReport>> DownloadFromS3(const std::string& state_path, Deadline deadline,
                                                       std::vector<std::string> warnings);

  std::unique_ptr<S3StateBackend> s3_;
  std::unique_ptr<ValkeyStateBackend> valkey_;
};

}  // namespace rocky::sync
