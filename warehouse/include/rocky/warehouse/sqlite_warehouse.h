// The embedded default warehouse: plain SQLite files in one folder, so rocky runs on a laptop with nothing
// else installed.
//
// Mapping of catalog.schema.table onto files:
//   <folder>/<catalog>/<schema>.sqlite   one database file per catalog+schema; its tables are the schema's
// A copy opens the target schema's file as "main" and ATTACHes the source schema's file as "source" (the
// alias the SQLite dialect renders), so a copy is one SQLite transaction on the target file. Catalog and
// schema names must be usable as file names ([A-Za-z0-9_-], not starting with '.'); others are refused.
//
// The source file is attached read-only (mode=ro): it keeps only a read lock, and the commit touches one
// file, so no super-journal is needed for atomicity. The target uses a rollback journal with
// synchronous=FULL, and every connection waits up to 5 s for a lock held by a concurrent reader or writer.
// Copies within one catalog+schema (one file attached twice) are refused with kInvalidArgument. Views are not
// tables here. An incremental copy whose target table does not exist is kNotFound naming the target: copying
// only the window into a fresh table would silently drop every older row, so the caller must do a full
// refresh (`rocky run --full-refresh`) instead. Missing source tables and columns are found before the target
// file is created; a first copy into a new schema that fails later (a bad value) leaves that schema's file
// empty.
//
// What a copy reads (a run costs what it copies). A full refresh reads the whole source, creates the target
// with the source's primary key and NOT NULL constraints, and indexes the target's cursor column (and, for
// merge, makes a unique index on merge_keys). An incremental or merge copy reads a WINDOW, the rows whose
// cursor is at or above the watermark, with the same predicate on the source and on the target, served by an
// index on the cursor column of each (`rocky plan` names a source that lacks one, with the CREATE INDEX);
// the new watermark's MAX reads the target's window too. How the predicate compares, decided per table on
// every copy from the data (so the decision never goes stale) and reported as CopyResult::cursor_compare:
//   integer  `col >= N`.
//   text     `col >= 'T'`, the bare column, when the target's newest value (MAX(col), one index probe) has a
//            plain UTC spelling ("YYYY-MM-DD[T ]HH:MM:SS[.f...][Z]", ShapeOf in sql_text.h) and the start of
//            the window can be written exactly in that spelling (T). Among texts of one such spelling, text
//            order is instant order. A row spelled another way could be an instant at or after the start yet
//            sort below T; it would still sort at or above D, the date of the day before the start (below).
//            The guard counts, on the indexes, the rows in [D, T) on both sides: every source row there was
//            copied by earlier runs, so the source holding more of them than the target means such a row may
//            have arrived (or a late row below the watermark did), and the copy compares instants instead.
//            (The guard cannot see a foreign spelling arriving in the same copy as the source losing at least
//            as many rows of that zone.) Cost: the window plus the index entries of at most two days.
//   instant  `col >= 'D' AND rocky_ts(col) >= 'S'`: D is the UTC date of the day before the start S, and no
//            ISO-8601 spelling of an instant at or after S sorts below it (offsets are under 24 hours), so
//            the index serves the range and rocky_ts() runs only on the rows in it: the window plus up to two
//            days of rows before it.
// Every range is wrapped in likelihood(..., 0.001): without statistics SQLite would otherwise scan the
// whole source in rowid order for the incremental copy's window functions.
// Nothing is deleted from a target by an incremental or merge copy: see CopyRequest::watermark.
//
// Every statement is prepared (sqlite3_prepare_v2, never sqlite3_exec) and refused when text follows its
// first statement; the source's declared column types are pasted into CREATE TABLE only when they are
// plain type names (internal::IsSafeTypeName).
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
