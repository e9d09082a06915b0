#include "rocky/warehouse/sqlite_warehouse.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>

#include "sql_text.h"

namespace rocky::warehouse {
namespace {

using internal::SqliteIdent;
using internal::SqliteString;

// A concurrent reader (or another copy) holds its lock for one short transaction; waiting this long for it is
// better than failing a copy.
constexpr int kBusyTimeoutMs = 5000;

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

constexpr std::string_view kRockyTsError = "rocky_ts: ";

// rocky_ts(x): see sqlite_warehouse.h.
void RockyTs(sqlite3_context* context, int argc, sqlite3_value** argv) {
  if (argc != 1 || sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    sqlite3_result_null(context);
    return;
  }
  const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  const std::string_view value(text == nullptr ? "" : text, static_cast<size_t>(sqlite3_value_bytes(argv[0])));
  const std::optional<std::string> canonical = CanonicalTimestamp(value);
  if (!canonical) {
    // Long values are cut so that the message stays one readable line.
    const std::string shown = value.size() > 80 ? std::string(value.substr(0, 80)) + "..." : std::string(value);
    const std::string message = std::string(kRockyTsError) + "'" + shown +
                                "' is not a timestamp (expected ISO-8601, e.g. 2025-03-15T14:30:00Z)";
    sqlite3_result_error(context, message.c_str(), static_cast<int>(message.size()));
    return;
  }
  sqlite3_result_text(context, canonical->data(), static_cast<int>(canonical->size()), SQLITE_TRANSIENT);
}

// Maps an SQLite failure onto a Status code; the message keeps SQLite's own words after `context`.
Status SqlError(sqlite3* db, int rc, const std::string& context) {
  const std::string sqlite_message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const std::string message = context + ": " + sqlite_message;
  if (sqlite_message.rfind(kRockyTsError, 0) == 0) return Status::InvalidArgument(message);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Status::Busy(message);
    case SQLITE_FULL: return Status::NoSpace(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Status::Corruption(message);
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_NOLFS: return Status::IOError(message);
    default: return Status::InvalidArgument(message);
  }
}

// "file:" URI of a path, so that ATTACH can ask for mode=ro and odd characters in folder names stay literal.
std::string FileUri(const std::string& path, std::string_view mode) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string uri = "file:";
  for (const char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      uri += c;
    } else {
      uri += '%';
      uri += kHex[u >> 4];
      uri += kHex[u & 15];
    }
  }
  return uri + "?mode=" + std::string(mode);
}

bool IsFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Opens `path` with rocky_ts() registered. mode "rw" never creates the file; "rwc" does. Read paths use "rw"
// too, so that a hot rollback journal left by a crashed copy is rolled back rather than refused.
Result<Db> OpenDb(const std::string& path, std::string_view mode) {
  if (mode.find('c') != std::string_view::npos) ROCKY_RETURN_IF_ERROR(CreatePrivateFileIfMissing(path));
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(FileUri(path, mode).c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return SqlError(db.get(), rc, "opening " + path);
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  const int frc = sqlite3_create_function_v2(db.get(), "rocky_ts", 1,
                                             SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, nullptr,
                                             RockyTs, nullptr, nullptr, nullptr);
  if (frc != SQLITE_OK) return SqlError(db.get(), frc, "registering rocky_ts() on " + path);
  return db;
}

Status Exec(sqlite3* db, const std::string& sql, const std::string& context) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  sqlite3_free(error);  // sqlite3_errmsg() still holds the same text
  if (rc != SQLITE_OK) return SqlError(db, rc, context);
  return Status::OK();
}

Result<Stmt> Prepare(sqlite3* db, const std::string& sql, const std::string& context) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr);
  Stmt stmt(raw);
  if (rc != SQLITE_OK) return SqlError(db, rc, context);
  return stmt;
}

// Runs `sql` with text parameters ?1.. and calls `row` for every result row.
Status Query(sqlite3* db, const std::string& sql, const std::vector<std::string>& params,
             const std::function<void(sqlite3_stmt*)>& row, const std::string& context) {
  ROCKY_ASSIGN_OR_RETURN(Stmt stmt, Prepare(db, sql, context));
  for (size_t i = 0; i < params.size(); ++i) {
    sqlite3_bind_text(stmt.get(), static_cast<int>(i + 1), params[i].data(), static_cast<int>(params[i].size()),
                      SQLITE_TRANSIENT);
  }
  while (true) {
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) return Status::OK();
    if (rc != SQLITE_ROW) return SqlError(db, rc, context);
    row(stmt.get());
  }
}

