#include "rocky/config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <set>
#include <system_error>
#include <utility>

#include "rocky/base/strings.h"
#include "substitute.h"

namespace rocky::config {

using base::Quoted;

namespace {

using internal::SubstituteVariables;

// Every message is one line: keys, file names and TOML text may hold newlines or other control characters.
std::string OneLine(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

// A key as TOML would spell it: bare when it can be, else in double quotes.
std::string KeyText(std::string_view key) {
  bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  if (bare) return std::string(key);
  std::string out = "\"";
  for (char c : key) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string Join(std::string_view path, std::string_view key) {
  std::string out(path);
  if (!out.empty()) out += '.';
  out += KeyText(key);
  return out;
}

std::string JoinList(std::initializer_list<std::string_view> items) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

std::string_view TypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

// A string value after substitution, with what is needed to report on it without leaking a secret.
struct StrValue {
  std::string text;
  std::vector<std::string> from_env;  // non-empty: `text` holds an environment value and is never shown
  toml::source_region where;

  // The value for a message: quoted, or which variables it came from when it may be a secret.
  std::string Shown() const { return Shown(text); }
  // `part` is a piece of `text` (a placeholder, a component name).
  std::string Shown(std::string_view part) const {
    if (from_env.empty()) return Quoted(part);
    std::string out = "a value from ";
    for (size_t i = 0; i < from_env.size(); ++i) {
      if (i > 0) out += ", ";
      out += "${" + from_env[i] + "}";
    }
    out += " (not shown)";
    return out;
  }
};

// A table being read, named by its dotted path for messages ("state.retry"; empty for the top level).
struct TableRef {
  const toml::table* table;
  std::string path;
};

// Reads and validates the parsed document into a Config. Every check returns the first error as a
// kInvalidArgument "SOURCE:LINE:COL: ..." naming the key.
class Reader {
 public:
  Reader(std::string_view source_name, std::string_view base_dir, const EnvLookup& env)
      : source_name_(source_name), base_dir_(base_dir), env_(env) {}

  Result<Config> Read(const toml::table& root) {
    Config config;
    config.source_path = source_name_;
    TableRef top{&root, ""};
    ROCKY_RETURN_IF_ERROR(CheckKeys(top, {"adapter", "state", "pipeline"}));
    ROCKY_RETURN_IF_ERROR(ReadAdapters(top, &config.adapters));
    ROCKY_RETURN_IF_ERROR(ReadState(top, &config.state));
    ROCKY_RETURN_IF_ERROR(ReadPipelines(top, &config.pipelines));
    ROCKY_RETURN_IF_ERROR(ResolveAdapters(root, &config));
    return config;
  }

 private:
  Status Error(const toml::source_region& where, std::string_view what) const {
    // Nodes always carry a position; 1:1 only guards against a parser that leaves one out.
    uint32_t line = where.begin.line == 0 ? 1 : where.begin.line;
    uint32_t column = where.begin.column == 0 ? 1 : where.begin.column;
    return Status::InvalidArgument(OneLine(source_name_ + ":" + std::to_string(line) + ":" +
                                           std::to_string(column) + ": " + std::string(what)));
  }

  Status TypeError(const toml::node& node, const std::string& key, std::string_view expected) const {
    return Error(node.source(),
                 key + ": expected " + std::string(expected) + ", got " + std::string(TypeName(node.type())));
  }

  // Unknown keys are errors so that a typo never silently falls back to a default.
  Status CheckKeys(const TableRef& t, std::initializer_list<std::string_view> allowed) const {
    for (auto&& [key, node] : *t.table) {
      if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
      std::string where = t.path.empty() ? "at the top level" : "in " + t.path;
      return Error(key.source(), "unknown key " + Quoted(KeyText(key.str())) + " " + where +
                                     " (allowed: " + JoinList(allowed) + ")");
    }
    return Status::OK();
  }

  // The sub-table `key` of `t`, or a null table when absent.
  Result<TableRef> SubTable(const TableRef& t, std::string_view key) const {
    TableRef sub{nullptr, Join(t.path, key)};
    const toml::node* node = t.table->get(key);
    if (node == nullptr) return sub;
    sub.table = node->as_table();
    if (sub.table == nullptr) return TypeError(*node, sub.path, "a table");
    return sub;
  }

  Result<StrValue> StringOf(const toml::node& node, const std::string& key) const {
    const toml::value<std::string>* value = node.as_string();
    if (value == nullptr) return TypeError(node, key, "a string");
    auto expanded = SubstituteVariables(value->get(), env_);
    if (!expanded.ok()) return Error(node.source(), key + ": " + expanded.status().message());
    return StrValue{std::move(expanded->text), std::move(expanded->from_env), node.source()};
  }

  // The string `key` of `t`, or nullopt when absent.
  Result<std::optional<StrValue>> OptString(const TableRef& t, std::string_view key) const {
    const toml::node* node = t.table->get(key);
    if (node == nullptr) return std::optional<StrValue>();
    ROCKY_ASSIGN_OR_RETURN(StrValue value, StringOf(*node, Join(t.path, key)));
    return std::optional<StrValue>(std::move(value));
  }

  // Sets *out when `key` is present.
  Status String(const TableRef& t, std::string_view key, std::string* out) const {
    ROCKY_ASSIGN_OR_RETURN(std::optional<StrValue> value, OptString(t, key));
    if (value.has_value()) *out = std::move(value->text);
    return Status::OK();
  }

  // A string that must be present and non-empty (after substitution).
  Result<StrValue> RequiredString(const TableRef& t, std::string_view key) const {
    ROCKY_ASSIGN_OR_RETURN(std::optional<StrValue> value, OptString(t, key));
    if (!value.has_value()) return Error(t.table->source(), "missing required key " + Join(t.path, key));
    if (value->text.empty()) return Error(value->where, Join(t.path, key) + " must not be empty");
    return std::move(*value);
  }

  // Sets *out when `key` is present; `allowed` are the only spellings accepted.
  Status Enum(const TableRef& t, std::string_view key, std::initializer_list<std::string_view> allowed,
              std::string* out) const {
    ROCKY_ASSIGN_OR_RETURN(std::optional<StrValue> value, OptString(t, key));
    if (!value.has_value()) return Status::OK();
    if (std::find(allowed.begin(), allowed.end(), value->text) == allowed.end()) {
      return Error(value->where,
                   Join(t.path, key) + " must be one of " + JoinList(allowed) + "; got " + value->Shown());
    }
    *out = std::move(value->text);
    return Status::OK();
  }

  // Sets *out when `key` is present; the integer must lie in [min, max].
  template <typename T>
  Status Integer(const TableRef& t, std::string_view key, T min, T* out) const {
    const toml::node* node = t.table->get(key);
    if (node == nullptr) return Status::OK();
    std::string name = Join(t.path, key);
    const toml::value<int64_t>* value = node->as_integer();
    if (value == nullptr) return TypeError(*node, name, "an integer");
    int64_t v = value->get();
    constexpr uint64_t kMax = std::numeric_limits<T>::max();
    if (v < 0 || static_cast<uint64_t>(v) < min || static_cast<uint64_t>(v) > kMax) {
      std::string range = kMax >= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                              ? "at least " + std::to_string(min)
                              : "between " + std::to_string(min) + " and " + std::to_string(kMax);
      return Error(node->source(), name + " must be " + range + ", got " + std::to_string(v));
    }
    *out = static_cast<T>(v);
    return Status::OK();
  }

  // Sets *out when `key` is present. An integer is accepted for a float key (backoff_multiplier = 2).
  Status Number(const TableRef& t, std::string_view key, double* out, const toml::node** where) const {
    const toml::node* node = t.table->get(key);
    if (node == nullptr) return Status::OK();
    std::string name = Join(t.path, key);
    double v = 0;
    if (const auto* i = node->as_integer()) {
      v = static_cast<double>(i->get());
    } else if (const auto* f = node->as_floating_point()) {
      v = f->get();
    } else {
      return TypeError(*node, name, "a number");
    }
    if (!std::isfinite(v)) return Error(node->source(), name + " must be a finite number");
    *out = v;
    *where = node;
    return Status::OK();
  }

  Status Bool(const TableRef& t, std::string_view key, bool* out) const {
    const toml::node* node = t.table->get(key);
    if (node == nullptr) return Status::OK();
    const toml::value<bool>* value = node->as_boolean();
    if (value == nullptr) return TypeError(*node, Join(t.path, key), "a boolean");
    *out = value->get();
    return Status::OK();
  }

  // [adapter] (one adapter, named "default") or [adapter.NAME] tables (Rocky's named adapters): the first
  // form is recognised by a `type`, `path` or `url` key directly under [adapter].
  Status ReadAdapters(const TableRef& top, std::vector<AdapterConfig>* out) const {
    ROCKY_ASSIGN_OR_RETURN(TableRef t, SubTable(top, "adapter"));
    const bool unnamed = t.table == nullptr || t.table->empty() || t.table->contains("type") ||
                         t.table->contains("path") || t.table->contains("url") ||
                         t.table->contains("mark_source_changes");
    if (unnamed) {
      AdapterConfig adapter;
      adapter.name = "default";
      ROCKY_RETURN_IF_ERROR(ReadAdapter(t, &adapter));
      out->push_back(std::move(adapter));
      return Status::OK();
    }
    for (auto&& [key, node] : *t.table) {
      const std::string_view name = key.str();
      const bool valid_name = std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '-';
      });
      if (!valid_name) {
        return Error(key.source(), "adapter name " + Quoted(KeyText(name)) +
                                       " must be made of letters, digits, '_' and '-'");
      }
      const toml::table* table = node.as_table();
      if (table == nullptr) {
        // A misspelt key of the one-adapter form, most likely.
        return Error(key.source(),
                     "unknown key " + Quoted(KeyText(name)) +
                         " in adapter (allowed: type, path, url, mark_source_changes; or [adapter.NAME] "
                         "tables)");
      }
      AdapterConfig adapter;
      adapter.name = std::string(name);
      ROCKY_RETURN_IF_ERROR(ReadAdapter(TableRef{table, Join(t.path, name)}, &adapter));
      out->push_back(std::move(adapter));
    }
    std::sort(out->begin(), out->end(),
              [](const AdapterConfig& a, const AdapterConfig& b) { return a.name < b.name; });
    return Status::OK();
  }

  // One adapter's keys; `t.table` null means an absent [adapter]: the embedded SQLite default.
  Status ReadAdapter(const TableRef& t, AdapterConfig* out) const {
    std::string path = "warehouse";
    if (t.table != nullptr) {
      ROCKY_RETURN_IF_ERROR(CheckKeys(t, {"type", "path", "url", "mark_source_changes"}));
      ROCKY_RETURN_IF_ERROR(Enum(t, "type", {"sqlite", "postgres"}, &out->type));
      ROCKY_RETURN_IF_ERROR(Bool(t, "mark_source_changes", &out->mark_source_changes));
      if (out->mark_source_changes && out->type != "postgres") {
        return Error(t.table->get("mark_source_changes")->source(),
                     Join(t.path, "mark_source_changes") +
                         " is for type = \"postgres\" (SQLite versions its files without it)");
      }
      ROCKY_ASSIGN_OR_RETURN(std::optional<StrValue> value, OptString(t, "path"));
      ROCKY_ASSIGN_OR_RETURN(std::optional<StrValue> url, OptString(t, "url"));
      if (out->type == "postgres") {
        if (value.has_value()) {
          return Error(value->where,
                       Join(t.path, "path") + " is for type = \"sqlite\"; a postgres adapter takes url");
        }
        if (!url.has_value()) {
          return Error(t.table->source(), "missing required key " + Join(t.path, "url") +
                                              " (type = \"postgres\": a libpq URI or keyword string, e.g. "
                                              "url = \"${PG_URL}\")");
        }
        // The URL may hold a password: never shown, whether it came from the environment or not.
        if (url->text.empty()) return Error(url->where, Join(t.path, "url") + " must not be empty");
        out->url = std::move(url->text);
        out->path.clear();
        return Status::OK();
      }
      if (url.has_value()) {
        return Error(url->where,
                     Join(t.path, "url") + " is for type = \"postgres\"; a sqlite adapter takes path");
      }
      if (value.has_value()) {
        if (value->text.empty()) return Error(value->where, Join(t.path, "path") + " must not be empty");
        path = std::move(value->text);
      }
    }
    // operator/ keeps an absolute `path` as is.
    out->path = (std::filesystem::path(base_dir_) / path).string();
    return Status::OK();
  }

  // Resolves each pipeline's source and target adapter names (Rocky's default: "default", or the only
  // adapter), and picks Config::adapter.
  Status ResolveAdapters(const toml::table& root, Config* config) const {
    const auto find = [&](std::string_view name) -> const AdapterConfig* {
      for (const AdapterConfig& a : config->adapters) {
        if (a.name == name) return &a;
      }
      return nullptr;
    };
    std::string names;
    for (const AdapterConfig& a : config->adapters) names += (names.empty() ? "" : ", ") + Quoted(a.name);
    const toml::table* pipelines = root["pipeline"].as_table();
    for (PipelineConfig& pipeline : config->pipelines) {
      const toml::table* table = pipelines != nullptr ? (*pipelines)[pipeline.name].as_table() : nullptr;
      for (const char* side : {"source", "target"}) {
        std::string* name =
            std::string_view(side) == "source" ? &pipeline.source_adapter : &pipeline.target_adapter;
        const std::string key = "pipeline." + pipeline.name + "." + side + ".adapter";
        const toml::node* node = table != nullptr ? (*table)[side]["adapter"].node() : nullptr;
        if (name->empty()) {
          if (find("default") != nullptr) {
            *name = "default";
          } else if (config->adapters.size() == 1) {
            *name = config->adapters.front().name;
          } else {
            return Error(table != nullptr ? table->source() : root.source(),
                         "missing required key " + key + " (several adapters are defined: " + names + ")");
          }
        } else if (find(*name) == nullptr) {
          return Error(node != nullptr ? node->source() : root.source(),
                       key + " names no adapter: " + Quoted(*name) + " (defined: " + names + ")");
        }
      }
      const AdapterConfig* source = find(pipeline.source_adapter);
      const AdapterConfig* target = find(pipeline.target_adapter);
      if (source->type != target->type || (source->type == "sqlite" && source->name != target->name)) {
        return Error(table != nullptr ? table->source() : root.source(),
                     "pipeline." + pipeline.name + " reads adapter " + Quoted(source->name) + " (" +
                         source->type + ") and writes adapter " + Quoted(target->name) + " (" + target->type +
                         "): a pipeline copies within one SQLite folder, or between PostgreSQL servers");
      }
    }
    const AdapterConfig* chosen = !config->pipelines.empty() ? find(config->pipelines.front().target_adapter)
                                  : find("default") != nullptr ? find("default")
                                                               : &config->adapters.front();
    config->adapter = *chosen;
    return Status::OK();
  }

  Status ReadState(const TableRef& top, StateConfig* out) const {
    ROCKY_ASSIGN_OR_RETURN(TableRef t, SubTable(top, "state"));
    if (t.table == nullptr) return Status::OK();
    ROCKY_RETURN_IF_ERROR(
        CheckKeys(t, {"backend", "s3_bucket", "s3_prefix", "s3_region", "s3_endpoint", "valkey_url",
                      "valkey_prefix", "valkey_ca_file", "transfer_timeout_seconds",
                      "upload_interval_seconds", "on_upload_failure", "lease_seconds", "retry"}));
    std::string backend = "local";
    ROCKY_RETURN_IF_ERROR(Enum(t, "backend", {"local", "s3", "valkey", "tiered"}, &backend));
    out->backend = backend == "s3"       ? StateBackend::kS3
                   : backend == "valkey" ? StateBackend::kValkey
                   : backend == "tiered" ? StateBackend::kTiered
                                         : StateBackend::kLocal;
    ROCKY_RETURN_IF_ERROR(String(t, "s3_bucket", &out->s3_bucket));
    ROCKY_RETURN_IF_ERROR(String(t, "s3_prefix", &out->s3_prefix));
    ROCKY_RETURN_IF_ERROR(String(t, "s3_region", &out->s3_region));
    ROCKY_RETURN_IF_ERROR(String(t, "s3_endpoint", &out->s3_endpoint));
    ROCKY_RETURN_IF_ERROR(String(t, "valkey_url", &out->valkey_url));
    ROCKY_RETURN_IF_ERROR(String(t, "valkey_prefix", &out->valkey_prefix));
    ROCKY_ASSIGN_OR_RETURN(std::optional<StrValue> ca_file, OptString(t, "valkey_ca_file"));
    // Empty (e.g. "${VALKEY_CA_FILE:-}" unset) means the system store, so it is not resolved to the folder.
    if (ca_file.has_value() && !ca_file->text.empty()) {
      out->valkey_ca_file = (std::filesystem::path(base_dir_) / ca_file->text).string();
    }
    ROCKY_RETURN_IF_ERROR(
        Integer<uint64_t>(t, "transfer_timeout_seconds", 1, &out->transfer_timeout_seconds));
    ROCKY_RETURN_IF_ERROR(Integer<uint64_t>(t, "upload_interval_seconds", 0, &out->upload_interval_seconds));
    ROCKY_RETURN_IF_ERROR(Integer<uint64_t>(t, "lease_seconds", 1, &out->lease_seconds));
    std::string policy = "skip";
    ROCKY_RETURN_IF_ERROR(Enum(t, "on_upload_failure", {"skip", "fail"}, &policy));
    out->on_upload_failure = policy == "fail" ? UploadFailurePolicy::kFail : UploadFailurePolicy::kSkip;
    ROCKY_RETURN_IF_ERROR(ReadRetry(t, &out->retry));

    // Only reached with an explicit backend (local needs nothing), so `backend` has a position.
    bool needs_s3 = out->backend == StateBackend::kS3 || out->backend == StateBackend::kTiered;
    bool needs_valkey = out->backend == StateBackend::kValkey || out->backend == StateBackend::kTiered;
    const toml::node* backend_node = t.table->get("backend");
    if (needs_s3 && out->s3_bucket.empty()) {
      return Error(backend_node->source(),
                   "state.backend = \"" + backend + "\" requires state.s3_bucket (missing or empty)");
    }
    if (needs_valkey && out->valkey_url.empty()) {
      return Error(backend_node->source(),
                   "state.backend = \"" + backend + "\" requires state.valkey_url (missing or empty)");
    }
    return Status::OK();
  }

  Status ReadRetry(const TableRef& state, RetryConfig* out) const {
    ROCKY_ASSIGN_OR_RETURN(TableRef t, SubTable(state, "retry"));
    if (t.table == nullptr) return Status::OK();
    ROCKY_RETURN_IF_ERROR(CheckKeys(
        t, {"max_retries", "initial_backoff_ms", "max_backoff_ms", "backoff_multiplier", "jitter",
            "circuit_breaker_threshold", "circuit_breaker_recovery_timeout_seconds", "max_retries_per_run"}));
    ROCKY_RETURN_IF_ERROR(Integer<uint32_t>(t, "max_retries", 0, &out->max_retries));
    ROCKY_RETURN_IF_ERROR(Integer<uint64_t>(t, "initial_backoff_ms", 0, &out->initial_backoff_ms));
    ROCKY_RETURN_IF_ERROR(Integer<uint64_t>(t, "max_backoff_ms", 0, &out->max_backoff_ms));
    const toml::node* multiplier = nullptr;
    ROCKY_RETURN_IF_ERROR(Number(t, "backoff_multiplier", &out->backoff_multiplier, &multiplier));
    if (multiplier != nullptr && out->backoff_multiplier < 1.0) {
      return Error(multiplier->source(), "state.retry.backoff_multiplier must be at least 1.0, got " +
                                             FormatNumber(out->backoff_multiplier));
    }
    ROCKY_RETURN_IF_ERROR(Bool(t, "jitter", &out->jitter));
    ROCKY_RETURN_IF_ERROR(
        Integer<uint32_t>(t, "circuit_breaker_threshold", 0, &out->circuit_breaker_threshold));
    ROCKY_RETURN_IF_ERROR(Integer<uint64_t>(t, "circuit_breaker_recovery_timeout_seconds", 1,
                                            &out->circuit_breaker_recovery_timeout_seconds));
    ROCKY_RETURN_IF_ERROR(Integer<uint32_t>(t, "max_retries_per_run", 0, &out->max_retries_per_run));
    if (out->max_backoff_ms < out->initial_backoff_ms) {
      const toml::node* at = t.table->get("max_backoff_ms");
      if (at == nullptr) at = t.table->get("initial_backoff_ms");
      return Error(at->source(), "state.retry.max_backoff_ms (" + std::to_string(out->max_backoff_ms) +
                                     ") must be at least state.retry.initial_backoff_ms (" +
                                     std::to_string(out->initial_backoff_ms) + ")");
    }
    return Status::OK();
  }

  static std::string FormatNumber(double v) {
    std::string s = std::to_string(v);  // "0.500000": trim the zeros
    while (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
    return s;
  }

  Status ReadPipelines(const TableRef& top, std::vector<PipelineConfig>* out) const {
    ROCKY_ASSIGN_OR_RETURN(TableRef t, SubTable(top, "pipeline"));
    if (t.table == nullptr) return Status::OK();
    for (auto&& [key, node] : *t.table) {
      std::string_view name = key.str();
      std::string path = Join(t.path, name);
      bool valid_name = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '-';
      });
      // Names show up in commands and state keys, so they are kept to what needs no quoting anywhere.
      if (!valid_name) {
        return Error(key.source(), "pipeline name " + Quoted(KeyText(name)) +
                                       " must be made of letters, digits, '_' and '-'");
      }
      const toml::table* table = node.as_table();
      if (table == nullptr) return TypeError(node, path, "a table");
      PipelineConfig pipeline;
      pipeline.name = std::string(name);
      ROCKY_RETURN_IF_ERROR(ReadPipeline(TableRef{table, path}, &pipeline));
      out->push_back(std::move(pipeline));
    }
    std::sort(out->begin(), out->end(),
              [](const PipelineConfig& a, const PipelineConfig& b) { return a.name < b.name; });
    return Status::OK();
  }

