// Table names and discovery's schema patterns and templates.
#include "rocky/warehouse/schema_pattern.h"

#include <doctest/doctest.h>

#include "rocky/warehouse/table_ref.h"

namespace rocky::warehouse {
namespace {

config::SchemaPattern Pattern(std::vector<std::string> components, std::string prefix = "src__",
                              std::string separator = "__") {
  config::SchemaPattern pattern;
  pattern.prefix = std::move(prefix);
  pattern.separator = std::move(separator);
  pattern.components = std::move(components);
  return pattern;
}

TEST_CASE("TableRef: Qualified and ParseTableRef round-trip; malformed names are refused") {
  Result<TableRef> ref = ParseTableRef("acme_warehouse.staging__us_west__shopify.orders");
  REQUIRE(ref.ok());
  CHECK(ref->catalog == "acme_warehouse");
  CHECK(ref->schema == "staging__us_west__shopify");
  CHECK(ref->table == "orders");
  CHECK(ref->Qualified() == "acme_warehouse.staging__us_west__shopify.orders");
  // The table name is everything after the second dot: source tables may have dots in their names.
  Result<TableRef> dotted = ParseTableRef("acme.staging.weird.a.b");
  REQUIRE(dotted.ok());
  CHECK(dotted->table == "weird.a.b");
  CHECK(dotted->Qualified() == "acme.staging.weird.a.b");
  for (const char* bad : {"", "a", "a.b", ".b.c", "a..c", "a.b.", ".."}) {
    Result<TableRef> parsed = ParseTableRef(bad);
    CHECK_MESSAGE(!parsed.ok(), bad);
    if (!parsed.ok()) {
      CHECK(parsed.status().code() == Status::Code::kInvalidArgument);
      // Appended rather than `"'" + std::string(bad)`, which trips GCC 12's -Wrestrict false positive.
      std::string quoted = "'";
      quoted.append(bad).append("'");
      CHECK(parsed.status().message().find(quoted) != std::string::npos);
    }
  }
  CHECK((TableRef{"a", "b", "c"} < TableRef{"a", "c", "a"}));
}

TEST_CASE("Schema pattern: the documented example maps to acme_warehouse.staging__us_west__shopify") {
  const config::SchemaPattern pattern = Pattern({"tenant", "regions...", "source"});
  REQUIRE(ValidateSchemaPattern(pattern).ok());
  std::optional<SchemaComponents> match = MatchSchema(pattern, "src__acme__us_west__shopify");
  REQUIRE(match.has_value());
  CHECK(*match == SchemaComponents{{"tenant", "acme"}, {"regions", "us_west"}, {"source", "shopify"}});
  Result<std::string> catalog = RenderTemplate("{tenant}_warehouse", *match);
  Result<std::string> schema = RenderTemplate("staging__{regions}__{source}", *match);
  REQUIRE(catalog.ok());
  REQUIRE(schema.ok());
  CHECK(*catalog + "." + *schema == "acme_warehouse.staging__us_west__shopify");

  // Several parts for the variadic component are re-joined with the separator.
  match = MatchSchema(pattern, "src__acme__us__west__shopify");
  REQUIRE(match.has_value());
  CHECK(*match == SchemaComponents{{"tenant", "acme"}, {"regions", "us__west"}, {"source", "shopify"}});
}

TEST_CASE("Schema pattern: schemas that do not match") {
  const config::SchemaPattern pattern = Pattern({"tenant", "regions...", "source"});
  CHECK_FALSE(MatchSchema(pattern, "src__acme__shopify"));        // variadic needs at least one part
  CHECK_FALSE(MatchSchema(pattern, "raw__acme__us__shopify"));    // prefix mismatch
  CHECK_FALSE(MatchSchema(pattern, "src_acme__us__shopify"));     // prefix mismatch
  CHECK_FALSE(MatchSchema(pattern, "src__"));                     // nothing after the prefix
  CHECK_FALSE(MatchSchema(pattern, "src__acme____shopify"));      // empty part
  CHECK_FALSE(MatchSchema(pattern, "src__acme__us__shopify__"));  // empty last part
  CHECK_FALSE(MatchSchema(pattern, "src____acme__us__shopify"));  // empty first part
  CHECK_FALSE(MatchSchema(pattern, "src"));

  const config::SchemaPattern fixed = Pattern({"tenant", "source"});
  CHECK(MatchSchema(fixed, "src__acme__shopify") ==
        SchemaComponents{{"tenant", "acme"}, {"source", "shopify"}});
  CHECK_FALSE(MatchSchema(fixed, "src__acme__us__shopify"));  // no variadic: exact count
  CHECK_FALSE(MatchSchema(fixed, "src__acme"));
}

TEST_CASE("Schema pattern: variadic first or last, one component, empty prefix, other separators") {
  const config::SchemaPattern first = Pattern({"path...", "table"});
  CHECK(MatchSchema(first, "src__a__b__c") == SchemaComponents{{"path", "a__b"}, {"table", "c"}});
  CHECK(MatchSchema(first, "src__a__c") == SchemaComponents{{"path", "a"}, {"table", "c"}});
  CHECK_FALSE(MatchSchema(first, "src__c"));

  const config::SchemaPattern last = Pattern({"tenant", "rest..."});
  CHECK(MatchSchema(last, "src__t__x__y__z") == SchemaComponents{{"tenant", "t"}, {"rest", "x__y__z"}});
  CHECK_FALSE(MatchSchema(last, "src__t"));

  const config::SchemaPattern only = Pattern({"all..."}, "", ".");
  REQUIRE(ValidateSchemaPattern(only).ok());
  CHECK(MatchSchema(only, "a.b") == SchemaComponents{{"all", "a.b"}});
  CHECK(MatchSchema(only, "a") == SchemaComponents{{"all", "a"}});
  CHECK_FALSE(MatchSchema(only, ""));
  CHECK_FALSE(MatchSchema(only, "a..b"));

  const config::SchemaPattern single = Pattern({"name"}, "p_", "_");
  CHECK(MatchSchema(single, "p_x") == SchemaComponents{{"name", "x"}});
  CHECK_FALSE(MatchSchema(single, "p_x_y"));
}

TEST_CASE("Schema pattern: invalid patterns are refused with the reason") {
  auto message = [](const config::SchemaPattern& pattern) {
    Status status = ValidateSchemaPattern(pattern);
    CHECK(status.code() == Status::Code::kInvalidArgument);
    return status.message();
  };
  CHECK(message(Pattern({"a"}, "src__", "")).find("separator") != std::string::npos);
  CHECK(message(Pattern({})).find("at least one") != std::string::npos);
  CHECK(message(Pattern({"a", "a"})).find("'a' appears twice") != std::string::npos);
  CHECK(message(Pattern({"a", "a..."})).find("'a' appears twice") != std::string::npos);
  CHECK(message(Pattern({"a...", "b..."})).find("'b...'") != std::string::npos);
  CHECK(message(Pattern({"a-b"})).find("'a-b'") != std::string::npos);
  CHECK(message(Pattern({"..."})).find("empty component") != std::string::npos);
  CHECK(message(Pattern({""})).find("empty component") != std::string::npos);
  CHECK(ValidateSchemaPattern(Pattern({"a_1", "B2..."}, "")).ok());
}

TEST_CASE("Templates: placeholders, unknown names and unbalanced braces") {
  const SchemaComponents components{{"tenant", "acme"}, {"source", "shopify"}};
  CHECK(RenderTemplate("plain", components).value() == "plain");
  CHECK(RenderTemplate("", components).value() == "");
  CHECK(RenderTemplate("{tenant}{source}{tenant}", components).value() == "acmeshopifyacme");

  auto error = [&](std::string_view text) {
    Result<std::string> rendered = RenderTemplate(text, components);
    REQUIRE_FALSE(rendered.ok());
    CHECK(rendered.status().code() == Status::Code::kInvalidArgument);
    return rendered.status().message();
  };
  CHECK(error("{region}_x").find("unknown placeholder {region}") != std::string::npos);
  CHECK(error("{}").find("unknown placeholder {}") != std::string::npos);
  CHECK(error("{tenant").find("unbalanced '{'") != std::string::npos);
  CHECK(error("{ten{ant}").find("unbalanced '{'") != std::string::npos);
  CHECK(error("tenant}").find("unbalanced '}'") != std::string::npos);
  CHECK(error("{tenant}}").find("unbalanced '}'") != std::string::npos);

  const config::SchemaPattern pattern = Pattern({"tenant", "regions...", "source"});
  CHECK(ValidateTemplate("staging__{regions}__{source}", pattern).ok());
  CHECK(ValidateTemplate("{tenant}_warehouse", pattern).ok());
  CHECK(ValidateTemplate("{regions...}", pattern).message().find("{regions...}") != std::string::npos);
  CHECK(ValidateTemplate("{tenant}_{colour}", pattern).message().find("{colour}") != std::string::npos);
  CHECK_FALSE(ValidateTemplate("{tenant", pattern).ok());
}

}  // namespace
}  // namespace rocky::warehouse
