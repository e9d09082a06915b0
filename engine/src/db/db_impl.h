// DatabaseImpl: opening and recovery, the writer lock, snapshots, and the commit protocol.
//
// Commit protocol (format-spec/FORMAT.md, "Commit"): a write transaction's pages go to pages no live
// snapshot and no fallback commit can reach; then the commit slot not holding the last durable commit is
// overwritten. A small durable commit issues one fdatasync for its pages and slot together and lists its
// pages in the slot, so recovery can tell a complete commit from a torn one by checking those pages alone.
// A large one (or the first durable one after kNoSync commits) syncs its pages first, then the slot. A
// durable transaction begun after kNoSync commits that freed pages of the last durable commit first makes
// them durable with an empty commit (BeginWrite), so that it can reuse those pages.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "alloc/free_map.h"
#include "btree/btree.h"
#include "db/commit_slot.h"
#include "db/recovery.h"
#include "page/page_layout.h"
#include "page/pager.h"
#include "rocky/engine/db.h"
#include "rocky/engine/env.h"

namespace rocky::engine {

class WriteTxnImpl;

// A commit as readers see it. Immutable.
struct Snapshot {
  uint64_t txn_id = 0;
  uint64_t catalog_root = 0;
  uint64_t page_count = 0;
};

// Byte-range lock offsets, far past any real data (format-spec/FORMAT.md, "Locks").
inline constexpr uint64_t kWriterLockOffset = uint64_t{1} << 62;
// A reader in another process locks (shared) the byte kReaderLockBase + snapshot id.
inline constexpr uint64_t kReaderLockBase = (uint64_t{1} << 62) + (uint64_t{1} << 20);

// Reads committed tree pages for snapshots and transactions: checksum-verified by the pager and
// structure-checked once per loaded page.
class CommittedPages : public PageSource {
 public:
  explicit CommittedPages(Pager* pager) : pager_(pager) {}
  uint32_t page_size() const override { return pager_->page_size(); }
  Result<PageRef> ReadNode(uint64_t id) override;
  // A page of the file's map is checked (checksum, then structure) on its first use since this process last
  // wrote it, remembered by its state byte in the map (one acquire load per access afterwards); other pages
  // go through ReadNode.
  Result<const char*> ReadNodeBytes(uint64_t id, PageRef* hold) override;
  Result<PageRef> ReadOverflow(uint64_t first) override { return pager_->ReadOverflowRun(first); }

 private:
  Pager* pager_;
};

class DatabaseImpl final : public Database {
 public:
  static Result<std::unique_ptr<Database>> OpenImpl(const std::string& path, const Options& options);
  ~DatabaseImpl() override;

  Result<std::unique_ptr<ReadTransaction>> BeginRead() override;
  Result<std::unique_ptr<WriteTransaction>> BeginWrite(const WriteOptions& options) override;
  Status Compact() override;
  Result<IntegrityReport> CheckIntegrity() override;
  Result<Stats> GetStats() override;
  Status Close() override;
  const std::string& path() const override { return path_; }
  const OpenReport& open_report() const override { return report_; }

  // --- For transactions. ---
  Pager& pager() { return *pager_; }
  uint32_t page_size() const { return page_size_; }
  FreeMap& freemap() { return freemap_; }
  // Longest key and table name this file accepts: unbounded (kMaxKeySize) in format version 2; version 1's
  // limits in a version-1 file, whose older readers know no overflow keys (format-spec/FORMAT.md,
  // "Versions").
  uint64_t max_key_size() const;
  uint64_t max_table_name_size() const;
  // Writes the transaction's pages and, when durable, a commit slot; publishes the new snapshot.
  Status CommitTransaction(WriteTxnImpl& txn);
  // Ends the current write transaction (committed or not), letting the next writer in.
  void EndWrite(bool committed);
  void EndRead(uint64_t snapshot_id);

 private:
  DatabaseImpl(std::string path, const Options& options, Env* env);

