// Database::Open's verdict on a file (issue #16): a read error is never taken for a commit cut by a crash;
// creation is atomic and a file without a commit is an empty database for every open; a discarded newest
// commit is reported and its evidence kept; and Open and the Inspector always reach the same verdict.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "db/commit_slot.h"
#include "db/recovery.h"
#include "engine_test_util.h"
#include "image_util.h"
#include "page/page_layout.h"
#include "rocky/engine/db.h"
#include "rocky/engine/fault_injection_env.h"
#include "rocky/engine/inspect.h"

namespace rocky::engine::testing {
namespace {

using LossMode = FaultInjectionEnv::LossMode;
constexpr uint32_t kPs = 512;

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

Options Opts(Env* env, bool read_only = false, uint32_t page_size = kPs) {
  Options o;
  o.env = env;
  o.page_size = page_size;
  o.read_only = read_only;
  return o;
}

// Commits key "k" = value (a small, one-sync commit).
void Put(Database& db, const std::string& value, const std::string& key = "k") {
  auto w = db.BeginWrite();
  REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  REQUIRE((*w)->OpenTable("t").value()->Insert(key, value).ok());
  Status s = (*w)->Commit();
  REQUIRE_MESSAGE(s.ok(), s.ToString());
}

std::string ValueOf(Database& db, const std::string& key = "k") {
  Tables t = DumpDb(db);
  return t["t"][key];
}

// A file at "/db" holding commits of "v1" then "v2" (both small: the newest one is verified at open by its
// verify list). Returns the newest slot.
CommitSlot TwoCommits(Env* env) {
  {
    auto db = OpenOrDie(env, "/db", kPs);
    Put(*db, "v1");
    Put(*db, "v2");
    REQUIRE(db->Close().ok());
  }
  const CommitSlot newest = NewestSlot(ReadImage(env, "/db"), kPs);
  REQUIRE_FALSE(newest.synced_before_slot);
  REQUIRE_FALSE(newest.verify_list.empty());
  return newest;
}

std::vector<std::string> Names(Env* env, const std::string& dir) {
  auto names = env->ListDir(dir);
  REQUIRE_MESSAGE(names.ok(), names.status().ToString());
  std::vector<std::string> out = names.value();
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Point 1: a read error at open

TEST_CASE("open: a read error at any read of an open fails it with the I/O error and never rolls back") {
  FaultInjectionEnv env;
  const CommitSlot newest = TwoCommits(&env);
  const std::string image = ReadImage(&env, "/db");
  for (bool read_only : {false, true}) {
    CAPTURE(read_only);
    const uint64_t r0 = env.ReadCount();
    {
      auto db = Database::Open("/db", Opts(&env, read_only));
      REQUIRE(db.ok());
      CHECK((*db)->open_report().commit_id == newest.txn_id);
    }
    const uint64_t reads = env.ReadCount() - r0;
    REQUIRE(reads >
            newest.verify_list.size());  // header, slots, the verify list (and for a writer, the freemap)
    int failed = 0;
    for (uint64_t k = 0; k < reads; ++k) {
      CAPTURE(k);
      env.FailReadAt(env.ReadCount() + k);
      auto db = Database::Open("/db", Opts(&env, read_only));
      if (db.ok()) {
        // A read the verdict does not depend on may fail harmlessly; falling back never is.
        CHECK((*db)->open_report().commit_id == newest.txn_id);
        CHECK_FALSE((*db)->open_report().discarded.has_value());
      } else {
        ++failed;
        CHECK_MESSAGE(db.status().code() == Status::Code::kIOError, db.status().ToString());
        CHECK_MESSAGE(Contains(db.status().message(), "/db"), db.status().ToString());
        CHECK_MESSAGE(Contains(db.status().message(), "Input/output error"), db.status().ToString());
      }
      env.ClearFaults();
      db = Result<std::unique_ptr<Database>>(Status::Busy("dropped"));
      CHECK(ReadImage(&env, "/db") == image);  // nothing written
      auto again = Database::Open("/db", Opts(&env, /*read_only=*/true));
      REQUIRE(again.ok());
      CHECK(ValueOf(**again) == "v2");
    }
    CHECK(failed == static_cast<int>(reads));  // every read of an open decides something
  }
  // The message names the page that could not be read.
  for (uint64_t page : newest.verify_list) {
    CAPTURE(page);
    env.FailReadsOf("/db", page * kPs + 100, 1);
    auto db = Database::Open("/db", Opts(&env));
    REQUIRE_FALSE(db.ok());
    CHECK(db.status().code() == Status::Code::kIOError);
    CHECK_MESSAGE(Contains(db.status().message(), "page " + std::to_string(page)), db.status().ToString());
    CHECK_MESSAGE(Contains(db.status().message(), "commit " + std::to_string(newest.txn_id)),
                  db.status().ToString());
    env.ClearFaults();
  }
  // After the errors, a writer's open finds v2 and keeps it.
  auto db = OpenOrDie(&env, "/db", kPs);
  CHECK(ValueOf(*db) == "v2");
  Put(*db, "v3", "other");
  CHECK(ValueOf(*db) == "v2");
}

TEST_CASE("open: a read-only handle's snapshot fails on a read error instead of falling back") {
  FaultInjectionEnv env;
  TwoCommits(&env);
  auto db = Database::Open("/db", Opts(&env, /*read_only=*/true));
  REQUIRE(db.ok());
  env.FailReadsOf("/db", kSlotPageIds[0] * kPs, 2 * kPs);
  auto r = (*db)->BeginRead();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kIOError);
  CHECK(Contains(r.status().message(), "commit slot"));
  env.ClearFaults();
  auto r2 = (*db)->BeginRead();
  REQUIRE(r2.ok());
  auto t = (*r2)->OpenTable("t");
  REQUIRE(t.ok());
  std::string v;
  CHECK((*t)->Get("k", &v).value());
  CHECK(v == "v2");
}

// ---------------------------------------------------------------------------------------------------------
// Point 2 and 17: creation

TEST_CASE("create: an error or a power cut at any op of creation leaves no file or a usable one") {
  for (uint32_t ps : {512u, 4096u}) {
    uint64_t total = 0;
    {
      FaultInjectionEnv env;
      auto db = Database::Open("/dir/db", Opts(&env, false, ps));
      REQUIRE(db.ok());
      CHECK((*db)->open_report().created);
      total = env.OpCount();
    }
    REQUIRE(total >= 8);  // temp file, header, its sync, pages, their sync, slot, its sync, link, dir sync...
    int failures = 0;
    for (uint64_t k = 0; k <= total; ++k) {
      for (int mode = 0; mode < 5; ++mode) {
        CAPTURE(ps);
        CAPTURE(k);
        CAPTURE(mode);
        FaultInjectionEnv env;
        if (mode == 0) {
          env.FailOpAt(k);
        } else {
          env.CrashAfterOps(k);
        }
        auto db = Database::Open("/dir/db", Opts(&env, false, ps));
        const bool opened = db.ok();
        if (!opened) ++failures;
        if (opened) CHECK((*db)->open_report().created);
        db = Result<std::unique_ptr<Database>>(Status::Busy("dropped"));
        if (mode == 0) {
          env.ClearFaults();
          // What Open acknowledged is durable: its directory entry was synced (and that sync's status
          // checked).
          env.PowerLoss(LossMode::kDropAll);
          if (opened) CHECK(env.FileExists("/dir/db").value());
        } else {
          env.PowerLoss(mode == 1   ? LossMode::kDropAll
                        : mode == 2 ? LossMode::kKeepRandom
                                    : LossMode::kTearRandom,
                        k * 31 + mode);
        }
        // Never bricked: a read-only open finds an empty database or no file; a writer's open works.
        auto ro = Database::Open("/dir/db", Opts(&env, true, ps));
        if (!ro.ok()) {
          CHECK_MESSAGE(ro.status().IsNotFound(), ro.status().ToString());
          CHECK_FALSE(opened);
        } else {
          CHECK(DumpDb(**ro).empty());
        }
        ro = Result<std::unique_ptr<Database>>(Status::Busy("dropped"));
        auto rw = Database::Open("/dir/db", Opts(&env, false, ps));
        REQUIRE_MESSAGE(rw.ok(), rw.status().ToString());
        CHECK(DumpDb(**rw).empty());
        RequireIntegrity(**rw);
        Put(**rw, "after");
        // Nothing but the database and, at worst, orphaned temporary files.
        for (const std::string& name : Names(&env, "/dir")) {
          CHECK_MESSAGE((name == "db" || name.rfind("db.tmp-", 0) == 0), name);
        }
      }
    }
    CHECK(failures >= static_cast<int>(total));
  }
}

namespace {

// The FaultInjectionEnv, except that just before the first LinkFile another "process" creates the database
// at the target name (through the base Env, as an unrelated open would) and commits to it.
class RacingEnv final : public EnvWrapper {
 public:
  explicit RacingEnv(FaultInjectionEnv* base) : EnvWrapper(base), base_(base) {}
  Result<bool> LinkFile(const std::string& from, const std::string& to) override {
    if (!raced_) {
      raced_ = true;
      auto theirs = OpenOrDie(base_, to, kPs);
      Put(*theirs, "theirs");
      REQUIRE(theirs->Close().ok());
    }
    return base_->LinkFile(from, to);
  }

