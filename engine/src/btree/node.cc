#include "btree/node.h"

#include <algorithm>
#include <cstring>

namespace rocky::engine {

namespace {

// Byte offset of the key reference (when the key overflows) within an entry: right after the fixed header.
size_t LeafHeaderSize(const char* e) {
  return e[2] == kLeafEntryOverflow ? kLeafOverflowEntryHeader : kLeafInlineEntryHeader;
}

// Decodes the key of an entry whose fixed header starts at e and is `header` bytes long.
StoredKey DecodeKeyAt(const char* e, size_t header) {
  const uint16_t field = DecodeU16(e);
  StoredKey k;
  const size_t stored = field & kKeyStoredMask;
  if (field & kKeyOverflowFlag) {
    k.overflow = true;
    k.page = DecodeU64(e + header);
    k.len = DecodeU64(e + header + 8);
    k.bytes = {e + header + kKeyRefSize, stored};
  } else {
    k.len = stored;
    k.bytes = {e + header, stored};
  }
  return k;
}

StoredKey EntryKeyLeaf(const char* e) { return DecodeKeyAt(e, LeafHeaderSize(e)); }
StoredKey EntryKeyBranch(const char* e) { return DecodeKeyAt(e, kBranchEntryHeader); }

// Writes the key field, the reference (if any) and the stored bytes at e, whose fixed header is `header`
// bytes.
void EncodeKeyAt(char* e, size_t header, const StoredKey& key) {
  EncodeU16(e, static_cast<uint16_t>(key.bytes.size() | (key.overflow ? kKeyOverflowFlag : 0)));
  char* bytes = e + header;
  if (key.overflow) {
    EncodeU64(e + header, key.page);
    EncodeU64(e + header + 8, key.len);
    bytes += kKeyRefSize;
  }
  if (!key.bytes.empty()) std::memcpy(bytes, key.bytes.data(), key.bytes.size());
}

}  // namespace

StoredKey RawLeafKey(std::string_view raw) { return EntryKeyLeaf(raw.data()); }
StoredKey RawBranchKey(std::string_view raw) { return EntryKeyBranch(raw.data()); }
void SetRawBranchChild(std::string& raw, uint64_t child) { EncodeU64(raw.data() + 2, child); }

LeafEntry NodePage::leaf_entry(int i) const {
  const char* e = p_ + offset(i);
  LeafEntry out;
  out.key = EntryKeyLeaf(e);
  if (e[2] == kLeafEntryOverflow) {
    out.overflow = true;
    out.overflow_page = DecodeU64(e + 3);
    out.value_len = DecodeU64(e + 11);
  } else {
    out.value_len = DecodeU32(e + 3);
    out.inline_value = {out.key.bytes.data() + out.key.bytes.size(), out.value_len};
  }
  return out;
}

StoredKey NodePage::branch_key(int i) const { return EntryKeyBranch(p_ + offset(i)); }

uint64_t NodePage::branch_child(int i) const {
  if (i == 0) return DecodeU64(p_ + kBranchLeftChildOffset);
  return DecodeU64(p_ + offset(i - 1) + 2);
}

void NodePage::set_branch_child(int i, uint64_t child) {
  if (i == 0) {
    EncodeU64(p_ + kBranchLeftChildOffset, child);
  } else {
    EncodeU64(p_ + offset(i - 1) + 2, child);
  }
}

void NodePage::set_overflow_page(int i, uint64_t first_page) { EncodeU64(p_ + offset(i) + 3, first_page); }

void NodePage::set_key_page(int i, uint64_t first_page) {
  char* e = p_ + offset(i);
  EncodeU64(e + (is_leaf() ? LeafHeaderSize(e) : kBranchEntryHeader), first_page);
}

void NodePage::InitLeaf(char* page, uint32_t page_size) {
  InitPageHeader(page, PageKind::kLeaf);
  SetPageCount(page, 0);
  SetPageAux(page, page_size);
}

void NodePage::InitBranch(char* page, uint32_t page_size, uint64_t leftmost_child) {
  InitPageHeader(page, PageKind::kBranch);
  SetPageCount(page, 0);
  SetPageAux(page, page_size);
  EncodeU64(page + kBranchLeftChildOffset, leftmost_child);
}

size_t NodePage::EntrySize(const char* e) const {
  const uint16_t field = DecodeU16(e);
  const size_t key = (field & kKeyStoredMask) + ((field & kKeyOverflowFlag) ? kKeyRefSize : 0);
  if (!is_leaf()) return kBranchEntryHeader + key;
  if (e[2] == kLeafEntryOverflow) return kLeafOverflowEntryHeader + key;
  return kLeafInlineEntryHeader + key + DecodeU32(e + 3);
}

std::string_view NodePage::raw_entry(int i) const {
  const char* e = p_ + offset(i);
  return {e, EntrySize(e)};
}

size_t NodePage::used_bytes() const {
  size_t n = 0;
  for (int i = 0; i < count(); ++i) n += 2 + EntrySize(p_ + offset(i));
  return n;
}

bool NodePage::UsesAtLeast(size_t n) const {
  size_t used = 0;
  for (int i = 0; i < count() && used < n; ++i) used += 2 + EntrySize(p_ + offset(i));
  return used >= n;
}

size_t NodePage::capacity() const { return page_size_ - offsets_start(); }

void NodePage::Compact() {
  std::string copy(p_, page_size_);
  NodePage old(copy.data(), page_size_);
  size_t heap = page_size_;
  for (int i = 0; i < count(); ++i) {
    std::string_view e = old.raw_entry(i);
    heap -= e.size();
    std::memcpy(p_ + heap, e.data(), e.size());
    EncodeU16(p_ + offsets_start() + 2 * i, static_cast<uint16_t>(heap));
  }
  // Zero the gap so page bytes are a function of the node's contents (deterministic files).
  const size_t gap_start = offsets_start() + 2 * count();
  std::memset(p_ + gap_start, 0, heap - gap_start);
  SetPageAux(p_, static_cast<uint32_t>(heap));
}

bool NodePage::InsertRaw(int i, std::string_view entry) {
  const size_t need = entry.size() + 2;
  auto contiguous_free = [&] { return PageAux(p_) - (offsets_start() + 2 * count()); };
  if (contiguous_free() < need) {
    if (capacity() - used_bytes() < need) return false;
    Compact();
  }
  const size_t heap = PageAux(p_) - entry.size();
  std::memcpy(p_ + heap, entry.data(), entry.size());
  char* offs = p_ + offsets_start();
  std::memmove(offs + 2 * (i + 1), offs + 2 * i, 2 * (count() - i));
  EncodeU16(offs + 2 * i, static_cast<uint16_t>(heap));
  SetPageAux(p_, static_cast<uint32_t>(heap));
  SetPageCount(p_, count() + 1);
  return true;
}

void NodePage::RemoveAt(int i) {
  const char* e = p_ + offset(i);
  const size_t size = EntrySize(e);
  const bool at_heap_start = offset(i) == PageAux(p_);
  std::memset(p_ + offset(i), 0, size);
  if (at_heap_start) SetPageAux(p_, static_cast<uint32_t>(PageAux(p_) + size));
  char* offs = p_ + offsets_start();
  std::memmove(offs + 2 * i, offs + 2 * (i + 1), 2 * (count() - i - 1));
  EncodeU16(offs + 2 * (count() - 1), 0);
  SetPageCount(p_, count() - 1);
}

Status CheckNodeStructure(const char* page, uint32_t page_size, uint64_t page_id) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption("page " + std::to_string(page_id) + ": " + why);
  };
  const PageKind kind = GetPageKind(page);
  if (kind != PageKind::kLeaf && kind != PageKind::kBranch) {
    return bad("expected a tree node, found a " + std::string(PageKindName(kind)) + " page");
  }
  const bool leaf = kind == PageKind::kLeaf;
  const size_t offsets_start = leaf ? kLeafOffsetsStart : kBranchOffsetsStart;
  const uint16_t count = PageCount(page);
  const uint32_t heap = PageAux(page);
  if (offsets_start + 2 * size_t{count} > heap || heap > page_size) return bad("entry area out of bounds");
  StoredKey prev;
  for (int i = 0; i < count; ++i) {
    const uint16_t off = DecodeU16(page + offsets_start + 2 * i);
    if (off < heap || size_t{off} + 3 > page_size) return bad("entry offset out of bounds");
    const char* e = page + off;
    const uint16_t field = DecodeU16(e);
    const bool key_overflow = (field & kKeyOverflowFlag) != 0;
    const size_t key_bytes = (field & kKeyStoredMask) + (key_overflow ? kKeyRefSize : 0);
    size_t header;
    size_t size;
    if (leaf) {
      if (e[2] == kLeafEntryOverflow) {
        header = kLeafOverflowEntryHeader;
        size = header + key_bytes;
        if (off + size > page_size) return bad("entry runs past the page end");
        if (DecodeU64(e + 3) < kFirstDataPageId) return bad("overflow pointer into the header");
      } else if (e[2] == kLeafEntryInline) {
        header = kLeafInlineEntryHeader;
        if (size_t{off} + header > page_size) return bad("entry runs past the page end");
        size = header + key_bytes + DecodeU32(e + 3);
        if (off + size > page_size) return bad("entry runs past the page end");
      } else {
        return bad("unknown entry type");
      }
    } else {
      header = kBranchEntryHeader;
      size = header + key_bytes;
      if (off + size > page_size) return bad("entry runs past the page end");
    }
    const StoredKey key = DecodeKeyAt(e, header);
    if (key.overflow) {
      if (key.page < kFirstDataPageId) return bad("key overflow pointer into the header");
      // The run holds the whole key, of which the entry stores a proper prefix.
      if (key.len <= key.bytes.size()) return bad("overflow key no longer than its stored prefix");
    }
    if (i > 0) {
      // Stored prefixes cut keys at different lengths; truncating two keys to a common length keeps their
      // order weakly, so that is what can be checked here (CheckIntegrity compares the whole keys).
      if (!prev.overflow && !key.overflow) {
        if (!(prev.bytes < key.bytes)) return bad("keys out of order");
      } else {
        const size_t n = std::min(prev.bytes.size(), key.bytes.size());
        if (prev.bytes.substr(0, n) > key.bytes.substr(0, n)) return bad("keys out of order");
      }
    }
    prev = key;
  }
  return Status::OK();
}

