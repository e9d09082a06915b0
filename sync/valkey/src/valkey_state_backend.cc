#include "rocky/sync/valkey_state_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "rocky/base/strings.h"
#include "rocky/base/temp_file.h"
#include "rocky/sync/state_envelope.h"
#include "valkey_lease_store.h"

namespace rocky::sync {

using base::RandomHex;
using base::TempNextTo;
using base::Unlinker;

namespace {

// The hash's fields (valkey_state_backend.h).
constexpr std::string_view kEnvelopeField = "envelope";
constexpr std::string_view kGenerationField = "generation";
constexpr std::string_view kEtagField = "s3_etag";

// A probe value lives at most this long, so a probe killed between its write and its delete leaves nothing.
constexpr std::string_view kProbeTtlMs = "60000";

Status ReadFile(const std::string& path, uint64_t limit, const std::string& what, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("opening " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Status::IOError("stat " + path + ": " + std::strerror(errno));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > limit) {
    ::close(fd);
    return Status::InvalidArgument(what + ": the state envelope is " + std::to_string(size) +
                                   " bytes, above the largest value Valkey stores (" + std::to_string(limit) +
                                   " bytes): use backend = \"s3\" for a state this large");
  }
  out->resize(size);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::read(fd, out->data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return Status::IOError("reading " + path + ": " +
                             (n < 0 ? std::strerror(errno) : "shorter than expected"));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return Status::OK();
}

Status WriteFile(const std::string& path, std::string_view bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("creating " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      return err == ENOSPC || err == EDQUOT ? Status::NoSpace("writing " + path + ": " + std::strerror(err))
                                            : Status::IOError("writing " + path + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return Status::IOError("closing " + path + ": " + std::strerror(errno));
  return Status::OK();
}

bool Contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// What to do about a failed probe, for people.
std::string ProbeHint(const Status& status, const ValkeyUrl& url) {
  const std::string& m = status.message();
  switch (status.code()) {
    case Status::Code::kPermissionDenied:
      if (Contains(m, "certificate")) {
        return "the server's TLS certificate is not trusted or does not name " + url.host +
               ": set valkey_ca_file to the CA that signed it, or connect by the name it was issued for";
      }
      if (Contains(m, "NOPERM"))
        return "the Valkey user lacks permissions: it needs SET, GET, DEL, HSET, HMGET, HGET, WATCH, MULTI, "
               "EXEC, and for the lease EVAL (with PTTL and TIME)";
      return "check the user name and password in valkey_url (redis://USER:PASSWORD@host, or "
             ":PASSWORD@host for the default user)";
    case Status::Code::kNotFound:
      return "the database number in valkey_url does not exist on the server (its `databases` setting)";
    case Status::Code::kTimedOut:
      return "no answer within the timeout: check the network path to " + url.HostPort() +
             (url.tls ? " and that it is the server's TLS port" : "");
    case Status::Code::kIOError:
      if (Contains(m, "resolve")) return "the host name does not resolve: check valkey_url's host and DNS";
      if (Contains(m, "refused"))
        return "nothing listens at " + url.HostPort() + ": is Valkey up, and the port right?";
      if (Contains(m, "TLS")) return "the TLS handshake failed: is this the server's TLS port (tls-port)?";
      return "";
    default: return "";
  }
}

}  // namespace

Result<std::unique_ptr<ValkeyStateBackend>> ValkeyStateBackend::Open(const ValkeyOptions& options) {
  auto url = ParseValkeyUrl(options.url);
  if (!url.ok()) return url.status();
  if (options.prefix.empty()) return Status::InvalidArgument("Valkey state: valkey_prefix must not be empty");
  ValkeyClientOptions client;
  client.url = std::move(*url);
  client.ca_file = options.ca_file;
  client.connect_timeout = options.connect_timeout;
  client.command_timeout = options.command_timeout;
  return std::unique_ptr<ValkeyStateBackend>(
      new ValkeyStateBackend(std::move(client), options.prefix, options.max_value_bytes));
}

ValkeyStateBackend::ValkeyStateBackend(ValkeyClientOptions client_options, std::string prefix,
                                       uint64_t max_value_bytes)
    : client_options_(client_options),
      client_(std::move(client_options)),
      prefix_(std::move(prefix)),
      max_value_bytes_(max_value_bytes) {}

Result<std::unique_ptr<LeaseStore>> ValkeyStateBackend::OpenLease() {
  return NewValkeyLeaseStore(client_options_, prefix_);
}

std::string ValkeyStateBackend::Location() const { return client_.url().redacted + " key " + Key(); }

Result<std::optional<ValkeyStateBackend::StoredEntry>> ValkeyStateBackend::FetchEnvelope(
    const std::string& envelope_path, Deadline deadline) {
  const std::string key = Key();
  auto reply = client_.Command({"HMGET", key, kEnvelopeField, kGenerationField, kEtagField}, deadline);
  if (!reply.ok()) return reply.status().WithContext("reading key " + key);
  if (reply->size() != 3) return Status::IOError(client_.what() + ": unexpected reply to HMGET " + key);
  ValkeyReplyView envelope = (*reply)[0], generation = (*reply)[1], etag = (*reply)[2];
  if (envelope.is_nil() && generation.is_nil()) return std::optional<StoredEntry>();
  if (envelope.is_nil() || generation.is_nil()) {
    return Status::Corruption(client_.what() + ": key " + key + " is not a rocky state entry (it lacks its " +
                              std::string(envelope.is_nil() ? kEnvelopeField : kGenerationField) + " field)");
  }
  ROCKY_RETURN_IF_ERROR(WriteFile(envelope_path, envelope.str()));
  StoredEntry entry;
  entry.generation = std::string(generation.str());
  entry.s3_etag = std::string(etag.str());
  entry.bytes = envelope.str().size();
  return std::optional<StoredEntry>(std::move(entry));
}

Result<std::string> ValkeyStateBackend::StoreEnvelope(const std::string& envelope_path,
                                                      const WriteCondition& condition,
                                                      const std::string& s3_etag, Deadline deadline,
                                                      const std::string& requested_generation) {
  const std::string key = Key();
  std::string envelope;
  ROCKY_RETURN_IF_ERROR(
      ReadFile(envelope_path, max_value_bytes_, client_.what() + ", key " + key, &envelope));
  const std::string generation = requested_generation.empty() ? RandomHex(16) : requested_generation;
  if (condition.kind == WriteCondition::Kind::kNone) {
    // One HSET sets all three fields together: no reader sees an envelope with another's generation or ETag.
    auto reply = client_.Command(
        {"HSET", key, kEnvelopeField, envelope, kGenerationField, generation, kEtagField, s3_etag}, deadline);
    if (!reply.ok()) return reply.status().WithContext("writing key " + key);
    return generation;
  }
  auto stored = ConditionalStore(envelope, generation, condition, s3_etag, deadline);
  // Whatever failed, never leave WATCH or MULTI behind on the connection.
  if (!stored.ok()) client_.Disconnect();
  return stored;
}

Result<std::string> ValkeyStateBackend::ConditionalStore(std::string_view envelope,
                                                         const std::string& generation,
                                                         const WriteCondition& condition,
                                                         const std::string& s3_etag, Deadline deadline) {
  const std::string key = Key();
  const std::string what = "writing key " + key;
  auto watched = client_.Command({"WATCH", key}, deadline);
  if (!watched.ok()) return watched.status().WithContext(what);
  auto current = client_.Command({"HGET", key, kGenerationField}, deadline);
  if (!current.ok()) return current.status().WithContext(what);
  // An earlier attempt of this same upload already wrote the entry (its EXEC reply was lost, so the policy
  // retried): done, not a conflict. Generations are random per upload, so no other write carries this one.
  if (!current->is_nil() && current->str() == generation) {
    if (!client_.Command({"UNWATCH"}, deadline).ok()) client_.Disconnect();  // never leave a WATCH behind
    return generation;
  }
  if (condition.kind == WriteCondition::Kind::kIfNoneMatch && !current->is_nil()) {
    return Status::Busy(
        client_.what() + ", key " + key +
        ": conflict: another run wrote the state in between (this run found no state, now there "
        "is one); the local state was not uploaded");
  }
  if (condition.kind == WriteCondition::Kind::kIfMatch &&
      (current->is_nil() || current->str() != condition.etag)) {
    return Status::Busy(
        client_.what() + ", key " + key +
        ": conflict: another run wrote the state in between (its generation is no longer the one "
        "this run downloaded); the local state was not uploaded");
  }
  auto multi = client_.Command({"MULTI"}, deadline);
  if (!multi.ok()) return multi.status().WithContext(what);
  // DEL first so that no field of an older entry survives (e.g. an s3_etag, were this ever written by hand).
  auto del = client_.Command({"DEL", key}, deadline);
  if (!del.ok()) return del.status().WithContext(what);
  auto set = client_.Command(
      {"HSET", key, kEnvelopeField, envelope, kGenerationField, generation, kEtagField, s3_etag}, deadline);
  if (!set.ok()) return set.status().WithContext(what);
  auto exec = client_.Command({"EXEC"}, deadline);
  if (!exec.ok()) return exec.status().WithContext(what);
  if (exec->is_nil()) {
    return Status::Busy(
        client_.what() + ", key " + key +
        ": conflict: another run wrote the state in between (it changed while this upload was "
        "being written); the local state was not uploaded");
  }
  return generation;
}

Result<std::optional<TransferReport>> ValkeyStateBackend::Download(const std::string& state_path,
                                                                   Deadline deadline) {
  Unlinker envelope{TempNextTo(state_path, "valkey-download")};
  auto entry = FetchEnvelope(envelope.path, deadline);
  if (!entry.ok()) return entry.status();
  if (!entry->has_value()) return std::optional<TransferReport>();
  auto decoded = DecodeEnvelope(envelope.path, state_path);
  if (!decoded.ok()) return decoded.status().WithContext("downloading " + Location());
  TransferReport report;
  report.generation = (*entry)->generation;
  report.bytes = (*entry)->bytes;
  return std::optional<TransferReport>(std::move(report));
}

Result<TransferReport> ValkeyStateBackend::Upload(const std::string& state_path, const UploadRequest& request,
                                                  Deadline deadline) {
  Unlinker envelope{TempNextTo(state_path, "valkey-upload-envelope")};
  ROCKY_ASSIGN_OR_RETURN(EnvelopeInfo info,
                         EncodeStateEnvelope(state_path, envelope.path, "valkey-upload-snapshot"));
  WriteCondition condition = request.force ? WriteCondition::None()
                             : request.expected_generation
                                 ? WriteCondition::IfMatch(*request.expected_generation)
                                 : WriteCondition::IfAbsent();
  auto generation = StoreEnvelope(envelope.path, condition, "", deadline, request.token);
  if (!generation.ok()) return generation.status();
  TransferReport report;
  report.generation = std::move(*generation);
  report.bytes = info.encoded_length;
  return report;
}

Result<std::optional<std::string>> ValkeyStateBackend::CurrentGeneration(Deadline deadline) {
  const std::string key = Key();
  auto reply = client_.Command({"HGET", key, kGenerationField}, deadline);
  if (!reply.ok()) return reply.status().WithContext("reading key " + key);
  if (reply->is_nil()) return std::optional<std::string>();
  return std::optional<std::string>(std::string(reply->str()));
}

std::vector<ProbeLeg> ValkeyStateBackend::Probe(Deadline deadline) {
  ProbeLeg leg;
  leg.backend = "valkey";
  leg.location = Location();
  const auto start = std::chrono::steady_clock::now();
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string key = prefix_ + "rocky-doctor-probe-" + std::string(host) + "-" +
                          std::to_string(::getpid()) + "-" + RandomHex(8);
  const std::string payload = "rocky doctor probe " + RandomHex(16);
  auto finish = [&](Status status) {
    leg.status = std::move(status);
    leg.latency =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    if (!leg.status.ok()) leg.hint = ProbeHint(leg.status, client_.url());
    return std::vector<ProbeLeg>{leg};
  };
  auto set = client_.Command({"SET", key, payload, "PX", kProbeTtlMs}, deadline);
  if (!set.ok()) return finish(set.status().WithContext("writing probe key " + key));
  auto get = client_.Command({"GET", key}, deadline);
  if (!get.ok()) return finish(get.status().WithContext("reading probe key " + key));
  if (get->str() != payload) {
    return finish(Status::IOError(client_.what() + ": probe key " + key + " read back different bytes"));
  }
  auto del = client_.Command({"DEL", key}, deadline);
  if (!del.ok()) return finish(del.status().WithContext("deleting probe key " + key));
  return finish(Status::OK());
}

}  // namespace rocky::sync
