#include "rocky/warehouse/sample_warehouse.h"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <filesystem>
#include <random>
#include <string_view>
#include <system_error>

#include "rocky/dynload/dynload.h"
#include "rocky/warehouse/postgres_warehouse.h"
#include "rocky/warehouse/sqlite_warehouse.h"

namespace rocky::warehouse {
namespace {

constexpr std::string_view kCatalog = "fivetran_catalog";

struct TableSpec {
  std::string_view schema;
  std::string_view table;
  std::string_view columns;  // after id, before _fivetran_synced
  uint64_t rows;
  std::string_view pg_columns;  // the same columns in PostgreSQL's types
};

// Four tables in three schemas: two tenants, one of them in two regions, as discovery will map them.
constexpr TableSpec kTables[] = {
    {"src__acme__eu_central__stripe", "charges", "amount_cents INTEGER NOT NULL, currency TEXT NOT NULL",
     1500, "amount_cents integer NOT NULL, currency text NOT NULL"},
    {"src__acme__us_west__shopify", "customers", "email TEXT NOT NULL, country TEXT NOT NULL", 500,
     "email text NOT NULL, country text NOT NULL"},
    {"src__acme__us_west__shopify", "orders", "customer_id INTEGER NOT NULL, total REAL NOT NULL", 2000,
     "customer_id integer NOT NULL, total double precision NOT NULL"},
    {"src__globex__us_east__shopify", "orders", "customer_id INTEGER NOT NULL, total REAL NOT NULL", 1200,
     "customer_id integer NOT NULL, total double precision NOT NULL"},
};

// Closes the connection on every path.
struct Connection {
  sqlite3* db = nullptr;
  ~Connection() { sqlite3_close(db); }
};

Status SqlError(sqlite3* db, const std::string& file, std::string_view what) {
  return Status::IOError("sample warehouse " + file + ": " + std::string(what) + ": " + sqlite3_errmsg(db));
}

Status Exec(sqlite3* db, const std::string& file, const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    return Status::IOError("sample warehouse " + file + ": " + text);
  }
  return Status::OK();
}

Status FillTable(sqlite3* db, const std::string& file, const TableSpec& spec, std::mt19937_64& rng,
                 std::chrono::system_clock::time_point now) {
  ROCKY_RETURN_IF_ERROR(Exec(db, file,
                             "CREATE TABLE \"" + std::string(spec.table) + "\" (id INTEGER PRIMARY KEY, " +
                                 std::string(spec.columns) + ", _fivetran_synced TEXT NOT NULL)"));
  // SQLite formats the time itself (RFC 3339 UTC, as Fivetran writes _fivetran_synced).
  const std::string insert = "INSERT INTO \"" + std::string(spec.table) +
                             "\" VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%SZ', ?4, 'unixepoch'))";
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, insert.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
    return SqlError(db, file, "prepare");
  // Rows arrive in time order over 30 days, the last one five minutes before now.
  const auto newest = now - std::chrono::minutes(5);
  const std::chrono::seconds span = std::chrono::hours(24 * 30);
  static constexpr std::string_view kCountries[] = {"US", "DE", "FR", "BR", "JP"};
  static constexpr std::string_view kCurrencies[] = {"usd", "eur", "gbp"};
  Status status;
  for (uint64_t i = 1; i <= spec.rows && status.ok(); ++i) {
    const auto at = newest - span + span * static_cast<int64_t>(i) / static_cast<int64_t>(spec.rows);
    const auto synced = std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count();
    sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(i));
    if (spec.table == "charges") {
      sqlite3_bind_int64(stmt, 2, static_cast<sqlite3_int64>(100 + rng() % 50000));
      const std::string_view currency = kCurrencies[rng() % 3];
      sqlite3_bind_text(stmt, 3, currency.data(), static_cast<int>(currency.size()), SQLITE_TRANSIENT);
    } else if (spec.table == "customers") {
      const std::string email = "customer" + std::to_string(i) + "@example.com";
      sqlite3_bind_text(stmt, 2, email.c_str(), -1, SQLITE_TRANSIENT);
      const std::string_view country = kCountries[rng() % 5];
      sqlite3_bind_text(stmt, 3, country.data(), static_cast<int>(country.size()), SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_int64(stmt, 2, static_cast<sqlite3_int64>(1 + rng() % 500));
      sqlite3_bind_double(stmt, 3, static_cast<double>(500 + rng() % 30000) / 100.0);
    }
    sqlite3_bind_int64(stmt, 4, static_cast<sqlite3_int64>(synced));
    if (sqlite3_step(stmt) != SQLITE_DONE) status = SqlError(db, file, "insert");
    sqlite3_reset(stmt);
  }
  sqlite3_finalize(stmt);
  return status;
}

// The values of row `i` of `spec`, as the SQLite sample binds them (the same generator, so both samples hold
// the same rows): the two columns between id and _fivetran_synced, and the seconds since the epoch.
struct SampleRow {
  std::string a, b;
  int64_t synced = 0;
};

SampleRow MakeRow(const TableSpec& spec, uint64_t i, std::mt19937_64& rng,
                  std::chrono::system_clock::time_point now) {
  static constexpr std::string_view kCountries[] = {"US", "DE", "FR", "BR", "JP"};
  static constexpr std::string_view kCurrencies[] = {"usd", "eur", "gbp"};
  const auto newest = now - std::chrono::minutes(5);
  const std::chrono::seconds span = std::chrono::hours(24 * 30);
  const auto at = newest - span + span * static_cast<int64_t>(i) / static_cast<int64_t>(spec.rows);
  SampleRow row;
  row.synced = std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count();
  if (spec.table == "charges") {
    row.a = std::to_string(100 + rng() % 50000);
    row.b = std::string(kCurrencies[rng() % 3]);
  } else if (spec.table == "customers") {
    row.a = "customer" + std::to_string(i) + "@example.com";
    row.b = std::string(kCountries[rng() % 5]);
  } else {
    row.a = std::to_string(1 + rng() % 500);
    char total[32];
    std::snprintf(total, sizeof total, "%.2f", static_cast<double>(500 + rng() % 30000) / 100.0);
    row.b = total;
  }
  return row;
}

}  // namespace

