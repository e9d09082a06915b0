// Concurrency: readers on many threads iterate stable snapshots while a writer commits; write transactions of
// several threads exclude each other. Meant to run clean under ThreadSanitizer too (meson
// -Db_sanitize=thread).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine_test_util.h"
#include "rocky/engine/db.h"
#include "rocky/engine/env.h"

namespace rocky::engine::testing {
namespace {

std::string GenValue(uint64_t gen, const std::string& key, size_t pad) {
  return "gen=" + std::to_string(gen) + ";key=" + key + ";" +
         std::string(pad, static_cast<char>('a' + gen % 26));
}

uint64_t ParseGen(std::string_view v) {
  if (v.substr(0, 4) != "gen=") return UINT64_MAX;
  uint64_t g = 0;
  for (size_t i = 4; i < v.size() && v[i] != ';'; ++i) g = g * 10 + static_cast<uint64_t>(v[i] - '0');
  return g;
}

// Collects failures from threads (doctest assertions are not thread-safe); checked on the main thread.
class Failures {
 public:
  void Add(std::string what) {
    std::lock_guard lock(mu_);
    if (list_.size() < 20) list_.push_back(std::move(what));
  }
  std::string Summary() {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& f : list_) out += f + "\n";
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> list_;
};

// Readers on several threads walk snapshots of path (in env) while a writer commits generation after
// generation, reusing the pages readers no longer reach.
void ReadersSeeConsistentSnapshots(Env* env, const std::string& path) {
  auto db = OpenOrDie(env, path, 512);
  constexpr int kGenerations = 600;
  constexpr int kReaders = 4;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> snapshots_checked{0};
  Failures failures;

  // Generation g: table "data" holds keys k0000 .. k(n-1) with n = 50 + (g * 37) % 150, each value naming g;
  // table "meta" holds gen = g and count = n. Overflow values every few generations.
  auto writer = std::thread([&] {
    for (uint64_t gen = 1; gen <= kGenerations; ++gen) {
      WriteOptions wo;
      wo.durability = gen % 3 == 0 ? Durability::kDurable : Durability::kNoSync;
      auto w = db->BeginWrite(wo);
      if (!w.ok()) {
        failures.Add("BeginWrite: " + w.status().ToString());
        break;
      }
      auto data = (*w)->OpenTable("data");
      auto meta = (*w)->OpenTable("meta");
      if (!data.ok() || !meta.ok()) {
        failures.Add("OpenTable failed");
        break;
      }
      const uint64_t n = 50 + (gen * 37) % 150;
      auto removed = (*data)->RemoveRange(KeyRange{});
      if (!removed.ok()) failures.Add(removed.status().ToString());
      for (uint64_t i = 0; i < n; ++i) {
        char key[16];
        snprintf(key, sizeof key, "k%04llu", static_cast<unsigned long long>(i));
        const size_t pad = (gen % 7 == 0 && i % 20 == 0) ? 2000 : i % 40;
        if (!(*data)->Insert(key, GenValue(gen, key, pad)).ok()) failures.Add("insert failed");
      }
      if (!(*meta)->Insert("gen", std::to_string(gen)).ok()) failures.Add("meta insert failed");
      if (!(*meta)->Insert("count", std::to_string(n)).ok()) failures.Add("meta insert failed");
      Status s = (*w)->Commit();
      if (!s.ok()) failures.Add("commit: " + s.ToString());
    }
    done = true;
  });

  auto reader = [&](int id) {
    uint64_t last_gen = 0;
    uint64_t last_snapshot = 0;
    while (!done.load()) {
      auto r = db->BeginRead();
      if (!r.ok()) {
        failures.Add("BeginRead: " + r.status().ToString());
        return;
      }
      if ((*r)->snapshot_id() < last_snapshot) failures.Add("snapshot ids went backwards");
      last_snapshot = (*r)->snapshot_id();
      auto meta = (*r)->OpenTable("meta");
      if (!meta.ok()) {
        if (!meta.status().IsNotFound()) failures.Add("open meta: " + meta.status().ToString());
        continue;  // before the first commit
      }
      std::string gen_s;
      std::string count_s;
      if (!(*meta)->Get("gen", &gen_s).value_or(false) || !(*meta)->Get("count", &count_s).value_or(false)) {
        failures.Add("meta keys missing");
        continue;
      }
      const uint64_t gen = std::stoull(gen_s);
      const uint64_t count = std::stoull(count_s);
      if (gen < last_gen) failures.Add("generations went backwards");
      last_gen = gen;
      auto data = (*r)->OpenTable("data");
      if (!data.ok()) {
        failures.Add("open data: " + data.status().ToString());
        continue;
      }
      if ((*data)->Len() != count) failures.Add("Len() differs from the count of its own snapshot");
      // Walk the snapshot several times, forward and backward, with the writer running meanwhile.
      for (int pass = 0; pass < 3; ++pass) {
        auto c = (*data)->NewCursor();
        uint64_t seen = 0;
        if (pass % 2 == 0) {
          for (c->SeekToFirst(); c->Valid(); c->Next(), ++seen) {
            if (ParseGen(c->value()) != gen)
              failures.Add("reader " + std::to_string(id) + ": value of another generation");
          }
        } else {
          for (c->SeekToLast(); c->Valid(); c->Prev(), ++seen) {
            if (ParseGen(c->value()) != gen) failures.Add("value of another generation (backward)");
          }
        }
        if (!c->status().ok()) failures.Add("cursor: " + c->status().ToString());
        if (seen != count)
          failures.Add("iterated " + std::to_string(seen) + " keys, want " + std::to_string(count));
        std::this_thread::yield();
      }
      std::string v;
      auto found = (*data)->Get("k0001", &v);
      if (!found.ok() || !found.value() || ParseGen(v) != gen)
        failures.Add("point read of another generation");
      ++snapshots_checked;
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i) readers.emplace_back(reader, i);
  // Stats and integrity checks from yet another thread, between the writer's commits.
  auto checker = std::thread([&] {
    while (!done.load()) {
      auto stats = db->GetStats();
      if (!stats.ok()) failures.Add("GetStats: " + stats.status().ToString());
      auto report = db->CheckIntegrity();
      if (!report.ok()) failures.Add("CheckIntegrity: " + report.status().ToString());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  writer.join();
  for (auto& t : readers) t.join();
  checker.join();
  const std::string summary = failures.Summary();
  CHECK_MESSAGE(summary.empty(), summary);
  CHECK(snapshots_checked.load() > 0);
  MESSAGE(snapshots_checked.load() << " snapshots checked during " << kGenerations << " commits");
  RequireIntegrity(*db);
}

}  // namespace

TEST_CASE("concurrency: readers see consistent snapshots while a writer commits") {
  auto env = NewMemoryEnv();
  ReadersSeeConsistentSnapshots(env.get(), "/conc.redb");
}

// The POSIX Env maps the file: readers use committed pages in place while the writer rewrites freed ones with
// pwrite, so a page must never be reused (or its verified state kept) while a reader's snapshot reaches it.
TEST_CASE("concurrency: readers of a memory-mapped file see consistent snapshots while a writer commits") {
  TempDir dir;
  ReadersSeeConsistentSnapshots(Env::Default(), dir.path() + "/conc.redb");
}

TEST_CASE("concurrency: BeginWrite blocks while another thread's write transaction is open") {
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/w.redb");
  auto first = db->BeginWrite();
  REQUIRE(first.ok());
  REQUIRE((*first)->OpenTable("t").value()->Insert("k", "from first").ok());

  std::atomic<bool> second_began{false};
  std::string second_saw;
  auto t = std::thread([&] {
    auto second = db->BeginWrite();  // blocks until the first commits
    second_began = true;
    if (!second.ok()) return;
    auto table = (*second)->OpenTable("t");
    if (!table.ok()) return;
    (void)(*table)->Get("k", &second_saw);
    (void)(*table)->Insert("k", "from second");
    (void)(*second)->Commit();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK_FALSE(second_began.load());
  // Readers never wait for the writer.
  {
    auto r = db->BeginRead();
    REQUIRE(r.ok());
    CHECK((*r)->OpenTable("t").status().IsNotFound());
  }
  // Nor does Compact: it refuses at once.
  CHECK(db->Compact().IsBusy());
  REQUIRE((*first)->Commit().ok());
  t.join();
  CHECK(second_began.load());
  CHECK(second_saw == "from first");
  CHECK(DumpDb(*db)["t"]["k"] == "from second");
}

TEST_CASE("concurrency: read-modify-write transactions from many threads never lose an update") {
  auto env = NewMemoryEnv();
  auto db = OpenOrDie(env.get(), "/counter.redb", 512);
  constexpr int kThreads = 4;
  constexpr int kIncrements = 150;
  Failures failures;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < kIncrements; ++n) {
        WriteOptions wo;
        wo.durability = n % 2 ? Durability::kNoSync : Durability::kDurable;
        auto w = db->BeginWrite(wo);
        if (!w.ok()) {
          failures.Add(w.status().ToString());
          return;
        }
        auto t = (*w)->OpenTable("counters");
        std::string v;
        const bool found = (*t)->Get("total", &v).value_or(false);
        const uint64_t total = found ? std::stoull(v) : 0;
        (void)(*t)->Insert("total", std::to_string(total + 1));
        (void)(*t)->Insert("thread" + std::to_string(i) + "-" + std::to_string(n), std::string(n % 50, 'x'));
        if (n % 10 == 9) {
          (*w)->Abort();  // an aborted increment does not count
          continue;
        }
        Status s = (*w)->Commit();
        if (!s.ok()) failures.Add(s.ToString());
      }
    });
  }
  for (auto& t : threads) t.join();
  const std::string summary = failures.Summary();
  CHECK_MESSAGE(summary.empty(), summary);
  const Tables all = DumpDb(*db);
  const int committed_per_thread = kIncrements - kIncrements / 10;
  CHECK(all.at("counters").at("total") == std::to_string(kThreads * committed_per_thread));
  CHECK(all.at("counters").size() == static_cast<size_t>(1 + kThreads * committed_per_thread));
  RequireIntegrity(*db);
}

}  // namespace rocky::engine::testing
