// A table as rocky addresses it in every warehouse: catalog.schema.table.
#pragma once

#include <string>
#include <string_view>

#include "rocky/base/status.h"

namespace rocky::warehouse {

using base::Result;
using base::Status;

struct TableRef {
  std::string catalog;
  std::string schema;
  std::string table;

  // "catalog.schema.table", the key of the table's watermark in the state store.
  std::string Qualified() const;
  friend bool operator==(const TableRef&, const TableRef&) = default;
  friend auto operator<=>(const TableRef&, const TableRef&) = default;
};

// Splits "catalog.schema.table" at its first two dots: the table name is the rest and may hold dots (as
// state::IsQualifiedTableName). Three non-empty parts; kInvalidArgument naming the text.
Result<TableRef> ParseTableRef(std::string_view qualified);

}  // namespace rocky::warehouse