std::string ColumnText(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  return text == nullptr ? std::string() : std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
}

struct ColumnInfo {
  std::string name;
  std::string declared_type;
};

// The columns `SELECT *` returns from `schema_alias`.`table`, in order; empty when there is no such table.
// table_xinfo rather than table_info: generated columns are in `SELECT *` (hidden 2 or 3) and must be in the
// INSERT's column list too. Views are not tables here, as in ListTables. `schema_alias` is one of ours
// ("main", "source"), never user text.
Result<std::vector<ColumnInfo>> TableColumns(sqlite3* db, std::string_view schema_alias, const std::string& table,
                                             const std::string& context) {
  std::vector<ColumnInfo> columns;
  const std::string alias(schema_alias);
  ROCKY_RETURN_IF_ERROR(Query(
      db,
      "SELECT name, type FROM pragma_table_xinfo(?1, ?2) WHERE hidden <> 1 AND EXISTS (SELECT 1 FROM " + alias +
          ".sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE) ORDER BY cid",
      {table, alias},
      [&](sqlite3_stmt* stmt) { columns.push_back({ColumnText(stmt, 0), ColumnText(stmt, 1)}); }, context));
  return columns;
}

// SQLite matches identifiers case-insensitively (ASCII only), so column lookups do too.
bool SameIdentifier(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool HasColumn(const std::vector<ColumnInfo>& columns, std::string_view name) {
  return std::any_of(columns.begin(), columns.end(), [&](const ColumnInfo& c) { return SameIdentifier(c.name, name); });
}

// Catalog and schema names become a folder and a file name.
Status ValidateFileName(std::string_view kind, std::string_view name) {
  const bool ok = !name.empty() && name.size() <= 200 && name.front() != '.' &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
                  });
  if (!ok) {
    return Status::InvalidArgument("invalid " + std::string(kind) + " name '" + std::string(name) +
                                   "': the SQLite warehouse allows only letters, digits, '_' and '-'");
  }
  return Status::OK();
}

Status ValidateTableRef(const TableRef& ref) {
  ROCKY_RETURN_IF_ERROR(ValidateFileName("catalog", ref.catalog));
  ROCKY_RETURN_IF_ERROR(ValidateFileName("schema", ref.schema));
  if (ref.table.empty() || ref.table.find('\0') != std::string::npos) {
    return Status::InvalidArgument("invalid table name '" + ref.Qualified() + "'");
  }
  return Status::OK();
}

Status ValidateColumnName(std::string_view what, std::string_view name) {
  if (name.empty() || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("invalid " + std::string(what) + " '" + std::string(name) + "'");
  }
  return Status::OK();
}

class SqliteWarehouse final : public Warehouse {
 public:
  explicit SqliteWarehouse(std::string folder) : folder_(std::move(folder)), dialect_(MakeSqliteDialect()) {}

  const SqlDialect& dialect() const override { return *dialect_; }

