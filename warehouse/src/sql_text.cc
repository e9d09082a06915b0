#include "sql_text.h"

#include <algorithm>
#include <cctype>

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
    return std::isdigit(static_cast<unsigned char>(c)) != 0 || c == ',' || c == ' ';
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

}  // namespace rocky::warehouse::internal
