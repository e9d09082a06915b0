// rocky.toml: the configuration of a rocky project, loaded and validated in one place so that every command
// and every layer sees the same typed values (or one clear error naming the file, line and column).
//
//   auto config = config::LoadConfigFile("rocky.toml", config::ProcessEnvironment());
//   if (!config.ok()) { print config.status().message(); exit 1; }
//
// The file, with every key this build knows (defaults shown; unknown keys are errors, so a typo never
// silently falls back to a default):
//
//   [adapter]
//   type = "sqlite"                      # the embedded default warehouse; or "postgres"
//   path = "warehouse"                   # sqlite: folder, relative to the folder holding rocky.toml
//   url = "${PG_URL}"                    # postgres (required): a libpq URI or keyword string; never printed
//   mark_source_changes = false          # postgres: may rocky put a change-marking trigger on the source
//                                        # tables it reads, so checks reuse their counts (README
//                                        "PostgreSQL")
//
//   Or several named adapters (Rocky's form), which pipelines name as their source and target:
//   [adapter.src]  type = "postgres"  url = "${SRC_URL}"
//   [adapter.dwh]  type = "postgres"  url = "${DWH_URL}"
//   [pipeline.bronze.source]  adapter = "src"   # default: "default" (the unnamed [adapter]), or the only one
//   [pipeline.bronze.target]  adapter = "dwh"
//   A pipeline's two adapters have one type (sqlite: the same adapter), checked at load; pipelines may use
//   different pairs (each pair is one warehouse, opened once; the state stays one file, keyed by target).
//
//   [state]
//   backend = "local"                    # local | s3 | valkey | tiered
//   s3_bucket = "${ROCKY_STATE_BUCKET}"  # required by s3 and tiered
//   s3_prefix = "rocky/state/"
//   s3_region = "..."                    # optional; else AWS_REGION / AWS_DEFAULT_REGION
//   s3_endpoint = "http://127.0.0.1:9000"  # optional; path-style custom endpoint (MinIO, Ceph, R2...)
//   valkey_url = "${VALKEY_URL}"         # required by valkey and tiered
//   valkey_prefix = "rocky:state:"
//   valkey_ca_file = "certs/ca.pem"      # optional; rediss:// trusts it instead of the system store
//   transfer_timeout_seconds = 300
//   upload_interval_seconds = 60         # a run also uploads between tables this often; 0: after every table
//   on_upload_failure = "skip"           # skip | fail
//   lease_seconds = 60                   # remote backends: how long a run's lease lasts unless renewed
//   [state.retry]
//   max_retries = 3
//   initial_backoff_ms = 1000
//   max_backoff_ms = 30000
//   backoff_multiplier = 2.0
//   jitter = true
//   circuit_breaker_threshold = 5        # 0 disables the breaker
//   circuit_breaker_recovery_timeout_seconds = 60
//   max_retries_per_run = 10
//
//   [pipeline.bronze]                    # any number of pipelines, each named
//   type = "replication"                 # the only pipeline type so far
//   timestamp_column = "_fivetran_synced"   # the cursor column (Rocky's name, whatever its type)
//   cursor_type = "timestamp"            # timestamp | integer (an auto-increment id, a version counter)
//   strategy = "incremental"             # incremental | full_refresh | merge (Rocky's names)
//   merge_keys = ["id"]                  # required by strategy = "merge", refused otherwise
//   lookback_seconds = 0                 # merge + timestamp only: re-read from watermark - N (late rows)
//   metadata_columns = [{ name = "_loaded_by", type = "STRING", value = "NULL" }]
//   [pipeline.bronze.source]
//   catalog = "fivetran_catalog"         # required
//   schema_pattern = { prefix = "src__", separator = "__", components = ["tenant", "regions...", "source"] }
//   [pipeline.bronze.target]
//   catalog_template = "{tenant}_warehouse"            # required
//   schema_template = "staging__{regions}__{source}"   # required
//   [pipeline.bronze.checks]
//   enabled = false
//   row_count = false
//   freshness = { threshold_seconds = 86400 }          # optional
//   anomaly_threshold_pct = 50.0
//   history_length = 10                  # row counts kept per table
//   min_history = 3                      # previous counts needed before an anomaly verdict
//
// Any string value may use ${VAR} (an unset variable is an error naming it and the line) and ${VAR:-default}
// (the default when VAR is unset or empty); `$$` is a literal `$`. Substitution runs on string values after
// TOML parsing, so a value can never change the file's structure, and it is not re-scanned. A default is
// literal text (no nested ${...}); any other `$` is an error, so a shell-style `$HOME` never silently stays
// as text. Numbers and booleans are TOML values and cannot come from the environment.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rocky/base/status.h"