  Result<std::vector<std::string>> ListSchemas(std::string_view catalog) override {
    ROCKY_RETURN_IF_ERROR(ValidateFileName("catalog", catalog));
    const std::string dir = folder_ + "/" + std::string(catalog);
    if (!IsDirectory(dir)) {
      return Status::NotFound("catalog '" + std::string(catalog) + "' not found (no folder " + dir + ")");
    }
    std::error_code ec;
    std::vector<std::string> schemas;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::filesystem::path& path = it->path();
      if (path.extension() != ".sqlite" || !IsFile(path.string())) continue;
      const std::string schema = path.stem().string();
      if (ValidateFileName("schema", schema).ok()) schemas.push_back(schema);
    }
    if (ec) return Status::IOError("listing " + dir + ": " + ec.message());
    std::sort(schemas.begin(), schemas.end());
    return schemas;
  }

  Result<std::vector<std::string>> ListTables(std::string_view catalog, std::string_view schema) override {
    ROCKY_RETURN_IF_ERROR(ValidateFileName("catalog", catalog));
    ROCKY_RETURN_IF_ERROR(ValidateFileName("schema", schema));
    const std::string name = std::string(catalog) + "." + std::string(schema);
    const std::string path = SchemaPath(catalog, schema);
    if (!IsFile(path)) return Status::NotFound("schema " + name + " not found (no file " + path + ")");
    ROCKY_ASSIGN_OR_RETURN(Db db, OpenDb(path, "rw"));
    std::vector<std::string> tables;
    ROCKY_RETURN_IF_ERROR(Query(
        db.get(), "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        {}, [&](sqlite3_stmt* stmt) { tables.push_back(ColumnText(stmt, 0)); }, "listing tables of " + name));
    std::sort(tables.begin(), tables.end());
    return tables;
  }

  Result<bool> TableExists(const TableRef& table) override {
    ROCKY_RETURN_IF_ERROR(ValidateTableRef(table));
    const std::string path = SchemaPath(table.catalog, table.schema);
    if (!IsFile(path)) return false;
    ROCKY_ASSIGN_OR_RETURN(Db db, OpenDb(path, "rw"));
    ROCKY_ASSIGN_OR_RETURN(std::vector<ColumnInfo> columns,
                           TableColumns(db.get(), "main", table.table, "looking up " + table.Qualified()));
    return !columns.empty();
  }

  Result<uint64_t> CountRows(const TableRef& table) override {
    const std::string context = "counting rows of " + table.Qualified();
    ROCKY_ASSIGN_OR_RETURN(Db db, OpenExistingTable(table, {}));
    uint64_t count = 0;
    ROCKY_RETURN_IF_ERROR(Query(
        db.get(), "SELECT COUNT(*) FROM main." + SqliteIdent(table.table), {},
        [&](sqlite3_stmt* stmt) { count = static_cast<uint64_t>(sqlite3_column_int64(stmt, 0)); }, context));
    return count;
  }

  Result<std::optional<std::string>> MaxTimestamp(const TableRef& table, std::string_view column) override {
    ROCKY_RETURN_IF_ERROR(ValidateColumnName("timestamp column", column));
    ROCKY_ASSIGN_OR_RETURN(Db db, OpenExistingTable(table, column));
    std::optional<std::string> max;
    ROCKY_RETURN_IF_ERROR(Query(
        db.get(), "SELECT MAX(rocky_ts(" + SqliteIdent(column) + ")) FROM main." + SqliteIdent(table.table), {},
        [&](sqlite3_stmt* stmt) {
          if (sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
            max = internal::StateFormFromCanonical(ColumnText(stmt, 0));
          }
        },
        "reading MAX(" + std::string(column) + ") of " + table.Qualified()));
    return max;
  }

  Result<CopyResult> Copy(const CopyRequest& request) override;

 private:
  std::string SchemaPath(std::string_view catalog, std::string_view schema) const {
    return folder_ + "/" + std::string(catalog) + "/" + std::string(schema) + ".sqlite";
  }

  // A connection to the table's schema file, after checking that the table (and `column`, when given) exist:
  // kNotFound naming what is missing.
  // `role` ("table", "source table") starts the messages.
  Result<Db> OpenExistingTable(const TableRef& table, std::optional<std::string_view> column,
                               std::string_view role = "table") {
    ROCKY_RETURN_IF_ERROR(ValidateTableRef(table));
    const std::string name = std::string(role) + " " + table.Qualified();
    const std::string path = SchemaPath(table.catalog, table.schema);
    if (!IsFile(path)) return Status::NotFound(name + " not found (no file " + path + ")");
    ROCKY_ASSIGN_OR_RETURN(Db db, OpenDb(path, "rw"));
    ROCKY_ASSIGN_OR_RETURN(std::vector<ColumnInfo> columns,
                           TableColumns(db.get(), "main", table.table, "looking up " + table.Qualified()));
    if (columns.empty()) return Status::NotFound(name + " not found");
    if (column && !HasColumn(columns, *column)) {
      return Status::NotFound("column '" + std::string(*column) + "' not found in " + name);
    }
    return db;
  }

  // The body of Copy() between BEGIN IMMEDIATE and COMMIT; the caller rolls back on error.
  Result<CopyResult> CopyInTransaction(sqlite3* db, const CopyRequest& request,
                                       const std::optional<std::string>& canonical_watermark);

  std::string folder_;
  std::unique_ptr<SqlDialect> dialect_;
};

Result<CopyResult> SqliteWarehouse::Copy(const CopyRequest& request) {
  const TableRef& source = request.source;
  const TableRef& target = request.target;
  const std::string context = "copying " + source.Qualified() + " to " + target.Qualified();
  auto fail = [&](const Status& status) { return status.WithContext(context); };

  // Everything checkable without touching a file is checked first.
  for (const TableRef* ref : {&source, &target}) {
    if (Status s = ValidateTableRef(*ref); !s.ok()) return fail(s);
  }
  if (Status s = ValidateColumnName("timestamp column", request.timestamp_column); !s.ok()) return fail(s);
  for (const config::MetadataColumn& column : request.metadata_columns) {
    if (Status s = ValidateColumnName("metadata column name", column.name); !s.ok()) return fail(s);
    if (!internal::IsSafeTypeName(column.type)) {
      return fail(Status::InvalidArgument("metadata column '" + column.name + "': invalid type '" + column.type + "'"));
    }
    if (column.value.empty()) {
      return fail(Status::InvalidArgument("metadata column '" + column.name + "': empty value expression"));
    }
  }
  std::optional<std::string> canonical_watermark;
  if (request.watermark) {
    canonical_watermark = CanonicalTimestamp(*request.watermark);
    if (!canonical_watermark) {
      return fail(Status::InvalidArgument("watermark '" + *request.watermark + "' is not a timestamp"));
    }
  }
  if (source.catalog == target.catalog && source.schema == target.schema) {
    // Both would be the same file attached twice; its two lock holders would deadlock at COMMIT.
    return fail(Status::InvalidArgument("source and target are in the same schema; the SQLite warehouse copies "
                                        "between schemas only"));
  }

  // The source's table and column are checked before the target's file is created, so the common mistakes
  // leave no empty schema file behind. This connection also rolls back a hot journal a crashed writer left.
  const std::string source_path = SchemaPath(source.catalog, source.schema);
  {
    Result<Db> checked = OpenExistingTable(source, request.timestamp_column, "source table");
    if (!checked.ok()) return fail(checked.status());
  }

  const std::string target_dir = folder_ + "/" + target.catalog;
  std::error_code ec;
  std::filesystem::create_directories(target_dir, ec);
  if (ec) return fail(Status::IOError("creating " + target_dir + ": " + ec.message()));
  Result<Db> opened = OpenDb(SchemaPath(target.catalog, target.schema), "rwc");
  if (!opened.ok()) return fail(opened.status());
  sqlite3* db = opened->get();
  // A rollback journal with full syncs: a copy is durable at COMMIT and a crash at any point rolls back to
  // the state before it. (WAL would be crash-safe too, but adds -wal/-shm files next to every schema.)
  if (Status s = Exec(db, "PRAGMA main.journal_mode=DELETE; PRAGMA main.synchronous=FULL", "configuring target");
      !s.ok()) {
    return fail(s);
  }
  // Read-only: the copy writes only the target file, so its commit is atomic without a super-journal, and the
  // source keeps no write lock.
  if (Status s = Query(db, "ATTACH DATABASE ?1 AS source", {FileUri(source_path, "ro")}, [](sqlite3_stmt*) {},
                       "attaching " + source_path);
      !s.ok()) {
    return fail(s);
  }
  if (Status s = Exec(db, "BEGIN IMMEDIATE", "starting the transaction"); !s.ok()) return fail(s);
  Result<CopyResult> result = CopyInTransaction(db, request, canonical_watermark);
  if (result.ok()) {
    if (Status s = Exec(db, "COMMIT", "committing"); s.ok()) return result;
    else result = s;
  }
  if (sqlite3_get_autocommit(db) == 0) {
    // The status already says what failed; a failed ROLLBACK is undone by SQLite's hot-journal recovery.
    (void)Exec(db, "ROLLBACK", "rolling back");
  }
  return fail(result.status());
}

Result<CopyResult> SqliteWarehouse::CopyInTransaction(sqlite3* db, const CopyRequest& request,
                                                      const std::optional<std::string>& canonical_watermark) {
  const TableRef& source = request.source;
  const TableRef& target = request.target;
  // Read again inside the transaction: the source may have changed since the check in Copy().
  ROCKY_ASSIGN_OR_RETURN(std::vector<ColumnInfo> source_columns,
                         TableColumns(db, "source", source.table, "reading columns of " + source.Qualified()));
  if (source_columns.empty()) return Status::NotFound("source table " + source.Qualified() + " not found");
  if (!HasColumn(source_columns, request.timestamp_column)) {
    return Status::NotFound("column '" + request.timestamp_column + "' not found in source table " +
                            source.Qualified());
  }
  ROCKY_ASSIGN_OR_RETURN(std::vector<ColumnInfo> target_columns,
                         TableColumns(db, "main", target.table, "reading columns of " + target.Qualified()));
  const std::string target_sql = "main." + SqliteIdent(target.table);
  const std::string ts = SqliteIdent(request.timestamp_column);

  if (!request.watermark) {
    std::string create = "CREATE TABLE " + target_sql + " (";
    std::string separator;
    for (const ColumnInfo& column : source_columns) {
      create += separator + SqliteIdent(column.name) + (column.declared_type.empty() ? "" : " " + column.declared_type);
      separator = ", ";
    }
    for (const config::MetadataColumn& column : request.metadata_columns) {
      create += separator + SqliteIdent(column.name) + " " + internal::SqliteType(column.type);
    }
    create += ")";
    ROCKY_RETURN_IF_ERROR(Exec(db, "DROP TABLE IF EXISTS " + target_sql, "dropping " + target.Qualified()));
    ROCKY_RETURN_IF_ERROR(Exec(db, create, "creating " + target.Qualified()));
  } else {
    if (target_columns.empty()) {
      // Copying only the window into a new table would silently lose every older row: a missing target with
      // a watermark means the state and the warehouse disagree, and a full refresh is the fix.
      return Status::NotFound("target table " + target.Qualified() +
                              " does not exist but a watermark is set; delete the watermark to run a full refresh");
    }
    // A source that gained columns since the target was created (schema drift) cannot be appended to it;
    // say so, with the way out, instead of SQLite's bare "has no column named".
    std::string missing;
    for (const ColumnInfo& column : source_columns) {
      if (!HasColumn(target_columns, column.name)) missing += (missing.empty() ? "" : ", ") + column.name;
    }
    if (!missing.empty()) {
      return Status::InvalidArgument("source table " + source.Qualified() + " has columns the target " +
                                     target.Qualified() + " lacks (" + missing +
                                     "): its schema changed; run 'rocky state delete --table " + target.Qualified() +
                                     "' for a full refresh");
    }
    ROCKY_RETURN_IF_ERROR(Exec(db,
                               "DELETE FROM " + target_sql + " WHERE rocky_ts(" + ts + ") >= " +
                                   SqliteString(*canonical_watermark),
                               "deleting rows at or above the watermark from " + target.Qualified()));
  }

  CopyResult result;
  if (request.watermark) result.rows_replaced = static_cast<uint64_t>(sqlite3_changes64(db));
  // Counted in the same transaction as the INSERT ... SELECT below, so it describes the very snapshot copied
  // even while a connector keeps writing to the source.
  ROCKY_RETURN_IF_ERROR(Query(
      db, "SELECT COUNT(*) FROM source." + SqliteIdent(source.table), {},
      [&](sqlite3_stmt* stmt) { result.source_rows = static_cast<uint64_t>(sqlite3_column_int64(stmt, 0)); },
      "counting the rows of " + source.Qualified()));
  SelectSpec spec{source, request.timestamp_column, request.watermark, request.metadata_columns};
  result.sql = dialect_->RenderSelect(spec);
  std::string insert = "INSERT INTO " + target_sql + " (";
  std::string separator;
  for (const ColumnInfo& column : source_columns) {
    insert += separator + SqliteIdent(column.name);
    separator = ", ";
  }
  for (const config::MetadataColumn& column : request.metadata_columns) {
    insert += separator + SqliteIdent(column.name);
  }
  insert += ") " + result.sql;
  ROCKY_RETURN_IF_ERROR(Exec(db, insert, "inserting into " + target.Qualified()));
  result.rows_copied = static_cast<uint64_t>(sqlite3_changes64(db));

  ROCKY_RETURN_IF_ERROR(Query(
      db, "SELECT COUNT(*), MAX(rocky_ts(" + ts + ")) FROM " + target_sql, {},
      [&](sqlite3_stmt* stmt) {
        result.target_rows = static_cast<uint64_t>(sqlite3_column_int64(stmt, 0));
        if (sqlite3_column_type(stmt, 1) != SQLITE_NULL) {
          result.max_timestamp = internal::StateFormFromCanonical(ColumnText(stmt, 1));
        }
      },
      "reading the row count and MAX(" + request.timestamp_column + ") of " + target.Qualified()));
  return result;
}

}  // namespace

Result<std::unique_ptr<Warehouse>> OpenSqliteWarehouse(const std::string& folder) {
  if (folder.empty()) return Status::InvalidArgument("empty warehouse folder");
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) return Status::IOError("creating warehouse folder " + folder + ": " + ec.message());
  if (!IsDirectory(folder)) return Status::IOError("warehouse folder " + folder + " is not a folder");
  return std::unique_ptr<Warehouse>(std::make_unique<SqliteWarehouse>(folder));
}

Status CreatePrivateFileIfMissing(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return Status::OK();
  }
  if (errno == EEXIST) return Status::OK();
  return Status::IOError("creating " + path + ": " + std::strerror(errno));
}

}  // namespace rocky::warehouse