  Status ReadPipeline(const TableRef& t, PipelineConfig* out) const {
    ROCKY_RETURN_IF_ERROR(
        CheckKeys(t, {"type", "timestamp_column", "cursor_type", "strategy", "merge_keys", "lookback_seconds",
                      "metadata_columns", "source", "target", "checks"}));
    ROCKY_RETURN_IF_ERROR(Enum(t, "type", {"replication"}, &out->type));
    ROCKY_ASSIGN_OR_RETURN(std::optional<StrValue> ts, OptString(t, "timestamp_column"));
    if (ts.has_value()) {
      if (ts->text.empty()) return Error(ts->where, t.path + ".timestamp_column must not be empty");
      out->timestamp_column = std::move(ts->text);
    }
    ROCKY_RETURN_IF_ERROR(ReadStrategy(t, out));
    ROCKY_RETURN_IF_ERROR(ReadMetadataColumns(t, &out->metadata_columns));

    ROCKY_ASSIGN_OR_RETURN(TableRef source, SubTable(t, "source"));
    if (source.table == nullptr) return Error(t.table->source(), "missing required table " + source.path);
    ROCKY_RETURN_IF_ERROR(CheckKeys(source, {"adapter", "catalog", "schema_pattern"}));
    ROCKY_RETURN_IF_ERROR(String(source, "adapter", &out->source_adapter));
    ROCKY_ASSIGN_OR_RETURN(StrValue catalog, RequiredString(source, "catalog"));
    out->source_catalog = std::move(catalog.text);
    bool components_from_env = false;
    ROCKY_RETURN_IF_ERROR(ReadSchemaPattern(source, &out->schema_pattern, &components_from_env));

    ROCKY_ASSIGN_OR_RETURN(TableRef target, SubTable(t, "target"));
    if (target.table == nullptr) return Error(t.table->source(), "missing required table " + target.path);
    ROCKY_RETURN_IF_ERROR(CheckKeys(target, {"adapter", "catalog_template", "schema_template"}));
    ROCKY_RETURN_IF_ERROR(String(target, "adapter", &out->target_adapter));
    ROCKY_ASSIGN_OR_RETURN(StrValue catalog_template, RequiredString(target, "catalog_template"));
    ROCKY_RETURN_IF_ERROR(CheckTemplate(catalog_template, target.path + ".catalog_template",
                                        out->schema_pattern, components_from_env));
    out->catalog_template = std::move(catalog_template.text);
    ROCKY_ASSIGN_OR_RETURN(StrValue schema_template, RequiredString(target, "schema_template"));
    ROCKY_RETURN_IF_ERROR(CheckTemplate(schema_template, target.path + ".schema_template",
                                        out->schema_pattern, components_from_env));
    out->schema_template = std::move(schema_template.text);

    return ReadChecks(t, &out->checks);
  }

