// rocky.toml: every key parsed, the defaults, each class of error with its file:line:col, ${VAR}
// substitution, secrets kept out of messages, loading files and redacting URLs.
#include "rocky/config/config.h"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "temp_dir.h"

namespace {

using namespace rocky::config;
using Code = rocky::base::Status::Code;

using Vars = std::map<std::string, std::string>;

EnvLookup MapEnv(Vars vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

Result<Config> Parse(std::string_view text, const Vars& vars = {}) {
  return ParseConfig(text, "rocky.toml", "/proj", MapEnv(vars));
}

Config ParseOk(std::string_view text, const Vars& vars = {}) {
  auto config = Parse(text, vars);
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  return *config;
}

// The message of a config that must fail; every one is kInvalidArgument, on one line, naming the file.
std::string ErrorOf(std::string_view text, const Vars& vars = {}) {
  auto config = Parse(text, vars);
  REQUIRE_FALSE(config.ok());
  std::string message = config.status().message();
  CHECK(config.status().code() == Code::kInvalidArgument);
  CHECK_MESSAGE(message.find('\n') == std::string::npos, message);
  CHECK_MESSAGE(message.rfind("rocky.toml:", 0) == 0, message);
  return message;
}

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// Checks that `message` starts with the position and contains every part.
void ExpectMessage(const std::string& message, std::string_view position,
                   std::vector<std::string_view> parts) {
  INFO(message);
  CHECK(message.rfind(std::string("rocky.toml:") + std::string(position) + ": ", 0) == 0);
  for (std::string_view part : parts) CHECK_MESSAGE(Contains(message, part), part);
}

// A pipeline with only its required keys, to which a test adds or changes one thing.
constexpr std::string_view kMinimalPipeline = R"([pipeline.p.source]
catalog = "c"
schema_pattern = { components = ["tenant", "source"] }
[pipeline.p.target]
catalog_template = "{tenant}_wh"
schema_template = "s__{source}"
)";

std::string WithPipeline(std::string_view extra) {
  return std::string(kMinimalPipeline) + std::string(extra);
}

using TempDir = rocky_test::TempDir;  // tests/support/temp_dir.h

void WriteFile(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

}  // namespace

TEST_CASE("a config with every key parses to the values written") {
  Config c = ParseOk(R"(
[adapter]
type = "sqlite"
path = "data/wh"

[state]
backend = "tiered"
s3_bucket = "${BUCKET}"
s3_prefix = "team/state/"
s3_region = "eu-west-1"
s3_endpoint = "http://127.0.0.1:9000"
valkey_url = "${VALKEY_URL}"
valkey_prefix = "team:state:"
transfer_timeout_seconds = 120
upload_interval_seconds = 0
on_upload_failure = "fail"
lease_seconds = 15

[state.retry]
max_retries = 5
initial_backoff_ms = 200
max_backoff_ms = 5000
backoff_multiplier = 1.5
jitter = false
circuit_breaker_threshold = 0
circuit_breaker_recovery_timeout_seconds = 30
max_retries_per_run = 20

[pipeline.silver]
type = "replication"
timestamp_column = "_synced_at"
metadata_columns = [{ name = "_loaded_by", type = "STRING", value = "'rocky'" },
                    { name = "_batch", type = "BIGINT", value = "NULL" }]
[pipeline.silver.source]
catalog = "fivetran_catalog"
schema_pattern = { prefix = "src__", separator = "__", components = ["tenant", "regions...", "source"] }
[pipeline.silver.target]
catalog_template = "{tenant}_warehouse"
schema_template = "staging__{regions}__{source}"
[pipeline.silver.checks]
enabled = true
row_count = true
freshness = { threshold_seconds = 86400 }
anomaly_threshold_pct = 25.5
history_length = 20
min_history = 5

[pipeline.bronze.source]
catalog = "raw"
schema_pattern = { components = ["source"] }
[pipeline.bronze.target]
catalog_template = "bronze"
schema_template = "{source}"
)",
                     {{"BUCKET", "acme-state"}, {"VALKEY_URL", "redis://u:pw@cache:6379/0"}});

  CHECK(c.source_path == "rocky.toml");
  CHECK(c.adapter.type == "sqlite");
  CHECK(c.adapter.path == "/proj/data/wh");

  CHECK(c.state.backend == StateBackend::kTiered);
  CHECK(c.state.s3_bucket == "acme-state");
  CHECK(c.state.s3_prefix == "team/state/");
  CHECK(c.state.s3_region == "eu-west-1");
  CHECK(c.state.s3_endpoint == "http://127.0.0.1:9000");
  CHECK(c.state.valkey_url == "redis://u:pw@cache:6379/0");
  CHECK(c.state.valkey_prefix == "team:state:");
  CHECK(c.state.transfer_timeout_seconds == 120);
  CHECK(c.state.upload_interval_seconds == 0);
  CHECK(c.state.on_upload_failure == UploadFailurePolicy::kFail);
  CHECK(c.state.lease_seconds == 15);
  CHECK(c.state.retry.max_retries == 5);
  CHECK(c.state.retry.initial_backoff_ms == 200);
  CHECK(c.state.retry.max_backoff_ms == 5000);
  CHECK(c.state.retry.backoff_multiplier == 1.5);
  CHECK(c.state.retry.jitter == false);
  CHECK(c.state.retry.circuit_breaker_threshold == 0);
  CHECK(c.state.retry.circuit_breaker_recovery_timeout_seconds == 30);
  CHECK(c.state.retry.max_retries_per_run == 20);

  // In name order, not file order.
  REQUIRE(c.pipelines.size() == 2);
  const PipelineConfig& bronze = c.pipelines[0];
  CHECK(bronze.name == "bronze");
  CHECK(bronze.type == "replication");
  CHECK(bronze.timestamp_column == "_fivetran_synced");
  CHECK(bronze.metadata_columns.empty());
  CHECK(bronze.source_catalog == "raw");
  CHECK(bronze.schema_pattern.prefix == "");
  CHECK(bronze.schema_pattern.separator == "__");
  CHECK(bronze.schema_pattern.components == std::vector<std::string>{"source"});
  CHECK(bronze.catalog_template == "bronze");
  CHECK(bronze.schema_template == "{source}");
  CHECK(bronze.checks.enabled == false);
  CHECK_FALSE(bronze.checks.freshness.has_value());

  const PipelineConfig& p = c.pipelines[1];
  CHECK(p.name == "silver");
  CHECK(p.type == "replication");
  CHECK(p.timestamp_column == "_synced_at");
  REQUIRE(p.metadata_columns.size() == 2);
  CHECK(p.metadata_columns[0].name == "_loaded_by");
  CHECK(p.metadata_columns[0].type == "STRING");
  CHECK(p.metadata_columns[0].value == "'rocky'");
  CHECK(p.metadata_columns[1].name == "_batch");
  CHECK(p.metadata_columns[1].type == "BIGINT");
  CHECK(p.metadata_columns[1].value == "NULL");
  CHECK(p.source_catalog == "fivetran_catalog");
  CHECK(p.schema_pattern.prefix == "src__");
  CHECK(p.schema_pattern.separator == "__");
  CHECK(p.schema_pattern.components == std::vector<std::string>{"tenant", "regions...", "source"});
  CHECK(p.catalog_template == "{tenant}_warehouse");
  CHECK(p.schema_template == "staging__{regions}__{source}");
  CHECK(p.checks.enabled);
  CHECK(p.checks.row_count);
  REQUIRE(p.checks.freshness.has_value());
  CHECK(p.checks.freshness->threshold_seconds == 86400);
  CHECK(p.checks.anomaly_threshold_pct == 25.5);
  CHECK(p.checks.history_length == 20);
  CHECK(p.checks.min_history == 5);
}

