// Where the S3 client's credentials come from: the AWS SDKs' default chain, in their order
//   1. environment variables      AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN]
//   2. shared files               ~/.aws/credentials and ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE,
//                                 AWS_CONFIG_FILE), profile AWS_PROFILE or "default"
//   3. web identity               AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN through STS
//                                 AssumeRoleWithWebIdentity (EKS pods)
//   4. container credentials      AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI (ECS, EKS Pod Identity)
//   5. EC2 instance metadata      IMDSv2 (AWS_EC2_METADATA_DISABLED=true turns it off)
// A source that is not configured is skipped (kNotFound); a source that is configured but fails (a file that
// cannot be parsed, STS refusing the token) stops the chain with its error, because falling through to the
// next source would hide the misconfiguration behind a confusing "access denied" later.
//
// Secrets (secret keys, session tokens, web identity and container authorization tokens) never appear in a
// Status message: messages name the source, the variable or file, and the problem.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "rocky/base/status.h"
#include "rocky/config/config.h"

namespace rocky::sync {

using base::Result;
using base::Status;

// An access key. The secret and the token are secrets: they never appear in any log, error or JSON output
// (ToString-style helpers must redact them).
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary credentials
  // When temporary credentials stop working; nullopt for long-term keys.
  std::optional<std::chrono::system_clock::time_point> expiration;
};

// Environment variables are looked up through config's EnvLookup (nullopt when unset), injectable so tests
// never touch the process environment; ProcessEnvironment() is getenv.
using config::EnvLookup;
using config::ProcessEnvironment;

using Clock = std::function<std::chrono::system_clock::time_point()>;

struct CredentialsOptions {
  EnvLookup env = ProcessEnvironment();
  // Now, for expiry decisions; injectable so tests can move time.
  Clock now = [] { return std::chrono::system_clock::now(); };
  // Per HTTP request to STS or a metadata service.
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds total_timeout{5000};
  // STS endpoint, e.g. "http://127.0.0.1:8080" for tests; empty: AWS_ENDPOINT_URL_STS, else
  // https://sts.<AWS_REGION or AWS_DEFAULT_REGION or us-east-1>.amazonaws.com.
  std::string sts_endpoint;
  // The base of AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; AWS's fixed ECS address unless a test overrides it.
  std::string container_relative_base = "http://169.254.170.2";
};

// Where a set of credentials came from, for messages ("credentials from web identity (role arn:...)").
struct SourcedCredentials {
  Credentials credentials;
  std::string source;  // "environment", "profile default in /home/u/.aws/credentials", "web identity", ...
};

// Each source on its own. kNotFound: not configured here (the chain moves on). Any other error: configured
// but broken (the chain stops).
Result<SourcedCredentials> CredentialsFromEnvironment(const CredentialsOptions& options);
Result<SourcedCredentials> CredentialsFromProfile(const CredentialsOptions& options);
Result<SourcedCredentials> CredentialsFromWebIdentity(const CredentialsOptions& options);
Result<SourcedCredentials> CredentialsFromContainer(const CredentialsOptions& options);
Result<SourcedCredentials> CredentialsFromInstanceMetadata(const CredentialsOptions& options);

// The chain above, once. kNotFound naming every source tried when none is configured.
Result<SourcedCredentials> ResolveCredentialsChain(const CredentialsOptions& options);

// Caches the chain's answer and refreshes temporary credentials before they expire, so a long run never signs
// with credentials that are about to stop working. Thread-safe: concurrent Get() calls share one refresh.
class CredentialsProvider {
 public:
  // `resolve` defaults to ResolveCredentialsChain(options); tests may pass their own.
  explicit CredentialsProvider(CredentialsOptions options,
                               std::function<Result<SourcedCredentials>()> resolve = nullptr);

  // Cached credentials while more than refresh_window remains before their expiration (long-term keys never
  // expire); otherwise resolves again. If that refresh fails but the cached credentials have not expired yet,
  // they are returned (a brief STS outage must not fail a run that still has minutes of valid credentials).
  Result<SourcedCredentials> Get();

  // Forgets the cache: the next Get() resolves again (after an authentication error, for instance).
  void Invalidate();

  // AWS SDKs refresh 5 minutes before expiration; IMDS and STS hand out credentials valid for an hour or
  // more.
  static constexpr std::chrono::minutes kRefreshWindow{5};

 private:
  CredentialsOptions options_;
  std::function<Result<SourcedCredentials>()> resolve_;
  std::mutex mu_;
  std::optional<SourcedCredentials> cached_;  // guarded by mu_
};

// "AKIDEXAMPLE / secret *** / token ***": for printing; never the secret or the token.
std::string RedactedCredentials(const Credentials& credentials);

}  // namespace rocky::sync