  // cursor_type, strategy, merge_keys and lookback_seconds, and the rules that tie them together; each error
  // points at the key that is wrong (or at the pipeline's table when a required key is missing).
  Status ReadStrategy(const TableRef& t, PipelineConfig* out) const {
    std::string cursor_type = "timestamp";
    ROCKY_RETURN_IF_ERROR(Enum(t, "cursor_type", {"timestamp", "integer"}, &cursor_type));
    out->cursor_type = cursor_type == "integer" ? CursorType::kInteger : CursorType::kTimestamp;
    std::string strategy = "incremental";
    ROCKY_RETURN_IF_ERROR(Enum(t, "strategy", {"incremental", "full_refresh", "merge"}, &strategy));
    out->strategy = strategy == "merge"          ? Strategy::kMerge
                    : strategy == "full_refresh" ? Strategy::kFullRefresh
                                                 : Strategy::kIncremental;
    const toml::node* keys = t.table->get("merge_keys");
    if (keys != nullptr) {
      const std::string path = Join(t.path, "merge_keys");
      const toml::array* array = keys->as_array();
      if (array == nullptr) return TypeError(*keys, path, "an array of strings");
      if (out->strategy != Strategy::kMerge) {
        return Error(keys->source(),
                     path + " is only used by strategy = \"merge\" (this pipeline's strategy is \"" +
                         strategy + "\")");
      }
      if (array->empty()) return Error(keys->source(), path + " must list at least one column");
      std::set<std::string> seen;
      for (size_t i = 0; i < array->size(); ++i) {
        const std::string entry_path = path + "[" + std::to_string(i) + "]";
        ROCKY_ASSIGN_OR_RETURN(StrValue key, StringOf(*array->get(i), entry_path));
        if (key.text.empty()) return Error(key.where, entry_path + " must not be empty");
        if (!seen.insert(key.text).second)
          return Error(key.where, entry_path + ": column " + key.Shown() + " is listed twice");
        out->merge_keys.push_back(std::move(key.text));
      }
    } else if (out->strategy == Strategy::kMerge) {
      return Error(t.table->get("strategy")->source(),
                   t.path +
                       ": strategy = \"merge\" requires merge_keys (the columns that identify a row, e.g. "
                       "merge_keys = [\"id\"])");
    }
    ROCKY_RETURN_IF_ERROR(Integer<uint64_t>(t, "lookback_seconds", 0, &out->lookback_seconds));
    if (out->lookback_seconds > 0) {
      const toml::node* at = t.table->get("lookback_seconds");
      if (out->strategy != Strategy::kMerge) {
        return Error(at->source(),
                     t.path +
                         ".lookback_seconds re-reads rows already copied, which only strategy = "
                         "\"merge\" replaces on its keys; with strategy = \"" +
                         strategy + "\" they would " +
                         (out->strategy == Strategy::kIncremental
                              ? "be appended again (duplicates)"
                              : "gain nothing (every run reloads the whole table)"));
      }
      if (out->cursor_type != CursorType::kTimestamp) {
        return Error(at->source(),
                     t.path +
                         ".lookback_seconds needs cursor_type = \"timestamp\" (an integer cursor "
                         "has no seconds)");
      }
    }
    return Status::OK();
  }

