#include "rocky/warehouse/postgres_warehouse.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <set>
#include <vector>

#include "copy_request_check.h"
#include "rocky/base/timestamp.h"
#include "rocky/dynload/dynload.h"
#include "rocky/warehouse/sqlite_warehouse.h"  // CanonicalTimestamp
#include "sql_text.h"

namespace rocky::warehouse {
namespace {

using internal::SqliteIdent;  // "name" with quotes doubled: PostgreSQL's identifier quoting too

// PostgreSQL cuts identifiers at NAMEDATALEN - 1 bytes (a NOTICE, not an error): names longer than this are
// refused, since a cut name could silently name another table.
constexpr size_t kMaxIdentifierBytes = 63;

struct ConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct ResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;
using PgResult = std::unique_ptr<PGresult, ResultClearer>;

// libpq's messages end with a newline and may span lines ("...failed: ...\n\tIs the server running...").
std::string OneLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') {
      out += "; ";
      while (i + 1 < text.size() && (text[i + 1] == '\t' || text[i + 1] == ' ')) ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

// The parsed keywords of a connection string (nullopt when libpq cannot parse it). PQconninfoParse's own
// error text is never kept: it could quote part of the string.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseConninfo(std::string_view url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(std::string(url).c_str(), &error);
  if (error != nullptr) PQfreemem(error);
  if (options == nullptr) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> out;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) out.emplace_back(o->keyword, o->val);
  }
  PQconninfoFree(options);
  return out;
}

std::string Keyword(const std::vector<std::pair<std::string, std::string>>& options, std::string_view key) {
  for (const auto& [k, v] : options) {
    if (k == key) return v;
  }
  return "";
}

// The part of a copy's SQL that a source table is read through: on the same server, the table itself; across
// servers, the temporary table the window was streamed into.
struct SourceRead {
  std::string table_sql;  // what FROM names
  bool windowed = false;  // true: it holds the window only (no predicate needed)
};

uint64_t Fnv1a(std::string_view text) {
  uint64_t h = 1469598103934665603ULL;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

// An index name that fits in 63 bytes and is unique per table: a readable prefix and a hash of the name.
std::string IndexName(std::string_view kind, std::string_view table) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(Fnv1a(table)));
  std::string prefix(table.substr(0, 24));
  // Never cut a UTF-8 sequence in half.
  while (!prefix.empty() && (static_cast<unsigned char>(prefix.back()) & 0xC0) == 0x80) prefix.pop_back();
  if (!prefix.empty() && (static_cast<unsigned char>(prefix.back()) & 0x80) != 0) prefix.pop_back();
  return "rocky_" + std::string(kind) + "_" + prefix + "_" + hex;
}

// A metadata column's rocky.toml type (Databricks-flavoured, as the SQLite dialect reads it) as PostgreSQL
// spells it; other names are kept as written (they were checked by IsSafeTypeName).
std::string PgType(std::string_view type) {
  std::string base;
  size_t i = 0;
  for (; i < type.size() && type[i] != '('; ++i)
    base += static_cast<char>(std::toupper(static_cast<unsigned char>(type[i])));
  while (!base.empty() && base.back() == ' ') base.pop_back();
  const std::string args(type.substr(i));
  if (base == "STRING") return "text";
  if (base == "LONG") return "bigint";
  if (base == "SHORT" || base == "TINYINT" || base == "BYTE") return "smallint";
  if (base == "DOUBLE") return "double precision";
  if (base == "FLOAT") return "real";
  if (base == "TIMESTAMP") return "timestamp with time zone";
  if (base == "TIMESTAMP_NTZ") return "timestamp without time zone";
  if (base == "BINARY") return "bytea";
  if (base == "DECIMAL" || base == "DEC" || base == "NUMBER") return "numeric" + args;
  return std::string(type);
}

struct PgColumn {
  std::string name;
  std::string type;     // format_type(): "numeric(10,2)", "timestamp with time zone", "text[]"
  std::string typname;  // pg_type.typname of the base type: "int8", "timestamptz"
  bool not_null = false;
  int pk = 0;  // 1-based position in the primary key, 0 when not part of it
};

const PgColumn* FindColumn(const std::vector<PgColumn>& columns, std::string_view name) {
  for (const PgColumn& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// One PostgreSQL session with the password-free name of its server, running only parameterised single
// statements (PQexecParams) and turning every failure into a Status that names the server and what failed.
class Session {
 public:
  static Result<std::unique_ptr<Session>> Connect(const std::string& url) {
    ROCKY_RETURN_IF_ERROR(dynload::Require(dynload::Library::kLibpq));
    auto session = std::unique_ptr<Session>(new Session());
    session->name_ = DescribePostgresUrl(url);
    const auto options = ParseConninfo(url);
    if (!options) {
      return Status::InvalidArgument(
          "the PostgreSQL connection string (url) is not a libpq URI or keyword string "
          "(not shown: it may hold a password)");
    }
    session->password_ = Keyword(*options, "password");
    // Defaults first: expand_dbname lets the URL's own keywords override them.
    const char* keywords[] = {"connect_timeout", "application_name", "client_encoding", "dbname", nullptr};
    const char* values[] = {"10", "rocky", "UTF8", url.c_str(), nullptr};
    session->conn_.reset(PQconnectdbParams(keywords, values, 1));
    if (session->conn_ == nullptr)
      return Status::IOError("connecting to " + session->name_ + ": out of memory");
    // The server's NOTICEs ("relation ... already exists, skipping") are not for rocky's users.
    PQsetNoticeProcessor(
        session->conn_.get(), [](void*, const char*) {}, nullptr);
    if (PQstatus(session->conn_.get()) != CONNECTION_OK) {
      return Status::IOError("connecting to " + session->name_ + ": " +
                             session->Scrub(PQerrorMessage(session->conn_.get())));
    }
    session->password_ = PQpass(session->conn_.get()) != nullptr && *PQpass(session->conn_.get()) != '\0'
                             ? std::string(PQpass(session->conn_.get()))
                             : session->password_;
    ROCKY_RETURN_IF_ERROR(
        session->Exec("SET TimeZone = 'UTC'", {}, "setting the session's time zone").status());
    ROCKY_ASSIGN_OR_RETURN(PgResult db,
                           session->Exec("SELECT current_database()", {}, "reading the database name"));
    session->database_ = PQgetvalue(db.get(), 0, 0);
    return session;
  }

  const std::string& name() const { return name_; }
  const std::string& database() const { return database_; }
  PGconn* conn() const { return conn_.get(); }

  // `text` with the password (when there is one) replaced by ***, on one line.
  std::string Scrub(std::string text) const {
    if (password_.size() >= 3) {
      for (size_t at = text.find(password_); at != std::string::npos; at = text.find(password_, at + 3)) {
        text.replace(at, password_.size(), "***");
      }
    }
    return OneLine(std::move(text));
  }

  // The Status of a failed result (or of the connection, when there is no result).
  Status Error(const PGresult* result, const std::string& context) const {
    const char* primary = result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    const char* sqlstate = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const char* detail = result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL) : nullptr;
    std::string text = primary != nullptr ? primary : PQerrorMessage(conn_.get());
    if (detail != nullptr) text += " (" + std::string(detail) + ")";
    const std::string state = sqlstate != nullptr ? sqlstate : "";
    if (PQstatus(conn_.get()) == CONNECTION_BAD) {
      return Status::IOError(context + ": the connection to " + name_ +
                             " was lost (server restarted or unreachable): " + Scrub(text));
    }
    std::string message = context + ": " + Scrub(text) + (state.empty() ? "" : " [SQLSTATE " + state + "]");
    if (state == "57014") return Status::TimedOut(message + " (statement_timeout on " + name_ + ")");
    if (state == "42P01" || state == "42703" || state == "3F000") return Status::NotFound(message);
    if (state == "53100") return Status::NoSpace(message);
    if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0) {
      return Status::IOError(message + " (server " + name_ + ")");
    }
    if (state.rfind("40", 0) == 0 || state == "55P03") return Status::Busy(message);
    if (state.rfind("42", 0) == 0 && state == "42501") return Status::PermissionDenied(message);
    return Status::InvalidArgument(message);
  }

  // Runs one statement with text parameters; the result when it succeeded (tuples or command).
  Result<PgResult> Exec(const std::string& sql, const std::vector<std::string>& params,
                        const std::string& context) const {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const std::string& p : params) values.push_back(p.c_str());
    PgResult result(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(params.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0));
    const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return Error(result.get(), context);
    return result;
  }

  // One value of a one-row result, or nullopt for NULL.
  static std::optional<std::string> Value(const PGresult* result, int row, int column) {
    if (PQntuples(result) <= row || PQgetisnull(result, row, column) != 0) return std::nullopt;
    return std::string(PQgetvalue(result, row, column),
                       static_cast<size_t>(PQgetlength(result, row, column)));
  }

  // Rolls back a transaction left open by a failure; harmless when none is open or the connection is gone.
  void RollbackIfOpen() const {
    if (PQstatus(conn_.get()) != CONNECTION_OK) return;
    if (PQtransactionStatus(conn_.get()) == PQTRANS_IDLE) return;
    PgResult r(PQexec(conn_.get(), "ROLLBACK"));
  }

  // Sessions broken by a server restart are re-opened before the next statement (a run goes on with the next
  // table), as libpq's PQreset does with the same parameters.
  Status EnsureConnected() {
    if (PQstatus(conn_.get()) == CONNECTION_OK) return Status::OK();
    PQreset(conn_.get());
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
      return Status::IOError("reconnecting to " + name_ + ": " + Scrub(PQerrorMessage(conn_.get())));
    }
    return Exec("SET TimeZone = 'UTC'", {}, "setting the session's time zone").status();
  }

 private:
  Session() = default;
  Conn conn_;
  std::string name_;
  std::string database_;
  std::string password_;
};

// Type names pasted into CREATE TABLE: format_type()'s output for built-in and plainly named types.
bool IsSafePgTypeName(std::string_view type) {
  std::string_view t = type;
  while (t.size() >= 2 && t.substr(t.size() - 2) == "[]") t.remove_suffix(2);
  if (t.empty() || !(std::isalpha(static_cast<unsigned char>(t.front())) != 0 || t.front() == '_'))
    return false;
  int depth = 0;
  for (const char c : t) {
    if (c == '(') {
      if (++depth > 1) return false;
    } else if (c == ')') {
      if (--depth < 0) return false;
    } else if (!(std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ' ' ||
                 (depth == 1 && c == ','))) {
      return false;
    }
  }
  return depth == 0;
}

Status ValidateName(std::string_view kind, std::string_view name) {
  if (name.empty() || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("invalid " + std::string(kind) + " name '" + std::string(name) + "'");
  }
  if (name.size() > kMaxIdentifierBytes) {
    return Status::InvalidArgument(std::string(kind) + " name '" + std::string(name) + "' is longer than " +
                                   "PostgreSQL's " + std::to_string(kMaxIdentifierBytes) + " bytes");
  }
  return Status::OK();
}

