// The state store over a real file: records, history, schema versions, file mode, locking, export/import.
#include "rocky/state/store.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "rocky/base/timestamp.h"
#include "rocky/engine/db.h"
#include "state_damage.h"
#include "state_test_util.h"

namespace {

using namespace rocky::state;
using rocky::state::testing::ReadBytes;
using rocky::state::testing::TempDir;
using rocky::state::testing::WriteBytes;

std::unique_ptr<StateStore> OpenOrFail(const std::string& path, StoreOptions options) {
  auto store = StateStore::Open(path, options);
  REQUIRE_MESSAGE(store.ok(), store.status().message());
  return std::move(*store);
}

StoreOptions Rw() { return StoreOptions{.mode = OpenMode::kReadWrite}; }
StoreOptions Ro() { return StoreOptions{.mode = OpenMode::kReadOnly}; }

// Writes metadata.schema_version = version (or no metadata at all when version is 0) plus one watermark,
// through the engine directly, as another rocky build would.
void WriteEngineFile(const std::string& path, uint32_t version) {
  auto db = rocky::engine::Database::Open(path, rocky::engine::Options{});
  REQUIRE(db.ok());
  auto w = (*db)->BeginWrite();
  REQUIRE(w.ok());
  auto t = (*w)->OpenTable("watermarks");
  REQUIRE(t.ok());
  REQUIRE(
      (*t)->Insert("a.b.c", R"({"last_value":"2025-01-01T00:00:00Z","updated_at":"2025-01-02T00:00:00Z"})")
          .ok());
  if (version != 0) {
    auto m = (*w)->OpenTable("metadata");
    REQUIRE(m.ok());
    std::string bytes(4, '\0');
    for (int i = 0; i < 4; ++i)
      bytes[static_cast<size_t>(i)] = static_cast<char>((version >> (8 * i)) & 0xFF);
    REQUIRE((*m)->Insert("schema_version", bytes).ok());
  }
  REQUIRE((*w)->Commit().ok());
  REQUIRE((*db)->Close().ok());
}

TEST_CASE("watermarks round trip; updated_at is the write time, not last_value") {
  TempDir dir;
  const std::string path = dir.File("nested/deeper/state.redb");  // parent folders are created
  StoreOptions options = Rw();
  options.clock = [] { return std::chrono::system_clock::time_point(std::chrono::seconds(1893553445)); };
  {
    auto store = OpenOrFail(path, options);
    auto w = store->SetWatermark("acme.staging.orders", "2025-03-15T16:30:00+02:00");
    REQUIRE_MESSAGE(w.ok(), w.status().message());
    CHECK(w->last_value == "2025-03-15T14:30:00Z");
    CHECK(w->updated_at == "2030-01-02T03:04:05Z");
    REQUIRE(store->SetWatermark("acme.staging.customers", "2025-03-14T00:00:00Z").ok());
    // Moving a watermark replaces it.
    REQUIRE(store->SetWatermark("acme.staging.customers", "2025-03-16T00:00:00Z").ok());
  }
  auto store = OpenOrFail(path, Ro());
  auto list = store->ListWatermarks();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].table == "acme.staging.customers");
  CHECK((*list)[0].last_value == "2025-03-16T00:00:00Z");
  CHECK((*list)[1].table == "acme.staging.orders");
  CHECK((*list)[1].updated_at == "2030-01-02T03:04:05Z");
  auto one = store->GetWatermark("acme.staging.orders");
  REQUIRE(one.ok());
  REQUIRE(one->has_value());
  CHECK((*one)->last_value == "2025-03-15T14:30:00Z");
  CHECK(store->SetWatermark("a.b.c", "2025-03-15T14:30:00Z").status().message().find("read-only") !=
        std::string::npos);
}

TEST_CASE("updated_at with the real clock is now") {
  TempDir dir;
  auto store = OpenOrFail(dir.File("s.redb"), Rw());
  const std::string before = rocky::base::FormatUtc(std::chrono::system_clock::now());
  auto w = store->SetWatermark("a.b.c", "2001-01-01T00:00:00Z");
  const std::string after = rocky::base::FormatUtc(std::chrono::system_clock::now());
  REQUIRE(w.ok());
  CHECK(w->updated_at >= before);
  CHECK(w->updated_at <= after);
}

TEST_CASE("bad table names and timestamps are refused and nothing is written") {
  TempDir dir;
  auto store = OpenOrFail(dir.File("s.redb"), Rw());
  for (const char* bad : {"orders", "a.b", "a..c", ".b.c", "a.b.", ""}) {
    auto r = store->SetWatermark(bad, "2025-03-15T14:30:00Z");
    CHECK_MESSAGE(!r.ok(), bad);
  }
  for (const char* bad : {"not-a-time", "12a", "+5", "9223372036854775808", "1.5", ""}) {
    auto r = store->SetWatermark("a.b.c", bad);
    REQUIRE_MESSAGE(!r.ok(), bad);
    CHECK(r.status().message().find("'" + std::string(bad) + "'") != std::string::npos);
  }
  CHECK(store->ListWatermarks()->empty());
  CHECK(!store->SchemaVersionOnDisk()->has_value());
}

