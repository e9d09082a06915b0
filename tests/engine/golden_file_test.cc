// The golden file pins the on-disk format: a small database made by a fixed sequence of operations must come
// out byte for byte equal to tests/golden/small-v1.redb, and that file must read back as expected. A change
// to the format therefore shows up here and must be deliberate: bump kFormatVersion, update
// format-spec/FORMAT.md, and regenerate with ROCKY_UPDATE_GOLDEN=1.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "rocky/engine/db.h"
#include "rocky/engine/env.h"

using namespace rocky::engine;

namespace {

std::string GoldenPath() {
  const char* root = std::getenv("ROCKY_SOURCE_ROOT");
  return std::string(root != nullptr ? root : ".") + "/tests/golden/small-v1.redb";
}

std::string Key(int i) {
  char buf[64];
  snprintf(buf, sizeof buf, "acme_warehouse.staging.table_%03d", i);
  return buf;
}

std::string Value(int i) {
  return "{\"last_value\": \"2025-03-15T14:" + std::to_string(10 + i % 50) + ":00Z\", \"n\": " + std::to_string(i) + "}";
}

// The fixed sequence: three commits on 512-byte pages, so the file has branch pages, an overflow run, a
// deleted table, freed and reused pages, and both commit slots in use.
void BuildGolden(Database& db) {
  {
    auto w = db.BeginWrite();
    REQUIRE(w.ok());
    auto wm = (*w)->OpenTable("watermarks");
    REQUIRE(wm.ok());
    for (int i = 0; i < 40; ++i) REQUIRE((*wm)->Insert(Key(i), Value(i)).ok());
    auto scratch = (*w)->OpenTable("scratch");
    REQUIRE((*scratch)->Insert("k", "v").ok());
    REQUIRE((*w)->Commit().ok());
  }
  {
    auto w = db.BeginWrite();
    auto history = (*w)->OpenTable("check_history");
    std::string blob;
    for (int i = 0; i < 120; ++i) blob += "{\"count\": " + std::to_string(1000 + i) + "},";
    REQUIRE((*history)->Insert(Key(7), blob).ok());  // > a page: an overflow run
    auto wm = (*w)->OpenTable("watermarks");
    for (int i = 0; i < 40; i += 3) REQUIRE((*wm)->Remove(Key(i)).ok());
    REQUIRE((*w)->Commit().ok());
  }
  {
    auto w = db.BeginWrite();
    REQUIRE((*w)->DeleteTable("scratch").ok());
    auto wm = (*w)->OpenTable("watermarks");
    REQUIRE((*wm)->Insert(Key(1), "replaced").ok());
    REQUIRE((*w)->Commit().ok());
  }
}

Result<std::string> ReadWholeFile(Env* env, const std::string& path) {
  FileOpenOptions fo;
  fo.read_only = true;
  ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<File> f, env->OpenFile(path, fo));
  ROCKY_ASSIGN_OR_RETURN(uint64_t size, f->Size());
  std::string bytes(size, '\0');
  size_t n = 0;
  ROCKY_RETURN_IF_ERROR(f->Read(0, size, bytes.data(), &n));
  bytes.resize(n);
  return bytes;
}

}  // namespace

TEST_CASE("golden file: the fixed sequence re-creates tests/golden/small-v1.redb byte for byte") {
  auto env = NewMemoryEnv();
  Options o;
  o.env = env.get();
  o.page_size = 512;
  {
    auto db = Database::Open("/golden.redb", o);
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    BuildGolden(**db);
    REQUIRE((*db)->Close().ok());
  }
  auto made = ReadWholeFile(env.get(), "/golden.redb");
  REQUIRE(made.ok());

  if (std::getenv("ROCKY_UPDATE_GOLDEN") != nullptr) {
    std::ofstream out(GoldenPath(), std::ios::binary | std::ios::trunc);
    out.write(made->data(), static_cast<std::streamsize>(made->size()));
    REQUIRE(out.good());
    MESSAGE("rewrote " << GoldenPath());
  }
  std::ifstream in(GoldenPath(), std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "missing " << GoldenPath() << " (generate it with ROCKY_UPDATE_GOLDEN=1)");
  const std::string golden((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(golden.size() == made->size());
  size_t first_diff = 0;
  while (first_diff < golden.size() && golden[first_diff] == (*made)[first_diff]) ++first_diff;
  CHECK_MESSAGE(first_diff == golden.size(),
                "first difference at byte " << first_diff << " (page " << first_diff / 512 << ", offset "
                                            << first_diff % 512 << ")");
}

TEST_CASE("golden file: reads back with the expected contents") {
  Options o;
  o.read_only = true;
  auto db = Database::Open(GoldenPath(), o);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  auto report = (*db)->CheckIntegrity();
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
  auto r = (*db)->BeginRead();
  REQUIRE(r.ok());
  CHECK((*r)->snapshot_id() == 4);  // creation is commit 1, then three commits
  auto tables = (*r)->ListTables();
  REQUIRE(tables.ok());
  CHECK(*tables == std::vector<std::string>{"check_history", "watermarks"});

  auto wm = (*r)->OpenTable("watermarks");
  REQUIRE(wm.ok());
  CHECK((*wm)->Len() == 40 - 14);
  std::string v;
  CHECK((*wm)->Get(Key(1), &v).value());
  CHECK(v == "replaced");
  CHECK((*wm)->Get(Key(2), &v).value());
  CHECK(v == Value(2));
  CHECK_FALSE((*wm)->Get(Key(3), &v).value());

  auto history = (*r)->OpenTable("check_history");
  REQUIRE(history.ok());
  CHECK((*history)->Get(Key(7), &v).value());
  CHECK(v.size() > 512);
  CHECK(v.rfind("{\"count\": 1119},") == v.size() - 16);
  CHECK((*r)->OpenTable("scratch").status().IsNotFound());
}