TEST_CASE("an empty file is a valid config with every default and no pipelines") {
  Config c = ParseOk("");
  CHECK(c.adapter.type == "sqlite");
  CHECK(c.adapter.path == "/proj/warehouse");
  CHECK(c.state.backend == StateBackend::kLocal);
  CHECK(c.state.s3_bucket.empty());
  CHECK(c.state.s3_prefix == "rocky/state/");
  CHECK(c.state.s3_region.empty());
  CHECK(c.state.s3_endpoint.empty());
  CHECK(c.state.valkey_url.empty());
  CHECK(c.state.valkey_prefix == "rocky:state:");
  CHECK(c.state.transfer_timeout_seconds == 300);
  CHECK(c.state.upload_interval_seconds == 60);
  CHECK(c.state.on_upload_failure == UploadFailurePolicy::kSkip);
  CHECK(c.state.lease_seconds == 60);
  CHECK(c.state.retry.max_retries == 3);
  CHECK(c.state.retry.initial_backoff_ms == 1000);
  CHECK(c.state.retry.max_backoff_ms == 30000);
  CHECK(c.state.retry.backoff_multiplier == 2.0);
  CHECK(c.state.retry.jitter);
  CHECK(c.state.retry.circuit_breaker_threshold == 5);
  CHECK(c.state.retry.circuit_breaker_recovery_timeout_seconds == 60);
  CHECK(c.state.retry.max_retries_per_run == 10);
  CHECK(c.pipelines.empty());

  // Comments and empty tables change nothing.
  Config tables = ParseOk("# nothing yet\n[adapter]\n[state]\n[state.retry]\n[pipeline]\n");
  CHECK(tables.adapter.path == "/proj/warehouse");
  CHECK(tables.state.retry.max_retries == 3);
  CHECK(tables.pipelines.empty());
}

TEST_CASE("pipeline defaults: type, timestamp column, separator, prefix and checks") {
  Config c = ParseOk(kMinimalPipeline);
  REQUIRE(c.pipelines.size() == 1);
  const PipelineConfig& p = c.pipelines[0];
  CHECK(p.name == "p");
  CHECK(p.type == "replication");
  CHECK(p.timestamp_column == "_fivetran_synced");
  CHECK(p.metadata_columns.empty());
  CHECK(p.schema_pattern.prefix.empty());
  CHECK(p.schema_pattern.separator == "__");
  CHECK_FALSE(p.checks.enabled);
  CHECK_FALSE(p.checks.row_count);
  CHECK_FALSE(p.checks.freshness.has_value());
  CHECK(p.checks.anomaly_threshold_pct == 50.0);
  CHECK(p.checks.history_length == 10);
  CHECK(p.checks.min_history == 3);

  // Array-of-tables spelling of metadata_columns is the same thing.
  Config aot =
      ParseOk(WithPipeline("[[pipeline.p.metadata_columns]]\nname = \"a\"\ntype = \"INT\"\nvalue = \"1\"\n"));
  REQUIRE(aot.pipelines[0].metadata_columns.size() == 1);
  CHECK(aot.pipelines[0].metadata_columns[0].name == "a");
}

TEST_CASE("adapter.path is resolved against the base folder; absolute paths are kept") {
  CHECK(ParseOk("[adapter]\npath = \"wh\"\n").adapter.path == "/proj/wh");
  CHECK(ParseOk("[adapter]\npath = \"/data/wh\"\n").adapter.path == "/data/wh");
  CHECK(ParseOk("[adapter]\ntype = \"sqlite\"\n").adapter.path == "/proj/warehouse");
  auto relative = ParseConfig("", "rocky.toml", "", MapEnv({}));
  REQUIRE(relative.ok());
  CHECK(relative->adapter.path == "warehouse");
  ExpectMessage(ErrorOf("[adapter]\npath = \"\"\n"), "2:8", {"adapter.path", "empty"});
}

TEST_CASE(
    "state.valkey_ca_file: resolved against the base folder, absolute kept, empty means the system store") {
  CHECK(ParseOk("").state.valkey_ca_file.empty());
  CHECK(ParseOk("[state]\nvalkey_ca_file = \"certs/ca.pem\"\n").state.valkey_ca_file == "/proj/certs/ca.pem");
  CHECK(ParseOk("[state]\nvalkey_ca_file = \"/etc/ca.pem\"\n").state.valkey_ca_file == "/etc/ca.pem");
  CHECK(ParseOk("[state]\nvalkey_ca_file = \"${CA:-}\"\n").state.valkey_ca_file.empty());
  ExpectMessage(ErrorOf("[state]\nvalkey_ca_file = 3\n"), "2:18",
                {"state.valkey_ca_file", "expected a string", "got an integer"});
}

TEST_CASE("integers are accepted for float keys") {
  Config c = ParseOk("[state.retry]\nbackoff_multiplier = 2\n" +
                     WithPipeline("[pipeline.p.checks]\nanomaly_threshold_pct = 30\n"));
  CHECK(c.state.retry.backoff_multiplier == 2.0);
  CHECK(c.pipelines[0].checks.anomaly_threshold_pct == 30.0);
}

TEST_CASE("TOML syntax errors give file:line:col and toml++'s description") {
  std::string m = ErrorOf("[state]\nbackend = \n");
  ExpectMessage(m, "2:11", {"expected value"});
  // A control character inside a string: still one line.
  m = ErrorOf("[state]\ns3_prefix = \"a\x01\"\n");
  CHECK(m.rfind("rocky.toml:2:", 0) == 0);
  // A duplicate key is a syntax error too.
  m = ErrorOf("[state]\nbackend = \"s3\"\nbackend = \"local\"\n");
  ExpectMessage(m, "3:11", {"backend"});
}

