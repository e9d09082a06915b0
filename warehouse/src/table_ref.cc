#include "rocky/warehouse/table_ref.h"

namespace rocky::warehouse {

std::string TableRef::Qualified() const { return catalog + "." + schema + "." + table; }

Result<TableRef> ParseTableRef(std::string_view qualified) {
  auto bad = [&] {
    return Status::InvalidArgument("invalid table '" + std::string(qualified) +
                                   "': expected catalog.schema.table (catalog and schema without dots)");
  };
  const size_t first = qualified.find('.');
  if (first == std::string_view::npos) return bad();
  const size_t second = qualified.find('.', first + 1);
  if (second == std::string_view::npos) return bad();
  TableRef ref{std::string(qualified.substr(0, first)),
               std::string(qualified.substr(first + 1, second - first - 1)),
               std::string(qualified.substr(second + 1))};
  if (ref.catalog.empty() || ref.schema.empty() || ref.table.empty()) return bad();
  return ref;
}

}  // namespace rocky::warehouse
