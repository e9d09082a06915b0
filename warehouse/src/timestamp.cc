// CanonicalTimestamp: the conversion behind the rocky_ts() SQL function, on the base library's parser so
// that the warehouse and the state store agree on what every spelling of an instant means.
#include "rocky/base/timestamp.h"

#include <optional>
#include <string>
#include <string_view>

#include "rocky/warehouse/sqlite_warehouse.h"

namespace rocky::warehouse {

std::optional<std::string> CanonicalTimestamp(std::string_view text) {
  // No offset means UTC in warehouse data (SQLite's convention), unlike in the state store.
  auto normalized = base::NormalizeTimestamp(text, base::MissingOffset::kUtc);
  if (!normalized.ok()) return std::nullopt;
  // "YYYY-MM-DDTHH:MM:SS[.f]Z" -> fixed width, nine fraction digits, so the text orders as the instants do.
  const std::string& n = *normalized;
  std::string fraction = n.size() > 20 ? n.substr(20, n.size() - 21) : std::string();
  fraction.resize(9, '0');
  return n.substr(0, 19) + "." + fraction + "Z";
}

}  // namespace rocky::warehouse
