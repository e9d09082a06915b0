// Leaf and branch nodes: slotted pages (layout in page/page_layout.h and format-spec/FORMAT.md).
//
// Functions here read and edit one page buffer; they know nothing of transactions or other pages.
// Readers call CheckNodeStructure once per page load, after which every accessor stays inside the page.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "page/page_layout.h"
#include "rocky/engine/status.h"

namespace rocky::engine {

// A leaf entry as stored: the value is either inline or an overflow run.
struct LeafEntry {
  std::string_view key;
  bool overflow = false;
  std::string_view inline_value;  // when !overflow
  uint64_t overflow_page = 0;     // when overflow
  uint64_t value_len = 0;         // both cases
};

// Number of pages an overflow run holding value_len bytes occupies.
inline uint64_t OverflowRunPages(uint64_t value_len, uint32_t page_size) {
  return (kOverflowDataOffset + value_len + page_size - 1) / page_size;
}

class NodePage {
 public:
  NodePage(char* page, uint32_t page_size) : p_(page), page_size_(page_size) {}

  PageKind kind() const { return GetPageKind(p_); }
  bool is_leaf() const { return kind() == PageKind::kLeaf; }
  uint16_t count() const { return PageCount(p_); }

  // --- Leaf ---
  LeafEntry leaf_entry(int i) const;
  // Index of the first entry whose key >= key; *found when equal.
  int LeafLowerBound(std::string_view key, bool* found) const;

  // --- Branch ---
  std::string_view branch_key(int i) const;    // i in [0, count)
  uint64_t branch_child(int i) const;          // i in [0, count]: 0 = leftmost, i = right of key i-1
  void set_branch_child(int i, uint64_t child);
  // Repoints leaf entry i (an overflow entry) at a moved run.
  void set_overflow_page(int i, uint64_t first_page);
  // Index of the child that may hold key.
  int BranchChildFor(std::string_view key) const;

  // --- Editing (writable pages) ---
  // Initialises an empty node.
  static void InitLeaf(char* page, uint32_t page_size);
  static void InitBranch(char* page, uint32_t page_size, uint64_t leftmost_child);

  // Inserts a raw entry (already encoded) at index i. Returns false when it does not fit even after
  // compaction; the page is unchanged then (apart from compaction).
  bool InsertRaw(int i, std::string_view entry);
  void RemoveAt(int i);
  // Raw bytes of entry i (for moving entries between pages).
  std::string_view raw_entry(int i) const;
  // Bytes used by entries and their offsets; capacity is what an empty node offers.
  size_t used_bytes() const;
  size_t capacity() const;

 private:
  size_t offsets_start() const { return is_leaf() ? kLeafOffsetsStart : kBranchOffsetsStart; }
  uint16_t offset(int i) const { return DecodeU16(p_ + offsets_start() + 2 * i); }
  size_t EntrySize(const char* e) const;
  void Compact();

  char* p_;
  uint32_t page_size_;
};

// Checks that every offset and length of a leaf or branch stays inside the page and that keys are strictly
// increasing. `what` names the page for the error ("page 12").
Status CheckNodeStructure(const char* page, uint32_t page_size, uint64_t page_id);

// Encoders for raw entries.
std::string EncodeLeafInline(std::string_view key, std::string_view value);
std::string EncodeLeafOverflow(std::string_view key, uint64_t first_page, uint64_t value_len);
std::string EncodeBranchEntry(std::string_view key, uint64_t child);

// True when a key/value pair is stored inline in a leaf of this page size.
inline bool FitsInline(size_t key_len, size_t value_len, uint32_t page_size) {
  return kLeafInlineEntryHeader + key_len + value_len <= MaxInlineEntry(page_size);
}

// Builds a fresh node of `kind` from raw entries (for splits and merges). For a branch, leftmost is the
// leftmost child.
void BuildNode(char* page, uint32_t page_size, PageKind kind, uint64_t leftmost,
               const std::vector<std::string_view>& entries);

}  // namespace rocky::engine
