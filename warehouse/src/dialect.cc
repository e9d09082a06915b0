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
    sql += " FROM " + Ident(spec.source.catalog) + "." + Ident(spec.source.schema) + "." +
           Ident(spec.source.table);
    if (spec.watermark) {
      const std::string c = Ident(spec.timestamp_column);
      if (spec.cursor_type == config::CursorType::kInteger) {
        sql += " WHERE " + c + " > " + *spec.watermark;  // validated integer digits
      } else if (spec.lookback_seconds > 0) {
        sql += " WHERE " + c + " > TIMESTAMP " + String(*spec.watermark) + " - INTERVAL " +
               std::to_string(spec.lookback_seconds) + " SECONDS";
      } else {
        sql += " WHERE " + c + " > TIMESTAMP " + String(*spec.watermark);
      }
    }
    return sql;
  }

  std::string RenderMerge(const MergeSpec& spec) const override {
    std::string on;
    for (const std::string& key : spec.merge_keys) {
      on += (on.empty() ? "" : " AND ") + std::string("t.") + Ident(key) + " = s." + Ident(key);
    }
    return "MERGE INTO " + Ident(spec.target.catalog) + "." + Ident(spec.target.schema) + "." +
           Ident(spec.target.table) + " AS t USING (" + RenderSelect(spec.select) + ") AS s ON " + on +
           " WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *";
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
      // >=, not >: see CopyRequest::watermark (the boundary rows are read again; the copy skips those the
      // target already holds).
      const std::string c = SqliteIdent(spec.timestamp_column);
      if (spec.cursor_type == config::CursorType::kInteger) {
        sql += " WHERE " + c + " >= " + *spec.watermark;  // the plan validated the integer
      } else if (std::optional<std::string> canonical = CanonicalTimestamp(*spec.watermark)) {
        // Compared in rocky_ts()'s fixed-width form, converted here once rather than per row.
        std::string start = *canonical;
        if (spec.lookback_seconds > 0) {
          start = internal::CanonicalMinusSeconds(start, static_cast<int64_t>(spec.lookback_seconds))
                      .value_or("0000-01-01T00:00:00.000000000Z");
        }
        sql += " WHERE " + internal::InstantWindow(c, start);
      } else {
        // Not a timestamp: rocky_ts() names it when the SQL runs.
        sql += " WHERE rocky_ts(" + c + ") >= rocky_ts(" + internal::SqliteString(*spec.watermark) + ")";
      }
    }
    return sql;
  }

  std::string RenderMerge(const MergeSpec& spec) const override {
    using internal::SqliteIdent;
    std::string keys;
    for (const std::string& key : spec.merge_keys) keys += (keys.empty() ? "" : ", ") + SqliteIdent(key);
    return "INSERT INTO " + SqliteIdent(spec.target.table) + " " + RenderSelect(spec.select) +
           (spec.select.watermark ? "" : " WHERE true") + " ON CONFLICT (" + keys + ") DO UPDATE SET ...";
  }
};

}  // namespace

std::unique_ptr<SqlDialect> MakeSqliteDialect() { return std::make_unique<SqliteDialect>(); }
std::unique_ptr<SqlDialect> MakeDatabricksDialect() { return std::make_unique<DatabricksDialect>(); }

}  // namespace rocky::warehouse