TEST_CASE("unknown keys anywhere are errors naming the key, its table and the position") {
  ExpectMessage(ErrorOf("stat = 1\n"), "1:1", {"'stat'", "top level", "allowed: adapter, state, pipeline"});
  ExpectMessage(ErrorOf("[stat]\nbackend = \"s3\"\n"), "1:2", {"'stat'", "top level"});
  ExpectMessage(ErrorOf("[adapter]\nkind = \"sqlite\"\n"), "2:1", {"'kind'", "in adapter"});
  ExpectMessage(ErrorOf("[state]\n\nbackned = \"s3\"\n"), "3:1", {"'backned'", "in state", "backend"});
  ExpectMessage(ErrorOf("[state.retry]\nmax_retries = 1\n  max_retry = 2\n"), "3:3",
                {"'max_retry'", "in state.retry", "max_retries"});
  ExpectMessage(ErrorOf("[state.retyr]\n"), "1:8", {"'retyr'", "in state"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.checks]\nenabled = true\nrowcount = true\n")), "9:1",
                {"'rowcount'", "in pipeline.p.checks", "row_count"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.checks]\nfreshness = { threshold = 5 }\n")), "8:15",
                {"'threshold'", "in pipeline.p.checks.freshness", "threshold_seconds"});
  ExpectMessage(
      ErrorOf(
          "[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"a\"], sep = \"_\" }\n"),
      "3:40", {"'sep'", "in pipeline.p.source.schema_pattern", "separator"});
  ExpectMessage(ErrorOf(WithPipeline(
                    "[pipeline.p]\nmetadata_columns = [{ name = \"a\", type = \"INT\", value = \"1\" },\n"
                    "  { name = \"b\", typ = \"INT\", value = \"1\" }]\n")),
                "9:17", {"'typ'", "in pipeline.p.metadata_columns[1]"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p]\ntimestamp = \"x\"\n")), "8:1",
                {"'timestamp'", "in pipeline.p"});
  ExpectMessage(ErrorOf("[pipeline.p.source]\ncatalogue = \"c\"\n"), "2:1",
                {"'catalogue'", "in pipeline.p.source"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.target]\n")), "7:1",
                {});  // the table itself is defined twice
  ExpectMessage(ErrorOf("[pipeline.p.targets]\n"), "1:13", {"'targets'", "in pipeline.p"});
  // A key that needs quotes is shown quoted, on one line.
  ExpectMessage(ErrorOf("\"bad\\nkey\" = 1\n"), "1:1", {"'\"bad\\nkey\"'"});
}

TEST_CASE("wrong types name the key, the expected type and the actual type") {
  ExpectMessage(ErrorOf("[state.retry]\nmax_retries = \"3\"\n"), "2:15",
                {"state.retry.max_retries", "expected an integer", "got a string"});
  ExpectMessage(ErrorOf("[state.retry]\njitter = 1\n"), "2:10",
                {"state.retry.jitter", "expected a boolean", "got an integer"});
  ExpectMessage(ErrorOf("[state.retry]\nbackoff_multiplier = \"2\"\n"), "2:22",
                {"state.retry.backoff_multiplier", "expected a number", "got a string"});
  ExpectMessage(ErrorOf("[state]\ns3_bucket = 5\n"), "2:13",
                {"state.s3_bucket", "expected a string", "got an integer"});
  ExpectMessage(ErrorOf("[state]\nbackend = [\"s3\"]\n"), "2:11",
                {"state.backend", "expected a string", "got an array"});
  ExpectMessage(ErrorOf("state = 1\n"), "1:9", {"state", "expected a table", "got an integer"});
  ExpectMessage(ErrorOf("[state]\nretry = 3.5\n"), "2:9", {"state.retry", "expected a table", "got a float"});
  ExpectMessage(ErrorOf("adapter = \"sqlite\"\n"), "1:11", {"adapter", "expected a table", "got a string"});
  ExpectMessage(ErrorOf("pipeline = []\n"), "1:12", {"pipeline", "expected a table", "got an array"});
  ExpectMessage(ErrorOf("[pipeline]\np = 1979-05-27\n"), "2:5",
                {"pipeline.p", "expected a table", "got a date"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.checks]\nhistory_length = 1.0\n")), "8:18",
                {"pipeline.p.checks.history_length", "expected an integer", "got a float"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.checks]\nfreshness = 60\n")), "8:13",
                {"pipeline.p.checks.freshness", "expected a table", "got an integer"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p]\nmetadata_columns = { name = \"a\" }\n")), "8:20",
                {"pipeline.p.metadata_columns", "expected an array of tables", "got a table"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p]\nmetadata_columns = [\"a\"]\n")), "8:21",
                {"pipeline.p.metadata_columns[0]", "expected a table", "got a string"});
  ExpectMessage(
      ErrorOf("[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"a\", 2] }\n"), "3:39",
      {"pipeline.p.source.schema_pattern.components[1]", "expected a string", "got an integer"});
  ExpectMessage(ErrorOf("[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = \"a\" }\n"),
                "3:33", {"components", "expected an array of strings", "got a string"});
  ExpectMessage(ErrorOf("[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = \"src__{x}\"\n"), "3:18",
                {"pipeline.p.source.schema_pattern", "expected a table", "got a string"});
  ExpectMessage(ErrorOf("[state]\ntransfer_timeout_seconds = 07:32:00\n"), "2:28",
                {"transfer_timeout_seconds", "expected an integer", "got a time"});
}

TEST_CASE("out-of-range numbers name the key and the allowed range") {
  ExpectMessage(ErrorOf("[state.retry]\nmax_retries = -1\n"), "2:15",
                {"state.retry.max_retries", "between 0 and 4294967295", "got -1"});
  ExpectMessage(ErrorOf("[state.retry]\nmax_retries_per_run = 4294967296\n"), "2:23",
                {"state.retry.max_retries_per_run", "between 0 and 4294967295", "got 4294967296"});
  ExpectMessage(ErrorOf("[state]\ntransfer_timeout_seconds = 0\n"), "2:28",
                {"state.transfer_timeout_seconds", "at least 1", "got 0"});
  ExpectMessage(ErrorOf("[state]\nlease_seconds = 0\n"), "2:17",
                {"state.lease_seconds", "at least 1", "got 0"});
  ExpectMessage(ErrorOf("[state.retry]\ncircuit_breaker_recovery_timeout_seconds = 0\n"), "2:44",
                {"circuit_breaker_recovery_timeout_seconds", "at least 1"});
  ExpectMessage(ErrorOf("[state.retry]\ninitial_backoff_ms = -5\n"), "2:22",
                {"initial_backoff_ms", "at least 0", "got -5"});
  ExpectMessage(ErrorOf("[state.retry]\nbackoff_multiplier = 0.5\n"), "2:22",
                {"state.retry.backoff_multiplier", "at least 1.0", "got 0.5"});
  ExpectMessage(ErrorOf("[state.retry]\nbackoff_multiplier = nan\n"), "2:22",
                {"backoff_multiplier", "finite"});
  ExpectMessage(ErrorOf("[state.retry]\nbackoff_multiplier = inf\n"), "2:22",
                {"backoff_multiplier", "finite"});
  ExpectMessage(ErrorOf("[state.retry]\ninitial_backoff_ms = 5000\nmax_backoff_ms = 1000\n"), "3:18",
                {"state.retry.max_backoff_ms (1000)", "state.retry.initial_backoff_ms (5000)"});
  // Against the default max_backoff_ms (30000), the position is the key that was written.
  ExpectMessage(ErrorOf("[state.retry]\ninitial_backoff_ms = 60000\n"), "2:22",
                {"max_backoff_ms (30000)", "initial_backoff_ms (60000)"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.checks]\nhistory_length = 0\n")), "8:18",
                {"pipeline.p.checks.history_length", "between 1 and 4294967295", "got 0"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.checks]\nmin_history = 0\n")), "8:15",
                {"min_history", "got 0"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.checks]\nhistory_length = 5\nmin_history = 6\n")), "9:15",
                {"pipeline.p.checks.min_history (6)", "at most", "pipeline.p.checks.history_length (5)"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.checks]\nhistory_length = 2\n")), "8:18",
                {"min_history (3)", "history_length (2)"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.checks]\nanomaly_threshold_pct = 0\n")), "8:25",
                {"pipeline.p.checks.anomaly_threshold_pct", "greater than 0", "got 0"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.checks]\nanomaly_threshold_pct = -2.5\n")), "8:25",
                {"got -2.5"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.checks]\nfreshness = { threshold_seconds = 0 }\n")), "8:35",
                {"pipeline.p.checks.freshness.threshold_seconds", "at least 1", "got 0"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p.checks]\nfreshness = {}\n")), "8:13",
                {"missing required key pipeline.p.checks.freshness.threshold_seconds"});
  // The edges themselves are fine.
  Config edges = ParseOk(
      "[state.retry]\nmax_retries = 4294967295\nbackoff_multiplier = 1.0\ninitial_backoff_ms = 0\n"
      "max_backoff_ms = 0\n" +
      WithPipeline("[pipeline.p.checks]\nhistory_length = 1\nmin_history = 1\n"));
  CHECK(edges.state.retry.max_retries == 4294967295u);
  CHECK(edges.pipelines[0].checks.min_history == 1);
}

