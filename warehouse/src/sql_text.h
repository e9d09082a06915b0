// Spelling helpers shared by the dialects and the SQLite warehouse (internal to rocky_warehouse).
#pragma once

#include <string>
#include <string_view>

namespace rocky::warehouse::internal {

// "name" with embedded quotes doubled: SQLite's identifier quoting, used for every identifier so that keywords
// and odd names (spaces, dashes) never change the meaning of a statement.
std::string SqliteIdent(std::string_view name);

// 'text' with embedded quotes doubled (SQLite and standard SQL).
std::string SqliteString(std::string_view text);

// Maps a warehouse type name (as written in rocky.toml, Databricks-flavoured) to the SQLite type declaration
// with the same affinity: STRING -> TEXT, BIGINT -> INTEGER, DOUBLE -> REAL, DECIMAL(p,s) -> NUMERIC, ...
// Unknown names are kept as written (SQLite accepts any type name and derives an affinity from it).
std::string SqliteType(std::string_view type);

// True for the metadata column type spellings both dialects can embed verbatim: letters, digits, '_', spaces,
// and one parenthesised list of digits and commas ("DECIMAL(10, 2)"). Anything else could end the CAST.
bool IsSafeTypeName(std::string_view type);

// "2025-03-15T14:30:00.500000000Z" (rocky_ts form) -> "2025-03-15T14:30:00.5Z" (state store form).
std::string StateFormFromCanonical(std::string_view canonical);

}  // namespace rocky::warehouse::internal
