// The lease stores behind RemoteStateBackend::OpenLease (state_lease.h says what each does); internal to
// sync/.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rocky/sync/credentials.h"
#include "rocky/sync/s3_client.h"
#include "rocky/sync/state_lease.h"
#include "rocky/sync/valkey_client.h"

namespace rocky::sync {

// The lease object `<config.prefix>state.redb.lease`, through its own S3Client (the renewal thread never
// shares the state backend's). `keepalive` (may be null) is the provider `credentials` reads from.
std::unique_ptr<LeaseStore> NewS3LeaseStore(S3Config config, CredentialsSource credentials,
                                            std::shared_ptr<CredentialsProvider> keepalive);

// The lease key `<prefix>state.redb.lease` (and `.last`), over its own connection.
std::unique_ptr<LeaseStore> NewValkeyLeaseStore(ValkeyClientOptions options, const std::string& prefix);

// An HTTP date in the IMF-fixdate form every S3 server sends ("Sun, 06 Nov 1994 08:49:37 GMT"); nullopt for
// anything else.
std::optional<std::chrono::system_clock::time_point> ParseHttpDate(std::string_view text);

}  // namespace rocky::sync
