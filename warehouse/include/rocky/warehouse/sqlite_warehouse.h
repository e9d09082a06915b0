// The embedded default warehouse: plain SQLite files in one folder, so rocky runs on a laptop with nothing
// else installed.
//
// Mapping of catalog.schema.table onto files:
//   <folder>/<catalog>/<schema>.sqlite   one database file per catalog+schema; its tables are the schema's
// A copy opens the target schema's file as "main" and ATTACHes the source schema's file as "source" (the
// alias the SQLite dialect renders), so a copy is one SQLite transaction on the target file. Catalog and
// schema names must be usable as file names ([A-Za-z0-9_-], not starting with '.'); others are refused.
//
// The source file is attached read-only (mode=ro): it keeps only a read lock, and the commit touches one file,
// so no super-journal is needed for atomicity. The target uses a rollback journal with synchronous=FULL, and
// every connection waits up to 5 s for a lock held by a concurrent reader or writer. Copies within one
// catalog+schema (one file attached twice) are refused with kInvalidArgument. Views are not tables here.
// An incremental copy whose target table does not exist is kNotFound naming the target: copying only the
// window into a fresh table would silently drop every older row, so the caller must do a full refresh
// (delete the watermark) instead. Missing source tables and columns are found before the target file is
// created; a first copy into a new schema that fails later (a bad value) leaves that schema's file empty.
//
// Timestamps: every connection registers rocky_ts(x), a deterministic SQL function mapping any ISO-8601
// date-time text (T or space separator, optional fraction up to 9 digits after '.' or ',', `Z`, ±HH:MM,
// ±HHMM, ±HH or no offset — no offset means UTC, SQLite's own convention) to fixed-width UTC text
// "YYYY-MM-DDTHH:MM:SS.fffffffffZ", which orders as the instants do. Dates without a time, leap seconds and
// instants outside years 0000-9999 (in UTC) are not timestamps. NULL stays NULL; anything else (including
// numbers) raises an SQL error naming the value.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "warehouse.h"

namespace rocky::warehouse {

// Opens the warehouse folder (created when missing, with its parents). kIOError naming the folder when it
// cannot be created or is not a folder.
Result<std::unique_ptr<Warehouse>> OpenSqliteWarehouse(const std::string& folder);

// Creates `path` as an empty file, mode 0600, unless something exists there (an empty file is an empty SQLite
// database). SQLite would create a new database file with 0644; created first like this it stays 0600, and
// its journals take its mode. kIOError naming the file otherwise.
Status CreatePrivateFileIfMissing(const std::string& path);

// The rocky_ts() conversion, exposed for the state layer and tests: nullopt when `text` is not a timestamp.
std::optional<std::string> CanonicalTimestamp(std::string_view text);

}  // namespace rocky::warehouse
