#include "rocky/warehouse/schema_pattern.h"

#include <set>

namespace rocky::warehouse {
namespace {

constexpr std::string_view kVariadicSuffix = "...";

bool IsVariadic(std::string_view component) {
  return component.size() >= kVariadicSuffix.size() &&
         component.substr(component.size() - kVariadicSuffix.size()) == kVariadicSuffix;
}

std::string_view ComponentName(std::string_view component) {
  return IsVariadic(component) ? component.substr(0, component.size() - kVariadicSuffix.size()) : component;
}

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Splits on every occurrence of `separator`, left to right; "a__b" -> {"a", "b"}, "" -> {""}.
std::vector<std::string_view> Split(std::string_view text, std::string_view separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t at = text.find(separator, start);
    if (at == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, at - start));
    start = at + separator.size();
  }
}

}  // namespace

Status ValidateSchemaPattern(const config::SchemaPattern& pattern) {
  if (pattern.separator.empty())
    return Status::InvalidArgument("schema_pattern: separator must not be empty");
  if (pattern.components.empty()) {
    return Status::InvalidArgument("schema_pattern: components must name at least one component");
  }
  std::set<std::string_view> names;
  int variadic = 0;
  for (const std::string& component : pattern.components) {
    const std::string_view name = ComponentName(component);
    if (name.empty()) {
      return Status::InvalidArgument("schema_pattern: empty component name '" + component + "'");
    }
    for (const char c : name) {
      if (!IsWordChar(c)) {
        return Status::InvalidArgument("schema_pattern: component '" + component +
                                       "' may only use letters, digits and '_' (plus a trailing '...')");
      }
    }
    if (!names.insert(name).second) {
      return Status::InvalidArgument("schema_pattern: component '" + std::string(name) + "' appears twice");
    }
    if (IsVariadic(component) && ++variadic > 1) {
      return Status::InvalidArgument(
          "schema_pattern: at most one variadic ('...') component, found a second: '" + component + "'");
    }
  }
  return Status::OK();
}

std::optional<SchemaComponents> MatchSchema(const config::SchemaPattern& pattern, std::string_view schema) {
  if (schema.substr(0, pattern.prefix.size()) != pattern.prefix) return std::nullopt;
  const std::vector<std::string_view> parts = Split(schema.substr(pattern.prefix.size()), pattern.separator);
  for (const std::string_view part : parts) {
    if (part.empty()) return std::nullopt;
  }
  const size_t fixed = pattern.components.size();
  size_t variadic_at = fixed;  // none
  for (size_t i = 0; i < fixed; ++i) {
    if (IsVariadic(pattern.components[i])) variadic_at = i;
  }
  if (variadic_at == fixed ? parts.size() != fixed : parts.size() < fixed) return std::nullopt;

  // The variadic component takes every part the others leave over (at least one).
  const size_t variadic_parts = parts.size() - (fixed - 1);
  SchemaComponents out;
  out.reserve(fixed);
  size_t next = 0;
  for (size_t i = 0; i < fixed; ++i) {
    std::string value;
    const size_t take = i == variadic_at ? variadic_parts : 1;
    for (size_t j = 0; j < take; ++j) {
      if (j > 0) value += pattern.separator;
      value += parts[next++];
    }
    out.emplace_back(std::string(ComponentName(pattern.components[i])), std::move(value));
  }
  return out;
}

Result<std::string> RenderTemplate(std::string_view template_text, const SchemaComponents& components) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("template '" + std::string(template_text) + "': " + why);
  };
  std::string out;
  size_t pos = 0;
  while (pos < template_text.size()) {
    const char c = template_text[pos];
    if (c == '}') return bad("unbalanced '}' at offset " + std::to_string(pos));
    if (c != '{') {
      out += c;
      ++pos;
      continue;
    }
    const size_t close = template_text.find_first_of("{}", pos + 1);
    if (close == std::string_view::npos || template_text[close] == '{') {
      return bad("unbalanced '{' at offset " + std::to_string(pos));
    }
    const std::string_view name = template_text.substr(pos + 1, close - pos - 1);
    const std::string* value = nullptr;
    for (const auto& [key, v] : components) {
      if (key == name) value = &v;
    }
    if (value == nullptr) {
      std::string known;
      for (const auto& entry : components) known += (known.empty() ? "" : ", ") + entry.first;
      return bad("unknown placeholder {" + std::string(name) + "} (components: " + known + ")");
    }
    out += *value;
    pos = close + 1;
  }
  return out;
}

Status ValidateTemplate(std::string_view template_text, const config::SchemaPattern& pattern) {
  // Rendering with placeholder values finds exactly the errors a real schema would.
  SchemaComponents components;
  for (const std::string& component : pattern.components) {
    components.emplace_back(std::string(ComponentName(component)), "x");
  }
  return RenderTemplate(template_text, components).status();
}

}  // namespace rocky::warehouse
