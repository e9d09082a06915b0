#include "rocky/replication/plan.h"

#include <simdjson.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <utility>

#include "rocky/base/json_writer.h"
#include "rocky/base/strings.h"
#include "rocky/base/timestamp.h"
#include "rocky/state/store.h"
#include "rocky/warehouse/open.h"
#include "rocky/warehouse/schema_pattern.h"

namespace rocky::replication {

using base::Quoted;

namespace {

using base::JsonWriter;
using warehouse::TableRef;

// The tables, in the canonical form the id hashes and the state file stores.
void WriteTables(JsonWriter& json, const std::vector<TablePlan>& tables) {
  json.BeginArray();
  for (const TablePlan& t : tables) {
    json.BeginObject();
    json.Key("pipeline").String(t.pipeline);
    json.Key("source").String(t.source.Qualified());
    json.Key("target").String(t.target.Qualified());
    json.Key("timestamp_column").String(t.timestamp_column);
    json.Key("metadata_columns").BeginArray();
    for (const config::MetadataColumn& c : t.metadata_columns) {
      json.BeginObject()
          .Key("name")
          .String(c.name)
          .Key("type")
          .String(c.type)
          .Key("value")
          .String(c.value)
          .EndObject();
    }
    json.EndArray();
    if (t.cursor_type != config::CursorType::kTimestamp)
      json.Key("cursor_type").String(config::ToString(t.cursor_type));
    if (t.strategy != config::Strategy::kIncremental)
      json.Key("strategy").String(config::ToString(t.strategy));
    if (!t.merge_keys.empty()) {
      json.Key("merge_keys").BeginArray();
      for (const std::string& k : t.merge_keys) json.String(k);
      json.EndArray();
    }
    if (t.lookback_seconds != 0) json.Key("lookback_seconds").UInt(t.lookback_seconds);
    if (t.full_refresh_requested) json.Key("full_refresh_requested").Bool(true);
    json.Key("mode").String(ToString(t.mode));
    json.Key("state_watermark").OptionalString(t.state_watermark);
    json.Key("start_watermark").OptionalString(t.start_watermark);
    json.Key("sql").String(t.sql);
    json.EndObject();
  }
  json.EndArray();
}

// Reads the stored form back. Stored plans are our own output, so any mismatch is corruption.
class PlanReader {
 public:
  Status Error(std::string_view why) const { return Status::Corruption("stored plan: " + std::string(why)); }

  Result<std::string> String(simdjson::dom::object o, std::string_view key) const {
    std::string_view s;
    if (o[key].get_string().get(s) != simdjson::SUCCESS)
      return Error("field " + Quoted(key) + " is not a string");
    return std::string(s);
  }

  Result<std::optional<std::string>> OptionalString(simdjson::dom::object o, std::string_view key) const {
    simdjson::dom::element e;
    if (o[key].get(e) != simdjson::SUCCESS) return Error("missing field " + Quoted(key));
    if (e.is_null()) return std::optional<std::string>();
    std::string_view s;
    if (e.get_string().get(s) != simdjson::SUCCESS) return Error("field " + Quoted(key) + " is not a string");
    return std::optional<std::string>(std::string(s));
  }

  Result<TableRef> Table(simdjson::dom::object o, std::string_view key) const {
    ROCKY_ASSIGN_OR_RETURN(std::string text, String(o, key));
    auto ref = warehouse::ParseTableRef(text);
    if (!ref.ok()) return Error("field " + Quoted(key) + ": " + ref.status().message());
    return *ref;
  }
};

Result<CopyMode> ModeFromString(std::string_view s) {
  for (CopyMode m : {CopyMode::kFull, CopyMode::kIncremental, CopyMode::kRederived}) {
    if (ToString(m) == s) return m;
  }
  return Status::Corruption("stored plan: unknown mode " + Quoted(s));
}

}  // namespace

std::string_view ToString(CopyMode mode) {
  switch (mode) {
    case CopyMode::kFull: return "full";
    case CopyMode::kIncremental: return "incremental";
    case CopyMode::kRederived: return "rederived";
  }
  return "unknown";
}

bool GlobMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::vector<std::string> ClosestNames(std::string_view pattern, const std::vector<std::string>& names,
                                      size_t limit) {
  // Levenshtein distance with the glob's wildcards removed, so "acme.*.ordrs" still finds the orders tables.
  std::string needle;
  for (const char c : pattern) {
    if (c != '*' && c != '?') needle += c;
  }
  auto distance = [&](std::string_view name) {
    std::vector<size_t> row(name.size() + 1);
    for (size_t j = 0; j <= name.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= needle.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= name.size(); ++j) {
        const size_t above = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (needle[i - 1] == name[j - 1] ? 0 : 1)});
        diagonal = above;
      }
    }
    return row[name.size()];
  };
  std::vector<std::pair<size_t, std::string>> scored;
  for (const std::string& name : names) scored.emplace_back(distance(name), name);
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && out.size() < limit; ++i) {
    if (std::find(out.begin(), out.end(), scored[i].second) == out.end()) out.push_back(scored[i].second);
  }
  return out;
}

