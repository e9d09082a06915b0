// Model-based randomized tests: random operations on the engine and on std::map models, compared at every
// step.
//
// Each test case runs a fixed seed (reported on failure); the workload mixes inserts, replaces, removes,
// range removes, point reads, cursor walks in both directions with random bounds, table creation and
// deletion, commits (durable and kNoSync), aborts, destroyed transactions, reopens, long-lived read
// snapshots, compaction and integrity checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine_test_util.h"
#include "rocky/engine/db.h"
#include "rocky/engine/env.h"

namespace rocky::engine::testing {
namespace {

class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  uint64_t Uniform(uint64_t n) { return n == 0 ? 0 : g_() % n; }
  bool OneIn(uint64_t n) { return Uniform(n) == 0; }
  uint64_t Next() { return g_(); }

 private:
  std::mt19937_64 g_;
};

uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A prefix that many keys share: `len` bytes, a function of len alone. Keys that share one longer than the
// inline key limit differ only past the bytes their leaf entries store, so comparing them reads key runs.
std::string SharedPrefix(size_t len) {
  std::string p(len, '\0');
  for (size_t j = 0; j < len; ++j) p[j] = static_cast<char>('P' + (j * 7) % 23);
  return p;
}

// Key number i: a prefix (a short one from a small set, so prefix ranges select something, or a long shared
// one at or past the inline key limit), a unique middle, and for one key in long_every padding to a length
// near the inline key limit (one byte either side included) or to several pages. Key 0 is the empty key.
std::string KeyFor(uint64_t i, uint32_t page_size, uint64_t long_every = 40) {
  if (i == 0) return "";
  static const std::string kPrefixes[] = {"a",
                                          "ab",
                                          "abc",
                                          "b/",
                                          "b/x",
                                          std::string("\xff", 1),
                                          std::string("\xff\xff", 2),
                                          std::string("\0", 1),
                                          std::string("\0\xff", 2),
                                          "k"};
  const uint64_t h = Mix(i);
  const size_t limit = InlineKeyLimit(page_size);
  std::string k;
  switch ((h >> 40) % 16) {
    case 0:
    case 1: k = SharedPrefix(page_size + page_size / 2); break;  // past the limit: only the runs decide
    case 2: k = SharedPrefix(limit - 20); break;                 // keys on both sides of the limit
    case 3: k = SharedPrefix(limit + 3); break;                  // the inline prefix is all shared
    default: k = kPrefixes[h % 10]; break;
  }
  for (uint64_t v = i; v != 0; v >>= 5) k.push_back(static_cast<char>('0' + (v & 31)));
  if ((h >> 8) % long_every == 0) {
    const uint64_t r = (h >> 16) % 8;
    // Half of them straddle the limit (limit-2 .. limit+2 bytes), the rest span up to three pages.
    const size_t want = r < 4 ? limit - 2 + (h >> 24) % 5 : limit + 1 + (h >> 24) % (3 * page_size);
    while (k.size() < want) k.push_back(static_cast<char>(h >> (k.size() % 56)));
  } else {
    const size_t extra = (h >> 16) % 12;
    for (size_t j = 0; j < extra; ++j) k.push_back(static_cast<char>(Mix(h + j)));
  }
  return k;
}

size_t ValueSize(Rng& rng, uint32_t page_size, bool allow_huge) {
  const uint64_t roll = rng.Uniform(1000);
  if (roll < 550) return rng.Uniform(24);
  if (roll < 850) return rng.Uniform(page_size / 3);
  if (roll < 995 || !allow_huge) return page_size / 2 + rng.Uniform(3 * page_size);
  return 20000 + rng.Uniform(80 * 1024);  // multi-page overflow runs, up to ~100 KiB
}

// The position of a model cursor: an iterator, or nothing when the cursor is not valid.
struct ModelCursor {
  const Table* m;
  std::optional<std::string> lo;
  std::optional<std::string> hi;
  std::optional<Table::const_iterator> it;

