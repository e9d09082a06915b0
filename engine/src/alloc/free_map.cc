#include "alloc/free_map.h"

#include <algorithm>
#include <cassert>
#include <string>

#include "page/page_layout.h"

namespace rocky::engine {

FreeMap::FreeMap(uint32_t page_size)
    : page_size_(page_size), bits_per_bitmap_(BitsPerBitmapPage(page_size)) {}

void FreeMap::InitEmpty() {
  page_count_ = 0;
  used_count_ = 0;
  used_.clear();
  pending_.clear();
  pending_by_txn_.clear();
  fresh_.clear();
  pending_fresh_by_txn_.clear();
  bitmap_pages_.clear();
  directory_pages_.clear();
  bitmap_dirty_.clear();
  Grow(kFirstDataPageId);
  for (uint64_t id = 0; id < kFirstDataPageId; ++id) SetUsed(id, true);
  search_from_ = kFirstDataPageId;
}

void FreeMap::Load(uint64_t page_count, std::vector<uint64_t> used_words, std::vector<uint64_t> bitmap_pages,
                   std::vector<uint64_t> directory_pages) {
  page_count_ = page_count;
  used_ = std::move(used_words);
  used_.resize((page_count + 63) / 64, 0);
  // Bits past the end of the file must read as free-and-absent.
  if (page_count % 64 != 0) used_.back() &= (uint64_t{1} << (page_count % 64)) - 1;
  pending_.assign(used_.size(), 0);
  pending_by_txn_.clear();
  fresh_.assign(used_.size(), 0);
  pending_fresh_by_txn_.clear();
  used_count_ = 0;
  for (uint64_t w : used_) used_count_ += static_cast<uint64_t>(__builtin_popcountll(w));
  bitmap_pages_ = std::move(bitmap_pages);
  directory_pages_ = std::move(directory_pages);
  bitmap_dirty_.assign(bitmap_pages_.size(), false);
  search_from_ = kFirstDataPageId;
}

uint64_t FreeMap::pending_count() const {
  uint64_t n = 0;
  for (const auto* by_txn : {&pending_by_txn_, &pending_fresh_by_txn_}) {
    for (const auto& [txn, runs] : *by_txn) {
      for (const auto& [first, count] : runs) n += count;
    }
  }
  return n;
}

void FreeMap::Grow(uint64_t new_page_count) {
  if (new_page_count <= page_count_) return;
  const size_t words = (new_page_count + 63) / 64;
  if (used_.size() < words) {
    used_.resize(words, 0);
    pending_.resize(words, 0);
    fresh_.resize(words, 0);
  }
  page_count_ = new_page_count;
  const uint64_t bitmaps = (page_count_ + bits_per_bitmap_ - 1) / bits_per_bitmap_;
  if (bitmap_pages_.size() < bitmaps) {
    bitmap_pages_.resize(bitmaps, 0);
    bitmap_dirty_.resize(bitmaps, true);
  }
}

void FreeMap::MarkBitmapDirty(uint64_t id) { bitmap_dirty_[id / bits_per_bitmap_] = true; }

void FreeMap::SetUsed(uint64_t id, bool v) {
  if (Bit(used_, id) == v) return;
  SetBit(used_, id, v);
  used_count_ += v ? 1 : -1;
  MarkBitmapDirty(id);
}

void FreeMap::BeginTxn(uint64_t txn_id) {
  assert(!in_txn_);
  in_txn_ = true;
  txn_id_ = txn_id;
  undo_.clear();
  saved_page_count_ = page_count_;
  saved_bitmap_pages_ = bitmap_pages_;
  saved_directory_pages_ = directory_pages_;
  saved_bitmap_dirty_ = bitmap_dirty_;
  saved_directory_dirty_ = directory_dirty_;
}

void FreeMap::CommitTxn() {
  assert(in_txn_);
  in_txn_ = false;
  undo_.clear();
}

void FreeMap::RollbackTxn() {
  assert(in_txn_);
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    for (uint64_t id = it->first; id < it->first + it->n; ++id) {
      switch (it->op) {
        case UndoOp::kAllocated: SetUsed(id, false); break;
        case UndoOp::kFreedCommitted:
          SetBit(pending_, id, false);
          SetUsed(id, true);
          break;
        case UndoOp::kFreedUncommitted: SetUsed(id, true); break;
      }
    }
  }
  pending_by_txn_.erase(txn_id_);
  pending_fresh_by_txn_.erase(txn_id_);
  page_count_ = saved_page_count_;
  bitmap_pages_ = saved_bitmap_pages_;
  directory_pages_ = saved_directory_pages_;
  bitmap_dirty_ = saved_bitmap_dirty_;
  directory_dirty_ = saved_directory_dirty_;
  search_from_ = kFirstDataPageId;
  undo_.clear();
  health_ = Status::OK();
  in_txn_ = false;
}