  Status ReadMetadataColumns(const TableRef& pipeline, std::vector<MetadataColumn>* out) const {
    const toml::node* node = pipeline.table->get("metadata_columns");
    if (node == nullptr) return Status::OK();
    std::string path = Join(pipeline.path, "metadata_columns");
    const toml::array* array = node->as_array();
    if (array == nullptr) return TypeError(*node, path, "an array of tables");
    std::set<std::string> names;
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& entry = *array->get(i);
      std::string entry_path = path + "[" + std::to_string(i) + "]";
      const toml::table* table = entry.as_table();
      if (table == nullptr) return TypeError(entry, entry_path, "a table");
      TableRef t{table, entry_path};
      ROCKY_RETURN_IF_ERROR(CheckKeys(t, {"name", "type", "value"}));
      MetadataColumn column;
      ROCKY_ASSIGN_OR_RETURN(StrValue name, RequiredString(t, "name"));
      ROCKY_ASSIGN_OR_RETURN(StrValue type, RequiredString(t, "type"));
      ROCKY_ASSIGN_OR_RETURN(StrValue value, RequiredString(t, "value"));
      if (!names.insert(name.text).second) {
        return Error(name.where, entry_path + ".name: column " + name.Shown() + " is listed twice");
      }
      out->push_back(MetadataColumn{std::move(name.text), std::move(type.text), std::move(value.text)});
    }
    return Status::OK();
  }

