#include "record_json.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <limits>
#include <set>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "rocky/base/json_writer.h"
#include "rocky/base/strings.h"
#include "rocky/base/timestamp.h"

namespace rocky::state::internal {

using base::FormatUtc;
using base::JsonWriter;
using base::NormalizeTimestamp;
using base::NormalizeWatermarkValue;
using base::Quoted;

namespace {

// simdjson is used through its error-code API only: no exception may leave the state library.
using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// Reads a required member; `what` names the record in error messages. `make_error` decides the code:
// stored records are corruption, an import document is invalid input.
class Reader {
 public:
  Reader(std::string what, bool stored) : what_(std::move(what)), stored_(stored) {}
  // Item `index` of the list `list` ("state export: watermarks[3]"); the name is built only for an error, as
  // an import reads 100,000 items.
  Reader(const char* list, size_t index, bool stored) : list_(list), index_(index), stored_(stored) {}

  Status Error(std::string_view why) const {
    std::string msg = what() + ": " + std::string(why);
    return stored_ ? Status::Corruption(msg) : Status::InvalidArgument(msg);
  }

  Result<std::string> String(object obj, std::string_view key) const {
    element e;
    if (obj[key].get(e) != simdjson::SUCCESS) return Error("missing field " + Quoted(key));
    std::string_view s;
    if (e.get_string().get(s) != simdjson::SUCCESS) return Error("field " + Quoted(key) + " is not a string");
    return std::string(s);
  }

  Result<uint64_t> UInt(object obj, std::string_view key) const {
    element e;
    if (obj[key].get(e) != simdjson::SUCCESS) return Error("missing field " + Quoted(key));
    uint64_t v;
    if (e.get_uint64().get(v) != simdjson::SUCCESS) {
      return Error("field " + Quoted(key) + " is not a non-negative integer");
    }
    return v;
  }

  Result<array> Array(object obj, std::string_view key) const {
    element e;
    if (obj[key].get(e) != simdjson::SUCCESS) return Error("missing field " + Quoted(key));
    array a;
    if (e.get_array().get(a) != simdjson::SUCCESS) return Error("field " + Quoted(key) + " is not a list");
    return a;
  }

  Result<object> Object(element e) const {
    object o;
    if (e.get_object().get(o) != simdjson::SUCCESS) return Error("not a JSON object");
    return o;
  }

  // For import documents only (stored records are read leniently): refuses a member not in `allowed`, and a
  // member given twice (JSON lookups would silently take one of them).
  Status OnlyKeys(object obj, std::initializer_list<std::string_view> allowed) const {
    if (stored_) return Status::OK();
    uint64_t seen = 0;  // bit i: allowed[i] was met (records have a handful of fields)
    for (auto field : obj) {
      const std::string_view key = field.key;
      const auto at = std::find(allowed.begin(), allowed.end(), key);
      if (at == allowed.end()) {
        std::string expected;
        for (std::string_view a : allowed) expected += (expected.empty() ? "" : ", ") + std::string(a);
        return Error("unknown field " + Quoted(key) + " (expected: " + expected + ")");
      }
      const uint64_t bit = uint64_t{1} << (at - allowed.begin());
      if ((seen & bit) != 0) return Error("field " + Quoted(key) + " is given twice");
      seen |= bit;
    }
    return Status::OK();
  }

  std::string what() const {
    return list_ != nullptr ? std::string(list_) + "[" + std::to_string(index_) + "]" : what_;
  }

 private:
  std::string what_;
  const char* list_ = nullptr;
  size_t index_ = 0;
  bool stored_;
};

// Where `text` stops being one JSON value (RFC 8259): the byte offset of the first character that cannot
// continue it, or npos when it is valid. simdjson says that a document is invalid but not where; this says
// where, for people fixing a file by hand. Depth is capped like simdjson's (1024).
class JsonSyntaxScanner {
 public:
  explicit JsonSyntaxScanner(std::string_view text) : s_(text) {}

  size_t FirstError() {
    if (!Value(0)) return pos_;
    SkipSpace();
    return pos_ == s_.size() ? std::string_view::npos : pos_;
  }

 private:
  static constexpr int kMaxDepth = 1024;

