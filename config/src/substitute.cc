#include "substitute.h"

#include <optional>
#include <utility>

namespace rocky::config::internal {
namespace {

bool IsNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

bool IsVariableName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0])) return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

// The text comes from the file itself, so it can be echoed.
std::string Braced(std::string_view inner) {
  std::string out = "'${";
  out += inner;
  out += "}'";
  return out;
}

}  // namespace

Result<Substituted> SubstituteVariables(std::string_view raw, const EnvLookup& env) {
  Substituted out;
  out.text.reserve(raw.size());
  size_t i = 0;
  while (i < raw.size()) {
    char c = raw[i];
    if (c != '$') {
      out.text += c;
      ++i;
      continue;
    }
    if (i + 1 < raw.size() && raw[i + 1] == '$') {
      out.text += '$';
      i += 2;
      continue;
    }
    if (i + 1 >= raw.size() || raw[i + 1] != '{') {
      return Status::InvalidArgument("'$' must start ${VAR}, ${VAR:-default} or $$ (a literal '$')");
    }
    size_t close = raw.find('}', i + 2);
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("unterminated '${' (no closing '}')");
    }
    std::string_view inner = raw.substr(i + 2, close - (i + 2));
    std::string_view name = inner;
    std::optional<std::string_view> fallback;
    if (size_t sep = inner.find(":-"); sep != std::string_view::npos) {
      name = inner.substr(0, sep);
      fallback = inner.substr(sep + 2);
      if (fallback->find("${") != std::string_view::npos) {
        return Status::InvalidArgument("nested '${' in the default of " + Braced(inner) +
                                       " (defaults are literal text)");
      }
    }
    if (!IsVariableName(name)) {
      return Status::InvalidArgument("invalid variable name in " + Braced(inner) +
                                     " (letters, digits and '_', not starting with a digit)");
    }
    std::optional<std::string> value = env(name);
    if (value.has_value() && (!value->empty() || !fallback.has_value())) {
      out.text += *value;
      if (!value->empty()) out.from_env.emplace_back(name);
    } else if (fallback.has_value()) {
      out.text += *fallback;
    } else {
      std::string n(name);
      return Status::InvalidArgument("environment variable " + n + " is not set (use ${" + n +
                                     ":-default} for a default)");
    }
    i = close + 1;
  }
  return out;
}

}  // namespace rocky::config::internal
