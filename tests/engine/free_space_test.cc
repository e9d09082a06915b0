// Free space is reused: rewriting the same keys over and over keeps the file within a small constant factor
// of its compacted size, and a long-lived reader only holds space while it lives.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "engine_test_util.h"
#include "rocky/engine/db.h"
#include "rocky/engine/env.h"

namespace rocky::engine::testing {
namespace {

constexpr int kKeys = 10000;
const std::string kPath = "/free.redb";

std::string Key24(uint64_t i) {
  char buf[32];
  snprintf(buf, sizeof buf, "user:%019llu", static_cast<unsigned long long>(i));  // 24 bytes
  return buf;
}

std::string Value150(uint64_t i, uint64_t version) {
  return MakeValue(i * 1000003 + version, 140 + (i + version) % 21);
}

void Load(Database& db) {
  auto w = db.BeginWrite();
  REQUIRE(w.ok());
  auto t = (*w)->OpenTable("t");
  REQUIRE(t.ok());
  for (int i = 0; i < kKeys; ++i) REQUIRE((*t)->Insert(Key24(i), Value150(i, 0)).ok());
  REQUIRE((*w)->Commit().ok());
}

// One commit rewriting `n` random keys with new values.
void Rewrite(Database& db, std::mt19937_64& rng, uint64_t version, int n, Durability durability) {
  WriteOptions wo;
  wo.durability = durability;
  auto w = db.BeginWrite(wo);
  REQUIRE(w.ok());
  auto t = (*w)->OpenTable("t");
  REQUIRE(t.ok());
  for (int i = 0; i < n; ++i) {
    const uint64_t k = rng() % kKeys;
    REQUIRE((*t)->Insert(Key24(k), Value150(k, version)).ok());
  }
  Status s = (*w)->Commit();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
}

// File size after compaction, with the contents checked unchanged.
uint64_t CompactedSize(Env* env, Database& db) {
  const Tables before = DumpDb(db);
  Status s = db.Compact();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  REQUIRE(Diff(DumpDb(db), before).empty());
  RequireIntegrity(db);
  return FileSize(env, kPath);
}

}  // namespace

TEST_CASE("free space: 100,000 commits rewriting 10,000 keys (kNoSync, durable every 1000)") {
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), kPath);
  Load(*db);
  const uint64_t loaded = FileSize(env.get(), kPath);
  std::mt19937_64 rng(1);
  uint64_t largest = 0;
  for (uint64_t c = 1; c <= 100000; ++c) {
    Rewrite(*db, rng, c, 2, c % 1000 == 0 ? Durability::kDurable : Durability::kNoSync);
    if (c % 500 == 0) largest = std::max(largest, FileSize(env.get(), kPath));
  }
  const uint64_t before_compact = FileSize(env.get(), kPath);
  const uint64_t compacted = CompactedSize(env.get(), *db);
  const double ratio = static_cast<double>(largest) / static_cast<double>(compacted);
  MESSAGE("kNoSync x100000: loaded " << loaded << " B, largest " << largest << " B, at the end "
                                     << before_compact << " B, compacted " << compacted
                                     << " B: largest/compacted = " << ratio);
  CHECK(ratio <= 3.0);
}

TEST_CASE("free space: 5,000 durable commits rewriting 10,000 keys") {
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), kPath);
  Load(*db);
  std::mt19937_64 rng(2);
  uint64_t largest = 0;
  uint64_t at_half = 0;
  for (uint64_t c = 1; c <= 5000; ++c) {
    Rewrite(*db, rng, c, 3, Durability::kDurable);
    if (c % 100 == 0) largest = std::max(largest, FileSize(env.get(), kPath));
    if (c == 2500) at_half = FileSize(env.get(), kPath);
  }
  const uint64_t at_end = FileSize(env.get(), kPath);
  // The tree itself grows a little after the sequential load (its leaves split towards a steady fill), but
  // free pages stay few: each commit reuses what the previous ones freed.
  auto before_compact = db->GetStats();
  REQUIRE(before_compact.ok());
  MESSAGE("durable x5000: " << before_compact->free_pages << " of " << before_compact->file_pages
                            << " pages free before compaction");
  CHECK(before_compact->free_pages * 20 < before_compact->file_pages);
  const uint64_t compacted = CompactedSize(env.get(), *db);
  const double ratio = static_cast<double>(largest) / static_cast<double>(compacted);
  MESSAGE("durable x5000: largest " << largest << " B, compacted " << compacted
                                    << " B: largest/compacted = " << ratio << "; size at commit 2500 "
                                    << at_half << " B, at 5000 " << at_end << " B");
  CHECK(ratio <= 3.0);
}

TEST_CASE("free space: a durable commit after kNoSync commits reuses the pages they freed") {
  // The no-sync commits copy most leaves; the pages of the loaded (durable) tree they free must stay intact
  // until a durable commit. The durable commit that follows makes them durable first, so its own copies of
  // every leaf land in those pages instead of past the end of the file.
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), kPath);
  Load(*db);
  std::mt19937_64 rng(5);
  for (uint64_t c = 1; c <= 20; ++c) Rewrite(*db, rng, c, 1000, Durability::kNoSync);
  const uint64_t after_nosync = FileSize(env.get(), kPath);
  {
    auto w = db->BeginWrite();
    REQUIRE(w.ok());
    auto t = (*w)->OpenTable("t");
    REQUIRE(t.ok());
    for (int i = 0; i < kKeys; ++i) REQUIRE((*t)->Insert(Key24(i), Value150(i, 100)).ok());  // every leaf
    REQUIRE((*w)->Commit().ok());
  }
  const uint64_t after_durable = FileSize(env.get(), kPath);
  MESSAGE("after 20 kNoSync commits " << after_nosync << " B, after the durable rewrite " << after_durable
                                      << " B");
  CHECK(after_durable * 50 <= after_nosync * 51);
  // The no-sync commits and the durable one survive a reopen.
  const Tables before = DumpDb(*db);
  REQUIRE(db->Close().ok());
  db = OpenOrDie(env.get(), kPath);
  CHECK(Diff(DumpDb(*db), before).empty());
  RequireIntegrity(*db);
}

