#include "rocky/sync/transfer_event.h"

#include <cstdio>

namespace rocky::sync {

std::string_view OutcomeName(TransferOutcome outcome) {
  switch (outcome) {
    case TransferOutcome::kOk: return "ok";
    case TransferOutcome::kAbsent: return "absent";
    case TransferOutcome::kTimeout: return "timeout";
    case TransferOutcome::kErrorThenFresh: return "error_then_fresh";
    case TransferOutcome::kTransientExhausted: return "transient_exhausted";
    case TransferOutcome::kBudgetExhausted: return "budget_exhausted";
    case TransferOutcome::kCircuitOpen: return "circuit_open";
    case TransferOutcome::kSkippedAfterFailure: return "skipped_after_failure";
    case TransferOutcome::kConflict: return "conflict";
    case TransferOutcome::kError: return "error";
    case TransferOutcome::kInterrupted: return "interrupted";
  }
  return "error";
}

std::string_view FailureName(TransferOutcome outcome) {
  switch (outcome) {
    case TransferOutcome::kTimeout:
    case TransferOutcome::kTransientExhausted:
    case TransferOutcome::kBudgetExhausted: return "RetryBudgetExhausted";
    case TransferOutcome::kCircuitOpen: return "CircuitOpen";
    case TransferOutcome::kConflict: return "Conflict";
    case TransferOutcome::kSkippedAfterFailure: return "SkippedAfterFailure";
    case TransferOutcome::kInterrupted: return "Interrupted";
    case TransferOutcome::kOk:
    case TransferOutcome::kAbsent:
    case TransferOutcome::kErrorThenFresh:
    case TransferOutcome::kError: return "";
  }
  return "";
}

namespace {

// A JSON string literal (RFC 8259): quote, backslash and control characters escaped; other bytes pass
// through, so UTF-8 stays UTF-8.
void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void AppendField(std::string& out, std::string_view name) {
  if (out.size() > 1) out += ',';
  AppendJsonString(out, name);
  out += ':';
}

}  // namespace

std::string TransferEventJson(const TransferEvent& event) {
  std::string out = "{";
  AppendField(out, "event");
  AppendJsonString(out, event.event);
  AppendField(out, "backend");
  AppendJsonString(out, event.backend);
  AppendField(out, "key");
  AppendJsonString(out, event.key);
  AppendField(out, "bytes");
  out += std::to_string(event.bytes);
  AppendField(out, "duration_ms");
  out += std::to_string(event.duration_ms);
  AppendField(out, "retries");
  out += std::to_string(event.retries);
  AppendField(out, "outcome");
  AppendJsonString(out, OutcomeName(event.outcome));
  if (event.state_lost) {
    AppendField(out, "state_lost");
    out += "true";
  }
  if (!event.error.empty()) {
    AppendField(out, "error");
    AppendJsonString(out, event.error);
  }
  if (!event.warnings.empty()) {
    AppendField(out, "warnings");
    out += '[';
    for (size_t i = 0; i < event.warnings.size(); ++i) {
      if (i > 0) out += ',';
      AppendJsonString(out, event.warnings[i]);
    }
    out += ']';
  }
  out += '}';
  return out;
}

}  // namespace rocky::sync