std::string EncodeLeafInline(const StoredKey& key, std::string_view value) {
  std::string e(kLeafInlineEntryHeader + key.entry_bytes() + value.size(), '\0');
  e[2] = static_cast<char>(kLeafEntryInline);
  EncodeU32(e.data() + 3, static_cast<uint32_t>(value.size()));
  EncodeKeyAt(e.data(), kLeafInlineEntryHeader, key);
  if (!value.empty())
    std::memcpy(e.data() + kLeafInlineEntryHeader + key.entry_bytes(), value.data(), value.size());
  return e;
}

std::string EncodeLeafOverflow(const StoredKey& key, uint64_t first_page, uint64_t value_len) {
  std::string e(kLeafOverflowEntryHeader + key.entry_bytes(), '\0');
  e[2] = static_cast<char>(kLeafEntryOverflow);
  EncodeU64(e.data() + 3, first_page);
  EncodeU64(e.data() + 11, value_len);
  EncodeKeyAt(e.data(), kLeafOverflowEntryHeader, key);
  return e;
}

std::string EncodeBranchEntry(const StoredKey& key, uint64_t child) {
  std::string e(kBranchEntryHeader + key.entry_bytes(), '\0');
  EncodeU64(e.data() + 2, child);
  EncodeKeyAt(e.data(), kBranchEntryHeader, key);
  return e;
}

void BuildNode(char* page, uint32_t page_size, PageKind kind, uint64_t leftmost,
               const std::vector<std::string_view>& entries) {
  // Keep the common header's txn/checksum bytes; they are rewritten when the page is sealed.
  std::memset(page + kPageHeaderSize, 0, page_size - kPageHeaderSize);
  if (kind == PageKind::kLeaf) {
    NodePage::InitLeaf(page, page_size);
  } else {
    NodePage::InitBranch(page, page_size, leftmost);
  }
  NodePage node(page, page_size);
  for (size_t i = 0; i < entries.size(); ++i) {
    [[maybe_unused]] const bool ok = node.InsertRaw(static_cast<int>(i), entries[i]);
  }
}

std::string_view PageKindName(PageKind kind) {
  switch (kind) {
    case PageKind::kFree: return "free";
    case PageKind::kSlot: return "commit slot";
    case PageKind::kLeaf: return "leaf";
    case PageKind::kBranch: return "branch";
    case PageKind::kOverflow: return "overflow";
    case PageKind::kFreemapBitmap: return "freemap bitmap";
    case PageKind::kFreemapDirectory: return "freemap directory";
  }
  return "unknown";
}

}  // namespace rocky::engine