uint64_t FreeMap::Allocate() {
  assert(in_txn_);
  uint64_t id = page_count_;
  for (size_t w = search_from_ / 64; w < used_.size(); ++w) {
    const uint64_t taken = used_[w] | pending_[w];
    if (taken != ~uint64_t{0}) {
      id = w * 64 + static_cast<uint64_t>(__builtin_ctzll(~taken));
      break;
    }
  }
  if (id >= page_count_) {
    id = page_count_;
    Grow(page_count_ + 1);
  }
  SetUsed(id, true);
  SetBit(fresh_, id, true);
  search_from_ = id + 1;
  undo_.push_back({UndoOp::kAllocated, id, 1});
  return id;
}

uint64_t FreeMap::AllocateRun(uint64_t n) {
  assert(in_txn_);
  if (n == 1) return Allocate();
  uint64_t run_start = 0;
  uint64_t run_len = 0;
  uint64_t found = page_count_;
  for (uint64_t id = search_from_; id < page_count_; ++id) {
    if ((id & 63) == 0 && (used_[id >> 6] | pending_[id >> 6]) == ~uint64_t{0} && id + 64 <= page_count_) {
      run_len = 0;
      id += 63;  // skip a full word
      continue;
    }
    if (Allocatable(id)) {
      if (run_len == 0) run_start = id;
      if (++run_len == n) {
        found = run_start;
        break;
      }
    } else {
      run_len = 0;
    }
  }
  if (found == page_count_) {
    // Use the free tail of the file, if any, and grow it by the rest.
    found = run_len > 0 && run_start + run_len == page_count_ ? run_start : page_count_;
    Grow(found + n);
  }
  for (uint64_t id = found; id < found + n; ++id) {
    SetUsed(id, true);
    SetBit(fresh_, id, true);
  }
  undo_.push_back({UndoOp::kAllocated, found, n});
  return found;
}

bool FreeMap::CheckInUse(uint64_t first, uint64_t n) {
  for (uint64_t id = first; id < first + n; ++id) {
    if (id < kFirstDataPageId || id >= page_count_ || !Bit(used_, id)) {
      if (health_.ok()) {
        health_ = Status::Corruption(
            "page " + std::to_string(id) +
            " is referenced by a tree but the allocator has it free (or it is out of range)");
      }
      return false;
    }
  }
  return true;
}

void FreeMap::FreeCommitted(uint64_t first, uint64_t n) {
  assert(in_txn_);
  if (!CheckInUse(first, n)) return;
  bool fresh = true;
  for (uint64_t id = first; id < first + n; ++id) {
    fresh = fresh && Bit(fresh_, id);
    SetUsed(id, false);
    SetBit(pending_, id, true);
  }
  (fresh ? pending_fresh_by_txn_ : pending_by_txn_)[txn_id_].emplace_back(first, n);
  undo_.push_back({UndoOp::kFreedCommitted, first, n});
}

void FreeMap::FreeUncommitted(uint64_t first, uint64_t n) {
  assert(in_txn_);
  if (!CheckInUse(first, n)) return;
  for (uint64_t id = first; id < first + n; ++id) SetUsed(id, false);
  search_from_ = std::min(search_from_, first);
  undo_.push_back({UndoOp::kFreedUncommitted, first, n});
}

void FreeMap::ReleasePendingUpTo(uint64_t txn_id) { Release(pending_by_txn_, txn_id); }

void FreeMap::ReleaseFreshUpTo(uint64_t txn_id) { Release(pending_fresh_by_txn_, txn_id); }

void FreeMap::Release(std::map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>>& by_txn,
                      uint64_t txn_id) {
  assert(!in_txn_);
  while (!by_txn.empty() && by_txn.begin()->first <= txn_id) {
    for (const auto& [first, n] : by_txn.begin()->second) {
      for (uint64_t id = first; id < first + n; ++id) SetBit(pending_, id, false);
      search_from_ = std::min(search_from_, first);
    }
    by_txn.erase(by_txn.begin());
  }
}

std::vector<uint64_t> FreeMap::PendingTxns() const {
  std::vector<uint64_t> out;
  out.reserve(pending_by_txn_.size());
  for (const auto& entry : pending_by_txn_) out.push_back(entry.first);
  return out;
}

