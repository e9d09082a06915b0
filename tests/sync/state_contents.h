// Shared by the remote-state backend tests: a state file with a few tables, and its whole contents, so a
// round trip can be compared table by table, entry by entry.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "rocky/engine/db.h"

namespace rocky_sync_test {

using Contents = std::map<std::string, std::map<std::string, std::string>>;

inline Contents ReadState(const std::string& path) {
  rocky::engine::Options options;
  options.read_only = true;
  options.create_if_missing = false;
  auto db = rocky::engine::Database::Open(path, options);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  auto r = (*db)->BeginRead();
  REQUIRE(r.ok());
  Contents out;
  auto names = (*r)->ListTables();
  REQUIRE(names.ok());
  for (const auto& name : *names) {
    auto t = (*r)->OpenTable(name);
    REQUIRE(t.ok());
    auto& table = out[name];
    auto c = (*t)->NewCursor();
    for (c->SeekToFirst(); c->Valid(); c->Next()) table[std::string(c->key())] = std::string(c->value());
    REQUIRE(c->status().ok());
  }
  return out;
}

// Replaces `path` with a state holding `tag` in every watermark, a history table, an empty table, and
// `random_bytes` of incompressible data (0: none). Returns its contents.
inline Contents MakeState(const std::string& path, const std::string& tag, size_t random_bytes = 0) {
  std::filesystem::remove(path);
  auto db = rocky::engine::Database::Open(path, rocky::engine::Options{});
  REQUIRE(db.ok());
  auto w = (*db)->BeginWrite();
  REQUIRE(w.ok());
  for (const char* name : {"watermarks", "check_history"}) {
    auto t = (*w)->OpenTable(name);
    REQUIRE(t.ok());
    for (int i = 0; i < 100; ++i) {
      REQUIRE((*t)->Insert("acme.orders" + std::to_string(i), tag + "/" + name + std::to_string(i)).ok());
    }
  }
  REQUIRE((*w)->OpenTable("empty").ok());
  if (random_bytes > 0) {
    std::mt19937_64 rng(42);
    std::string blob(random_bytes, '\0');
    for (auto& ch : blob) ch = static_cast<char>(rng());
    auto b = (*w)->OpenTable("blobs");
    REQUIRE(b.ok());
    REQUIRE((*b)->Insert("blob", blob).ok());
  }
  REQUIRE((*w)->Commit().ok());
  REQUIRE((*db)->Close().ok());
  return ReadState(path);
}

}  // namespace rocky_sync_test