  // *from_env: whether a component name came from the environment (so names must not be listed in messages).
  Status ReadSchemaPattern(const TableRef& source, SchemaPattern* out, bool* from_env) const {
    ROCKY_ASSIGN_OR_RETURN(TableRef t, SubTable(source, "schema_pattern"));
    if (t.table == nullptr) return Error(source.table->source(), "missing required key " + t.path);
    ROCKY_RETURN_IF_ERROR(CheckKeys(t, {"prefix", "separator", "components"}));
    ROCKY_RETURN_IF_ERROR(String(t, "prefix", &out->prefix));
    ROCKY_ASSIGN_OR_RETURN(std::optional<StrValue> separator, OptString(t, "separator"));
    if (separator.has_value()) {
      if (separator->text.empty()) return Error(separator->where, t.path + ".separator must not be empty");
      out->separator = std::move(separator->text);
    }
    std::string path = Join(t.path, "components");
    const toml::node* node = t.table->get("components");
    if (node == nullptr) return Error(t.table->source(), "missing required key " + path);
    const toml::array* array = node->as_array();
    if (array == nullptr) return TypeError(*node, path, "an array of strings");
    if (array->empty()) return Error(node->source(), path + " must list at least one component");
    std::set<std::string> names;
    bool variadic_seen = false;
    for (size_t i = 0; i < array->size(); ++i) {
      std::string entry_path = path + "[" + std::to_string(i) + "]";
      ROCKY_ASSIGN_OR_RETURN(StrValue component, StringOf(*array->get(i), entry_path));
      std::string_view name = WithoutEllipsis(component.text);
      bool variadic = name.size() != component.text.size();
      *from_env = *from_env || !component.from_env.empty();
      if (!IsComponentName(name)) {
        return Error(component.where, entry_path + ": component name " + component.Shown(name) +
                                          " must be letters, digits and '_' (optionally ending in \"...\")");
      }
      if (variadic && variadic_seen) {
        return Error(component.where,
                     entry_path + ": only one component may end in \"...\" (take several parts)");
      }
      variadic_seen = variadic_seen || variadic;
      if (!names.insert(std::string(name)).second) {
        return Error(component.where,
                     entry_path + ": component " + component.Shown(name) + " is listed twice");
      }
      out->components.push_back(std::move(component.text));
    }
    return Status::OK();
  }

