// Discovery's naming rules: which source schemas a pipeline takes, and the target each one maps to.
//
//   pattern {prefix "src__", separator "__", components ["tenant", "regions...", "source"]}
//   "src__acme__us_west__shopify"      -> tenant=acme, regions=us_west, source=shopify
//   "src__acme__us__west__shopify"     -> tenant=acme, regions=us__west (parts re-joined by the separator)
//   catalog_template "{tenant}_warehouse", schema_template "staging__{regions}__{source}"
//                                      -> acme_warehouse.staging__us_west__shopify
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rocky/base/status.h"
#include "rocky/config/config.h"

namespace rocky::warehouse {

using base::Result;
using base::Status;

// Component name (without "...") -> value, in the pattern's order.
using SchemaComponents = std::vector<std::pair<std::string, std::string>>;

// Checks a pattern once, at load time: non-empty separator, at least one component, unique names, at most one
// variadic ("...") component, names made of [A-Za-z0-9_]. kInvalidArgument naming the problem.
Status ValidateSchemaPattern(const config::SchemaPattern& pattern);

// The components of `schema`, or nullopt when the schema does not match the pattern (wrong prefix, wrong
// number of parts, an empty part). Requires a pattern that ValidateSchemaPattern accepted.
std::optional<SchemaComponents> MatchSchema(const config::SchemaPattern& pattern, std::string_view schema);

// Replaces every {name} in `template_text` by its component value. kInvalidArgument naming the placeholder
// when a name is not a component or a brace is unbalanced.
Result<std::string> RenderTemplate(std::string_view template_text, const SchemaComponents& components);

// Checks that every placeholder of `template_text` names a component of `pattern`, without a schema at hand.
Status ValidateTemplate(std::string_view template_text, const config::SchemaPattern& pattern);

}  // namespace rocky::warehouse
