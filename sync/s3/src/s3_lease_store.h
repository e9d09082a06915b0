// The S3 lease store behind S3StateBackend::OpenLease (state_lease.h says what it does); internal to the S3
// library.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rocky/sync/credentials.h"
#include "rocky/sync/s3_client.h"
#include "rocky/sync/state_lease.h"

namespace rocky::sync {

// The lease object `<config.prefix>state.redb.lease`, through its own S3Client (the renewal thread never
// shares the state backend's). `keepalive` (may be null) is the provider `credentials` reads from.
std::unique_ptr<LeaseStore> NewS3LeaseStore(S3Config config, CredentialsSource credentials,
                                            std::shared_ptr<CredentialsProvider> keepalive);

// An HTTP date in the IMF-fixdate form every S3 server sends ("Sun, 06 Nov 1994 08:49:37 GMT"); nullopt for
// anything else.
std::optional<std::chrono::system_clock::time_point> ParseHttpDate(std::string_view text);

}  // namespace rocky::sync
