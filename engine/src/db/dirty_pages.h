// DirtyPages: the pages and overflow runs a write transaction owns, by page id (an overflow run by its first
// page).
//
// Every step of a descent asks whether the transaction already owns the page, so lookups must be cheap even
// when a bulk load has made every page of the tree dirty: entries live in chunks of consecutive ids, found by
// indexing (no hashing, no chains to walk); a chunk is allocated when its first id becomes dirty.
// Not thread-safe: owned by the single writer.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "page/page.h"

namespace rocky::engine {

class DirtyPages {
 public:
  // The page owned under id, or nullptr.
  const PageRef* Find(uint64_t id) const {
    const uint64_t c = id / kChunkPages;
    if (c >= chunks_.size() || chunks_[c] == nullptr) return nullptr;
    const PageRef& p = (*chunks_[c])[id % kChunkPages];
    return p == nullptr ? nullptr : &p;
  }

  // Requires: no page owned under page->id.
  void Insert(PageRef page) {
    const uint64_t id = page->id;
    const uint64_t c = id / kChunkPages;
    if (c >= chunks_.size()) chunks_.resize(c + 1);
    if (chunks_[c] == nullptr) chunks_[c] = std::make_unique<Chunk>();
    (*chunks_[c])[id % kChunkPages] = std::move(page);
    ++size_;
  }

  // True when a page was owned under id (it no longer is).
  bool Erase(uint64_t id) {
    const uint64_t c = id / kChunkPages;
    if (c >= chunks_.size() || chunks_[c] == nullptr) return false;
    PageRef& p = (*chunks_[c])[id % kChunkPages];
    if (p == nullptr) return false;
    p.reset();
    --size_;
    return true;
  }

  size_t size() const { return size_; }

  // Calls f(page) for every owned page, in ascending id order.
  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& chunk : chunks_) {
      if (chunk == nullptr) continue;
      for (const PageRef& p : *chunk) {
        if (p != nullptr) f(p);
      }
    }
  }

  void Clear() {
    chunks_.clear();
    size_ = 0;
  }

 private:
  static constexpr uint64_t kChunkPages = 512;
  using Chunk = std::array<PageRef, kChunkPages>;

  std::vector<std::unique_ptr<Chunk>> chunks_;  // chunk i holds ids [i * kChunkPages, (i + 1) * kChunkPages)
  size_t size_ = 0;
};

}  // namespace rocky::engine