Result<SampleWarehouse> CreatePostgresSampleWarehouse(const std::string& url, bool overwrite,
                                                      std::chrono::system_clock::time_point now) {
  ROCKY_RETURN_IF_ERROR(dynload::Require(dynload::Library::kLibpq));
  const std::string server = DescribePostgresUrl(url);
  const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "rocky", url.c_str(), nullptr};
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdbParams(keywords, values, 1), &PQfinish);
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    // The warehouse's own connection gives the scrubbed message; this one only says where.
    auto opened = OpenPostgresWarehouse(url, url);
    return opened.ok() ? Status::IOError("connecting to " + server) : opened.status();
  }
  auto exec = [&](const std::string& sql, const std::vector<std::string>& params) -> Result<int> {
    std::vector<const char*> v;
    for (const std::string& p : params) v.push_back(p.c_str());
    std::unique_ptr<PGresult, decltype(&PQclear)> r(
        PQexecParams(conn.get(), sql.c_str(), static_cast<int>(v.size()), nullptr, v.data(), nullptr, nullptr,
                     0),
        &PQclear);
    const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      const char* m = r ? PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
      return Status::IOError("sample warehouse on " + server + ": " +
                             (m != nullptr ? m : "the connection failed"));
    }
    return PQntuples(r.get());
  };
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  std::string database;
  {
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(conn.get(), "SELECT current_database()"),
                                                    &PQclear);
    if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK)
      return Status::IOError("sample warehouse on " + server);
    database = PQgetvalue(r.get(), 0, 0);
  }
  ROCKY_RETURN_IF_ERROR(exec("BEGIN", {}).status());
  std::mt19937_64 rng(20250315);  // the SQLite sample's seed and order: the same rows
  SampleWarehouse sample;
  std::string_view current_schema;
  for (const TableSpec& spec : kTables) {
    const std::string schema = PostgresSchemaName(database, kCatalog, spec.schema);
    const std::string quoted_schema = "\"" + schema + "\"";
    if (spec.schema != current_schema) {
      current_schema = spec.schema;
      ROCKY_ASSIGN_OR_RETURN(
          int found, exec("SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", {schema}));
      if (found > 0 && !overwrite) {
        return Status::InvalidArgument("sample schema \"" + schema + "\" already exists on " + server);
      }
      ROCKY_RETURN_IF_ERROR(exec("DROP SCHEMA IF EXISTS " + quoted_schema + " CASCADE", {}).status());
      ROCKY_RETURN_IF_ERROR(exec("CREATE SCHEMA " + quoted_schema, {}).status());
    }
    const std::string table = quoted_schema + ".\"" + std::string(spec.table) + "\"";
    ROCKY_RETURN_IF_ERROR(exec("CREATE TABLE " + table + " (id bigint PRIMARY KEY, " +
                                   std::string(spec.pg_columns) +
                                   ", _fivetran_synced timestamp with time zone NOT NULL)",
                               {})
                              .status());
    const std::string insert = "INSERT INTO " + table + " VALUES ($1, $2, $3, to_timestamp($4))";
    for (uint64_t i = 1; i <= spec.rows; ++i) {
      SampleRow row = MakeRow(spec, i, rng, now);
      ROCKY_RETURN_IF_ERROR(
          exec(insert, {std::to_string(i), row.a, row.b, std::to_string(row.synced)}).status());
    }
    sample.tables.push_back(SampleTable{
        TableRef{std::string(kCatalog), std::string(spec.schema), std::string(spec.table)}, spec.rows});
  }
  ROCKY_RETURN_IF_ERROR(exec("COMMIT", {}).status());
  return sample;
}