  bool InRange(Table::const_iterator i) const {
    return i != m->end() && (!lo || i->first >= *lo) && (!hi || i->first < *hi);
  }
  void Set(Table::const_iterator i) { it = InRange(i) ? std::optional(i) : std::nullopt; }
  void SeekToFirst() { Set(lo ? m->lower_bound(*lo) : m->begin()); }
  void SeekToLast() {
    auto i = hi ? m->lower_bound(*hi) : m->end();
    if (i == m->begin()) {
      it.reset();
      return;
    }
    Set(std::prev(i));
  }
  void Seek(const std::string& t) { Set(m->lower_bound(lo && t < *lo ? *lo : t)); }
  void SeekForPrev(const std::string& t) {
    if (hi && t >= *hi) return SeekToLast();
    auto i = m->upper_bound(t);
    if (i == m->begin()) {
      it.reset();
      return;
    }
    Set(std::prev(i));
  }
  void Next() {
    if (it) Set(std::next(*it));
  }
  void Prev() {
    if (!it) return;
    if (*it == m->begin()) {
      it.reset();
      return;
    }
    Set(std::prev(*it));
  }
};

struct Workload {
  uint64_t seed;
  uint32_t page_size;
  int txns;
  uint64_t key_space;   // keys per table are drawn from [0, key_space)
  int max_ops;          // per transaction (some transactions do 5x more)
  double nosync_share;  // share of transactions committed kNoSync
  bool reopen = true;   // random Close + Open between transactions
  bool huge_values = true;
  uint64_t long_key_every = 40;  // one key in this many is near the inline key limit or several pages long
};

class ModelTest {
 public:
  explicit ModelTest(const Workload& w) : w_(w), rng_(w.seed), env_(NewMemoryEnv()) {
    db_ = OpenOrDie(env_.get(), "/model.redb", w.page_size);
  }

  void Run() {
    for (int txn = 0; txn < w_.txns; ++txn) {
      INFO("seed " << w_.seed << ", page size " << w_.page_size << ", transaction " << txn);
      RunTransaction(txn);
      BetweenTransactions(txn);
    }
    old_reader_.reset();
    RequireIntegrity(*db_);
    REQUIRE(Diff(DumpDb(*db_), committed_).empty());
    auto stats = db_->GetStats();
    REQUIRE(stats.ok());
    MESSAGE("seed " << w_.seed << ": " << commits_ << " commits, " << stats->entries << " entries, depth "
                    << stats->tree_depth << ", " << stats->overflow_pages << " overflow pages, "
                    << stats->file_pages << " file pages, " << stats->free_pages << " free");
    REQUIRE(db_->Close().ok());
    db_ = OpenOrDie(env_.get(), "/model.redb", w_.page_size);
    REQUIRE(Diff(DumpDb(*db_), committed_).empty());
    RequireIntegrity(*db_);
  }

  int commits() const { return commits_; }

 private:
  std::string RandomTableName() {
    static const char* kNames[] = {"t0", "t1", "t2", "orders", "a.very.long.table.name.for.the.catalog"};
    const uint64_t pick = rng_.Uniform(6);
    // A name of two pages: its catalog entry holds a key run and its record goes to a run of its own.
    if (pick == 5) return "long." + SharedPrefix(2 * w_.page_size);
    return kNames[pick];
  }

  std::string RandomKey() { return KeyFor(rng_.Uniform(w_.key_space), w_.page_size, w_.long_key_every); }

  // A target for Seek: an existing key, a random key, or a prefix/extension of one.
  std::string RandomTarget(const Table& m) {
    std::string k = RandomKey();
    if (!m.empty() && rng_.OneIn(2)) {
      auto it = m.lower_bound(k);
      if (it == m.end()) it = m.begin();
      k = it->first;
    }
    switch (rng_.Uniform(4)) {
      case 0: k.resize(rng_.Uniform(k.size() + 1)); break;
      case 1: k.push_back(static_cast<char>(rng_.Uniform(256))); break;
      default: break;
    }
    return k;
  }

