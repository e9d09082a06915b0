// End to end: runs the built `rocky state ...` ($ROCKY_BUILD_ROOT/cli/rocky) in a temporary folder and checks
// what it prints, how it exits, and that failed commands leave the state file alone.
#include <doctest/doctest.h>
#include <simdjson.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "program_runner.h"
#include "rocky/state/store.h"
#include "state_damage.h"

namespace {

using namespace rocky::cli::testing;

TEST_CASE("rocky state: set, show as a table and as JSON, delete") {
  Sandbox box;
  Run empty = box.Rocky("state --output table");
  CHECK_RUN(empty, 1);
  CHECK(Contains(empty.err, "no state file at .rocky-state.redb"));
  CHECK(!std::filesystem::exists(box.File(".rocky-state.redb")));  // show never creates the file

  Run set =
      box.Rocky("state set --table acme.staging.orders --value 2025-03-15T16:30:00+02:00 --output table");
  CHECK_RUN(set, 0);
  CHECK(std::filesystem::exists(box.File(".rocky-state.redb")));
  CHECK_RUN(
      box.Rocky(
          "--output table state set --table acme.staging.customers_long_name --value 2025-03-01T00:00:00Z"),
      0);

  Run table = box.Rocky("state show --output table");
  CHECK_RUN(table, 0);
  CHECK(table.err.empty());
  // Columns are as wide as their widest cell (32 characters for the longest table name) plus two spaces.
  CHECK(table.out.starts_with("table" + std::string(29, ' ') + "last_value            updated_at\n"));
  CHECK(Contains(table.out, "\nacme.staging.orders" + std::string(15, ' ') + "2025-03-15T14:30:00Z  "));
  CHECK(box.Rocky("state --output table").out == table.out);

  Run filtered = box.Rocky("state --output table --match '*.orders'");
  CHECK_RUN(filtered, 0);
  CHECK(Contains(filtered.out, "acme.staging.orders"));
  CHECK(!Contains(filtered.out, "customers"));

  // Default output to a pipe is JSON; check it against the shape of state.schema.json.
  Run json = box.Rocky("state");
  CHECK_RUN(json, 0);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(json.out).get(doc) == simdjson::SUCCESS);
  std::string_view text;
  CHECK(doc["version"].get_string().get(text) == simdjson::SUCCESS);
  CHECK(doc["command"].get_string().get(text) == simdjson::SUCCESS);
  CHECK(text == "state");
  uint64_t number = 0;
  CHECK(doc["schema_version_supported"].get_uint64().get(number) == simdjson::SUCCESS);
  CHECK(number == 1);
  CHECK(doc["schema_version_on_disk"].get_uint64().get(number) == simdjson::SUCCESS);
  CHECK(number == 1);
  simdjson::dom::array watermarks;
  REQUIRE(doc["watermarks"].get_array().get(watermarks) == simdjson::SUCCESS);
  CHECK(watermarks.size() == 2);
  for (simdjson::dom::element w : watermarks) {
    for (const char* field : {"table", "last_value", "updated_at"}) {
      CHECK_MESSAGE(w[field].get_string().get(text) == simdjson::SUCCESS, field);
    }
  }
  CHECK(watermarks.at(1)["last_value"].get_string().value_unsafe() == "2025-03-15T14:30:00Z");

  Run del = box.Rocky("state delete --table acme.staging.orders");
  CHECK_RUN(del, 0);
  Run after = box.Rocky("--output table state");
  CHECK(!Contains(after.out, "acme.staging.orders"));
  CHECK(Contains(after.out, "customers_long_name"));
}

