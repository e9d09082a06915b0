// PageCache: clean pages kept in memory, evicted by CLOCK (second chance).
//
// Thread-safe. Pages are looked up by id; the writer replaces an entry when it reuses a page id, which is
// safe because no snapshot that could reach the old contents is alive by then.
//
// The cache is split into shards by page id, each with its own mutex, a frame array and an open-addressing
// index. A shard's arrays are allocated, at their full size, by its first Put: every read-write open makes a
// cache (64 MiB by default, so about 700 KB of arrays), and most opens never fill it (a file read through its
// memory map does not use it, page/pager.h), so construction costs nothing. After that neither Get nor Put
// allocates. A hit sets the frame's reference bit (no list to reorder); a miss reuses a frame the clock hand
// passes over.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "page/page.h"

namespace rocky::engine {

class PageCache {
 public:
  // capacity_pages == 0 disables caching.
  explicit PageCache(size_t capacity_pages);

  // The cached page, or nullptr. The returned reference keeps the page alive after eviction.
  PageRef Get(uint64_t id);
  // Caches page (replacing any page cached under its id), evicting another when the shard is full.
  void Put(const PageRef& page);
  void Erase(uint64_t id);
  void Clear();

 private:
  // One shard: frames hold the pages, index maps id -> frame + 1 (0 = empty slot), linear probing from the
  // slot the id's hash picks. Every member is guarded by mu.
  struct Frame {
    uint64_t id = 0;
    PageRef page;  // nullptr: the frame is free
    bool referenced = false;
  };
  struct Shard {
    std::mutex mu;
    std::vector<Frame> frames;    // size == capacity once allocated (empty before the first Put)
    std::vector<uint32_t> index;  // power-of-two size >= 2 * capacity; empty: not allocated yet
    std::vector<uint32_t> free;   // frames holding no page
    size_t hand = 0;

    // Sizes the arrays (the first Put).
    void Allocate(size_t per_shard, size_t index_size);

    // Index slot holding id, or the empty slot where it would go.
    size_t Probe(uint64_t id) const;
    void Unindex(size_t slot);
    void Drop(uint32_t frame);  // unindexes and frees the frame
  };

  Shard& ShardOf(uint64_t id) { return shards_[Mix(id) & (shard_count_ - 1)]; }
  static uint64_t Mix(uint64_t id) {
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return id;
  }

  size_t shard_count_ = 0;  // a power of two; 0 when caching is disabled
  size_t per_shard_ = 0;    // frames of a shard
  size_t index_size_ = 0;   // index slots of a shard
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace rocky::engine