TEST_CASE("free space: a long-lived reader holds freed pages only while it lives") {
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), kPath);
  Load(*db);
  std::mt19937_64 rng(3);
  for (uint64_t c = 1; c <= 300; ++c) Rewrite(*db, rng, c, 3, Durability::kDurable);  // steady state
  const uint64_t steady = FileSize(env.get(), kPath);

  auto reader = db->BeginRead();
  REQUIRE(reader.ok());
  const Tables snapshot = DumpSnapshot(**reader);
  for (uint64_t c = 301; c <= 1300; ++c) Rewrite(*db, rng, c, 3, Durability::kDurable);
  const uint64_t with_reader = FileSize(env.get(), kPath);
  // The reader's snapshot is intact although its pages were freed long ago.
  CHECK(Diff(DumpSnapshot(**reader), snapshot).empty());
  reader->reset();

  for (uint64_t c = 1301; c <= 1400; ++c) Rewrite(*db, rng, c, 3, Durability::kDurable);  // reuse begins
  const uint64_t after_release = FileSize(env.get(), kPath);
  for (uint64_t c = 1401; c <= 3400; ++c) Rewrite(*db, rng, c, 3, Durability::kDurable);
  const uint64_t later = FileSize(env.get(), kPath);
  MESSAGE("steady " << steady << " B; after 1000 commits with a reader " << with_reader
                    << " B; 100 commits after its "
                    << "release " << after_release << " B; 2000 commits later " << later << " B");
  CHECK(with_reader > steady);    // the reader did hold pages
  CHECK(later == after_release);  // and once it is gone the file stops growing
  const uint64_t compacted = CompactedSize(env.get(), *db);
  MESSAGE("compacted " << compacted << " B");
  CHECK(compacted < with_reader);
}

TEST_CASE("free space: rewriting and removing huge keys leaks no page") {
  // Keys of 2 to 40 KiB (runs of their own) whose values change size, are replaced, removed and re-inserted:
  // every key run and value run freed must be reusable, so the file stops growing, the integrity check (which
  // also proves every used page reachable exactly once) passes, and removing everything leaves no run.
  const uint32_t ps = 4096;
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), kPath, ps);
  std::mt19937_64 rng(4);
  auto huge_key = [](uint64_t i) { return std::string(2048 + i * 1531 % 38000, 'h') + std::to_string(i); };
  Table model;
  uint64_t size_at_300 = 0;
  for (uint64_t c = 1; c <= 900; ++c) {
    auto w = db->BeginWrite();
    REQUIRE(w.ok());
    auto t = (*w)->OpenTable("t");
    for (int op = 0; op < 3; ++op) {
      const uint64_t i = rng() % 24;
      const std::string k = huge_key(i);
      if (rng() % 3 == 0) {
        REQUIRE((*t)->Remove(k).ok());
        model.erase(k);
      } else {
        const std::string v = MakeValue(c * 31 + i, rng() % 2 == 0 ? rng() % 100 : 1000 + rng() % 9000);
        REQUIRE((*t)->Insert(k, v).ok());
        model[k] = v;
      }
    }
    REQUIRE((*w)->Commit().ok());
    if (c % 150 == 0) {
      RequireIntegrity(*db);
      REQUIRE(Diff(DumpDb(*db), Tables{{"t", model}}).empty());
    }
    if (c == 300) size_at_300 = FileSize(env.get(), kPath);
  }
  const uint64_t size_at_900 = FileSize(env.get(), kPath);
  auto stats = db->GetStats();
  REQUIRE(stats.ok());
  MESSAGE("huge keys: " << model.size() << " keys, " << stats->key_overflow_pages << " key run pages of "
                        << stats->overflow_pages << " overflow pages; file " << size_at_300
                        << " B at commit 300, " << size_at_900 << " B at 900, " << stats->free_pages << " of "
                        << stats->file_pages << " pages free");
  CHECK(stats->key_overflow_pages > 0);
  // Steady state: 600 more commits of the same churn barely grow the file.
  CHECK(size_at_900 <= size_at_300 + size_at_300 / 4);
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("t");
    REQUIRE((*t)->RemoveRange(KeyRange::All()).value() == model.size());
    REQUIRE((*w)->Commit().ok());
  }
  RequireIntegrity(*db);
  auto empty = db->GetStats();
  REQUIRE(empty.ok());
  CHECK(empty->overflow_pages == 0);
  CHECK(empty->key_overflow_pages == 0);
  CHECK(empty->entries == 0);
  // Every page but the headers, the catalog leaf and the allocator's own pages is free.
  CHECK(empty->free_pages == empty->file_pages - empty->header_pages - empty->leaf_pages -
                                 empty->branch_pages - empty->freemap_pages);
  const uint64_t compacted = CompactedSize(env.get(), *db);
  CHECK(compacted < size_at_900);
}

}  // namespace rocky::engine::testing
