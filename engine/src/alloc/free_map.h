// FreeMap: which pages are in use, which are free, and which are freed but still needed by someone.
//
// Two bits per page, in memory:
//   used     the page is reachable from the state the writer is building (persisted in the bitmaps)
//   pending  the page was freed by transaction T but a snapshot (or the fallback commit) may still reach it
// A page is allocatable when neither bit is set. Pages freed by transaction T move from pending to free once
// T is durable and no snapshot older than T is alive (ReleasePendingUpTo). Pages allocated after the last
// durable commit ("fresh": written only by kNoSync commits) are reached by no durable commit, so when freed
// they wait only for the snapshots older than T (ReleaseFreshUpTo).
//
// The used bits are persisted at each durable commit as bitmap pages listed by a chain of directory pages
// (format-spec/FORMAT.md); both are copy-on-write like every other page, so the previous commit's bitmaps
// survive until nothing needs them. Opening a file reads these bitmaps; it never walks the trees.
//
// Not thread-safe: owned by the single writer. Changes made in a transaction can be rolled back.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

#include "page/page.h"
#include "rocky/engine/status.h"

namespace rocky::engine {

class FreeMap {
 public:
  explicit FreeMap(uint32_t page_size);

  // Installs the persisted state read at open: page_count pages, `used` bits (LSB-first words, covering at
  // least page_count bits), and the current locations of the bitmap and directory pages.
  void Load(uint64_t page_count, std::vector<uint64_t> used_words, std::vector<uint64_t> bitmap_pages,
            std::vector<uint64_t> directory_pages);
  // A brand-new file: only the header pages are in use.
  void InitEmpty();

  uint64_t page_count() const { return page_count_; }
  uint64_t used_count() const { return used_count_; }
  uint64_t free_count() const { return page_count_ - used_count_; }
  uint64_t pending_count() const;
  bool IsUsed(uint64_t id) const { return id < page_count_ && Bit(used_, id); }
  const std::vector<uint64_t>& bitmap_pages() const { return bitmap_pages_; }
  const std::vector<uint64_t>& directory_pages() const { return directory_pages_; }

  // --- Transaction scope. Every change between Begin and Commit/Rollback is undone by Rollback. ---
  void BeginTxn(uint64_t txn_id);
  void CommitTxn();
  void RollbackTxn();

  // Lowest allocatable page, growing the file when there is none.
  uint64_t Allocate();
  // n contiguous allocatable pages (for an overflow run), growing the file when needed.
  uint64_t AllocateRun(uint64_t n);
  // Frees pages that older snapshots may still reach: they stay pending until released.
  void FreeCommitted(uint64_t first, uint64_t n = 1);
  // Frees pages allocated by the current transaction (nobody else ever saw them): allocatable at once.
  void FreeUncommitted(uint64_t first, uint64_t n = 1);

  // Not OK once a free named a page that was not in use: the file's trees and allocator disagree
  // (corruption). The commit checks it, so such a transaction never commits.
  Status health() const { return health_; }

  // Pending pages freed by transactions <= txn_id become allocatable. Not undone by Rollback.
  void ReleasePendingUpTo(uint64_t txn_id);
  // The same for pending pages that were fresh when freed (only this process's snapshots can reach those).
  void ReleaseFreshUpTo(uint64_t txn_id);
  // True when a transaction later than txn_id freed pages that were not fresh (an earlier durable commit may
  // reach them) and they are still pending.
  bool HasPendingAfter(uint64_t txn_id) const {
    return !pending_by_txn_.empty() && pending_by_txn_.rbegin()->first > txn_id;
  }
  // Ids of transactions whose freed pages are still pending, ascending.
  std::vector<uint64_t> PendingTxns() const;

  // Highest page that is in use or pending (0 when none past the header).
  uint64_t HighestTaken() const;
  // Number of pages in use or pending in [first, page_count).
  uint64_t TakenFrom(uint64_t first) const;
  // Drops pages [new_count, page_count) from the file (compaction). Requires: none of them in use or pending.
  void Shrink(uint64_t new_count);

  // --- Persistence, at a durable commit of transaction txn_id (inside the transaction scope). ---
  // Moves every changed bitmap page, and the directory, to newly allocated pages (freeing the old ones),
  // repeating until the allocations it makes are themselves recorded, then returns the sealed pages to write.
  std::vector<PageRef> PersistChanges(uint64_t txn_id);
  // Makes the next PersistChanges move every bitmap page and the directory to the lowest free pages
  // (compaction: the allocator's own pages may lie past the packed trees). Undone by Rollback.
  void MarkAllDirty() {
    std::fill(bitmap_dirty_.begin(), bitmap_dirty_.end(), true);
    directory_dirty_ = true;
  }
  // Marks everything persisted (after the commit reached the disk): no page is fresh any more.
  void MarkPersisted();

  // Rebuilds used bits from a list of reachable pages; for integrity checks comparing the two.
  std::vector<uint64_t> UsedWordsCopy() const { return used_; }

 private:
  static bool Bit(const std::vector<uint64_t>& w, uint64_t i) { return (w[i >> 6] >> (i & 63)) & 1; }
  static void SetBit(std::vector<uint64_t>& w, uint64_t i, bool v) {
    if (v) {
      w[i >> 6] |= uint64_t{1} << (i & 63);
    } else {
      w[i >> 6] &= ~(uint64_t{1} << (i & 63));
    }
  }
  void Grow(uint64_t new_page_count);
  void SetUsed(uint64_t id, bool v);
  void MarkBitmapDirty(uint64_t id);
  void Release(std::map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>>& by_txn, uint64_t txn_id);
  // False (and health_ set) when some page of [first, first+n) is not in use or lies past the end.
  bool CheckInUse(uint64_t first, uint64_t n);
  bool Allocatable(uint64_t id) const { return !Bit(used_, id) && !Bit(pending_, id); }

  enum class UndoOp : uint8_t { kAllocated, kFreedCommitted, kFreedUncommitted };
  struct Undo {
    UndoOp op;
    uint64_t first;
    uint64_t n;
  };

  uint32_t page_size_;
  uint64_t bits_per_bitmap_;
  uint64_t page_count_ = 0;
  uint64_t used_count_ = 0;
  std::vector<uint64_t> used_;
  std::vector<uint64_t> pending_;
  std::map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>> pending_by_txn_;  // txn -> (first, n)
  // Allocated since the last durable commit (meaningful for used pages only; cleared by MarkPersisted).
  std::vector<uint64_t> fresh_;
  std::map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>> pending_fresh_by_txn_;  // txn -> (first, n)
  uint64_t search_from_ = 0;  // no allocatable page below this
  Status health_;

  std::vector<uint64_t> bitmap_pages_;     // location of bitmap page i (0 = never written)
  std::vector<uint64_t> directory_pages_;  // chain, in order
  std::vector<bool> bitmap_dirty_;         // changed since the last persisted state
  bool directory_dirty_ = false;           // the directory must be rewritten even if no bitmap moved

  // Transaction scope.
  bool in_txn_ = false;
  uint64_t txn_id_ = 0;
  std::vector<Undo> undo_;
  uint64_t saved_page_count_ = 0;
  std::vector<uint64_t> saved_bitmap_pages_;
  std::vector<uint64_t> saved_directory_pages_;
  std::vector<bool> saved_bitmap_dirty_;
  bool saved_directory_dirty_ = false;
};

}  // namespace rocky::engine
