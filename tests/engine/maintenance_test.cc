// Maintenance: Compact, GetStats, CheckIntegrity against corruption, and refusing files that are not ours,
// truncated or too new (without changing them).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "btree/node.h"
#include "db/commit_slot.h"
#include "engine_test_util.h"
#include "page/page_layout.h"
#include "rocky/engine/db.h"
#include "rocky/engine/env.h"
#include "util/checksum.h"
#include "util/coding.h"

namespace rocky::engine::testing {
namespace {

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string ReadImage(Env* env, const std::string& path) {
  auto f = env->OpenFile(path, FileOpenOptions{});
  REQUIRE(f.ok());
  const uint64_t size = (*f)->Size().value();
  std::string out(size, '\0');
  size_t n = 0;
  REQUIRE((*f)->Read(0, size, out.data(), &n).ok());
  REQUIRE(n == size);
  return out;
}

void WriteImage(Env* env, const std::string& path, const std::string& image) {
  FileOpenOptions fo;
  fo.create = true;
  auto f = env->OpenFile(path, fo);
  REQUIRE(f.ok());
  REQUIRE((*f)->Truncate(0).ok());
  REQUIRE((*f)->Write(0, image).ok());
  REQUIRE((*f)->Sync().ok());
}

std::string Key(int i) {
  char buf[32];
  snprintf(buf, sizeof buf, "key-%07d", i);
  return buf;
}

// n keys of ~100 bytes in table `name`, in one commit.
void Fill(Database& db, const std::string& name, int n, size_t value_size = 100) {
  auto w = db.BeginWrite();
  REQUIRE(w.ok());
  auto t = (*w)->OpenTable(name);
  REQUIRE(t.ok());
  for (int i = 0; i < n; ++i) REQUIRE((*t)->Insert(Key(i), MakeValue(i, value_size)).ok());
  REQUIRE((*w)->Commit().ok());
}

void RemoveMost(Database& db, const std::string& name, int n) {
  auto w = db.BeginWrite();
  auto t = (*w)->OpenTable(name);
  for (int i = 0; i < n; ++i) {
    if (i % 10 != 0) REQUIRE((*t)->Remove(Key(i)).ok());
  }
  REQUIRE((*w)->Commit().ok());
}

Options MemOptions(Env* env, uint32_t page_size = 4096) {
  Options o;
  o.env = env;
  o.page_size = page_size;
  return o;
}

}  // namespace

TEST_CASE("maintenance: Compact shrinks the file after most keys are deleted, contents unchanged") {
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/c.redb");
  Fill(*db, "big", 20000);
  Fill(*db, "small", 50, 5000);  // overflow runs too
  const uint64_t full = FileSize(env.get(), "/c.redb");
  RemoveMost(*db, "big", 20000);
  const Tables before = DumpDb(*db);
  const uint64_t before_size = FileSize(env.get(), "/c.redb");
  REQUIRE(db->Compact().ok());
  const uint64_t after_size = FileSize(env.get(), "/c.redb");
  MESSAGE("full " << full << " B, after deleting 90% " << before_size << " B, compacted " << after_size
                  << " B");
  CHECK(after_size < before_size / 3);
  CHECK(Diff(DumpDb(*db), before).empty());
  RequireIntegrity(*db);
  auto stats = db->GetStats();
  REQUIRE(stats.ok());
  CHECK(stats->file_pages * 4096 == after_size);
  // Compacting a compacted file changes nothing.
  REQUIRE(db->Compact().ok());
  CHECK(FileSize(env.get(), "/c.redb") == after_size);
  REQUIRE(db->Close().ok());
  db = OpenOrDie(env.get(), "/c.redb");
  CHECK(Diff(DumpDb(*db), before).empty());
  RequireIntegrity(*db);
  // The compacted file keeps working.
  Fill(*db, "big", 3000);
  RequireIntegrity(*db);
}

TEST_CASE("maintenance: Compact on the POSIX Env") {
  TempDir dir;
  const std::string path = dir.path() + "/sub/dir/p.redb";  // parent directories are created
  Options o;
  o.page_size = 4096;
  Tables before;
  uint64_t before_size = 0;
  {
    auto db = Database::Open(path, o);
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    Fill(**db, "big", 8000);
    RemoveMost(**db, "big", 8000);
    before = DumpDb(**db);
    before_size = std::filesystem::file_size(path);
    REQUIRE((*db)->Compact().ok());
    CHECK(std::filesystem::file_size(path) < before_size / 2);
    CHECK(Diff(DumpDb(**db), before).empty());
    RequireIntegrity(**db);
    REQUIRE((*db)->Close().ok());
  }
  auto db = Database::Open(path, o);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  CHECK(Diff(DumpDb(**db), before).empty());
  RequireIntegrity(**db);
  MESSAGE("posix: " << before_size << " B -> " << std::filesystem::file_size(path) << " B");
}

// Holes of the file at path that end before its last byte of data (a hole at the very end, left by extending
// the file, is not counted).
int InnerHoles(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  const off_t size = lseek(fd, 0, SEEK_END);
  int holes = 0;
  off_t at = 0;
  while (at < size) {
    const off_t hole = lseek(fd, at, SEEK_HOLE);
    if (hole < 0 || hole >= size) break;
    const off_t data = lseek(fd, hole, SEEK_DATA);
    if (data < 0) break;  // ENXIO: no data after it, a trailing hole
    ++holes;
    at = data;
  }
  close(fd);
  return holes;
}

// True when the file system at dir reports a hole in a sparse file (SEEK_HOLE is allowed to see none).
bool ReportsHoles(const std::string& dir) {
  const std::string probe = dir + "/probe";
  const int fd = open(probe.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(pwrite(fd, "x", 1, 1 << 20) == 1);
  const bool reports = lseek(fd, 0, SEEK_HOLE) == 0;
  close(fd);
  std::filesystem::remove(probe);
  return reports;
}

TEST_CASE(
    "maintenance: a commit that leaves short runs of free pages past the old end fills them (no holes)") {
  // Removing half the keys in random order copies every leaf, then merges some of the copies late in the
  // commit: the pages it frees again lie between written pages. Left as holes, the file has an extent per
  // written piece and Compact's truncation frees them one by one (bench/README.md, "Compaction").
  TempDir dir;
  if (!ReportsHoles(dir.path())) {
    MESSAGE("the file system of " << dir.path() << " reports no holes: nothing to check");
    return;
  }
  const std::string path = dir.path() + "/h.redb";
  Options o;
  o.page_size = 4096;
  auto db = Database::Open(path, o);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  std::vector<int> order(20000);
  for (int i = 0; i < 20000; ++i) order[i] = i;
  std::mt19937_64 rng(7);
  std::shuffle(order.begin(), order.end(), rng);
  {
    auto w = (*db)->BeginWrite();
    REQUIRE(w.ok());
    auto t = (*w)->OpenTable("t");
    REQUIRE(t.ok());
    for (int i : order) REQUIRE((*t)->Insert(Key(i), MakeValue(i, 150)).ok());
    REQUIRE((*w)->Commit().ok());
  }
  std::shuffle(order.begin(), order.end(), rng);
  {
    auto w = (*db)->BeginWrite();
    REQUIRE(w.ok());
    auto t = (*w)->OpenTable("t");
    REQUIRE(t.ok());
    for (int j = 0; j < 10000; ++j) REQUIRE((*t)->Remove(Key(order[j])).ok());
    REQUIRE((*w)->Commit().ok());
  }
  const Tables before = DumpDb(**db);
  CHECK(InnerHoles(path) == 0);
  // The filled pages read as the holes did: the file still opens, checks and compacts.
  RequireIntegrity(**db);
  REQUIRE((*db)->Compact().ok());
  REQUIRE((*db)->Close().ok());
  db = Database::Open(path, o);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  CHECK(Diff(DumpDb(**db), before).empty());
  RequireIntegrity(**db);
}

TEST_CASE("maintenance: Compact refuses while transactions are open") {
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/b.redb");
  Fill(*db, "t", 100);
  {
    auto r = db->BeginRead();
    REQUIRE(r.ok());
    Status s = db->Compact();
    CHECK(s.IsBusy());
    CHECK_MESSAGE(Contains(s.message(), "read"), s.ToString());
  }
  {
    auto w = db->BeginWrite();
    REQUIRE(w.ok());
    CHECK(db->Compact().IsBusy());
  }
  CHECK(db->Compact().ok());
  // Close refuses too, until the transactions are gone.
  {
    auto r = db->BeginRead();
    CHECK(db->Close().IsBusy());
  }
  CHECK(db->Close().ok());
}

TEST_CASE("maintenance: GetStats reports plausible numbers") {
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/s.redb", 512);
  auto empty = db->GetStats();
  REQUIRE(empty.ok());
  CHECK(empty->tables == 0);
  CHECK(empty->entries == 0);
  CHECK(empty->header_pages == 3);
  CHECK(empty->tree_depth == 0);
  CHECK(empty->freemap_pages == 2);

  Fill(*db, "a", 3000, 20);
  uint64_t overflow_expected = 0;
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("blobs");
    for (int i = 0; i < 10; ++i) {
      const size_t len = 1000 + 700 * static_cast<size_t>(i);
      REQUIRE((*t)->Insert(Key(i), std::string(len, 'b')).ok());
      overflow_expected += OverflowRunPages(len, 512);
    }
    REQUIRE((*w)->Commit().ok());
  }
  auto stats = db->GetStats();
  REQUIRE(stats.ok());
  CHECK(stats->page_size == 512);
  CHECK(stats->tables == 2);
  CHECK(stats->entries == 3010);
  CHECK(stats->overflow_pages == overflow_expected);
  CHECK(stats->tree_depth >= 3);
  CHECK(stats->leaf_pages > 3000 * 30 / 512);
  CHECK(stats->branch_pages >= 2);
  CHECK(stats->key_bytes == 3010 * Key(0).size());
  CHECK(stats->value_bytes > 3000 * 20);
  CHECK(stats->file_pages * 512 == FileSize(env.get(), "/s.redb"));
  CHECK(stats->header_pages + stats->branch_pages + stats->leaf_pages + stats->overflow_pages +
            stats->freemap_pages + stats->free_pages ==
        stats->file_pages);
  CHECK(stats->fragmentation >= 0.0);
  CHECK(stats->fragmentation <= 1.0);
  const uint64_t commit = stats->last_commit_id;

  // Deleting half the keys leaves free pages and more fragmentation.
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("a");
    for (int i = 0; i < 3000; i += 2) REQUIRE((*t)->Remove(Key(i)).ok());
    REQUIRE((*w)->DeleteTable("blobs").ok());
    REQUIRE((*w)->Commit().ok());
  }
  auto later = db->GetStats();
  REQUIRE(later.ok());
  CHECK(later->entries == 1500);
  CHECK(later->tables == 1);
  CHECK(later->overflow_pages == 0);
  CHECK(later->free_pages > overflow_expected);
  CHECK(later->last_commit_id > commit);
  CHECK(later->fragmentation > stats->fragmentation);
  auto report = db->CheckIntegrity();
  REQUIRE(report.ok());
  CHECK(report->entries_checked == 1500);
  CHECK(report->tables_checked == 1);
  CHECK(report->pages_checked == later->file_pages - later->free_pages);
}