  KeyRange RandomRange(const Table& m) {
    switch (rng_.Uniform(4)) {
      case 0: return KeyRange::All();
      case 1: {
        std::string p = RandomTarget(m);
        p.resize(std::min<size_t>(p.size(), rng_.Uniform(4)));
        return KeyRange::Prefix(p);
      }
      default: {
        KeyRange r;
        if (!rng_.OneIn(4)) r.lower = RandomTarget(m);
        if (!rng_.OneIn(4)) r.upper = RandomTarget(m);
        if (r.lower && r.upper && *r.upper < *r.lower && rng_.OneIn(2)) std::swap(r.lower, r.upper);
        return r;
      }
    }
  }

  // Mostly narrow ranges (a few dozen keys), so range removals do not keep emptying the tables.
  KeyRange RemovalRange(const Table& m) {
    const uint64_t roll = rng_.Uniform(10);
    if (roll < 7 && !m.empty()) {
      auto it = m.lower_bound(RandomKey());
      if (it == m.end()) it = m.begin();
      KeyRange r;
      r.lower = it->first;
      for (uint64_t n = 1 + rng_.Uniform(40); n > 0 && it != m.end(); --n) ++it;
      if (it != m.end()) r.upper = it->first;
      return r;
    }
    if (roll < 9) {
      std::string p = RandomTarget(m);
      p.resize(std::min<size_t>(p.size(), 3 + rng_.Uniform(3)));
      return KeyRange::Prefix(p);
    }
    return RandomRange(m);
  }

  // Walks a cursor and a model cursor with the same random moves, comparing after each.
  void CheckCursor(const ReadableTable& table, const Table& m) {
    const KeyRange range = RandomRange(m);
    auto c = table.NewCursor(range);
    ModelCursor mc{&m, range.lower, range.upper, std::nullopt};
    auto compare = [&](const char* what) {
      REQUIRE_MESSAGE(c->status().ok(), c->status().ToString());
      REQUIRE_MESSAGE(c->Valid() == mc.it.has_value(), what);
      if (mc.it) {
        REQUIRE_MESSAGE(c->key() == (*mc.it)->first, what);
        REQUIRE_MESSAGE(c->value() == (*mc.it)->second, what);
      }
    };
    const int moves = 1 + static_cast<int>(rng_.Uniform(rng_.OneIn(5) ? 400 : 30));
    for (int i = 0; i < moves; ++i) {
      const uint64_t roll = rng_.Uniform(100);
      if (i == 0 || roll < 4) {
        switch (rng_.Uniform(4)) {
          case 0:
            c->SeekToFirst();
            mc.SeekToFirst();
            compare("SeekToFirst");
            break;
          case 1:
            c->SeekToLast();
            mc.SeekToLast();
            compare("SeekToLast");
            break;
          case 2: {
            const std::string t = RandomTarget(m);
            c->Seek(t);
            mc.Seek(t);
            compare("Seek");
            break;
          }
          default: {
            const std::string t = RandomTarget(m);
            c->SeekForPrev(t);
            mc.SeekForPrev(t);
            compare("SeekForPrev");
            break;
          }
        }
      } else if (roll < 55) {
        c->Next();
        mc.Next();
        compare("Next");
      } else {
        c->Prev();
        mc.Prev();
        compare("Prev");
      }
    }
  }

  void CheckGet(const ReadableTable& table, const Table& m) {
    const std::string k = rng_.OneIn(2) || m.empty() ? RandomKey() : RandomTarget(m);
    std::string v;
    auto found = table.Get(k, &v);
    REQUIRE_MESSAGE(found.ok(), found.status().ToString());
    auto it = m.find(k);
    REQUIRE(found.value() == (it != m.end()));
    if (it != m.end()) REQUIRE(v == it->second);
    auto exists = table.Get(k, nullptr);
    REQUIRE(exists.ok());
    REQUIRE(exists.value() == (it != m.end()));
  }