namespace rocky::config {

using base::Result;
using base::Status;

// The file commands read when --config is not given (relative to the working directory).
inline constexpr std::string_view kDefaultConfigPath = "rocky.toml";

enum class StateBackend : unsigned char { kLocal, kS3, kValkey, kTiered };
enum class UploadFailurePolicy : unsigned char { kSkip, kFail };

// "local", "s3", "valkey", "tiered" / "skip", "fail": the spellings the file uses.
std::string_view ToString(StateBackend backend);
std::string_view ToString(UploadFailurePolicy policy);

struct RetryConfig {
  uint32_t max_retries = 3;            // per transfer
  uint64_t initial_backoff_ms = 1000;  // 0 allowed: retry at once
  uint64_t max_backoff_ms = 30000;     // >= initial_backoff_ms
  double backoff_multiplier = 2.0;     // >= 1.0
  bool jitter = true;
  uint32_t circuit_breaker_threshold = 5;  // consecutive failures that open the breaker; 0 disables it
  uint64_t circuit_breaker_recovery_timeout_seconds = 60;  // > 0
  uint32_t max_retries_per_run = 10;                       // shared by every transfer of one run
};

struct StateConfig {
  StateBackend backend = StateBackend::kLocal;
  std::string s3_bucket;  // non-empty when backend is s3 or tiered
  std::string s3_prefix = "rocky/state/";
  std::string s3_region;    // empty: from the environment at transfer time
  std::string s3_endpoint;  // empty: AWS (or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL at transfer time)
  std::string valkey_url;   // non-empty when backend is valkey or tiered; holds a password: never print it
  std::string valkey_prefix = "rocky:state:";
  // The PEM file of the CA(s) a TLS Valkey URL (rediss://, valkeys://) is verified against, resolved like
  // adapter.path against the folder holding the config file. Empty: the system's trust store.
  std::string valkey_ca_file;
  uint64_t transfer_timeout_seconds = 300;  // > 0
  // How often a long run uploads the state between tables (as well as at the end), bounding what a crash
  // loses from the remote copy; 0 uploads after every table.
  uint64_t upload_interval_seconds = 60;
  UploadFailurePolicy on_upload_failure = UploadFailurePolicy::kSkip;
  // The lease a command that changes a remote state holds (sync/state_lease.h): how long it lasts after its
  // holder last renewed it; renewed every third of it. >= 1. 60 s because: a holder that dies (SIGKILL, a
  // lost pod) blocks the next runner for at most this (plus a second); a holder tolerates a backend outage of
  // up to two thirds of it (40 s, about two missed renewals) before it loses the lease and stops; and it
  // costs one request per 20 s of run, a few cents a year per pipeline on S3.
  uint64_t lease_seconds = 60;
  RetryConfig retry;
};

struct AdapterConfig {
  std::string name = "default";  // [adapter.NAME]'s NAME; "default" for the unnamed [adapter]
  std::string type = "sqlite";   // "sqlite" | "postgres"
  // sqlite: the warehouse folder, already resolved against the folder holding the config file (so it is
  // usable as is from any working directory): LoadConfigFile makes that folder absolute; ParseConfig uses
  // base_dir as given (relative stays relative). Never empty for sqlite; empty for postgres.
  std::string path;
  // postgres: the libpq connection string (URI or keywords), non-empty. It may hold a password: never print
  // it (warehouse::DescribeAdapter gives a printable form).
  std::string url;
  // postgres: when this adapter is a pipeline's source, rocky may install a statement-level trigger on the
  // source tables it reads (one small insert into rocky_meta.table_changes per writing statement), so that
  // a copy with checks reuses the source's remembered row count while the table is unchanged instead of
  // counting it. Off by default: the trigger lands on tables rocky does not own (README "PostgreSQL").
  bool mark_source_changes = false;
};

// How source schema names are split into named components: "src__acme__us_west__shopify" with prefix
// "src__", separator "__" and components ["tenant", "regions...", "source"] gives tenant=acme,
// regions=us_west, source=shopify. A component ending in "..." takes one or more parts (at most one such
// component per pattern).
struct SchemaPattern {
  std::string prefix;
  std::string separator = "__";
  std::vector<std::string> components;  // non-empty, names of [A-Za-z0-9_] unique (without the "..." suffix)
};

// A column added to every copied row: `SELECT *, CAST(<value> AS <type>) AS <name>`. All three keys are
// required and non-empty; names are unique within a pipeline.
struct MetadataColumn {
  std::string name;
  std::string type;   // SQL type name, e.g. "STRING"
  std::string value;  // SQL expression, e.g. "NULL" or "'rocky'"
};

struct FreshnessCheck {
  uint64_t threshold_seconds = 0;  // > 0
};

struct ChecksConfig {
  bool enabled = false;    // master switch: nothing below runs when false
  bool row_count = false;  // source count must equal target count after the copy
  std::optional<FreshnessCheck> freshness;
  double anomaly_threshold_pct = 50.0;  // > 0
  uint32_t history_length = 10;         // >= 1
  uint32_t min_history = 3;             // >= 1, <= history_length
};

// How a pipeline's tables are copied (rocky.toml `strategy`, Rocky's names):
//   incremental   append the source's rows at or above the watermark that the target does not hold yet
//   full_refresh  every run replaces the target with the whole source
//   merge         upsert the rows at or above the watermark on merge_keys (an updated row replaces its old
//                 version instead of appearing twice)
enum class Strategy : unsigned char { kIncremental, kFullRefresh, kMerge };
// What the cursor column (timestamp_column) holds: ISO-8601 timestamps compared as instants, or integers
// compared as numbers (the watermark then keeps the integer exactly).
enum class CursorType : unsigned char { kTimestamp, kInteger };

// "incremental", "full_refresh", "merge" / "timestamp", "integer".
std::string_view ToString(Strategy strategy);
std::string_view ToString(CursorType type);

struct PipelineConfig {
  std::string name;  // the NAME of [pipeline.NAME]; [A-Za-z0-9_-]+, so it needs no quoting anywhere
  std::string type = "replication";
  std::string timestamp_column = "_fivetran_synced";
  CursorType cursor_type = CursorType::kTimestamp;
  Strategy strategy = Strategy::kIncremental;
  // Non-empty exactly when strategy is kMerge (checked at load, with file:line:column); unique names.
  std::vector<std::string> merge_keys;
  // Non-zero only with strategy kMerge and a timestamp cursor (checked at load): an incremental table would
  // append the re-read rows a second time, and an integer has no seconds.
  uint64_t lookback_seconds = 0;
  std::vector<MetadataColumn> metadata_columns;
  // The adapters this pipeline reads from and writes to ([pipeline.NAME.source] / [pipeline.NAME.target]
  // `adapter`), resolved at load: always names of Config::adapters.
  std::string source_adapter;
  std::string target_adapter;
  std::string source_catalog;
  SchemaPattern schema_pattern;
  // Placeholders {component} from schema_pattern (without "..."); unknown ones and unbalanced braces are
  // errors.
  std::string catalog_template;
  std::string schema_template;
  ChecksConfig checks;
};

struct Config {
  std::string source_path;  // the file it was loaded from
  // Every adapter, in name order (one, "default", for the unnamed [adapter] or none at all).
  std::vector<AdapterConfig> adapters;
  // The first pipeline's target adapter (without pipelines, "default" or the first one): what a plan names
  // when there are no pipelines. Each pipeline's own pair is in PipelineConfig.
  AdapterConfig adapter;
  StateConfig state;
  std::vector<PipelineConfig> pipelines;  // in name order
};

// The adapter named `name`, or nullptr.
const AdapterConfig* FindAdapter(const Config& config, std::string_view name);

// Looks up an environment variable; nullopt when unset. Tests pass a map-backed one.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

// getenv. Thread-safe as long as nobody calls setenv concurrently.
EnvLookup ProcessEnvironment();

// Parses and validates `text` as rocky.toml. `source_name` is used in messages ("rocky.toml:12:5: ...") and
// `base_dir` resolves adapter.path. Every error is kInvalidArgument, one line, naming the file, line and
// column (and the key, the variable or the allowed values as relevant); it never contains the value of a
// variable (it may be a secret): a bad value that came from ${VAR} is reported as "a value from ${VAR} (not
// shown)". Never throws (toml++'s exceptions, and any thrown by `env`, become kInvalidArgument).
Result<Config> ParseConfig(std::string_view text, std::string_view source_name, std::string_view base_dir,
                           const EnvLookup& env);

// Reads and parses a file. A missing file is kNotFound naming the path; an unreadable one or a directory is
// kIOError naming it.
Result<Config> LoadConfigFile(const std::string& path, const EnvLookup& env);

// A URL (valkey_url, s3_endpoint, ...) made safe to print: "redis://user:secret@host:6379/0" ->
// "redis://user:***@host:6379/0". The password runs from the first ':' of the userinfo to the LAST '@', so an
// unescaped '@' or '/' in it is hidden too; a userinfo without ':' ("http://TOKEN@host") is hidden whole;
// every query value is hidden ("?password=***&db=***"). A URL with none of these is unchanged.
std::string RedactUrl(std::string_view url);

// The one redaction of rocky: every text about to be printed (an error, a warning, an event, JSON, doctor)
// that may hold a URL or a server's words goes through it. Hides every occurrence of each of `secrets` (and
// its percent-encoded form: passwords and keys the caller knows, e.g. from rocky.toml), the arguments
// Redis and Valkey echo after "with args beginning with:", and in every URL in the text (scheme://...) what
// RedactUrl hides. Idempotent.
std::string Redact(std::string_view text, const std::vector<std::string>& secrets = {});

// The secrets `config` holds, for Redact: the valkey_url's password (as written and percent-decoded), any
// userinfo in s3_endpoint, and each postgres adapter's password (a URI's userinfo, or a password= keyword in
// libpq's keyword form or a URI's query).
std::vector<std::string> SecretsOf(const Config& config);

}  // namespace rocky::config