TEST_CASE("invalid enum strings name the key and the allowed values") {
  ExpectMessage(ErrorOf("[state]\nbackend = \"sftp\"\n"), "2:11",
                {"state.backend must be one of local, s3, valkey, tiered", "got 'sftp'"});
  ExpectMessage(ErrorOf("[state]\non_upload_failure = \"retry\"\n"), "2:21",
                {"state.on_upload_failure must be one of skip, fail", "got 'retry'"});
  ExpectMessage(ErrorOf("[adapter]\ntype = \"databricks\"\n"), "2:8",
                {"adapter.type must be one of sqlite", "got 'databricks'"});
  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p]\ntype = \"transformation\"\n")), "8:8",
                {"pipeline.p.type must be one of replication", "got 'transformation'"});
  // Spellings are exact.
  ExpectMessage(ErrorOf("[state]\nbackend = \"S3\"\n"), "2:11", {"got 'S3'"});
}

TEST_CASE("remote backends require their bucket or URL") {
  ExpectMessage(ErrorOf("[state]\nbackend = \"s3\"\n"), "2:11",
                {"state.backend = \"s3\" requires state.s3_bucket"});
  ExpectMessage(ErrorOf("[state]\nbackend = \"valkey\"\n"), "2:11",
                {"state.backend = \"valkey\" requires state.valkey_url"});
  ExpectMessage(ErrorOf("[state]\nbackend = \"tiered\"\nvalkey_url = \"redis://h\"\n"), "2:11",
                {"\"tiered\" requires state.s3_bucket"});
  ExpectMessage(ErrorOf("[state]\nbackend = \"tiered\"\ns3_bucket = \"b\"\n"), "2:11",
                {"\"tiered\" requires state.valkey_url"});
  // A variable that expands to nothing counts as missing.
  ExpectMessage(ErrorOf("[state]\nbackend = \"s3\"\ns3_bucket = \"${BUCKET:-}\"\n"), "2:11",
                {"requires state.s3_bucket"});

  Config s3 = ParseOk("[state]\nbackend = \"s3\"\ns3_bucket = \"b\"\n");
  CHECK(s3.state.backend == StateBackend::kS3);
  Config valkey = ParseOk("[state]\nbackend = \"valkey\"\nvalkey_url = \"redis://h:6379\"\n");
  CHECK(valkey.state.backend == StateBackend::kValkey);
  // Local ignores the remote keys (they may be set for a later switch).
  Config local = ParseOk("[state]\nbackend = \"local\"\ns3_bucket = \"b\"\n");
  CHECK(local.state.backend == StateBackend::kLocal);
  CHECK(local.state.s3_bucket == "b");
}

TEST_CASE("pipelines: required keys and light checks of the schema pattern and templates") {
  ExpectMessage(ErrorOf("[pipeline.p]\ntype = \"replication\"\n"), "1:1",
                {"missing required table pipeline.p.source"});
  ExpectMessage(ErrorOf("[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"a\"] }\n"),
                "1:1", {"missing required table pipeline.p.target"});
  ExpectMessage(ErrorOf("[pipeline.p.source]\nschema_pattern = { components = [\"a\"] }\n"), "1:1",
                {"missing required key pipeline.p.source.catalog"});
  ExpectMessage(ErrorOf("[pipeline.p.source]\ncatalog = \"\"\n"), "2:11",
                {"pipeline.p.source.catalog must not be empty"});
  ExpectMessage(ErrorOf("[pipeline.p.source]\ncatalog = \"c\"\n"), "1:1",
                {"missing required key pipeline.p.source.schema_pattern"});
  ExpectMessage(ErrorOf("[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { prefix = \"s\" }\n"),
                "3:18", {"missing required key pipeline.p.source.schema_pattern.components"});
  ExpectMessage(ErrorOf("[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [] }\n"),
                "3:33", {"components must list at least one component"});
  ExpectMessage(ErrorOf("[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { separator = \"\", "
                        "components = [\"a\"] }\n"),
                "3:32", {"schema_pattern.separator must not be empty"});
  ExpectMessage(
      ErrorOf(
          "[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"a\", \"b\", \"a\"] }\n"),
      "3:44", {"components[2]", "'a' is listed twice"});
  ExpectMessage(
      ErrorOf("[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"a\", \"a...\"] }\n"),
      "3:39", {"components[1]", "'a' is listed twice"});
  ExpectMessage(
      ErrorOf(
          "[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"a...\", \"b...\"] }\n"),
      "3:42", {"components[1]", "only one component may end in \"...\""});
  ExpectMessage(
      ErrorOf("[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"a-b\"] }\n"), "3:34",
      {"components[0]", "component name 'a-b'"});
  ExpectMessage(
      ErrorOf("[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"...\"] }\n"), "3:34",
      {"components[0]", "component name ''"});
  ExpectMessage(ErrorOf("[pipeline.\"a b\".source]\n"), "1:11",
                {"pipeline name '\"a b\"'", "letters, digits"});

  std::string target_head =
      "[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"tenant\", \"regions...\"] }\n"
      "[pipeline.p.target]\n";
  ExpectMessage(ErrorOf(target_head + "schema_template = \"s\"\n"), "4:1",
                {"missing required key pipeline.p.target.catalog_template"});
  ExpectMessage(ErrorOf(target_head + "catalog_template = \"c\"\n"), "4:1",
                {"missing required key pipeline.p.target.schema_template"});
  ExpectMessage(ErrorOf(target_head + "catalog_template = \"{tenant}\"\nschema_template = \"x_{region}\"\n"),
                "6:19",
                {"pipeline.p.target.schema_template", "placeholder {region}", "components: tenant, regions"});
  ExpectMessage(ErrorOf(target_head + "catalog_template = \"{tenant\"\nschema_template = \"x\"\n"), "5:20",
                {"pipeline.p.target.catalog_template", "'{' without a matching '}'"});
  ExpectMessage(ErrorOf(target_head + "catalog_template = \"{ten{ant}\"\nschema_template = \"x\"\n"), "5:20",
                {"'{' without a matching '}'"});
  ExpectMessage(ErrorOf(target_head + "catalog_template = \"tenant}\"\nschema_template = \"x\"\n"), "5:20",
                {"'}' without a matching '{'"});
  ExpectMessage(ErrorOf(target_head + "catalog_template = \"{}\"\nschema_template = \"x\"\n"), "5:20",
                {"placeholder {}"});
  ExpectMessage(ErrorOf(target_head + "catalog_template = \"\"\nschema_template = \"x\"\n"), "5:20",
                {"catalog_template must not be empty"});
  // The variadic component is named without its "...".
  Config ok =
      ParseOk(target_head + "catalog_template = \"{tenant}\"\nschema_template = \"{regions}_{tenant}\"\n");
  CHECK(ok.pipelines[0].schema_template == "{regions}_{tenant}");

  ExpectMessage(ErrorOf(WithPipeline("[pipeline.p]\ntimestamp_column = \"\"\n")), "8:20",
                {"pipeline.p.timestamp_column must not be empty"});
  ExpectMessage(
      ErrorOf(WithPipeline("[pipeline.p]\nmetadata_columns = [{ name = \"a\", type = \"INT\" }]\n")), "8:21",
      {"missing required key pipeline.p.metadata_columns[0].value"});
  ExpectMessage(ErrorOf(WithPipeline(
                    "[pipeline.p]\nmetadata_columns = [{ name = \"a\", type = \"INT\", value = \"1\" },"
                    " { name = \"a\", type = \"INT\", value = \"2\" }]\n")),
                "8:73", {"metadata_columns[1].name", "'a' is listed twice"});
}