  void RunTransaction(int txn_no) {
    WriteOptions wo;
    const bool nosync = rng_.Uniform(1000) < static_cast<uint64_t>(w_.nosync_share * 1000);
    if (nosync) wo.durability = Durability::kNoSync;
    auto w = db_->BeginWrite(wo);
    REQUIRE_MESSAGE(w.ok(), w.status().ToString());
    Tables model = committed_;
    std::map<std::string, WritableTable*> open;
    auto table_for = [&](const std::string& name) -> WritableTable* {
      if (auto it = open.find(name); it != open.end()) return it->second;
      auto t = (*w)->OpenTable(name);
      REQUIRE_MESSAGE(t.ok(), t.status().ToString());
      model[name];  // created on first use
      open[name] = t.value();
      return t.value();
    };
    std::string name = RandomTableName();
    const int ops = 1 + static_cast<int>(rng_.Uniform(rng_.OneIn(6) ? 5 * w_.max_ops : w_.max_ops));
    for (int op = 0; op < ops; ++op) {
      INFO("op " << op);
      if (rng_.OneIn(15)) name = RandomTableName();
      WritableTable* t = table_for(name);
      Table& m = model[name];
      const uint64_t roll = rng_.Uniform(1000);
      if (roll < 420) {
        const std::string k = RandomKey();
        const std::string v = MakeValue(rng_.Next(), ValueSize(rng_, w_.page_size, w_.huge_values));
        auto r = t->Insert(k, v);
        REQUIRE_MESSAGE(r.ok(), r.status().ToString());
        REQUIRE(r.value() == m.contains(k));
        m[k] = v;
      } else if (roll < 600) {
        std::string k = RandomKey();
        if (!m.empty() && !rng_.OneIn(3)) {  // mostly keys that exist
          auto it = m.lower_bound(k);
          k = it == m.end() ? m.begin()->first : it->first;
        }
        auto r = t->Remove(k);
        REQUIRE_MESSAGE(r.ok(), r.status().ToString());
        REQUIRE(r.value() == (m.erase(k) == 1));
      } else if (roll < 603) {
        const KeyRange range = RemovalRange(m);
        uint64_t expected = 0;
        for (auto it = m.begin(); it != m.end();) {
          if ((!range.lower || it->first >= *range.lower) && (!range.upper || it->first < *range.upper)) {
            it = m.erase(it);
            ++expected;
          } else {
            ++it;
          }
        }
        auto r = t->RemoveRange(range);
        REQUIRE_MESSAGE(r.ok(), r.status().ToString());
        REQUIRE(r.value() == expected);
      } else if (roll < 750) {
        CheckGet(*t, m);
      } else if (roll < 900) {
        CheckCursor(*t, m);
      } else if (roll < 940) {
        REQUIRE(t->Len() == m.size());
      } else if (roll < 950) {
        auto names = (*w)->ListTables();
        REQUIRE_MESSAGE(names.ok(), names.status().ToString());
        std::vector<std::string> want;
        for (const auto& [n, unused] : model) want.push_back(n);
        REQUIRE(names.value() == want);
      } else if (roll < 950 + (rng_.OneIn(3) ? 1 : 0)) {
        const std::string victim = RandomTableName();
        auto r = (*w)->DeleteTable(victim);
        REQUIRE_MESSAGE(r.ok(), r.status().ToString());
        REQUIRE(r.value() == (model.erase(victim) == 1));
        open.erase(victim);
      } else if (roll < 955) {
        // A key of several pages sharing a long prefix with others, inserted and read back at once.
        const std::string k = SharedPrefix(InlineKeyLimit(w_.page_size) + 1) +
                              std::to_string(rng_.Uniform(w_.key_space)) +
                              std::string(rng_.Uniform(3 * w_.page_size), 'z');
        const std::string v = MakeValue(rng_.Next(), rng_.Uniform(40));
        auto r = t->Insert(k, v);
        REQUIRE_MESSAGE(r.ok(), r.status().ToString());
        REQUIRE(r.value() == m.contains(k));
        m[k] = v;
        std::string got;
        REQUIRE(t->Get(k, &got).value());
        REQUIRE(got == v);
      } else {
        // A full scan in both directions.
        auto c = t->NewCursor();
        auto it = m.begin();
        for (c->SeekToFirst(); c->Valid(); c->Next(), ++it) {
          REQUIRE(it != m.end());
          REQUIRE(c->key() == it->first);
        }
        REQUIRE(c->status().ok());
        REQUIRE(it == m.end());
        auto rit = m.rbegin();
        for (c->SeekToLast(); c->Valid(); c->Prev(), ++rit) {
          REQUIRE(rit != m.rend());
          REQUIRE(c->key() == rit->first);
          REQUIRE(c->value() == rit->second);
        }
        REQUIRE(rit == m.rend());
      }
    }
    const uint64_t end = rng_.Uniform(100);
    if (end < 80) {
      Status s = (*w)->Commit();
      REQUIRE_MESSAGE(s.ok(), s.ToString());
      committed_ = std::move(model);
      ++commits_;
      // A committed transaction is over: further use is refused.
      REQUIRE((*w)->OpenTable("t0").status().code() == Status::Code::kInvalidArgument);
      REQUIRE(!(*w)->Commit().ok());
    } else if (end < 90) {
      (*w)->Abort();
    }
    w->reset();  // destroying an uncommitted transaction aborts it
    const Tables now = DumpDb(*db_);
    REQUIRE_MESSAGE(Diff(now, committed_).empty(), Diff(now, committed_)
                                                       << " (after transaction " << txn_no << ")");
    // Read-only checks on the new snapshot through a read transaction.
    auto r = db_->BeginRead();
    REQUIRE(r.ok());
    for (int i = 0; i < 3 && !committed_.empty(); ++i) {
      auto pick = committed_.begin();
      std::advance(pick, static_cast<long>(rng_.Uniform(committed_.size())));
      auto t = (*r)->OpenTable(pick->first);
      REQUIRE_MESSAGE(t.ok(), t.status().ToString());
      CheckGet(**t, pick->second);
      CheckCursor(**t, pick->second);
    }
    REQUIRE((*r)->OpenTable("no such table").status().IsNotFound());
  }

