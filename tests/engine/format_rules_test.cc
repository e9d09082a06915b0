// FORMAT.md's smaller rules, each on a file taken apart and re-sealed by hand (so every checksum still
// passes and only the rule itself is at stake): which of two slots with one txn_id wins, what a reader
// ignores in a slot, a verify-list run that leaves the commit or the file, a blank slot B, an unknown value
// kind, an overflow run whose length differs from its entry, and a reachable page newer than its commit.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "btree/node.h"
#include "db/commit_slot.h"
#include "engine_test_util.h"
#include "image_util.h"
#include "page/page_layout.h"
#include "rocky/engine/db.h"
#include "rocky/engine/env.h"
#include "rocky/engine/inspect.h"

namespace rocky::engine::testing {
namespace {

constexpr uint32_t kPs = 512;

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

Options ReadOnly(Env* env) {
  Options o;
  o.env = env;
  o.page_size = kPs;
  o.read_only = true;
  return o;
}

void Put(Database& db, const std::string& key, const std::string& value) {
  auto w = db.BeginWrite();
  REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  REQUIRE((*w)->OpenTable("t").value()->Insert(key, value).ok());
  Status s = (*w)->Commit();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
}

// "/db" with commit 2 (k = v1) in slot B and commit 3 (k = v2, plus `big` = a value on an overflow run when
// big_value) in slot A, both small one-sync commits.
void MakeFile(Env* env, bool big_value = false) {
  auto db = OpenOrDie(env, "/db", kPs);
  Put(*db, "k", "v1");
  auto w = db->BeginWrite();
  REQUIRE(w.ok());
  auto t = (*w)->OpenTable("t");
  REQUIRE((*t)->Insert("k", "v2").ok());
  if (big_value) REQUIRE((*t)->Insert("big", std::string(2000, 'b')).ok());
  REQUIRE((*w)->Commit().ok());
  REQUIRE(db->Close().ok());
}

std::optional<CommitSlot> SlotAt(const std::string& image, int i) {
  return DecodeCommitSlot(image.data() + kSlotPageIds[i] * kPs, kSlotPageIds[i], kPs);
}

void PutSlot(std::string& image, int i, const CommitSlot& slot) {
  std::string page(kPs, '\0');
  EncodeCommitSlot(slot, kSlotPageIds[i], kPs, page.data());
  image.replace(kSlotPageIds[i] * kPs, kPs, page);
}

// Re-seals the page (or run of `pages` pages) at `id` after an edit, keeping its txn_id unless one is given.
void Reseal(std::string& image, uint64_t id, uint64_t pages = 1, std::optional<uint64_t> txn = std::nullopt) {
  char* p = image.data() + id * kPs;
  SealPage(p, pages * kPs, id, txn.value_or(PageTxn(p)));
}

// The first page of the overflow run holding a value of `len` bytes.
uint64_t FindValueRun(const std::string& image, uint64_t len) {
  for (uint64_t id = kFirstDataPageId; (id + 1) * kPs <= image.size(); ++id) {
    const char* p = image.data() + id * kPs;
    if (GetPageKind(p) == PageKind::kOverflow && DecodeU64(p + kOverflowLengthOffset) == len) return id;
  }
  FAIL("no overflow run of " << len << " bytes");
  return 0;
}

// The leaf of table "t" reachable from `slot` whose entry 0 has key `key`.
uint64_t FindLeafWithKey(const std::string& image, const std::string& key, uint64_t page_count) {
  for (uint64_t id = kFirstDataPageId; id < page_count; ++id) {
    char* p = const_cast<char*>(image.data()) + id * kPs;
    if (GetPageKind(p) != PageKind::kLeaf || PageCount(p) == 0) continue;
    NodePage node(p, kPs);
    for (int i = 0; i < node.count(); ++i) {
      if (node.leaf_entry(i).key.bytes == key) return id;
    }
  }
  FAIL("no leaf holds " << key);
  return 0;
}

std::string Get(Database& db, const std::string& key, Status* error = nullptr) {
  auto r = db.BeginRead();
  REQUIRE(r.ok());
  auto t = (*r)->OpenTable("t");
  REQUIRE(t.ok());
  std::string v;
  auto found = (*t)->Get(key, &v);
  if (error != nullptr) *error = found.status();
  if (!found.ok()) return "<error>";
  return *found ? v : "<absent>";
}

}  // namespace

TEST_CASE("format rules: of two valid slots with the same txn_id, slot A is considered first") {
  auto env = NewMemoryEnv();
  MakeFile(env.get());
  const std::string made = ReadImage(env.get(), "/db");
  const CommitSlot a = SlotAt(made, 0).value();  // commit 3, k = v2
  const CommitSlot b = SlotAt(made, 1).value();  // commit 2, k = v1
  REQUIRE(a.txn_id == 3);
  REQUIRE(b.txn_id == 2);
  // Both complete (synced before the slot: nothing to verify), both claiming commit 3, in both arrangements.
  for (const bool swap : {false, true}) {
    CommitSlot first = swap ? b : a;
    CommitSlot second = swap ? a : b;
    for (CommitSlot* s : {&first, &second}) {
      s->txn_id = 3;
      s->synced_before_slot = true;
      s->verify_list.clear();
    }
    std::string image = made;
    PutSlot(image, 0, first);
    PutSlot(image, 1, second);
    WriteImage(env.get(), "/db", image);
    auto db = Database::Open("/db", ReadOnly(env.get()));
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    CHECK((*db)->open_report().commit_id == 3);
    CHECK_FALSE((*db)->open_report().discarded.has_value());
    CHECK(Get(**db, "k") == (swap ? "v1" : "v2"));  // slot A's tree, whichever it is
    auto in = Inspector::Open("/db", env.get());
    REQUIRE(in.ok());
    CHECK((*in)->current_slot() == 0);
  }
}

TEST_CASE(
    "format rules: a slot's unknown flag bits, non-zero reserved bytes and a synced slot's verify list are "
    "ignored") {
  auto env = NewMemoryEnv();
  MakeFile(env.get());
  const std::string made = ReadImage(env.get(), "/db");
  const CommitSlot a = SlotAt(made, 0).value();
  REQUIRE_FALSE(a.synced_before_slot);
  REQUIRE_FALSE(a.verify_list.empty());
  for (const bool synced : {false, true}) {
    std::string image = made;
    char* slot = image.data() + kSlotPageIds[0] * kPs;
    slot[kSlotFlagsOffset] = static_cast<char>(0xF6 | (synced ? kSlotFlagSyncedBeforeSlot : 0));
    slot[18] = '\x5A';
    slot[19] = '\xA5';
    for (int i = 56; i < 64; ++i) slot[i] = '\x77';
    for (size_t i = kSlotVerifyListOffset + 8 * a.verify_list.size(); i < kPs; ++i) slot[i] = '\x33';
    if (synced) {
      // A verify list that would fail verification: a page of the older commit. Not read when synced.
      EncodeU64(slot + kSlotVerifyListOffset, SlotAt(made, 1)->verify_list.front());
    }
    Reseal(image, kSlotPageIds[0]);
    WriteImage(env.get(), "/db", image);
    auto db = Database::Open("/db", ReadOnly(env.get()));
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    CHECK((*db)->open_report().commit_id == 3);
    CHECK_FALSE((*db)->open_report().discarded.has_value());
    CHECK(Get(**db, "k") == "v2");
    RequireIntegrity(**db);
  }
}

TEST_CASE(
    "format rules: a verify-list run that runs past its commit or the file makes the commit incomplete") {
  auto env = NewMemoryEnv();
  MakeFile(env.get(), /*big_value=*/true);
  const std::string made = ReadImage(env.get(), "/db");
  const CommitSlot a = SlotAt(made, 0).value();
  const uint64_t run = FindValueRun(made, 2000);
  const uint64_t run_pages = PageAux(made.data() + run * kPs);
  REQUIRE(run_pages >= 4);
  REQUIRE(std::count(a.verify_list.begin(), a.verify_list.end(), run) == 1);

  SUBCASE("its first page inside the commit, its last pages past page_count (but inside the file)") {
    std::string image = made;
    CommitSlot cut = a;
    cut.verify_list = {run};
    cut.page_count = run + 1;
    PutSlot(image, 0, cut);
    WriteImage(env.get(), "/db", image);
  }
  SUBCASE("its aux past the end of the file") {
    std::string image = made;
    EncodeU32(image.data() + run * kPs + kPageAuxOffset, static_cast<uint32_t>(image.size() / kPs));
    WriteImage(env.get(), "/db", image);  // not re-sealed: a torn first page shows any aux
  }
  auto db = Database::Open("/db", ReadOnly(env.get()));
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  CHECK((*db)->open_report().commit_id == 2);
  REQUIRE((*db)->open_report().discarded.has_value());
  CHECK((*db)->open_report().discarded->txn_id == 3);
  CHECK_MESSAGE(Contains((*db)->open_report().discarded->reason, "runs past the end of the"),
                (*db)->open_report().discarded->reason);
  CHECK(Get(**db, "k") == "v1");
}

TEST_CASE("format rules: a blank slot B is neither a commit nor damage for a read-only reader") {
  auto env = NewMemoryEnv();
  SUBCASE("a new file: commit 1 in slot A, slot B never written") {
    { auto db = OpenOrDie(env.get(), "/db", kPs); }
    auto db = Database::Open("/db", ReadOnly(env.get()));
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    CHECK((*db)->open_report().commit_id == 1);
    CHECK_FALSE((*db)->open_report().uncommitted);
    CHECK_FALSE((*db)->open_report().discarded.has_value());
  }
  SUBCASE("slot B zeroed (as a failed commit leaves it) beside a complete commit in slot A") {
    MakeFile(env.get());
    std::string image = ReadImage(env.get(), "/db");
    image.replace(kSlotPageIds[1] * kPs, kPs, std::string(kPs, '\0'));
    WriteImage(env.get(), "/db", image);
    auto db = Database::Open("/db", ReadOnly(env.get()));
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    CHECK((*db)->open_report().commit_id == 3);
    CHECK_FALSE((*db)->open_report().discarded.has_value());
    CHECK(Get(**db, "k") == "v2");
    auto in = Inspector::Open("/db", env.get());
    REQUIRE(in.ok());
    const InspectionReport report = (*in)->Inspect();
    CHECK(report.healthy());
    CHECK(report.slots[1].blank);
    CHECK(report.slots[1].status.IsNotFound());
  }
  SUBCASE("slot B zeroed and slot A damaged, in a file longer than a new one: corrupt, not empty") {
    MakeFile(env.get());
    std::string image = ReadImage(env.get(), "/db");
    image.replace(kSlotPageIds[1] * kPs, kPs, std::string(kPs, '\0'));
    image[kSlotPageIds[0] * kPs + 100] ^= 1;
    WriteImage(env.get(), "/db", image);
    auto db = Database::Open("/db", ReadOnly(env.get()));
    REQUIRE_FALSE(db.ok());
    CHECK(db.status().IsCorruption());
    CHECK_MESSAGE(Contains(db.status().message(), "neither commit slot"), db.status().ToString());
  }
}

TEST_CASE("format rules: an unknown value-kind byte in a leaf entry is corruption") {
  auto env = NewMemoryEnv();
  MakeFile(env.get());
  std::string image = ReadImage(env.get(), "/db");
  const CommitSlot a = SlotAt(image, 0).value();
  const uint64_t leaf = FindLeafWithKey(image, "k", a.page_count);
  char* p = image.data() + leaf * kPs;
  NodePage node(p, kPs);
  REQUIRE(node.count() == 1);
  const uint16_t offset = DecodeU16(p + kLeafOffsetsStart);
  REQUIRE(p[offset + 2] == kLeafEntryInline);
  p[offset + 2] = 2;
  Reseal(image, leaf);
  WriteImage(env.get(), "/db", image);
  auto db = Database::Open("/db", ReadOnly(env.get()));
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  Status error;
  CHECK(Get(**db, "k", &error) == "<error>");
  CHECK(error.IsCorruption());
  CHECK_MESSAGE(Contains(error.message(), "unknown entry type"), error.ToString());
}

TEST_CASE("format rules: an overflow run whose length field differs from its entry's is corruption") {
  auto env = NewMemoryEnv();
  MakeFile(env.get(), /*big_value=*/true);
  std::string image = ReadImage(env.get(), "/db");
  const uint64_t run = FindValueRun(image, 2000);
  const uint64_t pages = PageAux(image.data() + run * kPs);
  EncodeU64(image.data() + run * kPs + kOverflowLengthOffset, 1999);
  Reseal(image, run, pages);
  WriteImage(env.get(), "/db", image);
  auto db = Database::Open("/db", ReadOnly(env.get()));
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  CHECK_FALSE((*db)->open_report().discarded.has_value());  // the run is whole and carries its commit's id
  Status error;
  CHECK(Get(**db, "big", &error) == "<error>");
  CHECK(error.IsCorruption());
  CHECK_MESSAGE(Contains(error.message(), "length differs from its leaf entry"), error.ToString());
  auto integrity = (*db)->CheckIntegrity();
  CHECK_FALSE(integrity.ok());
}

TEST_CASE("format rules: check_integrity refuses any reachable page newer than its commit") {
  auto env = NewMemoryEnv();
  MakeFile(env.get(), /*big_value=*/true);
  const std::string made = ReadImage(env.get(), "/db");
  CommitSlot a = SlotAt(made, 0).value();
  // Synced before its slot, so recovery verifies nothing and the commit opens: the walk must find the page.
  a.synced_before_slot = true;
  a.verify_list.clear();
  const uint64_t newer = a.txn_id + 7;
  std::string image = made;
  std::string what;
  SUBCASE("a value's overflow run") {
    const uint64_t run = FindValueRun(made, 2000);
    Reseal(image, run, PageAux(made.data() + run * kPs), newer);
    what = "overflow run " + std::to_string(run);
  }
  SUBCASE("the freemap directory") {
    Reseal(image, a.freemap_directory, 1, newer);
    what = "freemap directory: page " + std::to_string(a.freemap_directory);
  }
  SUBCASE("a freemap bitmap") {
    const uint64_t bitmap = DecodeU64(made.data() + a.freemap_directory * kPs + kDirectoryIdsOffset);
    Reseal(image, bitmap, 1, newer);
    what = "freemap bitmap: page " + std::to_string(bitmap);
  }
  SUBCASE("a leaf") {
    const uint64_t leaf = FindLeafWithKey(made, "k", a.page_count);
    Reseal(image, leaf, 1, newer);
    what = "page " + std::to_string(leaf) + " was written by transaction";
  }
  PutSlot(image, 0, a);
  WriteImage(env.get(), "/db", image);
  auto db = Database::Open("/db", ReadOnly(env.get()));
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  CHECK((*db)->open_report().commit_id == a.txn_id);
  auto integrity = (*db)->CheckIntegrity();
  REQUIRE_FALSE(integrity.ok());
  CHECK(integrity.status().IsCorruption());
  CHECK_MESSAGE(Contains(integrity.status().message(), what), integrity.status().ToString());
  CHECK_MESSAGE(Contains(integrity.status().message(), "newer than the commit " + std::to_string(a.txn_id)),
                integrity.status().ToString());
}

}  // namespace rocky::engine::testing