TEST_CASE("table names may hold dots after the schema; integer watermarks are kept exactly") {
  TempDir dir;
  auto store = OpenOrFail(dir.File("s.redb"), Rw());
  REQUIRE(store->SetWatermark("acme.staging.weird.a.b", "2025-03-15T14:30:00Z").ok());
  REQUIRE(store->SetWatermark("acme.staging.it's a \"t\"", "2025-03-15T14:30:00Z").ok());
  REQUIRE(store->SetWatermark("acme.staging.v", "9223372036854775807").ok());
  REQUIRE(store->SetWatermark("acme.staging.n", "-0042").ok());
  CHECK(store->GetWatermark("acme.staging.weird.a.b")->value().last_value == "2025-03-15T14:30:00Z");
  CHECK(store->GetWatermark("acme.staging.v")->value().last_value == "9223372036854775807");
  CHECK(store->GetWatermark("acme.staging.n")->value().last_value == "-42");
  auto recorded = store->RecordTableCopy("acme.staging.weird.a.b", std::string_view("17"), 3);
  REQUIRE_MESSAGE(recorded.ok(), recorded.status().message());
  CHECK(recorded->watermark->last_value == "17");
  // Export and import keep them.
  auto snapshot = store->Export();
  REQUIRE(snapshot.ok());
  REQUIRE(store->Import(*snapshot).ok());
  CHECK(store->ListWatermarks()->size() == 4);
  CHECK(rocky::base::IsIntegerWatermark("-9223372036854775808"));
  CHECK_FALSE(rocky::base::IsIntegerWatermark("-9223372036854775809"));
  CHECK_FALSE(rocky::base::IsIntegerWatermark("-"));
}

TEST_CASE("delete removes one watermark; a missing one is NotFound") {
  TempDir dir;
  auto store = OpenOrFail(dir.File("s.redb"), Rw());
  REQUIRE(store->SetWatermark("a.b.c", "2025-03-15T14:30:00Z").ok());
  REQUIRE(store->SetWatermark("a.b.d", "2025-03-15T14:30:00Z").ok());
  CHECK(store->DeleteWatermark("a.b.c").ok());
  Status missing = store->DeleteWatermark("a.b.c");
  CHECK(missing.IsNotFound());
  CHECK(missing.message().find("'a.b.c'") != std::string::npos);
  CHECK(store->ListWatermarks()->size() == 1);
  CHECK(*store->DeleteAllWatermarks() == 1);
  CHECK(store->ListWatermarks()->empty());
}

TEST_CASE("check history keeps the newest entries up to the cap, oldest first") {
  TempDir dir;
  StoreOptions options = Rw();
  options.check_history_cap = 3;
  auto store = OpenOrFail(dir.File("s.redb"), options);
  for (int i = 1; i <= 5; ++i) {
    REQUIRE(store
                ->AppendCheck("a.b.c", 100 * static_cast<uint64_t>(i),
                              "2025-03-1" + std::to_string(i) + "T10:00:00+00:00")
                .ok());
  }
  auto history = store->CheckHistory("a.b.c");
  REQUIRE(history.ok());
  REQUIRE(history->size() == 3);
  CHECK((*history)[0].count == 300);
  CHECK((*history)[0].timestamp == "2025-03-13T10:00:00Z");
  CHECK((*history)[2].count == 500);
  CHECK(store->CheckHistory("x.y.z")->empty());

  // The default cap is 10.
  auto defaults = OpenOrFail(dir.File("d.redb"), Rw());
  for (int i = 0; i < 12; ++i)
    REQUIRE(defaults->AppendCheck("a.b.c", static_cast<uint64_t>(i), "2025-03-15T10:00:00Z").ok());
  CHECK(defaults->CheckHistory("a.b.c")->size() == 10);
  CHECK(defaults->CheckHistory("a.b.c")->front().count == 2);
}

TEST_CASE("run history is appended and listed in order") {
  TempDir dir;
  auto store = OpenOrFail(dir.File("s.redb"), Rw());
  REQUIRE(
      store->AppendRun(RunRecord{"run-1", "2025-03-15T10:00:00Z", "2025-03-15T10:05:00Z", "success", 3, 0, 1})
          .ok());
  REQUIRE(store->AppendRun(RunRecord{"run-2", "2025-03-16T12:00:00+02:00", "", "running", 0, 0, 0}).ok());
  CHECK(!store->AppendRun(RunRecord{"", "2025-03-15T10:00:00Z", "", "x", 0, 0, 0}).ok());
  auto runs = store->ListRuns();
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 2);
  CHECK((*runs)[0].id == "run-1");
  CHECK((*runs)[0].anomalies == 1);
  CHECK((*runs)[1].started_at == "2025-03-16T10:00:00Z");
  CHECK((*runs)[1].finished_at.empty());
}

TEST_CASE("the schema version is stamped on the first write, also on a version-less file") {
  TempDir dir;
  const std::string path = dir.File("s.redb");
  {
    auto store = OpenOrFail(path, Rw());
    CHECK(!store->SchemaVersionOnDisk()->has_value());
    REQUIRE(store->SetWatermark("a.b.c", "2025-03-15T14:30:00Z").ok());
    CHECK(store->SchemaVersionOnDisk()->value() == kSchemaVersion);
  }
  const std::string legacy = dir.File("legacy.redb");
  WriteEngineFile(legacy, 0);
  {
    auto store = OpenOrFail(legacy, Ro());
    CHECK(!store->SchemaVersionOnDisk()->has_value());
    CHECK(store->ListWatermarks()->size() == 1);
  }
  auto store = OpenOrFail(legacy, Rw());
  CHECK(!store->SchemaVersionOnDisk()->has_value());  // opening writes nothing
  REQUIRE(store->SetWatermark("a.b.d", "2025-03-15T14:30:00Z").ok());
  CHECK(store->SchemaVersionOnDisk()->value() == 1);
  CHECK(store->ListWatermarks()->size() == 2);
}

