// Crash tests: a deterministic workload on the FaultInjectionEnv, cut at every write and sync it makes, with
// every way a power loss can treat the unsynced writes; recovery must always find a committed state.
//
// The workload is a list of steps (commits, a reopen, a compaction). Step i, once it returns OK, leaves the
// database in state i; durable steps make it survive a crash. After a crash during step `attempted`, the
// recovered database must be in the state of the last durable step that returned OK, or in the state of the
// attempted step itself if that step was durable (its commit may have reached the disk before the failure).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine_test_util.h"
#include "rocky/engine/db.h"
#include "rocky/engine/fault_injection_env.h"
#include "sweep.h"

namespace rocky::engine::testing {
namespace {

using LossMode = FaultInjectionEnv::LossMode;
const std::string kPath = "/crash.redb";

// What a (possibly cut) run of the workload did.
struct Outcome {
  std::vector<Tables> states;  // states[i]: contents once step i returned OK (states[0]: the new, empty file)
  std::vector<bool> durable;   // whether step i was meant to survive a crash
  int last_durable_ok = -1;    // last durable step that returned OK
  int last_ok = -1;            // last step that returned OK, durable or not
  int attempted = -1;          // the step that failed, or -1 when every step succeeded
  bool attempted_commit = false;  // that step was a single Commit (not an open, reopen or compaction)
  Status failure;                 // why it failed
  std::unique_ptr<Database> db;   // still open after the failure (the test decides when to drop it)

  // The states recovery may legitimately produce after a crash.
  std::vector<int> Allowed() const {
    std::vector<int> out;
    if (last_durable_ok >= 0) out.push_back(last_durable_ok);
    // A failed Commit is in the file afterwards only when it said its outcome was unknown: any other failure
    // says "not committed; the state is unchanged", which must hold after the crash too.
    if (attempted >= 0 && durable[attempted] && (!attempted_commit || failure.IsOutcomeUnknown())) {
      out.push_back(attempted);
    }
    // A durable transaction begun after kNoSync commits may first make them durable (BeginWrite: FORMAT.md,
    // "Writing a commit"), so a crash in a durable step may leave the last kNoSync state.
    if (attempted >= 0 && durable[attempted] && last_ok > last_durable_ok) out.push_back(last_ok);
    if (out.empty()) out.push_back(0);  // creation itself was cut: an empty file is created again
    return out;
  }
};

std::string Key(uint64_t i) {
  char buf[32];
  snprintf(buf, sizeof buf, "key%06llu", static_cast<unsigned long long>(i));
  return buf;
}

// Key i made longer than a leaf stores (101 bytes at 512-byte pages, 997 at 4096): its leaf entry holds a
// prefix and a run of up to several pages holds the whole key. Big keys of different i share all but their
// last bytes, so separators between them are long too.
std::string BigKey(uint64_t i, uint32_t page_size) {
  return Key(i) + "/" + std::string(page_size / 4 + i % 3 * page_size, 'b') + std::to_string(i);
}

// Runs the workload (deterministic for a given seed) on env until a step fails.
// `extra_base`: a phase-2 workload starting from whatever state the file is in (after a crash and recovery);
// its steps then use different keys and values.
class Workload {
 public:
  // 512-byte pages: a slot lists (512-64)/8 = 56 pages, so big commits take the two-sync path.
  explicit Workload(uint64_t seed, int steps = 36, uint32_t page_size = 512)
      : seed_(seed), steps_(steps), page_size_(page_size) {}
  uint32_t page_size() const { return page_size_; }

