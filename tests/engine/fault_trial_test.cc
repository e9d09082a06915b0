// Randomized fault trials through the FaultInjectionEnv (issue #16): each trial runs a random workload of
// creation, commits, reopens (read-write and read-only) and compactions, and injects one random fault on the
// way: a failed write, sync or directory operation, two in a row, a full disk, a crash followed by a power
// cut that keeps or tears unsynced writes, a power cut between operations, or read errors. Then the file is
// reopened and checked against what every Commit and Open said:
//   - lost acknowledged commits: the file does not hold the last commit that returned OK (or a commit whose
//     outcome was unknown);
//   - appeared after "unchanged": the file holds a commit whose Commit said "not committed; the state is
//     unchanged";
//   - left unopenable: a read-write open of the file fails once the faults are gone;
//   - crashes: an exception escaped the engine, or the recovered file fails its integrity check.
// All four must be zero. ROCKY_FAULT_TRIALS sets the number of trials (default 300, a few seconds under the
// sanitizers; 3000 with ROCKY_FULL_SWEEPS=1); ROCKY_FAULT_SEED the first seed (default: derived from
// ROCKY_SWEEP_SEED, which scripts/test derives from the commit, so each commit runs other trials; else 1).
// The test's output names the seeds, so a failing trial replays with ROCKY_FAULT_SEED=<seed>
// ROCKY_FAULT_TRIALS=1.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine_test_util.h"
#include "rocky/engine/db.h"
#include "rocky/engine/fault_injection_env.h"
#include "sweep.h"

namespace rocky::engine::testing {
namespace {

using LossMode = FaultInjectionEnv::LossMode;
const std::string kPath = "/trial/state.redb";

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  return end != nullptr && *end == '\0' ? n : fallback;
}

struct Counters {
  uint64_t trials = 0;
  uint64_t operations = 0;
  uint64_t clean_failures = 0;    // an operation failed with an error (the fault's doing)
  uint64_t unknown_outcomes = 0;  // of those, commits that said kOutcomeUnknown
  uint64_t power_losses = 0;
  uint64_t crashes = 0;                   // exceptions escaping the engine, integrity failures after recovery
  uint64_t lost_acknowledged = 0;         // the file lost a commit that returned OK
  uint64_t appeared_after_unchanged = 0;  // the file holds a commit that said "unchanged"
  uint64_t unopenable = 0;                // a writer cannot open the file once the faults are gone
  std::vector<std::string> problems;      // the first few, with their seeds
};

enum class Fault : int {
  kFailOp,      // one op (write, sync, create, link, rename, remove, directory sync) fails
  kFailTwoOps,  // two ops in a row fail: a failed commit may not be able to settle
  kFullDisk,    // writes that grow a file fail with ENOSPC for a few steps
  kCrash,       // the process dies at an op; then the power goes, tearing unsynced writes
  kPowerCut,    // the power goes between two operations
  kFailRead,    // one read fails
  kBadPage,     // every read of one page fails for a few steps
  kCount,
};

const char* FaultName(Fault f) {
  switch (f) {
    case Fault::kFailOp: return "failed op";
    case Fault::kFailTwoOps: return "two failed ops";
    case Fault::kFullDisk: return "full disk";
    case Fault::kCrash: return "crash and power cut";
    case Fault::kPowerCut: return "power cut";
    case Fault::kFailRead: return "failed read";
    case Fault::kBadPage: return "unreadable page";
    case Fault::kCount: break;
  }
  return "?";
}

LossMode RandomLoss(std::mt19937_64& rng) {
  switch (rng() % 3) {
    case 0: return LossMode::kDropAll;
    case 1: return LossMode::kKeepRandom;
    default: return LossMode::kTearRandom;
  }
}

class Trial {
 public:
  Trial(uint64_t seed, Counters* c) : seed_(seed), rng_(seed), c_(c) {
    page_size_ = rng_() % 2 ? 512 : 4096;
    fault_ = static_cast<Fault>(rng_() % static_cast<int>(Fault::kCount));
  }