TEST_CASE("a newer schema version is refused by readers and writers and the file is unchanged") {
  TempDir dir;
  const std::string path = dir.File("s.redb");
  WriteEngineFile(path, 3);
  const std::string before = ReadBytes(path);
  for (OpenMode mode : {OpenMode::kReadOnly, OpenMode::kReadWrite}) {
    auto store = StateStore::Open(path, StoreOptions{.mode = mode});
    REQUIRE(!store.ok());
    CHECK(store.status().message() == "state file schema version 3 is newer than this rocky supports (1)");
  }
  CHECK(ReadBytes(path) == before);
}

TEST_CASE("the state file is created with mode 0600") {
  TempDir dir;
  const std::string path = dir.File("s.redb");
  const mode_t old_umask = umask(0);  // the engine, not the umask, must keep the file private
  {
    auto store = OpenOrFail(path, Rw());
    REQUIRE(store->SetWatermark("a.b.c", "2025-03-15T14:30:00Z").ok());
  }
  umask(old_umask);
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("missing, directory and corrupt paths") {
  TempDir dir;
  // Read-only on a missing file: an empty store, and the file is not created.
  auto missing = OpenOrFail(dir.File("none.redb"), Ro());
  CHECK(missing->ListWatermarks()->empty());
  CHECK(!missing->SchemaVersionOnDisk()->has_value());
  CHECK(access(dir.File("none.redb").c_str(), F_OK) != 0);

  for (OpenMode mode : {OpenMode::kReadOnly, OpenMode::kReadWrite}) {
    auto d = StateStore::Open(dir.path(), StoreOptions{.mode = mode});
    REQUIRE(!d.ok());
    CHECK(d.status().message().find("is a directory") != std::string::npos);
  }
  const std::string garbage = dir.File("garbage.redb");
  WriteBytes(garbage, std::string(10000, 'x'));
  for (OpenMode mode : {OpenMode::kReadOnly, OpenMode::kReadWrite}) {
    auto g = StateStore::Open(garbage, StoreOptions{.mode = mode});
    REQUIRE(!g.ok());
    CHECK(g.status().message().find("garbage.redb") != std::string::npos);
  }
  CHECK(ReadBytes(garbage) == std::string(10000, 'x'));
}

TEST_CASE("a writer held by another process: retries, then an error naming its pid") {
  TempDir dir;
  const std::string path = dir.File("s.redb");
  int ready[2], release[2];
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(release) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(ready[0]);
    close(release[1]);
    auto store = StateStore::Open(path, StoreOptions{.mode = OpenMode::kReadWrite});
    const char ok = store.ok() ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    char c;
    (void)!read(release[0], &c, 1);  // returns when the parent closes its end
    _exit(0);
  }
  close(ready[1]);
  close(release[0]);
  char ok = 0;
  REQUIRE(read(ready[0], &ok, 1) == 1);
  REQUIRE(ok == 'y');

  StoreOptions options = Rw();
  options.busy_timeout = std::chrono::milliseconds(400);
  const auto start = std::chrono::steady_clock::now();
  auto store = StateStore::Open(path, options);
  const auto waited = std::chrono::steady_clock::now() - start;
  close(release[1]);
  int status = 0;
  waitpid(child, &status, 0);

  REQUIRE(!store.ok());
  CHECK(store.status().IsBusy());
  CHECK(store.status().message().find("locked by process " + std::to_string(child)) != std::string::npos);
  CHECK(waited >= std::chrono::milliseconds(400));
  // Readers never wait for the writer.
  CHECK(StateStore::Open(path, Ro()).ok());
  // Once the holder is gone the writer gets in.
  CHECK(StateStore::Open(path, Rw()).ok());
}