 private:
  FaultInjectionEnv* base_;
  bool raced_ = false;
};

}  // namespace

TEST_CASE(
    "create: whatever failed while creating, commits the next writer acknowledges survive a power cut") {
  // Found by the fault trials: the link reached the directory but the directory sync failed, so Open failed;
  // the next open found the file and acknowledged commits to it, and a power cut took the name, never synced,
  // and the commits with it. Every op of the creation fails here, alone and with the op after it.
  uint64_t total = 0;
  {
    FaultInjectionEnv env;
    REQUIRE(Database::Open("/db", Opts(&env)).ok());
    total = env.OpCount();
  }
  for (uint64_t k = 0; k < total; ++k) {
    for (bool two : {false, true}) {
      CAPTURE(k);
      CAPTURE(two);
      FaultInjectionEnv env;
      env.FailOpAt(k);
      if (two) env.FailOpAt(k + 1);
      (void)Database::Open("/db", Opts(&env));
      env.ClearFaults();
      {
        auto db = OpenOrDie(&env, "/db", kPs);
        Put(*db, "acknowledged");
      }
      env.PowerLoss(LossMode::kDropAll);
      REQUIRE(env.FileExists("/db").value());
      auto db = OpenOrDie(&env, "/db", kPs);
      CHECK(ValueOf(*db) == "acknowledged");
    }
  }
}

TEST_CASE("create: a file another process created meanwhile is opened, never replaced") {
  FaultInjectionEnv base;
  RacingEnv env(&base);
  auto db = Database::Open("/db", Opts(&env));
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  CHECK_FALSE((*db)->open_report().created);
  CHECK(ValueOf(**db) == "theirs");
  CHECK(Names(&base, "/") == std::vector<std::string>{"db"});  // our temporary file is gone
}

namespace {

// The FaultInjectionEnv, counting directory syncs and failing them on request.
class DirSyncEnv final : public EnvWrapper {
 public:
  explicit DirSyncEnv(FaultInjectionEnv* base) : EnvWrapper(base) {}
  Status SyncDir(const std::string& dir) override {
    ++syncs;
    if (fail) return Status::IOError("injected directory sync failure");
    return EnvWrapper::SyncDir(dir);
  }

