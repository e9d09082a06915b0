// A PostgreSQL warehouse through libpq: the server a data engineer's warehouse is, behind the same interface
// as the embedded SQLite one (warehouse.h), with the same guarantees (README "How a run keeps targets
// exact").
//
// Connection. `url` is a libpq connection string, a URI (postgresql://user:pw@host:5432/db?sslmode=require)
// or keywords (host=... dbname=... sslmode=verify-full); everything libpq reads is honoured (sslmode,
// sslrootcert, options=-c statement_timeout=..., PGPASSWORD, ~/.pgpass, ...). rocky adds connect_timeout=10
// and application_name=rocky unless the URL sets them, and sets TimeZone=UTC and client_encoding=UTF8 on
// its own sessions. The password never appears in any message: errors name the server as
// DescribePostgresUrl does, and any text a message would carry is scrubbed of the password.
//
// Mapping of catalog.schema.table onto the database the URL names (PostgreSQL has no catalogs across
// databases):
//   catalog equal to the database's name   ->  schema "<schema>",           table "<table>"
//   any other catalog                      ->  schema "<catalog>.<schema>", table "<table>"
// so `fivetran_catalog.src__acme__shopify.orders` in a database named fivetran_catalog is the schema a
// connector wrote (src__acme__shopify), and `acme_warehouse.staging__shopify.orders` in it is the schema
// "acme_warehouse.staging__shopify" (one identifier, with the dot inside: SELECT * FROM
// "acme_warehouse.staging__shopify".orders). Schema and table names longer than PostgreSQL's 63 bytes are
// refused (PostgreSQL would silently cut them). Discovery reads information_schema (schemata, tables:
// BASE TABLEs only, no views).
//
// Two servers. Sources are read through `source_url` and targets written through `target_url`. When the two
// strings are equal, one session does everything and a copy is one `INSERT ... SELECT` in one transaction.
// Otherwise the source's window streams into the target session with COPY (source: `COPY (SELECT ...) TO
// STDOUT` in a REPEATABLE READ READ ONLY transaction; target: `COPY ... FROM STDIN` into a temporary table
// that lives only in the target's transaction), and the target's statements run against that table, all in
// ONE target transaction: a copy killed at any instant (rocky, or either server) leaves the target as before.
// Routing: ListSchemas, ListTables and CursorIndexAdvice read the source side; TableExists, CountRows and
// MaxTimestamp the target side (what planning and re-deriving a lost state ask of each).
//
// Copies (see CopyRequest). Per copy, on the target: BEGIN ISOLATION LEVEL REPEATABLE READ (so the counts
// describe the snapshot copied), the statements, COMMIT. A full refresh creates the schema if missing, drops
// and creates the target with the source's column types (format_type), NOT NULL and primary key, copies,
// then builds an index on the cursor column (and, for merge, a unique index on merge_keys first) and
// ANALYZEs it. An incremental copy appends `SELECT cols FROM source WHERE window EXCEPT ALL SELECT cols FROM
// target WHERE window` (the multiset difference, so nothing is duplicated and nothing deleted); a merge runs
// `INSERT ... SELECT DISTINCT ON (merge_keys) ... ON CONFLICT (merge_keys) DO UPDATE ... WHERE the stored
// cursor is NULL or not newer`. The window is `cursor >= $1`, a bound parameter, which a btree index on
// the cursor column serves on both sides; the new watermark is the MAX of the target's window.
//
// Cursors: cursor_type = "timestamp" needs a `timestamp with time zone` or `timestamp without time zone`
// column (the latter read as UTC), or a text/varchar column of ISO-8601 timestamp texts, whose window is
// decided per copy as on SQLite (sqlite_warehouse.h: "text" or "instant", with the guard), in byte order
// (`col COLLATE "C"`, served by an index in that collation; the bounds written in as literals, no
// parameter) and `col::timestamptz` for instants; cursor_type = "integer" a smallint, integer or bigint.
// Other declared types are refused naming the column and type. Every statement goes through PQexecParams (the
// extended protocol, which refuses more than one statement) with the values as parameters; identifiers are
// always quoted; source types are pasted into CREATE TABLE only when internal::IsSafePgTypeName accepts them
// (no quotes: user-defined types with odd names are refused).
//
// Remembered row counts (CopyRequest::*_rows_memo; README "PostgreSQL"). PostgreSQL keeps no exact per-table
// change marker, so rocky makes one: per database, rocky_meta.table_changes(relid, xid) and a trigger
// function (SECURITY DEFINER, owned by rocky's role) that inserts (TG_RELID, the writer's transaction id); a
// marked table has the statement-level trigger rocky_mark_changes AFTER INSERT OR UPDATE OR DELETE OR
// TRUNCATE, enabled ALWAYS (it also fires under session_replication_role = replica). Every writing statement
// thus leaves, in its own transaction, a row that becomes visible exactly when its changes do. A count is
// remembered as "pg1:<system id>:<timeline>:<relid>:<trigger oid>:<trigger xmin>:<function xmin>:<marks table
// oid>:<postmaster start, us>:<snapshot>:<own xid>" (the snapshot the count was taken in; own xid: the copy's
// transaction, for a target's count after the copy, which includes that transaction's rows; else 0), and
// reused when, in the copy's transaction: the server and its WAL timeline are the same (a promotion or a
// point-in-time recovery moves the timeline, after which transaction ids may be reused) and was not restarted
// since (a data directory restored from a file-level copy reuses transaction ids on the same timeline), the
// server is not in recovery (a hot standby's pg_current_snapshot() omits the transactions in progress), the
// table is the same (relid), a plain permanent table (not UNLOGGED, which crash recovery empties unmarked)
// neither parent nor child in an inheritance or partition tree (a statement on a parent fires none of its
// children's statement triggers) and not in a subscription, the trigger and the function are the very rows
// the count was taken under (a DISABLE TRIGGER, a drop or a replacement changes their xmin), and no marks row
// is visible whose transaction the remembered snapshot did not see (other than own xid): every transaction
// that changed the table since was seen by that snapshot, so the count still holds. Anything else, any error
// on this path, or a server older than 13: the table is counted. Targets are marked when a full refresh
// creates them (in its transaction) and, for targets made before, by a short transaction after a copy (the
// next copy counts once more, then remembers); sources only with PostgresOptions::mark_source_changes, the
// same way. After a new count is remembered, the marks it accounts for are deleted in a short transaction,
// recorded in rocky_meta.table_changes_cleared so that an older remembered count (an older state file) is
// never judged by marks that are gone.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "warehouse.h"