TEST_CASE("export and import round trip; a bad import changes nothing") {
  TempDir dir;
  auto source = OpenOrFail(dir.File("a.redb"), Rw());
  REQUIRE(source->SetWatermark("a.b.c", "2025-03-15T14:30:00Z").ok());
  REQUIRE(source->SetWatermark("a.b.\"quoted\\", "2025-03-15T14:30:00Z").ok());
  REQUIRE(source->AppendCheck("a.b.c", 42, "2025-03-15T10:00:00Z").ok());
  REQUIRE(
      source->AppendRun(RunRecord{"r1", "2025-03-15T10:00:00Z", "2025-03-15T10:01:00Z", "success", 1, 0, 0})
          .ok());
  auto exported = source->Export();
  REQUIRE(exported.ok());
  const std::string json = SnapshotToJson(*exported);

  auto parsed = SnapshotFromJson(json);
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
  auto target = OpenOrFail(dir.File("b.redb"), Rw());
  REQUIRE(target->SetWatermark("x.y.z", "2025-03-15T14:30:00Z").ok());  // replaced by the import
  REQUIRE(target->Import(*parsed).ok());
  auto again = target->Export();
  REQUIRE(again.ok());
  CHECK(SnapshotToJson(*again) == json);

  for (
      const char* bad :
      {"", "{", "[]", R"({"format":"rocky-state"})",
       R"({"format":"other","schema_version":1,"watermarks":[],"check_history":[],"run_history":[]})",
       R"({"format":"rocky-state","schema_version":2,"watermarks":[],"check_history":[],"run_history":[]})",
       R"({"format":"rocky-state","schema_version":1,"watermarks":[{"table":"a.b.c","last_value":"bad","updated_at":"2025-03-15T14:30:00Z"}],"check_history":[],"run_history":[]})",
       R"({"format":"rocky-state","schema_version":1,"watermarks":[{"table":"abc","last_value":"2025-03-15T14:30:00Z","updated_at":"2025-03-15T14:30:00Z"}],"check_history":[],"run_history":[]})",
       R"({"format":"rocky-state","schema_version":1,"watermarks":[],"check_history":[{"table":"a.b.c","entries":[{"count":-1,"timestamp":"2025-03-15T14:30:00Z"}]}],"run_history":[]})"}) {
    CHECK_MESSAGE(!SnapshotFromJson(bad).ok(), bad);
  }
  // A table's watermark twice is refused, naming the table, whether the copies are neighbours (an edited
  // export) or not.
  const std::string w1 =
      R"({"table":"a.b.c","last_value":"2025-03-15T14:30:00Z","updated_at":"2025-03-15T14:30:00Z"})";
  const std::string w2 =
      R"({"table":"a.b.d","last_value":"2025-03-15T14:30:00Z","updated_at":"2025-03-15T14:30:00Z"})";
  for (const std::string& list : {w1 + "," + w1, w1 + "," + w2 + "," + w1, w2 + "," + w1 + "," + w1}) {
    const std::string twice = R"({"format":"rocky-state","schema_version":1,"watermarks":[)" + list +
                              R"(],"check_history":[],"run_history":[]})";
    auto r = SnapshotFromJson(twice);
    REQUIRE_MESSAGE(!r.ok(), twice);
    CHECK_MESSAGE(r.status().message().find("a.b.c") != std::string::npos, r.status().message());
    CHECK_MESSAGE(r.status().message().find("appears twice") != std::string::npos, r.status().message());
  }
  // Import validates again, so a snapshot built in code cannot slip a bad record in either.
  StateSnapshot twice;
  twice.watermarks.push_back(Watermark{"a.b.d", "2025-03-15T14:30:00Z", "2025-03-15T14:30:00Z"});
  twice.watermarks.push_back(Watermark{"a.b.c", "2025-03-15T14:30:00Z", "2025-03-15T14:30:00Z"});
  twice.watermarks.push_back(Watermark{"a.b.d", "2025-03-15T14:30:00Z", "2025-03-15T14:30:00Z"});
  CHECK(!target->Import(twice).ok());
  StateSnapshot invalid;
  invalid.watermarks.push_back(Watermark{"a.b.c", "2025-03-15T14:30:00Z", "garbage"});
  CHECK(!target->Import(invalid).ok());
  CHECK(SnapshotToJson(*target->Export()) == json);
}

}  // namespace

TEST_CASE("RecordTableCopy writes the watermark and the row count in one commit") {
  TempDir dir;
  StoreOptions options = Rw();
  int64_t now_s = 1893553445;  // 2030-01-02T03:04:05Z
  options.clock = [&now_s] { return std::chrono::system_clock::time_point(std::chrono::seconds(now_s)); };
  auto store = OpenOrFail(dir.File("s.redb"), options);

  auto first = store->RecordTableCopy("a.b.c", "2025-03-15T16:30:00+02:00", 42);
  REQUIRE_MESSAGE(first.ok(), first.status().message());
  REQUIRE(first->watermark.has_value());
  CHECK(first->history_error.ok());
  CHECK(first->watermark->last_value == "2025-03-15T14:30:00Z");
  CHECK(first->watermark->updated_at == "2030-01-02T03:04:05Z");
  auto history = store->CheckHistory("a.b.c");
  REQUIRE(history->size() == 1);
  CHECK((*history)[0].count == 42);
  CHECK((*history)[0].timestamp == "2030-01-02T03:04:05Z");

  // No new last value (an empty target): the watermark stays as it was, the count is still recorded.
  now_s += 60;
  auto second = store->RecordTableCopy("a.b.c", std::nullopt, 0);
  REQUIRE(second.ok());
  REQUIRE(second->watermark.has_value());
  CHECK(second->watermark->last_value == "2025-03-15T14:30:00Z");
  CHECK(second->watermark->updated_at == "2030-01-02T03:04:05Z");
  CHECK(store->CheckHistory("a.b.c")->size() == 2);

  // A per-call cap trims the history; no count leaves it alone.
  for (int i = 0; i < 4; ++i) REQUIRE(store->RecordTableCopy("a.b.c", std::nullopt, 7, 3).ok());
  CHECK(store->CheckHistory("a.b.c")->size() == 3);
  REQUIRE(store->RecordTableCopy("a.b.c", "2025-03-16T00:00:00Z", std::nullopt).ok());
  CHECK(store->CheckHistory("a.b.c")->size() == 3);
  CHECK(store->GetWatermark("a.b.c")->value().last_value == "2025-03-16T00:00:00Z");

  // Bad input writes nothing.
  CHECK(store->RecordTableCopy("a.b.c", "yesterday", 1).status().code() == Status::Code::kInvalidArgument);
  CHECK(store->RecordTableCopy("nodots", "2025-03-16T00:00:00Z", 1).status().code() ==
        Status::Code::kInvalidArgument);
  CHECK(store->CheckHistory("a.b.c")->size() == 3);
  CHECK(store->GetWatermark("a.b.c")->value().last_value == "2025-03-16T00:00:00Z");
  // No watermark and no value: nothing to report.
  auto none = store->RecordTableCopy("x.y.z", std::nullopt, std::nullopt);
  REQUIRE(none.ok());
  CHECK(!none->watermark.has_value());
}

