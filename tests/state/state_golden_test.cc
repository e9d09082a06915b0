// The state layer's golden file pins format-spec/STATE.md: tests/golden/state-v1.redb was made by the state
// store (StateStore, schema version 1) from the fixed sequence below, and its tables are read here as raw
// key/value bytes through the engine's API, not through the state library's decoding, and compared with the
// records STATE.md defines, written out literally. A second case makes the same sequence with the current
// code and requires the same records, so a change to what the store writes fails here until it is made
// deliberately (STATE.md, a schema version bump if old readers would misread it, a regenerated golden file:
// ROCKY_UPDATE_GOLDEN=1). The comparison is of records, not of file bytes: how the engine lays pages out is
// FORMAT.md's business and pinned by tests/engine/golden_file_test.cc.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rocky/engine/db.h"
#include "rocky/state/store.h"
#include "state_test_util.h"

namespace {

using namespace rocky::state;
using rocky::state::testing::ReadBytes;
using rocky::state::testing::TempDir;
using Rows = std::vector<std::pair<std::string, std::string>>;
using Tables = std::map<std::string, Rows>;

std::string GoldenPath() {
  const char* root = std::getenv("ROCKY_SOURCE_ROOT");
  return std::string(root != nullptr ? root : ".") + "/tests/golden/state-v1.redb";
}

const std::string kPlanId = "0123456789abcdef0123456789abcdef";
const std::string kPlanJson = R"({"plan_id":"0123456789abcdef0123456789abcdef","warehouse":"w","tables":[]})";
// A run id with every kind of byte the JSON writer treats specially: a quote, a backslash, a tab, a control
// character, UTF-8 (kept as is) and a byte that is not UTF-8 (written as \ufffd).
const std::string kOddRunId = "quote\"back\\slash\ttab\x01 \xc3\xa9\xff";

// The fixed sequence. The clock starts at 2030-01-02T03:04:05Z and moves one second per reading, so every
// time the store takes from it is known.
void BuildState(const std::string& path) {
  auto tick = std::make_shared<int64_t>(1893553445);
  StoreOptions options{.mode = OpenMode::kReadWrite};
  options.clock = [tick] { return std::chrono::system_clock::time_point(std::chrono::seconds((*tick)++)); };
  auto opened = StateStore::Open(path, options);
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  StateStore& store = **opened;
  auto ok = [](const Status& s) { REQUIRE_MESSAGE(s.ok(), s.ToString()); };
  ok(store.SetWatermark("acme.staging.orders", "2025-03-15T16:30:00+02:00").status());     // clock 03:04:05
  ok(store.SetWatermark("acme.staging.events", "-00042").status());                        // clock 03:04:06
  ok(store.SetWatermark("acme.staging.weird.a.b", "2025-03-15T14:30:00.1200Z").status());  // clock 03:04:07
  ok(store.AppendCheck("acme.staging.orders", 100, "2025-03-15T14:30:00+00:00"));
  ok(store.AppendCheck("acme.staging.orders", 120, "2025-03-16T14:30:00Z"));
  auto copied = store.RecordTableCopy("acme.staging.customers", "2025-03-16T00:00:00Z", 7);  // clock 03:04:08
  REQUIRE(copied.ok());
  ok(copied->history_error);
  auto first = store.BeginRun(RunRecord{
      .id = "20300102T030409Z-0000abcd", .started_at = "2030-01-02T03:04:09Z", .status = "running"});
  REQUIRE(first.ok());
  ok(store.FinishRun(*first, RunRecord{.id = "20300102T030409Z-0000abcd",
                                       .started_at = "2030-01-02T03:04:09Z",
                                       .finished_at = "2030-01-02T03:04:10.500+00:00",
                                       .status = "success",
                                       .tables_copied = 3,
                                       .tables_failed = 0,
                                       .anomalies = 1}));
  // Left "running"; the next BeginRun marks it "crashed" and is itself left running.
  REQUIRE(
      store.BeginRun(RunRecord{.id = kOddRunId, .started_at = "2030-01-02T03:04:11Z", .status = "running"})
          .ok());
  REQUIRE(
      store
          .BeginRun(RunRecord{
              .id = "20300102T030412Z-00000003", .started_at = "2030-01-02T03:04:12Z", .status = "running"})
          .ok());
  ok(store.SavePlan(kPlanId, kPlanJson));  // clock 03:04:09
}

// Every table of the file and its raw rows, through the engine alone.
Tables RawTables(const std::string& path) {
  rocky::engine::Options o;
  o.read_only = true;
  auto db = rocky::engine::Database::Open(path, o);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  auto integrity = (*db)->CheckIntegrity();
  REQUIRE_MESSAGE(integrity.ok(), integrity.status().ToString());
  auto r = (*db)->BeginRead();
  REQUIRE(r.ok());
  auto names = (*r)->ListTables();
  REQUIRE(names.ok());
  Tables out;
  for (const std::string& name : *names) {
    auto t = (*r)->OpenTable(name);
    REQUIRE(t.ok());
    Rows& rows = out[name];
    auto c = (*t)->NewCursor();
    for (c->SeekToFirst(); c->Valid(); c->Next())
      rows.emplace_back(std::string(c->key()), std::string(c->value()));
    REQUIRE_MESSAGE(c->status().ok(), c->status().ToString());
    CHECK((*t)->Len() == rows.size());
  }
  return out;
}

// What STATE.md says the fixed sequence leaves, byte for byte.
Tables ExpectedTables() {
  Tables t;
  t["metadata"] = {{"schema_version", std::string("\x01\x00\x00\x00", 4)}};
  t["watermarks"] = {
      {"acme.staging.customers",
       R"({"last_value":"2025-03-16T00:00:00Z","updated_at":"2030-01-02T03:04:08Z"})"},
      {"acme.staging.events", R"({"last_value":"-42","updated_at":"2030-01-02T03:04:06Z"})"},
      {"acme.staging.orders", R"({"last_value":"2025-03-15T14:30:00Z","updated_at":"2030-01-02T03:04:05Z"})"},
      {"acme.staging.weird.a.b",
       R"({"last_value":"2025-03-15T14:30:00.12Z","updated_at":"2030-01-02T03:04:07Z"})"},
  };
  t["check_history"] = {
      {"acme.staging.customers", R"([{"count":7,"timestamp":"2030-01-02T03:04:08Z"}])"},
      {"acme.staging.orders",
       R"([{"count":100,"timestamp":"2025-03-15T14:30:00Z"},{"count":120,"timestamp":"2025-03-16T14:30:00Z"}])"},
  };
  t["run_history"] = {
      {"00000000000000000000",
       R"({"id":"20300102T030409Z-0000abcd","started_at":"2030-01-02T03:04:09Z",)"
       R"("finished_at":"2030-01-02T03:04:10.5Z","status":"success","tables_copied":3,"tables_failed":0,)"
       R"("anomalies":1})"},
      // Written by BeginRun with the byte 0xFF escaped as \ufffd; rewritten as "crashed" from its parsed
      // form, in which that is the character U+FFFD, valid UTF-8 (EF BF BD) and so written as is.
      {"00000000000000000001",
       "{\"id\":\"quote\\\"back\\\\slash\\ttab\\u0001 "
       "\xc3\xa9\xef\xbf\xbd\",\"started_at\":\"2030-01-02T03:04:11Z\","
       "\"finished_at\":\"\",\"status\":\"crashed\",\"tables_copied\":0,\"tables_failed\":0,\"anomalies\":"
       "0}"},
      {"00000000000000000002",
       R"({"id":"20300102T030412Z-00000003","started_at":"2030-01-02T03:04:12Z","finished_at":"",)"
       R"("status":"running","tables_copied":0,"tables_failed":0,"anomalies":0})"},
  };
  t["plans"] = {
      {kPlanId, R"({"created_at":"2030-01-02T03:04:09Z","plan":)"
                R"("{\"plan_id\":\"0123456789abcdef0123456789abcdef\",\"warehouse\":\"w\",\"tables\":[]}"})"},
  };
  return t;
}

bool IsDigits(const std::string& s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// STATE.md's key rules, checked on their own (not with the state library's IsQualifiedTableName).
void CheckKeyRules(const Tables& tables) {
  for (const char* name : {"watermarks", "check_history"}) {
    for (const auto& row : tables.at(name)) {
      const std::string& key = row.first;  // a plain reference: doctest's macros cannot capture a binding
      const size_t first = key.find('.');
      const size_t second = first == std::string::npos ? first : key.find('.', first + 1);
      CHECK_MESSAGE((first != std::string::npos && first > 0 && second != std::string::npos &&
                     second > first + 1 && second + 1 < key.size()),
                    name << " key " << key << " is not catalog.schema.table");
    }
  }
  uint64_t expected_sequence = 0;
  for (const auto& [key, value] : tables.at("run_history")) {
    CHECK(key.size() == 20);
    CHECK(IsDigits(key));
    CHECK(std::stoull(key) == expected_sequence++);
  }
  for (const auto& [key, value] : tables.at("plans")) CHECK(!key.empty());
}

}  // namespace

TEST_CASE("state golden: tests/golden/state-v1.redb holds, byte for byte, the records STATE.md defines") {
  const Tables golden = RawTables(GoldenPath());
  std::vector<std::string> names;
  for (const auto& [name, rows] : golden) names.push_back(name);
  CHECK(names == std::vector<std::string>{"check_history", "metadata", "plans", "run_history", "watermarks"});
  CheckKeyRules(golden);
  const Tables expected = ExpectedTables();
  for (const auto& table : expected) {
    const std::string& name = table.first;  // plain references: doctest's macros cannot capture bindings
    const Rows& rows = table.second;
    REQUIRE(golden.count(name) == 1);
    const Rows& got = golden.at(name);
    CHECK_MESSAGE(got.size() == rows.size(), name);
    for (size_t i = 0; i < std::min(got.size(), rows.size()); ++i) {
      CHECK_MESSAGE(got[i].first == rows[i].first, name << " row " << i);
      CHECK_MESSAGE(got[i].second == rows[i].second, name << " key " << rows[i].first);
    }
  }
}

TEST_CASE("state golden: the current code writing the same sequence writes the same records, 0600") {
  TempDir dir;
  const std::string path = dir.File("state.redb");
  BuildState(path);
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  if (std::getenv("ROCKY_UPDATE_GOLDEN") != nullptr) {
    const std::string bytes = ReadBytes(path);
    const std::string golden = GoldenPath();
    ::unlink(golden.c_str());
    const int fd = ::open(golden.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    REQUIRE(::close(fd) == 0);
    MESSAGE("rewrote " << golden);
  }
  CHECK(RawTables(path) == RawTables(GoldenPath()));
  CHECK(RawTables(path) == ExpectedTables());
}

TEST_CASE("state golden: the state library reads the golden file as the sequence wrote it") {
  auto store = StateStore::Open(GoldenPath(), StoreOptions{.mode = OpenMode::kReadOnly});
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  auto snapshot = (*store)->Export();
  REQUIRE_MESSAGE(snapshot.ok(), snapshot.status().ToString());
  CHECK(snapshot->schema_version == std::optional<uint32_t>(1));
  REQUIRE(snapshot->watermarks.size() == 4);
  CHECK(snapshot->watermarks[1].last_value == "-42");
  REQUIRE(snapshot->check_history.size() == 2);
  CHECK(snapshot->check_history[1].entries.size() == 2);
  REQUIRE(snapshot->run_history.size() == 3);
  CHECK(snapshot->run_history[1].id == "quote\"back\\slash\ttab\x01 \xc3\xa9\xef\xbf\xbd");
  CHECK(snapshot->run_history[1].status == "crashed");
  CHECK(snapshot->run_history[2].finished_at.empty());
  auto plan = (*store)->LoadPlan(kPlanId);
  REQUIRE(plan.ok());
  CHECK(*plan == std::optional<std::string>(kPlanJson));
}

TEST_CASE(
    "state format: unknown members, metadata keys and tables are ignored by readers; rewrites drop members") {
  // STATE.md "Unknown fields, tables and versions", on a copy of the golden file.
  TempDir dir;
  const std::string path = dir.File("state.redb");
  {
    const std::string bytes = ReadBytes(GoldenPath());
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    REQUIRE(::close(fd) == 0);
  }
  {
    auto db = rocky::engine::Database::Open(path, rocky::engine::Options{});
    REQUIRE(db.ok());
    auto w = (*db)->BeginWrite();
    REQUIRE(w.ok());
    auto wm = (*w)->OpenTable("watermarks");
    // Members in another order, with white space and a member this version does not know.
    REQUIRE((*wm)
                ->Insert("acme.staging.orders",
                         R"( { "note" : {"x":[1,2]}, "updated_at" : "2030-01-02T03:04:05Z", )"
                         R"("last_value" : "2025-03-15T14:30:00Z" } )")
                .ok());
    auto ch = (*w)->OpenTable("check_history");
    REQUIRE(
        (*ch)
            ->Insert("acme.staging.orders", R"([{"count":100,"timestamp":"2025-03-15T14:30:00Z","by":"x"}])")
            .ok());
    auto meta = (*w)->OpenTable("metadata");
    REQUIRE((*meta)->Insert("future_key", "anything").ok());
    auto future = (*w)->OpenTable("future_table");
    REQUIRE((*future)->Insert("k", "v").ok());
    REQUIRE((*w)->Commit().ok());
    REQUIRE((*db)->Close().ok());
  }
  auto opened = StateStore::Open(path, StoreOptions{.mode = OpenMode::kReadWrite});
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  StateStore& store = **opened;
  auto w = store.GetWatermark("acme.staging.orders");
  REQUIRE(w.ok());
  REQUIRE(w->has_value());
  CHECK((*w)->last_value == "2025-03-15T14:30:00Z");
  auto history = store.CheckHistory("acme.staging.orders");
  REQUIRE(history.ok());
  REQUIRE(history->size() == 1);
  // A rewrite of the list writes only the members this version knows.
  REQUIRE(store.AppendCheck("acme.staging.orders", 130, "2025-03-17T00:00:00Z").ok());
  REQUIRE(store.SetWatermark("acme.staging.other", "5").ok());
  opened->reset();
  const Tables after = RawTables(path);
  CHECK(
      after.at("check_history")[1].second ==
      R"([{"count":100,"timestamp":"2025-03-15T14:30:00Z"},{"count":130,"timestamp":"2025-03-17T00:00:00Z"}])");
  // Unknown tables and metadata keys are left as they are.
  CHECK(after.at("future_table") == Rows{{"k", "v"}});
  CHECK(after.at("metadata") ==
        Rows{{"future_key", "anything"}, {"schema_version", std::string("\x01\x00\x00\x00", 4)}});
}
