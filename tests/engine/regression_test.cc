// Minimal reproductions of engine bugs found by the randomized, crash and maintenance tests. Each test names
// the bug it pins down; they stay so the bugs cannot come back.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "db/commit_slot.h"
#include "engine_test_util.h"
#include "image_util.h"
#include "page/page_layout.h"
#include "rocky/engine/db.h"
#include "rocky/engine/env.h"
#include "rocky/engine/fault_injection_env.h"

namespace rocky::engine::testing {

TEST_CASE("regression: an overflow run freed by the transaction that allocated it leaves the file openable") {
  // The run grew the file; replacing the value in the same transaction freed it, so the run's pages were
  // never written, yet the commit's page count still covered them and reopening reported a truncated file.
  auto env = NewMemoryEnv();
  {
    auto db = OpenOrDie(env.get(), "/db", 4096);
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    REQUIRE((*t)->Insert("k", std::string(100 * 1024, 'x')).ok());
    REQUIRE((*t)->Insert("k", "small").ok());
    REQUIRE((*w)->Commit().ok());
    RequireIntegrity(*db);
    REQUIRE(db->Close().ok());
  }
  auto db = Database::Open("/db", [&] {
    Options o;
    o.env = env.get();
    return o;
  }());
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  CHECK(DumpDb(**db)["t"]["k"] == "small");
  RequireIntegrity(**db);
}

TEST_CASE("regression: table names around the inline key limit and past it keep valid catalog records") {
  // A table name of (then) MaxKeySize bytes made the 16-byte catalog record too large to store inline; the
  // record went to an overflow run, which the integrity check rejected as corruption. Since format version 2
  // names have no limit, a record may be on a run, and the check reads it from there.
  for (uint32_t ps : {512u, 4096u}) {
    CAPTURE(ps);
    auto env = NewMemoryEnv();
    Tables want;
    {
      auto db = OpenOrDie(env.get(), "/db", ps);
      auto w = db->BeginWrite();
      std::vector<size_t> lens;
      for (size_t len = InlineKeyLimit(ps) - 8; len <= InlineKeyLimit(ps) + 1; ++len) lens.push_back(len);
      lens.push_back(3 * ps + 5);
      for (size_t len : lens) {
        CAPTURE(len);
        const std::string name(len, 'n');
        auto t = (*w)->OpenTable(name);
        REQUIRE_MESSAGE(t.ok(), t.status().ToString());
        REQUIRE((*t)->Insert("k", std::to_string(len)).ok());
        want[name]["k"] = std::to_string(len);
      }
      REQUIRE((*w)->Commit().ok());
      RequireIntegrity(*db);
      REQUIRE(db->Close().ok());
    }
    auto db = OpenOrDie(env.get(), "/db", ps);
    CHECK(Diff(DumpDb(*db), want).empty());
    RequireIntegrity(*db);
  }
}

TEST_CASE("regression: a read-only open after a crash ignores an incomplete newest commit") {
  // The power cut left the slot of the last commit on disk but not one of its pages (which still holds what
  // the previous commit put there, with a valid checksum). A writer's recovery falls back to the previous
  // commit; a read-only reader must too, not read the incomplete one.
  auto env = NewMemoryEnv();
  const uint32_t ps = 512;
  {
    auto db = OpenOrDie(env.get(), "/db", ps);
    auto w = db->BeginWrite();
    REQUIRE((*w)->OpenTable("t").value()->Insert("k", "old").ok());
    REQUIRE((*w)->Commit().ok());
    REQUIRE(db->Close().ok());
  }
  const std::string before = ReadImage(env.get(), "/db");
  {
    auto db = OpenOrDie(env.get(), "/db", ps);
    auto w = db->BeginWrite();
    REQUIRE((*w)->OpenTable("t").value()->Insert("k", "new").ok());
    REQUIRE((*w)->Commit().ok());
    REQUIRE(db->Close().ok());
  }
  std::string image = ReadImage(env.get(), "/db");
  const CommitSlot slot = NewestSlot(image, ps);
  REQUIRE_FALSE(slot.synced_before_slot);
  RevertPages(image, before, slot, ps);
  WriteImage(env.get(), "/db", image);

  Options ro;
  ro.env = env.get();
  ro.read_only = true;
  {
    auto db = Database::Open("/db", ro);
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    auto r = (*db)->BeginRead();
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    auto t = (*r)->OpenTable("t");
    REQUIRE_MESSAGE(t.ok(), t.status().ToString());
    std::string v;
    auto found = (*t)->Get("k", &v);
    REQUIRE_MESSAGE(found.ok(), found.status().ToString());
    CHECK(v == "old");
  }
  auto db = OpenOrDie(env.get(), "/db", ps);
  CHECK(DumpDb(*db)["t"]["k"] == "old");
}

}  // namespace rocky::engine::testing

