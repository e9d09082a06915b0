// The checks of a CopyRequest that need no warehouse (internal to rocky_warehouse): both warehouses run them
// before touching a table, so a bad name, metadata column, merge key, lookback or watermark is refused with
// the same words on SQLite and PostgreSQL.
#pragma once

#include <functional>
#include <string_view>

#include "rocky/base/status.h"
#include "rocky/warehouse/warehouse.h"

namespace rocky::warehouse::internal {

// What an identifier may be differs between the warehouses; everything else checked is the same.
struct CopyNameRules {
  std::function<base::Status(const TableRef&)> table;
  // `kind` says what the name is ("timestamp column", "merge key", ...), for the error.
  std::function<base::Status(std::string_view kind, std::string_view name)> column;
  // The kind `column` is given for a metadata column's name.
  std::string_view metadata_column_kind;
};

// OK, or the first thing wrong with `request` (without the "copying A to B" context, which the caller adds).
base::Status CheckCopyRequest(const CopyRequest& request, const CopyNameRules& rules);

}  // namespace rocky::warehouse::internal