TEST_CASE("rocky state show, history, export on a missing file: 'no state file at PATH', exit 1") {
  Sandbox box;
  const std::string path = box.File("nothing-here.redb");
  for (const char* command :
       {"state show --output json", "state --output table", "state history --table a.b.c", "state export",
        "state export out.json", "state compact"}) {
    Run run = box.Rocky("--state-path " + ShellQuote(path) + " " + command);
    CHECK_RUN(run, 1);
    CHECK(run.out.empty());
    CHECK(run.err.starts_with("rocky: no state file at " + path + " "));
    CHECK(std::count(run.err.begin(), run.err.end(), '\n') == 1);
  }
  CHECK(!std::filesystem::exists(path));
  CHECK(!std::filesystem::exists(box.File("out.json")));
}

TEST_CASE(
    "a zero-length state file (its creation stopped before the first commit) is an empty state for every "
    "command") {
  Sandbox box;
  WriteBytes(box.File("empty.redb"), "");
  Run show = box.Rocky("--state-path empty.redb state --output json");
  CHECK_RUN(show, 0);
  CHECK(Contains(show.out, "\"schema_version_on_disk\":null"));
  CHECK(Contains(show.out, "\"watermarks\":[]"));
  CHECK_RUN(box.Rocky("--state-path empty.redb state history --table a.b.c"), 0);
  Run exported = box.Rocky("--state-path empty.redb state export");
  CHECK_RUN(exported, 0);
  CHECK(Contains(exported.out, "\"watermarks\":[]"));
  CHECK(ReadBytes(box.File("empty.redb")).empty());  // readers changed nothing
  // A writer starts it as a new state, as readers saw it.
  CHECK_RUN(box.Rocky("--state-path empty.redb state set --table a.b.c --value 2025-03-15T14:30:00Z"), 0);
  CHECK(Contains(box.Rocky("--state-path empty.redb state --output table").out, "a.b.c"));
}

TEST_CASE("rocky state delete: a missing watermark fails and changes nothing; --all needs --yes") {
  Sandbox box;
  const std::string path = box.File("s.redb");
  Run missing_file = box.Rocky("state delete --table a.b.c --state-path " + ShellQuote(path));
  CHECK_RUN(missing_file, 1);
  CHECK(Contains(missing_file.err, "no watermark stored for table 'a.b.c'"));
  CHECK(!std::filesystem::exists(path));

  CHECK_RUN(
      box.Rocky("state set --table a.b.c --value 2025-03-15T14:30:00Z --state-path " + ShellQuote(path)), 0);
  const std::string before = ReadBytes(path);
  Run missing = box.Rocky("state delete --table a.b.x --state-path " + ShellQuote(path));
  CHECK_RUN(missing, 1);
  CHECK(missing.err == "rocky: no watermark stored for table 'a.b.x'\n");
  CHECK(ReadBytes(path) == before);

  Run all = box.Rocky("state delete --all --state-path " + ShellQuote(path));
  CHECK_RUN(all, 2);
  CHECK(Contains(all.err, "--yes"));
  CHECK(ReadBytes(path) == before);
  CHECK_RUN(box.Rocky("state delete --all --yes --state-path " + ShellQuote(path)), 0);
  CHECK(Contains(box.Rocky("--output table state --state-path " + ShellQuote(path)).out,
                 "No watermarks stored."));
}

TEST_CASE("rocky state set: invalid timestamp or table name fails without touching the file") {
  Sandbox box;
  Run bad_time = box.Rocky("state set --table a.b.c --value yesterday");
  CHECK_RUN(bad_time, 1);
  CHECK(Contains(bad_time.err, "invalid timestamp 'yesterday'"));
  CHECK(!std::filesystem::exists(box.File(".rocky-state.redb")));
  Run bad_table = box.Rocky("state set --table orders --value 2025-03-15T14:30:00Z");
  CHECK_RUN(bad_table, 1);
  CHECK(Contains(bad_table.err, "invalid table name 'orders'"));
  CHECK_RUN(box.Rocky("state set --table a.b.c"), 2);
}