class PostgresDialect final : public SqlDialect {
 public:
  PostgresDialect(std::string source_db, std::string target_db)
      : source_db_(std::move(source_db)), target_db_(std::move(target_db)) {}
  std::string_view name() const override { return "postgres"; }

  std::string Table(const std::string& db, const TableRef& t) const {
    return SqliteIdent(PostgresSchemaName(db, t.catalog, t.schema)) + "." + SqliteIdent(t.table);
  }

  std::string RenderSelect(const SelectSpec& spec) const override {
    std::string sql = "SELECT *";
    for (const config::MetadataColumn& m : spec.metadata_columns) {
      sql += ", CAST(" + m.value + " AS " + PgType(m.type) + ") AS " + SqliteIdent(m.name);
    }
    sql += " FROM " + Table(source_db_, spec.source);
    if (spec.watermark) {
      std::string bound = *spec.watermark;
      if (spec.cursor_type == config::CursorType::kTimestamp && spec.lookback_seconds > 0) {
        if (auto canonical = CanonicalTimestamp(bound)) {
          if (auto back =
                  internal::CanonicalMinusSeconds(*canonical, static_cast<int64_t>(spec.lookback_seconds))) {
            bound = internal::StateFormFromCanonical(*back);
          }
        }
      }
      sql += " WHERE " + SqliteIdent(spec.timestamp_column) + " >= " +
             (spec.cursor_type == config::CursorType::kInteger
                  ? bound
                  : internal::SqliteString(bound) + "::timestamptz");
    }
    return sql;
  }

  std::string RenderMerge(const MergeSpec& spec) const override {
    std::string keys;
    for (const std::string& k : spec.merge_keys) keys += (keys.empty() ? "" : ", ") + SqliteIdent(k);
    return "INSERT INTO " + Table(target_db_, spec.target) + " SELECT DISTINCT ON (" + keys + ") * FROM (" +
           RenderSelect(spec.select) + ") AS w ORDER BY " + keys + ", " +
           SqliteIdent(spec.select.timestamp_column) + " DESC NULLS LAST ON CONFLICT (" + keys +
           ") DO UPDATE SET ... (every other column = EXCLUDED's)";
  }

 private:
  std::string source_db_;
  std::string target_db_;
};

// Runs a copy's statements on a session; with `explain`, first records each one's EXPLAIN plan (tests hold
// the window statements to index scans with it).
class StatementLog {
 public:
  explicit StatementLog(bool explain) : explain_(explain) {}

  Result<PgResult> Run(const Session& session, std::string_view purpose, const std::string& sql,
                       const std::vector<std::string>& params, const std::string& context) {
    Note(session, purpose, sql, params);
    return session.Exec(sql, params, context);
  }

  void Note(const Session& session, std::string_view purpose, const std::string& sql,
            const std::vector<std::string>& params) {
    if (!explain_) return;
    StatementPlan entry{std::string(purpose), sql, {}};
    if (purpose != "schema" && purpose != "marks") {
      // EXPLAIN without ANALYZE runs nothing.
      Result<PgResult> plan = session.Exec("EXPLAIN " + sql, params, "explaining");
      if (!plan.ok()) {
        entry.plan.push_back("(no plan: " + plan.status().message() + ")");
      } else {
        for (int i = 0; i < PQntuples(plan->get()); ++i)
          entry.plan.emplace_back(PQgetvalue(plan->get(), i, 0));
      }
    }
    plans_.push_back(std::move(entry));
  }

  std::vector<StatementPlan> Take() { return std::move(plans_); }

 private:
  bool explain_;
  std::vector<StatementPlan> plans_;
};

// A count(*) sent on a session without waiting for its answer (PQsendQueryParams), so that between two
// servers the source's count runs while the target works; Take() waits for it. An untaken one is drained by
// the destructor (waiting for the server to finish it), so that the session is free for its next statement
// (the ROLLBACK of an error path) whatever return comes first. Not thread-safe; one per session at a time.
class PendingCount {
 public:
  PendingCount() = default;
  PendingCount(const PendingCount&) = delete;
  PendingCount& operator=(const PendingCount&) = delete;
  ~PendingCount() { Drain(); }

  // Requires: nothing else is in flight on `session`, and it outlives this object.
  Status Send(const Session& session, const std::string& sql, const std::string& context) {
    if (PQsendQueryParams(session.conn(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) != 1) {
      return session.Error(nullptr, context);
    }
    session_ = &session;
    context_ = context;
    return Status::OK();
  }

  bool pending() const { return session_ != nullptr; }

  // The count, or the server's error; the session is free again either way.
  Result<uint64_t> Take() {
    const Session* session = session_;
    session_ = nullptr;
    PgResult first(PQgetResult(session->conn()));
    Status failed;
    uint64_t count = 0;
    if (!first || PQresultStatus(first.get()) != PGRES_TUPLES_OK || PQntuples(first.get()) != 1) {
      failed = session->Error(first.get(), context_);
    } else {
      count = std::stoull(PQgetvalue(first.get(), 0, 0));
    }
    while (PGresult* rest = PQgetResult(session->conn())) PQclear(rest);
    if (!failed.ok()) return failed;
    return count;
  }

 private:
  void Drain() {
    if (session_ == nullptr) return;
    while (PGresult* rest = PQgetResult(session_->conn())) PQclear(rest);
    session_ = nullptr;
  }

  const Session* session_ = nullptr;
  std::string context_;
};

// Change marks (postgres_warehouse.h, "Remembered row counts"). The objects rocky keeps in each database it
// marks tables of, made once per session by one DO block (fixed text; nothing of the user's is pasted in).
// The function is SECURITY DEFINER so that a writer needs no privilege on rocky_meta, with a fixed
// search_path; it skips the insert when the marks table is gone (a writer's statement never fails because of
// rocky), which makes no count wrong: the marks table's oid is part of every remembered count's version.
// Nothing is made in a database with a FOR ALL TABLES publication: the marks table would be published, and a
// subscriber's apply worker stops at a change to a table it does not have (every table's replication with
// it).
constexpr const char* kMarkObjectsSql = R"sql(DO $rocky$
BEGIN
  IF to_regclass('rocky_meta.table_changes') IS NULL AND EXISTS (SELECT 1 FROM pg_publication WHERE puballtables) THEN
    RAISE EXCEPTION 'the database has a FOR ALL TABLES publication (%), which would publish rocky_meta.table_changes to its subscribers, whose apply stops at a table they lack; rocky makes no change marks here',
      (SELECT string_agg(quote_ident(pubname), ', ' ORDER BY pubname) FROM pg_publication WHERE puballtables);
  END IF;
  IF to_regnamespace('rocky_meta') IS NULL THEN
    CREATE SCHEMA rocky_meta;
  END IF;
  IF to_regclass('rocky_meta.table_changes') IS NULL THEN
    CREATE TABLE rocky_meta.table_changes (relid oid NOT NULL, xid xid8 NOT NULL DEFAULT pg_current_xact_id());
    CREATE INDEX table_changes_relid ON rocky_meta.table_changes (relid);
  END IF;
  IF to_regclass('rocky_meta.table_changes_cleared') IS NULL THEN
    CREATE TABLE rocky_meta.table_changes_cleared (relid oid PRIMARY KEY, snapshot pg_snapshot NOT NULL);
  END IF;
  IF to_regprocedure('rocky_meta.mark_change()') IS NULL THEN
    CREATE FUNCTION rocky_meta.mark_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
      SET search_path = pg_catalog, pg_temp AS $f$
      BEGIN
        IF to_regclass('rocky_meta.table_changes') IS NOT NULL THEN
          INSERT INTO rocky_meta.table_changes (relid) VALUES (TG_RELID);
        END IF;
        RETURN NULL;
      END $f$;
    REVOKE ALL ON FUNCTION rocky_meta.mark_change() FROM PUBLIC;
  END IF;
END $rocky$)sql";

// "every transaction visible in snapshot OLD is visible in snapshot NEW" (both pg_snapshot expressions): NEW
// was taken after OLD, or is OLD.
std::string SnapshotCovers(const std::string& newer, const std::string& older) {
  return "(pg_snapshot_xmax(" + older + ") <= pg_snapshot_xmax(" + newer +
         ") AND NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(" + newer +
         ") AS rocky_xip(x) WHERE pg_visible_in_snapshot(rocky_xip.x, " + older + ")))";
}

// A remembered count's version, parsed: "pg1:" then the table's marking identity (the server's system
// identifier and WAL timeline, relid, trigger oid, trigger xmin, function xmin, marks table oid, the
// postmaster's start time in microseconds), the snapshot counted in (xmin:xmax:xip,...) and the own
// transaction id (0 when none). The timeline (8 hex digits) moves at a promotion or a point-in-time recovery,
// after which transaction ids of the old timeline may be reused; the start time moves at every start, and so
// at a data directory restored from a file-level copy or a disk snapshot (crash recovery alone: no new
// timeline), whose transaction ids are reused too. nullopt for any other text (another warehouse's version,
// damage).
struct PgCountVersion {
  std::string identity;
  std::string snapshot;
  std::string own_xid;
};

std::optional<PgCountVersion> ParsePgCountVersion(std::string_view version) {
  constexpr std::string_view kPrefix = "pg1:";
  if (version.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::vector<std::string> fields;
  std::string field;
  for (const char c : version.substr(kPrefix.size())) {
    if (c == ':') {
      fields.push_back(std::move(field));
      field.clear();
    } else {
      field += c;
    }
  }
  fields.push_back(std::move(field));
  if (fields.size() != 12) return std::nullopt;
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string& f = fields[i];
    const bool list = i == 10;  // the in-progress list: digits and commas, maybe empty
    const bool hex = i == 1;    // the timeline
    if (!list && f.empty()) return std::nullopt;
    for (const char c : f) {
      if (!(c >= '0' && c <= '9') && !(list && c == ',') && !(hex && c >= 'A' && c <= 'F'))
        return std::nullopt;
    }
  }
  PgCountVersion out;
  for (size_t i = 0; i < 8; ++i) out.identity += (i > 0 ? ":" : "") + fields[i];
  out.snapshot = fields[8] + ":" + fields[9] + ":" + fields[10];
  out.own_xid = fields[11];
  return out;
}

std::string PgCountVersionText(const std::string& identity, const std::string& snapshot,
                               const std::string& own_xid) {
  return "pg1:" + identity + ":" + snapshot + ":" + own_xid;
}

class PostgresWarehouse final : public Warehouse {
 public:
  // `target_url` opens the second session of concurrent counts on one server (PostgresOptions).
  PostgresWarehouse(std::unique_ptr<Session> source, std::unique_ptr<Session> target, std::string target_url,
                    PostgresOptions options)
      : source_(std::move(source)),
        target_(std::move(target)),
        target_url_(std::move(target_url)),
        options_(options) {
    dialect_ = std::make_unique<PostgresDialect>(src().database(), tgt().database());
  }

  const SqlDialect& dialect() const override { return *dialect_; }