  int syncs = 0;
  bool fail = false;
};

}  // namespace

TEST_CASE("a read-write open syncs no directory; the first durable commit does, before writing anything") {
  FaultInjectionEnv base;
  {
    auto db = OpenOrDie(&base, "/made", kPs);
    Put(*db, "v1");
  }
  // A file renamed into place by someone else: its name is not durable until a directory sync.
  REQUIRE(base.RenameFile("/made", "/db").ok());
  DirSyncEnv env(&base);
  {
    auto db = OpenOrDie(&env, "/db", kPs);
    CHECK(ValueOf(*db) == "v1");
    CHECK(env.syncs == 0);  // opening, reading and closing: no fsync
  }
  auto db = OpenOrDie(&env, "/db", kPs);
  env.fail = true;
  {
    auto w = db->BeginWrite();
    REQUIRE(w.ok());
    REQUIRE((*w)->OpenTable("t").value()->Insert("k", "v2").ok());
    const Status s = (*w)->Commit();
    CHECK(s.code() == Status::Code::kIOError);
    CHECK_MESSAGE(Contains(s.message(), "not committed; the state is unchanged"), s.ToString());
    CHECK_MESSAGE(Contains(s.message(), "making the directory entry of /db durable"), s.ToString());
  }
  CHECK(ValueOf(*db) == "v1");  // nothing written: the last commit is current, and the handle still works
  env.fail = false;
  Put(*db, "v3");
  Put(*db, "v4");
  CHECK(env.syncs == 2);  // the failed sync, then one for the handle's first commit; none after
  db.reset();
  base.PowerLoss(LossMode::kDropAll);
  REQUIRE(base.FileExists("/db").value());
  auto again = OpenOrDie(&base, "/db", kPs);
  CHECK(ValueOf(*again) == "v4");
}

TEST_CASE("files without a commit are an empty database for every open, and a writer initialises them") {
  const NewFileImage img = MakeNewFileImage(kPs);
  std::string freemap;
  for (const PageRef& p : img.freemap) freemap.append(p->data(), p->size);
  const std::string blank(kPs, '\0');
  std::string torn_a(kPs, '\0');
  EncodeCommitSlot(img.slot, kSlotPageIds[0], kPs, torn_a.data());
  torn_a.replace(0, 8, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);  // checksum broken: a torn slot A
  struct Case {
    const char* name;
    std::string image;
  };
  const std::vector<Case> cases = {
      {"zero length", ""},
      {"all zero, three pages", std::string(3 * kPs, '\0')},
      {"all zero, 64 KiB", std::string(65536, '\0')},
      {"the header's first 100 bytes", img.header.substr(0, 100)},
      {"header only", img.header},
      {"header and blank slots", img.header + blank + blank},
      {"header, blank slots, allocator pages", img.header + blank + blank + freemap},
      {"header, torn slot A, blank slot B, allocator pages", img.header + torn_a + blank + freemap},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    FaultInjectionEnv env;
    WriteImage(&env, "/db", c.image);
    {
      auto ro = Database::Open("/db", Opts(&env, true));
      REQUIRE_MESSAGE(ro.ok(), ro.status().ToString());
      const OpenReport& rep = (*ro)->open_report();
      CHECK(rep.uncommitted);
      CHECK_FALSE(rep.created);
      CHECK(rep.commit_id == 0);
      CHECK_FALSE(rep.discarded.has_value());
      CHECK(DumpDb(**ro).empty());
      RequireIntegrity(**ro);
      auto stats = (*ro)->GetStats();
      REQUIRE(stats.ok());
      CHECK(stats->tables == 0);
    }
    CHECK(ReadImage(&env, "/db") == c.image);  // a read-only open writes nothing
    {
      auto in = Inspector::Open("/db", &env);
      REQUIRE(in.ok());
      const InspectionReport r = (*in)->Inspect();
      CHECK_MESSAGE(r.healthy(), (r.problems.empty() ? "" : r.problems[0]));
      CHECK(r.uncommitted);
      CHECK(r.open_status.ok());
      CHECK_FALSE(r.warnings.empty());
    }
    {
      auto rw = Database::Open("/db", Opts(&env, false, 4096));
      REQUIRE_MESSAGE(rw.ok(), rw.status().ToString());
      CHECK((*rw)->open_report().created);
      CHECK((*rw)->open_report().uncommitted);
      CHECK((*rw)->open_report().commit_id == 1);
      CHECK(DumpDb(**rw).empty());
      Put(**rw, "data");
      RequireIntegrity(**rw);
    }
    env.PowerLoss(LossMode::kDropAll);
    auto again = Database::Open("/db", Opts(&env, true));
    REQUIRE_MESSAGE(again.ok(), again.status().ToString());
    CHECK(ValueOf(**again) == "data");
    CHECK_FALSE((*again)->open_report().uncommitted);
  }
}

TEST_CASE("files that had commits are never taken for files without one") {
  SUBCASE("both slots damaged, slot B written") {
    const NewFileImage img = MakeNewFileImage(kPs);
    std::string bad(kPs, '\x5a');
    FaultInjectionEnv env;
    WriteImage(&env, "/db", img.header + bad + bad);
    for (bool ro : {true, false}) {
      auto db = Database::Open("/db", Opts(&env, ro));
      REQUIRE_FALSE(db.ok());
      CHECK(db.status().IsCorruption());
      CHECK(Contains(db.status().message(), "neither commit slot"));
    }
    CHECK(ReadImage(&env, "/db") == img.header + bad + bad);
  }
  SUBCASE("slot B blank (a failed commit zeroed it) and slot A damaged, in a file with data") {
    FaultInjectionEnv env;
    {
      auto db = OpenOrDie(&env, "/db", kPs);
      for (int i = 0; i < 3; ++i) Put(*db, std::string(100, 'x'), "k" + std::to_string(i));
    }
    std::string image = ReadImage(&env, "/db");
    image.replace(kSlotPageIds[1] * kPs, kPs, std::string(kPs, '\0'));
    image[kSlotPageIds[0] * kPs + 200] ^= 1;
    WriteImage(&env, "/db", image);
    for (bool ro : {true, false}) {
      auto db = Database::Open("/db", Opts(&env, ro));
      REQUIRE_FALSE(db.ok());
      CHECK(db.status().IsCorruption());
    }
    CHECK(ReadImage(&env, "/db") == image);  // never "initialised" over the data
  }
  SUBCASE("random bytes") {
    FaultInjectionEnv env;
    std::mt19937_64 rng(3);
    std::string junk(4 * kPs, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    WriteImage(&env, "/db", junk);
    for (bool ro : {true, false}) {
      auto db = Database::Open("/db", Opts(&env, ro));
      REQUIRE_FALSE(db.ok());
      CHECK(Contains(db.status().message(), "not a rocky database"));
    }
    CHECK(ReadImage(&env, "/db") == junk);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Point 4: a discarded newest commit is reported, and its evidence kept

TEST_CASE(
    "discarded: damage to the newest commit is reported, and the file is copied before it is overwritten") {
  FaultInjectionEnv env;
  const CommitSlot newest = TwoCommits(&env);
  std::string image = ReadImage(&env, "/db");
  const uint64_t page = newest.verify_list.front();
  image[page * kPs + kPs / 2] ^= 0x40;  // a flipped bit in a page the newest commit wrote
  WriteImage(&env, "/db", image);
  const std::string copy_name = "/db.discarded-" + std::to_string(newest.txn_id);

  // Read-only: reported, nothing written.
  {
    auto db = Database::Open("/db", Opts(&env, true));
    REQUIRE(db.ok());
    const OpenReport& rep = (*db)->open_report();
    REQUIRE(rep.discarded.has_value());
    CHECK(rep.discarded->txn_id == newest.txn_id);
    CHECK_MESSAGE(Contains(rep.discarded->reason, "page " + std::to_string(page)), rep.discarded->reason);
    CHECK(rep.discarded->evidence_path.empty());
    CHECK(rep.commit_id == newest.txn_id - 1);
    CHECK(ValueOf(**db) == "v1");
  }
  CHECK(ReadImage(&env, "/db") == image);
  CHECK(FindDiscardedCopies("/db", &env).value().empty());
  // The Inspector's verdict: the same commit discarded, not healthy.
  {
    auto in = Inspector::Open("/db", &env);
    REQUIRE(in.ok());
    const InspectionReport r = (*in)->Inspect();
    CHECK_FALSE(r.healthy());
    REQUIRE(r.discarded.has_value());
    CHECK(r.discarded->txn_id == newest.txn_id);
    REQUIRE(r.current_slot >= 0);
    CHECK(r.slots[r.current_slot].txn_id == newest.txn_id - 1);
  }
  // Read-write: reported, and a synced copy of the file as it was is kept before anything is written.
  {
    auto db = Database::Open("/db", Opts(&env));
    REQUIRE(db.ok());
    const OpenReport& rep = (*db)->open_report();
    REQUIRE(rep.discarded.has_value());
    CHECK(rep.discarded->evidence_path == copy_name);
    CHECK(ReadImage(&env, copy_name) == image);
    CHECK(FindDiscardedCopies("/db", &env).value() == std::vector<std::string>{copy_name});
  }
  // A second writer's open before any commit finds the same copy, and makes no other.
  {
    auto db = Database::Open("/db", Opts(&env));
    REQUIRE(db.ok());
    REQUIRE((*db)->open_report().discarded.has_value());
    CHECK((*db)->open_report().discarded->evidence_path == copy_name);
    // The next commit overwrites the discarded commit's slot; the copy stays.
    Put(**db, "v3");
  }
  env.PowerLoss(LossMode::kDropAll);
  {
    auto db = Database::Open("/db", Opts(&env));
    REQUIRE(db.ok());
    CHECK_FALSE((*db)->open_report().discarded.has_value());
    CHECK(ValueOf(**db) == "v3");
  }
  CHECK(FindDiscardedCopies("/db", &env).value() == std::vector<std::string>{copy_name});
  CHECK(ReadImage(&env, copy_name) == image);
  // The user's acknowledgement: removing it.
  REQUIRE(env.RemoveFile(copy_name).ok());
  CHECK(FindDiscardedCopies("/db", &env).value().empty());
}

TEST_CASE("discarded: a different file discarding the same commit id gets a copy of its own") {
  FaultInjectionEnv env;
  const CommitSlot newest = TwoCommits(&env);
  const std::string good = ReadImage(&env, "/db");
  for (int round = 1; round <= 3; ++round) {
    std::string image = good;
    image[newest.verify_list.front() * kPs + 10 * round] ^= 1;
    WriteImage(&env, "/db", image);
    auto db = Database::Open("/db", Opts(&env));
    REQUIRE(db.ok());
    REQUIRE((*db)->open_report().discarded.has_value());
    const std::string want =
        "/db.discarded-" + std::to_string(newest.txn_id) + (round == 1 ? "" : "-" + std::to_string(round));
    CHECK((*db)->open_report().discarded->evidence_path == want);
    CHECK(ReadImage(&env, want) == image);
  }
  CHECK(FindDiscardedCopies("/db", &env).value().size() == 3);
  // Names that only look alike are not copies.
  WriteImage(&env, "/db.discarded-", "x");
  WriteImage(&env, "/db.discarded-12x", "x");
  WriteImage(&env, "/dbx.discarded-12", "x");
  CHECK(FindDiscardedCopies("/db", &env).value().size() == 3);
}

TEST_CASE("discarded: a slot that claims a newer commit but fails its checksum is reported") {
  FaultInjectionEnv env;
  const CommitSlot newest = TwoCommits(&env);
  std::string image = ReadImage(&env, "/db");
  int slot_index = -1;
  for (int i = 0; i < 2; ++i) {
    auto s = DecodeCommitSlot(image.data() + kSlotPageIds[i] * kPs, kSlotPageIds[i], kPs);
    if (s && s->txn_id == newest.txn_id) slot_index = i;
  }
  REQUIRE(slot_index >= 0);
  image[kSlotPageIds[slot_index] * kPs + 300] ^= 1;  // the txn id field survives; the checksum does not
  WriteImage(&env, "/db", image);
  auto db = Database::Open("/db", Opts(&env, true));
  REQUIRE(db.ok());
  REQUIRE((*db)->open_report().discarded.has_value());
  CHECK((*db)->open_report().discarded->txn_id == newest.txn_id);
  CHECK(Contains((*db)->open_report().discarded->reason, "checksum"));
  CHECK(ValueOf(**db) == "v1");
}

TEST_CASE(
    "discarded: nothing is copied when nothing was discarded, and a copy that cannot be made fails the "
    "open") {
  FaultInjectionEnv env;
  const CommitSlot newest = TwoCommits(&env);
  {
    auto db = Database::Open("/db", Opts(&env));
    REQUIRE(db.ok());
    CHECK_FALSE((*db)->open_report().discarded.has_value());
  }
  CHECK(Names(&env, "/") == std::vector<std::string>{"db"});
  std::string image = ReadImage(&env, "/db");
  image[newest.verify_list.front() * kPs + 7] ^= 1;
  WriteImage(&env, "/db", image);
  env.SetDiskCapacity(image.size() / 2);  // the copy does not fit
  auto db = Database::Open("/db", Opts(&env));
  REQUIRE_FALSE(db.ok());
  CHECK(db.status().IsNoSpace());
  CHECK(Contains(db.status().message(), "keeping a copy of /db"));
  env.ClearFaults();
  CHECK(ReadImage(&env, "/db") == image);
  CHECK(FindDiscardedCopies("/db", &env).value().empty());
}

TEST_CASE(
    "discarded: on the real file system the copy is made 0600, synced, and found by FindDiscardedCopies") {
  TempDir dir;
  const std::string path = dir.path() + "/state.redb";
  {
    auto db = OpenOrDie(Env::Default(), path, kPs);
    Put(*db, "v1");
    Put(*db, "v2");
    REQUIRE(db->Close().ok());
  }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::string image;
  {
    std::ifstream in(path, std::ios::binary);
    image.assign(std::istreambuf_iterator<char>(in), {});
  }
  const CommitSlot newest = NewestSlot(image, kPs);
  REQUIRE_FALSE(newest.synced_before_slot);
  image[newest.verify_list.front() * kPs + 33] ^= 1;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << image;
  }
  auto db = Database::Open(path, Options{.page_size = kPs});
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  REQUIRE((*db)->open_report().discarded.has_value());
  const std::string copy = (*db)->open_report().discarded->evidence_path;
  CHECK(copy == path + ".discarded-" + std::to_string(newest.txn_id));
  REQUIRE(::stat(copy.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(FindDiscardedCopies(path).value() == std::vector<std::string>{copy});
  // No temporary file is left behind.
  auto names = Env::Default()->ListDir(dir.path());
  REQUIRE(names.ok());
  CHECK(names->size() == 2);
}

// ---------------------------------------------------------------------------------------------------------
// Point 5: one verdict

TEST_CASE("one verdict: Open and the Inspector agree on every damaged or truncated copy of a file") {
  FaultInjectionEnv env;
  {
    auto db = OpenOrDie(&env, "/db", kPs);
    for (int i = 0; i < 6; ++i)
      Put(*db, std::string(40, static_cast<char>('a' + i)), "k" + std::to_string(i));
    // The last commit is large: more pages than a slot lists, so its pages are synced before its slot.
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("big").value();
    for (int i = 0; i < 300; ++i) REQUIRE(t->Insert("key" + std::to_string(i), std::string(120, 'b')).ok());
    REQUIRE((*w)->Commit().ok());
    REQUIRE(db->Close().ok());
  }
  const std::string good = ReadImage(&env, "/db");
  REQUIRE(NewestSlot(good, kPs).synced_before_slot);
  std::vector<std::pair<std::string, std::string>> variants;
  // Truncated at every page boundary (the case: Open refused, rocky-inspect said healthy).
  for (size_t pages = 0; pages * kPs < good.size(); ++pages) {
    variants.emplace_back("cut to " + std::to_string(pages) + " pages", good.substr(0, pages * kPs));
  }
  // A flipped byte in every page, and a zeroed sector in every page.
  for (size_t page = 0; page * kPs < good.size(); ++page) {
    std::string flipped = good;
    flipped[page * kPs + 64 + page % 400] ^= 0x10;
    variants.emplace_back("byte flipped in page " + std::to_string(page), flipped);
  }
  // The same on a file whose newest commit was small (verified at open by its verify list).
  {
    FaultInjectionEnv small_env;
    const CommitSlot newest = TwoCommits(&small_env);
    const std::string small = ReadImage(&small_env, "/db");
    for (size_t page = 0; page * kPs < small.size(); ++page) {
      std::string zeroed = small;
      zeroed.replace(page * kPs, kPs, std::string(kPs, '\0'));
      variants.emplace_back("small: page " + std::to_string(page) + " zeroed", zeroed);
    }
    for (size_t pages = 0; pages * kPs < small.size(); ++pages) {
      variants.emplace_back("small: cut to " + std::to_string(pages) + " pages",
                            small.substr(0, pages * kPs));
    }
    (void)newest;
  }
  int refused = 0;
  int discarded = 0;
  for (const auto& variant : variants) {
    // Named copies, not structured bindings: CAPTURE captures in a lambda, which clang 14 refuses for those.
    const std::string& name = variant.first;
    const std::string& image = variant.second;
    CAPTURE(name);
    WriteImage(&env, "/v", image);
    auto db = Database::Open("/v", Opts(&env, true));
    auto in = Inspector::Open("/v", &env);
    REQUIRE(in.ok());
    const InspectionReport r = (*in)->Inspect();
    if (!db.ok()) {
      ++refused;
      CHECK_FALSE(r.healthy());
      CHECK(r.open_status.code() == db.status().code());
      CHECK(r.open_status.message() == db.status().message());
      continue;
    }
    const OpenReport& rep = (*db)->open_report();
    CHECK(r.open_status.ok());
    CHECK(r.uncommitted == rep.uncommitted);
    if (!rep.uncommitted) {
      REQUIRE(r.current_slot >= 0);
      CHECK(r.slots[r.current_slot].txn_id == rep.commit_id);
    }
    CHECK(r.discarded.has_value() == rep.discarded.has_value());
    if (rep.discarded) {
      ++discarded;
      CHECK(r.discarded->txn_id == rep.discarded->txn_id);
      CHECK(r.discarded->reason == rep.discarded->reason);
      CHECK_FALSE(r.healthy());
    }
    // Healthy means Open opens the newest commit and every page of it reads back.
    if (r.healthy()) {
      CHECK_FALSE(rep.discarded.has_value());
      CHECK((*db)->CheckIntegrity().ok());
    }
  }
  CHECK(refused > 0);
  CHECK(discarded > 0);
  // The case by name: the truncated file whose newest commit was large.
  WriteImage(&env, "/v", good.substr(0, good.size() - kPs));
  auto db = Database::Open("/v", Opts(&env, true));
  REQUIRE_FALSE(db.ok());
  CHECK(Contains(db.status().message(), "is truncated"));
  auto in = Inspector::Open("/v", &env);
  REQUIRE(in.ok());
  const InspectionReport r = (*in)->Inspect();
  CHECK_FALSE(r.healthy());
  CHECK(r.current_slot == -1);
}

}  // namespace rocky::engine::testing
