// DatabaseImpl::Compact: moves pages from the end of the file into free space, then truncates the file.
//
// Each round is one durable write transaction that copies every tree page (and overflow run) lying at or
// past `threshold` = the number of pages in use; copies go to the lowest free pages, so when the round
// commits, pages past the threshold are free. Ancestors of moved pages are copied too (copy-on-write), which
// can push a few pages past the threshold again, hence several rounds. (A round walks every tree, even when
// it moves nothing: the loop stops as soon as no tree page lies past the threshold.) A last transaction
// shrinks the allocator's page count, and the file is truncated only after that commit is durable.
#include "btree/node.h"
#include "btree/tree_cursor.h"
#include "db/db_impl.h"
#include "db/table_meta.h"
#include "db/transactions.h"

namespace rocky::engine {

namespace {

constexpr int kMaxCompactionRounds = 16;

// True when some page of the entry's overflow run lies at or past threshold (a run may start below it).
bool RunReaches(const LeafEntry& e, uint64_t threshold, uint32_t page_size) {
  return e.overflow_page + OverflowRunPages(e.value_len, page_size) > threshold;
}

// The same for the run of an overflow key (a leaf's key or a branch's separator).
bool KeyRunReaches(const StoredKey& k, uint64_t threshold, uint32_t page_size) {
  return k.overflow && k.page + OverflowRunPages(k.len, page_size) > threshold;
}

// Rewrites the run of entry i's overflow key below threshold (lowest free pages) and repoints the entry.
Status MoveKeyRun(WriteTxnImpl& txn, NodePage& w, int i, const StoredKey& k) {
  std::string key;
  ROCKY_RETURN_IF_ERROR(LoadKey(txn, k, &key));
  const uint64_t moved = txn.WriteOverflow(key);
  txn.FreeOverflow(k.page, k.len);
  w.set_key_page(i, moved);
  return Status::OK();
}

// Copies the subtree at id so that no page of it lies at or past threshold (as far as free space allows);
// returns the subtree's new root id (id itself when nothing moved).
Result<uint64_t> RelocateTree(WriteTxnImpl& txn, uint64_t id, uint64_t threshold, int depth) {
  if (depth > kMaxTreeDepth) return Status::Corruption("tree too deep");
  const uint32_t ps = txn.page_size();
  ROCKY_ASSIGN_OR_RETURN(PageRef page, txn.ReadNode(id));
  NodePage node(page->data(), ps);
  std::vector<std::pair<int, uint64_t>> moved_children;
  bool move_self = id >= threshold;
  if (!node.is_leaf()) {
    for (int i = 0; i <= node.count(); ++i) {
      const uint64_t child = node.branch_child(i);
      ROCKY_ASSIGN_OR_RETURN(uint64_t moved, RelocateTree(txn, child, threshold, depth + 1));
      if (moved != child) moved_children.emplace_back(i, moved);
    }
    for (int i = 0; i < node.count(); ++i) {
      if (KeyRunReaches(node.branch_key(i), threshold, ps)) move_self = true;
    }
  } else {
    for (int i = 0; i < node.count(); ++i) {
      const LeafEntry e = node.leaf_entry(i);
      if ((e.overflow && RunReaches(e, threshold, ps)) || KeyRunReaches(e.key, threshold, ps))
        move_self = true;
    }
  }
  if (!move_self && moved_children.empty()) return id;
  ROCKY_ASSIGN_OR_RETURN(PageRef copy, txn.WritableNode(id));
  NodePage w(copy->data(), ps);
  for (const auto& [i, child] : moved_children) w.set_branch_child(i, child);
  if (w.is_leaf()) {
    for (int i = 0; i < w.count(); ++i) {
      const LeafEntry e = w.leaf_entry(i);
      if (KeyRunReaches(e.key, threshold, ps)) ROCKY_RETURN_IF_ERROR(MoveKeyRun(txn, w, i, e.key));
      if (!e.overflow || !RunReaches(e, threshold, ps)) continue;
      std::string value;
      ROCKY_RETURN_IF_ERROR(LoadValue(txn, e, &value));
      const uint64_t moved = txn.WriteOverflow(value);
      txn.FreeOverflow(e.overflow_page, e.value_len);
      w.set_overflow_page(i, moved);
    }
  } else {
    for (int i = 0; i < w.count(); ++i) {
      const StoredKey k = w.branch_key(i);
      if (KeyRunReaches(k, threshold, ps)) ROCKY_RETURN_IF_ERROR(MoveKeyRun(txn, w, i, k));
    }
  }
  return copy->id;
}

// One round: relocates every table tree, then the catalog.
Status RelocateAll(WriteTxnImpl& txn, uint64_t threshold) {
  std::vector<std::pair<std::string, TableMeta>> tables;
  {
    TreeCursor c(&txn, txn.catalog().root, {}, "catalog");
    for (c.SeekToFirst(); c.Valid(); c.Next()) {
      TableMeta meta;
      if (!DecodeTableMeta(c.value(), &meta))
        return Status::Corruption("catalog record of table '" + std::string(c.key()) + "' is malformed");
      tables.emplace_back(std::string(c.key()), meta);
    }
    ROCKY_RETURN_IF_ERROR(c.status());
  }
  for (auto& [name, meta] : tables) {
    if (meta.root == 0) continue;
    auto moved = RelocateTree(txn, meta.root, threshold, 1);
    if (!moved.ok()) return moved.status().WithContext(TableLabel(name));
    if (moved.value() == meta.root) continue;
    meta.root = moved.value();
    auto r = TreeInsert(txn, txn.catalog(), name, EncodeTableMeta(meta));
    if (!r.ok()) return r.status().WithContext("catalog");
  }
  if (txn.catalog().root != 0) {
    auto moved = RelocateTree(txn, txn.catalog().root, threshold, 1);
    if (!moved.ok()) return moved.status().WithContext("catalog");
    txn.catalog().root = moved.value();
  }
  return Status::OK();
}

// Pages of the allocator's own bitmaps and directory at or past threshold. Relocating the trees does not move
// them (every durable commit rewrites the changed ones to the lowest free pages, the shrinking commit
// included), so they are no reason for another round.
uint64_t FreeMapPagesFrom(const FreeMap& fm, uint64_t threshold) {
  uint64_t n = 0;
  for (uint64_t id : fm.bitmap_pages()) n += id >= threshold;
  for (uint64_t id : fm.directory_pages()) n += id >= threshold;
  return n;
}

}  // namespace

Status DatabaseImpl::Compact() {
  if (closed_) return Status::InvalidArgument("database " + path_ + " is closed");
  if (options_.read_only) return Status::InvalidArgument("database " + path_ + " was opened read-only");
  {
    std::lock_guard lock(snapshot_mu_);
    if (!live_readers_.empty())
      return Status::Busy("cannot compact " + path_ + ": read transactions are open");
  }
  if (!AcquireWriter(false)) return Status::Busy("cannot compact " + path_ + ": a write transaction is open");
  ReleaseWriter();
  ROCKY_RETURN_IF_ERROR(FlushNoSyncCommits());

  WriteOptions durable;
  durable.durability = Durability::kDurable;
  uint64_t previous_past = UINT64_MAX;
  for (int round = 0; round < kMaxCompactionRounds; ++round) {
    ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<WriteTransaction> txn, BeginWrite(durable));
    auto& w = static_cast<WriteTxnImpl&>(*txn);
    const uint64_t threshold = freemap_.used_count();
    // Progress is the number of pages still lying at or past the threshold, not the end of the file: a round
    // that runs out of free pages below the threshold (the pages it frees stay pending until it commits) puts
    // its last copies at the end, and only the next round can move them down.
    const uint64_t taken = freemap_.TakenFrom(threshold);
    const uint64_t own = FreeMapPagesFrom(freemap_, threshold);  // counted in taken: they are in use
    const uint64_t past = taken > own ? taken - own : 0;
    if (past == 0 || past >= previous_past) break;  // packed, or no progress possible
    previous_past = past;
    ROCKY_RETURN_IF_ERROR(RelocateAll(w, threshold));
    ROCKY_RETURN_IF_ERROR(txn->Commit());
  }
  // The last round's commit wrote the allocator's changed bitmap and directory pages to the lowest free
  // pages it had left, which can be far past the packed trees when the round used every free page below them
  // (1,110 pages past them in the bench's 1M-key file), and the file cannot end before them. Rewriting them
  // all in one more commit moves them down: the pages the last round freed are free by now.
  if (FreeMapPagesFrom(freemap_, freemap_.used_count()) > 0) {
    ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<WriteTransaction> txn, BeginWrite(durable));
    freemap_.MarkAllDirty();
    static_cast<WriteTxnImpl&>(*txn).MarkModified();
    ROCKY_RETURN_IF_ERROR(txn->Commit());
  }
  // Shrink: a commit whose page count ends at the last page in use, then the truncation.
  ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<WriteTransaction> txn, BeginWrite(durable));
  const uint64_t new_count = std::max<uint64_t>(freemap_.HighestTaken() + 1, kFirstDataPageId);
  if (new_count < freemap_.page_count()) {
    freemap_.Shrink(new_count);
    static_cast<WriteTxnImpl&>(*txn).MarkModified();
    ROCKY_RETURN_IF_ERROR(txn->Commit());
  } else {
    txn->Abort();
  }
  ROCKY_ASSIGN_OR_RETURN(uint64_t size, file_->Size());
  const uint64_t target = freemap_.page_count() * page_size_;
  if (size > target) {
    pager_->WillTruncate(target);  // readers must not touch mapped pages past the new end
    Status s = file_->Truncate(target);
    if (s.ok()) s = file_->Sync();
    if (!s.ok()) return Poison(s);
    file_bytes_ = target;
  }
  return Status::OK();
}

}  // namespace rocky::engine
