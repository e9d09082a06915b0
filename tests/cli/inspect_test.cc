// rocky-inspect: the engine's inspection API (rocky/engine/inspect.h) on the golden file and on damaged
// copies of it, then the built program end to end. Every run must leave the file's bytes and mtime untouched.
#include "rocky/engine/inspect.h"

#include <doctest/doctest.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "program_runner.h"
#include "rocky/engine/db.h"

namespace {

using namespace rocky::engine;
// tests/cli/program_runner.h
using rocky::cli::testing::Contains;
using rocky::cli::testing::EnvOrFail;
using rocky::cli::testing::ProgramPath;
using rocky::cli::testing::ReadBytes;
using rocky::cli::testing::RunShell;
using rocky::cli::testing::ShellQuote;
using ProgramRun = rocky::cli::testing::Run;

std::string Golden() { return EnvOrFail("ROCKY_SOURCE_ROOT") + "/tests/golden/small-v1.redb"; }

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  REQUIRE(out.good());
}

// A temporary file removed at the end of the test.
struct TempFile {
  explicit TempFile(const std::string& bytes) {
    const char* tmpdir = std::getenv("TMPDIR");
    path = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/rocky-inspect-test-XXXXXX";
    const int fd = mkstemp(path.data());
    REQUIRE(fd >= 0);
    close(fd);
    WriteBytes(path, bytes);
  }
  ~TempFile() { unlink(path.c_str()); }
  std::string path;
};

