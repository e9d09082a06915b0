// The JSON form of each record the store keeps, and its validation. Internal to the state library.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rocky/state/store.h"

namespace rocky::state::internal {

// "line L, column C" (1-based; columns count UTF-8 characters) of the first character where `text` stops
// being one valid JSON value, with " (end of input)" when it ends too early; empty when it is valid.
std::string JsonErrorPosition(std::string_view text);

// {"last_value": T, "updated_at": T}; the table is the key, not part of the value.
std::string WatermarkValueJson(const Watermark& w);
// Corruption naming the key when the stored value is not what WatermarkValueJson writes.
Result<Watermark> ParseWatermarkValue(std::string_view table, std::string_view json);
// Without copying or a JSON parser, for the common case: true, with views into `json`, when the value is
// exactly {"last_value":"A","updated_at":"B"} with A and B plain printable ASCII (no escapes) -- what
// WatermarkValueJson writes for normalized timestamps. The views then equal what ParseWatermarkValue returns.
// False for anything else, which ParseWatermarkValue must decide (it may still be valid).
bool ParseWatermarkValueFast(std::string_view json, std::string_view* last_value,
                             std::string_view* updated_at);

std::string CheckListJson(const std::vector<CheckEntry>& entries);
Result<std::vector<CheckEntry>> ParseCheckList(std::string_view table, std::string_view json);

// {"version": "...", "rows": N}; the table is the key.
std::string RowCountValueJson(const RememberedRowCount& count);
Result<RememberedRowCount> ParseRowCountValue(std::string_view table, std::string_view json);

std::string RunValueJson(const RunRecord& run);
Result<RunRecord> ParseRunValue(std::string_view key, std::string_view json);

// A stored plan: when it was saved and the planner's JSON (kept as raw text, not interpreted here).
struct StoredPlan {
  std::string created_at;
  std::string plan_json;
};
// {"created_at": T, "plan": "<plan_json as a JSON string>"}: kept as text so this layer never reinterprets
// it.
std::string PlanValueJson(std::string_view created_at, std::string_view plan_json);
Result<StoredPlan> ParsePlanValue(std::string_view id, std::string_view json);

// A run needs an id, a status and a start time; finished_at may be empty (a run still going).
Status ValidateRun(const RunRecord& run);
// The snapshot with every timestamp normalized, or kInvalidArgument naming the first bad field.
Result<StateSnapshot> ValidateSnapshot(const StateSnapshot& snapshot);
// The same in place (no copy of a large snapshot); on an error the snapshot may be partly normalized.
Status NormalizeSnapshot(StateSnapshot& snapshot);

}  // namespace rocky::state::internal
