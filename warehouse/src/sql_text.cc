#include "sql_text.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>

namespace rocky::warehouse::internal {
namespace {

std::string Quoted(std::string_view text, char quote) {
  std::string out(1, quote);
  for (const char c : text) {
    if (c == quote) out += quote;
    out += c;
  }
  out += quote;
  return out;
}

}  // namespace

std::string SqliteIdent(std::string_view name) { return Quoted(name, '"'); }

std::string SqliteString(std::string_view text) { return Quoted(text, '\''); }

std::string SqliteType(std::string_view type) {
  std::string base;
  for (const char c : type) {
    if (c == '(') break;
    base += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  while (!base.empty() && base.back() == ' ') base.pop_back();
  while (!base.empty() && base.front() == ' ') base.erase(base.begin());
  if (base == "STRING" || base == "VARCHAR" || base == "CHAR" || base == "TEXT" || base == "TIMESTAMP" ||
      base == "TIMESTAMP_NTZ" || base == "DATE" || base == "INTERVAL") {
    return "TEXT";
  }
  if (base == "BIGINT" || base == "INT" || base == "INTEGER" || base == "SMALLINT" || base == "TINYINT" ||
      base == "LONG" || base == "SHORT" || base == "BYTE" || base == "BOOLEAN" || base == "BOOL") {
    return "INTEGER";
  }
  if (base == "DOUBLE" || base == "FLOAT" || base == "REAL") return "REAL";
  if (base == "DECIMAL" || base == "DEC" || base == "NUMERIC" || base == "NUMBER") return "NUMERIC";
  if (base == "BINARY" || base == "BLOB") return "BLOB";
  return std::string(type);
}

bool IsSafeTypeName(std::string_view type) {
  if (type.empty()) return false;
  const size_t open = type.find('(');
  const std::string_view head = type.substr(0, open);
  const bool head_ok = std::all_of(head.begin(), head.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ' ';
  });
  if (!head_ok || head.find_first_not_of(' ') == std::string_view::npos) return false;
  if (open == std::string_view::npos) return true;
  if (type.back() != ')') return false;
  const std::string_view args = type.substr(open + 1, type.size() - open - 2);
  return !args.empty() && std::all_of(args.begin(), args.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == ',' || c == ' ' || c == '+' || c == '-' ||
           c == '_';
  });
}

std::string StateFormFromCanonical(std::string_view canonical) {
  // Canonical: "YYYY-MM-DDTHH:MM:SS.fffffffffZ"; the fraction sits between positions 19 and size-1.
  std::string out(canonical.substr(0, 19));
  std::string_view fraction = canonical.substr(20, canonical.size() - 21);
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  if (!fraction.empty()) {
    out += '.';
    out += fraction;
  }
  out += 'Z';
  return out;
}

std::optional<TextShape> ShapeOf(std::string_view text) {
  static constexpr std::string_view kPattern = "dddd-dd-ddsdd:dd:dd";
  if (text.size() < kPattern.size()) return std::nullopt;
  for (size_t i = 0; i < kPattern.size(); ++i) {
    const char p = kPattern[i];
    const char c = text[i];
    const bool ok = p == 'd' ? (c >= '0' && c <= '9') : p == 's' ? (c == 'T' || c == ' ') : c == p;
    if (!ok) return std::nullopt;
  }
  TextShape shape;
  shape.separator = text[10];
  size_t pos = kPattern.size();
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      ++pos;
      ++shape.fraction_digits;
    }
    if (shape.fraction_digits == 0 || shape.fraction_digits > 9) return std::nullopt;
  }
  shape.zulu = pos < text.size() && text[pos] == 'Z';
  if (shape.zulu) ++pos;
  if (pos != text.size()) return std::nullopt;
  return shape;
}

std::optional<std::string> RenderInShape(std::string_view canonical, const TextShape& shape) {
  if (canonical.size() != 30) return std::nullopt;
  std::string out(canonical.substr(0, 10));
  out += shape.separator;
  out += canonical.substr(11, 8);
  const std::string_view fraction = canonical.substr(20, 9);
  if (fraction.substr(shape.fraction_digits).find_first_not_of('0') != std::string_view::npos)
    return std::nullopt;
  if (shape.fraction_digits > 0) {
    out += '.';
    out += fraction.substr(0, shape.fraction_digits);
  }
  if (shape.zulu) out += 'Z';
  return out;
}

std::optional<std::string> CanonicalMinusSeconds(std::string_view canonical, int64_t seconds) {
  using namespace std::chrono;
  if (canonical.size() != 30) return std::nullopt;
  auto number = [&](size_t pos, size_t len) {
    int value = 0;
    for (size_t i = pos; i < pos + len; ++i) value = value * 10 + (canonical[i] - '0');
    return value;
  };
  // sys_seconds (64-bit seconds) covers years 0000-9999, which a nanosecond time_point does not.
  const sys_days day = year(number(0, 4)) / number(5, 2) / number(8, 2);
  const sys_seconds at =
      day + hours(number(11, 2)) + minutes(number(14, 2)) + std::chrono::seconds(number(17, 2));
  const sys_seconds earlier = at - std::chrono::seconds(seconds);
  const sys_days earlier_day = floor<days>(earlier);
  const year_month_day ymd(earlier_day);
  if (static_cast<int>(ymd.year()) < 0 || static_cast<int>(ymd.year()) > 9999) return std::nullopt;
  const hh_mm_ss<std::chrono::seconds> time(earlier - earlier_day);
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()));
  return std::string(buffer) + std::string(canonical.substr(19));
}

std::string DayBefore(std::string_view canonical) {
  const std::optional<std::string> before = CanonicalMinusSeconds(canonical, 86400);
  return before ? before->substr(0, 10) : std::string("0000-01-01");
}

std::string InstantWindow(std::string_view quoted_column, std::string_view canonical) {
  const std::string c(quoted_column);
  return c + " >= " + SqliteString(DayBefore(canonical)) + " AND rocky_ts(" + c +
         ") >= " + SqliteString(canonical);
}

}  // namespace rocky::warehouse::internal
