#include "page/page_cache.h"

#include <algorithm>

namespace rocky::engine {

namespace {

// Shards enough that two reader threads and the writer rarely meet on one mutex, and few enough that each
// still holds many pages (CLOCK approximates LRU within a shard only).
constexpr size_t kMaxShards = 16;
// A shard smaller than this is not worth its own mutex.
constexpr size_t kMinShardPages = 64;

// Slot an id's probe starts at: bits of the hash the shard choice (the low bits) did not use.
size_t HomeSlot(uint64_t mixed, size_t mask) { return static_cast<size_t>(mixed >> 20) & mask; }

}  // namespace

PageCache::PageCache(size_t capacity_pages) {
  if (capacity_pages == 0) return;
  shard_count_ = 1;
  while (shard_count_ < kMaxShards && capacity_pages / (shard_count_ * 2) >= kMinShardPages)
    shard_count_ *= 2;
  per_shard_ = (capacity_pages + shard_count_ - 1) / shard_count_;
  index_size_ = 1;
  while (index_size_ < 2 * per_shard_) index_size_ *= 2;
  // Only the shard headers now; each shard's arrays are made by its first Put (see the class comment).
  shards_ = std::make_unique<Shard[]>(shard_count_);
}

void PageCache::Shard::Allocate(size_t per_shard, size_t index_size) {
  frames.resize(per_shard);
  index.assign(index_size, 0);
  free.reserve(per_shard);
  for (size_t f = per_shard; f > 0; --f) free.push_back(static_cast<uint32_t>(f - 1));
}

size_t PageCache::Shard::Probe(uint64_t id) const {
  const size_t mask = index.size() - 1;
  for (size_t slot = HomeSlot(Mix(id), mask);; slot = (slot + 1) & mask) {
    const uint32_t f = index[slot];
    if (f == 0 || frames[f - 1].id == id) return slot;
  }
}

void PageCache::Shard::Unindex(size_t slot) {
  // Backward-shift deletion: pull later members of the probe run into the hole unless that would put them
  // before their home slot, so lookups never need tombstones.
  const size_t mask = index.size() - 1;
  index[slot] = 0;
  size_t hole = slot;
  for (size_t j = (slot + 1) & mask; index[j] != 0; j = (j + 1) & mask) {
    const size_t home = HomeSlot(Mix(frames[index[j] - 1].id), mask);
    const bool home_in_hole_to_j = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (home_in_hole_to_j) continue;
    index[hole] = index[j];
    index[j] = 0;
    hole = j;
  }
}

void PageCache::Shard::Drop(uint32_t frame) {
  Unindex(Probe(frames[frame].id));
  frames[frame].page.reset();
  frames[frame].referenced = false;
  free.push_back(frame);
}

PageRef PageCache::Get(uint64_t id) {
  if (shard_count_ == 0) return nullptr;
  Shard& shard = ShardOf(id);
  std::lock_guard lock(shard.mu);
  if (shard.index.empty()) return nullptr;
  const uint32_t f = shard.index[shard.Probe(id)];
  if (f == 0) return nullptr;
  Frame& frame = shard.frames[f - 1];
  frame.referenced = true;
  return frame.page;
}

void PageCache::Put(const PageRef& page) {
  if (shard_count_ == 0) return;
  Shard& shard = ShardOf(page->id);
  PageRef evicted;  // released after the lock: the last reference frees the page outside the critical section
  std::lock_guard lock(shard.mu);
  if (shard.index.empty()) shard.Allocate(per_shard_, index_size_);
  const size_t slot = shard.Probe(page->id);
  if (shard.index[slot] != 0) {
    Frame& frame = shard.frames[shard.index[slot] - 1];
    evicted = std::move(frame.page);
    frame.page = page;
    frame.referenced = true;
    return;
  }
  uint32_t f;
  if (!shard.free.empty()) {
    f = shard.free.back();
    shard.free.pop_back();
  } else {
    // Second chance: pass over (and clear) referenced frames; every frame is in use here, so this ends
    // within two turns of the hand.
    for (;;) {
      Frame& frame = shard.frames[shard.hand];
      const size_t at = shard.hand;
      shard.hand = (shard.hand + 1) % shard.frames.size();
      if (frame.referenced) {
        frame.referenced = false;
        continue;
      }
      f = static_cast<uint32_t>(at);
      break;
    }
    evicted = std::move(shard.frames[f].page);
    shard.Unindex(shard.Probe(shard.frames[f].id));
  }
  Frame& frame = shard.frames[f];
  frame.id = page->id;
  frame.page = page;
  frame.referenced = false;
  // The eviction may have shifted index entries, so the slot found above is stale: probe again.
  shard.index[shard.Probe(page->id)] = f + 1;
}

void PageCache::Erase(uint64_t id) {
  if (shard_count_ == 0) return;
  Shard& shard = ShardOf(id);
  PageRef evicted;
  std::lock_guard lock(shard.mu);
  if (shard.index.empty()) return;
  const uint32_t f = shard.index[shard.Probe(id)];
  if (f == 0) return;
  evicted = std::move(shard.frames[f - 1].page);
  shard.Drop(f - 1);
}

void PageCache::Clear() {
  for (size_t s = 0; s < shard_count_; ++s) {
    Shard& shard = shards_[s];
    std::vector<PageRef> evicted;
    std::lock_guard lock(shard.mu);
    for (size_t f = 0; f < shard.frames.size(); ++f) {
      if (shard.frames[f].page == nullptr) continue;
      evicted.push_back(std::move(shard.frames[f].page));
      shard.Drop(static_cast<uint32_t>(f));
    }
  }
}

}  // namespace rocky::engine
