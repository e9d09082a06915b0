#include "rocky/sync/s3_state_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "rocky/base/strings.h"
#include "s3_lease_store.h"

namespace rocky::sync {

using base::RandomHex;

namespace {

bool Contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// What to do about a failed probe, from its code and (for network failures) curl's wording.
std::string ProbeHint(const Status& status, const S3Config& config) {
  const std::string& m = status.message();
  switch (status.code()) {
    case Status::Code::kPermissionDenied:
      if (Contains(m, "refused the credentials")) {
        return "S3 rejected the credentials: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the "
               "profile, "
               "role or session token in use) and that the clock is right";
      }
      return "the identity needs s3:PutObject, s3:GetObject and s3:DeleteObject on arn:aws:s3:::" +
             config.bucket + "/" + config.prefix + "*";
    case Status::Code::kNotFound:
      return "bucket '" + config.bucket + "' does not exist" +
             (config.endpoint.empty() ? " in region " + config.region : " at " + config.endpoint) +
             ": create it or fix s3_bucket";
    case Status::Code::kTimedOut:
      return "no answer within the transfer timeout: check the network path to the endpoint, or raise "
             "transfer_timeout_seconds";
    case Status::Code::kIOError:
      if (Contains(m, "resolve"))
        return "the host name does not resolve: check s3_endpoint / s3_region and DNS";
      if (Contains(m, "SSL") || Contains(m, "TLS") || Contains(m, "certificate")) {
        return "TLS failed: the server's certificate is not trusted (set AWS_CA_BUNDLE to the CA that signed "
               "it)";
      }
      if (Contains(m, "onnect"))
        return "cannot connect: is the endpoint's host and port right, and is it up?";
      return "";
    default: return "";
  }
}

}  // namespace

S3StateBackend::S3StateBackend(S3Config config, CredentialsSource credentials,
                               std::shared_ptr<CredentialsProvider> provider)
    : config_(config),
      credentials_(credentials),
      provider_(std::move(provider)),
      client_(std::move(config), std::move(credentials)) {}

Result<std::unique_ptr<LeaseStore>> S3StateBackend::OpenLease() {
  return NewS3LeaseStore(config_, credentials_, provider_);
}

std::string S3StateBackend::Key() const { return client_.StateKey(); }

std::string S3StateBackend::Location() const {
  std::string out = "s3://" + config_.bucket + "/" + Key();
  if (!config_.endpoint.empty()) out += " at " + config_.endpoint;
  return out;
}

Result<std::optional<TransferReport>> S3StateBackend::Download(const std::string& state_path,
                                                               Deadline deadline) {
  ScopedDeadline scoped(client_, deadline);
  auto info = client_.DownloadState(state_path);
  if (!info.ok()) return info.status();
  if (!info->has_value()) return std::optional<TransferReport>();
  TransferReport report;
  report.generation = (*info)->etag;
  report.bytes = (*info)->size;
  return std::optional<TransferReport>(std::move(report));
}

Result<TransferReport> S3StateBackend::Upload(const std::string& state_path, const UploadRequest& request,
                                              Deadline deadline) {
  ScopedDeadline scoped(client_, deadline);
  auto info = client_.UploadState(state_path, request);
  if (!info.ok()) return info.status();
  TransferReport report;
  report.generation = info->etag;
  report.bytes = info->size;
  return report;
}

Result<std::optional<std::string>> S3StateBackend::CurrentGeneration(Deadline deadline) {
  ScopedDeadline scoped(client_, deadline);
  auto head = client_.HeadObject(Key());
  if (!head.ok()) return head.status();
  if (!head->has_value()) return std::optional<std::string>();
  return std::optional<std::string>((*head)->etag);
}

std::vector<ProbeLeg> S3StateBackend::Probe(Deadline deadline) {
  ProbeLeg leg;
  leg.backend = "s3";
  leg.location = Location();
  const auto start = std::chrono::steady_clock::now();
  ScopedDeadline scoped(client_, deadline);

  // A name no run uses, next to the state: the probe checks the permissions the state needs, on its prefix.
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string key = config_.prefix + "rocky-doctor-probe-" + std::string(host) + "-" +
                          std::to_string(::getpid()) + "-" + RandomHex(8);
  const std::string payload = "rocky doctor probe " + RandomHex(16) + "\n";
  char dir_template[] = "/tmp/rocky-probe-XXXXXX";
  const char* dir = ::mkdtemp(dir_template);
  auto finish = [&](Status status) {
    leg.status = std::move(status);
    leg.latency =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    if (!leg.status.ok()) leg.hint = ProbeHint(leg.status, config_);
    if (dir != nullptr) {
      ::unlink((std::string(dir) + "/out").c_str());
      ::unlink((std::string(dir) + "/in").c_str());
      ::rmdir(dir);
    }
    return std::vector<ProbeLeg>{leg};
  };
  if (dir == nullptr) return finish(Status::IOError("creating a temporary folder for the probe under /tmp"));
  const std::string out_path = std::string(dir) + "/out";
  const std::string in_path = std::string(dir) + "/in";
  {
    // 0600 like every file rocky creates (in a 0700 folder from mkdtemp besides).
    const int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    const bool written =
        fd >= 0 && ::write(fd, payload.data(), payload.size()) == static_cast<ssize_t>(payload.size());
    if (fd >= 0) ::close(fd);
    if (!written) return finish(Status::IOError("writing the probe's temporary file " + out_path));
  }
  auto put = client_.PutObject(key, out_path, WriteCondition::None());
  if (!put.ok()) return finish(put.status().WithContext("writing probe object " + key));
  auto get = client_.GetObject(key, in_path);
  if (!get.ok()) {
    (void)client_.DeleteObject(key);
    return finish(get.status().WithContext("reading probe object " + key + " back"));
  }
  std::ifstream in(in_path, std::ios::binary);
  std::ostringstream read_back;
  read_back << in.rdbuf();
  Status deleted = client_.DeleteObject(key);
  if (read_back.str() != payload) {
    return finish(Status::Corruption("probe object " + key + " read back differs from what was written (" +
                                     std::to_string(read_back.str().size()) + " bytes instead of " +
                                     std::to_string(payload.size()) + ")"));
  }
  if (!deleted.ok()) return finish(deleted.WithContext("deleting probe object " + key));
  return finish(Status::OK());
}

}  // namespace rocky::sync