  bool At(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool Literal(std::string_view word) {
    for (char c : word) {
      if (!At(c)) return false;
      ++pos_;
    }
    return true;
  }
  bool Digits() {
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }
  bool Number() {
    if (At('-')) ++pos_;
    if (At('0')) {
      ++pos_;
    } else if (!Digits()) {
      return false;
    }
    if (At('.')) {
      ++pos_;
      if (!Digits()) return false;
    }
    if (At('e') || At('E')) {
      ++pos_;
      if (At('+') || At('-')) ++pos_;
      if (!Digits()) return false;
    }
    return true;
  }
  // One UTF-8 sequence starting at pos_ (a lead byte >= 0x80), as RFC 3629 allows it.
  bool Utf8() {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(s_[i]); };
    const unsigned char lead = byte(pos_);
    size_t extra = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      extra = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      extra = 2;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      extra = 3;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    } else {
      return false;
    }
    for (size_t i = 1; i <= extra; ++i) {
      if (pos_ + i >= s_.size()) return false;
      const unsigned char c = byte(pos_ + i);
      if (c < (i == 1 ? low : 0x80) || c > (i == 1 ? high : 0xBF)) return false;
    }
    pos_ += extra + 1;
    return true;
  }
  bool String() {
    if (!At('"')) return false;
    ++pos_;
    while (pos_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        ++pos_;
        if (pos_ >= s_.size()) return false;
        const char e = s_[pos_];
        if (e == 'u') {
          ++pos_;
          for (int i = 0; i < 4; ++i, ++pos_) {
            if (pos_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[pos_]))) return false;
          }
          continue;
        }
        if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) return false;
        ++pos_;
        continue;
      }
      if (c >= 0x80) {
        if (!Utf8()) return false;
        continue;
      }
      ++pos_;
    }
    return false;
  }
  bool Value(int depth) {
    SkipSpace();
    if (pos_ >= s_.size()) return false;
    switch (s_[pos_]) {
      case '{': {
        if (depth >= kMaxDepth) return false;
        ++pos_;
        SkipSpace();
        if (At('}')) {
          ++pos_;
          return true;
        }
        for (;;) {
          SkipSpace();
          if (!String()) return false;
          SkipSpace();
          if (!At(':')) return false;
          ++pos_;
          if (!Value(depth + 1)) return false;
          SkipSpace();
          if (At('}')) {
            ++pos_;
            return true;
          }
          if (!At(',')) return false;
          ++pos_;
        }
      }
      case '[': {
        if (depth >= kMaxDepth) return false;
        ++pos_;
        SkipSpace();
        if (At(']')) {
          ++pos_;
          return true;
        }
        for (;;) {
          if (!Value(depth + 1)) return false;
          SkipSpace();
          if (At(']')) {
            ++pos_;
            return true;
          }
          if (!At(',')) return false;
          ++pos_;
        }
      }
      case '"': return String();
      case 't': return Literal("true");
      case 'f': return Literal("false");
      case 'n': return Literal("null");
      default: return Number();
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

std::string JsonErrorPosition(std::string_view text) {
  const size_t offset = JsonSyntaxScanner(text).FirstError();
  if (offset == std::string_view::npos) return {};
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++column;  // columns count characters: UTF-8 continuation bytes do not start one
    }
  }
  return offset >= text.size()
             ? "line " + std::to_string(line) + ", column " + std::to_string(column) + " (end of input)"
             : "line " + std::to_string(line) + ", column " + std::to_string(column);
}