std::vector<PageRef> FreeMap::PersistChanges(uint64_t txn_id) {
  assert(in_txn_);
  const size_t dir_capacity = DirectoryCapacity(page_size_);
  std::vector<bool> relocated(bitmap_pages_.size(), false);
  bool directory_relocated = false;
  // Each allocation below may change a bitmap page that has not been moved yet; loop until none is left.
  for (;;) {
    bool changed = false;
    relocated.resize(bitmap_pages_.size(), false);
    bool any_relocated = false;
    for (size_t i = 0; i < bitmap_pages_.size(); ++i) {
      if (relocated[i]) {
        any_relocated = true;
        continue;
      }
      if (!bitmap_dirty_[i]) continue;
      if (bitmap_pages_[i] != 0) FreeCommitted(bitmap_pages_[i]);
      bitmap_pages_[i] = Allocate();
      relocated.resize(bitmap_pages_.size(), false);  // Allocate may have grown the file
      relocated[i] = true;
      any_relocated = true;
      changed = true;
    }
    const size_t directory_needed = (bitmap_pages_.size() + dir_capacity - 1) / dir_capacity;
    if ((any_relocated || directory_dirty_) && !directory_relocated) {
      for (uint64_t old : directory_pages_) FreeCommitted(old);
      directory_pages_.clear();
      directory_relocated = true;
      changed = true;
    }
    if (directory_relocated && directory_pages_.size() < directory_needed) {
      while (directory_pages_.size() < directory_needed) directory_pages_.push_back(Allocate());
      changed = true;
    }
    if (!changed) break;
  }

  std::vector<PageRef> out;
  const uint64_t words_per_bitmap = bits_per_bitmap_ / 64;
  for (size_t i = 0; i < bitmap_pages_.size(); ++i) {
    if (!relocated[i]) continue;
    auto page = std::make_shared<Page>(bitmap_pages_[i], page_size_, true);
    InitPageHeader(page->data(), PageKind::kFreemapBitmap);
    const size_t first_word = i * words_per_bitmap;
    const size_t words =
        std::min<size_t>(words_per_bitmap, used_.size() - std::min(used_.size(), first_word));
    if (words > 0) std::memcpy(page->data() + kBitmapDataOffset, &used_[first_word], words * 8);
    SealPage(page->data(), page_size_, page->id, txn_id);
    out.push_back(std::move(page));
  }
  if (directory_relocated) {
    for (size_t d = 0; d < directory_pages_.size(); ++d) {
      auto page = std::make_shared<Page>(directory_pages_[d], page_size_, true);
      InitPageHeader(page->data(), PageKind::kFreemapDirectory);
      const size_t begin = d * dir_capacity;
      const size_t end = std::min(bitmap_pages_.size(), begin + dir_capacity);
      SetPageCount(page->data(), static_cast<uint16_t>(end - begin));
      EncodeU64(page->data() + kDirectoryNextOffset,
                d + 1 < directory_pages_.size() ? directory_pages_[d + 1] : 0);
      for (size_t i = begin; i < end; ++i) {
        EncodeU64(page->data() + kDirectoryIdsOffset + (i - begin) * 8, bitmap_pages_[i]);
      }
      SealPage(page->data(), page_size_, page->id, txn_id);
      out.push_back(std::move(page));
    }
  }
  return out;
}

void FreeMap::MarkPersisted() {
  std::fill(bitmap_dirty_.begin(), bitmap_dirty_.end(), false);
  directory_dirty_ = false;
  std::fill(fresh_.begin(), fresh_.end(), 0);
}

uint64_t FreeMap::HighestTaken() const {
  for (size_t w = (page_count_ + 63) / 64; w-- > 0;) {
    const uint64_t taken = used_[w] | pending_[w];
    if (taken != 0) return w * 64 + 63 - static_cast<uint64_t>(__builtin_clzll(taken));
  }
  return 0;
}

uint64_t FreeMap::TakenFrom(uint64_t first) const {
  uint64_t n = 0;
  for (uint64_t id = first; id < page_count_; ++id) {
    if ((id & 63) == 0 && id + 64 <= page_count_) {
      n += static_cast<uint64_t>(__builtin_popcountll(used_[id >> 6] | pending_[id >> 6]));
      id += 63;
      continue;
    }
    n += !Allocatable(id);
  }
  return n;
}

void FreeMap::Shrink(uint64_t new_count) {
  assert(in_txn_);
  assert(new_count > HighestTaken());
  const uint64_t bitmaps = (new_count + bits_per_bitmap_ - 1) / bits_per_bitmap_;
  for (size_t i = bitmaps; i < bitmap_pages_.size(); ++i) {
    if (bitmap_pages_[i] != 0) FreeCommitted(bitmap_pages_[i]);
  }
  bitmap_pages_.resize(bitmaps);
  bitmap_dirty_.resize(bitmaps);
  page_count_ = new_count;
  directory_dirty_ = true;
}

}  // namespace rocky::engine