  void BetweenTransactions(int txn_no) {
    // A long-lived snapshot must keep showing its commit while later transactions free and reuse pages.
    if (old_reader_ && rng_.OneIn(8)) {
      REQUIRE_MESSAGE(Diff(DumpSnapshot(*old_reader_), old_model_).empty(), "old snapshot changed");
      old_reader_.reset();
    } else if (!old_reader_ && rng_.OneIn(10)) {
      auto r = db_->BeginRead();
      REQUIRE(r.ok());
      old_reader_ = std::move(r).value();
      old_model_ = committed_;
    }
    if (txn_no % 25 == 24) RequireIntegrity(*db_);
    if (w_.reopen && rng_.OneIn(25)) {
      old_reader_.reset();
      REQUIRE(db_->Close().ok());
      db_.reset();
      db_ = OpenOrDie(env_.get(), "/model.redb", w_.page_size);
      REQUIRE_MESSAGE(Diff(DumpDb(*db_), committed_).empty(), "after reopen");
    }
    if (rng_.OneIn(60)) {
      if (old_reader_) {
        REQUIRE(db_->Compact().IsBusy());
        REQUIRE_MESSAGE(Diff(DumpSnapshot(*old_reader_), old_model_).empty(), "old snapshot changed");
        old_reader_.reset();
      }
      Status s = db_->Compact();
      REQUIRE_MESSAGE(s.ok(), s.ToString());
      REQUIRE_MESSAGE(Diff(DumpDb(*db_), committed_).empty(), "after compaction");
      RequireIntegrity(*db_);
    }
  }

  Workload w_;
  Rng rng_;
  std::unique_ptr<Env> env_;
  std::unique_ptr<Database> db_;
  Tables committed_;
  std::unique_ptr<ReadTransaction> old_reader_;
  Tables old_model_;
  int commits_ = 0;
};

}  // namespace