namespace {

// The file at path (in env) gets one flipped byte in a leaf of table "victim"; every read and write that
// reaches that leaf must then fail with Corruption naming the page and the table, never return its bytes.
void CorruptLeafIsReported(Env* env, const std::string& path) {
  const uint32_t ps = 512;
  {
    auto db = OpenOrDie(env, path, ps);
    auto w = db->BeginWrite();
    auto victim = (*w)->OpenTable("victim");
    auto other = (*w)->OpenTable("other");
    for (int i = 0; i < 400; ++i) {
      REQUIRE((*victim)->Insert(Key(i), MakeValue(i, 30)).ok());
      REQUIRE((*other)->Insert(Key(i), MakeValue(i + 1, 30)).ok());
    }
    REQUIRE((*w)->Commit().ok());
    REQUIRE(db->Close().ok());
  }
  // Find a leaf of "victim" in the middle of its key range: one commit wrote every page, so every leaf found
  // is reachable. Victim values are MakeValue(i, 30), other's MakeValue(i + 1, 30).
  std::string image = ReadImage(env, path);
  std::optional<uint64_t> target;
  std::string first_key;
  for (uint64_t id = kFirstDataPageId; id * ps < image.size() && !target; ++id) {
    char* page = image.data() + id * ps;
    if (GetPageKind(page) != PageKind::kLeaf) continue;
    NodePage node(page, ps);
    if (node.count() < 2) continue;
    const LeafEntry e = node.leaf_entry(0);
    if (e.key.bytes.substr(0, 4) != "key-") continue;  // a catalog leaf
    const int i = std::stoi(std::string(e.key.bytes.substr(4)));
    if (i < 100 || e.inline_value != MakeValue(i, 30)) continue;
    target = id;
    first_key = std::string(e.key.bytes);
  }
  REQUIRE(target.has_value());
  // Flip one byte of a value in that page.
  image[*target * ps + ps - 3] ^= 0x40;
  WriteImage(env, path, image);

  auto db = OpenOrDie(env, path, ps);  // opening does not read the trees
  const std::string page_name = "page " + std::to_string(*target);
  auto r = db->BeginRead();
  REQUIRE(r.ok());
  auto victim = (*r)->OpenTable("victim");
  REQUIRE(victim.ok());
  // A point read of a key on that page.
  std::string v;
  auto got = (*victim)->Get(first_key, &v);
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().IsCorruption());
  CHECK_MESSAGE(Contains(got.status().message(), page_name), got.status().ToString());
  CHECK_MESSAGE(Contains(got.status().message(), "victim"), got.status().ToString());
  // A scan stops at that page with the error, after yielding only correct entries.
  auto c = (*victim)->NewCursor();
  int seen = 0;
  for (c->SeekToFirst(); c->Valid(); c->Next(), ++seen) {
    const int i = std::stoi(std::string(c->key().substr(4)));
    REQUIRE(c->value() == MakeValue(i, 30));
  }
  CHECK(seen < 400);
  CHECK(c->status().IsCorruption());
  CHECK_MESSAGE(Contains(c->status().message(), page_name), c->status().ToString());
  CHECK_MESSAGE(Contains(c->status().message(), "victim"), c->status().ToString());
  // Backward too.
  seen = 0;
  for (c->SeekToLast(); c->Valid(); c->Prev()) ++seen;
  CHECK(seen < 400);
  CHECK(c->status().IsCorruption());
  // Keys on other pages still read fine, and the other table is intact.
  CHECK((*victim)->Get(Key(0), &v).value_or(false));
  CHECK(v == MakeValue(0, 30));
  auto other = (*r)->OpenTable("other");
  REQUIRE(other.ok());
  auto oc = (*other)->NewCursor();
  seen = 0;
  for (oc->SeekToFirst(); oc->Valid(); oc->Next()) ++seen;
  CHECK(oc->status().ok());
  CHECK(seen == 400);
  r->reset();
  // The integrity check names the page and the table.
  auto report = db->CheckIntegrity();
  REQUIRE_FALSE(report.ok());
  CHECK(report.status().IsCorruption());
  CHECK_MESSAGE(Contains(report.status().message(), page_name), report.status().ToString());
  CHECK_MESSAGE(Contains(report.status().message(), "victim"), report.status().ToString());
  // Writing to the damaged table fails cleanly too (its damaged page cannot be copied).
  auto w = db->BeginWrite();
  REQUIRE(w.ok());
  auto wt = (*w)->OpenTable("victim");
  REQUIRE(wt.ok());
  auto ins = (*wt)->Insert(first_key, "x");
  CHECK(ins.status().IsCorruption());
}

}  // namespace

