#include "db/commit_walker.h"

#include <cstring>

#include "btree/btree.h"
#include "btree/node.h"
#include "db/table_meta.h"
#include "page/page_layout.h"

namespace rocky::engine {

CommitWalker::CommitWalker(Pager* pager, const CommitSlot& slot, bool from_disk)
    : pager_(pager), slot_(slot), from_disk_(from_disk), page_size_(pager->page_size()) {}

Status CommitWalker::Mark(uint64_t first, uint64_t n, const std::string& what) {
  for (uint64_t id = first; id < first + n; ++id) {
    if (id >= slot_.page_count) {
      return Status::Corruption(what + ": page " + std::to_string(id) + " lies past the end of the commit (" +
                                std::to_string(slot_.page_count) + " pages)");
    }
    uint64_t& word = reachable_[id / 64];
    const uint64_t bit = uint64_t{1} << (id % 64);
    if (word & bit) return Status::Corruption(what + ": page " + std::to_string(id) + " is referenced twice");
    word |= bit;
  }
  report_.pages_checked += n;
  return Status::OK();
}

Status CommitWalker::NotNewerThanCommit(const char* page, const std::string& what) const {
  if (PageTxn(page) <= slot_.txn_id) return Status::OK();
  return Status::Corruption(what + ": written by transaction " + std::to_string(PageTxn(page)) +
                            ", newer than the commit " + std::to_string(slot_.txn_id));
}

Result<PageRef> CommitWalker::ReadNode(uint64_t id, const std::string& what) {
  auto page = from_disk_ ? pager_->ReadPageUncached(id) : pager_->ReadPage(id);
  if (!page.ok()) return page.status().WithContext(what);
  Status s = CheckNodeStructure(page.value()->data(), page_size_, id);
  if (!s.ok()) return s.WithContext(what);
  if (PageTxn(page.value()->data()) > slot_.txn_id) {
    return Status::Corruption(what + ": page " + std::to_string(id) + " was written by transaction " +
                              std::to_string(PageTxn(page.value()->data())) + ", newer than the commit " +
                              std::to_string(slot_.txn_id));
  }
  return page;
}

Result<std::string> CommitWalker::WholeKey(const StoredKey& key, const std::string& where) {
  if (!key.overflow) return std::string(key.bytes);
  const std::string run_what = where + ": key overflow run " + std::to_string(key.page);
  if (key.len > kMaxKeySize)
    return Status::Corruption(run_what + ": impossible key length " + std::to_string(key.len));
  const uint64_t pages = OverflowRunPages(key.len, page_size_);
  ROCKY_RETURN_IF_ERROR(Mark(key.page, pages, run_what));
  auto run = pager_->ReadOverflowRun(key.page);  // runs are never cached: always from disk
  if (!run.ok()) return run.status().WithContext(where + ": key overflow run");
  const char* data = run.value()->data();
  if (run.value()->size != pages * page_size_ || DecodeU64(data + kOverflowLengthOffset) != key.len) {
    return Status::Corruption(run_what + ": length differs from its entry");
  }
  if (std::memcmp(data + kOverflowDataOffset, key.bytes.data(), key.bytes.size()) != 0) {
    return Status::Corruption(run_what + ": the key differs from the prefix its entry stores");
  }
  if (PageTxn(data) > slot_.txn_id) {
    return Status::Corruption(run_what + ": written by transaction " + std::to_string(PageTxn(data)) +
                              ", newer than the commit " + std::to_string(slot_.txn_id));
  }
  stats_.overflow_pages += pages;
  stats_.key_overflow_pages += pages;
  return std::string(data + kOverflowDataOffset, key.len);
}

Status CommitWalker::WalkNode(uint64_t id, const std::string& what, bool is_catalog, int depth,
                              const std::optional<std::string>& lower,
                              const std::optional<std::string>& upper, int* leaf_depth, uint64_t* entries) {
  if (depth > kMaxTreeDepth)
    return Status::Corruption(what + ": tree deeper than " + std::to_string(kMaxTreeDepth));
  ROCKY_RETURN_IF_ERROR(Mark(id, 1, what));
  ROCKY_ASSIGN_OR_RETURN(PageRef page, ReadNode(id, what));
  NodePage node(page->data(), page_size_);
  tree_bytes_used_ += node.used_bytes() + (page_size_ - node.capacity());
  auto out_of_range = [&](std::string_view key) {
    return (lower && key < *lower) || (upper && key >= *upper);
  };
  const std::string where = what + ": page " + std::to_string(id);
  if (!node.is_leaf()) {
    ++stats_.branch_pages;
    // Whole separators: CheckNodeStructure could only compare the stored prefixes.
    std::vector<std::string> keys;
    for (int i = 0; i < node.count(); ++i) {
      ROCKY_ASSIGN_OR_RETURN(std::string key, WholeKey(node.branch_key(i), where));
      if (out_of_range(key)) return Status::Corruption(where + ": separator outside its parent's range");
      if (!keys.empty() && !(keys.back() < key))
        return Status::Corruption(where + ": separators out of order");
      keys.push_back(std::move(key));
    }
    for (int i = 0; i <= node.count(); ++i) {
      std::optional<std::string> lo = i == 0 ? lower : std::optional<std::string>(keys[i - 1]);
      std::optional<std::string> hi = i == node.count() ? upper : std::optional<std::string>(keys[i]);
      ROCKY_RETURN_IF_ERROR(
          WalkNode(node.branch_child(i), what, is_catalog, depth + 1, lo, hi, leaf_depth, entries));
    }
    return Status::OK();
  }
  ++stats_.leaf_pages;
  if (*leaf_depth < 0) *leaf_depth = depth;
  if (*leaf_depth != depth) return Status::Corruption(where + ": leaves at different depths");
  if (static_cast<uint32_t>(depth) > stats_.tree_depth) stats_.tree_depth = static_cast<uint32_t>(depth);
  std::string prev;
  for (int i = 0; i < node.count(); ++i) {
    const LeafEntry e = node.leaf_entry(i);
    ROCKY_ASSIGN_OR_RETURN(std::string key, WholeKey(e.key, where));
    if (out_of_range(key)) return Status::Corruption(where + ": key outside its parent's range");
    if (i > 0 && !(prev < key)) return Status::Corruption(where + ": keys out of order");
    ++*entries;
    std::string_view value = e.inline_value;
    PageRef run_page;
    if (e.overflow) {
      const std::string run_what = where + ": overflow run " + std::to_string(e.overflow_page);
      const uint64_t pages = OverflowRunPages(e.value_len, page_size_);
      ROCKY_RETURN_IF_ERROR(Mark(e.overflow_page, pages, run_what));
      auto run = pager_->ReadOverflowRun(e.overflow_page);
      if (!run.ok()) return run.status().WithContext(what);
      if (run.value()->size != pages * page_size_ ||
          DecodeU64(run.value()->data() + kOverflowLengthOffset) != e.value_len) {
        return Status::Corruption(run_what + ": length differs from its leaf entry");
      }
      ROCKY_RETURN_IF_ERROR(NotNewerThanCommit(run.value()->data(), run_what));
      stats_.overflow_pages += pages;
      run_page = std::move(run).value();
      value = std::string_view(run_page->data() + kOverflowDataOffset, e.value_len);
    }
    if (is_catalog) {
      // A long table name leaves no room for its record beside it: the record may be on an overflow run.
      TableMeta meta;
      if (!DecodeTableMeta(value, &meta)) {
        return Status::Corruption("catalog entry of " + TableLabel(key) + " has a malformed record");
      }
      uint64_t table_entries = 0;
      ROCKY_RETURN_IF_ERROR(WalkTree(meta.root, TableLabel(key), false, &table_entries));
      if (table_entries != meta.len) {
        return Status::Corruption(TableLabel(key) + ": its catalog record says " + std::to_string(meta.len) +
                                  " keys but its tree holds " + std::to_string(table_entries));
      }
      entries_total_ += table_entries;
      ++stats_.tables;
      ++report_.tables_checked;
    } else {
      stats_.key_bytes += key.size();
      stats_.value_bytes += e.value_len;
    }
    prev = std::move(key);
  }
  return Status::OK();
}

Status CommitWalker::WalkTree(uint64_t root, const std::string& what, bool is_catalog, uint64_t* entries) {
  if (root == 0) return Status::OK();
  int leaf_depth = -1;
  return WalkNode(root, what, is_catalog, 1, std::nullopt, std::nullopt, &leaf_depth, entries);
}

Status CommitWalker::WalkFreeMap() {
  const uint64_t bits = BitsPerBitmapPage(page_size_);
  const uint64_t expected_bitmaps = (slot_.page_count + bits - 1) / bits;
  std::vector<uint64_t> bitmap_ids;
  uint64_t dir = slot_.freemap_directory;
  while (dir != 0) {
    ROCKY_RETURN_IF_ERROR(Mark(dir, 1, "freemap directory"));
    ++stats_.freemap_pages;
    auto page = from_disk_ ? pager_->ReadPageUncached(dir) : pager_->ReadPage(dir);
    if (!page.ok()) return page.status().WithContext("freemap directory");
    const char* p = page.value()->data();
    if (GetPageKind(p) != PageKind::kFreemapDirectory) {
      return Status::Corruption("page " + std::to_string(dir) + " should be a freemap directory");
    }
    ROCKY_RETURN_IF_ERROR(NotNewerThanCommit(p, "freemap directory: page " + std::to_string(dir)));
    const uint16_t count = PageCount(p);
    if (count > DirectoryCapacity(page_size_)) return Status::Corruption("freemap directory: bad count");
    for (uint16_t i = 0; i < count; ++i) bitmap_ids.push_back(DecodeU64(p + kDirectoryIdsOffset + 8 * i));
    dir = DecodeU64(p + kDirectoryNextOffset);
  }
  if (bitmap_ids.size() != expected_bitmaps) {
    return Status::Corruption("freemap lists " + std::to_string(bitmap_ids.size()) +
                              " bitmap pages, expected " + std::to_string(expected_bitmaps));
  }
  std::vector<uint64_t> used(reachable_.size(), 0);
  const uint64_t words_per_bitmap = bits / 64;
  for (size_t i = 0; i < bitmap_ids.size(); ++i) {
    ROCKY_RETURN_IF_ERROR(Mark(bitmap_ids[i], 1, "freemap bitmap"));
    ++stats_.freemap_pages;
    auto page = from_disk_ ? pager_->ReadPageUncached(bitmap_ids[i]) : pager_->ReadPage(bitmap_ids[i]);
    if (!page.ok()) return page.status().WithContext("freemap bitmap");
    if (GetPageKind(page.value()->data()) != PageKind::kFreemapBitmap) {
      return Status::Corruption("page " + std::to_string(bitmap_ids[i]) + " should be a freemap bitmap");
    }
    ROCKY_RETURN_IF_ERROR(
        NotNewerThanCommit(page.value()->data(), "freemap bitmap: page " + std::to_string(bitmap_ids[i])));
    const size_t first = i * words_per_bitmap;
    const size_t n = std::min<size_t>(words_per_bitmap, used.size() - std::min(used.size(), first));
    if (n > 0) std::memcpy(&used[first], page.value()->data() + kBitmapDataOffset, n * 8);
  }
  uint64_t used_count = 0;
  for (uint64_t id = 0; id < slot_.page_count; ++id) {
    const bool is_used = (used[id / 64] >> (id % 64)) & 1;
    const bool is_reachable = (reachable_[id / 64] >> (id % 64)) & 1;
    used_count += is_used;
    if (is_used && !is_reachable) {
      return Status::Corruption("page " + std::to_string(id) +
                                " is marked in use but nothing reaches it (leaked)");
    }
    if (!is_used && is_reachable) {
      return Status::Corruption("page " + std::to_string(id) +
                                " is reachable but the allocator marks it free");
    }
  }
  stats_.free_pages = slot_.page_count - used_count;
  if (slot_.free_pages != stats_.free_pages) {
    return Status::Corruption("commit slot counts " + std::to_string(slot_.free_pages) +
                              " free pages, bitmaps " + std::to_string(stats_.free_pages));
  }
  return Status::OK();
}

Status CommitWalker::Walk() {
  stats_ = Stats{};
  report_ = IntegrityReport{};
  reachable_.assign((slot_.page_count + 63) / 64, 0);
  stats_.page_size = page_size_;
  stats_.file_pages = slot_.page_count;
  stats_.last_commit_id = slot_.txn_id;
  stats_.header_pages = kFirstDataPageId;
  ROCKY_RETURN_IF_ERROR(Mark(0, kFirstDataPageId, "file header"));
  entries_total_ = 0;
  uint64_t tables = 0;
  ROCKY_RETURN_IF_ERROR(WalkTree(slot_.catalog_root, "catalog", true, &tables));
  ROCKY_RETURN_IF_ERROR(WalkFreeMap());
  stats_.entries = entries_total_;
  report_.entries_checked = entries_total_;
  const double file_bytes = static_cast<double>(slot_.page_count) * page_size_;
  const uint64_t tree_pages = stats_.leaf_pages + stats_.branch_pages;
  const double unused_in_trees =
      static_cast<double>(tree_pages) * page_size_ - static_cast<double>(tree_bytes_used_);
  stats_.fragmentation =
      file_bytes > 0 ? (static_cast<double>(stats_.free_pages) * page_size_ + unused_in_trees) / file_bytes
                     : 0.0;
  return Status::OK();
}

}  // namespace rocky::engine
