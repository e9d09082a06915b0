// Page: one page (or one overflow run) in memory.
//
// Pages read from the file are shared, read-only, between the cache and every snapshot that reaches them:
// shadow paging guarantees a page's bytes never change while any snapshot can reach it. A write transaction
// owns its dirty pages exclusively until commit publishes them.
//
// A page either owns a heap buffer or views a page of the file's read-only memory map (page/file_mapping.h),
// which outlives it (the pager owns the map and is destroyed after every page it handed out). A mapped page
// must never be written to: its memory is read-only, and writers change copies (PageSink::WritableNode).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>

namespace rocky::engine {

// Bits of a mapped page's verification state (FileMapping::state).
inline constexpr uint8_t kMapChecksumOk = 1;   // its checksum matched its bytes in the mapping
inline constexpr uint8_t kMapStructureOk = 2;  // and its node structure was checked (CheckNodeStructure)

struct Page {
  Page(uint64_t page_id, size_t byte_size, bool zero)
      : id(page_id), size(byte_size), bytes(new char[byte_size]), data_(bytes.get()) {
    if (zero) std::memset(bytes.get(), 0, byte_size);
  }
  // A view of a mapped page whose checksum has been verified; map_state is its state in the mapping, which
  // remembers a structure check across the Page objects made for the page (kMapStructureOk).
  Page(uint64_t page_id, size_t byte_size, const char* mapped, std::atomic<uint8_t>* map_state,
       bool structure_ok)
      : id(page_id),
        size(byte_size),
        data_(const_cast<char*>(mapped)),
        map_state_(map_state),
        structure_checked(structure_ok) {}

  char* data() { return data_; }
  const char* data() const { return data_; }

  // Records that the node structure was checked: on this object and, for a mapped page, in the mapping.
  void MarkStructureChecked() {
    structure_checked.store(true, std::memory_order_release);
    if (map_state_ != nullptr) map_state_->fetch_or(kMapStructureOk, std::memory_order_release);
  }

  uint64_t id;
  size_t size;                    // page_size, or pages * page_size for an overflow run
  std::unique_ptr<char[]> bytes;  // nullptr for a mapped page

 private:
  char* data_;
  std::atomic<uint8_t>* map_state_ = nullptr;

 public:
  // Set once the node structure (offsets, lengths) has been checked, so readers validate a page once.
  std::atomic<bool> structure_checked{false};
};

using PageRef = std::shared_ptr<Page>;

}  // namespace rocky::engine
