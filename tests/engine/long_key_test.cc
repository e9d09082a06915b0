// Keys longer than the inline key limit (format-spec/FORMAT.md, "Keys longer than the inline limit"): a leaf
// entry keeps a prefix and the whole key lives on an overflow run. Targeted tests at the limit, of 1 MiB
// keys, of ordering and ranges when keys share prefixes longer than an entry stores, and of damage to a key's
// run.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine_test_util.h"
#include "page/page_layout.h"
#include "rocky/engine/db.h"
#include "rocky/engine/env.h"
#include "rocky/engine/inspect.h"

namespace rocky::engine::testing {
namespace {

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

Stats StatsOf(Database& db) {
  auto s = db.GetStats();
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return s.value();
}

uint64_t RunPages(uint64_t len, uint32_t ps) { return (kOverflowDataOffset + len + ps - 1) / ps; }

std::vector<std::string> Keys(const ReadableTable& t, KeyRange range = {}, bool backward = false) {
  std::vector<std::string> out;
  auto c = t.NewCursor(std::move(range));
  if (backward) {
    for (c->SeekToLast(); c->Valid(); c->Prev()) out.emplace_back(c->key());
  } else {
    for (c->SeekToFirst(); c->Valid(); c->Next()) out.emplace_back(c->key());
  }
  REQUIRE_MESSAGE(c->status().ok(), c->status().ToString());
  return out;
}

// The keys of `model` within range, in order.
std::vector<std::string> Expected(const std::set<std::string>& model, const KeyRange& range) {
  std::vector<std::string> out;
  for (const std::string& k : model) {
    if ((!range.lower || k >= *range.lower) && (!range.upper || k < *range.upper)) out.push_back(k);
  }
  return out;
}

// Keys that share long prefixes, and short ones around them: the prefix alone, the prefix followed by the
// smallest and largest bytes, and variations past the part a leaf entry stores.
std::set<std::string> PrefixFamily(uint32_t ps, size_t prefix_len) {
  const std::string p(prefix_len, 'q');
  std::set<std::string> keys = {"",
                                "a",
                                "q",
                                std::string(prefix_len - 1, 'q'),
                                p,
                                p + std::string(1, '\0'),
                                p + "\xff",
                                p + "m",
                                p + "m" + std::string(ps, 'z'),
                                "r",
                                std::string(ps, 'r')};
  for (int i = 0; i < 40; ++i)
    keys.insert(p + "/" + std::to_string(i * 37 % 101) + std::string(i % 5 * ps / 3, 'x'));
  return keys;
}

}  // namespace

TEST_CASE("long keys: at the inline key limit and one byte either side") {
  for (uint32_t ps : {512u, 4096u}) {
    CAPTURE(ps);
    const size_t limit = InlineKeyLimit(ps);
    CHECK(limit == (ps - 24) / 4 - 2 - 19);
    auto env = NewMemoryEnv();
    auto db = OpenOrDie(env.get(), "/k.redb", ps);
    // Keys that differ only in their last byte, so the stored prefix never decides between them.
    const std::vector<std::string> keys = {std::string(limit - 1, 'k') + "1",
                                           std::string(limit - 1, 'k') + "2", std::string(limit, 'k') + "3"};
    CHECK(keys[0].size() == limit);
    {
      auto w = db->BeginWrite();
      auto t = (*w)->OpenTable("t");
      REQUIRE(t.ok());
      REQUIRE((*t)->Insert(std::string(limit - 1, 'k'), "below").ok());
      for (const std::string& k : keys) REQUIRE((*t)->Insert(k, "v" + std::to_string(k.size())).ok());
      REQUIRE((*w)->Commit().ok());
    }
    RequireIntegrity(*db);
    // Only the key one past the limit has a run of its own.
    CHECK(StatsOf(*db).key_overflow_pages == RunPages(limit + 1, ps));
    CHECK(StatsOf(*db).key_bytes == (limit - 1) + limit + limit + limit + 1);
    REQUIRE(db->Close().ok());
    db = OpenOrDie(env.get(), "/k.redb", ps);
    auto r = db->BeginRead();
    auto t = (*r)->OpenTable("t");
    REQUIRE(t.ok());
    std::string v;
    CHECK((*t)->Get(std::string(limit - 1, 'k'), &v).value());
    CHECK(v == "below");
    for (const std::string& k : keys) {
      CHECK((*t)->Get(k, &v).value());
      CHECK(v == "v" + std::to_string(k.size()));
    }
    CHECK_FALSE((*t)->Get(std::string(limit, 'k'), &v).value());
    CHECK_FALSE((*t)->Get(std::string(limit + 1, 'k'), &v).value());
    std::vector<std::string> want = {std::string(limit - 1, 'k'), keys[0], keys[1], keys[2]};
    CHECK(Keys(**t) == want);
    std::reverse(want.begin(), want.end());
    CHECK(Keys(**t, {}, true) == want);
  }
}

TEST_CASE("long keys: a 1 MiB key is inserted, read, replaced and removed") {
  const uint32_t ps = 4096;
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/big.redb", ps);
  const std::string big = MakeValue(1, 1 << 20);
  std::string twin = big;
  twin.back() = static_cast<char>(twin.back() ^ 1);  // differs in the very last byte
  const uint64_t run = RunPages(big.size(), ps);
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    auto replaced = (*t)->Insert(big, "first");
    REQUIRE_MESSAGE(replaced.ok(), replaced.status().ToString());
    CHECK_FALSE(replaced.value());
    REQUIRE((*t)->Insert("small", "s").ok());
    REQUIRE((*w)->Commit().ok());
  }
  RequireIntegrity(*db);
  CHECK(StatsOf(*db).key_overflow_pages == run);
  CHECK(StatsOf(*db).key_bytes == big.size() + 5);
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    std::string v;
    CHECK((*t)->Get(big, &v).value());
    CHECK(v == "first");
    CHECK_FALSE((*t)->Get(twin, &v).value());
    CHECK_FALSE((*t)->Get(big.substr(0, big.size() - 1), &v).value());
    // Replacing the value keeps the key's run: no second copy of the key is written.
    auto replaced = (*t)->Insert(big, std::string(3 << 20, 'V'));
    REQUIRE(replaced.ok());
    CHECK(replaced.value());
    REQUIRE((*t)->Insert(twin, "twin").ok());
    REQUIRE((*w)->Commit().ok());
  }
  RequireIntegrity(*db);
  CHECK(StatsOf(*db).key_overflow_pages == 2 * run);
  REQUIRE(db->Close().ok());
  db = OpenOrDie(env.get(), "/big.redb", ps);
  {
    auto r = db->BeginRead();
    auto t = (*r)->OpenTable("t");
    std::string v;
    CHECK((*t)->Get(big, &v).value());
    CHECK(v == std::string(3 << 20, 'V'));
    CHECK((*t)->Get(twin, &v).value());
    CHECK(v == "twin");
    std::vector<std::string> want = {big, twin, "small"};
    std::sort(want.begin(), want.end());
    CHECK(Keys(**t) == want);
    std::reverse(want.begin(), want.end());
    CHECK(Keys(**t, {}, true) == want);
  }
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    CHECK((*t)->Remove(big).value());
    CHECK_FALSE((*t)->Remove(big).value());
    REQUIRE((*w)->Commit().ok());
  }
  RequireIntegrity(*db);
  CHECK(StatsOf(*db).key_overflow_pages == run);
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    CHECK((*t)->Remove(twin).value());
    REQUIRE((*w)->Commit().ok());
  }
  RequireIntegrity(*db);
  const Stats after = StatsOf(*db);
  CHECK(after.key_overflow_pages == 0);
  CHECK(after.overflow_pages == 0);
  CHECK(after.entries == 1);
}