TEST_CASE("model: random operations on 512-byte pages (deep trees)") {
  for (uint64_t seed : {101, 202}) {
    CAPTURE(seed);
    Workload w{seed, 512, 400, 3000, 60, 0.2};
    ModelTest t(w);
    t.Run();
    CHECK(t.commits() > 250);
  }
}

TEST_CASE("model: long keys make deep trees with many branch splits and merges") {
  Workload w{606, 512, 220, 2500, 80, 0.2};
  w.long_key_every = 2;
  w.huge_values = false;
  ModelTest t(w);
  t.Run();
}

TEST_CASE("model: keys from empty to several pages, many sharing prefixes longer than a leaf stores") {
  for (uint32_t ps : {512u, 4096u}) {
    CAPTURE(ps);
    Workload w{707 + ps, ps, 200, 1500, 60, 0.2};
    w.long_key_every = 3;
    ModelTest t(w);
    t.Run();
  }
}

TEST_CASE("model: random operations on 4096-byte pages") {
  Workload w{303, 4096, 400, 8000, 80, 0.2};
  ModelTest t(w);
  t.Run();
}

TEST_CASE("model: small key space, many replaces and removes of the same keys") {
  Workload w{404, 512, 300, 200, 40, 0.3};
  w.huge_values = false;
  ModelTest t(w);
  t.Run();
}

TEST_CASE("model: kNoSync commits, then a durable commit and a reopen") {
  const uint64_t seed = 505;
  CAPTURE(seed);
  auto env = NewMemoryEnv();
  Rng rng(seed);
  Tables model;
  {
    auto db = OpenOrDie(env.get(), "/nosync.redb", 512, Durability::kNoSync);
    for (int txn = 0; txn < 120; ++txn) {
      auto w = db->BeginWrite();  // the database's default: kNoSync
      REQUIRE(w.ok());
      auto t = (*w)->OpenTable(txn % 3 == 0 ? "x" : "y");
      REQUIRE(t.ok());
      Table& m = model[txn % 3 == 0 ? "x" : "y"];
      for (int i = 0; i < 40; ++i) {
        const std::string k = KeyFor(rng.Uniform(1500), 512);
        if (rng.OneIn(4)) {
          REQUIRE((*t)->Remove(k).ok());
          m.erase(k);
        } else {
          const std::string v = MakeValue(rng.Next(), ValueSize(rng, 512, false));
          REQUIRE((*t)->Insert(k, v).ok());
          m[k] = v;
        }
      }
      REQUIRE((*w)->Commit().ok());
      REQUIRE(Diff(DumpDb(*db), model).empty());
    }
    // One durable commit makes everything durable.
    WriteOptions durable;
    durable.durability = Durability::kDurable;
    auto w = db->BeginWrite(durable);
    REQUIRE(w.ok());
    REQUIRE((*w)->OpenTable("z").value()->Insert("last", "durable").ok());
    model["z"]["last"] = "durable";
    REQUIRE((*w)->Commit().ok());
    RequireIntegrity(*db);
    // More kNoSync commits; Close makes them durable.
    for (int txn = 0; txn < 20; ++txn) {
      auto w2 = db->BeginWrite();
      auto t = (*w2)->OpenTable("y");
      const std::string k = KeyFor(rng.Uniform(1500), 512);
      REQUIRE((*t)->Insert(k, "after").ok());
      model["y"][k] = "after";
      REQUIRE((*w2)->Commit().ok());
    }
    REQUIRE(db->Close().ok());
  }
  auto db = OpenOrDie(env.get(), "/nosync.redb", 512);
  REQUIRE(Diff(DumpDb(*db), model).empty());
  RequireIntegrity(*db);
  // And the reopened file keeps working.
  {
    auto w = db->BeginWrite();
    auto t = (*w)->OpenTable("x");
    REQUIRE((*t)->RemoveRange(KeyRange::All()).ok());
    model["x"].clear();
    REQUIRE((*w)->Commit().ok());
  }
  REQUIRE(Diff(DumpDb(*db), model).empty());
  RequireIntegrity(*db);
}

}  // namespace rocky::engine::testing
