// Damaging a state file on purpose, for tests of what rocky does with a damaged page: find a table's pages
// with the engine's offline Inspector (read-only), then flip bytes inside one so that its checksum fails.
//
// Damage a page the newest commit did not write: the engine verifies the newest commit's own pages when it
// opens the file and falls back to the commit before when one is bad, so damage there is a different test.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rocky/engine/inspect.h"

namespace rocky_test {

// The root page of `table` in the current commit of the file at `path`.
inline uint64_t TableRootPage(const std::string& path, const std::string& table) {
  auto inspector = rocky::engine::Inspector::Open(path);
  REQUIRE_MESSAGE(inspector.ok(), inspector.status().ToString());
  auto tables = (*inspector)->ListTables();
  REQUIRE_MESSAGE(tables.ok(), tables.status().ToString());
  for (const auto& t : *tables) {
    if (t.name == table) return t.root;
  }
  FAIL("no table " << table << " in " << path);
  return 0;
}

// The page decoded (a branch's children are its leftmost_child and each entry's child; a leaf's keys are in
// entries).
inline rocky::engine::InspectedPage DescribePage(const std::string& path, uint64_t page) {
  auto inspector = rocky::engine::Inspector::Open(path);
  REQUIRE_MESSAGE(inspector.ok(), inspector.status().ToString());
  auto described = (*inspector)->DescribePage(page);
  REQUIRE_MESSAGE(described.ok(), described.status().ToString());
  return *described;
}

// The children of a branch page, in key order.
inline std::vector<uint64_t> BranchChildren(const std::string& path, uint64_t page) {
  const rocky::engine::InspectedPage branch = DescribePage(path, page);
  REQUIRE_MESSAGE(branch.kind_name == "branch", "page " << page << " is a " << branch.kind_name);
  std::vector<uint64_t> children{branch.leftmost_child};
  for (const auto& e : branch.entries) children.push_back(e.child);
  return children;
}

// The pages the newest commit wrote, as its commit slot lists them for recovery to verify.
inline std::vector<uint64_t> NewestCommitPages(const std::string& path) {
  auto inspector = rocky::engine::Inspector::Open(path);
  REQUIRE_MESSAGE(inspector.ok(), inspector.status().ToString());
  const int current = (*inspector)->current_slot();
  REQUIRE(current >= 0);
  return (*inspector)->slots()[static_cast<size_t>(current)].verify_list;
}

// The commit slot page (1 or 2) of the newest commit: damaging it makes Open fall back to the other slot.
inline uint64_t NewestCommitSlotPage(const std::string& path) {
  auto inspector = rocky::engine::Inspector::Open(path);
  REQUIRE_MESSAGE(inspector.ok(), inspector.status().ToString());
  const int current = (*inspector)->current_slot();
  REQUIRE(current >= 0);
  return (*inspector)->slots()[static_cast<size_t>(current)].page_id;
}

// The transaction id of the newest commit.
inline uint64_t NewestCommitId(const std::string& path) {
  auto inspector = rocky::engine::Inspector::Open(path);
  REQUIRE_MESSAGE(inspector.ok(), inspector.status().ToString());
  const int current = (*inspector)->current_slot();
  REQUIRE(current >= 0);
  return (*inspector)->slots()[static_cast<size_t>(current)].txn_id;
}

// Inverts 16 bytes in the middle of page `page` (well past its header): its checksum then fails.
inline void DamagePage(const std::string& path, uint64_t page, uint32_t page_size = 4096) {
  const int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  const off_t at = static_cast<off_t>(page * page_size + page_size / 2);
  unsigned char bytes[16];
  REQUIRE(::pread(fd, bytes, sizeof bytes, at) == static_cast<ssize_t>(sizeof bytes));
  for (unsigned char& b : bytes) b = static_cast<unsigned char>(~b);
  REQUIRE(::pwrite(fd, bytes, sizeof bytes, at) == static_cast<ssize_t>(sizeof bytes));
  REQUIRE(::fsync(fd) == 0);
  ::close(fd);
}

}  // namespace rocky_test
