#include "rocky/base/status.h"

namespace rocky::base {

std::string_view CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kNotFound: return "Not found";
    case Status::Code::kCorruption: return "Corruption";
    case Status::Code::kInvalidArgument: return "Invalid argument";
    case Status::Code::kIOError: return "I/O error";
    case Status::Code::kNoSpace: return "No space left";
    case Status::Code::kBusy: return "Busy";
    case Status::Code::kNotSupported: return "Not supported";
    case Status::Code::kPoisoned: return "Database poisoned";
    case Status::Code::kTimedOut: return "Timed out";
    case Status::Code::kPermissionDenied: return "Permission denied";
    case Status::Code::kOutcomeUnknown: return "Outcome unknown";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(CodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += message_;
  return Status(code_, std::move(msg));
}

}  // namespace rocky::base