  void Run(Env* env, Outcome* out, int stop_after = INT32_MAX, const Tables* base = nullptr) const {
    std::mt19937_64 rng(seed_);
    Tables model = base ? *base : Tables{};
    auto record = [&](int step, bool durable, const Status& s) -> bool {
      if (!s.ok()) {
        out->attempted = step;
        out->failure = s;
        out->durable.push_back(durable);
        out->states.push_back(model);
        return false;
      }
      out->states.push_back(model);
      out->durable.push_back(durable);
      out->last_ok = step;
      if (durable) out->last_durable_ok = step;
      return true;
    };
    Options o;
    o.env = env;
    o.page_size = page_size_;
    {
      auto db = Database::Open(kPath, o);
      if (!record(0, true, db.status())) return;
      out->db = std::move(db).value();
    }
    for (int step = 1; step <= steps_ && step <= stop_after; ++step) {
      Status s;
      bool durable = true;
      if (step == steps_ / 2) {
        // Reopen: Close makes pending kNoSync commits durable.
        s = out->db->Close();
        out->db.reset();
        if (s.ok()) {
          auto db = Database::Open(kPath, o);
          s = db.status();
          if (s.ok()) out->db = std::move(db).value();
        }
        if (!record(step, true, s)) return;
        continue;
      }
      if (step == steps_ - 3) {
        // Compaction: several durable commits and a truncation, contents unchanged.
        s = out->db->Compact();
        if (!record(step, true, s)) return;
        continue;
      }
      // kNoSync runs: steps 8-11 and 30-32 (the next durable commit then takes the two-sync path).
      const bool nosync = (step >= 8 && step <= 11) || (step >= 30 && step <= 32);
      durable = !nosync;
      WriteOptions wo;
      wo.durability = nosync ? Durability::kNoSync : Durability::kDurable;
      auto w = out->db->BeginWrite(wo);
      if (!w.ok()) {
        record(step, durable, w.status());
        return;
      }
      const bool big = step % 9 == 4;         // more pages than a slot can list
      const bool purge = step == steps_ - 5;  // deletes most keys before the compaction
      const std::string tname = step % 5 == 0 ? "second" : "main";
      auto t = (*w)->OpenTable(tname);
      REQUIRE(t.ok());
      Table& m = model[tname];
      const uint64_t key_base = base ? 1000000 : 0;
      const int inserts = big ? 150 : 3 + static_cast<int>(rng() % 8);
      for (int i = 0; i < inserts; ++i) {
        const uint64_t n = key_base + rng() % 600;
        const std::string k = n % 7 == 0 ? BigKey(n, page_size_) : Key(n);
        size_t len = rng() % 60;
        if (rng() % 20 == 0) len = 600 + rng() % 3000;  // an overflow run
        if (big) len = 100 + rng() % 200;
        const std::string v = MakeValue(rng() ^ seed_ ^ key_base, len);
        REQUIRE((*t)->Insert(k, v).ok());
        m[k] = v;
      }
      const int removes = purge ? 0 : static_cast<int>(rng() % 5);
      for (int i = 0; i < removes; ++i) {
        const uint64_t n = key_base + rng() % 600;
        const std::string k = n % 7 == 0 ? BigKey(n, page_size_) : Key(n);
        REQUIRE((*t)->Remove(k).ok());
        m.erase(k);
      }
      if (purge) {
        for (const char* name : {"main", "second"}) {
          auto pt = (*w)->OpenTable(name);
          REQUIRE(pt.ok());
          KeyRange r;
          r.lower = Key(key_base + 30);
          REQUIRE((*pt)->RemoveRange(r).ok());
          Table& pm = model[name];
          pm.erase(pm.lower_bound(*r.lower), pm.end());
        }
      }
      if (step == 20) {
        // A table that lives a while and is deleted again (frees a whole tree).
        auto tmp = (*w)->OpenTable("temp");
        REQUIRE(tmp.ok());
        model["temp"];
        for (int i = 0; i < 40; ++i) {
          REQUIRE((*tmp)->Insert(Key(key_base + i), std::string(50, 't')).ok());
          model["temp"][Key(key_base + i)] = std::string(50, 't');
        }
      }
      if (step == 26) {
        REQUIRE((*w)->DeleteTable("temp").ok());
        model.erase("temp");
      }
      s = (*w)->Commit();
      out->attempted_commit = true;
      if (!record(step, durable, s)) return;
      out->attempted_commit = false;
    }
  }