TEST_CASE("rocky state: a directory, a corrupt file and a newer... each fail with one clear line") {
  Sandbox box;
  std::filesystem::create_directory(box.File("adir"));
  for (const char* command :
       {"state show", "state set --table a.b.c --value 2025-03-15T14:30:00Z", "state export"}) {
    Run run = box.Rocky(std::string(command) + " --state-path " + ShellQuote(box.File("adir")));
    CHECK_RUN(run, 1);
    CHECK(Contains(run.err, "is a directory"));
    CHECK(std::count(run.err.begin(), run.err.end(), '\n') == 1);
  }
  const std::string garbage = box.File("garbage.redb");
  { std::ofstream(garbage, std::ios::binary) << std::string(8192, 'g'); }
  for (const char* command : {"state show", "state set --table a.b.c --value 2025-03-15T14:30:00Z",
                              "state history --table a.b.c"}) {
    Run run = box.Rocky(std::string(command) + " --state-path " + ShellQuote(garbage));
    CHECK_RUN(run, 1);
    CHECK(Contains(run.err, "garbage.redb"));
    CHECK(Contains(run.err, "is not a rocky database"));
  }
  CHECK(ReadBytes(garbage) == std::string(8192, 'g'));
}

TEST_CASE("rocky state export / import round trip; a bad import changes nothing") {
  Sandbox box;
  CHECK_RUN(box.Rocky("state set --table a.b.c --value 2025-03-15T14:30:00Z --state-path one.redb"), 0);
  CHECK_RUN(box.Rocky("state set --table a.b.d --value 2025-03-16T14:30:00Z --state-path one.redb"), 0);
  Run exported = box.Rocky("state export --state-path one.redb");
  CHECK_RUN(exported, 0);
  CHECK(Contains(exported.out, "\"format\":\"rocky-state\""));
  CHECK_RUN(box.Rocky("state export dump.json --state-path one.redb"), 0);
  CHECK(ReadBytes(box.File("dump.json")) == exported.out);

  CHECK_RUN(box.Rocky("state import dump.json --state-path two.redb"), 0);
  CHECK(box.Rocky("state export --state-path two.redb").out == exported.out);

  const std::string before = ReadBytes(box.File("two.redb"));
  {
    std::ofstream(box.File("bad.json"))
        << R"({"format":"rocky-state","schema_version":1,"watermarks":[{"table":"a.b.c","last_value":"nope","updated_at":"2025-03-15T14:30:00Z"}],"check_history":[],"run_history":[]})";
  }
  Run bad = box.Rocky("state import bad.json --state-path two.redb");
  CHECK_RUN(bad, 1);
  CHECK(Contains(bad.err, "invalid timestamp 'nope'"));
  CHECK(ReadBytes(box.File("two.redb")) == before);
  CHECK_RUN(box.Rocky("state import missing.json --state-path two.redb"), 1);
}

TEST_CASE("rocky state history prints counts and the moving average; --help works on every command") {
  Sandbox box;
  CHECK_RUN(box.Rocky("state set --table a.b.x --value 2025-03-15T14:30:00Z"), 0);
  Run none = box.Rocky("state history --table a.b.c --output table");
  CHECK_RUN(none, 0);
  CHECK(Contains(none.out, "No row-count history stored for a.b.c."));
  for (const char* command :
       {"state", "state show", "state set", "state delete", "state history", "state export", "state import",
        "state compact", "state push", "state unlock"}) {
    Run help = box.Rocky(std::string(command) + " --help");
    CHECK_RUN(help, 0);
    CHECK(Contains(help.out, "Usage: rocky " + std::string(command)));
  }
}

}  // namespace

