// CommitWalker: visits every page reachable from one commit, checking it, and counts what it finds.
//
// Used by CheckIntegrity (reading every page from disk, so every checksum is really verified) and by
// GetStats (through the cache). Checks: checksums, node structure, key order within and across pages
// (each subtree's keys lie between its separators), equal leaf depth, table lengths against their catalog
// records, overflow run lengths (of values, keys and separators), every page referenced once, page txn ids
// not newer than the commit (tree pages, runs and the allocator's pages), and that the allocator's bitmaps
// mark exactly the reachable pages as used.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "btree/node.h"
#include "db/commit_slot.h"
#include "page/pager.h"
#include "rocky/engine/db.h"

namespace rocky::engine {

class CommitWalker {
 public:
  // Requires: pager and the slot's file outlive the walker. from_disk bypasses the page cache.
  CommitWalker(Pager* pager, const CommitSlot& slot, bool from_disk);

  // Walks everything; the first problem found is returned, naming the page and table.
  Status Walk();

  const Stats& stats() const { return stats_; }
  const IntegrityReport& report() const { return report_; }

 private:
  Status Mark(uint64_t first, uint64_t n, const std::string& what);
  Result<PageRef> ReadNode(uint64_t id, const std::string& what);
  // Corruption naming `what` when the page's txn_id is higher than the commit's: every page a commit reaches
  // was written by it or by an earlier one (FORMAT.md, the common page header).
  Status NotNewerThanCommit(const char* page, const std::string& what) const;
  // The whole key an entry stands for; an overflow key's run is marked, read from disk, checked against the
  // entry (length, stored prefix) and counted. `where` names the page holding the entry.
  Result<std::string> WholeKey(const StoredKey& key, const std::string& where);
  Status WalkTree(uint64_t root, const std::string& what, bool is_catalog, uint64_t* entries);
  Status WalkNode(uint64_t id, const std::string& what, bool is_catalog, int depth,
                  const std::optional<std::string>& lower, const std::optional<std::string>& upper,
                  int* leaf_depth, uint64_t* entries);
  Status WalkFreeMap();

  Pager* pager_;
  CommitSlot slot_;
  bool from_disk_;
  uint32_t page_size_;
  std::vector<uint64_t> reachable_;  // bit per page
  Stats stats_;
  IntegrityReport report_;
  uint64_t tree_bytes_used_ = 0;  // bytes of tree pages holding entries and headers (for fragmentation)
  uint64_t entries_total_ = 0;    // keys across all user tables
};

}  // namespace rocky::engine
