#include "rocky/warehouse/dialect.h"

#include "rocky/warehouse/sqlite_warehouse.h"
#include "sql_text.h"

namespace rocky::warehouse {
namespace {

bool IsPlainIdentifier(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

class DatabricksDialect final : public SqlDialect {
 public:
  std::string_view name() const override { return "databricks"; }

  std::string RenderSelect(const SelectSpec& spec) const override {
    std::string sql = "SELECT *";
    for (const config::MetadataColumn& column : spec.metadata_columns) {
      sql += ", CAST(" + column.value + " AS " + column.type + ") AS " + Ident(column.name);
    }
    sql += " FROM " + Ident(spec.source.catalog) + "." + Ident(spec.source.schema) + "." + Ident(spec.source.table);
    if (spec.watermark) {
      sql += " WHERE " + Ident(spec.timestamp_column) + " > TIMESTAMP " + String(*spec.watermark);
    }
    return sql;
  }

 private:
  // Backticks only where needed, so the SQL reads like what people write by hand.
  static std::string Ident(std::string_view name) {
    if (IsPlainIdentifier(name)) return std::string(name);
    std::string out = "`";
    for (const char c : name) {
      if (c == '`') out += '`';
      out += c;
    }
    return out + "`";
  }

  // Spark SQL reads backslash escapes in string literals and concatenates adjacent literals ('a''b' is "ab"),
  // so quotes and backslashes are escaped with a backslash rather than doubled.
  static std::string String(std::string_view text) {
    std::string out = "'";
    for (const char c : text) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  }
};

class SqliteDialect final : public SqlDialect {
 public:
  std::string_view name() const override { return "sqlite"; }

  std::string RenderSelect(const SelectSpec& spec) const override {
    using internal::SqliteIdent;
    std::string sql = "SELECT *";
    for (const config::MetadataColumn& column : spec.metadata_columns) {
      sql += ", CAST(" + column.value + " AS " + internal::SqliteType(column.type) + ") AS " +
             SqliteIdent(column.name);
    }
    sql += " FROM " + SqliteIdent("source") + "." + SqliteIdent(spec.source.table);
    if (spec.watermark) {
      // The watermark is compared in rocky_ts()'s fixed-width form, converted here once rather than per row.
      // A watermark that is not a timestamp is left to rocky_ts(), whose error names it when the SQL runs.
      const std::optional<std::string> canonical = CanonicalTimestamp(*spec.watermark);
      // >=, not >: see CopyRequest::watermark (the boundary rows are re-copied, replacing themselves).
      sql += " WHERE rocky_ts(" + SqliteIdent(spec.timestamp_column) + ") >= " +
             (canonical ? internal::SqliteString(*canonical)
                        : "rocky_ts(" + internal::SqliteString(*spec.watermark) + ")");
    }
    return sql;
  }
};

}  // namespace

std::unique_ptr<SqlDialect> MakeSqliteDialect() { return std::make_unique<SqliteDialect>(); }
std::unique_ptr<SqlDialect> MakeDatabricksDialect() { return std::make_unique<DatabricksDialect>(); }

}  // namespace rocky::warehouse
