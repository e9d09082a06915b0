// Page: one page (or one overflow run) in memory.
//
// Pages read from the file are shared, read-only, between the cache and every snapshot that reaches them:
// shadow paging guarantees a page's bytes never change while any snapshot can reach it. A write transaction
// owns its dirty pages exclusively until commit publishes them.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>

namespace rocky::engine {

struct Page {
  Page(uint64_t page_id, size_t byte_size, bool zero)
      : id(page_id), size(byte_size), bytes(new char[byte_size]) {
    if (zero) std::memset(bytes.get(), 0, byte_size);
  }

  char* data() { return bytes.get(); }
  const char* data() const { return bytes.get(); }

  uint64_t id;
  size_t size;  // page_size, or pages * page_size for an overflow run
  std::unique_ptr<char[]> bytes;
  // Set once the node structure (offsets, lengths) has been checked, so readers validate a page once.
  std::atomic<bool> structure_checked{false};
};

using PageRef = std::shared_ptr<Page>;

}  // namespace rocky::engine
