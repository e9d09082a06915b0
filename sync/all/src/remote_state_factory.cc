#include "rocky/sync/remote_state_factory.h"

#include <memory>

#include "rocky/sync/s3_state_backend.h"
#include "rocky/sync/tiered_state_backend.h"
#include "rocky/sync/valkey_state_backend.h"

namespace rocky::sync {

namespace {

std::string EnvOrEmpty(const EnvLookup& env, std::string_view name) {
  auto value = env(name);
  return value ? *value : std::string();
}

Result<std::unique_ptr<S3StateBackend>> OpenS3(const config::StateConfig& state, const EnvLookup& env) {
  S3Config s3;
  s3.bucket = state.s3_bucket;
  s3.prefix = state.s3_prefix;
  // As the AWS SDKs do, with `env` rather than the process environment so that callers (and tests) decide.
  s3.region = state.s3_region;
  if (s3.region.empty()) s3.region = EnvOrEmpty(env, "AWS_REGION");
  if (s3.region.empty()) s3.region = EnvOrEmpty(env, "AWS_DEFAULT_REGION");
  s3.endpoint = state.s3_endpoint;
  if (s3.endpoint.empty()) s3.endpoint = EnvOrEmpty(env, "AWS_ENDPOINT_URL_S3");
  if (s3.endpoint.empty()) s3.endpoint = EnvOrEmpty(env, "AWS_ENDPOINT_URL");
  s3.transport.ca_bundle = EnvOrEmpty(env, "AWS_CA_BUNDLE");
  auto resolved = ResolveS3Config(std::move(s3));
  if (!resolved.ok()) return resolved.status();
  CredentialsOptions options;
  options.env = env;
  auto provider = std::make_shared<CredentialsProvider>(std::move(options));
  CredentialsSource source = FromProvider(*provider);
  return std::make_unique<S3StateBackend>(std::move(*resolved), std::move(source), std::move(provider));
}

Result<std::unique_ptr<ValkeyStateBackend>> OpenValkey(const config::StateConfig& state) {
  ValkeyOptions options;
  options.url = state.valkey_url;
  options.prefix = state.valkey_prefix;
  options.ca_file = state.valkey_ca_file;
  return ValkeyStateBackend::Open(options);
}

}  // namespace

Result<std::unique_ptr<RemoteStateBackend>> OpenRemoteStateBackend(const config::StateConfig& state,
                                                                   const EnvLookup& env) {
  switch (state.backend) {
    case config::StateBackend::kLocal:
      return Status::InvalidArgument("[state] backend is \"local\": there is no remote state");
    case config::StateBackend::kS3: {
      auto s3 = OpenS3(state, env);
      if (!s3.ok()) return s3.status();
      return std::unique_ptr<RemoteStateBackend>(std::move(*s3));
    }
    case config::StateBackend::kValkey: {
      auto valkey = OpenValkey(state);
      if (!valkey.ok()) return valkey.status();
      return std::unique_ptr<RemoteStateBackend>(std::move(*valkey));
    }
    case config::StateBackend::kTiered: {
      auto s3 = OpenS3(state, env);
      if (!s3.ok()) return s3.status();
      auto valkey = OpenValkey(state);
      if (!valkey.ok()) return valkey.status();
      return std::unique_ptr<RemoteStateBackend>(
          std::make_unique<TieredStateBackend>(std::move(*s3), std::move(*valkey)));
    }
  }
  return Status::InvalidArgument("[state] backend: unknown value");
}

Result<std::unique_ptr<StateSync>> OpenStateSync(const config::StateConfig& config, const EnvLookup& env,
                                                 EventSink sink, WarningSink warn) {
  if (config.backend == config::StateBackend::kLocal) return std::unique_ptr<StateSync>();
  ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<RemoteStateBackend> backend, OpenRemoteStateBackend(config, env));
  return std::make_unique<StateSync>(std::move(backend), config, std::move(sink), SyncClock{},
                                     std::move(warn));
}

}  // namespace rocky::sync
