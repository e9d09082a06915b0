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

#include "copy_request_check.h"
#include "rocky/base/timestamp.h"
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
  const std::string_view value(text == nullptr ? "" : text,
                               static_cast<size_t>(sqlite3_value_bytes(argv[0])));
  const std::optional<std::string> canonical = CanonicalTimestamp(value);
  if (!canonical) {
    // Long values are cut so that the message stays one readable line.
    const std::string shown =
        value.size() > 80 ? std::string(value.substr(0, 80)) + "..." : std::string(value);
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

Result<Stmt> Prepare(sqlite3* db, const std::string& sql, const std::string& context) {
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &raw, &tail);
  Stmt stmt(raw);
  if (rc != SQLITE_OK) return SqlError(db, rc, context);
  // Exactly one statement: text after it (a second statement smuggled in through a name or a type) is refused
  // rather than run or silently dropped.
  const std::string_view rest(tail, static_cast<size_t>(sql.c_str() + sql.size() - tail));
  if (stmt == nullptr || rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
    return Status::InvalidArgument(context + ": refusing SQL that is not exactly one statement");
  }
  return stmt;
}

// Runs one statement (through Prepare, never sqlite3_exec) to completion, ignoring any result rows.
Status Exec(sqlite3* db, const std::string& sql, const std::string& context) {
  ROCKY_ASSIGN_OR_RETURN(Stmt stmt, Prepare(db, sql, context));
  while (true) {
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) return Status::OK();
    if (rc != SQLITE_ROW) return SqlError(db, rc, context);
  }
}