// The warehouse a plan was made for, printable (never a password): "sqlite:<folder>", or the PostgreSQL
// server(s) "postgres:user@host:port/db" ("SOURCE -> TARGET" for two).
namespace {

std::string PairId(const config::Config& config, const config::PipelineConfig& pipeline) {
  const config::AdapterConfig* source = config::FindAdapter(config, pipeline.source_adapter);
  const config::AdapterConfig* target = config::FindAdapter(config, pipeline.target_adapter);
  if (source == nullptr || target == nullptr) return warehouse::DescribeAdapter(config.adapter);
  if (source->name == target->name) return warehouse::DescribeAdapter(*target);
  return warehouse::DescribeAdapter(*source) + " -> " + warehouse::DescribeAdapter(*target);
}

}  // namespace

std::string WarehouseId(const config::Config& config) {
  if (config.pipelines.empty()) return warehouse::DescribeAdapter(config.adapter);
  const std::string first = PairId(config, config.pipelines.front());
  bool one = true;
  for (const config::PipelineConfig& p : config.pipelines) one = one && PairId(config, p) == first;
  if (one) return first;
  std::string id;
  for (const config::PipelineConfig& p : config.pipelines)
    id += (id.empty() ? "" : "; ") + p.name + "=" + PairId(config, p);
  return id;
}

Result<warehouse::Warehouse*> PipelineWarehouses::For(std::string_view pipeline) const {
  if (auto it = by_pipeline.find(pipeline); it != by_pipeline.end() && it->second != nullptr)
    return it->second;
  if (fallback != nullptr) return fallback;
  return Status::NotFound("pipeline " + Quoted(pipeline) + " has no warehouse (it is not in rocky.toml)");
}

std::string ComputePlanId(std::string_view warehouse, const std::vector<TablePlan>& tables) {
  JsonWriter json;
  json.BeginObject().Key("warehouse").String(warehouse).Key("tables");
  WriteTables(json, tables);
  json.EndObject();
  const XXH128_hash_t h = XXH3_128bits(json.str().data(), json.str().size());
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return hex;
}

std::string PlanToJson(const Plan& plan) {
  JsonWriter json;
  json.BeginObject()
      .Key("plan_id")
      .String(plan.plan_id)
      .Key("warehouse")
      .String(plan.warehouse)
      .Key("tables");
  WriteTables(json, plan.tables);
  json.EndObject();
  return json.str();
}