  void Run() {
    const int steps = 6 + static_cast<int>(rng_() % 14);
    const int fault_step = static_cast<int>(rng_() % steps);
    for (int step = 0; step < steps && !dead_; ++step) {
      if (step == fault_step) Arm();
      if (step == fault_step + 3) env_.ClearFaults();  // a full disk or a bad page does not last forever
      Step();
    }
    db_.reset();  // (its Close may try to write: harmless, whatever the faults)
    if (fault_ == Fault::kCrash || rng_() % 2 == 0) {
      env_.PowerLoss(RandomLoss(rng_), rng_());
      ++c_->power_losses;
    }
    env_.ClearFaults();
    Verify();
  }

 private:
  // --- The model: every state the file may be in, and what the engine said about each. ---

  // A new state, child of `parent`, with one more unique key (so no two states are equal).
  int NewState(int parent, const Tables& contents) {
    states_.push_back(contents);
    (void)parent;
    return static_cast<int>(states_.size()) - 1;
  }

  // Which known state `got` is, and whether the engine was allowed to produce it.
  bool Judge(const Tables& got, const std::string& where) {
    int match = -1;
    for (int i = 0; i < static_cast<int>(states_.size()); ++i) {
      if (Diff(got, states_[i]).empty()) {
        match = i;
        break;
      }
    }
    if (match >= 0 && (match == acked_ || maybe_.contains(match))) {
      current_ = match;
      return true;
    }
    if (match >= 0 && unchanged_.contains(match)) {
      ++c_->appeared_after_unchanged;
      Problem(where + ": holds state " + std::to_string(match) + ", whose Commit said unchanged");
    } else {
      ++c_->lost_acknowledged;
      Problem(where + ": holds " +
              (match >= 0 ? "state " + std::to_string(match) : "contents no commit made") +
              ", not the acknowledged state " + std::to_string(acked_) +
              (acked_ >= 0 ? " (" + Diff(got, states_[acked_]) + ")" : ""));
    }
    current_ = match;
    return false;
  }

  void Problem(const std::string& what) {
    if (c_->problems.size() < 10) {
      c_->problems.push_back("seed " + std::to_string(seed_) + " (" + FaultName(fault_) + ", " +
                             std::to_string(page_size_) + "-byte pages): " + what);
    }
  }

  // An operation returned `s`: counts it, and notes when the simulated process died.
  bool Failed(const Status& s) {
    ++c_->operations;
    if (s.ok()) return false;
    ++c_->clean_failures;
    if (s.message().find("injected crash") != std::string::npos) dead_ = true;
    return true;
  }

  // --- Faults ---

  void Arm() {
    switch (fault_) {
      case Fault::kFailOp: env_.FailOpAt(env_.OpCount() + rng_() % 40); break;
      case Fault::kFailTwoOps: {
        const uint64_t at = env_.OpCount() + rng_() % 40;
        env_.FailOpAt(at);
        env_.FailOpAt(at + 1);
        break;
      }
      case Fault::kFullDisk: {
        const uint64_t size = env_.FileExists(kPath).value_or(false) ? FileSize(&env_, kPath) : 0;
        env_.SetDiskCapacity(size + rng_() % (8 * page_size_));
        break;
      }
      case Fault::kCrash: env_.CrashAfterOps(rng_() % 60); break;
      case Fault::kPowerCut:
        db_.reset();
        env_.PowerLoss(RandomLoss(rng_), rng_());
        ++c_->power_losses;
        break;
      case Fault::kFailRead: env_.FailReadAt(env_.ReadCount() + rng_() % 60); break;
      case Fault::kBadPage: {
        const uint64_t size = env_.FileExists(kPath).value_or(false) ? FileSize(&env_, kPath) : 0;
        const uint64_t pages = size / page_size_;
        if (pages > 0) env_.FailReadsOf(kPath, (rng_() % pages) * page_size_, page_size_);
        break;
      }
      case Fault::kCount: break;
    }
  }

  // --- The workload ---

  void Step() {
    if (db_ == nullptr) {
      Open(/*read_only=*/rng_() % 5 == 0);
      return;
    }
    const uint64_t r = rng_() % 20;
    if (r < 15) {
      Commit();
    } else if (r < 17) {
      Status s = db_->Close();
      db_.reset();
      Failed(s);
    } else if (r < 18) {
      Failed(db_->Compact());  // contents unchanged whatever happens
    } else {
      auto got = db_->BeginRead();
      if (!Failed(got.status())) {
        Tables t;
        if (Read(**got, &t)) Judge(t, "a read of the open database");
      }
    }
  }