namespace {

Result<element> Parse(simdjson::dom::parser& parser, const simdjson::padded_string& text,
                      const Reader& reader) {
  element doc;
  if (auto error = parser.parse(text).get(doc); error != simdjson::SUCCESS) {
    const std::string where = JsonErrorPosition(std::string_view(text.data(), text.size()));
    return reader.Error("invalid JSON" + (where.empty() ? std::string() : " at " + where) + " (" +
                        simdjson::error_message(error) + ")");
  }
  return doc;
}

// A stored record that is one JSON object: parsed, then read by `read(object, reader)` while the parser that
// owns the object lives. Anything else is corruption naming `what`.
template <typename Read>
auto ReadStoredObject(std::string what, std::string_view json, Read read)
    -> decltype(read(object{}, std::declval<const Reader&>())) {
  const Reader reader(std::move(what), true);
  simdjson::dom::parser parser;
  const simdjson::padded_string text(json);
  ROCKY_ASSIGN_OR_RETURN(element doc, Parse(parser, text, reader));
  ROCKY_ASSIGN_OR_RETURN(object o, reader.Object(doc));
  return read(o, reader);
}

Result<CheckEntry> ReadCheck(element e, const Reader& reader) {
  ROCKY_ASSIGN_OR_RETURN(object o, reader.Object(e));
  ROCKY_RETURN_IF_ERROR(reader.OnlyKeys(o, {"count", "timestamp"}));
  CheckEntry entry;
  ROCKY_ASSIGN_OR_RETURN(entry.count, reader.UInt(o, "count"));
  ROCKY_ASSIGN_OR_RETURN(entry.timestamp, reader.String(o, "timestamp"));
  return entry;
}

Result<RunRecord> ReadRun(object o, const Reader& reader) {
  ROCKY_RETURN_IF_ERROR(reader.OnlyKeys(
      o, {"id", "started_at", "finished_at", "status", "tables_copied", "tables_failed", "anomalies"}));
  RunRecord run;
  ROCKY_ASSIGN_OR_RETURN(run.id, reader.String(o, "id"));
  ROCKY_ASSIGN_OR_RETURN(run.started_at, reader.String(o, "started_at"));
  ROCKY_ASSIGN_OR_RETURN(run.finished_at, reader.String(o, "finished_at"));
  ROCKY_ASSIGN_OR_RETURN(run.status, reader.String(o, "status"));
  ROCKY_ASSIGN_OR_RETURN(run.tables_copied, reader.UInt(o, "tables_copied"));
  ROCKY_ASSIGN_OR_RETURN(run.tables_failed, reader.UInt(o, "tables_failed"));
  ROCKY_ASSIGN_OR_RETURN(run.anomalies, reader.UInt(o, "anomalies"));
  return run;
}

void WriteCheckList(JsonWriter& w, const std::vector<CheckEntry>& entries) {
  w.BeginArray();
  for (const CheckEntry& e : entries) {
    w.BeginObject().Key("count").UInt(e.count).Key("timestamp").String(e.timestamp).EndObject();
  }
  w.EndArray();
}

void WriteRun(JsonWriter& w, const RunRecord& run) {
  w.BeginObject()
      .Key("id")
      .String(run.id)
      .Key("started_at")
      .String(run.started_at)
      .Key("finished_at")
      .String(run.finished_at)
      .Key("status")
      .String(run.status)
      .Key("tables_copied")
      .UInt(run.tables_copied)
      .Key("tables_failed")
      .UInt(run.tables_failed)
      .Key("anomalies")
      .UInt(run.anomalies)
      .EndObject();
}

// NormalizeTimestamp with the field's place in the message.
Result<std::string> NormalizeField(std::string_view where, std::string_view value) {
  auto normalized = NormalizeTimestamp(value);
  if (!normalized.ok()) return normalized.status().WithContext(where);
  return normalized;
}

}  // namespace

namespace {

// A JSON string body made only of printable ASCII other than '"' and '\\': what it says is its own bytes.
bool PlainString(std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return false;
  }
  return true;
}

}  // namespace

std::string WatermarkValueJson(const Watermark& w) {
  if (PlainString(w.last_value) && PlainString(w.updated_at)) {
    // Nothing to escape (normalized timestamps and integers): the same bytes the writer below produces.
    std::string out;
    out.reserve(34 + w.last_value.size() + w.updated_at.size());
    out += "{\"last_value\":\"";
    out += w.last_value;
    out += "\",\"updated_at\":\"";
    out += w.updated_at;
    out += "\"}";
    return out;
  }
  JsonWriter json;
  json.BeginObject()
      .Key("last_value")
      .String(w.last_value)
      .Key("updated_at")
      .String(w.updated_at)
      .EndObject();
  return json.str();
}