  static std::string_view WithoutEllipsis(std::string_view component) {
    if (component.ends_with("...")) component.remove_suffix(3);
    return component;
  }

  static std::string ComponentNames(const SchemaPattern& pattern) {
    std::string list;
    for (const std::string& c : pattern.components) {
      if (!list.empty()) list += ", ";
      list += WithoutEllipsis(c);
    }
    return list;
  }

  static bool IsComponentName(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
  }

  // Every {placeholder} must name a component of the pattern (without its "..."), braces balanced.
  // `components_from_env`: the component names hold environment values and are not listed.
  Status CheckTemplate(const StrValue& value, const std::string& key, const SchemaPattern& pattern,
                       bool components_from_env) const {
    std::string_view text = value.text;
    size_t i = 0;
    while (i < text.size()) {
      if (text[i] == '}') return Error(value.where, key + ": '}' without a matching '{'");
      if (text[i] != '{') {
        ++i;
        continue;
      }
      size_t close = text.find_first_of("{}", i + 1);
      if (close == std::string_view::npos || text[close] != '}') {
        return Error(value.where, key + ": '{' without a matching '}'");
      }
      std::string_view name = text.substr(i + 1, close - i - 1);
      bool known = std::any_of(pattern.components.begin(), pattern.components.end(),
                               [&](const std::string& c) { return WithoutEllipsis(c) == name; });
      if (!known) {
        std::string placeholder = value.from_env.empty() ? "placeholder {" + std::string(name) + "}"
                                                         : "a placeholder in " + value.Shown();
        std::string list = components_from_env ? "" : " (components: " + ComponentNames(pattern) + ")";
        return Error(value.where,
                     key + ": " + placeholder + " is not a component of the schema pattern" + list);
      }
      i = close + 1;
    }
    return Status::OK();
  }

