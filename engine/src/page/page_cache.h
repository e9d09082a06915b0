// PageCache: clean pages kept in memory, least recently used evicted first.
// Thread-safe. Pages are looked up by id; the writer replaces an entry when it reuses a page id, which is safe
// because no snapshot that could reach the old contents is alive by then.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <unordered_map>

#include "page/page.h"

namespace rocky::engine {

class PageCache {
 public:
  // capacity_pages == 0 disables caching.
  explicit PageCache(size_t capacity_pages) : capacity_(capacity_pages) {}

  PageRef Get(uint64_t id);
  void Put(const PageRef& page);
  void Erase(uint64_t id);
  void Clear();

 private:
  using Lru = std::list<PageRef>;
  std::mutex mu_;
  size_t capacity_;
  Lru lru_;  // front = most recent
  std::unordered_map<uint64_t, Lru::iterator> index_;
};

}  // namespace rocky::engine