bool ParseWatermarkValueFast(std::string_view json, std::string_view* last_value,
                             std::string_view* updated_at) {
  constexpr std::string_view kHead = "{\"last_value\":\"";
  constexpr std::string_view kMiddle = "\",\"updated_at\":\"";
  constexpr std::string_view kTail = "\"}";
  if (json.size() < kHead.size() + kMiddle.size() + kTail.size() || json.substr(0, kHead.size()) != kHead ||
      json.substr(json.size() - kTail.size()) != kTail) {
    return false;
  }
  const std::string_view body = json.substr(kHead.size(), json.size() - kHead.size() - kTail.size());
  const size_t middle = body.find(kMiddle);
  if (middle == std::string_view::npos) return false;
  const std::string_view a = body.substr(0, middle);
  const std::string_view b = body.substr(middle + kMiddle.size());
  // Plain strings hold no '"', so the middle found is the only place the document can split, and each part is
  // exactly the string the full parser would return.
  if (!PlainString(a) || !PlainString(b)) return false;
  *last_value = a;
  *updated_at = b;
  return true;
}

Result<Watermark> ParseWatermarkValue(std::string_view table, std::string_view json) {
  std::string_view last_value;
  std::string_view updated_at;
  if (ParseWatermarkValueFast(json, &last_value, &updated_at)) {
    return Watermark{std::string(table), std::string(last_value), std::string(updated_at)};
  }
  return ReadStoredObject("stored watermark of " + Quoted(table), json,
                          [&](object o, const Reader& reader) -> Result<Watermark> {
                            Watermark w;
                            w.table = std::string(table);
                            ROCKY_ASSIGN_OR_RETURN(w.last_value, reader.String(o, "last_value"));
                            ROCKY_ASSIGN_OR_RETURN(w.updated_at, reader.String(o, "updated_at"));
                            return w;
                          });
}

std::string CheckListJson(const std::vector<CheckEntry>& entries) {
  JsonWriter json;
  WriteCheckList(json, entries);
  return json.str();
}

