#include "copy_request_check.h"

#include <optional>
#include <string>

#include "rocky/base/timestamp.h"
#include "rocky/warehouse/sqlite_warehouse.h"  // CanonicalTimestamp
#include "sql_text.h"

namespace rocky::warehouse::internal {

using base::Status;

Status CheckCopyRequest(const CopyRequest& request, const CopyNameRules& rules) {
  for (const TableRef* ref : {&request.source, &request.target}) {
    if (Status s = rules.table(*ref); !s.ok()) return s;
  }
  if (Status s = rules.column("timestamp column", request.timestamp_column); !s.ok()) return s;
  for (const config::MetadataColumn& column : request.metadata_columns) {
    if (Status s = rules.column(rules.metadata_column_kind, column.name); !s.ok()) return s;
    if (!IsSafeTypeName(column.type)) {
      return Status::InvalidArgument("metadata column '" + column.name + "': invalid type '" + column.type +
                                     "'");
    }
    if (column.value.empty()) {
      return Status::InvalidArgument("metadata column '" + column.name + "': empty value expression");
    }
  }
  if (request.strategy == config::Strategy::kMerge && request.merge_keys.empty()) {
    return Status::InvalidArgument("strategy merge needs merge_keys");
  }
  for (const std::string& key : request.merge_keys) {
    if (Status s = rules.column("merge key", key); !s.ok()) return s;
  }
  if (request.lookback_seconds > 0 && (request.strategy != config::Strategy::kMerge ||
                                       request.cursor_type != config::CursorType::kTimestamp)) {
    return Status::InvalidArgument(
        "lookback_seconds needs strategy merge and a timestamp cursor (it would otherwise copy rows again)");
  }
  if (request.watermark) {
    const bool integer = request.cursor_type == config::CursorType::kInteger;
    const bool valid = integer ? base::IsIntegerWatermark(*request.watermark)
                               : CanonicalTimestamp(*request.watermark).has_value();
    if (!valid) {
      return Status::InvalidArgument("watermark '" + *request.watermark + "' is not " +
                                     (integer ? "an integer, but cursor_type is \"integer\""
                                              : "a timestamp, but cursor_type is \"timestamp\"") +
                                     "; run 'rocky run --full-refresh --table " + request.target.Qualified() +
                                     "' to reload the table");
    }
  }
  return Status::OK();
}

}  // namespace rocky::warehouse::internal