  Result<std::vector<std::string>> ListSchemas(std::string_view catalog) override {
    ROCKY_RETURN_IF_ERROR(ValidateName("catalog", catalog));
    ROCKY_RETURN_IF_ERROR(src().EnsureConnected());
    const bool own = catalog == src().database();
    const std::string prefix = std::string(catalog) + ".";
    ROCKY_ASSIGN_OR_RETURN(
        PgResult r,
        src().Exec(own ? "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT LIKE "
                         "'pg\\_%' AND schema_name <> 'information_schema' AND strpos(schema_name, "
                         "'.') = 0"
                       : "SELECT substr(schema_name, length($1) + 1) FROM information_schema.schemata "
                         "WHERE left(schema_name, length($1)) = $1",
                   own ? std::vector<std::string>{} : std::vector<std::string>{prefix},
                   "listing the schemas of catalog '" + std::string(catalog) + "' on " + src().name()));
    std::vector<std::string> schemas;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      std::string s = PQgetvalue(r.get(), i, 0);
      if (!s.empty()) schemas.push_back(std::move(s));
    }
    if (schemas.empty() && !own) {
      return Status::NotFound("catalog '" + std::string(catalog) + "' not found on " + src().name() +
                              " (no schema named '" + prefix + "*', and the database is '" +
                              src().database() + "')");
    }
    std::sort(schemas.begin(), schemas.end());
    return schemas;
  }

  Result<std::vector<std::string>> ListTables(std::string_view catalog, std::string_view schema) override {
    ROCKY_RETURN_IF_ERROR(ValidateName("catalog", catalog));
    ROCKY_RETURN_IF_ERROR(src().EnsureConnected());
    const std::string pg_schema = PostgresSchemaName(src().database(), catalog, schema);
    ROCKY_RETURN_IF_ERROR(ValidateName("schema", pg_schema));
    const std::string name = std::string(catalog) + "." + std::string(schema);
    ROCKY_ASSIGN_OR_RETURN(PgResult exists,
                           src().Exec("SELECT 1 FROM information_schema.schemata WHERE schema_name = $1",
                                      {pg_schema}, "looking up schema " + name + " on " + src().name()));
    if (PQntuples(exists.get()) == 0) {
      return Status::NotFound("schema " + name + " not found on " + src().name() + " (no schema \"" +
                              pg_schema + "\")");
    }
    ROCKY_ASSIGN_OR_RETURN(PgResult r,
                           src().Exec("SELECT table_name FROM information_schema.tables WHERE "
                                      "table_schema = $1 AND table_type = 'BASE TABLE'",
                                      {pg_schema}, "listing tables of " + name + " on " + src().name()));
    std::vector<std::string> tables;
    for (int i = 0; i < PQntuples(r.get()); ++i) tables.emplace_back(PQgetvalue(r.get(), i, 0));
    std::sort(tables.begin(), tables.end());
    return tables;
  }

  Result<bool> TableExists(const TableRef& table) override {
    ROCKY_RETURN_IF_ERROR(ValidateRef(table));
    ROCKY_RETURN_IF_ERROR(tgt().EnsureConnected());
    ROCKY_ASSIGN_OR_RETURN(std::vector<PgColumn> columns, Columns(tgt(), table, "looking up"));
    return !columns.empty();
  }

  Result<uint64_t> CountRows(const TableRef& table) override {
    ROCKY_RETURN_IF_ERROR(ExistingTable(tgt(), table, std::nullopt, "table").status());
    ROCKY_ASSIGN_OR_RETURN(PgResult r, tgt().Exec("SELECT count(*) FROM " + Sql(tgt(), table), {},
                                                  "counting rows of " + table.Qualified()));
    return std::stoull(PQgetvalue(r.get(), 0, 0));
  }

  Result<std::optional<std::string>> MaxTimestamp(const TableRef& table, std::string_view column,
                                                  config::CursorType type) override {
    ROCKY_ASSIGN_OR_RETURN(std::vector<PgColumn> columns, ExistingTable(tgt(), table, column, "table"));
    const PgColumn* cursor = FindColumn(columns, column);
    ROCKY_RETURN_IF_ERROR(CheckCursorType(*cursor, type, table));
    StatementLog log(false);
    return MaxCursor(tgt(), Sql(tgt(), table), *cursor, type, "", {}, table.Qualified(), log);
  }

  Result<std::optional<IndexAdvice>> CursorIndexAdvice(const TableRef& table,
                                                       std::string_view column) override {
    ROCKY_ASSIGN_OR_RETURN(std::vector<PgColumn> columns,
                           ExistingTable(src(), table, column, "source table"));
    const bool text = IsTextCursor(*FindColumn(columns, column));
    const std::string pg_schema = PostgresSchemaName(src().database(), table.catalog, table.schema);
    // A btree index, not partial, whose first column is the cursor with its type's default operator class
    // (not text_pattern_ops): what a range read `col >= $1` uses. A text cursor's ranges compare in byte
    // order (COLLATE "C"), which only an index in that order serves: its collation "C" or "POSIX", or the
    // database's default when the database's own is one of those.
    ROCKY_ASSIGN_OR_RETURN(
        PgResult r,
        src().Exec(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = "
            "c.relnamespace JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] WHERE n.nspname = $1 AND "
            "c.relname = $2 AND a.attname = $3 AND i.indpred IS NULL AND am.amname = 'btree' AND "
            "i.indisvalid AND EXISTS (SELECT 1 FROM pg_opclass oc WHERE oc.oid = i.indclass[0] AND "
            "oc.opcdefault) AND (NOT $4::bool OR i.indcollation[0] IN (950, 951) OR (i.indcollation[0] = 100 "
            "AND (SELECT datcollate FROM pg_database WHERE datname = current_database()) IN ('C', 'POSIX')) "
            "OR EXISTS (SELECT 1 FROM pg_collation co WHERE co.oid = i.indcollation[0] AND co.collprovider = "
            "'c' AND co.collcollate IN ('C', 'POSIX')))",
            {pg_schema, table.table, std::string(column), text ? "true" : "false"},
            "looking up the indexes of " + table.Qualified() + " on " + src().name()));
    if (PQntuples(r.get()) > 0) return std::optional<IndexAdvice>();
    const std::string key = text ? CText(SqliteIdent(column)) : SqliteIdent(column);
    return std::optional<IndexAdvice>(
        IndexAdvice{"CREATE INDEX ON " + Sql(src(), table) + " (" + key + ")", src().name()});
  }

  Result<CopyResult> Copy(const CopyRequest& request) override;

 private:
  Session& src() const { return source_ ? *source_ : *target_; }
  Session& tgt() const { return *target_; }
  bool two_servers() const { return source_ != nullptr; }

  static Status ValidateRef(const TableRef& ref) {
    ROCKY_RETURN_IF_ERROR(ValidateName("catalog", ref.catalog));
    ROCKY_RETURN_IF_ERROR(ValidateName("schema", ref.schema));
    ROCKY_RETURN_IF_ERROR(ValidateName("table", ref.table));
    return Status::OK();
  }

  std::string Sql(const Session& s, const TableRef& t) const {
    return SqliteIdent(PostgresSchemaName(s.database(), t.catalog, t.schema)) + "." + SqliteIdent(t.table);
  }

  // The columns of `table` in order (empty when there is no such table), with primary-key positions.
  Result<std::vector<PgColumn>> Columns(const Session& s, const TableRef& table,
                                        std::string_view what) const {
    const std::string pg_schema = PostgresSchemaName(s.database(), table.catalog, table.schema);
    if (Status v = ValidateName("schema", pg_schema); !v.ok()) return v;
    ROCKY_ASSIGN_OR_RETURN(
        PgResult r,
        s.Exec(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "COALESCE((SELECT k.n FROM unnest(pk.indkey) WITH ORDINALITY AS k(attnum, n) WHERE k.attnum = "
            "a.attnum), 0), "
            "bt.typname FROM pg_attribute a JOIN "
            "pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t "
            "ON "
            "t.oid = a.atttypid JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype "
            "ELSE "
            "t.oid END LEFT JOIN pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary WHERE n.nspname = $1 "
            "AND c.relname = $2 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY "
            "a.attnum",
            {pg_schema, table.table}, std::string(what) + " " + table.Qualified() + " on " + s.name()));
    std::vector<PgColumn> columns;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      columns.push_back(
          PgColumn{PQgetvalue(r.get(), i, 0), PQgetvalue(r.get(), i, 1), PQgetvalue(r.get(), i, 4),
                   std::string_view(PQgetvalue(r.get(), i, 2)) == "t", std::atoi(PQgetvalue(r.get(), i, 3))});
    }
    return columns;
  }

  Result<std::vector<PgColumn>> ExistingTable(Session& s, const TableRef& table,
                                              std::optional<std::string_view> column, std::string_view role) {
    ROCKY_RETURN_IF_ERROR(ValidateRef(table));
    ROCKY_RETURN_IF_ERROR(s.EnsureConnected());
    ROCKY_ASSIGN_OR_RETURN(std::vector<PgColumn> columns, Columns(s, table, "looking up"));
    const std::string name = std::string(role) + " " + table.Qualified();
    if (columns.empty()) return Status::NotFound(name + " not found on " + s.name());
    if (column && FindColumn(columns, *column) == nullptr) {
      return Status::NotFound("column '" + std::string(*column) + "' not found in " + name);
    }
    return columns;
  }

  static Status CheckCursorType(const PgColumn& cursor, config::CursorType type, const TableRef& table) {
    const std::string& t = cursor.typname;
    if (type == config::CursorType::kInteger) {
      if (t == "int2" || t == "int4" || t == "int8") return Status::OK();
      return Status::InvalidArgument("cursor_type is \"integer\" but column '" + cursor.name + "' of " +
                                     table.Qualified() + " is declared '" + cursor.type +
                                     "' (the PostgreSQL warehouse needs smallint, integer or bigint)");
    }
    if (t == "timestamptz" || t == "timestamp" || IsTextCursor(cursor)) return Status::OK();
    return Status::InvalidArgument(
        "cursor_type is \"timestamp\" but column '" + cursor.name + "' of " + table.Qualified() +
        " is declared '" + cursor.type +
        "' (the PostgreSQL warehouse needs timestamp with time zone, timestamp "
        "without time zone, or text holding ISO-8601 timestamps; use cursor_type = "
        "\"integer\" for a counter)");
  }

  // A text (or varchar) column holding ISO-8601 timestamp texts: compared in byte order (COLLATE "C", what
  // an index made with that collation serves) when the spellings allow, else as instants (::timestamptz).
  static bool IsTextCursor(const PgColumn& cursor) {
    return cursor.typname == "text" || cursor.typname == "varchar";
  }

  // The cursor's byte-order text, for ranges an index with COLLATE "C" serves.
  static std::string CText(const std::string& quoted) { return quoted + " COLLATE \"C\""; }

  // The cursor as an instant, for ordering rows (merge's newest version): a text cursor is cast (the
  // session's time zone is UTC, so a text without offset is UTC, as on SQLite).
  static std::string Instant(const PgColumn& cursor, const std::string& quoted) {
    return IsTextCursor(cursor) ? "(" + quoted + ")::timestamptz" : quoted;
  }

  // `col >= BOUND` for the cursor's type (timestamp without time zone holds UTC); `bound` is "$1", or (in
  // COPY, which takes no parameters) the validated watermark as a literal.
  static std::string WindowPredicate(const PgColumn& cursor, config::CursorType type,
                                     const std::string& bound) {
    const std::string c = SqliteIdent(cursor.name);
    const std::string& p = bound;
    if (type == config::CursorType::kInteger) return c + " >= " + p + "::bigint";
    if (cursor.typname == "timestamp") return c + " >= (" + p + "::timestamptz AT TIME ZONE 'UTC')";
    return c + " >= " + p + "::timestamptz";
  }

  // The largest cursor value of `table_sql` (over `where` with `params` when given) in the state store's
  // form.
  static Result<std::optional<std::string>> MaxCursor(const Session& s, const std::string& table_sql,
                                                      const PgColumn& cursor, config::CursorType type,
                                                      const std::string& where,
                                                      const std::vector<std::string>& params,
                                                      const std::string& table_name, StatementLog& log) {
    const std::string c = SqliteIdent(cursor.name);
    const std::string context = "reading MAX(" + cursor.name + ") of " + table_name;
    if (type == config::CursorType::kTimestamp && IsTextCursor(cursor)) {
      return MaxTextCursor(s, table_sql, c, where, params, context, log);
    }
    std::string expr;
    if (type == config::CursorType::kInteger) {
      expr = "max(" + c + ")::text";
    } else {
      // 'infinity' has no instant; isfinite() keeps the watermark a real one (the value is reported below).
      const std::string utc =
          cursor.typname == "timestamp" ? "max(" + c + ")" : "max(" + c + ") AT TIME ZONE 'UTC'";
      expr = "to_char(" + utc + ", 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), bool_or(NOT isfinite(" + c + "))";
    }
    const std::string sql =
        "SELECT " + expr + " FROM " + table_sql + (where.empty() ? "" : " WHERE " + where);
    log.Note(s, "max", sql, params);
    ROCKY_ASSIGN_OR_RETURN(PgResult r, s.Exec(sql, params, context));
    std::optional<std::string> value = Session::Value(r.get(), 0, 0);
    if (!value) return value;
    if (type == config::CursorType::kInteger) {
      if (!base::IsIntegerWatermark(*value)) {
        return Status::InvalidArgument(context + ": '" + *value + "' is not an integer watermark");
      }
      return value;
    }
    if (Session::Value(r.get(), 0, 1) == std::optional<std::string>("t")) {
      return Status::InvalidArgument(context + ": the column holds 'infinity', which is not a timestamp");
    }
    const std::optional<std::string> canonical = CanonicalTimestamp(*value + "Z");
    if (!canonical) {
      return Status::InvalidArgument(context + ": '" + *value +
                                     "' is not a timestamp rocky can keep (years 0000-9999)");
    }
    return std::optional<std::string>(internal::StateFormFromCanonical(*canonical));
  }

  // MaxCursor of a text cursor. Over `where` (the copy's window) when given; else over the rows from the day
  // before the newest text (MAX in byte order, one index probe): a later instant spelled with a negative
  // offset sorts below that text, but not below its date minus one day. The instants are compared by the
  // server to its microsecond; the texts at the newest one are then compared in full by CanonicalTimestamp
  // (rocky keeps up to 9 fraction digits), which also refuses a text the server parses but ISO-8601 does not
  // allow.
  static Result<std::optional<std::string>> MaxTextCursor(const Session& s, const std::string& table_sql,
                                                          const std::string& c, std::string where,
                                                          const std::vector<std::string>& params,
                                                          const std::string& context, StatementLog& log) {
    auto timestamp = [&](const std::string& text) -> Result<std::string> {
      std::optional<std::string> canonical = CanonicalTimestamp(text);
      if (!canonical) {
        return Status::InvalidArgument(context + ": '" + text +
                                       "' is not a timestamp (expected ISO-8601, e.g. 2025-03-15T14:30:00Z)");
      }
      return std::move(*canonical);
    };
    if (where.empty()) {
      const std::string newest_sql = "SELECT max(" + CText(c) + ") FROM " + table_sql;
      log.Note(s, "max", newest_sql, {});
      ROCKY_ASSIGN_OR_RETURN(PgResult r, s.Exec(newest_sql, {}, context));
      const std::optional<std::string> newest = Session::Value(r.get(), 0, 0);
      if (!newest) return std::optional<std::string>();
      ROCKY_ASSIGN_OR_RETURN(std::string canonical, timestamp(*newest));
      where = CText(c) + " >= " + internal::SqliteString(internal::DayBefore(canonical));
    }
    const std::string sql = "WITH rocky_w AS MATERIALIZED (SELECT " + c + " AS v FROM " + table_sql +
                            " WHERE " + where +
                            ") SELECT DISTINCT v FROM rocky_w WHERE v::timestamptz = (SELECT "
                            "max(v::timestamptz) FROM rocky_w)";
    log.Note(s, "max", sql, params);
    ROCKY_ASSIGN_OR_RETURN(PgResult r, s.Exec(sql, params, context));
    std::optional<std::string> max;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      ROCKY_ASSIGN_OR_RETURN(std::string canonical, timestamp(PQgetvalue(r.get(), i, 0)));
      if (!max || canonical > *max) max = std::move(canonical);
    }
    if (!max) return max;
    return std::optional<std::string>(internal::StateFormFromCanonical(*max));
  }

  // The window of a text cursor starting at `start` (canonical), as a predicate with the bounds written in
  // (validated timestamp texts, quoted), and how it compares ("text" or "instant"), as the SQLite warehouse
  // decides it (sqlite_warehouse.h): text when the target's newest value has a plain UTC spelling the start
  // can be written in, and the source holds no more rows than the target in the zone [day before the start,
  // that text), where a row of another spelling at or after the start could sort; else instants, on the
  // rows from the day before the start. Both are ranges an index with COLLATE "C" serves.
  Result<std::pair<std::string, std::string>> TextWindow(const PgColumn& cursor, const std::string& start,
                                                         const std::string& src_table,
                                                         const std::string& target_sql,
                                                         const std::string& what, StatementLog& log) const {
    const std::string c = SqliteIdent(cursor.name);
    const std::string day_before = internal::SqliteString(internal::DayBefore(start));
    const std::string newest_sql = "SELECT max(" + CText(c) + ") FROM " + target_sql;
    log.Note(tgt(), "max", newest_sql, {});
    ROCKY_ASSIGN_OR_RETURN(PgResult newest,
                           tgt().Exec(newest_sql, {}, "reading the newest cursor value of " + what));
    std::optional<std::string> threshold;
    if (std::optional<std::string> text = Session::Value(newest.get(), 0, 0)) {
      if (std::optional<internal::TextShape> shape = internal::ShapeOf(*text)) {
        threshold = internal::RenderInShape(start, *shape);
      }
    }
    if (threshold) {
      const std::string zone =
          CText(c) + " >= " + day_before + " AND " + CText(c) + " < " + internal::SqliteString(*threshold);
      uint64_t counts[2] = {0, 0};
      int i = 0;
      for (const auto& [session, table] : {std::pair<const Session*, std::string>{&src(), src_table},
                                           std::pair<const Session*, std::string>{&tgt(), target_sql}}) {
        const std::string sql = "SELECT count(*) FROM " + table + " WHERE " + zone;
        log.Note(*session, "guard", sql, {});
        ROCKY_ASSIGN_OR_RETURN(PgResult r,
                               session->Exec(sql, {}, "comparing the rows below the window of " + what));
        counts[i++] = std::stoull(PQgetvalue(r.get(), 0, 0));
      }
      if (counts[0] > counts[1]) threshold.reset();
    }
    if (threshold)
      return std::make_pair(CText(c) + " >= " + internal::SqliteString(*threshold), std::string("text"));
    return std::make_pair(CText(c) + " >= " + day_before + " AND " + Instant(cursor, c) +
                              " >= " + internal::SqliteString(start) + "::timestamptz",
                          std::string("instant"));
  }

  // Streams `select_sql` (run on the source session inside its transaction) into `staging` on the target.
  Status Transfer(const std::string& select_sql, const std::vector<std::string>& params,
                  const std::string& staging, const std::string& columns_list, size_t column_count,
                  const std::string& what, uint64_t* rows);

  std::unique_ptr<Session> source_;  // null when sources and targets share the target's session
  std::unique_ptr<Session> target_;
  std::string target_url_;
  std::unique_ptr<Session> counter_;  // one server, concurrent counts: the second session (null until used)
  bool counter_failed_ = false;       // it could not be opened: counts stay on the copy's session
  PostgresOptions options_;
  std::unique_ptr<PostgresDialect> dialect_;

  // ---- change marks (postgres_warehouse.h, "Remembered row counts") ----

  // What a copy's transaction saw of one table's marking.
  struct TableMarks {
    std::string relid;        // the table's oid (empty: not read)
    std::string identity;     // non-empty when the table is marked: a count taken now may be remembered
    std::string snapshot;     // the transaction's snapshot (pg_current_snapshot())
    bool install = false;     // a plain table without rocky's trigger: install it after the commit
    bool memo_holds = false;  // the request's remembered count holds in this snapshot
  };
  // Work for after the copy's commit, outside any transaction of the copy.
  struct MarkTrigger {
    Session* session;
    std::string table_sql;
    std::string qualified;
    bool source;
  };
  struct MarksCleared {
    Session* session;
    std::string relid;
    std::string snapshot;
  };
  struct AfterCommit {
    std::vector<MarkTrigger> install;
    std::vector<MarksCleared> clear;
  };

  // The marking objects on `s` (kMarkObjectsSql), made at most once per session; any failure (a server older
  // than 13, no CREATE privilege on the database) is kept: that session's tables are counted. Requires: no
  // transaction open on `s`.
  Status EnsureMarkObjects(Session& s) {
    std::optional<Status>& known = &s == target_.get() ? target_marks_ready_ : source_marks_ready_;
    if (known) return *known;
    if (PQserverVersion(s.conn()) < 130000) {
      known = Status::NotSupported("the server " + s.name() + " runs PostgreSQL " +
                                   std::to_string(PQserverVersion(s.conn()) / 10000) +
                                   ", and change marks need 13 or later (pg_current_xact_id)");
    } else {
      known =
          s.Exec(kMarkObjectsSql, {}, "creating rocky_meta (rocky's change marks) on " + s.name()).status();
    }
    return *known;
  }
  bool MarkObjectsReady(const Session& s) const {
    const std::optional<Status>& known = &s == target_.get() ? target_marks_ready_ : source_marks_ready_;
    return known && known->ok();
  }

  // Runs `sql` inside a savepoint of the open transaction on `s`, so that its failure (a rocky_meta object
  // dropped or not readable) leaves the transaction usable; nullopt on failure.
  static std::optional<PgResult> InSavepoint(const Session& s, const std::string& sql,
                                             const std::vector<std::string>& params) {
    if (!s.Exec("SAVEPOINT rocky_marks", {}, "").ok()) return std::nullopt;
    Result<PgResult> r = s.Exec(sql, params, "");
    if (!r.ok()) {
      (void)s.Exec("ROLLBACK TO SAVEPOINT rocky_marks", {}, "");
      (void)s.Exec("RELEASE SAVEPOINT rocky_marks", {}, "");
      return std::nullopt;
    }
    if (!s.Exec("RELEASE SAVEPOINT rocky_marks", {}, "").ok()) return std::nullopt;
    return std::move(*r);
  }

  // In the copy's transaction on `s`: `table`'s marking, and whether `memo` holds (postgres_warehouse.h).
  // Never fails: whatever cannot be read means "count". Only a permanent (logged) table on a server not in
  // recovery is marked: crash recovery empties an UNLOGGED table without firing any trigger, and on a hot
  // standby pg_current_snapshot() lists no in-progress transaction (the server keeps them in the snapshot's
  // subxip, which it does not export), so a writer in progress at the count would look seen by it. Nor is an
  // inheritance child or a partition: a statement on its parent (DELETE FROM parent, INSERT routed into the
  // partition) changes its rows but fires only the parent's statement triggers.
  TableMarks ReadMarks(const Session& s, const TableRef& table, const std::optional<RowCountMemo>& memo,
                       StatementLog& log) const {
    TableMarks m;
    const std::string pg_schema = PostgresSchemaName(s.database(), table.catalog, table.schema);
    const std::string sql =
        "SELECT c.oid::text, pg_current_snapshot()::text, c.relkind = 'r' AND c.relpersistence = 'p' AND NOT "
        "pg_is_in_recovery() AND NOT EXISTS (SELECT 1 FROM "
        "pg_inherits i WHERE i.inhparent = c.oid OR i.inhrelid = c.oid) AND NOT EXISTS (SELECT 1 FROM "
        "pg_subscription_rel r WHERE "
        "r.srrelid = c.oid), (SELECT t.oid::text || ':' || t.xmin::text || ':' || p.xmin::text FROM "
        "pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE t.tgrelid = c.oid AND t.tgname = "
        "'rocky_mark_changes' AND p.oid = to_regprocedure('rocky_meta.mark_change()') AND t.tgenabled = 'A' "
        "AND t.tgtype = 60 AND t.tgqual IS NULL AND t.tgattr::text = ''), EXISTS (SELECT 1 FROM pg_trigger t "
        "WHERE t.tgrelid = c.oid AND t.tgname = 'rocky_mark_changes'), (SELECT system_identifier::text FROM "
        "pg_control_system()) || ':' || CASE WHEN pg_is_in_recovery() THEN (SELECT upper(lpad(to_hex("
        "timeline_id), 8, '0')) FROM pg_control_checkpoint()) ELSE substr(pg_walfile_name("
        "pg_current_wal_lsn()), 1, 8) END, to_regclass('rocky_meta.table_changes')::oid::text, "
        "(extract(epoch FROM "
        "pg_postmaster_start_time()) * 1000000)::bigint::text FROM pg_class c "
        "JOIN "
        "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2";
    log.Note(s, "marks", sql, {pg_schema, table.table});
    std::optional<PgResult> r = InSavepoint(s, sql, {pg_schema, table.table});
    if (!r || PQntuples(r->get()) != 1) return m;
    const PGresult* row = r->get();
    m.relid = PQgetvalue(row, 0, 0);
    m.snapshot = PQgetvalue(row, 0, 1);
    const bool plain = std::string_view(PQgetvalue(row, 0, 2)) == "t";
    const std::optional<std::string> trigger = Session::Value(row, 0, 3);
    const bool named = std::string_view(PQgetvalue(row, 0, 4)) == "t";
    const std::optional<std::string> system = Session::Value(row, 0, 5);
    const std::optional<std::string> marks_table = Session::Value(row, 0, 6);
    const std::optional<std::string> started = Session::Value(row, 0, 7);
    if (!plain || !system || !marks_table || !started) return m;
    if (!trigger) {
      // A trigger of that name that is not rocky's as made (disabled, or changed) is left to whoever did it.
      m.install = !named;
      return m;
    }
    m.identity = *system + ":" + m.relid + ":" + *trigger + ":" + *marks_table + ":" + *started;
    if (!memo) return m;
    const std::optional<PgCountVersion> version = ParsePgCountVersion(memo->version);
    if (!version || version->identity != m.identity) return m;
    const std::string check =
        "SELECT NOT EXISTS (SELECT 1 FROM rocky_meta.table_changes WHERE relid = $1::oid AND NOT "
        "pg_visible_in_snapshot(xid, $2::pg_snapshot) AND xid <> $3::xid8) AND NOT EXISTS (SELECT 1 FROM "
        "rocky_meta.table_changes_cleared k WHERE k.relid = $1::oid AND NOT " +
        SnapshotCovers("$2::pg_snapshot", "k.snapshot") +
        ") AND pg_snapshot_xmax($2::pg_snapshot) <= pg_snapshot_xmax(pg_current_snapshot())";
    const std::vector<std::string> params{m.relid, version->snapshot, version->own_xid};
    log.Note(s, "marks", check, params);
    std::optional<PgResult> holds = InSavepoint(s, check, params);
    m.memo_holds =
        holds && PQntuples(holds->get()) == 1 && std::string_view(PQgetvalue(holds->get(), 0, 0)) == "t";
    return m;
  }

  // The copy's own transaction id on `s` (which has written), or nullopt.
  static std::optional<std::string> OwnXid(const Session& s) {
    std::optional<PgResult> r = InSavepoint(s, "SELECT pg_current_xact_id()::text", {});
    if (!r || PQntuples(r->get()) != 1) return std::nullopt;
    return std::string(PQgetvalue(r->get(), 0, 0));
  }

  // CREATE TRIGGER ... ENABLE ALWAYS on `table_sql` in the open transaction (a table it created); false when
  // it failed (the transaction stays usable).
  static bool MarkNewTable(const Session& s, const std::string& table_sql, StatementLog& log) {
    if (!s.Exec("SAVEPOINT rocky_marks", {}, "").ok()) return false;
    const std::string create =
        "CREATE TRIGGER rocky_mark_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON " + table_sql +
        " FOR EACH STATEMENT EXECUTE FUNCTION rocky_meta.mark_change()";
    const std::string enable = "ALTER TABLE " + table_sql + " ENABLE ALWAYS TRIGGER rocky_mark_changes";
    log.Note(s, "schema", create, {});
    log.Note(s, "schema", enable, {});
    if (!s.Exec(create, {}, "").ok() || !s.Exec(enable, {}, "").ok()) {
      (void)s.Exec("ROLLBACK TO SAVEPOINT rocky_marks", {}, "");
      (void)s.Exec("RELEASE SAVEPOINT rocky_marks", {}, "");
      return false;
    }
    return s.Exec("RELEASE SAVEPOINT rocky_marks", {}, "").ok();
  }

  // After the copy's commit: installs the trigger on an existing table in a short transaction of its own
  // (CREATE TRIGGER waits for the table's writers and holds theirs back: lock_timeout bounds that). A failure
  // is a warning (once per table per warehouse), the table being counted as before.
  void InstallMarkTrigger(const MarkTrigger& t, std::vector<std::string>& warnings) {
    const std::string key = (t.source ? "source " : "target ") + t.qualified;
    if (!mark_install_failed_.insert(key).second) return;  // tried once already by this warehouse
    Status st =
        t.session->Exec("BEGIN", {}, "starting the trigger's transaction on " + t.session->name()).status();
    for (const std::string& sql :
         {std::string("SET LOCAL lock_timeout = '5s'"),
          "CREATE TRIGGER rocky_mark_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON " + t.table_sql +
              " FOR EACH STATEMENT EXECUTE FUNCTION rocky_meta.mark_change()",
          "ALTER TABLE " + t.table_sql + " ENABLE ALWAYS TRIGGER rocky_mark_changes",
          std::string("COMMIT")}) {
      if (!st.ok()) break;
      st = t.session->Exec(sql, {}, "installing rocky's change-marking trigger on " + t.qualified).status();
    }
    t.session->RollbackIfOpen();
    if (st.ok()) {
      mark_install_failed_.erase(key);
      return;
    }
    if (t.source) {
      warnings.push_back(
          "source table " + t.qualified +
          ": mark_source_changes is on, but rocky cannot install its change-marking trigger "
          "(rocky's role must own the table: CREATE TRIGGER needs the TRIGGER privilege, ALTER TABLE ... "
          "ENABLE ALWAYS TRIGGER ownership): " +
          st.message() + "; its rows are counted exactly on every run instead");
    } else {
      warnings.push_back("target table " + t.qualified +
                         ": rocky cannot install its change-marking trigger: " + st.message() +
                         "; its rows are counted exactly on every run instead");
    }
  }

  // After a new count was remembered: deletes the table's marks that count accounts for (visible in its
  // snapshot), recording that snapshot in table_changes_cleared first, in the same statement, and only when
  // it covers the one recorded (so an older remembered count is never judged without the marks it needs).
  // Nothing is recorded when there is nothing to delete, so that two counts of one table kept apart (two
  // rocky projects reading one source) settle instead of outdating each other on every run. One short
  // autocommit statement; a failure only leaves marks behind.
  static void ClearMarks(const MarksCleared& c) {
    const std::string sql =
        "WITH rocky_k AS (INSERT INTO rocky_meta.table_changes_cleared AS rocky_old (relid, snapshot) SELECT "
        "$1::oid, $2::pg_snapshot WHERE EXISTS (SELECT 1 FROM rocky_meta.table_changes WHERE relid = $1::oid "
        "AND pg_visible_in_snapshot(xid, $2::pg_snapshot)) ON CONFLICT (relid) DO UPDATE SET snapshot = "
        "EXCLUDED.snapshot WHERE " +
        SnapshotCovers("EXCLUDED.snapshot", "rocky_old.snapshot") +
        " RETURNING snapshot) DELETE FROM rocky_meta.table_changes c USING rocky_k WHERE c.relid = $1::oid "
        "AND "
        "pg_visible_in_snapshot(c.xid, rocky_k.snapshot)";
    (void)c.session->Exec(sql, {c.relid, c.snapshot}, "");
  }

  std::optional<Status> target_marks_ready_;
  std::optional<Status> source_marks_ready_;  // two servers only
  std::set<std::string> mark_install_failed_;
  std::set<std::string> warned_;  // warnings already given by this warehouse

  Result<CopyResult> CopyInTransaction(const CopyRequest& request, StatementLog& log, AfterCommit& after);

  // One server: the second session, in a read-only transaction that sees the target transaction's snapshot
  // (which must be open), ready for the source's count; null (and nothing left open) when it cannot be had.
  Session* CounterInSnapshot() {
    if (two_servers() || !options_.concurrent_counts || counter_failed_) return nullptr;
    if (counter_ == nullptr) {
      Result<std::unique_ptr<Session>> opened = Session::Connect(target_url_);
      if (!opened.ok()) {
        counter_failed_ = true;
        return nullptr;
      }
      counter_ = std::move(*opened);
    }
    counter_->RollbackIfOpen();
    if (!counter_->EnsureConnected().ok()) return nullptr;
    Result<PgResult> snapshot = tgt().Exec("SELECT pg_export_snapshot()", {}, "exporting the snapshot");
    if (!snapshot.ok()) return nullptr;
    const std::string id = PQgetvalue(snapshot->get(), 0, 0);
    // SET TRANSACTION SNAPSHOT takes no parameter: the id is hex digits and dashes, checked.
    if (id.empty() || id.find_first_not_of("0123456789ABCDEFabcdef-") != std::string::npos) return nullptr;
    if (!counter_->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", {}, "").ok() ||
        !counter_->Exec("SET TRANSACTION SNAPSHOT '" + id + "'", {}, "").ok()) {
      counter_->RollbackIfOpen();
      return nullptr;
    }
    return counter_.get();
  }
};