TEST_CASE("${VAR}, ${VAR:-default} and $$ in string values") {
  std::string text =
      "[state]\ns3_bucket = \"${B}\"\ns3_prefix = \"${P:-dflt/}\"\ns3_region = \"pre-${R:-x}-post\"\n"
      "valkey_prefix = \"cost$$:${B}$$\"\n";
  Config set = ParseOk(text, {{"B", "bkt"}, {"P", "given/"}, {"R", "eu"}});
  CHECK(set.state.s3_bucket == "bkt");
  CHECK(set.state.s3_prefix == "given/");
  CHECK(set.state.s3_region == "pre-eu-post");
  CHECK(set.state.valkey_prefix == "cost$:bkt$");

  // Unset and empty both take the default.
  Config unset = ParseOk(text, {{"B", "bkt"}});
  CHECK(unset.state.s3_prefix == "dflt/");
  CHECK(unset.state.s3_region == "pre-x-post");
  Config empty = ParseOk(text, {{"B", "bkt"}, {"P", ""}, {"R", ""}});
  CHECK(empty.state.s3_prefix == "dflt/");
  CHECK(empty.state.s3_region == "pre-x-post");
  // Without a default an empty variable is just empty.
  CHECK(ParseOk(text, {{"B", ""}}).state.s3_bucket.empty());
  // An empty default, and a default with other characters in it.
  CHECK(ParseOk("[state]\ns3_region = \"${R:-}\"\ns3_prefix = \"${P:-a:b-c/}\"\n").state.s3_region.empty());
  CHECK(ParseOk("[state]\ns3_prefix = \"${P:-a:b-c/}\"\n").state.s3_prefix == "a:b-c/");

  // An inserted value is not scanned again, so '$' and '${' in a value are kept as they are.
  CHECK(ParseOk("[state]\nvalkey_url = \"${U}\"\n", {{"U", "redis://:p$${X}@h"}}).state.valkey_url ==
        "redis://:p$${X}@h");

  // Substitution reaches arrays and inline tables, and happens after TOML parsing (quotes in a value are
  // data).
  Config p = ParseOk(
      "[pipeline.p]\nmetadata_columns = [{ name = \"${N}\", type = \"STRING\", value = \"${V}\" }]\n"
      "[pipeline.p.source]\ncatalog = \"${CAT}\"\nschema_pattern = { prefix = \"${PFX:-src__}\", components "
      "= [\"${C}\"] }\n"
      "[pipeline.p.target]\ncatalog_template = \"{t}\"\nschema_template = \"x\"\n",
      {{"N", "_by"}, {"V", "'a \"quoted\" value'"}, {"CAT", "cat"}, {"C", "t"}});
  CHECK(p.pipelines[0].metadata_columns[0].name == "_by");
  CHECK(p.pipelines[0].metadata_columns[0].value == "'a \"quoted\" value'");
  CHECK(p.pipelines[0].source_catalog == "cat");
  CHECK(p.pipelines[0].schema_pattern.prefix == "src__");
  CHECK(p.pipelines[0].schema_pattern.components == std::vector<std::string>{"t"});
}

TEST_CASE("a missing variable is an error naming it and the line, and no other value") {
  std::string m = ErrorOf("[state]\ns3_bucket = \"${BUCKET}\"\n\nvalkey_url = \"${VALKEY_URL}\"\n",
                          {{"BUCKET", "the-bucket-value"}});
  ExpectMessage(m, "4:14", {"state.valkey_url", "environment variable VALKEY_URL is not set"});
  CHECK_FALSE(Contains(m, "the-bucket-value"));

  ExpectMessage(
      ErrorOf(
          "[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"a\", \"${COMP}\"] }\n"),
      "3:39", {"components[1]", "COMP is not set"});

  // Malformed references.
  ExpectMessage(ErrorOf("[state]\ns3_prefix = \"${P\"\n"), "2:13", {"state.s3_prefix", "unterminated '${'"});
  ExpectMessage(ErrorOf("[state]\ns3_prefix = \"$HOME/x\"\n"), "2:13", {"'$' must start ${VAR}", "$$"});
  ExpectMessage(ErrorOf("[state]\ns3_prefix = \"x$\"\n"), "2:13", {"'$' must start"});
  ExpectMessage(ErrorOf("[state]\ns3_prefix = \"${}\"\n"), "2:13", {"invalid variable name in '${}'"});
  ExpectMessage(ErrorOf("[state]\ns3_prefix = \"${1A}\"\n"), "2:13", {"invalid variable name in '${1A}'"});
  ExpectMessage(ErrorOf("[state]\ns3_prefix = \"${A-B}\"\n"), "2:13", {"invalid variable name"});
  ExpectMessage(ErrorOf("[state]\ns3_prefix = \"${A:-${B}}\"\n"), "2:13", {"nested '${'"});
}

