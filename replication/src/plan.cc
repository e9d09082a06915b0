#include "rocky/replication/plan.h"

#include <simdjson.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <utility>

#include "rocky/state/json_writer.h"
#include "rocky/state/store.h"
#include "rocky/warehouse/schema_pattern.h"

namespace rocky::replication {
namespace {

using state::JsonWriter;
using warehouse::TableRef;

std::string Quoted(std::string_view s) {
  std::string out = "'";
  out += s;
  out += '\'';
  return out;
}

void WriteOptional(JsonWriter& json, std::string_view key, const std::optional<std::string>& value) {
  json.Key(key);
  if (value) {
    json.String(*value);
  } else {
    json.Null();
  }
}

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
      json.BeginObject().Key("name").String(c.name).Key("type").String(c.type).Key("value").String(c.value).EndObject();
    }
    json.EndArray();
    json.Key("mode").String(ToString(t.mode));
    WriteOptional(json, "state_watermark", t.state_watermark);
    WriteOptional(json, "start_watermark", t.start_watermark);
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
    if (o[key].get_string().get(s) != simdjson::SUCCESS) return Error("field " + Quoted(key) + " is not a string");
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
    case CopyMode::kFull:
      return "full";
    case CopyMode::kIncremental:
      return "incremental";
    case CopyMode::kRederived:
      return "rederived";
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

std::string WarehouseId(const config::Config& config) { return config.adapter.type + ":" + config.adapter.path; }

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
  json.BeginObject().Key("plan_id").String(plan.plan_id).Key("warehouse").String(plan.warehouse).Key("tables");
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
      if (c.get_object().get(co) != simdjson::SUCCESS) return reader.Error("a metadata column is not an object");
      config::MetadataColumn column;
      ROCKY_ASSIGN_OR_RETURN(column.name, reader.String(co, "name"));
      ROCKY_ASSIGN_OR_RETURN(column.type, reader.String(co, "type"));
      ROCKY_ASSIGN_OR_RETURN(column.value, reader.String(co, "value"));
      t.metadata_columns.push_back(std::move(column));
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

Result<Plan> BuildPlan(const config::Config& config, warehouse::Warehouse& warehouse, state::StateStore& store,
                       const PlanOptions& options) {
  Plan plan;
  plan.warehouse = WarehouseId(config);
  std::map<std::string, std::string> source_of_target;  // target -> source, to catch two sources on one target
  for (const config::PipelineConfig& pipeline : config.pipelines) {
    const std::string where = "pipeline " + Quoted(pipeline.name);
    ROCKY_RETURN_IF_ERROR(warehouse::ValidateSchemaPattern(pipeline.schema_pattern).WithContext(where));
    auto schemas = warehouse.ListSchemas(pipeline.source_catalog);
    if (!schemas.ok()) return schemas.status().WithContext(where + ": source catalog " + Quoted(pipeline.source_catalog));
    for (const std::string& schema : *schemas) {
      std::optional<warehouse::SchemaComponents> components = warehouse::MatchSchema(pipeline.schema_pattern, schema);
      if (!components) continue;
      ROCKY_ASSIGN_OR_RETURN(std::string target_catalog,
                             warehouse::RenderTemplate(pipeline.catalog_template, *components));
      ROCKY_ASSIGN_OR_RETURN(std::string target_schema, warehouse::RenderTemplate(pipeline.schema_template, *components));
      ROCKY_ASSIGN_OR_RETURN(std::vector<std::string> tables, warehouse.ListTables(pipeline.source_catalog, schema));
      for (const std::string& table : tables) {
        TablePlan t;
        t.pipeline = pipeline.name;
        t.source = TableRef{pipeline.source_catalog, schema, table};
        t.target = TableRef{target_catalog, target_schema, table};
        const std::string target = t.target.Qualified();
        if (!options.table_pattern.empty() && !GlobMatch(options.table_pattern, target)) continue;
        auto [it, inserted] = source_of_target.emplace(target, t.source.Qualified());
        if (!inserted) {
          return Status::InvalidArgument("two source tables map to the same target " + Quoted(target) + ": " +
                                         Quoted(it->second) + " and " + Quoted(t.source.Qualified()) +
                                         " (check the schema pattern and templates)");
        }
        t.timestamp_column = pipeline.timestamp_column;
        t.metadata_columns = pipeline.metadata_columns;
        ROCKY_ASSIGN_OR_RETURN(std::optional<state::Watermark> watermark, store.GetWatermark(target));
        if (watermark) {
          t.mode = CopyMode::kIncremental;
          t.state_watermark = watermark->last_value;
          t.start_watermark = watermark->last_value;
        } else if (options.state_lost) {
          ROCKY_ASSIGN_OR_RETURN(bool exists, warehouse.TableExists(t.target));
          if (exists) {
            ROCKY_ASSIGN_OR_RETURN(t.start_watermark, warehouse.MaxTimestamp(t.target, t.timestamp_column));
            // An empty target has nothing to derive from: copying everything is then the right thing.
            t.mode = t.start_watermark ? CopyMode::kRederived : CopyMode::kFull;
          }
        }
        t.sql = warehouse.dialect().RenderSelect(warehouse::SelectSpec{
            .source = t.source,
            .timestamp_column = t.timestamp_column,
            .watermark = t.start_watermark,
            .metadata_columns = t.metadata_columns,
        });
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