Status PostgresWarehouse::Transfer(const std::string& select_sql, const std::vector<std::string>& params,
                                   const std::string& staging, const std::string& columns_list,
                                   size_t column_count, const std::string& what, uint64_t* rows) {
  *rows = 0;
  if (options_.transfer == PostgresTransfer::kInsert) {
    // A cursor read in batches; each batch one prepared INSERT of up to insert_batch_rows rows.
    ROCKY_RETURN_IF_ERROR(src()
                              .Exec("DECLARE rocky_window NO SCROLL CURSOR FOR " + select_sql, params,
                                    "reading " + what + " on " + src().name())
                              .status());
    const size_t batch = std::max<size_t>(
        1, std::min<size_t>(options_.insert_batch_rows, 65535 / std::max<size_t>(column_count, 1)));
    std::vector<std::string> prepared(batch + 1);  // by batch size: the last batch is usually smaller
    while (true) {
      ROCKY_ASSIGN_OR_RETURN(PgResult r, src().Exec("FETCH " + std::to_string(batch) + " FROM rocky_window",
                                                    {}, "reading " + what + " on " + src().name()));
      const int n = PQntuples(r.get());
      if (n == 0) break;
      if (prepared[static_cast<size_t>(n)].empty()) {
        std::string sql = "INSERT INTO " + staging + " (" + columns_list + ") VALUES ";
        int p = 1;
        for (int i = 0; i < n; ++i) {
          sql += i > 0 ? ", (" : "(";
          for (size_t c = 0; c < column_count; ++c) sql += (c > 0 ? ", $" : "$") + std::to_string(p++);
          sql += ")";
        }
        const std::string name = "rocky_insert_" + std::to_string(n);
        PgResult prep(PQprepare(tgt().conn(), name.c_str(), sql.c_str(), 0, nullptr));
        if (!prep || PQresultStatus(prep.get()) != PGRES_COMMAND_OK) {
          return tgt().Error(prep.get(), "preparing the insert of " + what + " on " + tgt().name());
        }
        prepared[static_cast<size_t>(n)] = name;
      }
      std::vector<const char*> values;
      values.reserve(static_cast<size_t>(n) * column_count);
      for (int i = 0; i < n; ++i) {
        for (size_t c = 0; c < column_count; ++c) {
          values.push_back(PQgetisnull(r.get(), i, static_cast<int>(c)) != 0
                               ? nullptr
                               : PQgetvalue(r.get(), i, static_cast<int>(c)));
        }
      }
      PgResult ins(PQexecPrepared(tgt().conn(), prepared[static_cast<size_t>(n)].c_str(),
                                  static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0));
      if (!ins || PQresultStatus(ins.get()) != PGRES_COMMAND_OK) {
        return tgt().Error(ins.get(), "inserting " + what + " on " + tgt().name());
      }
      *rows += static_cast<uint64_t>(n);
    }
    for (const std::string& name : prepared) {
      if (!name.empty()) {
        ROCKY_RETURN_IF_ERROR(
            tgt().Exec("DEALLOCATE " + SqliteIdent(name), {}, "releasing " + name).status());
      }
    }
    return src().Exec("CLOSE rocky_window", {}, "closing the cursor on " + src().name()).status();
  }

  // COPY: the source's text rows are handed to the target as they arrive, a buffer at a time.
  {
    std::vector<const char*> values;
    for (const std::string& p : params) values.push_back(p.c_str());
    PgResult out(PQexecParams(src().conn(), ("COPY (" + select_sql + ") TO STDOUT").c_str(),
                              static_cast<int>(params.size()), nullptr, values.data(), nullptr, nullptr, 0));
    if (!out || PQresultStatus(out.get()) != PGRES_COPY_OUT) {
      return src().Error(out.get(), "reading " + what + " on " + src().name());
    }
  }
  {
    PgResult in(PQexec(tgt().conn(), ("COPY " + staging + " (" + columns_list + ") FROM STDIN").c_str()));
    if (!in || PQresultStatus(in.get()) != PGRES_COPY_IN) {
      // Drain the source's COPY so its session stays usable.
      char* buffer = nullptr;
      while (PQgetCopyData(src().conn(), &buffer, 0) > 0) PQfreemem(buffer);
      while (PGresult* rest = PQgetResult(src().conn())) PQclear(rest);
      return tgt().Error(in.get(), "writing " + what + " on " + tgt().name());
    }
  }
  Status failed;
  while (true) {
    char* buffer = nullptr;
    const int n = PQgetCopyData(src().conn(), &buffer, 0);
    if (n == -1) break;  // done; the COPY's result follows
    if (n < 0) {
      failed = src().Error(nullptr, "reading " + what + " on " + src().name());
      break;
    }
    ++*rows;  // text COPY hands over one row per buffer
    const int put = PQputCopyData(tgt().conn(), buffer, n);
    PQfreemem(buffer);
    if (put != 1) {
      failed = tgt().Error(nullptr, "writing " + what + " on " + tgt().name());
      break;
    }
  }
  PQputCopyEnd(tgt().conn(), failed.ok() ? nullptr : "rocky: the source's COPY failed");
  while (PGresult* r = PQgetResult(src().conn())) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && failed.ok()) {
      failed = src().Error(r, "reading " + what + " on " + src().name());
    }
    PQclear(r);
  }
  while (PGresult* r = PQgetResult(tgt().conn())) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && failed.ok()) {
      failed = tgt().Error(r, "writing " + what + " on " + tgt().name());
    }
    PQclear(r);
  }
  return failed;
}