namespace rocky::warehouse {

// How rows cross between two servers (the benchmark measures both; COPY is the default because it is faster,
// see bench/README.md "PostgreSQL").
enum class PostgresTransfer : unsigned char {
  kCopy,    // COPY (SELECT ...) TO STDOUT streamed into COPY ... FROM STDIN, text format
  kInsert,  // a cursor FETCHed in batches, each batch one prepared multi-row INSERT
};

struct PostgresOptions {
  PostgresTransfer transfer = PostgresTransfer::kCopy;
  size_t insert_batch_rows = 1000;  // kInsert: rows per INSERT (and per FETCH)
  // With CopyRequest::count_rows, count the source while the target is counted: between two servers on the
  // source's session; on one server on a second session of the same server, opened at the first such copy and
  // kept, whose transaction imports the copy's snapshot (pg_export_snapshot / SET TRANSACTION SNAPSHOT), so
  // both counts describe the snapshot copied. When that session cannot be opened or set up, the source is
  // counted on the copy's own session, as with false.
  bool concurrent_counts = true;
  // With CopyRequest::count_rows, also mark the SOURCE tables' changes (the adapter's mark_source_changes;
  // targets are always marked): rocky installs its change-marking trigger on a source table it reads (it must
  // own the table; otherwise the copy says so in CopyResult::warnings and counts), so that the source's
  // remembered count is reused while no transaction changed the table. See "Remembered row counts" above.
  bool mark_source_changes = false;
};

// Connects to both servers (one session when the strings are equal). kIOError naming the server (never the
// password) when a connection fails: unreachable, wrong password, TLS required but refused, no such database.
Result<std::unique_ptr<Warehouse>> OpenPostgresWarehouse(const std::string& source_url,
                                                         const std::string& target_url,
                                                         const PostgresOptions& options = {});

// A printable name of the server a connection string names: "postgres:USER@HOST:PORT/DBNAME" (with
// " (sslmode=MODE)" when set), never the password. An unparsable string gives
// "postgres:(invalid connection string)".
std::string DescribePostgresUrl(std::string_view url);

// True when the connection string carries a password (password=..., or user:password@ in a URI).
bool PostgresUrlHasPassword(std::string_view url);

// The schema catalog.schema maps to in a database named `database` (see above).
std::string PostgresSchemaName(std::string_view database, std::string_view catalog, std::string_view schema);

}  // namespace rocky::warehouse