  Status OpenFile();
  // Creates the file at path_ atomically (see Database::Open); false when another process created it first.
  Result<bool> CreateFileAtomically();
  // Turns a file holding no commit into a new empty database, in place (the writer lock is held).
  Status InitializeInPlace(uint32_t page_size);
  Status Recover();
  // Copies the file aside before a commit can overwrite the discarded one; sets report_.discarded's path.
  Status KeepDiscardedEvidence();
  // Reads both slots; returns them (nullopt = blank or torn) in slot order.
  Status ReadSlots(std::optional<CommitSlot> slots[2]);
  Status LoadFreeMap(const CommitSlot& slot, FreeMap* freemap);
  // Pages freed by transactions no snapshot (in this process or another) can still reach become reusable.
  void ReleaseFreedPages();
  // The next write transaction, on the current snapshot, after ReleaseFreedPages. Requires: the writer is
  // held (AcquireWriter); the transaction releases it when it commits or aborts.
  std::unique_ptr<WriteTxnImpl> StartWriteTxn(Durability durability);
  Status WriteSlot(const CommitSlot& slot, int slot_index);
  // After the slot write or sync of commit txn_id failed with `cause`: overwrites the slot with zeros and
  // syncs, so the previous commit is certainly current; returns the error Commit reports (kOutcomeUnknown
  // when this fails too). See WriteTransaction::Commit.
  Status SettleFailedSlot(int slot_index, uint64_t txn_id, const Status& cause);
  // The error of a commit that certainly did not change the file.
  Status NotCommitted(uint64_t txn_id, const Status& cause) const;
  // True when, on disk, the first page of one of `pages` (about to be written) is sealed with txn_id.
  bool OverwritesPageOfTxn(const std::vector<PageRef>& pages, uint64_t txn_id);
  // Makes kNoSync commits durable with an empty durable commit.
  Status FlushNoSyncCommits();
  Status Poison(const Status& cause);
  // Takes the writer role (waiting for it, or failing at once when !wait); ReleaseWriter gives it back.
  bool AcquireWriter(bool wait);
  void ReleaseWriter();
  // The slot holding commit txn_id, read from disk.
  Result<CommitSlot> SlotOf(uint64_t txn_id);
  // Walks the last durable commit (after making kNoSync commits durable), holding off writers; nullopt for a
  // read-only handle on a file without a commit.
  Result<std::optional<class CommitWalker>> WalkLastCommit(bool from_disk);
  Result<std::shared_ptr<const Snapshot>> ReadOnlySnapshot();
  Result<std::shared_ptr<const Snapshot>> CurrentSnapshot();

  std::string path_;
  Options options_;
  Env* env_;
  std::string registry_key_;
  std::unique_ptr<File> file_;
  std::unique_ptr<Pager> pager_;
  // Shared by all read transactions; thread-safe because the pager is.
  CommittedPages committed_pages_{nullptr};
  uint32_t page_size_ = 0;
  uint32_t format_version_ = kFormatVersion;  // of the open file, from its super-header
  bool closed_ = false;

  // Writer state: touched only by the thread holding the writer (writer_active_).
  std::mutex writer_mu_;
  std::condition_variable writer_cv_;
  bool writer_active_ = false;
  FreeMap freemap_{kMinPageSize};
  uint64_t durable_txn_ = 0;  // id of the last commit whose slot is durable
  int durable_slot_ = 0;      // which slot (0 or 1) holds it
  uint64_t next_txn_id_ = 0;
  bool unsynced_pages_ = false;  // kNoSync commits wrote pages since the last durable commit
  // The file's directory entry is known durable: this open created the file (and synced its directory), or a
  // durable commit of this handle synced it. The name may not be durable when the file was opened: a creator
  // may have died before its directory sync, or the file was copied or renamed there; a commit acknowledged
  // while it is not would be lost with the name at a power cut. So the first durable commit syncs the
  // directory first. (Opening used to, which made every read-write open pay an fsync, commits or not.)
  bool name_durable_ = false;
  uint64_t file_bytes_ = 0;  // length of the file as far as this process has written it
  // Pages written since the file was opened (bit per page id). Any other page may still hold what a crashed
  // earlier writer wrote, possibly under a transaction id this writer reuses (see OverwritesPageOfTxn).
  std::vector<uint64_t> written_since_open_;
  Status poisoned_;

  // Published state, read by BeginRead.
  std::mutex snapshot_mu_;
  std::shared_ptr<const Snapshot> current_;
  std::map<uint64_t, int> live_readers_;  // snapshot id -> open read transactions
  // Read-only: the last commit a verdict found complete (its pages are not reused while it is the newest, so
  // it need not be verified again).
  std::mutex verified_mu_;
  std::optional<CommitSlot> verified_commit_;
  OpenReport report_;  // set by Open, constant afterwards

  friend class WriteTxnImpl;
};

}  // namespace rocky::engine
