// From [state] of rocky.toml to a remote-state backend, and to the lifecycle over it: the one place that
// knows every backend (S3, Valkey and the tiered pair), so the lifecycle (state_sync.h) and `rocky doctor`
// stay backend-agnostic. This library composes the three below it (sync/core, sync/s3, sync/valkey).
#pragma once

#include <memory>

#include "rocky/base/status.h"
#include "rocky/config/config.h"
#include "rocky/sync/credentials.h"
#include "rocky/sync/remote_state.h"
#include "rocky/sync/state_sync.h"
#include "rocky/sync/transfer_event.h"

namespace rocky::sync {

// Opens the backend `config.backend` names ("s3", "valkey", "tiered"), resolving region, endpoint and
// credentials from `env` as the AWS SDKs do. kInvalidArgument for "local" or a missing setting. Connects
// lazily: an unreachable server is an error of the first transfer, not of this call.
Result<std::unique_ptr<RemoteStateBackend>> OpenRemoteStateBackend(const config::StateConfig& config,
                                                                   const EnvLookup& env);

// The lifecycle of one command over the backend OpenRemoteStateBackend opens (StateSync's constructor says
// what `sink` and `warn` receive). Returns nullptr (and OK) when the backend is "local".
Result<std::unique_ptr<StateSync>> OpenStateSync(const config::StateConfig& config, const EnvLookup& env,
                                                 EventSink sink, WarningSink warn = nullptr);

}  // namespace rocky::sync