TEST_CASE("long keys: a key over kMaxKeySize is refused without being read") {
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/max.redb", 512);
  auto w = db->BeginWrite();
  auto t = (*w)->OpenTable("t");
  const char byte = 'x';
  // Only the length is looked at: the view's bytes past the first are never touched.
  const std::string_view huge(&byte, kMaxKeySize + 1);
  auto r = (*t)->Insert(huge, "v");
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
  CHECK((*t)->Len() == 0);
}

TEST_CASE("long keys: iteration forward and backward, and seeks, with long shared prefixes") {
  for (uint32_t ps : {512u, 4096u}) {
    CAPTURE(ps);
    auto env = NewMemoryEnv();
    auto db = OpenOrDie(env.get(), "/order.redb", ps);
    const std::set<std::string> model = PrefixFamily(ps, 2 * ps + 7);
    {
      auto w = db->BeginWrite();
      auto t = (*w)->OpenTable("t");
      // Inserted in a scrambled order, so splits happen everywhere.
      std::vector<std::string> order(model.begin(), model.end());
      for (size_t i = 0; i < order.size(); ++i) std::swap(order[i], order[(i * 7919) % order.size()]);
      for (const std::string& k : order) REQUIRE((*t)->Insert(k, MakeValue(k.size(), 5)).ok());
      REQUIRE((*w)->Commit().ok());
    }
    RequireIntegrity(*db);
    CHECK(StatsOf(*db).tree_depth >= 2);
    auto r = db->BeginRead();
    auto t = (*r)->OpenTable("t");
    REQUIRE(t.ok());
    const std::vector<std::string> forward(model.begin(), model.end());
    CHECK(Keys(**t) == forward);
    const std::vector<std::string> backward(model.rbegin(), model.rend());
    CHECK(Keys(**t, {}, true) == backward);
    // Seek and SeekForPrev to every key and to neighbours of every key that are not keys.
    auto c = (*t)->NewCursor();
    for (const std::string& k : model) {
      for (const std::string& target : {k, k + std::string(1, '\0'), k.substr(0, k.size() / 2)}) {
        c->Seek(target);
        auto lb = model.lower_bound(target);
        REQUIRE(c->Valid() == (lb != model.end()));
        if (lb != model.end()) CHECK(c->key() == *lb);
        c->SeekForPrev(target);
        auto ub = model.upper_bound(target);
        REQUIRE(c->Valid() == (ub != model.begin()));
        if (ub != model.begin()) CHECK(c->key() == *std::prev(ub));
      }
    }
    REQUIRE(c->status().ok());
  }
}