namespace {

TEST_CASE("rocky state: a locked state file (exit 75) and an unreachable path (exit 1) are one clear line") {
  Sandbox box;
  CHECK_RUN(box.Rocky("state set --table a.b.c --value 2025-03-15T14:30:00Z"), 0);
  const std::string before = ReadBytes(box.File(".rocky-state.redb"));
  {
    // This test process holds the writer lock, as a running `rocky run` would.
    auto holder = rocky::state::StateStore::Open(
        box.File(".rocky-state.redb"),
        rocky::state::StoreOptions{.mode = rocky::state::OpenMode::kReadWrite});
    REQUIRE(holder.ok());
    for (const char* command :
         {"state set --table a.b.c --value 2025-03-16T00:00:00Z", "state delete --table a.b.c"}) {
      Run run = box.Rocky(command);
      CHECK_RUN(run, 75);
      CHECK(Contains(run.err, "in use by another rocky"));
      CHECK(Contains(run.err, "process " + std::to_string(getpid())));
      CHECK(std::count(run.err.begin(), run.err.end(), '\n') == 1);
    }
    // Readers never wait for a writer.
    Run show = box.Rocky("state --output table");
    CHECK_RUN(show, 0);
    CHECK(Contains(show.out, "2025-03-15T14:30:00Z"));
  }
  CHECK(ReadBytes(box.File(".rocky-state.redb")) == before);

  // A path through a regular file can't be created nor read.
  WriteBytes(box.File("plainfile"), "x");
  for (const char* command : {"state show", "state set --table a.b.c --value 2025-03-15T14:30:00Z"}) {
    Run run = box.Rocky(std::string(command) + " --state-path plainfile/state.redb");
    CHECK_RUN(run, 1);
    CHECK(Contains(run.err, "plainfile/state.redb"));
    CHECK(std::count(run.err.begin(), run.err.end(), '\n') == 1);
  }
}

TEST_CASE("rocky state: a rocky.toml that is present is validated first; a broken one fails the command") {
  Sandbox box;
  CHECK_RUN(box.Rocky("state set --table a.b.c --value 2025-03-15T14:30:00Z"), 0);
  WriteBytes(box.File("rocky.toml"), "[state]\nbackend = \"floppy\"\n");
  Run broken = box.Rocky("state --output table");
  CHECK_RUN(broken, 1);
  CHECK(Contains(broken.err, "rocky.toml:2:"));
  CHECK(Contains(broken.err, "backend"));
  Run explicit_missing = box.Rocky("state --config nowhere.toml");
  CHECK_RUN(explicit_missing, 1);
  CHECK(Contains(explicit_missing.err, "nowhere.toml"));
  WriteBytes(box.File("rocky.toml"), "[state]\nbackend = \"local\"\n");
  CHECK_RUN(box.Rocky("state --output table"), 0);
}

namespace {

// A state of 3 x 1,000 watermarks "c.sN.tNNNN" imported from an export (several leaves, and a JSON listing
// far larger than the pieces it is written out in).
void ImportManyWatermarks(const Sandbox& box) {
  std::string doc = R"({"format":"rocky-state","schema_version":1,"watermarks":[)";
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < 1000; ++i) {
      char row[128];
      std::snprintf(row, sizeof row,
                    R"(%s{"table":"c.s%d.t%04d","last_value":"2025-01-01T00:00:00Z",)"
                    R"("updated_at":"2025-01-02T00:00:00Z"})",
                    s + i == 0 ? "" : ",", s, i);
      doc += row;
    }
  }
  doc += R"(],"check_history":[],"run_history":[]})";
  WriteBytes(box.File("many.json"), doc);
  CHECK_RUN(box.Rocky("state import many.json"), 0);
}

std::vector<std::string> ListedTables(const Run& run) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE_MESSAGE(parser.parse(run.out).get(doc) == simdjson::SUCCESS, run.out.substr(0, 200));
  std::vector<std::string> tables;
  // A named array: a range-for over `.value()` of the temporary result would iterate a reference into it,
  // destroyed before the loop runs (ASan: stack-use-after-scope).
  simdjson::dom::array watermarks;
  REQUIRE(doc["watermarks"].get_array().get(watermarks) == simdjson::SUCCESS);
  for (simdjson::dom::element w : watermarks) {
    tables.emplace_back(w["table"].get_string().value());
  }
  return tables;
}

}  // namespace