Result<Plan> PlanFromJson(std::string_view text) {
  const PlanReader reader;
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(text);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS) return reader.Error("not valid JSON");
  simdjson::dom::object root;
  if (doc.get_object().get(root) != simdjson::SUCCESS) return reader.Error("not a JSON object");
  Plan plan;
  ROCKY_ASSIGN_OR_RETURN(plan.plan_id, reader.String(root, "plan_id"));
  ROCKY_ASSIGN_OR_RETURN(plan.warehouse, reader.String(root, "warehouse"));
  simdjson::dom::array tables;
  if (root["tables"].get_array().get(tables) != simdjson::SUCCESS) return reader.Error("no 'tables' list");
  for (simdjson::dom::element e : tables) {
    simdjson::dom::object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) return reader.Error("a table entry is not an object");
    TablePlan t;
    ROCKY_ASSIGN_OR_RETURN(t.pipeline, reader.String(o, "pipeline"));
    ROCKY_ASSIGN_OR_RETURN(t.source, reader.Table(o, "source"));
    ROCKY_ASSIGN_OR_RETURN(t.target, reader.Table(o, "target"));
    ROCKY_ASSIGN_OR_RETURN(t.timestamp_column, reader.String(o, "timestamp_column"));
    simdjson::dom::array columns;
    if (o["metadata_columns"].get_array().get(columns) != simdjson::SUCCESS) {
      return reader.Error("no 'metadata_columns' list");
    }
    for (simdjson::dom::element c : columns) {
      simdjson::dom::object co;
      if (c.get_object().get(co) != simdjson::SUCCESS)
        return reader.Error("a metadata column is not an object");
      config::MetadataColumn column;
      ROCKY_ASSIGN_OR_RETURN(column.name, reader.String(co, "name"));
      ROCKY_ASSIGN_OR_RETURN(column.type, reader.String(co, "type"));
      ROCKY_ASSIGN_OR_RETURN(column.value, reader.String(co, "value"));
      t.metadata_columns.push_back(std::move(column));
    }
    {
      std::string_view text;
      if (o["cursor_type"].get_string().get(text) == simdjson::SUCCESS) {
        if (text == "integer") {
          t.cursor_type = config::CursorType::kInteger;
        } else if (text != "timestamp") {
          return reader.Error("unknown cursor_type " + Quoted(text));
        }
      }
      if (o["strategy"].get_string().get(text) == simdjson::SUCCESS) {
        if (text == "merge") {
          t.strategy = config::Strategy::kMerge;
        } else if (text == "full_refresh") {
          t.strategy = config::Strategy::kFullRefresh;
        } else if (text != "incremental") {
          return reader.Error("unknown strategy " + Quoted(text));
        }
      }
      simdjson::dom::array keys;
      if (o["merge_keys"].get_array().get(keys) == simdjson::SUCCESS) {
        for (simdjson::dom::element k : keys) {
          if (k.get_string().get(text) != simdjson::SUCCESS)
            return reader.Error("a merge key is not a string");
          t.merge_keys.emplace_back(text);
        }
      }
      uint64_t lookback = 0;
      if (o["lookback_seconds"].get_uint64().get(lookback) == simdjson::SUCCESS)
        t.lookback_seconds = lookback;
      bool requested = false;
      if (o["full_refresh_requested"].get_bool().get(requested) == simdjson::SUCCESS) {
        t.full_refresh_requested = requested;
      }
    }
    ROCKY_ASSIGN_OR_RETURN(std::string mode, reader.String(o, "mode"));
    ROCKY_ASSIGN_OR_RETURN(t.mode, ModeFromString(mode));
    ROCKY_ASSIGN_OR_RETURN(t.state_watermark, reader.OptionalString(o, "state_watermark"));
    ROCKY_ASSIGN_OR_RETURN(t.start_watermark, reader.OptionalString(o, "start_watermark"));
    ROCKY_ASSIGN_OR_RETURN(t.sql, reader.String(o, "sql"));
    plan.tables.push_back(std::move(t));
  }
  if (ComputePlanId(plan.warehouse, plan.tables) != plan.plan_id) {
    return reader.Error("plan " + Quoted(plan.plan_id) + " does not match its content");
  }
  return plan;
}

Result<Plan> BuildPlan(const config::Config& config, warehouse::Warehouse& warehouse,
                       state::StateStore& store, const PlanOptions& options) {
  return BuildPlan(config, PipelineWarehouses{.by_pipeline = {}, .fallback = &warehouse}, store, options);
}

