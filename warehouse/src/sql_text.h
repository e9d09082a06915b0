// Spelling helpers shared by the dialects and the SQLite warehouse (internal to rocky_warehouse).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rocky::warehouse::internal {

// "name" with embedded quotes doubled: SQLite's identifier quoting, used for every identifier so that
// keywords and odd names (spaces, dashes) never change the meaning of a statement.
std::string SqliteIdent(std::string_view name);

// 'text' with embedded quotes doubled (SQLite and standard SQL).
std::string SqliteString(std::string_view text);

// Maps a warehouse type name (as written in rocky.toml, Databricks-flavoured) to the SQLite type declaration
// with the same affinity: STRING -> TEXT, BIGINT -> INTEGER, DOUBLE -> REAL, DECIMAL(p,s) -> NUMERIC, ...
// Unknown names are kept as written (SQLite accepts any type name and derives an affinity from it).
std::string SqliteType(std::string_view type);

// True for the type spellings both dialects can embed verbatim (metadata columns' types, and the source's
// declared types pasted into CREATE TABLE): letters, digits, '_', spaces, and one trailing parenthesised list
// of letters, digits, commas, spaces, '+' and '-' ("DECIMAL(10, 2)", "VARCHAR(MAX)"). No quote, parenthesis
// or semicolon can appear, so such a name can never end the definition or start another statement.
bool IsSafeTypeName(std::string_view type);

// "2025-03-15T14:30:00.500000000Z" (rocky_ts form) -> "2025-03-15T14:30:00.5Z" (state store form).
std::string StateFormFromCanonical(std::string_view canonical);

// The spelling of a timestamp text that orders like its instants among texts of the same spelling:
// "YYYY-MM-DD<sep>HH:MM:SS[.<n digits>][Z]" with <sep> 'T' or ' ' and no offset other than Z (no offset is
// UTC in warehouse data).
struct TextShape {
  char separator = 'T';
  size_t fraction_digits = 0;
  bool zulu = true;
};

// The shape of `text`, or nullopt when it has another form (an offset, a lowercase 't', no seconds...).
std::optional<TextShape> ShapeOf(std::string_view text);

// `canonical` (rocky_ts form, "YYYY-MM-DDTHH:MM:SS.fffffffffZ") written in `shape`; nullopt when the shape
// has too few fraction digits to hold it exactly.
std::optional<std::string> RenderInShape(std::string_view canonical, const TextShape& shape);

// `canonical` minus `seconds`, in canonical form; nullopt before year 0000.
std::optional<std::string> CanonicalMinusSeconds(std::string_view canonical, int64_t seconds);

// "YYYY-MM-DD" of the day before `canonical`'s instant: every ISO-8601 spelling of an instant at or after
// `canonical` starts with a local date no earlier than that (UTC offsets are under 24 hours), so the text
// comparison `column >= 'YYYY-MM-DD'` keeps them all and is served by an index on the column.
std::string DayBefore(std::string_view canonical);

// The SQLite predicate selecting, exactly, the rows of `quoted_column` whose instant is at or after
// `canonical`, served by an index on the column: `col >= 'DayBefore' AND rocky_ts(col) >= 'canonical'`.
std::string InstantWindow(std::string_view quoted_column, std::string_view canonical);

}  // namespace rocky::warehouse::internal