TEST_CASE("rocky state --table and --match: an exact name, a prefix pattern and wildcards anywhere") {
  Sandbox box;
  ImportManyWatermarks(box);
  const std::vector<std::string> all = ListedTables(box.Rocky("state --output json"));
  REQUIRE(all.size() == 3000);
  CHECK(all.front() == "c.s0.t0000");
  CHECK(all.back() == "c.s2.t0999");
  CHECK(std::is_sorted(all.begin(), all.end()));

  // An exact name is one watermark; a name not stored is none (exit 0, as a pattern matching nothing).
  CHECK(ListedTables(box.Rocky("state --table c.s1.t0500 --output json")) ==
        std::vector<std::string>{"c.s1.t0500"});
  CHECK(ListedTables(box.Rocky("state --table c.s1.t5000 --output json")).empty());
  Run none = box.Rocky("state --table c.s1.t5000 --output table");
  CHECK_RUN(none, 0);
  CHECK(none.out == "No watermarks match 'c.s1.t5000'.\n");

  // Prefixes, and wildcards after them or first (then every name is read and matched).
  const auto prefix = ListedTables(box.Rocky("state --match 'c.s1.t00*' --output json"));
  REQUIRE(prefix.size() == 100);
  CHECK(prefix.front() == "c.s1.t0000");
  CHECK(prefix.back() == "c.s1.t0099");
  CHECK(ListedTables(box.Rocky("state --match 'c.s2.t09?9' --output json")).size() == 10);
  CHECK(ListedTables(box.Rocky("state --match '*.t0999' --output json")) ==
        std::vector<std::string>{"c.s0.t0999", "c.s1.t0999", "c.s2.t0999"});
  CHECK(ListedTables(box.Rocky("state --match '?.s0.t0001' --output json")) ==
        std::vector<std::string>{"c.s0.t0001"});
  Run table = box.Rocky("state --match 'c.s0.t000*' --output table");
  CHECK_RUN(table, 0);
  CHECK(Contains(table.out, "c.s0.t0009"));
  CHECK(!Contains(table.out, "c.s0.t0010"));
}

TEST_CASE("rocky state: a listing that meets a damaged page exits 1 without a complete JSON document") {
  Sandbox box;
  ImportManyWatermarks(box);
  // Two more commits, so that the damaged leaf is not one the newest commit wrote (which recovery checks).
  CHECK_RUN(box.Rocky("state set --table c.s0.t0000 --value 2026-01-01T00:00:00Z"), 0);
  CHECK_RUN(box.Rocky("state set --table c.s0.t0001 --value 2026-01-01T00:00:00Z"), 0);
  const std::string path = box.File(".rocky-state.redb");
  const std::vector<uint64_t> leaves =
      rocky_test::BranchChildren(path, rocky_test::TableRootPage(path, "watermarks"));
  REQUIRE(leaves.size() >= 8);
  const uint64_t victim = leaves[leaves.size() * 3 / 4];
  const std::string first_lost = rocky_test::DescribePage(path, victim).entries.front().key;
  REQUIRE(first_lost.rfind("c.s2.", 0) == 0);
  rocky_test::DamagePage(path, victim);

  Run listing = box.Rocky("state --output json");
  CHECK_RUN(listing, 1);
  CHECK(Contains(listing.err, "page " + std::to_string(victim)));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  CHECK(parser.parse(listing.out).get(doc) != simdjson::SUCCESS);  // never a document that looks whole
  CHECK(!Contains(listing.out, first_lost));
  CHECK_RUN(box.Rocky("state --output table"), 1);
  // What lies elsewhere is still shown, by name or by prefix: those reads never reach the damaged leaf.
  CHECK(ListedTables(box.Rocky("state --match 'c.s0.*' --output json")).size() == 1000);
  CHECK(ListedTables(box.Rocky("state --table c.s1.t0123 --output json")) ==
        std::vector<std::string>{"c.s1.t0123"});
}

}  // namespace