TEST_CASE("maintenance: a corrupt leaf page is reported as Corruption naming the page and the table") {
  auto env = NewMemoryEnv();
  CorruptLeafIsReported(env.get(), "/x.redb");
}

// The POSIX Env maps the file: readers use its pages in place (no copy, no page object), and the checksum
// must still be verified before the first use of a page's bytes.
TEST_CASE("maintenance: a corrupt leaf page of a memory-mapped file is reported before its bytes are used") {
  TempDir dir;
  CorruptLeafIsReported(Env::Default(), dir.path() + "/x.redb");
}

TEST_CASE("maintenance: a corrupt overflow run is reported, not returned") {
  auto env = NewMemoryEnv();
  const uint32_t ps = 512;
  const std::string big = MakeValue(7, 5000);
  {
    auto db = OpenOrDie(env.get(), "/o.redb", ps);
    auto w = db->BeginWrite();
    REQUIRE((*w)->OpenTable("blobs").value()->Insert("big", big).ok());
    REQUIRE((*w)->Commit().ok());
    // A later commit, so that the run is not on the verify list of the newest commit (recovery would take a
    // damaged page there for a torn commit and open the previous one).
    auto w2 = db->BeginWrite();
    REQUIRE((*w2)->OpenTable("other").value()->Insert("k", "v").ok());
    REQUIRE((*w2)->Commit().ok());
    REQUIRE(db->Close().ok());
  }
  std::string image = ReadImage(env.get(), "/o.redb");
  std::optional<uint64_t> run;
  for (uint64_t id = kFirstDataPageId; id * ps < image.size() && !run; ++id) {
    if (GetPageKind(image.data() + id * ps) == PageKind::kOverflow) run = id;
  }
  REQUIRE(run.has_value());
  REQUIRE(PageAux(image.data() + *run * ps) == OverflowRunPages(big.size(), ps));
  REQUIRE((*run + 4) * ps <= image.size());
  image[(*run + 3) * ps + 100] ^= 1;  // inside the run, past its first page
  WriteImage(env.get(), "/o.redb", image);
  auto db = OpenOrDie(env.get(), "/o.redb", ps);
  auto r = db->BeginRead();
  REQUIRE(r.ok());
  auto blobs = (*r)->OpenTable("blobs");
  REQUIRE_MESSAGE(blobs.ok(), blobs.status().ToString());
  std::string v;
  auto got = (*blobs)->Get("big", &v);
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().IsCorruption());
  CHECK_MESSAGE(Contains(got.status().message(), "page " + std::to_string(*run)), got.status().ToString());
  r->reset();
  CHECK(db->CheckIntegrity().status().IsCorruption());
}