Result<CopyResult> PostgresWarehouse::Copy(const CopyRequest& request) {
  const TableRef& source = request.source;
  const TableRef& target = request.target;
  const std::string context = "copying " + source.Qualified() + " to " + target.Qualified();
  auto fail = [&](const Status& status) { return status.WithContext(context); };

  const internal::CopyNameRules rules{
      .table = ValidateRef, .column = ValidateName, .metadata_column_kind = "metadata column"};
  if (Status s = internal::CheckCopyRequest(request, rules); !s.ok()) return fail(s);
  if (!two_servers() &&
      PostgresSchemaName(tgt().database(), source.catalog, source.schema) ==
          PostgresSchemaName(tgt().database(), target.catalog, target.schema) &&
      source.table == target.table) {
    return fail(Status::InvalidArgument("source and target are the same table"));
  }
  for (Session* s : {&src(), &tgt()}) {
    if (Status st = s->EnsureConnected(); !st.ok()) return fail(st);
  }

  // The marking objects, before any transaction of the copy (made once per session). Targets are always
  // marked (with counts); sources only when the adapter says so.
  std::vector<std::string> warnings;
  auto warn_once = [&](const std::string& text) { warnings.push_back(text); };
  if (request.count_rows) {
    if (Status s = EnsureMarkObjects(tgt()); !s.ok()) {
      warn_once("row counts on " + tgt().name() + " are taken on every run, not remembered: " + s.message());
    }
    if (options_.mark_source_changes && two_servers()) {
      if (Status s = EnsureMarkObjects(src()); !s.ok()) {
        warn_once("mark_source_changes is on, but " + src().name() +
                  " cannot keep rocky's change marks (sources are counted on every run): " + s.message());
      }
    } else if (options_.mark_source_changes && !MarkObjectsReady(tgt()) && target_marks_ready_) {
      warn_once("mark_source_changes is on, but " + tgt().name() +
                " cannot keep rocky's change marks (sources are counted on every run): " +
                target_marks_ready_->message());
    }
  }

  StatementLog log(request.explain);
  AfterCommit after;
  // Target first: the source's snapshot is taken after the target's transaction began, so nothing the target
  // holds can be newer than what the source shows. A session the server dropped since its last statement (a
  // restart between two tables) shows only now: nothing has run yet, so it is re-opened and BEGIN tried once
  // more.
  auto begin = [&](Session& s, const std::string& sql, const std::string& what) {
    Status st = s.Exec(sql, {}, what + " on " + s.name()).status();
    if (!st.ok() && PQstatus(s.conn()) == CONNECTION_BAD && s.EnsureConnected().ok()) {
      st = s.Exec(sql, {}, what + " on " + s.name()).status();
    }
    return st;
  };
  if (Status s = begin(tgt(), "BEGIN ISOLATION LEVEL REPEATABLE READ", "starting the transaction"); !s.ok()) {
    return fail(s);
  }
  if (two_servers()) {
    if (Status s =
            begin(src(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting the read transaction");
        !s.ok()) {
      tgt().RollbackIfOpen();
      return fail(s);
    }
  }
  Result<CopyResult> result = CopyInTransaction(request, log, after);
  if (two_servers()) src().RollbackIfOpen();  // read only: nothing to keep
  if (counter_ != nullptr) counter_->RollbackIfOpen();
  if (result.ok()) {
    if (Status s = tgt().Exec("COMMIT", {}, "committing on " + tgt().name()).status(); s.ok()) {
      result->plans = log.Take();
      for (const MarksCleared& c : after.clear) ClearMarks(c);
      for (const MarkTrigger& t : after.install) InstallMarkTrigger(t, warnings);
      for (std::string& w : warnings) {
        if (warned_.insert(w).second) result->warnings.push_back(std::move(w));  // once per warehouse
      }
      return result;
    } else {
      result = s;
    }
  }
  tgt().RollbackIfOpen();
  return fail(result.status());
}

Result<CopyResult> PostgresWarehouse::CopyInTransaction(const CopyRequest& request, StatementLog& log,
                                                        AfterCommit& after) {
  const TableRef& source = request.source;
  const TableRef& target = request.target;
  const bool integer = request.cursor_type == config::CursorType::kInteger;
  const bool merge = request.strategy == config::Strategy::kMerge;
  ROCKY_ASSIGN_OR_RETURN(std::vector<PgColumn> source_columns,
                         Columns(src(), source, "reading the columns of"));
  if (source_columns.empty())
    return Status::NotFound("source table " + source.Qualified() + " not found on " + src().name());
  const PgColumn* cursor = FindColumn(source_columns, request.timestamp_column);
  if (cursor == nullptr) {
    return Status::NotFound("column '" + request.timestamp_column + "' not found in source table " +
                            source.Qualified());
  }
  ROCKY_RETURN_IF_ERROR(CheckCursorType(*cursor, request.cursor_type, source));
  for (const PgColumn& column : source_columns) {
    if (!IsSafePgTypeName(column.type)) {
      return Status::InvalidArgument("source table " + source.Qualified() + " column '" + column.name +
                                     "' has a declared type rocky does not copy: '" + column.type +
                                     "' (allowed: built-in type names, with one parenthesised list and [])");
    }
    for (const config::MetadataColumn& m : request.metadata_columns) {
      if (m.name == column.name) {
        return Status::InvalidArgument("metadata column '" + m.name +
                                       "' has the name of a column of source table " + source.Qualified());
      }
    }
  }
  for (const std::string& key : request.merge_keys) {
    if (FindColumn(source_columns, key) == nullptr) {
      return Status::NotFound("merge key '" + key + "' not found in source table " + source.Qualified());
    }
  }
  ROCKY_ASSIGN_OR_RETURN(std::vector<PgColumn> target_columns,
                         Columns(tgt(), target, "reading the columns of"));

  const std::string src_table = Sql(src(), source);
  const std::string target_sql = Sql(tgt(), target);
  const std::string target_schema =
      SqliteIdent(PostgresSchemaName(tgt().database(), target.catalog, target.schema));
  const std::string c = SqliteIdent(cursor->name);
  const bool text_cursor = !integer && IsTextCursor(*cursor);
  // A text cursor's index is in byte order, the order its window ranges compare in.
  const std::string cursor_key = text_cursor ? CText(c) : c;
  const std::string newest_first = Instant(*cursor, c) + " DESC NULLS LAST";
  const std::string cursor_index = SqliteIdent(IndexName("cursor", target.table));
  const std::string keys_index = SqliteIdent(IndexName("merge_keys", target.table));
  std::string key_list;
  for (const std::string& key : request.merge_keys)
    key_list += (key_list.empty() ? "" : ", ") + SqliteIdent(key);
  std::string columns_list;
  for (const PgColumn& column : source_columns)
    columns_list += (columns_list.empty() ? "" : ", ") + SqliteIdent(column.name);
  std::string metadata_names, metadata_values;
  for (const config::MetadataColumn& m : request.metadata_columns) {
    metadata_names += ", " + SqliteIdent(m.name);
    metadata_values += ", CAST(" + m.value + " AS " + PgType(m.type) + ") AS " + SqliteIdent(m.name);
  }

  CopyResult result;
  result.cursor_compare = request.watermark ? (integer ? "integer" : "instant") : "full";
  // The source's count. An incremental copy runs it while the target is counted (see below); a full one
  // has nothing to overlap it with.
  const std::string source_count_sql = "SELECT count(*) FROM " + src_table;
  const std::string source_count_what = "counting the rows of " + source.Qualified();
  PendingCount source_count;
  // Change marks: the source's (opt-in) read before its count, in the snapshot the count is taken in, and a
  // count it remembers used instead of counting when it holds.
  const bool mark_target = request.count_rows && MarkObjectsReady(tgt());
  const bool mark_source = request.count_rows && options_.mark_source_changes && MarkObjectsReady(src());
  TableMarks source_marks;
  if (mark_source) {
    source_marks = ReadMarks(src(), source, request.source_rows_memo, log);
    if (source_marks.install)
      after.install.push_back(MarkTrigger{&src(), src_table, source.Qualified(), /*source=*/true});
  }
  // The source's count is `counted` (nullopt: the remembered one held): its result and what to remember.
  auto settle_source = [&](std::optional<uint64_t> counted) {
    if (!counted) {
      result.source_rows = request.source_rows_memo->rows;
      result.source_rows_memo = request.source_rows_memo;
      return;
    }
    result.source_rows = *counted;
    if (!source_marks.identity.empty()) {
      result.source_rows_memo =
          RowCountMemo{PgCountVersionText(source_marks.identity, source_marks.snapshot, "0"), *counted};
      after.clear.push_back(MarksCleared{&src(), source_marks.relid, source_marks.snapshot});
    }
  };
  if (request.count_rows && !request.watermark) {
    if (source_marks.memo_holds) {
      settle_source(std::nullopt);
    } else {
      ROCKY_ASSIGN_OR_RETURN(PgResult r, log.Run(src(), "count", source_count_sql, {}, source_count_what));
      settle_source(std::stoull(PQgetvalue(r.get(), 0, 0)));
    }
  }

  // The window's bound: the watermark (minus lookback), as text the server parses.
  std::vector<std::string> params;
  if (request.watermark) {
    if (integer) {
      params.push_back(*request.watermark);
    } else {
      std::string start = *CanonicalTimestamp(*request.watermark);
      if (request.lookback_seconds > 0) {
        std::optional<std::string> back =
            internal::CanonicalMinusSeconds(start, static_cast<int64_t>(request.lookback_seconds));
        start = back ? *back : std::string("0001-01-01T00:00:00.000000000Z");
      }
      params.push_back(start);
    }
  }
  if (request.watermark && target_columns.empty()) {
    return Status::NotFound("target table " + target.Qualified() +
                            " does not exist but a watermark is set; run "
                            "'rocky run --full-refresh --table " +
                            target.Qualified() + "' to reload it");
  }
  if (request.watermark) {
    std::string missing;
    for (const PgColumn& column : source_columns) {
      if (FindColumn(target_columns, column.name) == nullptr)
        missing += (missing.empty() ? "" : ", ") + column.name;
    }
    if (!missing.empty()) {
      return Status::InvalidArgument("source table " + source.Qualified() + " has columns the target " +
                                     target.Qualified() + " lacks (" + missing +
                                     "): its schema changed; run 'rocky run --full-refresh --table " +
                                     target.Qualified() + "' to reload it");
    }
  }

  // Targets made before (or by hand) get their indexes once (IF NOT EXISTS is free after); then the target's
  // count, before anything is inserted (or the count it remembers, when that holds).
  uint64_t target_before = 0;
  TableMarks target_marks;
  if (request.watermark) {
    ROCKY_RETURN_IF_ERROR(
        log.Run(tgt(), "schema",
                "CREATE INDEX IF NOT EXISTS " + cursor_index + " ON " + target_sql + " (" + cursor_key + ")",
                {}, "creating the cursor index of " + target.Qualified())
            .status());
    if (merge) {
      if (Status s = log.Run(tgt(), "schema",
                             "CREATE UNIQUE INDEX IF NOT EXISTS " + keys_index + " ON " + target_sql + " (" +
                                 key_list + ")",
                             {}, "creating the unique index on merge_keys of " + target.Qualified())
                         .status();
          !s.ok()) {
        return Status::InvalidArgument(
            s.message() +
            " (the target holds rows that share merge_keys, e.g. from before strategy = "
            "\"merge\"; run 'rocky run --full-refresh --table " +
            target.Qualified() + "')");
      }
    }
    if (request.count_rows) {
      if (mark_target) {
        target_marks = ReadMarks(tgt(), target, request.target_rows_memo, log);
        if (target_marks.install)
          after.install.push_back(MarkTrigger{&tgt(), target_sql, target.Qualified(), /*source=*/false});
      }
      // The source's count runs while the target's: between two servers on the source's session, on one
      // server on the second session in this transaction's snapshot (PostgresOptions::concurrent_counts),
      // else first, on the copy's session. It is taken before the source's session runs anything else.
      if (source_marks.memo_holds) {
        settle_source(std::nullopt);
      } else {
        Session* counter = two_servers() ? &src() : CounterInSnapshot();
        if (counter != nullptr) {
          log.Note(*counter, "count", source_count_sql, {});
          ROCKY_RETURN_IF_ERROR(source_count.Send(*counter, source_count_sql, source_count_what));
        } else {
          ROCKY_ASSIGN_OR_RETURN(PgResult r,
                                 log.Run(src(), "count", source_count_sql, {}, source_count_what));
          settle_source(std::stoull(PQgetvalue(r.get(), 0, 0)));
        }
      }
      if (target_marks.memo_holds) {
        target_before = request.target_rows_memo->rows;
      } else {
        ROCKY_ASSIGN_OR_RETURN(PgResult r, log.Run(tgt(), "count", "SELECT count(*) FROM " + target_sql, {},
                                                   "counting the rows of " + target.Qualified()));
        target_before = std::stoull(PQgetvalue(r.get(), 0, 0));
      }
    }
  }
  if (source_count.pending()) {
    ROCKY_ASSIGN_OR_RETURN(const uint64_t counted, source_count.Take());
    settle_source(counted);
  }
  // A text cursor's window has its bounds written in (validated timestamp texts), and no parameter.
  std::string text_window;
  if (text_cursor && request.watermark) {
    ROCKY_ASSIGN_OR_RETURN(auto window, TextWindow(*cursor, params[0], src_table, target_sql,
                                                   source.Qualified() + " and " + target.Qualified(), log));
    text_window = window.first;
    result.cursor_compare = window.second;
    params.clear();
  }
  // The window predicate: `bound` is the parameter ("$1") or, in COPY, which takes none, a literal.
  auto window_with = [&](const std::string& bound) {
    return text_cursor ? text_window : WindowPredicate(*cursor, request.cursor_type, bound);
  };
  const std::string source_where = request.watermark ? window_with("$1") : "";
  result.sql = "SELECT *" + metadata_values + " FROM " + src_table +
               (source_where.empty() ? "" : " WHERE " + source_where);
  // What the target's statements read the source through.
  SourceRead read{src_table, false};
  if (two_servers()) {
    // The window (or the whole source) streamed into a temporary table of the target's transaction.
    std::string defs;
    for (const PgColumn& column : source_columns)
      defs += (defs.empty() ? "" : ", ") + SqliteIdent(column.name) + " " + column.type;
    ROCKY_RETURN_IF_ERROR(log.Run(tgt(), "schema",
                                  "CREATE TEMPORARY TABLE rocky_window (" + defs + ") ON COMMIT DROP", {},
                                  "creating the transfer table on " + tgt().name())
                              .status());
    // COPY takes no parameters: the bound is the validated watermark (digits, or a canonical timestamp) as a
    // quoted literal.
    const std::string where =
        !request.watermark ? "" : window_with(params.empty() ? "" : internal::SqliteString(params[0]));
    const std::string select =
        "SELECT " + columns_list + " FROM " + src_table + (where.empty() ? "" : " WHERE " + where);
    log.Note(src(), request.watermark ? "window" : "full", select, {});
    uint64_t streamed = 0;
    ROCKY_RETURN_IF_ERROR(Transfer(select, {}, "pg_temp.rocky_window", columns_list, source_columns.size(),
                                   source.Qualified(), &streamed));
    read = SourceRead{"pg_temp.rocky_window", true};
  }
  const std::string from_source =
      read.table_sql + (read.windowed || source_where.empty() ? "" : " WHERE " + source_where);

  const std::string insert_head =
      "INSERT INTO " + target_sql + " AS rocky_target (" + columns_list + metadata_names + ") ";
  std::string upsert;
  std::string distinct_source;  // merge: one row per key, the newest
  if (merge) {
    std::string set;
    for (const PgColumn& column : source_columns) {
      if (std::find(request.merge_keys.begin(), request.merge_keys.end(), column.name) !=
          request.merge_keys.end())
        continue;
      set += (set.empty() ? "" : ", ") + SqliteIdent(column.name) + " = EXCLUDED." + SqliteIdent(column.name);
    }
    for (const config::MetadataColumn& m : request.metadata_columns) {
      set += (set.empty() ? "" : ", ") + SqliteIdent(m.name) + " = EXCLUDED." + SqliteIdent(m.name);
    }
    upsert = set.empty() ? " ON CONFLICT (" + key_list + ") DO NOTHING"
                         : " ON CONFLICT (" + key_list + ") DO UPDATE SET " + set + " WHERE rocky_target." +
                               c + " IS NULL OR " + Instant(*cursor, "EXCLUDED." + c) +
                               " >= " + Instant(*cursor, "rocky_target." + c);
    // ON CONFLICT may not touch one row twice: a key the source holds twice keeps its newest row.
    distinct_source = "(SELECT DISTINCT ON (" + key_list + ") " + columns_list + " FROM " + from_source +
                      " ORDER BY " + key_list + ", " + newest_first + ") AS rocky_source";
  }

  if (!request.watermark) {
    std::vector<const PgColumn*> pk(source_columns.size(), nullptr);
    size_t pk_count = 0;
    for (const PgColumn& column : source_columns) {
      if (column.pk > 0 && static_cast<size_t>(column.pk) <= pk.size()) {
        pk[static_cast<size_t>(column.pk) - 1] = &column;
        ++pk_count;
      }
    }
    std::string create = "CREATE TABLE " + target_sql + " (";
    std::string separator;
    for (const PgColumn& column : source_columns) {
      create +=
          separator + SqliteIdent(column.name) + " " + column.type + (column.not_null ? " NOT NULL" : "");
      separator = ", ";
    }
    for (const config::MetadataColumn& m : request.metadata_columns) {
      create += separator + SqliteIdent(m.name) + " " + PgType(m.type);
    }
    if (pk_count > 0) {
      std::string list;
      for (size_t i = 0; i < pk_count && pk[i] != nullptr; ++i)
        list += (i > 0 ? ", " : "") + SqliteIdent(pk[i]->name);
      create += ", PRIMARY KEY (" + list + ")";
    }
    create += ")";
    ROCKY_RETURN_IF_ERROR(log.Run(tgt(), "schema", "CREATE SCHEMA IF NOT EXISTS " + target_schema, {},
                                  "creating schema " + target_schema + " on " + tgt().name())
                              .status());
    ROCKY_RETURN_IF_ERROR(
        log.Run(tgt(), "schema", "DROP TABLE IF EXISTS " + target_sql, {}, "dropping " + target.Qualified())
            .status());
    ROCKY_RETURN_IF_ERROR(log.Run(tgt(), "schema", create, {}, "creating " + target.Qualified()).status());
    // Marked from its creation: no transaction but this one can have written it unmarked.
    const bool marked = mark_target && MarkNewTable(tgt(), target_sql, log);
    if (merge) {
      ROCKY_RETURN_IF_ERROR(
          log.Run(tgt(), "schema",
                  "CREATE UNIQUE INDEX " + keys_index + " ON " + target_sql + " (" + key_list + ")", {},
                  "creating the unique index on merge_keys of " + target.Qualified())
              .status());
    }
    const std::string insert =
        merge ? insert_head + "SELECT " + columns_list + metadata_values + " FROM " + distinct_source + upsert
              : insert_head + "SELECT " + columns_list + metadata_values + " FROM " + from_source;
    ROCKY_ASSIGN_OR_RETURN(PgResult r,
                           log.Run(tgt(), "full", insert, read.windowed ? std::vector<std::string>{} : params,
                                   "inserting into " + target.Qualified()));
    result.rows_copied = std::stoull(PQcmdTuples(r.get()));
    result.target_rows = result.rows_copied;
    ROCKY_RETURN_IF_ERROR(
        log.Run(tgt(), "schema",
                "CREATE INDEX " + cursor_index + " ON " + target_sql + " (" + cursor_key + ")", {},
                "creating the cursor index of " + target.Qualified())
            .status());
    // Statistics now, so the first incremental run's planner knows the table's size and the cursor's range.
    ROCKY_RETURN_IF_ERROR(
        log.Run(tgt(), "schema", "ANALYZE " + target_sql, {}, "analyzing " + target.Qualified()).status());
    ROCKY_ASSIGN_OR_RETURN(result.max_timestamp, MaxCursor(tgt(), target_sql, *cursor, request.cursor_type,
                                                           "", {}, target.Qualified(), log));
    if (marked) {
      target_marks = ReadMarks(tgt(), target, std::nullopt, log);
      const std::optional<std::string> own = OwnXid(tgt());
      if (!target_marks.identity.empty() && own) {
        result.target_rows_memo = RowCountMemo{
            PgCountVersionText(target_marks.identity, target_marks.snapshot, *own), result.target_rows};
      }
    }
    return result;
  }

  const std::string target_where = window_with("$1");
  std::string insert;
  if (merge) {
    // Inserted and updated rows told apart in the same statement: a row the upsert inserted has xmax 0.
    insert = "WITH rocky_upsert AS (" + insert_head + "SELECT " + columns_list + metadata_values + " FROM " +
             distinct_source + upsert +
             " RETURNING (rocky_target.xmax = 0) AS fresh) SELECT count(*), count(*) "
             "FILTER (WHERE fresh) FROM rocky_upsert";
  } else {
    // Multiset difference: a row the target already holds (the boundary, a re-run after a crash) is not
    // appended again, and two identical source rows stay two.
    insert = insert_head + "SELECT " + columns_list + metadata_values + " FROM (SELECT " + columns_list +
             " FROM " + from_source + " EXCEPT ALL SELECT " + columns_list + " FROM " + target_sql +
             " WHERE " + target_where + ") AS rocky_new";
  }
  // On a staged window, the target's own predicate still needs $1; the staged read has none.
  const bool needs_param = !read.windowed || !merge;
  Result<PgResult> inserted =
      log.Run(tgt(), "window", insert, needs_param ? params : std::vector<std::string>{},
              "inserting into " + target.Qualified());
  if (!inserted.ok()) {
    if (!merge && inserted.status().message().find("[SQLSTATE 23505]") != std::string::npos) {
      return Status::InvalidArgument(
          inserted.status().message() +
          " (the source changed a row already copied, keeping its primary key; an "
          "incremental table only appends: use strategy = \"merge\" with merge_keys)");
    }
    return inserted.status();
  }
  const uint64_t changed =
      std::stoull(merge ? PQgetvalue(inserted->get(), 0, 0) : PQcmdTuples(inserted->get()));
  const uint64_t fresh = merge ? std::stoull(PQgetvalue(inserted->get(), 0, 1)) : changed;
  result.rows_copied = changed;
  result.rows_replaced = changed - fresh;
  if (request.count_rows) {
    result.target_rows = target_before + fresh;
    if (!target_marks.identity.empty()) {
      // This transaction's own marks hold rows already in target_rows (the next copy excludes them by its
      // id). A copy that wrote no row deletes them instead, so that an unchanged target keeps its version.
      bool own_marks_left = true;
      if (changed == 0) {
        own_marks_left =
            !InSavepoint(
                 tgt(),
                 "DELETE FROM rocky_meta.table_changes WHERE relid = $1::oid AND xid = pg_current_xact_id()",
                 {target_marks.relid})
                 .has_value();
      }
      const std::optional<std::string> own = own_marks_left ? OwnXid(tgt()) : std::optional<std::string>("0");
      if (target_marks.memo_holds && !own_marks_left) {
        result.target_rows_memo = request.target_rows_memo;
      } else if (own) {
        result.target_rows_memo = RowCountMemo{
            PgCountVersionText(target_marks.identity, target_marks.snapshot, *own), result.target_rows};
        after.clear.push_back(MarksCleared{&tgt(), target_marks.relid, target_marks.snapshot});
      }
    }
  }
  ROCKY_ASSIGN_OR_RETURN(result.max_timestamp, MaxCursor(tgt(), target_sql, *cursor, request.cursor_type,
                                                         target_where, params, target.Qualified(), log));
  return result;
}

}  // namespace

std::string PostgresSchemaName(std::string_view database, std::string_view catalog, std::string_view schema) {
  if (catalog == database) return std::string(schema);
  return std::string(catalog) + "." + std::string(schema);
}

bool PostgresUrlHasPassword(std::string_view url) {
  // Without libpq nothing can tell: treated as holding one, so that it is never written or shown.
  if (!dynload::Require(dynload::Library::kLibpq).ok()) return true;
  const auto options = ParseConninfo(url);
  return options && !Keyword(*options, "password").empty();
}

std::string DescribePostgresUrl(std::string_view url) {
  const auto options = ParseConninfo(url);
  if (!options) return "postgres:(invalid connection string)";
  const std::string user = Keyword(*options, "user");
  const std::string host =
      Keyword(*options, "host").empty() ? Keyword(*options, "hostaddr") : Keyword(*options, "host");
  const std::string port = Keyword(*options, "port");
  const std::string db = Keyword(*options, "dbname");
  const std::string sslmode = Keyword(*options, "sslmode");
  // Not a URL (no "//"): rocky's redaction of printed URLs (config::Redact) would hide the user and sslmode.
  std::string out = "postgres:";
  if (!user.empty()) out += user + "@";
  out += host.empty() ? "(default host)" : host;
  if (!port.empty()) out += ":" + port;
  out += "/" + (db.empty() ? (user.empty() ? std::string("(default database)") : user) : db);
  if (!sslmode.empty()) out += " (sslmode=" + sslmode + ")";
  return out;
}

Result<std::unique_ptr<Warehouse>> OpenPostgresWarehouse(const std::string& source_url,
                                                         const std::string& target_url,
                                                         const PostgresOptions& options) {
  if (target_url.empty() || source_url.empty())
    return Status::InvalidArgument("empty PostgreSQL connection string");
  ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<Session> target, Session::Connect(target_url));
  std::unique_ptr<Session> source;
  if (source_url != target_url) {
    ROCKY_ASSIGN_OR_RETURN(source, Session::Connect(source_url));
  }
  return std::unique_ptr<Warehouse>(
      std::make_unique<PostgresWarehouse>(std::move(source), std::move(target), target_url, options));
}

}  // namespace rocky::warehouse