TEST_CASE("a secret variable's value never appears in any error") {
  const std::string secret = "hunter2-s3cr3t";
  Vars vars{{"SECRET", secret}, {"OTHER", secret + "-other"}};
  const std::vector<std::string> configs = {
      "[state]\nbackend = \"${SECRET}\"\n",
      "[state]\non_upload_failure = \"${SECRET}\"\n",
      "[adapter]\ntype = \"sqlite-${SECRET}\"\n",
      "[state]\nvalkey_url = \"${SECRET}\"\nbackend = \"tiered\"\n",
      "[state]\nvalkey_url = \"${SECRET}\"\ns3_bucket = \"${MISSING}\"\n",
      "[state]\nvalkey_url = \"${SECRET}\"\ntransfer_timeout_seconds = 0\n",
      "[state]\nvalkey_url = \"${SECRET}\"\nbad = 1\n",
      "[state]\nvalkey_url = \"${SECRET}\"\nbackend = \n",
      "[state]\ns3_prefix = \"${SECRET}$\"\n",
      "[pipeline.p]\ntype = \"${SECRET}\"\n",
      "[pipeline.p]\nmetadata_columns = [{ name = \"${SECRET}\", type = \"T\", value = \"1\" },"
      " { name = \"${SECRET}\", type = \"T\", value = \"1\" }]\n" +
          std::string(kMinimalPipeline),
      "[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"${SECRET}\"] }\n",
      "[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"a\", \"${SECRET}\", "
      "\"${SECRET}\"] }\n",
      "[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"a\", \"${SECRET}...\", "
      "\"${SECRET}...\"] }\n",
      "[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"a\"] }\n"
      "[pipeline.p.target]\ncatalog_template = \"{${SECRET}}\"\nschema_template = \"x\"\n",
      "[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"${SECRET}\"] }\n"
      "[pipeline.p.target]\ncatalog_template = \"{nope}\"\nschema_template = \"x\"\n",
  };
  // The secret here is a valid component name, so the last case gets to the template check.
  Vars name_like{{"SECRET", "hunter2_s3cr3t"}};
  for (const std::string& text : configs) {
    for (const Vars& env : {vars, name_like}) {
      auto config = Parse(text, env);
      REQUIRE_MESSAGE(!config.ok(), text);
      std::string m = config.status().message();
      INFO(text);
      INFO(m);
      CHECK_FALSE(Contains(m, "hunter2"));
    }
  }
  // The messages still say where the value came from.
  ExpectMessage(ErrorOf("[state]\nbackend = \"${SECRET}\"\n", vars), "2:11",
                {"a value from ${SECRET} (not shown)"});
  ExpectMessage(ErrorOf("[pipeline.p.source]\ncatalog = \"c\"\nschema_pattern = { components = [\"a\"] }\n"
                        "[pipeline.p.target]\ncatalog_template = \"{${SECRET}}\"\nschema_template = \"x\"\n",
                        name_like),
                "5:20", {"a placeholder in a value from ${SECRET} (not shown)", "components: a"});
  // A default (text from the file) is shown.
  ExpectMessage(ErrorOf("[state]\nbackend = \"${UNSET:-sftp}\"\n", vars), "2:11", {"got 'sftp'"});
}

TEST_CASE("the environment lookup throwing is an error, not an exception") {
  EnvLookup throwing = [](std::string_view) -> std::optional<std::string> {
    throw std::runtime_error("boom");
  };
  auto config = ParseConfig("[state]\ns3_bucket = \"${B}\"\n", "rocky.toml", "/proj", throwing);
  REQUIRE_FALSE(config.ok());
  CHECK(config.status().code() == Code::kInvalidArgument);
  CHECK(Contains(config.status().message(), "rocky.toml"));
  CHECK(Contains(config.status().message(), "boom"));
}

TEST_CASE("ProcessEnvironment reads the process environment") {
  REQUIRE(setenv("ROCKY_CONFIG_TEST_VAR", "from-process", 1) == 0);
  unsetenv("ROCKY_CONFIG_TEST_UNSET");
  EnvLookup env = ProcessEnvironment();
  CHECK(env("ROCKY_CONFIG_TEST_VAR") == std::optional<std::string>("from-process"));
  CHECK_FALSE(env("ROCKY_CONFIG_TEST_UNSET").has_value());
  auto config = ParseConfig("[state]\ns3_bucket = \"${ROCKY_CONFIG_TEST_VAR}\"\n", "rocky.toml", "/p", env);
  REQUIRE(config.ok());
  CHECK(config->state.s3_bucket == "from-process");
  unsetenv("ROCKY_CONFIG_TEST_VAR");
}

TEST_CASE("LoadConfigFile: a real file, a missing one, a directory and unreadable ones") {
  TempDir dir;
  std::string path = dir.File("rocky.toml");
  WriteFile(path, "[state]\nbackend = \"local\"\n[adapter]\npath = \"wh\"\n");
  auto config = LoadConfigFile(path, MapEnv({}));
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  CHECK(config->source_path == path);
  CHECK(config->adapter.path == dir.path() + "/wh");

  // A relative path still gives an absolute warehouse folder, next to the file.
  std::string relative = std::filesystem::relative(path).string();
  auto rel = LoadConfigFile(relative, MapEnv({}));
  REQUIRE_MESSAGE(rel.ok(), rel.status().message());
  CHECK(std::filesystem::path(rel->adapter.path).is_absolute());
  CHECK(std::filesystem::equivalent(rel->adapter.path.substr(0, rel->adapter.path.size() - 3), dir.path()));
  CHECK(rel->source_path == relative);

  // Errors in a loaded file name the path as given.
  WriteFile(path, "[state]\nbakend = \"s3\"\n");
  auto bad = LoadConfigFile(path, MapEnv({}));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().rfind(path + ":2:1: ", 0) == 0);

  auto missing = LoadConfigFile(dir.File("nope.toml"), MapEnv({}));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == Code::kNotFound);
  CHECK(missing.status().message() == "config file '" + dir.File("nope.toml") + "' not found");

  auto directory = LoadConfigFile(dir.path(), MapEnv({}));
  REQUIRE_FALSE(directory.ok());
  CHECK(directory.status().code() == Code::kIOError);
  CHECK(Contains(directory.status().message(), dir.path()));
  CHECK(Contains(directory.status().message(), "Is a directory"));

  // A symlink loop cannot be read even by root.
  std::string loop = dir.File("loop.toml");
  REQUIRE(symlink(loop.c_str(), loop.c_str()) == 0);
  auto looped = LoadConfigFile(loop, MapEnv({}));
  REQUIRE_FALSE(looped.ok());
  CHECK(looped.status().code() == Code::kIOError);
  CHECK(Contains(looped.status().message(), loop));
  CHECK(Contains(looped.status().message(), "Too many levels of symbolic links"));

  std::string locked = dir.File("locked.toml");
  WriteFile(locked, "");
  REQUIRE(chmod(locked.c_str(), 0) == 0);
  auto unreadable = LoadConfigFile(locked, MapEnv({}));
  if (geteuid() == 0) {
    MESSAGE("running as root, which reads a mode-000 file: the permission-denied assertion is skipped");
  } else {
    REQUIRE_FALSE(unreadable.ok());
    CHECK(unreadable.status().code() == Code::kIOError);
    CHECK(Contains(unreadable.status().message(), locked));
    CHECK(Contains(unreadable.status().message(), "Permission denied"));
  }
}

