// Pager: reads verified pages from the database file and writes batches of pages to it.
//
// Every page read goes through a checksum check (seeded with its id); a page that fails it is reported as
// Corruption naming the page, never returned. Writes are coalesced into large sequential writes.
// Thread-safe for reads; writes come from the single writer.
//
// With a cache (a handle that is the file's only writer) and a file of the POSIX Env, pages are read through
// a read-only memory map of the file instead of pread: no copy and no allocation of page bytes, and a page's
// checksum is verified the first time it is used after this process last wrote it (page/file_mapping.h),
// instead of at every load. Handles without a cache (read-only ones, which may share the file with a writer
// in another process) keep reading and verifying every page with pread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "page/file_mapping.h"
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

  // A tree or bitmap page (not an overflow run), verified: a view of the file's map when the page lies in it,
  // else read with pread through the cache.
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
  // A short gap between two written pages that lies past everything this pager has written (and past the
  // file's length when it was opened) is written too, with zeros: it is a hole, which reads as zeros anyway,
  // so the file's bytes are the same, but the file system then holds the region as one extent instead of
  // one per written piece. A commit that rewrites much of a tree (removing many keys frees some of the
  // pages it allocated) would otherwise leave thousands of one-page holes, and cutting the file over them
  // (Compact's truncation) costs a block-freeing step per extent (a synchronous discard on file systems
  // mounted with `discard`): 0.55 s instead of 0.1 s for 530 MiB in bench/README.md's measurement.
  Status WritePages(const std::vector<PageRef>& pages);
  Status WriteRaw(uint64_t id, const char* data, size_t size);
  Status Sync();
  // Writer: the file is about to be cut to `bytes` (call before truncating it), so that readers stop using
  // mapped pages past that length.
  void WillTruncate(uint64_t bytes);
  // The file's bytes at or past this offset were never written through this pager, nor present when it was
  // created: they are holes (zeros) or past the end. UINT64_MAX when the file's length was unknown.
  uint64_t unwritten_from() const { return unwritten_from_; }

  // The read-only map of the file, or nullptr (read-only handles, Envs without a descriptor, a refused map).
  // Readers may use its pages directly (see CommittedPages::ReadNodeBytes); it lives as long as the pager.
  FileMapping* mapping() const { return mapping_.get(); }

  void ForgetCached(uint64_t id) { cache_.Erase(id); }
  void ClearCache() { cache_.Clear(); }

 private:
  Result<PageRef> Load(uint64_t id);

  File* file_;
  std::string path_;
  uint32_t page_size_;
  // Declared before the cache, so cached pages that view the map are released before it is unmapped.
  std::unique_ptr<FileMapping> mapping_;  // nullptr: read with pread
  PageCache cache_;
  uint64_t unwritten_from_ = UINT64_MAX;  // see unwritten_from()
};

}  // namespace rocky::engine
