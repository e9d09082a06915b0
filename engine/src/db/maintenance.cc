// DatabaseImpl::CheckIntegrity and DatabaseImpl::GetStats: whole-commit walks (db/commit_walker.h).
#include "db/commit_walker.h"
#include "db/db_impl.h"

namespace rocky::engine {

Result<CommitSlot> DatabaseImpl::SlotOf(uint64_t txn_id) {
  std::optional<CommitSlot> slots[2];
  ROCKY_RETURN_IF_ERROR(ReadSlots(slots));
  for (auto& s : slots) {
    if (s && s->txn_id == txn_id) return *s;
  }
  return Status::Corruption(path_ + ": commit " + std::to_string(txn_id) + " is no longer in either slot");
}

Result<std::optional<CommitWalker>> DatabaseImpl::WalkLastCommit(bool from_disk) {
  if (closed_) return Status::InvalidArgument("database " + path_ + " is closed");
  auto walk = [&](uint64_t txn_id) -> Result<std::optional<CommitWalker>> {
    if (txn_id == 0) return std::optional<CommitWalker>();  // a read-only handle on a file without a commit
    ROCKY_ASSIGN_OR_RETURN(CommitSlot slot, SlotOf(txn_id));
    CommitWalker walker(pager_.get(), slot, from_disk);
    Status s = walker.Walk();
    if (!s.ok()) return s.WithContext(path_);
    return std::optional<CommitWalker>(std::move(walker));
  };
  if (options_.read_only) {
    // Hold a registered snapshot so a writer in another process cannot reuse its pages meanwhile.
    ROCKY_ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> snap, ReadOnlySnapshot());
    Result<std::optional<CommitWalker>> out = walk(snap->txn_id);
    EndRead(snap->txn_id);
    return out;
  }
  // The walk compares the bitmaps on disk with the trees: make every commit durable, then keep writers out.
  ROCKY_RETURN_IF_ERROR(FlushNoSyncCommits());
  AcquireWriter(true);
  Result<std::optional<CommitWalker>> out = walk(durable_txn_);
  ReleaseWriter();
  return out;
}

Result<IntegrityReport> DatabaseImpl::CheckIntegrity() {
  ROCKY_ASSIGN_OR_RETURN(std::optional<CommitWalker> walker, WalkLastCommit(/*from_disk=*/true));
  if (!walker) return IntegrityReport{};
  return walker->report();
}

Result<Stats> DatabaseImpl::GetStats() {
  ROCKY_ASSIGN_OR_RETURN(std::optional<CommitWalker> walker, WalkLastCommit(/*from_disk=*/false));
  if (!walker) {
    // No commit: nothing but the bytes the file holds.
    Stats st;
    st.page_size = page_size_;
    ROCKY_ASSIGN_OR_RETURN(uint64_t size, file_->Size());
    st.file_pages = size / page_size_;
    return st;
  }
  return walker->stats();
}

}  // namespace rocky::engine