Result<Plan> BuildPlan(const config::Config& config, const PipelineWarehouses& warehouses,
                       state::StateStore& store, const PlanOptions& options) {
  Plan plan;
  plan.warehouse = WarehouseId(config);
  std::map<std::string, std::string>
      source_of_target;  // target -> source, to catch two sources on one target
  for (const config::PipelineConfig& pipeline : config.pipelines) {
    const std::string where = "pipeline " + Quoted(pipeline.name);
    ROCKY_RETURN_IF_ERROR(warehouse::ValidateSchemaPattern(pipeline.schema_pattern).WithContext(where));
    ROCKY_ASSIGN_OR_RETURN(warehouse::Warehouse * found, warehouses.For(pipeline.name));
    warehouse::Warehouse& warehouse = *found;
    auto schemas = warehouse.ListSchemas(pipeline.source_catalog);
    if (!schemas.ok())
      return schemas.status().WithContext(where + ": source catalog " + Quoted(pipeline.source_catalog));
    for (const std::string& schema : *schemas) {
      std::optional<warehouse::SchemaComponents> components =
          warehouse::MatchSchema(pipeline.schema_pattern, schema);
      if (!components) continue;
      ROCKY_ASSIGN_OR_RETURN(std::string target_catalog,
                             warehouse::RenderTemplate(pipeline.catalog_template, *components));
      ROCKY_ASSIGN_OR_RETURN(std::string target_schema,
                             warehouse::RenderTemplate(pipeline.schema_template, *components));
      ROCKY_ASSIGN_OR_RETURN(std::vector<std::string> tables,
                             warehouse.ListTables(pipeline.source_catalog, schema));
      for (const std::string& table : tables) {
        TablePlan t;
        t.pipeline = pipeline.name;
        t.source = TableRef{pipeline.source_catalog, schema, table};
        t.target = TableRef{target_catalog, target_schema, table};
        const std::string target = t.target.Qualified();
        if (!options.table_pattern.empty() && !GlobMatch(options.table_pattern, target)) {
          plan.unmatched_targets.push_back(target);
          continue;
        }
        auto [it, inserted] = source_of_target.emplace(target, t.source.Qualified());
        if (!inserted) {
          return Status::InvalidArgument("two source tables map to the same target " + Quoted(target) + ": " +
                                         Quoted(it->second) + " and " + Quoted(t.source.Qualified()) +
                                         " (check the schema pattern and templates)");
        }
        t.timestamp_column = pipeline.timestamp_column;
        t.metadata_columns = pipeline.metadata_columns;
        t.cursor_type = pipeline.cursor_type;
        t.strategy = pipeline.strategy;
        t.merge_keys = pipeline.merge_keys;
        t.lookback_seconds = pipeline.lookback_seconds;
        t.full_refresh_requested = options.full_refresh;
        ROCKY_ASSIGN_OR_RETURN(std::optional<state::Watermark> watermark, store.GetWatermark(target));
        if (watermark) t.state_watermark = watermark->last_value;
        const bool reload = options.full_refresh || pipeline.strategy == config::Strategy::kFullRefresh;
        if (watermark && !reload) {
          // A watermark of the other kind means cursor_type changed since it was written: comparing an
          // integer with a timestamp would copy nothing or everything, silently.
          const bool is_integer = base::IsIntegerWatermark(watermark->last_value);
          if (is_integer != (t.cursor_type == config::CursorType::kInteger)) {
            return Status::InvalidArgument(
                "the watermark of " + Quoted(target) + " is " + Quoted(watermark->last_value) + ", " +
                (is_integer ? "an integer" : "a timestamp") + ", but pipeline " + Quoted(pipeline.name) +
                " has cursor_type = \"" + std::string(config::ToString(t.cursor_type)) +
                "\"; run 'rocky run --full-refresh --table " + target + "' to reload it");
          }
          t.mode = CopyMode::kIncremental;
          t.start_watermark = watermark->last_value;
        } else if (!watermark && !reload && options.state_lost) {
          ROCKY_ASSIGN_OR_RETURN(bool exists, warehouse.TableExists(t.target));
          if (exists) {
            ROCKY_ASSIGN_OR_RETURN(t.start_watermark,
                                   warehouse.MaxTimestamp(t.target, t.timestamp_column, t.cursor_type));
            // An empty target has nothing to derive from: copying everything is then the right thing.
            t.mode = t.start_watermark ? CopyMode::kRederived : CopyMode::kFull;
          }
        }
        const warehouse::SelectSpec select{
            .source = t.source,
            .timestamp_column = t.timestamp_column,
            .watermark = t.start_watermark,
            .metadata_columns = t.metadata_columns,
            .cursor_type = t.cursor_type,
            .lookback_seconds = t.lookback_seconds,
        };
        t.sql = t.strategy == config::Strategy::kMerge
                    ? warehouse.dialect().RenderMerge(warehouse::MergeSpec{select, t.target, t.merge_keys})
                    : warehouse.dialect().RenderSelect(select);
        if (t.strategy != config::Strategy::kFullRefresh) {
          // Looked up for every table that will read windows, including its first (full) run: the advice is
          // most useful before the table is big.
          auto advice = warehouse.CursorIndexAdvice(t.source, t.timestamp_column);
          if (advice.ok()) {
            t.index_advice = *advice;
          } else if (!advice.status().IsNotFound()) {
            return advice.status();
          }
        }
        plan.tables.push_back(std::move(t));
      }
    }
  }
  std::sort(plan.tables.begin(), plan.tables.end(),
            [](const TablePlan& a, const TablePlan& b) { return a.target < b.target; });
  plan.plan_id = ComputePlanId(plan.warehouse, plan.tables);
  return plan;
}

}  // namespace rocky::replication
