// The golden file pins the on-disk format: a small database made by a fixed sequence of operations must come
// out byte for byte equal to tests/golden/small-v2.redb, and that file must read back as expected. A change
// to the format therefore shows up here and must be deliberate: bump kFormatVersion, update
// format-spec/FORMAT.md, and regenerate with ROCKY_UPDATE_GOLDEN=1.
//
// tests/golden/small-v1.redb is the golden file of format version 1 (made by the same first three commits
// before long keys existed), kept unchanged: this build must still read it, and write to it within version
// 1's key limits.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "rocky/engine/db.h"
#include "rocky/engine/env.h"
#include "rocky/engine/inspect.h"

using namespace rocky::engine;

namespace {

std::string GoldenPath(const char* name = "small-v2.redb") {
  const char* root = std::getenv("ROCKY_SOURCE_ROOT");
  return std::string(root != nullptr ? root : ".") + "/tests/golden/" + name;
}

// Keys of the fourth commit: longer than the inline key limit of 512-byte pages (101 bytes), so each leaf
// entry stores a prefix and a key run holds the whole key; they share a 300-byte prefix, so the separators
// between them are longer than the limit too and get runs of their own.
std::string LongKey(int i) { return std::string(300, 'p') + "/" + std::to_string(i) + std::string(900, 's'); }
// A table name past the limit: its catalog record goes to an overflow run beside the name's key run.
std::string LongTableName() { return "acme_warehouse." + std::string(200, 'n'); }

std::string Key(int i) {
  char buf[64];
  snprintf(buf, sizeof buf, "acme_warehouse.staging.table_%03d", i);
  return buf;
}

std::string Value(int i) {
  return "{\"last_value\": \"2025-03-15T14:" + std::to_string(10 + i % 50) +
         ":00Z\", \"n\": " + std::to_string(i) + "}";
}

// The fixed sequence: three commits on 512-byte pages, so the file has branch pages, an overflow run, a
// deleted table, freed and reused pages, and both commit slots in use; then (version 2) a commit of long
// keys.
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
  {
    auto w = db.BeginWrite();
    auto lk = (*w)->OpenTable("long_keys");
    REQUIRE(lk.ok());
    for (int i = 0; i < 8; ++i) REQUIRE((*lk)->Insert(LongKey(i), "v" + std::to_string(i)).ok());
    REQUIRE((*lk)->Insert(std::string(101, 'a'), "at the limit").ok());  // inline, the longest that is
    REQUIRE((*lk)->Insert(std::string(102, 'a'), "one past it").ok());   // a prefix and a run
    REQUIRE((*lk)->Remove(LongKey(3)).ok());                             // frees a key run
    REQUIRE((*lk)->Insert(LongKey(5), std::string(600, 'o')).ok());      // replaced: value to a run
    auto named = (*w)->OpenTable(LongTableName());
    REQUIRE(named.ok());
    REQUIRE((*named)->Insert("k", "v").ok());
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

void RequireIntegrityOf(Database& db) {
  auto report = db.CheckIntegrity();
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
}

}  // namespace

TEST_CASE("golden file: the fixed sequence re-creates tests/golden/small-v2.redb byte for byte") {
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
  CHECK_MESSAGE(first_diff == golden.size(), "first difference at byte " << first_diff << " (page "
                                                                         << first_diff / 512 << ", offset "
                                                                         << first_diff % 512 << ")");
}

namespace {

// The contents of the first three commits, which both golden files hold.
void CheckFirstThreeCommits(ReadTransaction& r) {
  auto wm = r.OpenTable("watermarks");
  REQUIRE(wm.ok());
  CHECK((*wm)->Len() == 40 - 14);
  std::string v;
  CHECK((*wm)->Get(Key(1), &v).value());
  CHECK(v == "replaced");
  CHECK((*wm)->Get(Key(2), &v).value());
  CHECK(v == Value(2));
  CHECK_FALSE((*wm)->Get(Key(3), &v).value());

  auto history = r.OpenTable("check_history");
  REQUIRE(history.ok());
  CHECK((*history)->Get(Key(7), &v).value());
  CHECK(v.size() > 512);
  CHECK(v.rfind("{\"count\": 1119},") == v.size() - 16);
  CHECK(r.OpenTable("scratch").status().IsNotFound());
}

}  // namespace

TEST_CASE("golden file: reads back with the expected contents") {
  Options o;
  o.read_only = true;
  auto db = Database::Open(GoldenPath(), o);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  auto report = (*db)->CheckIntegrity();
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
  auto r = (*db)->BeginRead();
  REQUIRE(r.ok());
  CHECK((*r)->snapshot_id() == 5);  // creation is commit 1, then four commits
  auto tables = (*r)->ListTables();
  REQUIRE(tables.ok());
  CHECK(*tables == std::vector<std::string>{LongTableName(), "check_history", "long_keys", "watermarks"});
  CheckFirstThreeCommits(**r);

  auto lk = (*r)->OpenTable("long_keys");
  REQUIRE(lk.ok());
  CHECK((*lk)->Len() == 9);
  std::string v;
  CHECK((*lk)->Get(LongKey(0), &v).value());
  CHECK(v == "v0");
  CHECK((*lk)->Get(LongKey(5), &v).value());
  CHECK(v == std::string(600, 'o'));
  CHECK_FALSE((*lk)->Get(LongKey(3), &v).value());
  CHECK_FALSE((*lk)->Get(LongKey(4).substr(0, 400), &v).value());  // a prefix of a key is another key
  CHECK((*lk)->Get(std::string(101, 'a'), &v).value());
  CHECK(v == "at the limit");
  CHECK((*lk)->Get(std::string(102, 'a'), &v).value());
  CHECK(v == "one past it");
  // Whole keys, in order.
  std::vector<std::string> want = {std::string(101, 'a'), std::string(102, 'a')};
  for (int i : {0, 1, 2, 4, 5, 6, 7}) want.push_back(LongKey(i));
  std::vector<std::string> got;
  auto c = (*lk)->NewCursor();
  for (c->SeekToFirst(); c->Valid(); c->Next()) got.emplace_back(c->key());
  REQUIRE(c->status().ok());
  CHECK(got == want);
  auto named = (*r)->OpenTable(LongTableName());
  REQUIRE(named.ok());
  CHECK((*named)->Get("k", &v).value());
  CHECK(v == "v");

  auto stats = (*db)->GetStats();
  REQUIRE(stats.ok());
  // Key runs of 512-byte pages: 1202-1203-byte keys take 3 pages, the 102-byte key 1, the table name 1; the
  // separators between long keys have runs too.
  CHECK(stats->key_overflow_pages >= 7 * 3 + 1 + 1 + 1);
  CHECK(stats->overflow_pages > stats->key_overflow_pages);

  // The pages themselves, as rocky-inspect decodes them: a branch of "long_keys" holds a separator on a run.
  auto in = Inspector::Open(GoldenPath());
  REQUIRE(in.ok());
  CHECK((*in)->header().format_version == 2);
  bool long_separator = false;
  bool long_leaf_key = false;
  for (uint64_t id = 3; id < (*in)->header().file_size / 512; ++id) {
    auto page = (*in)->DescribePage(id);
    REQUIRE(page.ok());
    for (const InspectedEntry& e : page->entries) {
      if (!e.key_overflow) continue;
      CHECK_MESSAGE(e.key_status.ok(), e.key_status.ToString());
      CHECK(e.key.size() == e.key_len);
      if (page->kind_name == "branch") {
        long_separator = true;
        CHECK(e.key.size() > 101);
        CHECK(e.key.size() < 310);  // the shortest separator, not a copy of a 1200-byte key
      } else {
        long_leaf_key = true;
      }
    }
  }
  CHECK(long_separator);
  CHECK(long_leaf_key);
}

TEST_CASE("golden file: format version 1 is still read, and written within its key limits") {
  Options o;
  o.read_only = true;
  {
    auto db = Database::Open(GoldenPath("small-v1.redb"), o);
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    auto report = (*db)->CheckIntegrity();
    REQUIRE_MESSAGE(report.ok(), report.status().ToString());
    auto r = (*db)->BeginRead();
    REQUIRE(r.ok());
    CHECK((*r)->snapshot_id() == 4);
    CHECK(*(*r)->ListTables() == std::vector<std::string>{"check_history", "watermarks"});
    CheckFirstThreeCommits(**r);
  }
  // A copy, written to: version 1 keeps its limits (101-byte keys at 512-byte pages, 97-byte table names).
  std::ifstream in(GoldenPath("small-v1.redb"), std::ios::binary);
  const std::string image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto env = NewMemoryEnv();
  {
    FileOpenOptions fo;
    fo.create = true;
    auto f = env->OpenFile("/v1.redb", fo);
    REQUIRE(f.ok());
    REQUIRE((*f)->Write(0, image).ok());
  }
  Options rw;
  rw.env = env.get();
  auto db = Database::Open("/v1.redb", rw);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  {
    auto w = (*db)->BeginWrite();
    auto t = (*w)->OpenTable("watermarks");
    REQUIRE(t.ok());
    CHECK((*t)->Insert(std::string(InlineKeyLimit(512), 'k'), "fits").ok());
    auto too_long = (*t)->Insert(std::string(InlineKeyLimit(512) + 1, 'k'), "no");
    CHECK(too_long.status().code() == Status::Code::kInvalidArgument);
    CHECK_MESSAGE(too_long.status().message().find("format version 1") != std::string::npos,
                  too_long.status().ToString());
    CHECK((*w)->OpenTable(std::string(InlineKeyLimit(512) - 4, 'n')).ok());
    CHECK((*w)->OpenTable(std::string(InlineKeyLimit(512) - 3, 'n')).status().code() ==
          Status::Code::kInvalidArgument);
    REQUIRE((*w)->Commit().ok());
  }
  RequireIntegrityOf(**db);
  REQUIRE((*db)->Close().ok());
  // Still version 1 on disk: the older builds that read it are not locked out.
  auto reread = ReadWholeFile(env.get(), "/v1.redb");
  REQUIRE(reread.ok());
  CHECK(reread->substr(0, 32) == image.substr(0, 32));
}