TEST_CASE("long keys: range scans whose bounds are huge keys") {
  const uint32_t ps = 512;
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/range.redb", ps);
  const std::set<std::string> model = PrefixFamily(ps, 3 * ps);
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    for (const std::string& k : model) REQUIRE((*t)->Insert(k, "v").ok());
    REQUIRE((*w)->Commit().ok());
  }
  auto r = db->BeginRead();
  auto t = (*r)->OpenTable("t");
  REQUIRE(t.ok());
  const std::vector<std::string> all(model.begin(), model.end());
  std::vector<std::string> bounds = all;
  for (const std::string& k : all) bounds.push_back(k + "\x01");  // huge bounds that are not keys
  int checked = 0;
  for (size_t i = 0; i < bounds.size(); i += 3) {
    for (size_t j = i % 5; j < bounds.size(); j += 7) {
      KeyRange range;
      range.lower = bounds[i];
      range.upper = bounds[j];
      CHECK(Keys(**t, range) == Expected(model, range));
      std::vector<std::string> back = Expected(model, range);
      std::reverse(back.begin(), back.end());
      CHECK(Keys(**t, range, true) == back);
      ++checked;
    }
  }
  // Prefix scans with a prefix longer than a leaf entry stores.
  const std::string p(3 * ps, 'q');
  for (const std::string& prefix : {p, p + "/", p + "/1", p + "m"}) {
    const KeyRange range = KeyRange::Prefix(prefix);
    CHECK(Keys(**t, range) == Expected(model, range));
  }
  MESSAGE(checked << " huge-bounded ranges checked");
  CHECK(checked > 100);
}

TEST_CASE("long keys: deleting a range of huge keys frees their runs") {
  const uint32_t ps = 512;
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/delrange.redb", ps);
  std::set<std::string> model = PrefixFamily(ps, 2 * ps);
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    for (const std::string& k : model) REQUIRE((*t)->Insert(k, MakeValue(k.size(), k.size() % 700)).ok());
    REQUIRE((*w)->Commit().ok());
  }
  const Stats full = StatsOf(*db);
  KeyRange range;
  range.lower = std::string(2 * ps, 'q') + "/2";
  range.upper = std::string(2 * ps, 'q') + "/7";
  const std::vector<std::string> doomed = Expected(model, range);
  REQUIRE(doomed.size() > 5);
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    auto removed = (*t)->RemoveRange(range);
    REQUIRE_MESSAGE(removed.ok(), removed.status().ToString());
    CHECK(removed.value() == doomed.size());
    REQUIRE((*w)->Commit().ok());
  }
  for (const std::string& k : doomed) model.erase(k);
  RequireIntegrity(*db);
  const Stats after = StatsOf(*db);
  CHECK(after.entries == model.size());
  CHECK(after.key_overflow_pages < full.key_overflow_pages);
  auto r = db->BeginRead();
  auto t = (*r)->OpenTable("t");
  CHECK(Keys(**t) == std::vector<std::string>(model.begin(), model.end()));
  r->reset();
  // Everything else goes too: no key run is left behind.
  {
    auto w = db->BeginWrite();
    auto t2 = (*w)->OpenTable("t");
    CHECK((*t2)->RemoveRange(KeyRange::All()).value() == model.size());
    REQUIRE((*w)->Commit().ok());
  }
  RequireIntegrity(*db);
  CHECK(StatsOf(*db).overflow_pages == 0);
  CHECK(StatsOf(*db).key_overflow_pages == 0);
}

