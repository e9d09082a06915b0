// A failed Commit says what became of it (issue #16, point 3): "not committed; the state is unchanged" only
// when no reopen, crash or power cut can bring the commit back; kOutcomeUnknown otherwise, and then the next
// open settles it.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine_test_util.h"
#include "rocky/engine/db.h"
#include "rocky/engine/fault_injection_env.h"

namespace rocky::engine::testing {
namespace {

using LossMode = FaultInjectionEnv::LossMode;
constexpr uint32_t kPs = 512;

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// The commit under test: "k" = "new", small (one sync for pages and slot) or large (pages synced before the
// slot), over a file where "k" = "old".
struct Attempt {
  Status status;
  uint64_t txn = 0;
  uint64_t ops = 0;  // ops the commit took
};

std::unique_ptr<Database> Prepare(FaultInjectionEnv* env) {
  auto db = OpenOrDie(env, "/db", kPs);
  auto w = db->BeginWrite();
  REQUIRE((*w)->OpenTable("t").value()->Insert("k", "old").ok());
  REQUIRE((*w)->Commit().ok());
  return db;
}

Attempt CommitNew(Database& db, FaultInjectionEnv* env, bool large) {
  Attempt a;
  auto w = db.BeginWrite();
  REQUIRE(w.ok());
  a.txn = (*w)->id();
  auto t = (*w)->OpenTable("t").value();
  REQUIRE(t->Insert("k", "new").ok());
  if (large) {
    for (int i = 0; i < 200; ++i) REQUIRE(t->Insert("bulk" + std::to_string(i), std::string(150, 'b')).ok());
  }
  const uint64_t before = env->OpCount();
  a.status = (*w)->Commit();
  a.ops = env->OpCount() - before;
  return a;
}

// "k" as a fresh open sees it ("" when the open fails).
std::string Reopened(FaultInjectionEnv* env, uint64_t* commit_id = nullptr) {
  Options o;
  o.env = env;
  auto db = Database::Open("/db", o);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  if (commit_id != nullptr) *commit_id = (*db)->open_report().commit_id;
  RequireIntegrity(**db);
  return DumpDb(**db)["t"]["k"];
}

}  // namespace

TEST_CASE(
    "commit: a failed write or sync of a commit is certainly not committed; no reopen or power cut brings it "
    "back") {
  for (bool large : {false, true}) {
    uint64_t total = 0;
    {
      FaultInjectionEnv env;
      auto db = Prepare(&env);
      Attempt a = CommitNew(*db, &env, large);
      REQUIRE(a.status.ok());
      total = a.ops;
    }
    REQUIRE(total >= (large ? 4u : 3u));  // pages, (their sync,) slot, sync
    int failures = 0;
    for (uint64_t k = 0; k < total; ++k) {
      // Each failed op, then each way the disk can come back: as it is, or after a power cut.
      for (int after = 0; after < 5; ++after) {
        CAPTURE(large);
        CAPTURE(k);
        CAPTURE(after);
        FaultInjectionEnv env;
        auto db = Prepare(&env);
        env.FailOpAt(env.OpCount() + k);
        const Attempt a = CommitNew(*db, &env, large);
        REQUIRE_FALSE(a.status.ok());
        ++failures;
        CHECK_MESSAGE(a.status.code() != Status::Code::kOutcomeUnknown, a.status.ToString());
        CHECK_MESSAGE(Contains(a.status.message(), "not committed; the state is unchanged"),
                      a.status.ToString());
        // Poisoned: no more writes; readers still see the last commit.
        CHECK(db->BeginWrite().status().code() == Status::Code::kPoisoned);
        CHECK(DumpDb(*db)["t"]["k"] == "old");
        db.reset();
        if (after > 0) {
          env.PowerLoss(after == 1   ? LossMode::kDropAll
                        : after == 2 ? LossMode::kKeepRandom
                                     : LossMode::kTearRandom,
                        k * 7 + after);
        }
        uint64_t id = 0;
        CHECK(Reopened(&env, &id) == "old");
        CHECK(id < a.txn);
      }
    }
    CHECK(failures == static_cast<int>(total) * 5);
  }
}

TEST_CASE(
    "commit: when the slot cannot be made invalid either, the outcome is unknown and the next open settles "
    "it") {
  int unknown = 0;
  int kept = 0;
  for (bool large : {false, true}) {
    uint64_t total = 0;
    {
      FaultInjectionEnv env;
      auto db = Prepare(&env);
      total = CommitNew(*db, &env, large).ops;
    }
    for (uint64_t k = 0; k < total; ++k) {
      for (int after = 0; after < 3; ++after) {
        CAPTURE(large);
        CAPTURE(k);
        CAPTURE(after);
        FaultInjectionEnv env;
        auto db = Prepare(&env);
        // The op k fails, and so does every op after it (the disk went away): nothing can be settled.
        env.CrashAfterOps(k);
        const Attempt a = CommitNew(*db, &env, large);
        REQUIRE_FALSE(a.status.ok());
        const bool is_unknown = a.status.code() == Status::Code::kOutcomeUnknown;
        if (is_unknown) {
          ++unknown;
          CHECK_MESSAGE(Contains(a.status.message(), "may have been kept; the next open will settle it"),
                        a.status.ToString());
          CHECK_FALSE(Contains(a.status.message(), "unchanged"));
        } else {
          CHECK_MESSAGE(Contains(a.status.message(), "not committed; the state is unchanged"),
                        a.status.ToString());
        }
        db.reset();
        if (after > 0)
          env.PowerLoss(after == 1 ? LossMode::kKeepRandom : LossMode::kTearRandom, k * 13 + after);
        env.CrashAfterOps(UINT64_MAX);
        uint64_t id = 0;
        const std::string got = Reopened(&env, &id);
        // The open settles it, and says which: the commit's id when it was kept.
        CHECK(got == (id == a.txn ? "new" : "old"));
        if (!is_unknown) CHECK(got == "old");
        if (got == "new") ++kept;
      }
    }
  }
  CHECK(unknown > 0);
  CHECK(kept > 0);  // an unknown outcome can be either: saying "unchanged" there would have been a lie
}

}  // namespace rocky::engine::testing