TEST_CASE("RecordTableCopy remembers row counts in the same commit; RowCountOf reads them back") {
  TempDir dir;
  auto store = OpenOrFail(dir.File("s.redb"), Rw());
  CHECK_FALSE(store->RowCountOf("a.b.c").value().has_value());  // no table yet
  auto recorded = store->RecordTableCopy(
      "a.b.c", "2025-03-15T14:30:00Z", 42, 0,
      {{"src.b.c", RememberedRowCount{"v1", 42}}, {"a.b.c", RememberedRowCount{"v2", 40}}});
  REQUIRE_MESSAGE(recorded.ok(), recorded.status().message());
  CHECK(store->RowCountOf("src.b.c").value()->version == "v1");
  CHECK(store->RowCountOf("src.b.c").value()->rows == 42);
  CHECK(store->RowCountOf("a.b.c").value()->rows == 40);
  CHECK_FALSE(store->RowCountOf("x.y.z").value().has_value());
  // Overwritten whole; a bad table name among them writes nothing at all.
  REQUIRE(
      store->RecordTableCopy("a.b.c", std::nullopt, 43, 0, {{"a.b.c", RememberedRowCount{"v3", 41}}}).ok());
  CHECK(store->RowCountOf("a.b.c").value()->version == "v3");
  CHECK(store->RecordTableCopy("a.b.c", std::nullopt, 44, 0, {{"nodots", RememberedRowCount{"v4", 1}}})
            .status()
            .code() == Status::Code::kInvalidArgument);
  CHECK(store->CheckHistory("a.b.c")->size() == 2);
  // A cache: export leaves it out, so the export document is unchanged by it.
  CHECK(SnapshotToJson(*store->Export()).find("v3") == std::string::npos);
}

TEST_CASE("plans are saved, loaded by id, and only the newest kMaxStoredPlans are kept") {
  TempDir dir;
  StoreOptions options = Rw();
  int64_t now_s = 1893553445;
  options.clock = [&now_s] { return std::chrono::system_clock::time_point(std::chrono::seconds(now_s)); };
  const std::string path = dir.File("s.redb");
  {
    auto store = OpenOrFail(path, options);
    CHECK(!store->LoadPlan("p0")->has_value());
    for (size_t i = 0; i < kMaxStoredPlans + 5; ++i) {
      ++now_s;
      const std::string json = R"({"tables":[{"n":)" + std::to_string(i) + R"(,"q":"it's \"quoted\""}]})";
      REQUIRE(store->SavePlan("p" + std::to_string(i), json).ok());
    }
    CHECK(store->SavePlan("", "{}").code() == Status::Code::kInvalidArgument);
  }
  auto reader = OpenOrFail(path, Ro());
  for (size_t i = 0; i < 5; ++i) CHECK_MESSAGE(!reader->LoadPlan("p" + std::to_string(i))->has_value(), i);
  for (size_t i = 5; i < kMaxStoredPlans + 5; ++i) {
    auto plan = reader->LoadPlan("p" + std::to_string(i));
    REQUIRE(plan.ok());
    REQUIRE(plan->has_value());
    CHECK(**plan == R"({"tables":[{"n":)" + std::to_string(i) + R"(,"q":"it's \"quoted\""}]})");
  }
  // A missing file has no plans, and reading them does not create it.
  auto missing = OpenOrFail(dir.File("none.redb"), Ro());
  CHECK(!missing->LoadPlan("p5")->has_value());
}

TEST_CASE(
    "a run recorded from its start: finished in place; one left running by a killed writer becomes crashed") {
  TempDir dir;
  auto store = OpenOrFail(dir.File("s.redb"), Rw());
  auto first =
      store->BeginRun(RunRecord{.id = "r1", .started_at = "2025-03-15T14:00:00Z", .status = "running"});
  REQUIRE(first.ok());
  // Killed here: no FinishRun. The next run's start marks it.
  auto second =
      store->BeginRun(RunRecord{.id = "r2", .started_at = "2025-03-15T15:00:00Z", .status = "running"});
  REQUIRE(second.ok());
  CHECK(*second == *first + 1);
  REQUIRE(store
              ->FinishRun(*second, RunRecord{.id = "r2",
                                             .started_at = "2025-03-15T15:00:00Z",
                                             .finished_at = "2025-03-15T15:00:05Z",
                                             .status = "success",
                                             .tables_copied = 4})
              .ok());
  auto runs = store->ListRuns();
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 2);
  CHECK((*runs)[0].id == "r1");
  CHECK((*runs)[0].status == "crashed");
  CHECK((*runs)[1].status == "success");
  CHECK((*runs)[1].tables_copied == 4);
  CHECK((*runs)[1].finished_at == "2025-03-15T15:00:05Z");
  CHECK(store->FinishRun(99, RunRecord{.id = "x", .started_at = "2025-03-15T15:00:00Z", .status = "success"})
            .IsNotFound());
}

