#include "page/page_cache.h"

namespace rocky::engine {

PageRef PageCache::Get(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return *it->second;
}

void PageCache::Put(const PageRef& page) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mu_);
  auto it = index_.find(page->id);
  if (it != index_.end()) {
    *it->second = page;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(page);
  index_[page->id] = lru_.begin();
  while (index_.size() > capacity_) {
    index_.erase(lru_.back()->id);
    lru_.pop_back();
  }
}

void PageCache::Erase(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return;
  lru_.erase(it->second);
  index_.erase(it);
}

void PageCache::Clear() {
  std::lock_guard lock(mu_);
  index_.clear();
  lru_.clear();
}

}  // namespace rocky::engine