TEST_CASE("maintenance: files that are not ours, truncated or too new are refused and left unchanged") {
  auto env = NewMemoryEnv();
  auto open_both_ways = [&](const std::string& path) {
    std::vector<Status> out;
    Options rw = MemOptions(env.get());
    out.push_back(Database::Open(path, rw).status());
    Options ro = rw;
    ro.read_only = true;
    out.push_back(Database::Open(path, ro).status());
    return out;
  };

  SUBCASE("random bytes") {
    std::mt19937_64 rng(5);
    std::string junk(20000, '\0');
    for (char& ch : junk) ch = static_cast<char>(rng());
    WriteImage(env.get(), "/junk", junk);
    for (const Status& s : open_both_ways("/junk")) {
      CHECK(s.code() == Status::Code::kInvalidArgument);
      CHECK_MESSAGE(Contains(s.message(), "not a rocky database"), s.ToString());
      CHECK_MESSAGE(Contains(s.message(), "/junk"), s.ToString());
    }
    CHECK(ReadImage(env.get(), "/junk") == junk);
  }

  SUBCASE("a short text file") {
    WriteImage(env.get(), "/text", "hello\n");
    for (const Status& s : open_both_ways("/text")) CHECK(s.code() == Status::Code::kInvalidArgument);
    CHECK(ReadImage(env.get(), "/text") == "hello\n");
  }

  SUBCASE("a truncated file") {
    const uint32_t ps = 4096;
    {
      auto db = OpenOrDie(env.get(), "/t.redb", ps);
      // The last commit is too large for the one-sync path: its pages were synced before its slot, so a
      // file shorter than its page count was cut afterwards.
      Fill(*db, "t", 30000, 60);
      REQUIRE(db->Close().ok());
    }
    std::string image = ReadImage(env.get(), "/t.redb");
    bool synced = false;
    for (uint64_t id : kSlotPageIds) {
      auto s = DecodeCommitSlot(image.data() + id * ps, id, ps);
      if (s && s->txn_id == 2) synced = s->synced_before_slot;
    }
    REQUIRE(synced);
    image.resize(image.size() - 3 * ps);
    WriteImage(env.get(), "/t.redb", image);
    for (const Status& s : open_both_ways("/t.redb")) {
      CHECK(s.IsCorruption());
      CHECK_MESSAGE(Contains(s.message(), "truncated"), s.ToString());
    }
    CHECK(ReadImage(env.get(), "/t.redb") == image);
  }

  SUBCASE("a newer format version") {
    {
      auto db = OpenOrDie(env.get(), "/n.redb");
      Fill(*db, "t", 10);
      REQUIRE(db->Close().ok());
    }
    std::string image = ReadImage(env.get(), "/n.redb");
    EncodeU32(image.data() + kHeaderVersionOffset, kFormatVersion + 1);
    EncodeU64(image.data() + kHeaderChecksumOffset,
              XXH3_64bits_withSeed(image.data(), kHeaderChecksumOffset, 0));
    WriteImage(env.get(), "/n.redb", image);
    for (const Status& s : open_both_ways("/n.redb")) {
      CHECK(s.code() == Status::Code::kNotSupported);
      CHECK_MESSAGE(Contains(s.message(), "version " + std::to_string(kFormatVersion + 1)), s.ToString());
    }
    CHECK(ReadImage(env.get(), "/n.redb") == image);
  }

  SUBCASE("a damaged super-header") {
    {
      auto db = OpenOrDie(env.get(), "/h.redb");
      Fill(*db, "t", 10);
      REQUIRE(db->Close().ok());
    }
    std::string image = ReadImage(env.get(), "/h.redb");
    image[kHeaderPageSizeOffset] ^= 1;  // checksum no longer matches
    WriteImage(env.get(), "/h.redb", image);
    for (const Status& s : open_both_ways("/h.redb")) CHECK(s.IsCorruption());
    CHECK(ReadImage(env.get(), "/h.redb") == image);
  }

  SUBCASE("both commit slots damaged") {
    {
      auto db = OpenOrDie(env.get(), "/d.redb");
      Fill(*db, "t", 10);
      Fill(*db, "u", 10);
      REQUIRE(db->Close().ok());
    }
    std::string image = ReadImage(env.get(), "/d.redb");
    image[1 * 4096 + 100] ^= 1;
    image[2 * 4096 + 100] ^= 1;
    WriteImage(env.get(), "/d.redb", image);
    for (const Status& s : open_both_ways("/d.redb")) CHECK(s.IsCorruption());
    CHECK(ReadImage(env.get(), "/d.redb") == image);
  }
}

TEST_CASE("maintenance: a file that is not ours is refused on the POSIX Env and left unchanged") {
  TempDir dir;
  const std::string path = dir.path() + "/notes.txt";
  const std::string text(5000, 'z');
  {
    std::ofstream f(path, std::ios::binary);
    f << text;
  }
  auto db = Database::Open(path, Options{});
  REQUIRE_FALSE(db.ok());
  CHECK(db.status().code() == Status::Code::kInvalidArgument);
  std::ifstream in(path, std::ios::binary);
  const std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(after == text);
  // And a missing file with create_if_missing = false is NotFound, creating nothing.
  Options no_create;
  no_create.create_if_missing = false;
  CHECK(Database::Open(dir.path() + "/absent.redb", no_create).status().IsNotFound());
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/absent.redb"));
}

}  // namespace rocky::engine::testing