  void Open(bool read_only) {
    Options o;
    o.env = &env_;
    o.page_size = page_size_;
    o.read_only = read_only;
    auto db = Database::Open(kPath, o);
    if (Failed(db.status())) return;
    if (acked_ < 0) {
      // The file was created (or found without a commit): the empty state is acknowledged.
      states_.push_back({});
      acked_ = static_cast<int>(states_.size()) - 1;
    }
    Tables t;
    auto r = (*db)->BeginRead();
    if (Failed(r.status()) || !Read(**r, &t)) return;
    r = Result<std::unique_ptr<ReadTransaction>>(Status::Busy("done"));
    Judge(t, read_only ? "a read-only open during the workload" : "an open during the workload");
    if (!read_only) db_ = std::move(db).value();
  }

  // Reads every table; false (counted) when a read fails.
  bool Read(ReadTransaction& r, Tables* out) {
    auto names = r.ListTables();
    if (Failed(names.status())) return false;
    for (const std::string& name : names.value()) {
      auto t = r.OpenTable(name);
      if (Failed(t.status())) return false;
      Table& table = (*out)[name];
      auto c = (*t)->NewCursor();
      for (c->SeekToFirst(); c->Valid(); c->Next())
        table.emplace(std::string(c->key()), std::string(c->value()));
      if (Failed(c->status())) return false;
    }
    return true;
  }

  void Commit() {
    if (current_ < 0) return;
    Tables next = states_[current_];
    auto w = db_->BeginWrite();
    if (Failed(w.status())) {
      db_.reset();
      return;
    }
    const std::string tname = rng_() % 3 == 0 ? "checks" : "watermarks";
    auto t = (*w)->OpenTable(tname);
    if (Failed(t.status())) return;
    Table& m = next[tname];
    // One unique key per commit, so every state differs from every other.
    const std::string unique = "commit-" + std::to_string(states_.size());
    const bool large = rng_() % 8 == 0;  // more pages than a slot lists: synced before the slot
    const int inserts = large ? 120 : 1 + static_cast<int>(rng_() % 6);
    std::vector<std::pair<std::string, std::string>> kv = {{unique, "u"}};
    for (int i = 0; i < inserts; ++i) {
      const std::string k = "table-" + std::to_string(rng_() % 300);
      kv.emplace_back(k, MakeValue(rng_(), rng_() % 10 == 0 ? 2000 + rng_() % 3000 : rng_() % 200));
    }
    for (const auto& [k, v] : kv) {
      if (Failed((*t)->Insert(k, v).status())) return;
      m[k] = v;
    }
    if (rng_() % 3 == 0 && !m.empty()) {
      const std::string victim = "table-" + std::to_string(rng_() % 300);
      auto removed = (*t)->Remove(victim);
      if (Failed(removed.status())) return;
      m.erase(victim);
    }
    const int id = NewState(current_, next);
    Status s = (*w)->Commit();
    if (!Failed(s)) {
      // Durable: this is what the file holds from now on, whatever happens. Earlier unknown outcomes are
      // settled (superseded by it).
      acked_ = id;
      current_ = id;
      maybe_.clear();
      unchanged_.clear();
      return;
    }
    if (s.code() == Status::Code::kOutcomeUnknown) {
      ++c_->unknown_outcomes;
      maybe_.insert(id);
    } else {
      unchanged_.insert(id);
    }
    db_.reset();  // poisoned
  }

  // --- The verdict ---