TEST_CASE("RedactUrl hides passwords, a userinfo without ':', and query values; nothing else") {
  CHECK(RedactUrl("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0");
  CHECK(RedactUrl("redis://:secret@host") == "redis://:***@host");
  CHECK(RedactUrl("rediss://default:s3cr3t@cache.example.com:6380") ==
        "rediss://default:***@cache.example.com:6380");
  // An unescaped '@' or '/' in the password: everything up to the host is hidden.
  CHECK(RedactUrl("redis://u:p@ss/w@rd@host:6379/0") == "redis://u:***@host:6379/0");
  // No password: unchanged.
  CHECK(RedactUrl("redis://host:6379/0") == "redis://host:6379/0");
  // A userinfo without ':' is most likely a token or a password written without its ':'.
  CHECK(RedactUrl("redis://secret@host:6379") == "redis://***@host:6379");
  CHECK(RedactUrl("https://ghp_token@example.com/x") == "https://***@example.com/x");
  // Every query value: a password passed as ?password=, a signature, a token.
  CHECK(RedactUrl("redis://host:6379/0?password=hunter2&db=1") == "redis://host:6379/0?password=***&db=***");
  CHECK(RedactUrl("https://b.s3.amazonaws.com/k?X-Amz-Signature=abc#frag") ==
        "https://b.s3.amazonaws.com/k?X-Amz-Signature=***#frag");
  CHECK(RedactUrl("redis://host/0?flag&x=") == "redis://host/0?flag&x=");
  CHECK(RedactUrl("redis://user:@host") == "redis://user:@host");
  CHECK(RedactUrl("") == "");
  CHECK(RedactUrl("not a url") == "not a url");
  // Without a scheme the userinfo is still recognised.
  CHECK(RedactUrl("user:pw@host") == "user:***@host");
}

TEST_CASE("enum spellings round-trip through ToString") {
  CHECK(ToString(StateBackend::kLocal) == "local");
  CHECK(ToString(StateBackend::kS3) == "s3");
  CHECK(ToString(StateBackend::kValkey) == "valkey");
  CHECK(ToString(StateBackend::kTiered) == "tiered");
  CHECK(ToString(UploadFailurePolicy::kSkip) == "skip");
  CHECK(ToString(UploadFailurePolicy::kFail) == "fail");
  for (StateBackend b :
       {StateBackend::kLocal, StateBackend::kS3, StateBackend::kValkey, StateBackend::kTiered}) {
    std::string text =
        "[state]\nbackend = \"" + std::string(ToString(b)) + "\"\ns3_bucket = \"b\"\nvalkey_url = \"v\"\n";
    CHECK(ParseOk(text).state.backend == b);
  }
  CHECK(ParseOk("[state]\non_upload_failure = \"skip\"\n").state.on_upload_failure ==
        UploadFailurePolicy::kSkip);
}

TEST_CASE(
    "strategy, merge_keys, cursor_type and lookback_seconds: Rocky's names, and the rules between them") {
  const PipelineConfig defaults = ParseOk(kMinimalPipeline).pipelines[0];
  CHECK(defaults.strategy == Strategy::kIncremental);
  CHECK(defaults.cursor_type == CursorType::kTimestamp);
  CHECK(defaults.merge_keys.empty());
  CHECK(defaults.lookback_seconds == 0);

  const PipelineConfig merge =
      ParseOk(
          "[pipeline.p]\nstrategy = \"merge\"\nmerge_keys = [\"id\", \"line\"]\nlookback_seconds = 3600\n" +
          std::string(kMinimalPipeline))
          .pipelines[0];
  CHECK(merge.strategy == Strategy::kMerge);
  CHECK(merge.merge_keys == std::vector<std::string>{"id", "line"});
  CHECK(merge.lookback_seconds == 3600);
  const PipelineConfig integer = ParseOk(
                                     "[pipeline.p]\ncursor_type = \"integer\"\ntimestamp_column = "
                                     "\"id\"\nstrategy = \"full_refresh\"\n" +
                                     std::string(kMinimalPipeline))
                                     .pipelines[0];
  CHECK(integer.cursor_type == CursorType::kInteger);
  CHECK(integer.strategy == Strategy::kFullRefresh);

  ExpectMessage(ErrorOf("[pipeline.p]\nstrategy = \"merge\"\n" + std::string(kMinimalPipeline)), "2:12",
                {"pipeline.p: strategy = \"merge\" requires merge_keys"});
  ExpectMessage(ErrorOf("[pipeline.p]\nmerge_keys = [\"id\"]\n" + std::string(kMinimalPipeline)), "2:14",
                {"pipeline.p.merge_keys is only used by strategy = \"merge\"", "\"incremental\""});
  ExpectMessage(
      ErrorOf("[pipeline.p]\nstrategy = \"merge\"\nmerge_keys = []\n" + std::string(kMinimalPipeline)),
      "3:14", {"pipeline.p.merge_keys must list at least one column"});
  ExpectMessage(ErrorOf("[pipeline.p]\nstrategy = \"merge\"\nmerge_keys = [\"id\", \"id\"]\n" +
                        std::string(kMinimalPipeline)),
                "3:21", {"merge_keys[1]: column 'id' is listed twice"});
  ExpectMessage(ErrorOf("[pipeline.p]\nlookback_seconds = 60\n" + std::string(kMinimalPipeline)), "2:20",
                {"lookback_seconds re-reads rows already copied", "appended again (duplicates)"});
  ExpectMessage(ErrorOf("[pipeline.p]\nstrategy = \"full_refresh\"\nlookback_seconds = 60\n" +
                        std::string(kMinimalPipeline)),
                "3:20", {"every run reloads the whole table"});
  ExpectMessage(
      ErrorOf("[pipeline.p]\nstrategy = \"merge\"\nmerge_keys = [\"id\"]\ncursor_type = \"integer\"\n"
              "lookback_seconds = 60\n" +
              std::string(kMinimalPipeline)),
      "5:20", {"needs cursor_type = \"timestamp\""});
  ExpectMessage(ErrorOf("[pipeline.p]\nstrategy = \"upsert\"\n" + std::string(kMinimalPipeline)), "2:12",
                {"pipeline.p.strategy must be one of incremental, full_refresh, merge", "'upsert'"});
  ExpectMessage(ErrorOf("[pipeline.p]\ncursor_type = \"uuid\"\n" + std::string(kMinimalPipeline)), "2:15",
                {"cursor_type must be one of timestamp, integer"});
  CHECK(ToString(Strategy::kFullRefresh) == "full_refresh");
  CHECK(ToString(CursorType::kInteger) == "integer");
}

TEST_CASE("Redact: every URL in a text, known secrets in any form, and arguments a server echoes") {
  CHECK(Redact("upload to s3://b/k at http://AKIA:s3cret@minio:9000 failed: reset") ==
        "upload to s3://b/k at http://AKIA:***@minio:9000 failed: reset");
  CHECK(Redact("invalid Valkey URL 'redis://h:1/0?password=x': no") ==
        "invalid Valkey URL 'redis://h:1/0?password=***': no");
  CHECK(Redact("a (redis://:pw@h), and \"https://t@h/p?q=1\"") ==
        "a (redis://:***@h), and \"https://***@h/p?q=***\"");
  CHECK(Redact("ERR unknown command 'AUTH', with args beginning with: 'user' 'pass word' \nnext line") ==
        "ERR unknown command 'AUTH', with args beginning with: (not shown)\nnext line");
  // Known secrets, as given and percent-encoded, wherever they are.
  CHECK(Redact("WRONGPASS p@ss:w/rd and p%40ss%3Aw%2Frd", {"p@ss:w/rd"}) == "WRONGPASS *** and ***");
  CHECK(Redact("nothing secret here: 10:30, a@b") == "nothing secret here: 10:30, a@b");
  CHECK(Redact("") == "");
  // In JSON text a URL may be followed by an escaped quote, which must survive.
  CHECK(Redact(R"({"error":"see \"http://h/p?token=abc\" now"})") ==
        R"({"error":"see \"http://h/p?token=***\" now"})");
  for (const char* text :
       {"redis://u:p@h?x=1&y", "with args beginning with: a\nb", "x://@", "://", "a://b@c@d?e"}) {
    const std::string once = Redact(text, {"p"});
    CHECK_MESSAGE(Redact(once, {"p"}) == once, text);
  }
}

