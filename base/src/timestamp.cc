#include "rocky/base/timestamp.h"

#include <cstdint>
#include <cstdio>
#include <ctime>

namespace rocky::base {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil), so normalization needs
// neither timegm nor the process's time zone.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly n digits at pos.
bool Digits(std::string_view s, size_t& pos, size_t n, int64_t* value) {
  if (pos + n > s.size()) return false;
  int64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  pos += n;
  *value = v;
  return true;
}

bool Expect(std::string_view s, size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

std::string Format(int64_t epoch_seconds, std::string_view fraction) {
  int64_t days = epoch_seconds / 86400;
  int64_t secs = epoch_seconds % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  std::string out;
  if (y >= 0 && y <= 9999) {
    // The fixed-width form directly: this runs for every timestamp of an import (200,000 for 100,000
    // watermarks), where snprintf was most of the import's time.
    out.resize(19);
    char* p = out.data();
    auto two = [](char* at, int64_t v) {
      at[0] = static_cast<char>('0' + v / 10);
      at[1] = static_cast<char>('0' + v % 10);
    };
    two(p, y / 100);
    two(p + 2, y % 100);
    p[4] = '-';
    two(p + 5, m);
    p[7] = '-';
    two(p + 8, d);
    p[10] = 'T';
    two(p + 11, secs / 3600);
    p[13] = ':';
    two(p + 14, secs / 60 % 60);
    p[16] = ':';
    two(p + 17, secs % 60);
  } else {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%04lld-%02u-%02uT%02lld:%02lld:%02lld", static_cast<long long>(y),
                  m, d, static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                  static_cast<long long>(secs % 60));
    out = buffer;
  }
  if (!fraction.empty()) {
    out += '.';
    out += fraction;
  }
  out += 'Z';
  return out;
}

// A parsed instant: whole seconds since the epoch (UTC) and the fractional digits, trailing zeros dropped.
struct Instant {
  int64_t utc_seconds = 0;
  std::string_view fraction;
};

Result<Instant> ParseInstant(std::string_view text, MissingOffset missing_offset) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("invalid timestamp '" + std::string(text) + "': " + std::string(why) +
                                   " (expected RFC 3339, e.g. 2025-03-15T14:30:00Z)");
  };
  size_t pos = 0;
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!Digits(text, pos, 4, &year) || !Expect(text, pos, '-') || !Digits(text, pos, 2, &month) ||
      !Expect(text, pos, '-') || !Digits(text, pos, 2, &day)) {
    return bad("no YYYY-MM-DD date");
  }
  if (pos >= text.size() || (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ')) {
    return bad("no time after the date");
  }
  ++pos;
  if (!Digits(text, pos, 2, &hour) || !Expect(text, pos, ':') || !Digits(text, pos, 2, &minute) ||
      !Expect(text, pos, ':') || !Digits(text, pos, 2, &second)) {
    return bad("no HH:MM:SS time");
  }
  if (month < 1 || month > 12) return bad("month out of range");
  if (day < 1 || day > DaysInMonth(year, static_cast<unsigned>(month))) return bad("day out of range");
  if (hour > 23 || minute > 59 || second > 59) return bad("time out of range");

  std::string_view fraction;
  if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
    const size_t start = ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    fraction = text.substr(start, pos - start);
    if (fraction.empty()) return bad("empty fractional seconds");
    if (fraction.size() > 9) return bad("more than 9 fractional digits");
    while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  }

  int64_t offset_seconds = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int64_t oh = 0, om = 0;
    if (!Digits(text, pos, 2, &oh)) return bad("malformed UTC offset");
    if (pos < text.size()) {
      Expect(text, pos, ':');
      if (!Digits(text, pos, 2, &om)) return bad("malformed UTC offset");
    }
    if (oh > 23 || om > 59) return bad("UTC offset out of range");
    offset_seconds = sign * (oh * 3600 + om * 60);
  } else if (missing_offset == MissingOffset::kRefuse) {
    return bad("missing UTC offset (Z or +HH:MM)");
  }
  if (pos != text.size()) return bad("unexpected text after the offset");

  const int64_t local =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 + hour * 3600 +
      minute * 60 + second;
  const int64_t utc = local - offset_seconds;
  // Keep four-digit years so the text form stays fixed-width and sortable.
  if (utc < DaysFromCivil(0, 1, 1) * 86400 || utc >= DaysFromCivil(10000, 1, 1) * 86400) {
    return bad("year out of range in UTC");
  }
  return Instant{utc, fraction};
}

}  // namespace

Result<std::string> NormalizeTimestamp(std::string_view text) {
  return NormalizeTimestamp(text, MissingOffset::kRefuse);
}

bool IsIntegerWatermark(std::string_view text) {
  std::string_view digits = text;
  const bool negative = !digits.empty() && digits.front() == '-';
  if (negative) digits.remove_prefix(1);
  if (digits.empty() || digits.size() > 19) return false;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  if (digits.size() < 19) return true;
  // 19 digits: compare with the int64 limits as text (same width, so text order is numeric order).
  return digits <=
         (negative ? std::string_view("9223372036854775808") : std::string_view("9223372036854775807"));
}

Result<std::string> NormalizeWatermarkValue(std::string_view text) {
  if (!IsIntegerWatermark(text)) return NormalizeTimestamp(text);
  const bool negative = text.front() == '-';
  std::string_view digits = text.substr(negative ? 1 : 0);
  while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
  if (digits == "0") return std::string("0");
  return (negative ? "-" : "") + std::string(digits);
}

Result<std::string> NormalizeTimestamp(std::string_view text, MissingOffset missing_offset) {
  ROCKY_ASSIGN_OR_RETURN(Instant instant, ParseInstant(text, missing_offset));
  return Format(instant.utc_seconds, instant.fraction);
}

Result<std::chrono::system_clock::time_point> ParseTimestamp(std::string_view text) {
  ROCKY_ASSIGN_OR_RETURN(Instant instant, ParseInstant(text, MissingOffset::kRefuse));
  // Whole seconds are all callers need (ages, freshness), and they fit any clock's range.
  return std::chrono::system_clock::time_point(std::chrono::seconds(instant.utc_seconds));
}

std::string FormatUtc(std::chrono::system_clock::time_point time) {
  const auto seconds = std::chrono::floor<std::chrono::seconds>(time).time_since_epoch().count();
  return Format(static_cast<int64_t>(seconds), {});
}

}  // namespace rocky::base
