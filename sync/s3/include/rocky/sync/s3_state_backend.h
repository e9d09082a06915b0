// The state in S3 (or any S3-protocol server): RemoteStateBackend over S3Client, the state object at
// `<prefix>state.redb`, its generation the object's ETag, conditional writes with If-Match / If-None-Match.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "rocky/sync/credentials.h"
#include "rocky/sync/remote_state.h"
#include "rocky/sync/s3_client.h"

namespace rocky::sync {

class S3StateBackend final : public RemoteStateBackend {
 public:
  // `config` should come from ResolveS3Config. `provider` (may be null) is kept alive by the backend when
  // `credentials` reads from it (FromProvider).
  S3StateBackend(S3Config config, CredentialsSource credentials,
                 std::shared_ptr<CredentialsProvider> provider = nullptr);

  std::string_view Kind() const override { return "s3"; }
  std::string Key() const override;
  std::string Location() const override;  // "s3://bucket/prefix/state.redb" (+ " at <endpoint>" when custom)

  Result<std::optional<TransferReport>> Download(const std::string& state_path, Deadline deadline) override;
  using RemoteStateBackend::Upload;
  Result<TransferReport> Upload(const std::string& state_path, const UploadRequest& request,
                                Deadline deadline) override;
  Result<std::optional<std::string>> CurrentGeneration(Deadline deadline) override;
  std::vector<ProbeLeg> Probe(Deadline deadline) override;
  // The object `<prefix>state.redb.lease`, through a client of its own with the same credentials.
  Result<std::unique_ptr<LeaseStore>> OpenLease() override;

  // Reads an object at any key into `path` (for tiered, which copies S3's object into Valkey).
  S3Client& client() { return client_; }

 private:
  S3Config config_;
  CredentialsSource credentials_;  // also the lease's
  std::shared_ptr<CredentialsProvider> provider_;
  S3Client client_;
};

}  // namespace rocky::sync