 private:
  uint64_t seed_;
  int steps_;
  uint32_t page_size_;
};

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// After a crash and the power loss: the file must open read-only and read-write at an allowed state, pass the
// integrity check, and take new commits. Returns the recovered state.
Tables CheckRecovery(FaultInjectionEnv* env, const Outcome& out, bool write_after, uint32_t page_size = 512) {
  const std::vector<int> allowed = out.Allowed();
  auto matches = [&](const Tables& got) {
    for (int c : allowed) {
      if (Diff(got, out.states[c]).empty()) return true;
    }
    return false;
  };
  auto describe = [&](const Tables& got) {
    std::string msg = "recovered state matches none of the allowed steps:";
    for (int c : allowed) msg += " [step " + std::to_string(c) + ": " + Diff(got, out.states[c]) + "]";
    return msg;
  };
  if (out.last_durable_ok >= 0) {
    // The file was created, so a read-only open (which changes nothing) must work and see an allowed state.
    Options ro;
    ro.env = env;
    ro.read_only = true;
    INFO("read-only open");
    auto db = Database::Open(kPath, ro);
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    const Tables got = DumpDb(**db);
    REQUIRE_MESSAGE(matches(got), "read-only open: " << describe(got));
  }
  Options o;
  o.env = env;
  o.page_size = page_size;
  auto db = Database::Open(kPath, o);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  RequireIntegrity(**db);
  Tables got = DumpDb(**db);
  REQUIRE_MESSAGE(matches(got), describe(got));
  if (write_after) {
    auto w = (*db)->BeginWrite();
    REQUIRE(w.ok());
    auto t = (*w)->OpenTable("after-crash");
    REQUIRE(t.ok());
    for (int i = 0; i < 30; ++i) REQUIRE((*t)->Insert(Key(i), std::string(40, 'a')).ok());
    REQUIRE((*w)->Commit().ok());
    RequireIntegrity(**db);
    REQUIRE((*db)->Close().ok());
  }
  return got;
}

uint64_t TotalOps(const Workload& w) {
  FaultInjectionEnv env;
  Outcome out;
  w.Run(&env, &out);
  REQUIRE_MESSAGE(out.attempted == -1, out.failure.ToString());
  REQUIRE(out.db->Close().ok());
  return env.OpCount();
}

struct Mode {
  LossMode mode;
  uint64_t seed;
  const char* name;
};

}  // namespace

TEST_CASE("crash: the workload itself passes and reopens intact") {
  FaultInjectionEnv env;
  Workload w(7);
  Outcome out;
  w.Run(&env, &out);
  REQUIRE_MESSAGE(out.attempted == -1, out.failure.ToString());
  REQUIRE(Diff(DumpDb(*out.db), out.states.back()).empty());
  RequireIntegrity(*out.db);
  REQUIRE(out.db->Close().ok());
  env.PowerLoss(LossMode::kDropAll);
  auto db = OpenOrDie(&env, kPath, 512);
  REQUIRE(Diff(DumpDb(*db), out.states.back()).empty());
  MESSAGE("workload: " << out.states.size() - 1 << " steps, " << env.OpCount() << " writes and syncs, "
                       << env.SyncCount() << " syncs");
}

TEST_CASE("crash: power loss at every write and sync of the workload recovers a committed state") {
  const Workload w(7);
  const uint64_t total = TotalOps(w);
  const Mode modes[] = {
      {LossMode::kDropAll, 0, "drop all"},         {LossMode::kKeepRandom, 1, "keep random 1"},
      {LossMode::kKeepRandom, 2, "keep random 2"}, {LossMode::kTearRandom, 3, "tear random 3"},
      {LossMode::kTearRandom, 4, "tear random 4"}, {LossMode::kTearRandom, 5, "tear random 5"},
  };
  const auto start = std::chrono::steady_clock::now();
  uint64_t runs = 0;
  // Each crash point with kDropAll, kKeepRandom and kTearRandom; the other seeds in rotation (every third
  // point each). CI runs a sample of the points, a different one per commit (tests/support/sweep.h).
  const rocky::tests::Sweep sweep("crash points (512-byte pages)", total, 3);
  for (uint64_t k = 0; k < total; ++k) {
    if (!sweep.Includes(k)) continue;
    for (const Mode& m : {modes[0], modes[1], modes[3], modes[k % 3 == 0 ? 2 : k % 3 == 1 ? 4 : 5]}) {
      CAPTURE(k);
      const std::string mode_name = m.name;
      CAPTURE(mode_name);
      FaultInjectionEnv env;
      env.CrashAfterOps(k);
      Outcome out;
      w.Run(&env, &out);
      REQUIRE_MESSAGE(out.attempted >= 0, "the crash at op " << k << " did not stop the workload");
      REQUIRE_MESSAGE(Contains(out.failure.message(), "injected crash"), out.failure.ToString());
      out.db.reset();  // its destructor may try to flush; failures must be harmless
      env.PowerLoss(m.mode, m.seed * 1000003 + k);
      CheckRecovery(&env, out, /*write_after=*/m.mode == LossMode::kDropAll || m.seed == 3);
      ++runs;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE(sweep.Describe() << ", " << runs << " recoveries in " << secs << " s");
}

TEST_CASE("crash: 4096-byte pages (torn slots and pages) at every write and sync") {
  const Workload w(21, 14, 4096);
  const uint64_t total = TotalOps(w);
  const rocky::tests::Sweep sweep("crash points (4096-byte pages)", total, 3);
  for (uint64_t k = 0; k < total; ++k) {
    if (!sweep.Includes(k)) continue;
    for (uint64_t seed = 0; seed < 6; ++seed) {
      CAPTURE(k);
      CAPTURE(seed);
      FaultInjectionEnv env;
      env.CrashAfterOps(k);
      Outcome out;
      w.Run(&env, &out);
      REQUIRE(out.attempted >= 0);
      out.db.reset();
      env.PowerLoss(seed == 0  ? LossMode::kDropAll
                    : seed < 3 ? LossMode::kKeepRandom
                               : LossMode::kTearRandom,
                    seed * 7777 + k);
      CheckRecovery(&env, out, /*write_after=*/seed < 2, 4096);
    }
  }
  MESSAGE(sweep.Describe());
}

TEST_CASE("crash: a second crash soon after recovering from a first one") {
  // Life 1 is cut at op k1 and recovered; life 2 runs a different workload from the recovered state and is
  // cut at op k2. The second recovery must find a state of life 2 (or the state life 1 recovered to): never
  // pages a crashed transaction of life 1 left behind.
  const Workload phase1(11, 24);
  const Workload phase2(12, 12);
  const uint64_t total1 = TotalOps(phase1);
  uint64_t runs = 0;
  // First crashes at every fifth op; CI runs a sample of them (tests/support/sweep.h).
  const rocky::tests::Sweep sweep("first crash points", (total1 - 2 + 4) / 5, 2);
  for (uint64_t k1 = 2; k1 < total1; k1 += 5) {
    if (!sweep.Includes((k1 - 2) / 5)) continue;
    for (uint64_t seed1 = k1 % 2; seed1 < 2; seed1 += 2) {
      for (uint64_t k2 = 0; k2 < 20; k2 += 1) {
        CAPTURE(k1);
        CAPTURE(seed1);
        CAPTURE(k2);
        FaultInjectionEnv env;
        env.CrashAfterOps(k1);
        Outcome a;
        phase1.Run(&env, &a);
        a.db.reset();
        env.PowerLoss(LossMode::kKeepRandom, seed1 * 7919 + k1);
        Tables recovered;
        {
          auto db = OpenOrDie(&env, kPath, 512);
          recovered = DumpDb(*db);
          REQUIRE(db->Close().ok());
        }
        env.CrashAfterOps(k2);
        Outcome b;
        phase2.Run(&env, &b, INT32_MAX, &recovered);
        if (b.attempted < 0) {
          b.db.reset();
          break;  // k2 past the end of life 2
        }
        b.db.reset();
        env.PowerLoss(LossMode::kKeepRandom, seed1 * 104729 + k2);
        CheckRecovery(&env, b, /*write_after=*/false);
        ++runs;
      }
    }
  }
  MESSAGE(sweep.Describe() << ", " << runs << " double-crash recoveries");
}

TEST_CASE("crash: a failed write or sync poisons the database; the last commit stays readable") {
  const Workload w(7);
  const uint64_t total = TotalOps(w);
  int write_failures = 0;
  int sync_failures = 0;
  for (uint64_t idx = 0; idx < total; idx += (idx < 60 ? 1 : 7)) {
    for (bool sync : {false, true}) {
      CAPTURE(idx);
      CAPTURE(sync);
      FaultInjectionEnv env;
      if (sync) {
        env.FailSyncAt(idx);
      } else {
        env.FailWriteAt(idx);
      }
      Outcome out;
      w.Run(&env, &out);
      if (out.attempted < 0) {
        out.db.reset();
        continue;  // op idx was a sync (or a write), not what we armed
      }
      (sync ? sync_failures : write_failures)++;
      REQUIRE_MESSAGE(out.failure.code() == Status::Code::kIOError, out.failure.ToString());
      REQUIRE_MESSAGE(Contains(out.failure.message(), "injected"), out.failure.ToString());
      if (out.db != nullptr) {
        // Writes are refused from now on, with a message that says why; reads of the last commit still work.
        auto w2 = out.db->BeginWrite();
        REQUIRE_FALSE(w2.ok());
        CHECK(w2.status().code() == Status::Code::kPoisoned);
        CHECK_MESSAGE(Contains(w2.status().message(), "refuses writes until reopened"),
                      w2.status().ToString());
        CHECK_MESSAGE(Contains(w2.status().message(), "injected"), w2.status().ToString());
        CHECK(out.db->Compact().code() == Status::Code::kPoisoned);
        REQUIRE(out.last_ok >= 0);
        const Tables now = DumpDb(*out.db);
        CHECK_MESSAGE(Diff(now, out.states[out.last_ok]).empty(), Diff(now, out.states[out.last_ok]));
        out.db.reset();
      }
      // Reopening (the failed op's data may or may not be on disk) finds a committed state.
      CheckRecovery(&env, out, /*write_after=*/true);
      // And so does a power loss afterwards.
      env.PowerLoss(LossMode::kDropAll);
      auto db = OpenOrDie(&env, kPath, 512);
      RequireIntegrity(*db);
    }
  }
  CHECK(write_failures > 20);
  CHECK(sync_failures > 10);
}

TEST_CASE("crash: a full disk fails the commit with kNoSpace and loses nothing committed") {
  for (int at_step : {6, 14, 27, 40}) {
    CAPTURE(at_step);
    FaultInjectionEnv env;
    const Workload w(7);
    Outcome out;
    w.Run(&env, &out, at_step);
    REQUIRE(out.attempted < 0);
    // The disk is full: the file cannot grow any more.
    env.SetDiskCapacity(FileSize(&env, kPath));
    Status s;
    int commits = 0;
    for (int i = 0; i < 200; ++i) {
      auto wt = out.db->BeginWrite();
      REQUIRE(wt.ok());
      auto t = (*wt)->OpenTable("fill");
      for (int j = 0; j < 20; ++j) REQUIRE((*t)->Insert(Key(i * 20 + j), std::string(100, 'f')).ok());
      s = (*wt)->Commit();
      if (!s.ok()) break;
      out.states.back()["fill"];  // keep the model in step
      for (int j = 0; j < 20; ++j) out.states.back()["fill"][Key(i * 20 + j)] = std::string(100, 'f');
      ++commits;
    }
    REQUIRE_MESSAGE(s.IsNoSpace(), s.ToString());
    // Refused from now on; the last commit is still what readers see.
    CHECK(out.db->BeginWrite().status().code() == Status::Code::kPoisoned);
    CHECK(Diff(DumpDb(*out.db), out.states.back()).empty());
    out.db.reset();
    env.SetDiskCapacity(UINT64_MAX);
    auto db = OpenOrDie(&env, kPath, 512);
    RequireIntegrity(*db);
    CHECK(Diff(DumpDb(*db), out.states.back()).empty());
    env.PowerLoss(LossMode::kDropAll);
    db.reset();
    db = OpenOrDie(&env, kPath, 512);
    CHECK(Diff(DumpDb(*db), out.states.back()).empty());
  }
}

}  // namespace rocky::engine::testing
