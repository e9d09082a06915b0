// Helpers shared by the engine's randomized, crash, concurrency and maintenance tests.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "rocky/engine/db.h"
#include "rocky/engine/env.h"
#include "temp_dir.h"

namespace rocky::engine::testing {

// Every table of a snapshot: name -> (key -> value).
using Table = std::map<std::string, std::string>;
using Tables = std::map<std::string, Table>;

inline std::unique_ptr<Database> OpenOrDie(Env* env, const std::string& path, uint32_t page_size = 4096,
                                           Durability durability = Durability::kDurable) {
  Options o;
  o.env = env;
  o.page_size = page_size;
  o.durability = durability;
  auto db = Database::Open(path, o);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  return std::move(db).value();
}

// Reads every table of a read transaction; fails the test on any error.
inline Tables DumpSnapshot(ReadTransaction& r) {
  Tables out;
  auto names = r.ListTables();
  REQUIRE_MESSAGE(names.ok(), names.status().ToString());
  for (const std::string& name : names.value()) {
    auto t = r.OpenTable(name);
    REQUIRE_MESSAGE(t.ok(), t.status().ToString());
    Table& table = out[name];
    auto c = (*t)->NewCursor();
    for (c->SeekToFirst(); c->Valid(); c->Next())
      table.emplace(std::string(c->key()), std::string(c->value()));
    REQUIRE_MESSAGE(c->status().ok(), c->status().ToString());
    REQUIRE_MESSAGE((*t)->Len() == table.size(), "table '" << name << "': Len() " << (*t)->Len() << " but "
                                                           << table.size() << " keys iterate");
  }
  return out;
}

inline Tables DumpDb(Database& db) {
  auto r = db.BeginRead();
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return DumpSnapshot(**r);
}

inline void RequireIntegrity(Database& db) {
  auto report = db.CheckIntegrity();
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
}

// Short description of the first difference between two snapshots, or "" when equal.
inline std::string Diff(const Tables& got, const Tables& want) {
  for (const auto& [name, table] : want) {
    auto it = got.find(name);
    if (it == got.end()) return "missing table '" + name + "'";
    if (it->second.size() != table.size()) {
      return "table '" + name + "': " + std::to_string(it->second.size()) + " keys, want " +
             std::to_string(table.size());
    }
    auto a = it->second.begin();
    for (auto b = table.begin(); b != table.end(); ++a, ++b) {
      if (a->first != b->first) return "table '" + name + "': key differs near '" + b->first + "'";
      if (a->second != b->second) {
        return "table '" + name + "': value of '" + b->first + "' has " + std::to_string(a->second.size()) +
               " bytes, want " + std::to_string(b->second.size()) +
               (a->second.size() == b->second.size() ? " (differs)" : "");
      }
    }
  }
  for (const auto& [name, table] : got) {
    if (!want.contains(name)) return "unexpected table '" + name + "'";
  }
  return "";
}

// A value whose bytes are a function of (seed, size), so mismatches show up as more than a length difference.
inline std::string MakeValue(uint64_t seed, size_t size) {
  std::string v(size, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + size;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v[i] = static_cast<char>(x);
  }
  return v;
}

// A fresh private folder, removed with everything in it at the end (tests/support/temp_dir.h).
struct TempDir : rocky_test::TempDir {
  TempDir() : rocky_test::TempDir("engine") {}
};

// Size of a file of an in-memory Env. Not for the POSIX Env: opening and closing another descriptor of a
// database file would drop the process's record locks on it.
inline uint64_t FileSize(Env* env, const std::string& path) {
  auto f = env->OpenFile(path, FileOpenOptions{});
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  auto size = (*f)->Size();
  REQUIRE(size.ok());
  return size.value();
}

}  // namespace rocky::engine::testing
