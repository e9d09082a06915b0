// Writes the seed corpus of fuzz_open: small real databases in several shapes (page sizes, overflow runs,
// deleted tables, kNoSync then durable commits, compaction), so the fuzzer starts from valid files and
// mutates them. Usage: make_corpus DIR
#include <cstdio>
#include <memory>
#include <string>

#include "rocky/engine/db.h"
#include "rocky/engine/env.h"

using namespace rocky::engine;

namespace {

// long_keys: keys past the inline key limit (a prefix in the leaf, the whole key on an overflow run), sharing
// a prefix longer than a leaf stores, so branch separators get runs too.
bool Make(const std::string& path, uint32_t page_size, int keys, int value_size, bool compact,
          bool long_keys = false) {
  std::remove(path.c_str());
  Options o;
  o.page_size = page_size;
  auto db = Database::Open(path, o);
  if (!db.ok()) return false;
  for (int round = 0; round < 3; ++round) {
    WriteOptions wo;
    wo.durability = round == 1 ? Durability::kNoSync : Durability::kDurable;
    auto w = (*db)->BeginWrite(wo);
    if (!w.ok()) return false;
    auto t = (*w)->OpenTable(round == 2 ? "history" : "watermarks");
    if (!t.ok()) return false;
    for (int i = 0; i < keys; ++i) {
      const std::string key = (long_keys ? std::string(2 * page_size, 'p') : std::string()) +
                              "acme.schema.table_" + std::to_string(i * 7 % keys);
      if (!(*t)->Insert(key,
                        std::string(static_cast<size_t>(value_size + i % 5), static_cast<char>('a' + i % 26)))
               .ok()) {
        return false;
      }
    }
    if (round == 2) {
      auto scratch = (*w)->OpenTable("scratch");
      if (!scratch.ok() || !(*scratch)->Insert("k", "v").ok()) return false;
      if (!(*w)->DeleteTable("scratch").ok()) return false;
      auto wm = (*w)->OpenTable("watermarks");
      if (!wm.ok() || !(*wm)->RemoveRange(KeyRange::Prefix("acme.schema.table_1")).ok()) return false;
    }
    if (!(*w)->Commit().ok()) return false;
  }
  if (compact && !(*db)->Compact().ok()) return false;
  return (*db)->Close().ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = Make(dir + "/tiny-512.redb", 512, 5, 10, false) &&
            Make(dir + "/tree-512.redb", 512, 60, 30, false) &&
            Make(dir + "/overflow-512.redb", 512, 6, 700, false) &&
            Make(dir + "/compacted-1024.redb", 1024, 40, 20, true) &&
            Make(dir + "/mixed-4096.redb", 4096, 30, 200, false) &&
            Make(dir + "/long-keys-512.redb", 512, 20, 40, false, true);
  if (!ok) {
    std::fprintf(stderr, "make_corpus: failed\n");
    return 1;
  }
  return 0;
}
