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

// A key as an entry stores it: whole, or (overflow) its first KeyPrefixLen bytes plus a reference to the
// overflow run that holds the whole key. Comparing needs the run only when the prefix does not decide.
struct StoredKey {
  std::string_view bytes;  // the whole key, or its prefix when overflow
  bool overflow = false;
  uint64_t page = 0;  // when overflow: first page of the run holding the whole key
  uint64_t len = 0;   // the whole key's length (bytes.size() when !overflow)

  static StoredKey Inline(std::string_view k) { return {k, false, 0, k.size()}; }
  // Bytes the entry spends on the key: the stored bytes plus the reference.
  size_t entry_bytes() const { return bytes.size() + (overflow ? kKeyRefSize : 0); }
};

// A leaf entry as stored: the value is either inline or an overflow run.
struct LeafEntry {
  StoredKey key;
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

  // The page's bytes (page_size of them; CheckNodeStructure keeps every offset and length inside).
  const char* data() const { return p_; }
  PageKind kind() const { return GetPageKind(p_); }
  bool is_leaf() const { return kind() == PageKind::kLeaf; }
  uint16_t count() const { return PageCount(p_); }

  // --- Leaf ---
  LeafEntry leaf_entry(int i) const;
  // (Searches that compare keys need the key runs, so they live in btree.h: LeafLowerBound, BranchChildFor.)

  // The stored key bytes of entry i (leaf or branch) without decoding the rest of the entry; *overflow is set
  // when they are only a prefix of a key on an overflow run (then use leaf_entry / branch_key for the run).
  // For searches, which compare many keys of a page and need the whole entry of one.
  std::string_view stored_key(int i, bool* overflow) const {
    const char* e = p_ + offset(i);
    const uint16_t field = DecodeU16(e);
    *overflow = (field & kKeyOverflowFlag) != 0;
    size_t header = kBranchEntryHeader;
    if (is_leaf()) header = e[2] == kLeafEntryOverflow ? kLeafOverflowEntryHeader : kLeafInlineEntryHeader;
    return {e + header + (*overflow ? kKeyRefSize : 0), size_t{field} & kKeyStoredMask};
  }

  // --- Branch ---
  StoredKey branch_key(int i) const;   // i in [0, count)
  uint64_t branch_child(int i) const;  // i in [0, count]: 0 = leftmost, i = right of key i-1
  void set_branch_child(int i, uint64_t child);
  // Repoints leaf entry i (an overflow entry) at a moved run.
  void set_overflow_page(int i, uint64_t first_page);
  // Repoints the key reference of entry i (leaf or branch; its key must be an overflow key) at a moved run.
  void set_key_page(int i, uint64_t first_page);

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
  // used_bytes() >= n, summing only as many entries as that takes (a removal asks this of its leaf every
  // time).
  bool UsesAtLeast(size_t n) const;
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
std::string EncodeLeafInline(const StoredKey& key, std::string_view value);
std::string EncodeLeafOverflow(const StoredKey& key, uint64_t first_page, uint64_t value_len);
std::string EncodeBranchEntry(const StoredKey& key, uint64_t child);
// The key of a raw entry (as RawEntries copies them out of a page).
StoredKey RawLeafKey(std::string_view raw);
StoredKey RawBranchKey(std::string_view raw);
// Sets the child of a raw branch entry.
void SetRawBranchChild(std::string& raw, uint64_t child);

// True when a value of value_len bytes is stored inline beside `key` in a leaf of this page size.
inline bool FitsInline(const StoredKey& key, size_t value_len, uint32_t page_size) {
  return kLeafInlineEntryHeader + key.entry_bytes() + value_len <= MaxInlineEntry(page_size);
}

// Builds a fresh node of `kind` from raw entries (for splits and merges). For a branch, leftmost is the
// leftmost child.
void BuildNode(char* page, uint32_t page_size, PageKind kind, uint64_t leftmost,
               const std::vector<std::string_view>& entries);

}  // namespace rocky::engine
