#include "rocky/sync/tiered_state_backend.h"

#include <unistd.h>

#include "rocky/base/temp_file.h"
#include "rocky/sync/state_envelope.h"

namespace rocky::sync {

using base::TempNextTo;
using base::Unlinker;

TieredStateBackend::TieredStateBackend(std::unique_ptr<S3StateBackend> s3,
                                       std::unique_ptr<ValkeyStateBackend> valkey)
    : s3_(std::move(s3)), valkey_(std::move(valkey)) {}

std::string TieredStateBackend::Location() const {
  return s3_->Location() + ", cached in " + valkey_->Location();
}

Result<std::optional<TransferReport>> TieredStateBackend::Download(const std::string& state_path,
                                                                   Deadline deadline) {
  auto current = s3_->CurrentGeneration(deadline);
  if (!current.ok()) {
    return current.status().WithContext("tiered download: S3's current version (needed before any read)");
  }
  if (!current->has_value())
    return std::optional<TransferReport>();  // no state; a Valkey entry alone is not one
  const std::string& etag = **current;

  std::vector<std::string> warnings;
  Unlinker envelope{TempNextTo(state_path, "tiered-valkey-download")};
  auto entry = valkey_->FetchEnvelope(envelope.path, deadline);
  if (!entry.ok()) {
    warnings.push_back("Valkey unavailable, state read from S3: " + entry.status().ToString());
  } else if (entry->has_value() && (*entry)->s3_etag == etag) {
    auto decoded = DecodeEnvelope(envelope.path, state_path);
    if (decoded.ok()) {
      TransferReport report;
      report.generation = etag;
      report.bytes = (*entry)->bytes;
      return std::optional<TransferReport>(std::move(report));
    }
    warnings.push_back("Valkey's copy failed verification, state read from S3: " +
                       decoded.status().ToString());
  }
  // A miss or a stale entry (S3 changed behind Valkey) is the cache working as meant: no warning.
  return DownloadFromS3(state_path, deadline, std::move(warnings));
}

Result<std::optional<TransferReport>> TieredStateBackend::DownloadFromS3(const std::string& state_path,
                                                                         Deadline deadline,
                                                                         std::vector<std::string> warnings) {
  Unlinker envelope{TempNextTo(state_path, "tiered-s3-download")};
  auto object = [&] {
    ScopedDeadline scoped(s3_->client(), deadline);
    return s3_->client().GetObject(s3_->Key(), envelope.path);
  }();
  if (!object.ok()) {
    // Deleted between the HEAD and the GET: there is no state now.
    if (object.status().IsNotFound()) return std::optional<TransferReport>();
    return object.status().WithContext("tiered download from " + s3_->Location());
  }
  auto decoded = DecodeEnvelope(envelope.path, state_path);
  if (!decoded.ok()) return decoded.status().WithContext("tiered download from " + s3_->Location());
  // Verified: only now may it go to Valkey, tagged with the ETag of exactly these bytes (the GET's, which is
  // newer than the HEAD's if S3 changed in between).
  auto stored = valkey_->StoreEnvelope(envelope.path, WriteCondition::None(), object->etag, deadline);
  if (!stored.ok()) {
    warnings.push_back("Valkey not refreshed (the next read goes to S3 again): " +
                       stored.status().ToString());
  }
  TransferReport report;
  report.generation = object->etag;
  report.bytes = object->size;
  report.warnings = std::move(warnings);
  return std::optional<TransferReport>(std::move(report));
}

Result<TransferReport> TieredStateBackend::Upload(const std::string& state_path, const UploadRequest& request,
                                                  Deadline deadline) {
  // One envelope for both, so Valkey holds exactly the bytes behind S3's new ETag.
  Unlinker envelope{TempNextTo(state_path, "tiered-upload-envelope")};
  ROCKY_ASSIGN_OR_RETURN(EnvelopeInfo info,
                         EncodeStateEnvelope(state_path, envelope.path, "tiered-upload-snapshot"));

  auto put = [&] {
    ScopedDeadline scoped(s3_->client(), deadline);
    return s3_->client().PutStateEnvelope(envelope.path, request);
  }();
  if (!put.ok()) return put.status().WithContext("tiered upload to " + s3_->Location() + " (required)");

  TransferReport report;
  report.generation = put->etag;
  report.bytes = info.encoded_length;
  auto stored = valkey_->StoreEnvelope(envelope.path, WriteCondition::None(), put->etag, deadline);
  if (!stored.ok()) {
    report.warnings.push_back("state uploaded to S3 but not to Valkey (the next read goes to S3): " +
                              stored.status().ToString());
  }
  return report;
}

Result<std::optional<std::string>> TieredStateBackend::CurrentGeneration(Deadline deadline) {
  return s3_->CurrentGeneration(deadline);
}

std::vector<ProbeLeg> TieredStateBackend::Probe(Deadline deadline) {
  std::vector<ProbeLeg> legs = s3_->Probe(deadline);
  for (ProbeLeg& leg : valkey_->Probe(deadline)) legs.push_back(std::move(leg));
  return legs;
}

}  // namespace rocky::sync