TEST_CASE("SecretsOf: the valkey_url password (as written and decoded) and s3_endpoint's userinfo") {
  Config config;
  config.state.valkey_url = "redis://user:p%40ss@host:6379";
  config.state.s3_endpoint = "http://AKIA:key@minio:9000";
  CHECK(SecretsOf(config) == std::vector<std::string>{"p%40ss", "p@ss", "key"});
  Config none;
  none.state.valkey_url = "redis://host:6379";
  CHECK(SecretsOf(none).empty());
}

TEST_CASE(
    "postgres adapters: url required and never shown, named adapters and the pipelines' adapter names") {
  const Config pg =
      ParseOk("[adapter]\ntype = \"postgres\"\nurl = \"${PG_URL}\"\n" + std::string(kMinimalPipeline),
              {{"PG_URL", "postgresql://u:s3cret@h/db"}});
  CHECK(pg.adapter.type == "postgres");
  CHECK(pg.adapter.url == "postgresql://u:s3cret@h/db");
  CHECK(pg.adapter.path.empty());
  CHECK(pg.pipelines[0].source_adapter == "default");
  CHECK(pg.pipelines[0].target_adapter == "default");
  ExpectMessage(ErrorOf("[adapter]\ntype = \"postgres\"\n"), "1:1",
                {"missing required key adapter.url", "${PG_URL}"});
  ExpectMessage(ErrorOf("[adapter]\ntype = \"postgres\"\nurl = \"x\"\npath = \"wh\"\n"), "4:8",
                {"adapter.path is for type = \"sqlite\""});
  ExpectMessage(ErrorOf("[adapter]\nurl = \"postgresql://h/db\"\n"), "2:7",
                {"adapter.url is for type = \"postgres\""});
  // mark_source_changes: off by default, a boolean, postgres only.
  CHECK(!pg.adapter.mark_source_changes);
  const Config marked = ParseOk("[adapter]\ntype = \"postgres\"\nurl = \"x\"\nmark_source_changes = true\n" +
                                std::string(kMinimalPipeline));
  CHECK(marked.adapter.mark_source_changes);
  ExpectMessage(ErrorOf("[adapter]\ntype = \"postgres\"\nurl = \"x\"\nmark_source_changes = \"yes\"\n"),
                "4:23", {"adapter.mark_source_changes", "a boolean"});
  ExpectMessage(ErrorOf("[adapter]\nmark_source_changes = true\n"), "2:23",
                {"adapter.mark_source_changes is for type = \"postgres\""});
  ExpectMessage(ErrorOf("[adapter.src]\ntype = \"sqlite\"\nmark_source_changes = true\n"), "3:23",
                {"adapter.src.mark_source_changes is for type = \"postgres\""});
  // An empty URL from the environment is reported without its value.
  const std::string empty = ErrorOf("[adapter]\ntype = \"postgres\"\nurl = \"${PG_URL:-}\"\n");
  CHECK(Contains(empty, "adapter.url must not be empty"));

  // Rocky's named adapters: a pipeline names its source and target adapters.
  const std::string named =
      "[adapter.src]\ntype = \"postgres\"\nurl = \"${SRC}\"\n[adapter.dwh]\ntype = "
      "\"postgres\"\nurl = \"${DWH}\"\n";
  const Vars urls{{"SRC", "host=a password=p1"}, {"DWH", "host=b password=p2"}};
  const std::string pipeline =
      "[pipeline.p.source]\nadapter = \"src\"\ncatalog = \"c\"\nschema_pattern = { "
      "components = [\"tenant\", \"source\"] }\n[pipeline.p.target]\nadapter = \"dwh\"\n"
      "catalog_template = \"{tenant}_wh\"\nschema_template = \"s__{source}\"\n";
  const Config two = ParseOk(named + pipeline, urls);
  REQUIRE(two.adapters.size() == 2);
  CHECK(two.adapters[0].name == "dwh");
  CHECK(two.adapters[1].name == "src");
  CHECK(two.pipelines[0].source_adapter == "src");
  CHECK(two.pipelines[0].target_adapter == "dwh");
  CHECK(two.adapter.name == "dwh");
  CHECK(FindAdapter(two, "src")->url == "host=a password=p1");
  CHECK(FindAdapter(two, "nope") == nullptr);
  // Without adapter names, two adapters and none called "default" is ambiguous.
  ExpectMessage(ErrorOf(named + std::string(kMinimalPipeline), urls), "7:1",
                {"missing required key pipeline.p.source.adapter", "'dwh', 'src'"});
  std::string unknown = pipeline;
  unknown.replace(unknown.find("\"dwh\""), 5, "\"dwx\"");
  const std::string unknown_message = ErrorOf(named + unknown, urls);
  CHECK(Contains(unknown_message, "pipeline.p.target.adapter names no adapter: 'dwx'"));
  CHECK(!Contains(unknown_message, "p1"));
  CHECK(!Contains(unknown_message, "p2"));
  // A SQLite source and a PostgreSQL target cannot be one copy.
  const std::string mixed =
      "[adapter.src]\ntype = \"sqlite\"\n[adapter.dwh]\ntype = \"postgres\"\nurl = \"${DWH}\"\n";
  CHECK(Contains(ErrorOf(mixed + pipeline, urls), "between PostgreSQL servers"));
  // Pipelines may use different pairs: here one within an SQLite folder, one between the two servers.
  std::string lite_pipeline = pipeline;
  for (const char* name : {"\"src\"", "\"dwh\""})
    lite_pipeline.replace(lite_pipeline.find(name), 5, "\"lit\"");
  lite_pipeline.replace(lite_pipeline.find("pipeline.p.source"), 17, "pipeline.q.source");
  lite_pipeline.replace(lite_pipeline.find("pipeline.p.target"), 17, "pipeline.q.target");
  const Config pairs = ParseOk(named + "[adapter.lit]\ntype = \"sqlite\"\n" + pipeline + lite_pipeline, urls);
  REQUIRE(pairs.pipelines.size() == 2);
  CHECK(pairs.pipelines[0].source_adapter == "src");
  CHECK(pairs.pipelines[0].target_adapter == "dwh");
  CHECK(pairs.pipelines[1].source_adapter == "lit");
  CHECK(pairs.pipelines[1].target_adapter == "lit");
  ExpectMessage(ErrorOf("[adapter]\nkind = \"sqlite\"\n"), "2:1", {"'kind'", "in adapter"});
  ExpectMessage(ErrorOf("[adapter.\"a b\"]\ntype = \"sqlite\"\n"), "1:10", {"adapter name '\"a b\"'"});
  // Their passwords are secrets rocky's redaction hides, in every form libpq reads.
  Config secrets;
  secrets.adapters = {
      AdapterConfig{.name = "a", .type = "postgres", .path = "", .url = "postgresql://u:uri%40pw@h/db"},
      AdapterConfig{
          .name = "b", .type = "postgres", .path = "", .url = "host=h password = 'kw \\'pw' user=u"},
      AdapterConfig{.name = "c",
                    .type = "postgres",
                    .path = "",
                    .url = "postgresql://h/db?sslmode=require&password=q%20pw"},
      AdapterConfig{.name = "d", .type = "sqlite", .path = "/x", .url = ""}};
  CHECK(SecretsOf(secrets) == std::vector<std::string>{"uri%40pw", "uri@pw", "kw 'pw", "q%20pw", "q pw"});
  CHECK(Redact("failed for kw 'pw and q pw", SecretsOf(secrets)) == "failed for *** and ***");
}