namespace rocky::engine::testing {

TEST_CASE("regression: a crashed commit's pages are never taken for a later commit with the same id") {
  // Recovery restarts transaction ids after the last complete commit, so a commit after a crash can carry the
  // id of a commit that crashed before it, and (allocation being deterministic) write the same pages. The
  // crashed commit's pages are still on disk with valid checksums and that id: if the new commit's slot
  // reaches the disk but one of its pages does not, the one-sync verify list would accept the old page.
  auto env = NewMemoryEnv();
  const uint32_t ps = 512;
  auto commit_value = [&](const std::string& v) {
    auto db = OpenOrDie(env.get(), "/db", ps);
    auto w = db->BeginWrite();
    REQUIRE((*w)->OpenTable("t").value()->Insert("k", v).ok());
    REQUIRE((*w)->Commit().ok());
    REQUIRE(db->Close().ok());
  };
  commit_value("old");
  const std::string before = ReadImage(env.get(), "/db");

  // Run 1 commits "run-1", but the power fails: its pages reached the disk, its slot did not.
  commit_value("run-1");
  std::string image = ReadImage(env.get(), "/db");
  const CommitSlot crashed = NewestSlot(image, ps);
  for (uint64_t id : kSlotPageIds) {
    auto s = DecodeCommitSlot(image.data() + id * ps, id, ps);
    if (s && s->txn_id == crashed.txn_id) image.replace(id * ps, ps, before, id * ps, ps);
  }
  WriteImage(env.get(), "/db", image);
  const std::string after_run1 = image;

  // Run 2 recovers "old" and commits "run-2" under the same transaction id.
  {
    auto db = OpenOrDie(env.get(), "/db", ps);
    REQUIRE(DumpDb(*db)["t"]["k"] == "old");
  }
  commit_value("run-2");
  image = ReadImage(env.get(), "/db");
  const CommitSlot second = NewestSlot(image, ps);
  CHECK(second.txn_id == crashed.txn_id);
  if (!second.synced_before_slot) {
    // The power fails again: the slot reached the disk, the pages did not (they hold run 1's pages).
    RevertPages(image, after_run1, second, ps);
    WriteImage(env.get(), "/db", image);
  }
  auto db = OpenOrDie(env.get(), "/db", ps);
  const std::string got = DumpDb(*db)["t"]["k"];
  CHECK_MESSAGE((got == "old" || got == "run-2"), "recovered a value no acknowledged commit wrote: " << got);
  RequireIntegrity(*db);
}

}  // namespace rocky::engine::testing

namespace rocky::engine::testing {

TEST_CASE("regression: deleting most keys in key order merges the leaves") {
  // A node that became small only tried to merge with its right sibling. Deleting in key order, each leaf
  // shrinks while its right sibling is still full, so no leaf ever merged: 90% deleted left 599 of 608
  // leaves.
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/db");
  auto key = [](int i) {
    char buf[32];
    snprintf(buf, sizeof buf, "key-%07d", i);
    return std::string(buf);
  };
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    for (int i = 0; i < 20000; ++i) REQUIRE((*t)->Insert(key(i), std::string(100, 'v')).ok());
    REQUIRE((*w)->Commit().ok());
  }
  const uint64_t leaves_before = db->GetStats()->leaf_pages;
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    for (int i = 0; i < 20000; ++i) {
      if (i % 10 != 0) REQUIRE((*t)->Remove(key(i)).ok());
    }
    REQUIRE((*w)->Commit().ok());
  }
  const uint64_t leaves_after = db->GetStats()->leaf_pages;
  MESSAGE("leaves: " << leaves_before << " -> " << leaves_after);
  CHECK(leaves_after * 4 < leaves_before);
  RequireIntegrity(*db);
}

TEST_CASE("regression: Compact finishes when a round's last copies land at the end of the file") {
  // The first round ran out of free pages below the threshold (the pages it frees stay pending until it
  // commits), put a copy at the end of the file, and the end-of-file progress test stopped compaction there.
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/db");
  auto key = [](int i) {
    char buf[32];
    snprintf(buf, sizeof buf, "key-%07d", i);
    return std::string(buf);
  };
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("big");
    for (int i = 0; i < 20000; ++i) REQUIRE((*t)->Insert(key(i), std::string(100, 'v')).ok());
    REQUIRE((*w)->Commit().ok());
  }
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("small");
    for (int i = 0; i < 50; ++i) REQUIRE((*t)->Insert(key(i), std::string(5000, 's')).ok());
    REQUIRE((*w)->Commit().ok());
  }
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("big");
    for (int i = 0; i < 20000; ++i) {
      if (i % 10 != 0) REQUIRE((*t)->Remove(key(i)).ok());
    }
    REQUIRE((*w)->Commit().ok());
  }
  const Tables before = DumpDb(*db);
  auto stats = db->GetStats();
  REQUIRE(stats.ok());
  const uint64_t in_use = stats->file_pages - stats->free_pages;
  REQUIRE(db->Compact().ok());
  auto after = db->GetStats();
  REQUIRE(after.ok());
  MESSAGE("pages: " << stats->file_pages << " (" << in_use << " in use) -> " << after->file_pages);
  CHECK(after->file_pages <= in_use + 8);
  CHECK(FileSize(env.get(), "/db") == after->file_pages * 4096);
  CHECK(Diff(DumpDb(*db), before).empty());
  RequireIntegrity(*db);
}

}  // namespace rocky::engine::testing