namespace {

// A state holding 1,500 tables' check histories (several leaves of check_history) and two watermarks, with
// one leaf of check_history in the middle damaged; the last two commits touched only watermarks. Returns the
// tables whose histories sat on the damaged leaf.
std::vector<std::string> StateWithDamagedHistoryLeaf(const std::string& path) {
  StateSnapshot snapshot;
  snapshot.schema_version = kSchemaVersion;
  for (int i = 0; i < 1500; ++i) {
    char table[32];
    std::snprintf(table, sizeof table, "c.s.t%04d", i);
    snapshot.check_history.push_back(
        TableChecks{table,
                    {CheckEntry{static_cast<uint64_t>(i), "2026-01-01T00:00:00Z"},
                     CheckEntry{static_cast<uint64_t>(i + 1), "2026-01-02T00:00:00Z"}}});
  }
  {
    auto store = OpenOrFail(path, Rw());
    REQUIRE(store->Import(snapshot).ok());
    REQUIRE(store->SetWatermark("a.b.c", "2026-01-01T00:00:00Z").ok());
    REQUIRE(store->SetWatermark("a.b.d", "2026-01-01T00:00:00Z").ok());
  }
  const std::vector<uint64_t> leaves =
      rocky_test::BranchChildren(path, rocky_test::TableRootPage(path, "check_history"));
  REQUIRE(leaves.size() >= 3);
  const uint64_t victim = leaves[leaves.size() / 2];
  std::vector<std::string> lost;
  for (const auto& e : rocky_test::DescribePage(path, victim).entries) lost.push_back(e.key);
  REQUIRE(!lost.empty());
  rocky_test::DamagePage(path, victim);
  return lost;
}

TEST_CASE("a damaged check_history page: Export fails whole, ExportSalvage keeps every readable entry") {
  TempDir dir;
  const std::string path = dir.File("s.redb");
  const std::vector<std::string> lost = StateWithDamagedHistoryLeaf(path);
  auto store = OpenOrFail(path, Ro());
  auto whole = store->Export();
  REQUIRE(!whole.ok());
  CHECK(whole.status().IsCorruption());

  auto salvaged = store->ExportSalvage();
  REQUIRE_MESSAGE(salvaged.ok(), salvaged.status().ToString());
  CHECK(salvaged->snapshot.schema_version == std::optional<uint32_t>(kSchemaVersion));
  CHECK(salvaged->snapshot.watermarks.size() == 2);
  // Every history but the damaged leaf's, on both sides of it.
  CHECK(salvaged->snapshot.check_history.size() == 1500 - lost.size());
  CHECK(salvaged->entries_lost == lost.size());
  CHECK(salvaged->snapshot.check_history.front().table == "c.s.t0000");
  CHECK(salvaged->snapshot.check_history.back().table == "c.s.t1499");
  for (const TableChecks& c : salvaged->snapshot.check_history) {
    CHECK(std::find(lost.begin(), lost.end(), c.table) == lost.end());
    CHECK(c.entries.size() == 2);
  }
  REQUIRE(salvaged->unreadable.size() == 1);
  const std::string& why = salvaged->unreadable[0];
  CHECK(why.find("'check_history'") != std::string::npos);
  CHECK(why.find(std::to_string(lost.size()) + " of 1500 entries") != std::string::npos);
  // The range named is exactly around the damaged leaf.
  CHECK(why.find("before key '" + std::string(1, 'c')) != std::string::npos);

  // What was salvaged imports into a fresh state file.
  auto fresh = OpenOrFail(dir.File("fresh.redb"), Rw());
  REQUIRE(fresh->Import(salvaged->snapshot).ok());
  CHECK(fresh->Export()->check_history.size() == 1500 - lost.size());
}

TEST_CASE("a damaged check_history page costs the row count, never the watermark") {
  TempDir dir;
  const std::string path = dir.File("s.redb");
  const std::vector<std::string> lost = StateWithDamagedHistoryLeaf(path);
  auto store = OpenOrFail(path, Rw());
  // A table whose history is on the damaged page: the watermark is saved anyway, and the error says why the
  // count is not.
  auto recorded = store->RecordTableCopy(lost.front(), "2026-02-01T00:00:00Z", 42);
  REQUIRE_MESSAGE(recorded.ok(), recorded.status().ToString());
  REQUIRE(recorded->watermark.has_value());
  CHECK(recorded->watermark->last_value == "2026-02-01T00:00:00Z");
  CHECK(!recorded->history_error.ok());
  CHECK(recorded->history_error.message().find("check_history") != std::string::npos);
  CHECK(store->GetWatermark(lost.front())->value().last_value == "2026-02-01T00:00:00Z");
  // A table whose history is readable records both in one commit.
  auto fine = store->RecordTableCopy("c.s.t0000", "2026-02-01T00:00:00Z", 7);
  REQUIRE(fine.ok());
  CHECK(fine->history_error.ok());
  CHECK(store->CheckHistory("c.s.t0000")->back().count == 7);
}

TEST_CASE("a run_history key that is not a sequence number is a clear error, never an exception") {
  TempDir dir;
  const std::string path = dir.File("s.redb");
  {
    auto store = OpenOrFail(path, Rw());
    REQUIRE(store->SetWatermark("a.b.c", "2026-01-01T00:00:00Z").ok());
  }
  {
    auto db = rocky::engine::Database::Open(path, rocky::engine::Options{});
    REQUIRE(db.ok());
    auto w = (*db)->BeginWrite();
    REQUIRE(w.ok());
    auto t = (*w)->OpenTable("run_history");
    REQUIRE(t.ok());
    REQUIRE((*t)->Insert("not-a-number", "{}").ok());
    REQUIRE((*w)->Commit().ok());
  }
  auto store = OpenOrFail(path, Rw());
  const RunRecord run{
      .id = "r1", .started_at = "2026-01-01T00:00:00Z", .finished_at = {}, .status = "running"};
  auto begun = store->BeginRun(run);
  REQUIRE(!begun.ok());
  CHECK(begun.status().IsCorruption());
  CHECK(begun.status().message().find("'not-a-number'") != std::string::npos);
  Status appended = store->AppendRun(run);
  CHECK(appended.IsCorruption());
}

TEST_CASE("a zero-length state file is an empty state for readers, as for writers") {
  TempDir dir;
  const std::string path = dir.File("s.redb");
  WriteBytes(path, "");
  {
    auto reader = OpenOrFail(path, Ro());
    CHECK(reader->ListWatermarks()->empty());
    CHECK(!reader->SchemaVersionOnDisk()->has_value());
  }
  auto writer = OpenOrFail(path, Rw());
  REQUIRE(writer->SetWatermark("a.b.c", "2026-01-01T00:00:00Z").ok());
}

TEST_CASE("Compact gives the space of deleted watermarks back, right after the delete") {
  TempDir dir;
  const std::string path = dir.File("s.redb");
  StateSnapshot snapshot;
  snapshot.schema_version = kSchemaVersion;
  for (int i = 0; i < 20000; ++i) {
    char table[32];
    std::snprintf(table, sizeof table, "c.s.t%05d", i);
    snapshot.watermarks.push_back(Watermark{table, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"});
  }
  auto store = OpenOrFail(path, Rw());
  REQUIRE(store->Import(snapshot).ok());
  REQUIRE(*store->DeleteAllWatermarks() == 20000);
  struct stat before {};
  REQUIRE(::stat(path.c_str(), &before) == 0);
  REQUIRE(store->Compact().ok());
  struct stat after {};
  REQUIRE(::stat(path.c_str(), &after) == 0);
  INFO("before " << before.st_size << " bytes, after " << after.st_size);
  CHECK(before.st_size > 1'000'000);
  CHECK(after.st_size < 100'000);
  // Compacting a packed file leaves it alone, and the state is intact.
  REQUIRE(store->Compact().ok());
  struct stat again {};
  REQUIRE(::stat(path.c_str(), &again) == 0);
  CHECK(again.st_size == after.st_size);
  CHECK(store->ListWatermarks()->empty());
  CHECK(store->SchemaVersionOnDisk()->value() == kSchemaVersion);
}

}  // namespace

namespace {

// 2 x 1,500 watermarks under two catalogs ("a." and "b."), several leaves each, with a leaf in the middle of
// the "b." ones damaged; the last two commits touched only "a." watermarks. Returns the tables on that leaf.
std::vector<std::string> StateWithDamagedWatermarkLeaf(const std::string& path) {
  StateSnapshot snapshot;
  snapshot.schema_version = kSchemaVersion;
  for (const char* catalog : {"a", "b"}) {
    for (int i = 0; i < 1500; ++i) {
      char table[32];
      std::snprintf(table, sizeof table, "%s.s.t%04d", catalog, i);
      snapshot.watermarks.push_back(Watermark{table, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"});
    }
  }
  {
    auto store = OpenOrFail(path, Rw());
    REQUIRE(store->Import(snapshot).ok());
    REQUIRE(store->SetWatermark("a.s.t0000", "2026-03-01T00:00:00Z").ok());
    REQUIRE(store->SetWatermark("a.s.t0001", "2026-03-01T00:00:00Z").ok());
  }
  const std::vector<uint64_t> leaves =
      rocky_test::BranchChildren(path, rocky_test::TableRootPage(path, "watermarks"));
  REQUIRE(leaves.size() >= 8);
  const uint64_t victim = leaves[leaves.size() * 3 / 4];
  std::vector<std::string> lost;
  for (const auto& e : rocky_test::DescribePage(path, victim).entries) lost.push_back(e.key);
  REQUIRE(!lost.empty());
  REQUIRE(lost.front().rfind("b.", 0) == 0);
  rocky_test::DamagePage(path, victim);
  return lost;
}

}  // namespace

TEST_CASE("ForEachWatermark with a prefix reads only that range: damage elsewhere does not touch it") {
  TempDir dir;
  const std::string path = dir.File("s.redb");
  const std::vector<std::string> lost = StateWithDamagedWatermarkLeaf(path);
  auto store = OpenOrFail(path, Ro());
  // The whole listing meets the damaged leaf...
  auto all = store->ListWatermarks();
  REQUIRE(!all.ok());
  CHECK(all.status().IsCorruption());
  // ... a prefix whose range lies elsewhere never reads it, and sees exactly its own watermarks, in order.
  std::vector<std::string> seen;
  const Status s = store->ForEachWatermark("a.s.", [&](const StateStore::WatermarkView& w) {
    seen.emplace_back(w.table);
    CHECK(w.updated_at.size() == 20);
    return Status::OK();
  });
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  REQUIRE(seen.size() == 1500);
  CHECK(seen.front() == "a.s.t0000");
  CHECK(seen.back() == "a.s.t1499");
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  // A narrower prefix, and a prefix matching nothing.
  seen.clear();
  REQUIRE(store
              ->ForEachWatermark("b.s.t001",
                                 [&](const StateStore::WatermarkView& w) {
                                   seen.emplace_back(w.table);
                                   return Status::OK();
                                 })
              .ok());
  CHECK(seen == std::vector<std::string>{"b.s.t0010", "b.s.t0011", "b.s.t0012", "b.s.t0013", "b.s.t0014",
                                         "b.s.t0015", "b.s.t0016", "b.s.t0017", "b.s.t0018", "b.s.t0019"});
  REQUIRE(
      store
          ->ForEachWatermark("c.", [&](const StateStore::WatermarkView&) { return Status::Corruption("no"); })
          .ok());
  // A prefix over the damaged leaf fails with the engine's error, after the entries before it.
  size_t before = 0;
  const Status damaged = store->ForEachWatermark("b.", [&](const StateStore::WatermarkView&) {
    ++before;
    return Status::OK();
  });
  CHECK(damaged.IsCorruption());
  CHECK(before < 1500 - lost.size() + 1);
  // The visitor's own error stops the walk and is returned as it is.
  int calls = 0;
  const Status stopped = store->ForEachWatermark("a.", [&](const StateStore::WatermarkView&) {
    return ++calls == 3 ? Status::Busy("stop here") : Status::OK();
  });
  CHECK(stopped.IsBusy());
  CHECK(calls == 3);
}

TEST_CASE("stored watermark records in any valid JSON form read the same; a malformed one is named") {
  TempDir dir;
  const std::string path = dir.File("s.redb");
  // Written through the engine, as another writer (or a hand-edited export re-imported) might have stored
  // them: the common compact form takes a shortcut past the JSON parser, every other form goes through it.
  const std::vector<std::pair<std::string, std::string>> records = {
      {"c.s.compact", R"({"last_value":"2025-01-01T00:00:00Z","updated_at":"2025-01-02T00:00:00Z"})"},
      {"c.s.spaces", R"({ "last_value" : "2025-01-01T00:00:00Z", "updated_at" : "2025-01-02T00:00:00Z" })"},
      {"c.s.swapped", R"({"updated_at":"2025-01-02T00:00:00Z","last_value":"2025-01-01T00:00:00Z"})"},
      {"c.s.escaped", R"({"last_value":"2025\u002d01-01T00:00:00Z","updated_at":"a\"b\\c"})"},
      {"c.s.extra", R"({"last_value":"42","updated_at":"2025-01-02T00:00:00Z","note":"x"})"},
      {"c.s.utf8", "{\"last_value\":\"caf\xc3\xa9\",\"updated_at\":\"2025-01-02T00:00:00Z\"}"},
      {"c.s.quote_split", R"({"last_value":"a\",\"updated_at\":\"b","updated_at":"c"})"},
  };
  {
    auto db = rocky::engine::Database::Open(path, rocky::engine::Options{});
    REQUIRE(db.ok());
    auto w = (*db)->BeginWrite();
    REQUIRE(w.ok());
    auto t = (*w)->OpenTable("watermarks");
    REQUIRE(t.ok());
    for (const auto& [key, value] : records) REQUIRE((*t)->Insert(key, value).ok());
    REQUIRE((*w)->Commit().ok());
    REQUIRE((*db)->Close().ok());
  }
  auto store = OpenOrFail(path, Ro());
  auto list = store->ListWatermarks();
  REQUIRE_MESSAGE(list.ok(), list.status().ToString());
  std::map<std::string, std::pair<std::string, std::string>> got;
  for (const Watermark& w : *list) got[w.table] = {w.last_value, w.updated_at};
  using P = std::pair<std::string, std::string>;
  CHECK(got["c.s.compact"] == P{"2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"});
  CHECK(got["c.s.spaces"] == P{"2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"});
  CHECK(got["c.s.swapped"] == P{"2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"});
  CHECK(got["c.s.escaped"] == P{"2025-01-01T00:00:00Z", "a\"b\\c"});
  CHECK(got["c.s.extra"] == P{"42", "2025-01-02T00:00:00Z"});
  CHECK(got["c.s.utf8"] == P{"caf\xc3\xa9", "2025-01-02T00:00:00Z"});
  CHECK(got["c.s.quote_split"] == P{"a\",\"updated_at\":\"b", "c"});
  // One point lookup goes through the same parsing.
  CHECK(store->GetWatermark("c.s.escaped")->value().updated_at == "a\"b\\c");

  // A malformed record fails the listing with Corruption naming its table.
  {
    store.reset();
    auto db = rocky::engine::Database::Open(path, rocky::engine::Options{});
    REQUIRE(db.ok());
    auto w = (*db)->BeginWrite();
    REQUIRE(w.ok());
    REQUIRE(
        (*(*w)->OpenTable("watermarks"))->Insert("c.s.broken", R"({"last_value":"x","updated_at":)").ok());
    REQUIRE((*w)->Commit().ok());
    REQUIRE((*db)->Close().ok());
  }
  store = OpenOrFail(path, Ro());
  auto broken = store->ListWatermarks();
  REQUIRE(!broken.ok());
  CHECK(broken.status().IsCorruption());
  CHECK(broken.status().message().find("c.s.broken") != std::string::npos);
}