Result<SampleWarehouse> CreateSampleWarehouse(const std::string& folder, bool overwrite,
                                              std::chrono::system_clock::time_point now) {
  const std::filesystem::path catalog_dir = std::filesystem::path(folder) / kCatalog;
  std::error_code ec;
  std::filesystem::create_directories(catalog_dir, ec);
  if (ec)
    return Status::IOError("cannot create the sample warehouse folder " + catalog_dir.string() + ": " +
                           ec.message());

  std::mt19937_64 rng(20250315);  // fixed seed: the same sample on every machine
  SampleWarehouse sample;
  std::string_view current_schema;
  for (size_t i = 0; i < std::size(kTables); ++i) {
    const TableSpec& spec = kTables[i];
    if (spec.schema == current_schema) continue;  // filled with its schema below
    current_schema = spec.schema;
    const std::string file = (catalog_dir / (std::string(spec.schema) + ".sqlite")).string();
    if (std::filesystem::exists(file, ec)) {
      if (!overwrite) return Status::InvalidArgument("sample warehouse file " + file + " already exists");
      std::filesystem::remove(file, ec);
      if (ec) return Status::IOError("cannot replace " + file + ": " + ec.message());
    }
    Connection conn;
    ROCKY_RETURN_IF_ERROR(CreatePrivateFileIfMissing(file));  // 0600, as every file rocky creates
    if (sqlite3_open(file.c_str(), &conn.db) != SQLITE_OK) return SqlError(conn.db, file, "open");
    ROCKY_RETURN_IF_ERROR(Exec(conn.db, file, "BEGIN"));
    for (size_t j = i; j < std::size(kTables) && kTables[j].schema == spec.schema; ++j) {
      ROCKY_RETURN_IF_ERROR(FillTable(conn.db, file, kTables[j], rng, now));
      sample.tables.push_back(SampleTable{
          TableRef{std::string(kCatalog), std::string(kTables[j].schema), std::string(kTables[j].table)},
          kTables[j].rows});
    }
    ROCKY_RETURN_IF_ERROR(Exec(conn.db, file, "COMMIT"));
  }
  return sample;
}

}  // namespace rocky::warehouse
