// Timestamps as rocky keeps them: RFC 3339 text, always normalized to UTC with a `Z` suffix. The one parser
// behind every timestamp rocky reads (the state store, the warehouses' rocky_ts(), S3 credentials'
// Expiration), and the watermark cursor's text form (an integer or such a timestamp), which the state store
// and the warehouses must agree on.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "rocky/base/status.h"

namespace rocky::base {

// Parses an RFC 3339 / ISO-8601 date-time with a `Z` or numeric offset (+HH:MM, +HHMM, +HH) and optional
// fractional seconds (up to 9 digits), and returns it in UTC as "YYYY-MM-DDTHH:MM:SS[.fff]Z" (the fraction
// kept as given, trailing zeros dropped). kInvalidArgument naming the value otherwise: a timestamp without an
// offset is refused because its instant is ambiguous.
Result<std::string> NormalizeTimestamp(std::string_view text);

// What a timestamp without an offset means: refused (the state store: its instant is ambiguous), or UTC
// (warehouse data, SQLite's own convention for datetime text).
enum class MissingOffset : unsigned char { kRefuse, kUtc };

// NormalizeTimestamp with the choice above; the one parser behind every timestamp rocky reads.
Result<std::string> NormalizeTimestamp(std::string_view text, MissingOffset missing_offset);

// The instant `text` names (any form NormalizeTimestamp accepts), truncated to whole seconds; the same
// errors.
Result<std::chrono::system_clock::time_point> ParseTimestamp(std::string_view text);

// A watermark's last_value: an integer cursor's value (optional '-', decimal digits, within int64; returned
// without leading zeros or '+', so that equal values are equal text) or else a timestamp as
// NormalizeTimestamp returns it. The integer is kept exactly: a 19-digit counter does not pass through a
// double.
Result<std::string> NormalizeWatermarkValue(std::string_view text);

// True when `text` is an integer as NormalizeWatermarkValue accepts it.
bool IsIntegerWatermark(std::string_view text);

// "2025-03-15T14:35:12Z" (whole seconds: updated_at needs no more precision).
std::string FormatUtc(std::chrono::system_clock::time_point time);

}  // namespace rocky::base
