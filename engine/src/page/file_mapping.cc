#include "page/file_mapping.h"

#include <sys/mman.h>

#include <algorithm>

namespace rocky::engine {

namespace {

// The first map covers at least this much, so a growing file is remapped rarely; it is address space only.
constexpr uint64_t kMinMapBytes = uint64_t{256} << 20;

}  // namespace

FileMapping::FileMapping(int fd, uint32_t page_size)
    : fd_(fd),
      page_size_(page_size),
      chunks_(
          std::make_unique<std::atomic<std::atomic<uint8_t>*>[]>(kMaxBytes / page_size / kChunkPages + 1)) {}

std::unique_ptr<FileMapping> FileMapping::Create(int fd, uint32_t page_size, uint64_t file_bytes) {
  std::unique_ptr<FileMapping> m(new FileMapping(fd, page_size));
  if (!m->MapAtLeast(std::max(file_bytes, uint64_t{page_size}))) return nullptr;
  m->GrowReadable(file_bytes);
  return m;
}

FileMapping::~FileMapping() {
  for (const auto& r : regions_) ::munmap(const_cast<char*>(r->base), r->length);
}

bool FileMapping::MapAtLeast(uint64_t bytes) {
  const Region* current = region_.load(std::memory_order_relaxed);
  if (current != nullptr && current->length >= bytes) return true;
  if (bytes > kMaxBytes) return false;
  uint64_t length = std::min(std::max(bytes * 2, kMinMapBytes), kMaxBytes);
  length -= length % page_size_;
  void* base = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd_, 0);
  if (base == MAP_FAILED) return false;
  regions_.push_back(std::make_unique<Region>(Region{static_cast<const char*>(base), length}));
  region_.store(regions_.back().get(), std::memory_order_release);
  return true;
}

const char* FileMapping::PageAt(uint64_t id) const {
  const uint64_t readable = readable_bytes_.load(std::memory_order_acquire);
  if (id >= readable / page_size_) return nullptr;
  // Every region published before the readable length covers it.
  return region_.load(std::memory_order_acquire)->base + id * page_size_;
}

void FileMapping::ClearVerified(uint64_t first, uint64_t pages) {
  for (uint64_t id = first; id < first + pages; ++id) {
    if (id / kChunkPages > kMaxBytes / page_size_ / kChunkPages) return;
    std::atomic<uint8_t>* chunk = chunks_[id / kChunkPages].load(std::memory_order_relaxed);
    if (chunk != nullptr) chunk[id % kChunkPages].store(0, std::memory_order_relaxed);
  }
}

void FileMapping::ShrinkReadable(uint64_t bytes) {
  const uint64_t readable = readable_bytes_.load(std::memory_order_relaxed);
  if (bytes >= readable) return;
  const uint64_t pages = bytes / page_size_;
  readable_bytes_.store(pages * page_size_, std::memory_order_release);
  // Should the file grow again, the pages past the cut hold new bytes: they are verified again.
  ClearVerified(pages, readable / page_size_ - pages);
}

void FileMapping::GrowReadable(uint64_t bytes) {
  bytes = std::min(bytes, kMaxBytes);
  bytes -= bytes % page_size_;
  if (bytes <= readable_bytes_.load(std::memory_order_relaxed)) return;
  if (!MapAtLeast(bytes)) return;  // the pages past the map are read with pread
  const uint64_t pages = bytes / page_size_;
  for (uint64_t c = 0; c * kChunkPages < pages; ++c) {
    if (chunks_[c].load(std::memory_order_relaxed) != nullptr) continue;
    chunk_storage_.push_back(std::make_unique<std::atomic<uint8_t>[]>(kChunkPages));
    chunks_[c].store(chunk_storage_.back().get(), std::memory_order_release);
  }
  readable_bytes_.store(bytes, std::memory_order_release);
}

}  // namespace rocky::engine
