#include "rocky/sync/remote_state.h"

namespace rocky::sync {

bool IsTransient(const Status& status) {
  return status.code() == Status::Code::kIOError || status.code() == Status::Code::kTimedOut;
}

}  // namespace rocky::sync