// The bytes and modification time of a file, to prove inspection never writes.
struct Snapshot {
  std::string bytes;
  struct timespec mtime {};
  bool operator==(const Snapshot& o) const {
    return bytes == o.bytes && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

Snapshot Take(const std::string& path) {
  Snapshot s;
  s.bytes = ReadBytes(path);
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  s.mtime = st.st_mtim;
  return s;
}

constexpr uint32_t kGoldenPageSize = 512;

// A leaf page of the watermarks table written before the current commit: damage there cannot be mistaken
// for a commit cut by a crash (recovery would then fall back to the older slot), so it must be reported.
uint64_t WatermarksLeaf(Inspector& inspector) {
  auto tables = inspector.ListTables();
  REQUIRE(tables.ok());
  REQUIRE(inspector.current_slot() >= 0);
  const uint64_t current_txn = inspector.slots()[static_cast<size_t>(inspector.current_slot())].txn_id;
  std::vector<uint64_t> todo;
  for (const InspectedTable& t : tables.value()) {
    if (t.name == "watermarks") todo.push_back(t.root);
  }
  REQUIRE(todo.size() == 1);
  while (!todo.empty()) {
    const uint64_t id = todo.back();
    todo.pop_back();
    auto page = inspector.DescribePage(id);
    REQUIRE(page.ok());
    if (page->kind_name == "leaf") {
      if (page->txn_id != current_txn) return id;
      continue;
    }
    REQUIRE(page->kind_name == "branch");
    todo.push_back(page->leftmost_child);
    for (const InspectedEntry& e : page->entries) todo.push_back(e.child);
  }
  FAIL("no watermarks leaf older than the current commit");
  return 0;
}

// A copy of the golden file with one byte flipped in the middle of the first watermarks leaf; returns its id.
uint64_t FlipLeafByte(std::string* bytes) {
  auto inspector = Inspector::Open(Golden());
  REQUIRE(inspector.ok());
  const uint64_t leaf = WatermarksLeaf(*inspector.value());
  (*bytes)[leaf * kGoldenPageSize + kGoldenPageSize / 2] ^= 0x5a;
  return leaf;
}

TEST_CASE("Inspector reads the golden file's header, slots and tables") {
  const Snapshot before = Take(Golden());
  {
    auto opened = Inspector::Open(Golden());
    REQUIRE(opened.ok());
    Inspector& in = *opened.value();
    CHECK(in.header().magic_ok);
    CHECK(in.header().checksum_ok);
    CHECK(in.header().status.ok());
    CHECK(in.header().format_version == 1);
    CHECK(in.header().page_size == kGoldenPageSize);
    CHECK(in.header().file_size == before.bytes.size());
    REQUIRE(in.slots().size() == 2);
    REQUIRE(in.current_slot() >= 0);
    const InspectedSlot& cur = in.slots()[static_cast<size_t>(in.current_slot())];
    CHECK(cur.txn_id == 4);
    CHECK(cur.checksum_ok);
    CHECK(cur.complete);
    CHECK(cur.page_count * kGoldenPageSize <= before.bytes.size());

    auto tables = in.ListTables();
    REQUIRE(tables.ok());
    REQUIRE(tables->size() == 2);
    CHECK((*tables)[0].name == "check_history");
    CHECK((*tables)[0].entries == 1);
    CHECK((*tables)[1].name == "watermarks");
    CHECK((*tables)[1].entries == 26);
    for (const InspectedTable& t : tables.value()) {
      CHECK(t.status.ok());
      CHECK(t.counted == t.entries);
    }

    std::vector<std::string> keys;
    CHECK(in.WalkTable("watermarks", [&](std::string_view k, std::string_view) {
              keys.emplace_back(k);
              return true;
            }).ok());
    CHECK(keys.size() == 26);
    for (size_t i = 1; i < keys.size(); ++i) CHECK(keys[i - 1] < keys[i]);
    int visited = 0;
    CHECK(in.WalkTable("watermarks", [&](std::string_view, std::string_view) { return ++visited < 3; }).ok());
    CHECK(visited == 3);
    CHECK(in.WalkTable("nope", [](std::string_view, std::string_view) { return true; }).IsNotFound());

    const InspectionReport r = in.Inspect();
    CHECK(r.healthy());
    CHECK(r.integrity.ok());
    CHECK(r.stats_complete);
    CHECK(r.stats.tables == 2);
    CHECK(r.stats.entries == 27);
    CHECK(r.stats.file_pages == cur.page_count);
  }
  CHECK(Take(Golden()) == before);
}

TEST_CASE("Inspector::DescribePage decodes the header, a slot, a leaf and refuses pages past the end") {
  auto opened = Inspector::Open(Golden());
  REQUIRE(opened.ok());
  Inspector& in = *opened.value();

  auto header = in.DescribePage(0);
  REQUIRE(header.ok());
  CHECK(header->kind_name == "super-header");
  REQUIRE(header->header.has_value());
  CHECK(header->header->page_size == kGoldenPageSize);

  auto slot = in.DescribePage(1);
  REQUIRE(slot.ok());
  CHECK(slot->kind_name == "commit slot");
  CHECK(slot->checksum_ok);
  REQUIRE(slot->slot.has_value());
  CHECK(slot->slot->name == 'A');
  CHECK(slot->slot->page_id == 1);

  auto leaf = in.DescribePage(WatermarksLeaf(in));
  REQUIRE(leaf.ok());
  CHECK(leaf->checksum_ok);
  CHECK(leaf->structure.ok());
  CHECK(leaf->count == leaf->entries.size());
  CHECK(!leaf->entries.empty());

  const uint64_t pages = in.header().file_size / kGoldenPageSize;
  CHECK_FALSE(in.DescribePage(pages).ok());
  CHECK_FALSE(in.DescribePage(~uint64_t{0} / 2).ok());
}

TEST_CASE("Inspector on a flipped byte in a leaf names the page and still walks the other table") {
  std::string bytes = ReadBytes(Golden());
  const uint64_t leaf = FlipLeafByte(&bytes);
  TempFile file(bytes);
  const Snapshot before = Take(file.path);
  {
    auto opened = Inspector::Open(file.path);
    REQUIRE(opened.ok());
    const InspectionReport r = opened.value()->Inspect();
    CHECK_FALSE(r.healthy());
    REQUIRE(r.tables.size() == 2);
    CHECK(r.tables[0].name == "check_history");
    CHECK(r.tables[0].status.ok());
    CHECK(r.tables[1].name == "watermarks");
    CHECK(r.tables[1].status.IsCorruption());
    CHECK(Contains(r.tables[1].status.message(), "page " + std::to_string(leaf)));
    CHECK_FALSE(r.integrity.ok());
    CHECK_FALSE(r.stats_complete);

    auto page = opened.value()->DescribePage(leaf);
    REQUIRE(page.ok());
    CHECK_FALSE(page->checksum_ok);
  }
  CHECK(Take(file.path) == before);
}

TEST_CASE("Inspector on a corrupted super-header reports it and still reads the slots") {
  std::string bytes = ReadBytes(Golden());
  bytes[16] ^= 1;  // the reserved field: checksum fails, page size still plausible
  TempFile file(bytes);
  auto opened = Inspector::Open(file.path);
  REQUIRE(opened.ok());
  Inspector& in = *opened.value();
  CHECK(in.header().magic_ok);
  CHECK_FALSE(in.header().checksum_ok);
  CHECK(in.header().status.IsCorruption());
  CHECK(in.header().effective_page_size == kGoldenPageSize);
  REQUIRE(in.slots().size() == 2);
  REQUIRE(in.current_slot() >= 0);
  CHECK(in.slots()[static_cast<size_t>(in.current_slot())].txn_id == 4);
  const InspectionReport r = in.Inspect();
  CHECK_FALSE(r.healthy());
  CHECK(r.tables.size() == 2);
}

TEST_CASE("Inspector on random bytes says it is not a rocky database") {
  std::mt19937 rng(7);
  std::string bytes(8192, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  TempFile file(bytes);
  auto opened = Inspector::Open(file.path);
  REQUIRE(opened.ok());
  CHECK_FALSE(opened.value()->header().magic_ok);
  CHECK(Contains(opened.value()->header().status.message(), "not a rocky database"));
  CHECK(opened.value()->slots().empty());
  const InspectionReport r = opened.value()->Inspect();
  CHECK_FALSE(r.healthy());

  // A zero-length file is not "not a rocky database": it holds no commit, which every tool and every open
  // takes as an empty database.
  TempFile empty("");
  auto opened_empty = Inspector::Open(empty.path);
  REQUIRE(opened_empty.ok());
  CHECK(opened_empty.value()->header().status.ok());
  const InspectionReport er = opened_empty.value()->Inspect();
  CHECK(er.healthy());
  CHECK(er.uncommitted);
  CHECK(er.open_status.ok());
  CHECK_FALSE(Inspector::Open("/nonexistent/rocky-inspect-test").ok());
}

// --- The built program. ---

// Runs the built rocky-inspect with `args` (shell syntax), capturing stdout and stderr apart.
ProgramRun RunInspect(const std::string& args) {
  TempFile err_file("");
  return RunShell(ShellQuote(ProgramPath("rocky-inspect")) + " " + args, err_file.path);
}

// Runs rocky-inspect on path and checks the file was left exactly as it was.
ProgramRun RunOn(const std::string& path, const std::string& extra = "") {
  const Snapshot before = Take(path);
  ProgramRun run = RunInspect(ShellQuote(path) + (extra.empty() ? "" : " " + extra));
  CHECK_MESSAGE(Take(path) == before, "rocky-inspect changed " << path);
  return run;
}

TEST_CASE("rocky-inspect FILE dumps the golden file and calls it healthy") {
  const ProgramRun run = RunOn(Golden());
  INFO("stdout:\n" << run.out << "stderr:\n" << run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.err.empty());
  CHECK(Contains(run.out, "magic           ok"));
  CHECK(Contains(run.out, "page size       512"));
  CHECK(Contains(run.out, "Commit slots"));
  CHECK(Contains(run.out, "Tables (commit 4"));
  CHECK(Contains(run.out, "check_history     1"));
  CHECK(Contains(run.out, "watermarks       26"));
  CHECK(Contains(run.out, "fragmentation"));
  CHECK(Contains(run.out, "Integrity: healthy\n"));
}

TEST_CASE("rocky-inspect --table watermarks prints keys and values") {
  auto opened = Inspector::Open(Golden());
  REQUIRE(opened.ok());
  std::string first_key, first_value;
  CHECK(opened.value()
            ->WalkTable("watermarks",
                        [&](std::string_view k, std::string_view v) {
                          first_key = k;
                          first_value = v;
                          return false;
                        })
            .ok());
  const ProgramRun run = RunOn(Golden(), "--table watermarks");
  INFO("stdout:\n" << run.out << "stderr:\n" << run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.err.empty());
  CHECK(run.out.starts_with(first_key + ": "));
  CHECK(first_key == "acme_warehouse.staging.table_001");
  CHECK(first_value == "replaced");
  // A JSON value comes out pretty-printed.
  CHECK(Contains(run.out,
                 "acme_warehouse.staging.table_002: {\n  \"last_value\": \"2025-03-15T14:12:00Z\",\n"
                 "  \"n\": 2\n}\n"));

  const ProgramRun missing = RunOn(Golden(), "--table nope");
  CHECK(missing.exit_code == 1);
  CHECK(missing.err == "rocky-inspect: no table named 'nope'\n");
}

TEST_CASE("rocky-inspect --page 1 decodes commit slot A; --page past the end fails") {
  const ProgramRun run = RunOn(Golden(), "--page 1");
  INFO("stdout:\n" << run.out << "stderr:\n" << run.err);
  CHECK(run.exit_code == 0);
  CHECK(Contains(run.out, "Page 1 (512 bytes): commit slot\n"));
  CHECK(Contains(run.out, "(ok)"));
  CHECK(Contains(run.out, "slot  "));
  CHECK(Contains(run.out, "catalog root"));
  CHECK(Contains(run.out, "verify list"));

  const ProgramRun past = RunOn(Golden(), "--page 100000");
  CHECK(past.exit_code == 1);
  CHECK(Contains(past.err, "page 100000 lies beyond the end of the file"));

  const ProgramRun bad = RunOn(Golden(), "--page x");
  CHECK(bad.exit_code == 2);
  CHECK(Contains(bad.err, "--page expects a page number, got 'x'"));
}

TEST_CASE("rocky-inspect --output json: the removed --json names it") {
  const ProgramRun old = RunOn(Golden(), "--json");
  CHECK(old.exit_code == 2);
  CHECK(old.out.empty());
  CHECK(Contains(old.err, "flag '--json' was removed; use --output json"));
  const ProgramRun help = RunOn(Golden(), "--help");
  CHECK(help.exit_code == 0);
  CHECK(Contains(help.out, "--output"));
  CHECK_FALSE(Contains(help.out, "--json"));
}

TEST_CASE("rocky-inspect --output json emits JSON with the header, slots, tables and verdict") {
  for (const char* flag : {"--output json", "--output=json"}) {
    const ProgramRun run = RunOn(Golden(), flag);
    INFO(flag << " stdout:\n" << run.out << "stderr:\n" << run.err);
    CHECK(run.exit_code == 0);
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    REQUIRE(parser.parse(run.out).get(doc) == simdjson::SUCCESS);
    uint64_t page_size = 0;
    CHECK(doc["header"]["page_size"].get(page_size) == simdjson::SUCCESS);
    CHECK(page_size == 512);
    bool magic_ok = false;
    CHECK(doc["header"]["magic_ok"].get(magic_ok) == simdjson::SUCCESS);
    CHECK(magic_ok);
    simdjson::dom::array slots;
    REQUIRE(doc["slots"].get(slots) == simdjson::SUCCESS);
    CHECK(slots.size() == 2);
    std::string_view current;
    CHECK(doc["current_slot"].get(current) == simdjson::SUCCESS);
    simdjson::dom::array tables;
    REQUIRE(doc["tables"].get(tables) == simdjson::SUCCESS);
    REQUIRE(tables.size() == 2);
    std::string_view name;
    uint64_t entries = 0;
    CHECK(tables.at(1)["name"].get(name) == simdjson::SUCCESS);
    CHECK(name == "watermarks");
    CHECK(tables.at(1)["entries"].get(entries) == simdjson::SUCCESS);
    CHECK(entries == 26);
    bool healthy = false;
    CHECK(doc["healthy"].get(healthy) == simdjson::SUCCESS);
    CHECK(healthy);
    uint64_t leaf = 0;
    CHECK(doc["pages"]["leaf"].get(leaf) == simdjson::SUCCESS);
    CHECK(leaf > 0);
  }
  const ProgramRun page = RunOn(Golden(), "--page 1 --output json");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(page.out).get(doc) == simdjson::SUCCESS);
  std::string_view slot_name;
  CHECK(doc["slot"]["name"].get(slot_name) == simdjson::SUCCESS);
  CHECK(slot_name == "A");

  const ProgramRun table = RunOn(Golden(), "--table watermarks --output json");
  REQUIRE(parser.parse(table.out).get(doc) == simdjson::SUCCESS);
  uint64_t count = 0;
  CHECK(doc["count"].get(count) == simdjson::SUCCESS);
  CHECK(count == 26);
}

TEST_CASE("rocky-inspect on a flipped byte in a leaf exits 1, names the page and lists the other table") {
  std::string bytes = ReadBytes(Golden());
  const uint64_t leaf = FlipLeafByte(&bytes);
  TempFile file(bytes);
  const ProgramRun run = RunOn(file.path);
  INFO("stdout:\n" << run.out << "stderr:\n" << run.err);
  CHECK(run.exit_code == 1);
  CHECK(Contains(run.err, "page " + std::to_string(leaf)));
  CHECK(Contains(run.out, "page " + std::to_string(leaf)));
  CHECK(Contains(run.out, "check_history     1"));
  CHECK(Contains(run.out, "Integrity: DAMAGED"));

  const ProgramRun page = RunOn(file.path, "--page " + std::to_string(leaf));
  CHECK(page.exit_code == 1);
  CHECK(Contains(page.out, "(BAD)"));
  CHECK(Contains(page.err, "page " + std::to_string(leaf) + " is damaged"));
}

TEST_CASE("rocky-inspect on a corrupted super-header still reports the slots") {
  std::string bytes = ReadBytes(Golden());
  bytes[16] ^= 1;
  TempFile file(bytes);
  const ProgramRun run = RunOn(file.path);
  INFO("stdout:\n" << run.out << "stderr:\n" << run.err);
  CHECK(run.exit_code == 1);
  CHECK(Contains(run.err, "super-header (page 0) fails its checksum"));
  CHECK(Contains(run.out, "Commit slots"));
  CHECK(Contains(run.out, "Tables (commit 4"));
}

TEST_CASE("rocky-inspect on random bytes says it is not a rocky database") {
  std::mt19937 rng(11);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  TempFile file(bytes);
  const ProgramRun run = RunOn(file.path);
  INFO("stdout:\n" << run.out << "stderr:\n" << run.err);
  CHECK(run.exit_code == 1);
  CHECK(run.err == "rocky-inspect: " + file.path +
                       " is not a rocky database (its first bytes are not the rocky magic number)\n");

  const ProgramRun missing = RunInspect("/nonexistent/rocky-inspect-test");
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.starts_with("rocky-inspect: /nonexistent/rocky-inspect-test"));
  CHECK(Contains(missing.err, "No such file or directory"));
  CHECK(std::count(missing.err.begin(), missing.err.end(), '\n') == 1);

  const ProgramRun usage = RunInspect("");
  CHECK(usage.exit_code == 2);
}

// A state file made by the engine in a temporary directory: small commits, or a last commit too large for a
// slot's verify list (its pages are synced before its slot, so a short file is a truncated one, not a crash).
struct MadeFile {
  explicit MadeFile(bool large_last) {
    char tmpl[] = "/tmp/rocky-inspect-made-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    path = dir + "/state.redb";
    Options o;
    o.page_size = 512;
    auto db = Database::Open(path, o);
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    for (int i = 0; i < 3; ++i) {
      auto w = (*db)->BeginWrite();
      REQUIRE((*w)->OpenTable("watermarks").value()->Insert("t" + std::to_string(i), "v").ok());
      REQUIRE((*w)->Commit().ok());
    }
    if (large_last) {
      auto w = (*db)->BeginWrite();
      auto t = (*w)->OpenTable("big").value();
      for (int i = 0; i < 300; ++i) REQUIRE(t->Insert("key" + std::to_string(i), std::string(120, 'b')).ok());
      REQUIRE((*w)->Commit().ok());
    }
    REQUIRE((*db)->Close().ok());
  }
  ~MadeFile() {
    const std::string cmd = "rm -rf " + dir;
    (void)std::system(cmd.c_str());
  }
  std::string dir;
  std::string path;
};

TEST_CASE("rocky-inspect on a file whose newest commit is damaged: not healthy, exit 1, the commit named") {
  MadeFile file(/*large_last=*/false);
  uint64_t newest = 0;
  uint64_t page = 0;
  {
    auto in = Inspector::Open(file.path);
    REQUIRE(in.ok());
    const InspectedSlot& cur = (*in)->slots()[static_cast<size_t>((*in)->current_slot())];
    REQUIRE_FALSE(cur.verify_list.empty());
    newest = cur.txn_id;
    page = cur.verify_list.front();
  }
  std::string bytes = ReadBytes(file.path);
  bytes[page * 512 + 300] ^= 0x08;
  WriteBytes(file.path, bytes);
  const ProgramRun run = RunOn(file.path);
  INFO("stdout:\n" << run.out << "stderr:\n" << run.err);
  CHECK(run.exit_code == 1);
  CHECK(Contains(run.out, "Integrity: NEWEST COMMIT DISCARDED"));
  CHECK(Contains(run.out, "txn " + std::to_string(newest)));
  CHECK(Contains(run.err, "page " + std::to_string(page)));
  CHECK(Contains(run.out, "Tables (commit " + std::to_string(newest - 1)));

  const ProgramRun json = RunOn(file.path, "--output json");
  CHECK(json.exit_code == 1);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(json.out).get(doc) == simdjson::SUCCESS);
  bool healthy = true;
  CHECK(doc["healthy"].get(healthy) == simdjson::SUCCESS);
  CHECK_FALSE(healthy);
  uint64_t txn = 0;
  uint64_t opens_at = 0;
  CHECK(doc["discarded"]["txn_id"].get(txn) == simdjson::SUCCESS);
  CHECK(txn == newest);
  CHECK(doc["discarded"]["opens_at_txn_id"].get(opens_at) == simdjson::SUCCESS);
  CHECK(opens_at == newest - 1);
  std::string_view reason;
  CHECK(doc["discarded"]["reason"].get(reason) == simdjson::SUCCESS);
  CHECK(Contains(std::string(reason), "page " + std::to_string(page)));
  // The same verdict as Database::Open's.
  Options ro;
  ro.read_only = true;
  auto db = Database::Open(file.path, ro);
  REQUIRE(db.ok());
  REQUIRE((*db)->open_report().discarded.has_value());
  CHECK((*db)->open_report().discarded->txn_id == newest);
  CHECK((*db)->open_report().discarded->reason == std::string(reason));
}

