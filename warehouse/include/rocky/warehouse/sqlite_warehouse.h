// The embedded default warehouse: plain SQLite files in one folder, so rocky runs on a laptop with nothing
// else installed.
//
// Mapping of catalog.schema.table onto files:
//   <folder>/<catalog>/<schema>.sqlite   one database file per catalog+schema; its tables are the schema's
// A copy opens the target schema's file as "main" and ATTACHes the source schema's file as "source" (the
// alias the SQLite dialect renders), so a copy is one SQLite transaction on the target file. Catalog and
// schema names must be usable as file names ([A-Za-z0-9_-], not starting with '.'); others are refused.
//
// Timestamps: every connection registers rocky_ts(x), a deterministic SQL function mapping any ISO-8601
// date-time text (T or space separator, optional fraction up to 9 digits, `Z`, ±HH:MM, ±HHMM or no offset —
// no offset means UTC, SQLite's own convention) to fixed-width UTC text "YYYY-MM-DDTHH:MM:SS.fffffffffZ",
// which orders as the instants do. NULL stays NULL; anything else raises an SQL error naming the value.
#pragma once

#include <memory>
#include <string>

#include "warehouse.h"

namespace rocky::warehouse {

// Opens the warehouse folder (created when missing, with its parents). kIOError naming the folder when it
// cannot be created or is not a folder.
Result<std::unique_ptr<Warehouse>> OpenSqliteWarehouse(const std::string& folder);

// The rocky_ts() conversion, exposed for the state layer and tests: nullopt when `text` is not a timestamp.
std::optional<std::string> CanonicalTimestamp(std::string_view text);

}  // namespace rocky::warehouse