  Status ReadChecks(const TableRef& pipeline, ChecksConfig* out) const {
    ROCKY_ASSIGN_OR_RETURN(TableRef t, SubTable(pipeline, "checks"));
    if (t.table == nullptr) return Status::OK();
    ROCKY_RETURN_IF_ERROR(CheckKeys(
        t, {"enabled", "row_count", "freshness", "anomaly_threshold_pct", "history_length", "min_history"}));
    ROCKY_RETURN_IF_ERROR(Bool(t, "enabled", &out->enabled));
    ROCKY_RETURN_IF_ERROR(Bool(t, "row_count", &out->row_count));
    ROCKY_ASSIGN_OR_RETURN(TableRef freshness, SubTable(t, "freshness"));
    if (freshness.table != nullptr) {
      ROCKY_RETURN_IF_ERROR(CheckKeys(freshness, {"threshold_seconds"}));
      if (freshness.table->get("threshold_seconds") == nullptr) {
        return Error(freshness.table->source(),
                     "missing required key " + freshness.path + ".threshold_seconds");
      }
      FreshnessCheck check;
      ROCKY_RETURN_IF_ERROR(Integer<uint64_t>(freshness, "threshold_seconds", 1, &check.threshold_seconds));
      out->freshness = check;
    }
    const toml::node* pct = nullptr;
    ROCKY_RETURN_IF_ERROR(Number(t, "anomaly_threshold_pct", &out->anomaly_threshold_pct, &pct));
    if (pct != nullptr && out->anomaly_threshold_pct <= 0) {
      return Error(pct->source(), t.path + ".anomaly_threshold_pct must be greater than 0, got " +
                                      FormatNumber(out->anomaly_threshold_pct));
    }
    ROCKY_RETURN_IF_ERROR(Integer<uint32_t>(t, "history_length", 1, &out->history_length));
    ROCKY_RETURN_IF_ERROR(Integer<uint32_t>(t, "min_history", 1, &out->min_history));
    if (out->min_history > out->history_length) {
      const toml::node* at = t.table->get("min_history");
      if (at == nullptr) at = t.table->get("history_length");
      return Error(at->source(), t.path + ".min_history (" + std::to_string(out->min_history) +
                                     ") must be at most " + t.path + ".history_length (" +
                                     std::to_string(out->history_length) + ")");
    }
    return Status::OK();
  }

  std::string source_name_;
  std::string base_dir_;
  const EnvLookup& env_;
};

Result<toml::table> ParseToml(std::string_view text, std::string_view source_name) {
  auto error = [&](const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    return Status::InvalidArgument(OneLine(std::string(source_name) + ":" + std::to_string(at.line) + ":" +
                                           std::to_string(at.column) + ": " + std::string(e.description())));
  };
#if TOML_EXCEPTIONS
  try {
    return toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return error(e);
  }
#else
  toml::parse_result result = toml::parse(text, source_name);
  if (!result) return error(result.error());
  return std::move(result).table();
#endif
}

std::string ErrnoText(int err) { return std::system_category().message(err); }

}  // namespace

std::string_view ToString(StateBackend backend) {
  switch (backend) {
    case StateBackend::kLocal: return "local";
    case StateBackend::kS3: return "s3";
    case StateBackend::kValkey: return "valkey";
    case StateBackend::kTiered: return "tiered";
  }
  return "unknown";
}

std::string_view ToString(Strategy strategy) {
  switch (strategy) {
    case Strategy::kIncremental: return "incremental";
    case Strategy::kFullRefresh: return "full_refresh";
    case Strategy::kMerge: return "merge";
  }
  return "unknown";
}

std::string_view ToString(CursorType type) {
  switch (type) {
    case CursorType::kTimestamp: return "timestamp";
    case CursorType::kInteger: return "integer";
  }
  return "unknown";
}

std::string_view ToString(UploadFailurePolicy policy) {
  switch (policy) {
    case UploadFailurePolicy::kSkip: return "skip";
    case UploadFailurePolicy::kFail: return "fail";
  }
  return "unknown";
}

EnvLookup ProcessEnvironment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

Result<Config> ParseConfig(std::string_view text, std::string_view source_name, std::string_view base_dir,
                           const EnvLookup& env) {
  // toml++ reports syntax errors by exception, and `env` is the caller's code: nothing may escape.
  try {
    ROCKY_ASSIGN_OR_RETURN(toml::table root, ParseToml(text, source_name));
    return Reader(source_name, base_dir, env).Read(root);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(OneLine(std::string(source_name) + ": " + e.what()));
  } catch (...) {
    return Status::InvalidArgument(OneLine(std::string(source_name) + ": unexpected error while reading"));
  }
}

Result<Config> LoadConfigFile(const std::string& path, const EnvLookup& env) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) return Status::NotFound(OneLine("config file " + Quoted(path) + " not found"));
    return Status::IOError(OneLine("cannot read config file " + Quoted(path) + ": " + ErrnoText(err)));
  }
  if (S_ISDIR(st.st_mode)) {
    return Status::IOError(OneLine("cannot read config file " + Quoted(path) + ": " + ErrnoText(EISDIR)));
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return Status::IOError(OneLine("cannot read config file " + Quoted(path) + ": " + ErrnoText(err)));
  }
  std::string text;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::IOError(OneLine("cannot read config file " + Quoted(path) + ": " + ErrnoText(err)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);

  // adapter.path is relative to the folder holding the file, made absolute so that it works from any
  // working directory.
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  std::filesystem::path base = ec ? std::filesystem::path(path).parent_path() : absolute.parent_path();
  return ParseConfig(text, path, base.string(), env);
}

namespace {

constexpr std::string_view kHidden = "***";

// One URL (or a scheme-less "user:pw@host..."), with its userinfo's password hidden (the whole userinfo when
// it has no ':', most likely a token or a password written without the ':') and every query value hidden.
// The userinfo runs to the LAST '@' (a password may hold an unescaped '@' or '/': hiding too much beats
// printing part of a secret).
std::string RedactOneUrl(std::string_view url) {
  const size_t scheme = url.find("://");
  const size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  std::string out(url.substr(0, start));
  std::string_view rest = url.substr(start);
  const size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    const size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      out += userinfo.empty() ? "" : kHidden;
    } else {
      out += userinfo.substr(0, colon + 1);
      if (colon + 1 < userinfo.size()) out += kHidden;
    }
    out += '@';
    rest = rest.substr(at + 1);
  }
  const size_t query = rest.find('?');
  if (query == std::string_view::npos) return out + std::string(rest);
  out += rest.substr(0, query + 1);
  std::string_view params = rest.substr(query + 1);
  const size_t fragment = params.find('#');
  const std::string_view tail =
      fragment == std::string_view::npos ? std::string_view() : params.substr(fragment);
  params = params.substr(0, fragment);
  bool first = true;
  while (true) {
    const size_t amp = params.find('&');
    const std::string_view param = params.substr(0, amp);
    if (!first) out += '&';
    first = false;
    const size_t eq = param.find('=');
    if (eq == std::string_view::npos || eq + 1 == param.size()) {
      out += param;
    } else {
      out += param.substr(0, eq + 1);
      out += kHidden;
    }
    if (amp == std::string_view::npos) break;
    params = params.substr(amp + 1);
  }
  return out + std::string(tail);
}

