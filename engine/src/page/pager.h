// Pager: reads verified pages from the database file and writes batches of pages to it.
//
// Every page read goes through a checksum check (seeded with its id); a page that fails it is reported as
// Corruption naming the page, never returned. Writes are coalesced into large sequential writes.
// Thread-safe for reads; writes come from the single writer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "page/page.h"
#include "page/page_cache.h"
#include "rocky/engine/env.h"
#include "rocky/engine/status.h"

namespace rocky::engine {

class Pager {
 public:
  // Does not take ownership of file; it must outlive the pager.
  Pager(File* file, std::string path, uint32_t page_size, size_t cache_bytes);

  uint32_t page_size() const { return page_size_; }
  const std::string& path() const { return path_; }
  File* file() const { return file_; }

  // A tree or bitmap page (not an overflow run), verified, through the cache.
  Result<PageRef> ReadPage(uint64_t id);
  // The same, bypassing the cache both ways: what is on disk now (integrity checks, recovery).
  Result<PageRef> ReadPageUncached(uint64_t id);
  // A whole overflow run starting at first, verified (its length is in its first page). Not cached: runs are
  // large and read once.
  Result<PageRef> ReadOverflowRun(uint64_t first);

  // Reads page bytes without any check (the super-header and commit slots, which have their own formats).
  Status ReadRaw(uint64_t id, char* dst, size_t* bytes_read);

  // Writes pages (sealed by the caller) in id order, coalescing neighbours; then publishes the tree pages
  // to the cache so readers of the new commit find them. Requires: pages sorted by id, no duplicates.
  Status WritePages(const std::vector<PageRef>& pages);
  Status WriteRaw(uint64_t id, const char* data, size_t size);
  Status Sync();

  void ForgetCached(uint64_t id) { cache_.Erase(id); }
  void ClearCache() { cache_.Clear(); }

 private:
  Result<PageRef> Load(uint64_t id);

  File* file_;
  std::string path_;
  uint32_t page_size_;
  PageCache cache_;
};

}  // namespace rocky::engine