namespace rocky::engine::testing {

TEST_CASE("regression: Compact does not stop at the allocator's pages left past the packed trees") {
  // The bench's sequence at a small scale: a load, kNoSync commits, a durable removal of half the keys in
  // random order, then Compact (with 512-byte pages, for many bitmap pages). Its last round put the
  // allocator's bitmap and directory pages past the packed trees (the round used every free page below
  // them), and the file was cut after them: 1,110 free pages were left inside it at 1M keys.
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/db", 512);
  auto key = [](uint64_t i) {
    char buf[32];
    snprintf(buf, sizeof buf, "key-%016llx", static_cast<unsigned long long>(i * 0x9E3779B97F4A7C15ull));
    return std::string(buf);
  };
  auto commit = [&](Durability d, auto&& change) {
    WriteOptions wo;
    wo.durability = d;
    auto w = db->BeginWrite(wo);
    REQUIRE(w.ok());
    auto t = (*w)->OpenTable("t");
    REQUIRE(t.ok());
    change(**t);
    Status s = (*w)->Commit();
    REQUIRE_MESSAGE(s.ok(), s.ToString());
  };
  constexpr uint64_t kLoaded = 30000;
  commit(Durability::kDurable, [&](WritableTable& t) {
    for (uint64_t i = 0; i < kLoaded; ++i) REQUIRE(t.Insert(key(i), std::string(150, 'v')).ok());
  });
  for (uint64_t c = 0; c < 20; ++c) {
    commit(Durability::kNoSync, [&](WritableTable& t) {
      for (uint64_t i = 0; i < 300; ++i)
        REQUIRE(t.Insert(key(kLoaded + c * 300 + i), std::string(150, 'n')).ok());
    });
  }
  commit(Durability::kDurable, [&](WritableTable& t) {
    for (uint64_t i = 0; i < kLoaded / 2; ++i) REQUIRE(t.Remove(key(i)).ok());
  });
  const Tables before = DumpDb(*db);
  auto stats = db->GetStats();
  REQUIRE(stats.ok());
  const uint64_t in_use = stats->file_pages - stats->free_pages;
  REQUIRE(db->Compact().ok());
  auto after = db->GetStats();
  REQUIRE(after.ok());
  MESSAGE("pages: " << stats->file_pages << " (" << in_use << " in use) -> " << after->file_pages);
  // The allocator's own pages (about 13 bitmaps and a directory page for 46,000 512-byte pages) may be
  // rewritten just past the trees; before the fix the file ended at page 42,511.
  CHECK(after->file_pages <= in_use + 16);
  CHECK(Diff(DumpDb(*db), before).empty());
  RequireIntegrity(*db);
}

TEST_CASE("regression: a power cut while creating the file never leaves it unopenable") {
  // Creation wrote page 0 and then other pages before its first sync; the disk kept a later write and lost
  // page 0, and every later open refused the file as "not a rocky database". Also a torn slot A (pages larger
  // than a sector) made it "corrupt" instead of an interrupted creation.
  for (uint32_t ps : {512u, 4096u}) {
    for (uint64_t k = 0; k < 6; ++k) {
      for (uint64_t seed = 0; seed < 16; ++seed) {
        CAPTURE(ps);
        CAPTURE(k);
        CAPTURE(seed);
        FaultInjectionEnv env;
        env.CrashAfterOps(k);
        Options o;
        o.env = &env;
        o.page_size = ps;
        CHECK_FALSE(Database::Open("/db", o).ok());  // creation takes more than 6 writes and syncs
        env.PowerLoss(
            seed % 2 ? FaultInjectionEnv::LossMode::kKeepRandom : FaultInjectionEnv::LossMode::kTearRandom,
            seed);
        auto db = Database::Open("/db", o);
        REQUIRE_MESSAGE(db.ok(), db.status().ToString());
        RequireIntegrity(**db);
        CHECK(DumpDb(**db).empty());
      }
    }
  }
}

}  // namespace rocky::engine::testing