void ReplaceAll(std::string& text, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size())) {
    text.replace(at, what.size(), with);
  }
}

std::string PercentEncoded(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

bool IsSchemeChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
}

// Where a URL in running text ends: blanks, quotes, brackets, punctuation that follows a URL in a sentence,
// and a backslash (in JSON text it escapes the quote that closes the string: it must stay).
bool EndsUrl(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0 || c == '"' || c == '\'' || c == '<' || c == '>' ||
         c == '`' || c == ',' || c == ';' || c == ')' || c == '\\';
}

}  // namespace

const AdapterConfig* FindAdapter(const Config& config, std::string_view name) {
  for (const AdapterConfig& a : config.adapters) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string RedactUrl(std::string_view url) { return RedactOneUrl(url); }

std::vector<std::string> SecretsOf(const Config& config) {
  std::vector<std::string> secrets;
  // What RedactOneUrl hides of a URL's userinfo: the part after the first ':', or all of it without one.
  auto userinfo_secret = [&secrets](std::string_view url) {
    const size_t scheme = url.find("://");
    const size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
    const size_t at = url.rfind('@');
    if (at == std::string_view::npos || at < start) return;
    const std::string_view userinfo = url.substr(start, at - start);
    const size_t colon = userinfo.find(':');
    const std::string_view secret = colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1);
    if (secret.empty()) return;
    secrets.emplace_back(secret);
    // As a server may echo it: percent-decoded.
    std::string decoded;
    for (size_t i = 0; i < secret.size(); ++i) {
      if (secret[i] == '%' && i + 2 < secret.size() &&
          std::isxdigit(static_cast<unsigned char>(secret[i + 1])) != 0 &&
          std::isxdigit(static_cast<unsigned char>(secret[i + 2])) != 0) {
        auto hex = [](char c) {
          return std::isdigit(static_cast<unsigned char>(c)) != 0 ? c - '0' : (c | 0x20) - 'a' + 10;
        };
        decoded += static_cast<char>(hex(secret[i + 1]) * 16 + hex(secret[i + 2]));
        i += 2;
      } else {
        decoded += secret[i];
      }
    }
    if (decoded != secret) secrets.push_back(std::move(decoded));
  };
  userinfo_secret(config.state.valkey_url);
  userinfo_secret(config.state.s3_endpoint);
  // PostgreSQL adapters: a URI's userinfo, and a password keyword, in libpq's keyword form (password=pw,
  // password = 'p w' with \' and \\ escapes) or a URI's query (?password=pw, percent-decoded too).
  for (const AdapterConfig& adapter : config.adapters) {
    if (adapter.type != "postgres") continue;
    userinfo_secret(adapter.url);
    const std::string& url = adapter.url;
    constexpr std::string_view kKey = "password";
    for (size_t at = url.find(kKey); at != std::string::npos; at = url.find(kKey, at + kKey.size())) {
      size_t i = at + kKey.size();
      while (i < url.size() && url[i] == ' ') ++i;
      if (i >= url.size() || url[i] != '=') continue;
      ++i;
      while (i < url.size() && url[i] == ' ') ++i;
      std::string value;
      if (i < url.size() && url[i] == '\'') {
        for (++i; i < url.size() && url[i] != '\''; ++i) {
          if (url[i] == '\\' && i + 1 < url.size()) ++i;
          value += url[i];
        }
      } else {
        while (i < url.size() && url[i] != ' ' && url[i] != '&' && url[i] != '#') value += url[i++];
      }
      if (value.empty()) continue;
      const std::string as_userinfo = "x://x:" + value + "@";
      userinfo_secret(as_userinfo);  // the value and its percent-decoded form
    }
  }
  return secrets;
}

std::string Redact(std::string_view text, const std::vector<std::string>& secrets) {
  std::string out(text);
  for (const std::string& secret : secrets) {
    ReplaceAll(out, secret, kHidden);
    ReplaceAll(out, PercentEncoded(secret), kHidden);
  }
  // Redis and Valkey echo a command's first arguments in some error replies ("ERR unknown command 'AUTH',
  // with args beginning with: 'user' 'password'"): drop them, to the end of the line.
  constexpr std::string_view kArgs = "with args beginning with:";
  for (size_t at = out.find(kArgs); at != std::string::npos; at = out.find(kArgs, at + kArgs.size())) {
    const size_t end = out.find('\n', at);
    out.replace(at + kArgs.size(), (end == std::string::npos ? out.size() : end) - (at + kArgs.size()),
                " (not shown)");
  }
  // Every URL in the text.
  std::string result;
  size_t copied = 0;
  for (size_t sep = out.find("://"); sep != std::string::npos; sep = out.find("://", sep + 3)) {
    size_t begin = sep;
    while (begin > copied && IsSchemeChar(out[begin - 1])) --begin;
    if (begin == sep) continue;  // no scheme before "://"
    size_t end = sep + 3;
    while (end < out.size() && !EndsUrl(out[end])) ++end;
    result += out.substr(copied, begin - copied);
    result += RedactOneUrl(std::string_view(out).substr(begin, end - begin));
    copied = end;
    sep = end >= 3 ? end - 3 : end;
  }
  result += out.substr(copied);
  return result;
}

}  // namespace rocky::config
