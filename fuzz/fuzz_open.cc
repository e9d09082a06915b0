// fuzz_open: arbitrary bytes as a database file. Opening, reading every table, the integrity check and
// closing must never crash, hang, leak or read out of bounds: every problem is a Status.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "rocky/engine/db.h"
#include "rocky/engine/env.h"

using namespace rocky::engine;

namespace {

// Iteration is capped: a damaged file may make a tree reach the same subtree along many paths.
constexpr int kMaxSteps = 20000;

void Exercise(Database& db) {
  auto r = db.BeginRead();
  if (!r.ok()) return;
  auto tables = (*r)->ListTables();
  if (tables.ok()) {
    for (const std::string& name : *tables) {
      auto t = (*r)->OpenTable(name);
      if (!t.ok()) continue;
      auto c = (*t)->NewCursor();
      int steps = 0;
      for (c->SeekToFirst(); c->Valid() && steps < kMaxSteps; c->Next(), ++steps) {
        std::string v;
        (void)(*t)->Get(c->key(), &v);
      }
      for (c->SeekToLast(); c->Valid() && steps < 2 * kMaxSteps; c->Prev(), ++steps) {
      }
      c->Seek("m");
      c->SeekForPrev("m");
    }
  }
  r.value().reset();
  (void)db.CheckIntegrity();
  (void)db.GetStats();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto env = NewMemoryEnv();
  {
    FileOpenOptions fo;
    fo.create = true;
    auto f = env->OpenFile("/fuzz.redb", fo);
    if (!f.ok()) return 0;
    if (!(*f)->Write(0, std::string_view(reinterpret_cast<const char*>(data), size)).ok()) return 0;
  }
  for (bool read_only : {true, false}) {
    Options o;
    o.env = env.get();
    // A small cache: the default 64 MiB costs more to set up than a whole run on a small input (the fuzzer
    // made ~50 runs a second with it), and a small one exercises eviction as well.
    o.cache_bytes = 256 << 10;
    o.read_only = read_only;
    o.create_if_missing = false;
    auto db = Database::Open("/fuzz.redb", o);
    if (!db.ok()) continue;
    Exercise(**db);
    if (!read_only) {
      // A write on top of whatever was recovered must also fail cleanly or succeed.
      auto w = (*db)->BeginWrite();
      if (w.ok()) {
        auto t = (*w)->OpenTable("fuzz");
        if (t.ok()) (void)(*t)->Insert("k", "v");
        (void)(*w)->Commit();
      }
    }
    (void)(*db)->Close();
  }
  return 0;
}