TEST_CASE("rocky-inspect on a truncated file whose newest commit was large: the error rocky gives, exit 1") {
  MadeFile file(/*large_last=*/true);
  std::string bytes = ReadBytes(file.path);
  bytes.resize(bytes.size() - 512);
  WriteBytes(file.path, bytes);
  Options ro;
  ro.read_only = true;
  auto db = Database::Open(file.path, ro);
  REQUIRE_FALSE(db.ok());
  REQUIRE(Contains(db.status().message(), "is truncated"));
  const ProgramRun run = RunOn(file.path);
  INFO("stdout:\n" << run.out << "stderr:\n" << run.err);
  CHECK(run.exit_code == 1);
  CHECK_FALSE(Contains(run.out, "Integrity: healthy"));
  CHECK(Contains(run.err, db.status().message()));
  const ProgramRun json = RunOn(file.path, "--output json");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(json.out).get(doc) == simdjson::SUCCESS);
  std::string_view open_error;
  CHECK(doc["open_error"].get(open_error) == simdjson::SUCCESS);
  CHECK(std::string(open_error) == db.status().message());
}

TEST_CASE("rocky-inspect on a zero-length file: an empty database, healthy, exit 0") {
  TempFile file("");
  const ProgramRun run = RunOn(file.path);
  INFO("stdout:\n" << run.out << "stderr:\n" << run.err);
  CHECK(run.exit_code == 0);
  CHECK(Contains(run.out, "Integrity: healthy (no commit yet: an empty database)"));
  CHECK(run.err.empty());
}

}  // namespace