TEST_CASE("long keys: damage to a key's overflow run is found and named by its page") {
  const uint32_t ps = 512;
  auto env = NewMemoryEnv();
  const std::string victim = std::string(3 * ps, 'd') + "victim";
  {
    auto db = OpenOrDie(env.get(), "/dmg.redb", ps);
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    REQUIRE((*t)->Insert(victim, "v").ok());
    for (int i = 0; i < 30; ++i) REQUIRE((*t)->Insert("short" + std::to_string(i), "s").ok());
    REQUIRE((*w)->Commit().ok());
    // Two more commits elsewhere, so the damaged run is on no verify list: recovery would otherwise take the
    // damage for a commit cut by a crash and fall back to the commit before it.
    for (int c = 0; c < 2; ++c) {
      auto w2 = db->BeginWrite();
      REQUIRE((*w2)->OpenTable("other").value()->Insert("c", std::to_string(c)).ok());
      REQUIRE((*w2)->Commit().ok());
    }
    REQUIRE(db->Close().ok());
  }
  // Find the victim's key run through the inspector, as rocky-inspect would show it.
  std::optional<uint64_t> run;
  {
    auto in = Inspector::Open("/dmg.redb", env.get());
    REQUIRE(in.ok());
    for (uint64_t id = kFirstDataPageId; id < (*in)->header().file_size / ps && !run; ++id) {
      auto page = (*in)->DescribePage(id);
      REQUIRE(page.ok());
      for (const InspectedEntry& e : page->entries) {
        if (e.key_overflow && page->kind_name == "leaf") {
          CHECK(e.key == victim);
          CHECK(e.key_len == victim.size());
          run = e.key_overflow_page;
        }
      }
    }
  }
  REQUIRE(run.has_value());
  // Flip a byte in the run's second page (one checksum covers the whole run).
  {
    auto f = env->OpenFile("/dmg.redb", FileOpenOptions{});
    REQUIRE(f.ok());
    char byte = 0;
    size_t n = 0;
    const uint64_t at = (*run + 1) * ps + 100;
    REQUIRE((*f)->Read(at, 1, &byte, &n).ok());
    byte = static_cast<char>(byte ^ 0x20);
    REQUIRE((*f)->Write(at, std::string_view(&byte, 1)).ok());
    REQUIRE((*f)->Sync().ok());
  }
  MESSAGE("damaged the key run at page " << *run);
  const std::string page_name = "page " + std::to_string(*run);
  auto db = OpenOrDie(env.get(), "/dmg.redb", ps);
  auto report = db->CheckIntegrity();
  REQUIRE_FALSE(report.ok());
  CHECK(report.status().IsCorruption());
  CHECK_MESSAGE(Contains(report.status().message(), page_name), report.status().ToString());
  CHECK_MESSAGE(Contains(report.status().message(), "key overflow run"), report.status().ToString());
  // Reads that need the run fail naming it; reads the prefixes decide still work.
  {
    auto r = db->BeginRead();
    auto t = (*r)->OpenTable("t");
    std::string v;
    auto got = (*t)->Get(victim, &v);
    REQUIRE_FALSE(got.ok());
    CHECK_MESSAGE(Contains(got.status().message(), page_name), got.status().ToString());
    CHECK((*t)->Get("short7", &v).value());
  }
  // The offline inspector reports it too.
  auto in = Inspector::Open("/dmg.redb", env.get());
  REQUIRE(in.ok());
  const InspectionReport rep = (*in)->Inspect();
  CHECK_FALSE(rep.healthy());
  bool named = false;
  for (const std::string& p : rep.problems) named = named || Contains(p, page_name);
  CHECK_MESSAGE(named, (rep.problems.empty() ? std::string("no problems") : rep.problems.front()));
  auto leaf_page = (*in)->DescribePage(*run);
  REQUIRE(leaf_page.ok());
  CHECK_FALSE(leaf_page->checksum_ok);
}

TEST_CASE("long keys: compaction moves key runs and long separators") {
  const uint32_t ps = 512;
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/compact.redb", ps);
  std::set<std::string> model = PrefixFamily(ps, 2 * ps + 1);
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    for (int i = 0; i < 300; ++i)
      REQUIRE((*t)->Insert("filler" + std::to_string(i), std::string(200, 'f')).ok());
    for (const std::string& k : model) REQUIRE((*t)->Insert(k, "v").ok());
    REQUIRE((*w)->Commit().ok());
  }
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    KeyRange fillers = KeyRange::Prefix("filler");
    REQUIRE((*t)->RemoveRange(fillers).ok());
    REQUIRE((*w)->Commit().ok());
  }
  const uint64_t before = FileSize(env.get(), "/compact.redb");
  Status s = db->Compact();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  RequireIntegrity(*db);
  CHECK(FileSize(env.get(), "/compact.redb") < before);
  auto r = db->BeginRead();
  auto t = (*r)->OpenTable("t");
  CHECK(Keys(**t) == std::vector<std::string>(model.begin(), model.end()));
}

}  // namespace rocky::engine::testing
