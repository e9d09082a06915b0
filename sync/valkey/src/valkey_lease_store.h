// The Valkey lease store behind ValkeyStateBackend::OpenLease (state_lease.h says what it does); internal to
// the Valkey library.
#pragma once

#include <memory>
#include <string>

#include "rocky/sync/state_lease.h"
#include "rocky/sync/valkey_client.h"

namespace rocky::sync {

// The lease key `<prefix>state.redb.lease` (and `.last`), over its own connection.
std::unique_ptr<LeaseStore> NewValkeyLeaseStore(ValkeyClientOptions options, const std::string& prefix);

}  // namespace rocky::sync
