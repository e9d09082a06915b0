// FileMapping: a read-only shared memory map of the database file, through which readers use committed pages
// without copying them, plus one "verified" state per page.
//
// A page's checksum (and, for tree nodes, its structure) is checked the first time it is used through this
// mapping; the state is remembered until this process writes the page again (ClearVerified), so a page is
// verified once per mapping and per write. Pages are used only while they lie wholly inside the readable
// length, which never exceeds the file's length: the map reaches past the end of the file, and touching a
// page there would raise SIGBUS.
//
// Thread-safety: PageAt, state and the verified states are safe from any thread. GrowReadable, ShrinkReadable
// and ClearVerified come from the single writer, for pages no live snapshot reaches (shadow paging), and the
// writer publishes the commit that reaches them (a mutex hand-off) only afterwards.
// Every mapping made stays mapped until destruction, so a pointer handed out stays valid that long.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace rocky::engine {

class FileMapping {
 public:
  // Maps fd (which must stay open while this object lives) for file_bytes bytes of pages; nullptr when the
  // system refuses the map (callers then read with pread).
  static std::unique_ptr<FileMapping> Create(int fd, uint32_t page_size, uint64_t file_bytes);
  ~FileMapping();
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;

  // The bytes of page id, or nullptr when the page is not wholly inside the readable length.
  const char* PageAt(uint64_t id) const;
  // The verification state of page id (kMapChecksumOk | kMapStructureOk bits, page/page.h); requires
  // PageAt(id) != nullptr.
  std::atomic<uint8_t>& state(uint64_t id) const {
    return chunks_[id / kChunkPages].load(std::memory_order_acquire)[id % kChunkPages];
  }
  // Writer only: the page's bytes change (it was just written); its next use verifies it again.
  void ClearVerified(uint64_t first, uint64_t pages);
  // Writer only: the file now holds at least `bytes` bytes that readers may use (grows the map when needed;
  // a smaller value changes nothing).
  void GrowReadable(uint64_t bytes);
  // Writer only: the file is about to be cut to `bytes` (call before the truncation).
  void ShrinkReadable(uint64_t bytes);

 private:
  static constexpr uint64_t kChunkPages = uint64_t{1} << 16;
  // Pages past this count are never mapped (read with pread): 2^40 bytes of file.
  static constexpr uint64_t kMaxBytes = uint64_t{1} << 40;
  struct Region {
    const char* base;
    uint64_t length;
  };

  FileMapping(int fd, uint32_t page_size);
  bool MapAtLeast(uint64_t bytes);  // writer (or Create): makes a region covering bytes the current one

  const int fd_;
  const uint32_t page_size_;
  std::atomic<const Region*> region_{nullptr};
  std::atomic<uint64_t> readable_bytes_{0};
  std::vector<std::unique_ptr<Region>> regions_;  // every region made; writer only
  // chunks_[i] holds the states of pages [i * kChunkPages, (i + 1) * kChunkPages); allocated by the writer
  // before the readable length covers them.
  std::unique_ptr<std::atomic<std::atomic<uint8_t>*>[]> chunks_;
  std::vector<std::unique_ptr<std::atomic<uint8_t>[]>> chunk_storage_;
};

}  // namespace rocky::engine
