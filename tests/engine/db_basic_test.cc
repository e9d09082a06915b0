// Basic behaviour of the public engine API: tables, keys, values, transactions, reopen.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "rocky/engine/db.h"
#include "rocky/engine/env.h"

using namespace rocky::engine;

namespace {

std::unique_ptr<Database> OpenMem(Env* env, const std::string& path = "/db", uint32_t page_size = 4096) {
  Options o;
  o.env = env;
  o.page_size = page_size;
  auto db = Database::Open(path, o);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  return std::move(db).value();
}

std::string GetOrDie(Database& db, const std::string& table, const std::string& key) {
  auto r = db.BeginRead();
  REQUIRE(r.ok());
  auto t = (*r)->OpenTable(table);
  REQUIRE_MESSAGE(t.ok(), t.status().ToString());
  std::string v;
  auto found = (*t)->Get(key, &v);
  REQUIRE(found.ok());
  REQUIRE(found.value());
  return v;
}

}  // namespace

TEST_CASE("insert, get, replace, remove and commit") {
  auto env = NewMemoryEnv();
  auto db = OpenMem(env.get());
  {
    auto w = db->BeginWrite();
    REQUIRE(w.ok());
    auto t = (*w)->OpenTable("watermarks");
    REQUIRE(t.ok());
    CHECK((*t)->Insert("a.b.c", "v1").value() == false);
    CHECK((*t)->Insert("a.b.c", "v2").value() == true);
    CHECK((*t)->Insert("a.b.d", "x").value() == false);
    CHECK((*t)->Len() == 2);
    CHECK((*t)->Remove("a.b.d").value() == true);
    CHECK((*t)->Remove("a.b.d").value() == false);
    REQUIRE((*w)->Commit().ok());
  }
  CHECK(GetOrDie(*db, "watermarks", "a.b.c") == "v2");
  auto report = db->CheckIntegrity();
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
  CHECK(report->entries_checked == 1);
}

TEST_CASE("removing absent keys from a multi-level tree copies no page and commits nothing") {
  // TreeRemove finds the key with a read-only descent before it makes any page writable; a removal that
  // finds nothing must leave the transaction unmodified, so its commit writes nothing.
  auto env = NewMemoryEnv();
  auto db = OpenMem(env.get(), "/db", 512);
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    for (int i = 0; i < 2000; ++i) {
      char key[16];
      snprintf(key, sizeof key, "k%06d", i * 2);
      REQUIRE((*t)->Insert(key, "value").ok());
    }
    REQUIRE((*w)->Commit().ok());
  }
  auto before = db->GetStats();
  REQUIRE(before.ok());
  REQUIRE(before->tree_depth >= 3);
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    for (const char* absent : {"", "a", "k000001", "k001999", "k003999", "k004000", "zz"}) {
      auto r = (*t)->Remove(absent);
      REQUIRE_MESSAGE(r.ok(), r.status().ToString());
      CHECK_FALSE(r.value());
    }
    REQUIRE((*w)->Commit().ok());
  }
  auto after = db->GetStats();
  REQUIRE(after.ok());
  CHECK(after->last_commit_id == before->last_commit_id);
  CHECK(after->file_pages == before->file_pages);
  CHECK(after->entries == 2000);
  // A present key next to the absent ones is still removed.
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    CHECK((*t)->Remove("k002000").value());
    CHECK_FALSE((*t)->Remove("k002000").value());
    REQUIRE((*w)->Commit().ok());
  }
  auto report = db->CheckIntegrity();
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
  CHECK(report->entries_checked == 1999);
}

TEST_CASE("many keys survive reopen and iterate in order both ways") {
  auto env = NewMemoryEnv();
  const int n = 20000;
  {
    auto db = OpenMem(env.get());
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    for (int i = 0; i < n; ++i) {
      char key[32];
      snprintf(key, sizeof key, "key%08d", (i * 7919) % n);
      REQUIRE((*t)->Insert(key, std::string(i % 300, 'v')).ok());
    }
    REQUIRE((*w)->Commit().ok());
    REQUIRE(db->Close().ok());
  }
  auto db = OpenMem(env.get());
  auto r = db->BeginRead();
  auto t = (*r)->OpenTable("t");
  REQUIRE(t.ok());
  CHECK((*t)->Len() == n);
  auto c = (*t)->NewCursor();
  int count = 0;
  std::string prev;
  for (c->SeekToFirst(); c->Valid(); c->Next()) {
    if (count > 0) CHECK(prev < c->key());
    prev = std::string(c->key());
    ++count;
  }
  CHECK(c->status().ok());
  CHECK(count == n);
  count = 0;
  for (c->SeekToLast(); c->Valid(); c->Prev()) ++count;
  CHECK(count == n);
  r.value().reset();
  auto report = db->CheckIntegrity();
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
}

TEST_CASE("large values go to overflow runs and come back intact") {
  auto env = NewMemoryEnv();
  auto db = OpenMem(env.get());
  std::string big(5 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("blobs");
    REQUIRE((*t)->Insert("big", big).ok());
    REQUIRE((*t)->Insert("small", "s").ok());
    REQUIRE((*w)->Commit().ok());
  }
  CHECK(GetOrDie(*db, "blobs", "big") == big);
  auto report = db->CheckIntegrity();
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
}

TEST_CASE("a 64 MiB value round-trips, survives reopen, and its pages are freed when replaced") {
  auto env = NewMemoryEnv();
  std::string big(64u << 20, '\0');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i / 4096);
  big.back() = 'z';
  uint64_t pages_with_big = 0;
  {
    auto db = OpenMem(env.get());
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("blobs");
    REQUIRE((*t)->Insert("big", big).ok());
    REQUIRE((*w)->Commit().ok());
    auto stats = db->GetStats();
    REQUIRE(stats.ok());
    CHECK(stats->overflow_pages == (64u << 20) / 4096 + 1);
    pages_with_big = stats->file_pages;
    REQUIRE(db->Close().ok());
  }
  auto db = OpenMem(env.get());
  CHECK(GetOrDie(*db, "blobs", "big") == big);
  for (int round = 0; round < 3; ++round) {  // replacing it repeatedly must reuse the freed run
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("blobs");
    big[round] = 'r';
    REQUIRE((*t)->Insert("big", big).ok());
    REQUIRE((*w)->Commit().ok());
  }
  CHECK(GetOrDie(*db, "blobs", "big") == big);
  auto stats = db->GetStats();
  REQUIRE(stats.ok());
  CHECK(stats->file_pages <= 2 * pages_with_big + 16);
  REQUIRE(db->CheckIntegrity().ok());
}