  void Verify() {
    Options o;
    o.env = &env_;
    o.page_size = page_size_;
    const bool exists = env_.FileExists(kPath).value();
    if (!exists) {
      // Only before the creation was acknowledged may the file be missing.
      if (acked_ >= 0) {
        ++c_->lost_acknowledged;
        Problem("the file is gone after its creation was acknowledged");
      }
    } else {
      o.read_only = true;
      auto ro = Database::Open(kPath, o);
      if (!ro.ok()) {
        ++c_->unopenable;
        Problem("read-only open after the faults: " + ro.status().ToString());
      } else if (acked_ >= 0) {
        auto r = (*ro)->BeginRead();
        Tables t;
        if (r.ok() && Read(**r, &t)) {
          Judge(t, "a read-only open after the faults");
        } else {
          ++c_->unopenable;
          Problem("read-only read after the faults: " + r.status().ToString());
        }
      }
    }
    o.read_only = false;
    auto db = Database::Open(kPath, o);
    if (!db.ok()) {
      ++c_->unopenable;
      Problem("open after the faults: " + db.status().ToString());
      return;
    }
    Tables t;
    auto r = (*db)->BeginRead();
    if (!r.ok() || !Read(**r, &t)) {
      ++c_->unopenable;
      Problem("read after the faults: " + r.status().ToString());
      return;
    }
    r = Result<std::unique_ptr<ReadTransaction>>(Status::Busy("done"));
    if (acked_ >= 0) {
      Judge(t, "the open after the faults");
    } else if (!t.empty()) {
      ++c_->lost_acknowledged;
      Problem("a file whose creation never returned OK holds data");
    }
    auto report = (*db)->CheckIntegrity();
    if (!report.ok()) {
      ++c_->crashes;
      Problem("integrity after recovery: " + report.status().ToString());
    }
    // And it takes commits again.
    auto w = (*db)->BeginWrite();
    Status s = w.status();
    if (s.ok()) {
      auto tb = (*w)->OpenTable("after");
      s = tb.status();
      if (s.ok()) s = (*tb)->Insert("k", "v").status();
      if (s.ok()) s = (*w)->Commit();
    }
    if (!s.ok()) {
      ++c_->unopenable;
      Problem("commit after the faults: " + s.ToString());
    }
  }

  const uint64_t seed_;
  std::mt19937_64 rng_;
  Counters* c_;
  uint32_t page_size_ = 512;
  Fault fault_ = Fault::kFailOp;
  FaultInjectionEnv env_;
  std::unique_ptr<Database> db_;
  bool dead_ = false;  // the simulated process died (CrashAfterOps fired)

  std::vector<Tables> states_;
  int acked_ = -1;           // the last state a Commit (or the creating Open) acknowledged
  int current_ = -1;         // the state the open handle (or the last open) showed
  std::set<int> maybe_;      // states whose Commit said kOutcomeUnknown since acked_
  std::set<int> unchanged_;  // states whose Commit said "not committed; the state is unchanged"
};

}  // namespace

TEST_CASE("fault trials: random workloads with injected faults never lose or invent a commit") {
  const uint64_t trials = EnvNumber("ROCKY_FAULT_TRIALS", rocky::tests::FullSweeps() ? 3000 : 300);
  const uint64_t first_seed = EnvNumber(
      "ROCKY_FAULT_SEED", rocky::tests::SweepSeed() == 0 ? 1 : rocky::tests::SweepSeed() % 1000000000 + 1);
  Counters c;
  for (uint64_t seed = first_seed; seed < first_seed + trials; ++seed) {
    ++c.trials;
    try {
      Trial(seed, &c).Run();
    } catch (const std::exception& e) {
      ++c.crashes;
      if (c.problems.size() < 10)
        c.problems.push_back("seed " + std::to_string(seed) + ": exception " + e.what());
    }
  }
  MESSAGE("fault trials: " << c.trials << " trials (seeds " << first_seed << ".." << first_seed + trials - 1
                           << "), " << c.operations << " operations, " << c.clean_failures
                           << " clean failures (" << c.unknown_outcomes
                           << " commits with an unknown outcome), " << c.power_losses
                           << " power losses; crashes " << c.crashes << ", lost acknowledged commits "
                           << c.lost_acknowledged << ", values after \"unchanged\" "
                           << c.appeared_after_unchanged << ", files left unopenable " << c.unopenable);
  for (const std::string& p : c.problems) MESSAGE(p);
  CHECK(c.crashes == 0);
  CHECK(c.lost_acknowledged == 0);
  CHECK(c.appeared_after_unchanged == 0);
  CHECK(c.unopenable == 0);
  CHECK(c.clean_failures > 0);  // the faults did fire
}

}  // namespace rocky::engine::testing