Result<std::vector<CheckEntry>> ParseCheckList(std::string_view table, std::string_view json) {
  const Reader reader("stored check history of " + Quoted(table), true);
  simdjson::dom::parser parser;
  const simdjson::padded_string text(json);
  ROCKY_ASSIGN_OR_RETURN(element doc, Parse(parser, text, reader));
  array a;
  if (doc.get_array().get(a) != simdjson::SUCCESS) return reader.Error("not a JSON list");
  std::vector<CheckEntry> entries;
  for (element e : a) {
    ROCKY_ASSIGN_OR_RETURN(CheckEntry entry, ReadCheck(e, reader));
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::string RowCountValueJson(const RememberedRowCount& count) {
  JsonWriter json;
  json.BeginObject().Key("version").String(count.version).Key("rows").UInt(count.rows).EndObject();
  return json.str();
}

Result<RememberedRowCount> ParseRowCountValue(std::string_view table, std::string_view json) {
  return ReadStoredObject("stored row count of " + Quoted(table), json,
                          [](object o, const Reader& reader) -> Result<RememberedRowCount> {
                            RememberedRowCount count;
                            ROCKY_ASSIGN_OR_RETURN(count.version, reader.String(o, "version"));
                            ROCKY_ASSIGN_OR_RETURN(count.rows, reader.UInt(o, "rows"));
                            return count;
                          });
}

std::string RunValueJson(const RunRecord& run) {
  JsonWriter json;
  WriteRun(json, run);
  return json.str();
}

Result<RunRecord> ParseRunValue(std::string_view key, std::string_view json) {
  return ReadStoredObject("stored run record " + Quoted(key), json, ReadRun);
}

std::string PlanValueJson(std::string_view created_at, std::string_view plan_json) {
  JsonWriter json;
  json.BeginObject().Key("created_at").String(created_at).Key("plan").String(plan_json).EndObject();
  return json.str();
}

Result<StoredPlan> ParsePlanValue(std::string_view id, std::string_view json) {
  return ReadStoredObject("stored plan " + Quoted(id), json,
                          [](object o, const Reader& reader) -> Result<StoredPlan> {
                            StoredPlan plan;
                            ROCKY_ASSIGN_OR_RETURN(plan.created_at, reader.String(o, "created_at"));
                            ROCKY_ASSIGN_OR_RETURN(plan.plan_json, reader.String(o, "plan"));
                            return plan;
                          });
}

Status ValidateRun(const RunRecord& run) {
  if (run.id.empty()) return Status::InvalidArgument("run record has an empty id");
  if (run.status.empty()) return Status::InvalidArgument("run " + Quoted(run.id) + " has an empty status");
  return Status::OK();
}

Status NormalizeSnapshot(StateSnapshot& out) {
  if (out.schema_version && *out.schema_version > kSchemaVersion) {
    return Status::NotSupported("state export has schema version " + std::to_string(*out.schema_version) +
                                ", newer than this rocky supports (" + std::to_string(kSchemaVersion) + ")");
  }
  // Messages name the record, built only when something is wrong: an import validates 100,000 of them.
  auto watermark = [](const Watermark& w) { return "watermark " + Quoted(w.table); };
  // Names appearing twice: an export lists them in order, so comparing neighbours decides in one pass; other
  // input is sorted first (views of the names, which stay put: only the values change below). A hash set of
  // the names cost a fifth of the CPU of importing 100,000.
  {
    bool ordered = true;
    for (size_t i = 1; i < out.watermarks.size() && ordered; ++i) {
      ordered = out.watermarks[i - 1].table < out.watermarks[i].table;
    }
    if (!ordered) {
      std::vector<std::string_view> names;
      names.reserve(out.watermarks.size());
      for (const Watermark& w : out.watermarks) names.push_back(w.table);
      std::sort(names.begin(), names.end());
      if (auto twice = std::adjacent_find(names.begin(), names.end()); twice != names.end()) {
        return Status::InvalidArgument("watermark " + Quoted(*twice) + " appears twice");
      }
    }
  }
  for (Watermark& w : out.watermarks) {
    if (!IsQualifiedTableName(w.table)) {
      return Status::InvalidArgument(watermark(w) + ": table name is not catalog.schema.table");
    }
    if (auto value = NormalizeWatermarkValue(w.last_value); value.ok()) {
      w.last_value = std::move(*value);
    } else {
      return value.status().WithContext(watermark(w) + " last_value");
    }
    if (auto at = NormalizeTimestamp(w.updated_at); at.ok()) {
      w.updated_at = std::move(*at);
    } else {
      return at.status().WithContext(watermark(w) + " updated_at");
    }
  }
  std::unordered_set<std::string_view> seen;
  for (TableChecks& c : out.check_history) {
    const std::string where = "check history of " + Quoted(c.table);
    if (!IsQualifiedTableName(c.table)) {
      return Status::InvalidArgument(where + ": table name is not catalog.schema.table");
    }
    if (!seen.insert(c.table).second) return Status::InvalidArgument(where + " appears twice");
    for (CheckEntry& e : c.entries) {
      ROCKY_ASSIGN_OR_RETURN(e.timestamp, NormalizeField(where, e.timestamp));
    }
  }
  for (RunRecord& run : out.run_history) {
    ROCKY_RETURN_IF_ERROR(ValidateRun(run));
    const std::string where = "run " + Quoted(run.id);
    ROCKY_ASSIGN_OR_RETURN(run.started_at, NormalizeField(where + " started_at", run.started_at));
    if (!run.finished_at.empty()) {
      ROCKY_ASSIGN_OR_RETURN(run.finished_at, NormalizeField(where + " finished_at", run.finished_at));
    }
  }
  return Status::OK();
}

Result<StateSnapshot> ValidateSnapshot(const StateSnapshot& input) {
  StateSnapshot out = input;
  ROCKY_RETURN_IF_ERROR(NormalizeSnapshot(out));
  return out;
}

}  // namespace rocky::state::internal

namespace rocky::state {

using base::JsonWriter;

void WriteWatermarkJson(JsonWriter& json, std::string_view table, std::string_view last_value,
                        std::string_view updated_at) {
  json.BeginObject()
      .Key("table")
      .String(table)
      .Key("last_value")
      .String(last_value)
      .Key("updated_at")
      .String(updated_at)
      .EndObject();
}

std::string SnapshotToJson(const StateSnapshot& snapshot) {
  JsonWriter json;
  json.BeginObject().Key("format").String("rocky-state").Key("schema_version");
  if (snapshot.schema_version) {
    json.UInt(*snapshot.schema_version);
  } else {
    json.Null();
  }
  json.Key("watermarks").BeginArray();
  for (const Watermark& w : snapshot.watermarks)
    WriteWatermarkJson(json, w.table, w.last_value, w.updated_at);
  json.EndArray().Key("check_history").BeginArray();
  for (const TableChecks& c : snapshot.check_history) {
    json.BeginObject().Key("table").String(c.table).Key("entries");
    internal::WriteCheckList(json, c.entries);
    json.EndObject();
  }
  json.EndArray().Key("run_history").BeginArray();
  for (const RunRecord& run : snapshot.run_history) internal::WriteRun(json, run);
  json.EndArray().EndObject();
  return json.str();
}

Result<StateSnapshot> SnapshotFromJson(std::string_view json) {
  using internal::Reader;
  using simdjson::dom::array;
  using simdjson::dom::element;
  using simdjson::dom::object;
  const Reader reader("state export", false);
  simdjson::dom::parser parser;
  const simdjson::padded_string text(json);
  ROCKY_ASSIGN_OR_RETURN(element doc, internal::Parse(parser, text, reader));
  ROCKY_ASSIGN_OR_RETURN(object root, reader.Object(doc));
  ROCKY_RETURN_IF_ERROR(
      reader.OnlyKeys(root, {"format", "schema_version", "watermarks", "check_history", "run_history"}));
  StateSnapshot snapshot;

  std::string_view format;
  if (root["format"].get_string().get(format) != simdjson::SUCCESS || format != "rocky-state") {
    return reader.Error("field 'format' is not \"rocky-state\" (not a rocky state export?)");
  }
  element version;
  if (root["schema_version"].get(version) != simdjson::SUCCESS)
    return reader.Error("missing field 'schema_version'");
  if (!version.is_null()) {
    uint64_t v;
    if (version.get_uint64().get(v) != simdjson::SUCCESS || v > std::numeric_limits<uint32_t>::max()) {
      return reader.Error("field 'schema_version' is not null or a u32");
    }
    snapshot.schema_version = static_cast<uint32_t>(v);
  }

  ROCKY_ASSIGN_OR_RETURN(array watermarks, reader.Array(root, "watermarks"));
  for (element e : watermarks) {
    const Reader item("state export: watermarks", snapshot.watermarks.size(), false);
    ROCKY_ASSIGN_OR_RETURN(object o, item.Object(e));
    ROCKY_RETURN_IF_ERROR(item.OnlyKeys(o, {"table", "last_value", "updated_at"}));
    Watermark w;
    ROCKY_ASSIGN_OR_RETURN(w.table, item.String(o, "table"));
    ROCKY_ASSIGN_OR_RETURN(w.last_value, item.String(o, "last_value"));
    ROCKY_ASSIGN_OR_RETURN(w.updated_at, item.String(o, "updated_at"));
    snapshot.watermarks.push_back(std::move(w));
  }
  ROCKY_ASSIGN_OR_RETURN(array checks, reader.Array(root, "check_history"));
  for (element e : checks) {
    const Reader item("state export: check_history", snapshot.check_history.size(), false);
    ROCKY_ASSIGN_OR_RETURN(object o, item.Object(e));
    ROCKY_RETURN_IF_ERROR(item.OnlyKeys(o, {"table", "entries"}));
    TableChecks c;
    ROCKY_ASSIGN_OR_RETURN(c.table, item.String(o, "table"));
    ROCKY_ASSIGN_OR_RETURN(array entries, item.Array(o, "entries"));
    for (element entry : entries) {
      ROCKY_ASSIGN_OR_RETURN(CheckEntry ce, internal::ReadCheck(entry, item));
      c.entries.push_back(std::move(ce));
    }
    snapshot.check_history.push_back(std::move(c));
  }
  ROCKY_ASSIGN_OR_RETURN(array runs, reader.Array(root, "run_history"));
  for (element e : runs) {
    const Reader item("state export: run_history", snapshot.run_history.size(), false);
    ROCKY_ASSIGN_OR_RETURN(object o, item.Object(e));
    ROCKY_ASSIGN_OR_RETURN(RunRecord run, internal::ReadRun(o, item));
    snapshot.run_history.push_back(std::move(run));
  }
  ROCKY_RETURN_IF_ERROR(internal::NormalizeSnapshot(snapshot));
  return snapshot;
}

}  // namespace rocky::state