// Runs `sql` with text parameters ?1.. and calls `row` for every result row.
Status Query(sqlite3* db, const std::string& sql, const std::vector<std::string>& params,
             const std::function<void(sqlite3_stmt*)>& row, const std::string& context) {
  ROCKY_ASSIGN_OR_RETURN(Stmt stmt, Prepare(db, sql, context));
  for (size_t i = 0; i < params.size(); ++i) {
    sqlite3_bind_text(stmt.get(), static_cast<int>(i + 1), params[i].data(),
                      static_cast<int>(params[i].size()), SQLITE_TRANSIENT);
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
  return text == nullptr ? std::string()
                         : std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
}

struct ColumnInfo {
  std::string name;
  std::string declared_type;
  bool not_null = false;
  int pk = 0;  // 1-based position in the primary key, 0 when not part of it
};

// The columns `SELECT *` returns from `schema_alias`.`table`, in order; empty when there is no such table.
// table_xinfo rather than table_info: generated columns are in `SELECT *` (hidden 2 or 3) and must be in the
// INSERT's column list too. Views are not tables here, as in ListTables. `schema_alias` is one of ours
// ("main", "source"), never user text.
Result<std::vector<ColumnInfo>> TableColumns(sqlite3* db, std::string_view schema_alias,
                                             const std::string& table, const std::string& context) {
  std::vector<ColumnInfo> columns;
  const std::string alias(schema_alias);
  ROCKY_RETURN_IF_ERROR(Query(
      db,
      "SELECT name, type, \"notnull\", pk FROM pragma_table_xinfo(?1, ?2) WHERE hidden <> 1 AND EXISTS "
      "(SELECT 1 "
      "FROM " +
          alias + ".sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE) ORDER BY cid",
      {table, alias},
      [&](sqlite3_stmt* stmt) {
        columns.push_back({ColumnText(stmt, 0), ColumnText(stmt, 1), sqlite3_column_int(stmt, 2) != 0,
                           sqlite3_column_int(stmt, 3)});
      },
      context));
  return columns;
}

// SQLite matches identifiers case-insensitively (ASCII only), so column lookups do too.
bool SameIdentifier(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool HasColumn(const std::vector<ColumnInfo>& columns, std::string_view name) {
  return std::any_of(columns.begin(), columns.end(),
                     [&](const ColumnInfo& c) { return SameIdentifier(c.name, name); });
}

const ColumnInfo* FindColumn(const std::vector<ColumnInfo>& columns, std::string_view name) {
  for (const ColumnInfo& c : columns) {
    if (SameIdentifier(c.name, name)) return &c;
  }
  return nullptr;
}

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

// SQLite's affinity rules (datatype3 §3.1): TEXT affinity unless the declared type names an integer first.
bool TextAffinity(std::string_view declared) {
  const std::string upper = Upper(declared);
  if (upper.find("INT") != std::string::npos) return false;
  return upper.find("CHAR") != std::string::npos || upper.find("CLOB") != std::string::npos ||
         upper.find("TEXT") != std::string::npos;
}

// `quoted_column >= bound`, marked as selective: without statistics SQLite guesses that a range keeps a
// quarter of the table, and for a window read with row_number() OVER (PARTITION BY the rowid, ...) it then
// prefers scanning the whole table in rowid order to a range read plus a sort. A window is the newest few
// rows, so the hint is what is true; the EXPLAIN QUERY PLAN test holds the planner to it.
std::string IndexRange(const std::string& quoted_column, const std::string& bound) {
  return "likelihood(" + quoted_column + " >= " + bound + ", 0.001)";
}

// Runs a copy's statements; with an explain connection (tests), first records each one's EXPLAIN QUERY PLAN,
// so a test can check that the statements rocky really runs are served by indexes.
class StatementLog {
 public:
  explicit StatementLog(sqlite3* explain_db) : db_(explain_db) {}

  void Note(std::string_view purpose, const std::string& sql, const std::vector<std::string>& params = {}) {
    if (db_ == nullptr) return;
    StatementPlan entry{std::string(purpose), sql, {}};
    Result<Stmt> stmt = Prepare(db_, "EXPLAIN QUERY PLAN " + sql, "explaining");
    if (!stmt.ok()) {
      entry.plan.push_back("(no plan: " + stmt.status().message() + ")");
    } else {
      for (size_t i = 0; i < params.size(); ++i) {
        sqlite3_bind_text(stmt->get(), static_cast<int>(i + 1), params[i].data(),
                          static_cast<int>(params[i].size()), SQLITE_TRANSIENT);
      }
      while (sqlite3_step(stmt->get()) == SQLITE_ROW) entry.plan.push_back(ColumnText(stmt->get(), 3));
    }
    plans_.push_back(std::move(entry));
  }

  Status Run(std::string_view purpose, const std::string& sql, const std::string& context) {
    Note(purpose, sql);
    return Exec(db_for_run_ != nullptr ? db_for_run_ : nullptr, sql, context);
  }

  void set_db(sqlite3* db) { db_for_run_ = db; }
  std::vector<StatementPlan> Take() { return std::move(plans_); }

 private:
  sqlite3* db_;
  sqlite3* db_for_run_ = nullptr;
  std::vector<StatementPlan> plans_;
};

Result<uint64_t> CountWhere(sqlite3* db, const std::string& table_sql, const std::string& where,
                            const std::vector<std::string>& params, std::string_view purpose,
                            StatementLog& log, const std::string& context) {
  const std::string sql = "SELECT COUNT(*) FROM " + table_sql + (where.empty() ? "" : " WHERE " + where);
  log.Note(purpose, sql, params);
  uint64_t count = 0;
  ROCKY_RETURN_IF_ERROR(Query(
      db, sql, params,
      [&](sqlite3_stmt* stmt) { count = static_cast<uint64_t>(sqlite3_column_int64(stmt, 0)); }, context));
  return count;
}

// A schema file's version as a row count memo holds it (RowCountMemo::version):
// "sqlite1:<st_dev>:<st_ino>:<size>:<mtime ns>:<change counter>", the counter being the database header's
// file change counter (offset 24, big-endian), which SQLite moves on every commit in rollback-journal mode;
// the identity, size and time tell a replaced or restored file apart even where counters coincide.
struct SchemaFileVersion {
  std::string text;
  uint32_t change_counter = 0;
};

// nullopt when the file cannot say: a file in WAL mode (its commits go to the -wal file and leave the
// header's counter alone), an empty file, or a failed read or stat (the caller then counts). Requires: `db`
// holds a lock on `schema` — a transaction that has read it, or BEGIN IMMEDIATE's write lock for the target —
// so that no other process commits to the file between the header's read and the stat. The header is read
// through SQLite's own file handle: opening and closing a second descriptor of the file would drop the POSIX
// locks SQLite holds on it.
std::optional<SchemaFileVersion> ReadSchemaFileVersion(sqlite3* db, const char* schema,
                                                       const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  const std::string identity = "sqlite1:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) +
                               ":" + std::to_string(st.st_size);
  // A file just created holds no page yet; its first commit sets the counter to 1.
  if (st.st_size == 0) return SchemaFileVersion{identity + ":empty", 0};
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(db, schema, SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK || file == nullptr ||
      file->pMethods == nullptr) {
    return std::nullopt;
  }
  unsigned char header[100];
  if (file->pMethods->xRead(file, header, sizeof header, 0) != SQLITE_OK) return std::nullopt;
  if (std::memcmp(header, "SQLite format 3", 16) != 0) return std::nullopt;
  if (header[18] != 1 || header[19] != 1) return std::nullopt;  // 1: rollback journal; 2: WAL
  SchemaFileVersion version;
  version.change_counter = (uint32_t{header[24]} << 24) | (uint32_t{header[25]} << 16) |
                           (uint32_t{header[26]} << 8) | uint32_t{header[27]};
  const auto mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  version.text = identity + ":" + std::to_string(mtime_ns) + ":" + std::to_string(version.change_counter);
  return version;
}

// A table's row count: the memo's when it was taken at `version`, else COUNT(*) (a walk of the table's
// smallest index). Sets *memo_out to the count with the version, when there is one.
Result<uint64_t> CountOrRecall(sqlite3* db, const std::string& table_sql,
                               const std::optional<SchemaFileVersion>& version,
                               const std::optional<RowCountMemo>& memo, StatementLog& log,
                               const std::string& context, std::optional<RowCountMemo>* memo_out) {
  uint64_t rows = 0;
  if (version && memo && memo->version == version->text) {
    rows = memo->rows;
  } else {
    ROCKY_ASSIGN_OR_RETURN(rows, CountWhere(db, table_sql, "", {}, "count", log, context));
  }
  if (version) *memo_out = RowCountMemo{version->text, rows};
  return rows;
}

// The target's count memo after a committed copy: its version read again, kept only when the file's change
// counter moved exactly as this copy's commit moved it: by one when the copy certainly wrote (rows, or a full
// refresh's new table), not at all otherwise. Another writer's commit after this one would move it further,
// and its rows are not in the count. A copy that wrote nothing but an index it created leaves no memo (the
// counter moved once, which another writer's commit would also explain); the next copy counts again.
std::optional<RowCountMemo> TargetMemoAfterCommit(sqlite3* db, const std::string& path,
                                                  const std::optional<SchemaFileVersion>& before,
                                                  const CopyResult& result, bool full_refresh) {
  if (!before) return std::nullopt;
  // A read transaction holds the file's read lock from the SELECT on, so no commit lands between the
  // header's read and the stat.
  if (!Exec(db, "BEGIN", "reading the target's version").ok()) return std::nullopt;
  std::optional<SchemaFileVersion> after;
  if (Query(
          db, "SELECT 1 FROM main.sqlite_master LIMIT 1", {}, [](sqlite3_stmt*) {},
          "reading the target's version")
          .ok()) {
    after = ReadSchemaFileVersion(db, "main", path);
  }
  (void)Exec(db, "COMMIT", "ending the version's read");
  if (!after) return std::nullopt;
  const bool wrote = full_refresh || result.rows_copied > 0;
  const uint32_t expected = before->change_counter + (wrote ? 1u : 0u);
  if (after->change_counter != expected) return std::nullopt;
  if (!wrote && after->text != before->text) return std::nullopt;
  return RowCountMemo{after->text, result.target_rows};
}

// The largest cursor value of `table_sql` in the state store's form, read through the cursor index:
//   integer:   MAX(column), which must be an integer;
//   timestamp: MAX(rocky_ts(column)) over `window` when given (the copy's window: every row at or above the
//              watermark is in it); else over the rows from the day before the largest TEXT (MAX(column),
//              index-served): a row with a later instant spelled with a negative offset sorts below that
//              text, but not below its date minus one day.
Result<std::optional<std::string>> MaxCursor(sqlite3* db, const std::string& table_sql,
                                             const std::string& column, config::CursorType type,
                                             const std::optional<std::string>& window,
                                             const std::string& table_name, StatementLog& log) {
  const std::string c = SqliteIdent(column);
  const std::string context = "reading MAX(" + column + ") of " + table_name;
  std::optional<std::string> max;
  if (type == config::CursorType::kInteger) {
    const std::string sql = "SELECT MAX(" + c + ") FROM " + table_sql;
    log.Note("max", sql);
    Status bad;
    ROCKY_RETURN_IF_ERROR(Query(
        db, sql, {},
        [&](sqlite3_stmt* stmt) {
          const int t = sqlite3_column_type(stmt, 0);
          if (t == SQLITE_NULL) return;
          const std::string text = ColumnText(stmt, 0);
          if (t != SQLITE_INTEGER || !base::IsIntegerWatermark(text)) {
            bad = Status::InvalidArgument(context + ": '" + text +
                                          "' is not an integer (cursor_type is \"integer\")");
          } else {
            max = text;
          }
        },
        context));
    ROCKY_RETURN_IF_ERROR(bad);
    return max;
  }
  std::string where;
  if (window) {
    where = *window;
  } else {
    const std::string newest_sql = "SELECT MAX(" + c + ") FROM " + table_sql;
    log.Note("max", newest_sql);
    std::optional<std::string> newest;
    ROCKY_RETURN_IF_ERROR(Query(
        db, newest_sql, {},
        [&](sqlite3_stmt* stmt) {
          if (sqlite3_column_type(stmt, 0) != SQLITE_NULL) newest = ColumnText(stmt, 0);
        },
        context));
    if (!newest) return max;
    const std::optional<std::string> canonical = CanonicalTimestamp(*newest);
    if (!canonical) {
      return Status::InvalidArgument(context + ": '" + *newest +
                                     "' is not a timestamp (expected ISO-8601, e.g. 2025-03-15T14:30:00Z)");
    }
    where = IndexRange(c, SqliteString(internal::DayBefore(*canonical)));
  }
  const std::string sql = "SELECT MAX(rocky_ts(" + c + ")) FROM " + table_sql + " WHERE " + where;
  log.Note("max", sql);
  ROCKY_RETURN_IF_ERROR(Query(
      db, sql, {},
      [&](sqlite3_stmt* stmt) {
        if (sqlite3_column_type(stmt, 0) != SQLITE_NULL)
          max = internal::StateFormFromCanonical(ColumnText(stmt, 0));
      },
      context));
  return max;
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
        db.get(),
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'", {},
        [&](sqlite3_stmt* stmt) { tables.push_back(ColumnText(stmt, 0)); }, "listing tables of " + name));
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

  Result<std::optional<std::string>> MaxTimestamp(const TableRef& table, std::string_view column,
                                                  config::CursorType type) override {
    ROCKY_RETURN_IF_ERROR(ValidateColumnName("timestamp column", column));
    ROCKY_ASSIGN_OR_RETURN(Db db, OpenExistingTable(table, column));
    StatementLog log(nullptr);
    return MaxCursor(db.get(), "main." + SqliteIdent(table.table), std::string(column), type, std::nullopt,
                     table.Qualified(), log);
  }

  Result<std::optional<IndexAdvice>> CursorIndexAdvice(const TableRef& table,
                                                       std::string_view column) override {
    ROCKY_RETURN_IF_ERROR(ValidateColumnName("timestamp column", column));
    ROCKY_ASSIGN_OR_RETURN(Db db, OpenExistingTable(table, column, "source table"));
    const std::string context = "looking up the indexes of " + table.Qualified();
    ROCKY_ASSIGN_OR_RETURN(std::vector<ColumnInfo> columns,
                           TableColumns(db.get(), "main", table.table, context));
    const ColumnInfo* cursor = FindColumn(columns, column);
    const bool single_pk =
        std::count_if(columns.begin(), columns.end(), [](const ColumnInfo& c) { return c.pk > 0; }) == 1;
    if (cursor != nullptr && cursor->pk == 1 && single_pk && Upper(cursor->declared_type) == "INTEGER") {
      return std::optional<IndexAdvice>();  // the rowid itself
    }
    bool served = false;
    ROCKY_RETURN_IF_ERROR(Query(
        db.get(),
        "SELECT 1 FROM pragma_index_list(?1) AS il WHERE il.partial = 0 AND (SELECT ii.name FROM "
        "pragma_index_info(il.name) AS ii WHERE ii.seqno = 0) = ?2 COLLATE NOCASE",
        {table.table, std::string(column)}, [&](sqlite3_stmt*) { served = true; }, context));
    if (served) return std::optional<IndexAdvice>();
    return std::optional<IndexAdvice>(
        IndexAdvice{"CREATE INDEX " + SqliteIdent(table.table + "__" + std::string(column)) + " ON " +
                        SqliteIdent(table.table) + " (" + SqliteIdent(column) + ")",
                    SchemaPath(table.catalog, table.schema)});
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

  // The body of Copy() between BEGIN IMMEDIATE and COMMIT; the caller rolls back on error. Sets
  // *target_version to the target file's version before any write (with count_rows, when it has one).
  Result<CopyResult> CopyInTransaction(sqlite3* db, const CopyRequest& request, StatementLog& log,
                                       std::optional<SchemaFileVersion>* target_version);

  std::string folder_;
  std::unique_ptr<SqlDialect> dialect_;
};

Result<CopyResult> SqliteWarehouse::Copy(const CopyRequest& request) {
  const TableRef& source = request.source;
  const TableRef& target = request.target;
  const std::string context = "copying " + source.Qualified() + " to " + target.Qualified();
  auto fail = [&](const Status& status) { return status.WithContext(context); };

  // Everything checkable without touching a file is checked first.
  const internal::CopyNameRules rules{.table = ValidateTableRef,
                                      .column = ValidateColumnName,
                                      .metadata_column_kind = "metadata column name"};
  if (Status s = internal::CheckCopyRequest(request, rules); !s.ok()) return fail(s);
  if (source.catalog == target.catalog && source.schema == target.schema) {
    // Both would be the same file attached twice; its two lock holders would deadlock at COMMIT.
    return fail(
        Status::InvalidArgument("source and target are in the same schema; the SQLite warehouse copies "
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
  // Page cache: 64 MiB for a full refresh's index builds (the sorter spills to temporary files beyond it),
  // 8 MiB for a window; fixed sizes, so memory stays flat in the table's size. A schema file rocky creates
  // gets 64 KiB pages (no effect on an existing one): the row_count check's COUNT(*) walks every leaf page of
  // the target's smallest index on every run, and bigger pages make that 16 times fewer reads.
  for (const char* pragma :
       {"PRAGMA main.page_size=65536", "PRAGMA main.journal_mode=DELETE", "PRAGMA main.synchronous=FULL",
        request.watermark ? "PRAGMA main.cache_size=-8192" : "PRAGMA main.cache_size=-65536"}) {
    if (Status s = Exec(db, pragma, "configuring target"); !s.ok()) return fail(s);
  }
  // Read-only: the copy writes only the target file, so its commit is atomic without a super-journal, and the
  // source keeps no write lock.
  if (Status s = Query(
          db, "ATTACH DATABASE ?1 AS source", {FileUri(source_path, "ro")}, [](sqlite3_stmt*) {},
          "attaching " + source_path);
      !s.ok()) {
    return fail(s);
  }
  StatementLog log(request.explain ? db : nullptr);
  log.set_db(db);
  if (Status s = Exec(db, "BEGIN IMMEDIATE", "starting the transaction"); !s.ok()) return fail(s);
  std::optional<SchemaFileVersion> target_before;
  Result<CopyResult> result = CopyInTransaction(db, request, log, &target_before);
  if (result.ok()) {
    if (Status s = Exec(db, "COMMIT", "committing"); s.ok()) {
      result->plans = log.Take();
      result->target_rows_memo = TargetMemoAfterCommit(db, SchemaPath(target.catalog, target.schema),
                                                       target_before, *result, !request.watermark);
      if (result->target_rows_memo && result->target_rows_memo->version != target_before->text) {
        result->target_version_before = target_before->text;
      }
      return result;
    } else {
      result = s;
    }
  }
  if (sqlite3_get_autocommit(db) == 0) {
    // The status already says what failed; a failed ROLLBACK is undone by SQLite's hot-journal recovery.
    (void)Exec(db, "ROLLBACK", "rolling back");
  }
  return fail(result.status());
}

Result<CopyResult> SqliteWarehouse::CopyInTransaction(sqlite3* db, const CopyRequest& request,
                                                      StatementLog& log,
                                                      std::optional<SchemaFileVersion>* target_version) {
  const TableRef& source = request.source;
  const TableRef& target = request.target;
  const bool integer = request.cursor_type == config::CursorType::kInteger;
  const bool merge = request.strategy == config::Strategy::kMerge;
  // Read again inside the transaction: the source may have changed since the check in Copy(). This read
  // also takes the source's read lock, held to COMMIT, under which its version is read below.
  ROCKY_ASSIGN_OR_RETURN(
      std::vector<ColumnInfo> source_columns,
      TableColumns(db, "source", source.table, "reading columns of " + source.Qualified()));
  if (source_columns.empty()) return Status::NotFound("source table " + source.Qualified() + " not found");
  std::optional<SchemaFileVersion> source_version;
  if (request.count_rows) {
    source_version = ReadSchemaFileVersion(db, "source", SchemaPath(source.catalog, source.schema));
    *target_version = ReadSchemaFileVersion(db, "main", SchemaPath(target.catalog, target.schema));
  }
  const ColumnInfo* cursor = FindColumn(source_columns, request.timestamp_column);
  if (cursor == nullptr) {
    return Status::NotFound("column '" + request.timestamp_column + "' not found in source table " +
                            source.Qualified());
  }
  // Declared types are pasted into CREATE TABLE: only plain type names pass (no quotes, no second statement).
  for (const ColumnInfo& column : source_columns) {
    if (!column.declared_type.empty() && !internal::IsSafeTypeName(column.declared_type)) {
      return Status::InvalidArgument("source table " + source.Qualified() + " column '" + column.name +
                                     "' has a declared type rocky does not copy: '" + column.declared_type +
                                     "' (allowed: letters, digits, '_', spaces and one parenthesised list)");
    }
    for (const config::MetadataColumn& m : request.metadata_columns) {
      if (SameIdentifier(m.name, column.name)) {
        return Status::InvalidArgument("metadata column '" + m.name +
                                       "' has the name of a column of source table " + source.Qualified());
      }
    }
  }
  if (integer && TextAffinity(cursor->declared_type)) {
    return Status::InvalidArgument("cursor_type is \"integer\" but column '" + cursor->name +
                                   "' of source table " + source.Qualified() + " is declared '" +
                                   cursor->declared_type +
                                   "' (text: its values would compare as text, \"9\" above \"10\")");
  }
  for (const std::string& key : request.merge_keys) {
    if (!HasColumn(source_columns, key)) {
      return Status::NotFound("merge key '" + key + "' not found in source table " + source.Qualified());
    }
  }
  ROCKY_ASSIGN_OR_RETURN(std::vector<ColumnInfo> target_columns,
                         TableColumns(db, "main", target.table, "reading columns of " + target.Qualified()));
  // The source as the dialect spells it.
  const std::string src_sql = SqliteIdent("source") + "." + SqliteIdent(source.table);
  const std::string target_sql = "main." + SqliteIdent(target.table);
  const std::string c = SqliteIdent(request.timestamp_column);
  // SQLite puts the schema on the index's name, the table bare: CREATE INDEX main."i" ON "t" (...).
  const std::string cursor_index = "main." + SqliteIdent("rocky_cursor__" + target.table);
  const std::string keys_index = "main." + SqliteIdent("rocky_merge_keys__" + target.table);
  const std::string target_bare = SqliteIdent(target.table);
  std::string key_list;
  for (const std::string& key : request.merge_keys) {
    key_list += (key_list.empty() ? "" : ", ") + SqliteIdent(key);
  }

  std::string columns_list;  // the source's columns, in order
  for (const ColumnInfo& column : source_columns) {
    columns_list += (columns_list.empty() ? "" : ", ") + SqliteIdent(column.name);
  }
  std::string metadata_names, metadata_values;
  for (const config::MetadataColumn& m : request.metadata_columns) {
    metadata_names += ", " + SqliteIdent(m.name);
    metadata_values +=
        ", CAST(" + m.value + " AS " + internal::SqliteType(m.type) + ") AS " + SqliteIdent(m.name);
  }
  const std::string insert_head = "INSERT INTO " + target_sql + " (" + columns_list + metadata_names + ") ";
  // kMerge: the upsert clause; a row replaces the target's only when its cursor is not older, so re-reading
  // an old version (lookback) never undoes a newer one.
  std::string upsert;
  if (merge) {
    const std::string existing = SqliteIdent(target.table) + "." + c;
    std::string set;
    for (const ColumnInfo& column : source_columns) {
      if (std::any_of(request.merge_keys.begin(), request.merge_keys.end(),
                      [&](const std::string& k) { return SameIdentifier(k, column.name); })) {
        continue;
      }
      set += (set.empty() ? "" : ", ") + SqliteIdent(column.name) + " = excluded." + SqliteIdent(column.name);
    }
    for (const config::MetadataColumn& m : request.metadata_columns) {
      set += (set.empty() ? "" : ", ") + SqliteIdent(m.name) + " = excluded." + SqliteIdent(m.name);
    }
    upsert = set.empty() ? " ON CONFLICT (" + key_list + ") DO NOTHING"
                         : " ON CONFLICT (" + key_list + ") DO UPDATE SET " + set + " WHERE " + existing +
                               " IS NULL OR " +
                               (integer ? "excluded." + c + " >= " + existing
                                        : "rocky_ts(excluded." + c + ") >= rocky_ts(" + existing + ")");
  }

  CopyResult result;
  // Counted in the same transaction as the copy, so it describes the very snapshot copied even while a
  // connector keeps writing to the source. (With the target's count, the only statements of an incremental
  // copy that read a whole table's index; so only when asked for.)
  if (request.count_rows) {
    ROCKY_ASSIGN_OR_RETURN(
        result.source_rows,
        CountOrRecall(db, src_sql, source_version, request.source_rows_memo, log,
                      "counting the rows of " + source.Qualified(), &result.source_rows_memo));
  }

  if (!request.watermark) {
    std::string create = "CREATE TABLE " + target_sql + " (";
    std::string separator;
    std::vector<const ColumnInfo*> pk(source_columns.size(), nullptr);
    size_t pk_count = 0;
    for (const ColumnInfo& column : source_columns) {
      if (column.pk > 0 && static_cast<size_t>(column.pk) <= pk.size()) {
        pk[static_cast<size_t>(column.pk) - 1] = &column;
        ++pk_count;
      }
    }
    // A single INTEGER PRIMARY KEY stays a column definition, so it stays the rowid as in the source.
    const bool rowid_pk = pk_count == 1 && pk[0] != nullptr && Upper(pk[0]->declared_type) == "INTEGER";
    for (const ColumnInfo& column : source_columns) {
      create += separator + SqliteIdent(column.name) +
                (column.declared_type.empty() ? "" : " " + column.declared_type);
      if (rowid_pk && &column == pk[0]) create += " PRIMARY KEY";
      if (column.not_null) create += " NOT NULL";
      separator = ", ";
    }
    for (const config::MetadataColumn& column : request.metadata_columns) {
      create += separator + SqliteIdent(column.name) + " " + internal::SqliteType(column.type);
    }
    if (pk_count > 0 && !rowid_pk) {
      std::string list;
      for (size_t i = 0; i < pk_count && pk[i] != nullptr; ++i)
        list += (i > 0 ? ", " : "") + SqliteIdent(pk[i]->name);
      create += ", PRIMARY KEY (" + list + ")";
    }
    create += ")";
    ROCKY_RETURN_IF_ERROR(
        log.Run("schema", "DROP TABLE IF EXISTS " + target_sql, "dropping " + target.Qualified()));
    ROCKY_RETURN_IF_ERROR(log.Run("schema", create, "creating " + target.Qualified()));
    if (merge) {
      // Before the rows, so the upsert can resolve keys the source holds twice (the newest row wins).
      ROCKY_RETURN_IF_ERROR(log.Run(
          "schema", "CREATE UNIQUE INDEX " + keys_index + " ON " + target_bare + " (" + key_list + ")",
          "creating the unique index on merge_keys of " + target.Qualified()));
    }
    result.sql = "SELECT *" + metadata_values + " FROM " + src_sql;
    result.cursor_compare = "full";
    ROCKY_RETURN_IF_ERROR(log.Run("full",
                                  insert_head + "SELECT " + columns_list + metadata_values + " FROM " +
                                      src_sql + (merge ? " WHERE true" + upsert : ""),
                                  "inserting into " + target.Qualified()));
    result.rows_copied = static_cast<uint64_t>(sqlite3_changes64(db));
    // After the rows: one sorted build is cheaper than maintaining the index row by row.
    ROCKY_RETURN_IF_ERROR(log.Run("schema",
                                  "CREATE INDEX " + cursor_index + " ON " + target_bare + " (" + c + ")",
                                  "creating the cursor index of " + target.Qualified()));
    if (merge) {
      // Keys the source holds twice were upserted: inserts and updates are told apart by the count.
      ROCKY_ASSIGN_OR_RETURN(result.target_rows, CountWhere(db, target_sql, "", {}, "count", log,
                                                            "counting the rows of " + target.Qualified()));
      result.rows_replaced = result.rows_copied - std::min(result.rows_copied, result.target_rows);
    } else {
      result.target_rows = result.rows_copied;
    }
    ROCKY_ASSIGN_OR_RETURN(result.max_timestamp,
                           MaxCursor(db, target_sql, request.timestamp_column, request.cursor_type,
                                     std::nullopt, target.Qualified(), log));
    return result;
  }

  if (target_columns.empty()) {
    // Copying only the window into a new table would silently lose every older row: a missing target with
    // a watermark means the state and the warehouse disagree, and a full refresh is the fix.
    return Status::NotFound("target table " + target.Qualified() +
                            " does not exist but a watermark is set; run 'rocky run --full-refresh --table " +
                            target.Qualified() + "' to reload it");
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
                                   "): its schema changed; run 'rocky run --full-refresh --table " +
                                   target.Qualified() + "' to reload it");
  }
  // Targets made before rocky indexed them (or by hand) get their indexes once; IF NOT EXISTS is free after.
  ROCKY_RETURN_IF_ERROR(
      log.Run("schema", "CREATE INDEX IF NOT EXISTS " + cursor_index + " ON " + target_bare + " (" + c + ")",
              "creating the cursor index of " + target.Qualified()));
  if (merge) {
    if (Status s = log.Run(
            "schema",
            "CREATE UNIQUE INDEX IF NOT EXISTS " + keys_index + " ON " + target_bare + " (" + key_list + ")",
            "creating the unique index on merge_keys of " + target.Qualified());
        !s.ok()) {
      return Status::InvalidArgument(s.message() +
                                     " (the target holds rows that share merge_keys, e.g. from "
                                     "before strategy = \"merge\"; run 'rocky run --full-refresh --table " +
                                     target.Qualified() + "')");
    }
  }
  uint64_t target_before = 0;
  if (request.count_rows) {
    std::optional<RowCountMemo> unused;  // the memo to keep is the count after this copy
    ROCKY_ASSIGN_OR_RETURN(target_before,
                           CountOrRecall(db, target_sql, *target_version, request.target_rows_memo, log,
                                         "counting the rows of " + target.Qualified(), &unused));
  }

  // The window predicate, the same on both sides (see CursorWindow in the header comment).
  std::string where;
  std::vector<std::string> params;
  if (integer) {
    result.cursor_compare = "integer";
    where = IndexRange(c, *request.watermark);  // validated: an int64's decimal digits
  } else {
    std::string start = *CanonicalTimestamp(*request.watermark);
    if (request.lookback_seconds > 0) {
      std::optional<std::string> back =
          internal::CanonicalMinusSeconds(start, static_cast<int64_t>(request.lookback_seconds));
      start = back ? *back : std::string("0000-01-01T00:00:00.000000000Z");
    }
    // Text comparison when the target's newest value has a plain UTC spelling the start can be written in,
    // and the source has no row below that text that the target lacks (one could be an instant at or above
    // the start spelled another way). Counts on both sides are index-served: window and NULLs only.
    std::optional<std::string> newest;
    const std::string newest_sql = "SELECT MAX(" + c + ") FROM " + target_sql;
    log.Note("max", newest_sql);
    ROCKY_RETURN_IF_ERROR(Query(
        db, newest_sql, {},
        [&](sqlite3_stmt* stmt) {
          if (sqlite3_column_type(stmt, 0) == SQLITE_TEXT) newest = ColumnText(stmt, 0);
        },
        "reading the newest cursor value of " + target.Qualified()));
    std::optional<std::string> threshold;
    if (newest) {
      if (std::optional<internal::TextShape> shape = internal::ShapeOf(*newest)) {
        threshold = internal::RenderInShape(start, *shape);
      }
    }
    if (threshold) {
      // The guard. A row spelled another way whose instant is at or after `start` but whose text sorts below
      // the threshold still sorts at or above DayBefore(start): it lies in the zone [DayBefore, threshold).
      // Every source row in that zone was copied by earlier runs, so the source holding MORE rows there than
      // the target means such a row may have arrived (or a late row below the watermark did): compare
      // instants then. Two range counts on the indexes, over at most two days of rows.
      const std::string zone = IndexRange(c, "?1") + " AND " + c + " < ?2";
      const std::vector<std::string> bounds{internal::DayBefore(start), *threshold};
      const std::string context =
          "comparing the rows below the window of " + source.Qualified() + " and " + target.Qualified();
      ROCKY_ASSIGN_OR_RETURN(uint64_t src_zone, CountWhere(db, src_sql, zone, bounds, "guard", log, context));
      ROCKY_ASSIGN_OR_RETURN(uint64_t tgt_zone,
                             CountWhere(db, target_sql, zone, bounds, "guard", log, context));
      if (src_zone > tgt_zone) threshold.reset();
    }
    if (threshold) {
      result.cursor_compare = "text";
      where = IndexRange(c, SqliteString(*threshold));
    } else {
      // Every spelling of an instant at or after `start` begins with a local date no earlier than the day
      // before it (offsets are under 24 h), so this text bound keeps the scan on the index.
      result.cursor_compare = "instant";
      where = IndexRange(c, SqliteString(internal::DayBefore(start))) + " AND rocky_ts(" + c +
              ") >= " + SqliteString(start);
    }
  }
  result.sql = "SELECT *" + metadata_values + " FROM " + src_sql + " WHERE " + where;

  uint64_t merge_new = 0;  // merge: the window's keys the target does not hold yet (each counted once)
  std::string insert;
  if (merge) {
    std::string match;
    for (const std::string& key : request.merge_keys) {
      match +=
          (match.empty() ? "" : " AND ") + std::string("t.") + SqliteIdent(key) + " = w." + SqliteIdent(key);
    }
    // Through the unique index on the keys, one probe per window row.
    const std::string new_keys = "SELECT COUNT(*) FROM (SELECT " + key_list + " FROM " + src_sql + " WHERE " +
                                 where + " GROUP BY " + key_list + ") AS w WHERE NOT EXISTS (SELECT 1 FROM " +
                                 target_sql + " AS t WHERE " + match + ")";
    log.Note("window", new_keys);
    ROCKY_RETURN_IF_ERROR(Query(
        db, new_keys, {},
        [&](sqlite3_stmt* stmt) { merge_new = static_cast<uint64_t>(sqlite3_column_int64(stmt, 0)); },
        "counting the new keys of " + source.Qualified()));
    insert = insert_head + "SELECT " + columns_list + metadata_values + " FROM " + src_sql + " WHERE " +
             where + upsert;
  } else {
    // Multiset difference on the source's columns: each row numbered among its identical copies, so a row
    // the target already holds (the boundary, a re-run after a crash) is not appended again, and two
    // identical source rows stay two.
    const std::string numbered = "row_number() OVER (PARTITION BY " + columns_list + ")";
    insert = insert_head + "SELECT " + columns_list + metadata_values + " FROM (SELECT " + columns_list +
             ", " + numbered + " AS " + SqliteIdent("_rocky_copy_number_") + " FROM " + src_sql + " WHERE " +
             where + " EXCEPT SELECT " + columns_list + ", " + numbered + " FROM " + target_sql + " WHERE " +
             where + ")";
  }
  if (Status s = log.Run("window", insert, "inserting into " + target.Qualified()); !s.ok()) {
    if (!merge && (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_PRIMARYKEY ||
                   sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE)) {
      return Status::InvalidArgument(
          s.message() +
          " (the source changed a row already copied, keeping its primary key; an "
          "incremental table only appends: use strategy = \"merge\" with merge_keys)");
    }
    return s;
  }
  const uint64_t changed = static_cast<uint64_t>(sqlite3_changes64(db));
  const uint64_t inserted = merge ? std::min(changed, merge_new) : changed;
  result.rows_copied = changed;
  result.rows_replaced = changed - inserted;
  if (request.count_rows) result.target_rows = target_before + inserted;
  ROCKY_ASSIGN_OR_RETURN(result.max_timestamp,
                         MaxCursor(db, target_sql, request.timestamp_column, request.cursor_type, where,
                                   target.Qualified(), log));
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
