#include "rocky/sync/transfer_event.h"

#include "rocky/base/json_writer.h"

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

// Through base's JsonWriter, the one escaper: an error or warning quoting a server's reply or a file name may
// hold any bytes, and each event line must still be valid JSON (invalid UTF-8 becomes U+FFFD).
std::string TransferEventJson(const TransferEvent& event) {
  base::JsonWriter json;
  json.BeginObject();
  json.Key("event").String(event.event);
  json.Key("backend").String(event.backend);
  json.Key("key").String(event.key);
  json.Key("bytes").UInt(event.bytes);
  json.Key("duration_ms").UInt(event.duration_ms);
  json.Key("retries").UInt(event.retries);
  json.Key("outcome").String(OutcomeName(event.outcome));
  if (event.state_lost) json.Key("state_lost").Bool(true);
  if (!event.error.empty()) json.Key("error").String(event.error);
  if (!event.warnings.empty()) {
    json.Key("warnings").BeginArray();
    for (const std::string& warning : event.warnings) json.String(warning);
    json.EndArray();
  }
  json.EndObject();
  return json.str();
}

}  // namespace rocky::sync
