#include "db/db_impl.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "btree/node.h"
#include "db/commit_walker.h"
#include "db/open_registry.h"
#include "db/transactions.h"
#include "page/page_layout.h"

namespace rocky::engine {

namespace {

// How often a read-only reader retries when the writer commits between its reading the slots and locking
// its snapshot; each retry costs two slot reads.
constexpr int kReaderSnapshotRetries = 1000;

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Result<PageRef> CommittedPages::ReadNode(uint64_t id) {
  ROCKY_ASSIGN_OR_RETURN(PageRef page, pager_->ReadPage(id));
  if (!page->structure_checked.load(std::memory_order_acquire)) {
    ROCKY_RETURN_IF_ERROR(CheckNodeStructure(page->data(), pager_->page_size(), id));
    page->MarkStructureChecked();
  }
  return page;
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, const Options& options) {
  return DatabaseImpl::OpenImpl(path, options);
}

DatabaseImpl::DatabaseImpl(std::string path, const Options& options, Env* env)
    : path_(std::move(path)), options_(options), env_(env) {}

DatabaseImpl::~DatabaseImpl() { (void)Close(); }

Result<std::unique_ptr<Database>> DatabaseImpl::OpenImpl(const std::string& path, const Options& options) {
  Env* env = options.env != nullptr ? options.env : Env::Default();
  std::unique_ptr<DatabaseImpl> db(new DatabaseImpl(path, options, env));
  Status s = db->OpenFile();
  if (!s.ok()) {
    db->closed_ = true;  // nothing to flush
    // The descriptor goes before the registration: once released, another open may lock the file, and
    // closing a descriptor of it then would drop that open's locks.
    db->pager_.reset();
    db->file_.reset();
    if (!db->registry_key_.empty()) OpenRegistry::Release(db->registry_key_);
    db->registry_key_.clear();
    return s;
  }
  return std::unique_ptr<Database>(std::move(db));
}

Status DatabaseImpl::OpenFile() {
  const uint32_t ps = options_.page_size;
  if (ps < kMinPageSize || ps > kMaxPageSize || (ps & (ps - 1)) != 0) {
    return Status::InvalidArgument("page size " + std::to_string(ps) + " is not a power of two from 512 to 65536");
  }
  ROCKY_ASSIGN_OR_RETURN(bool exists, env_->FileExists(path_));
  if (!exists && (options_.read_only || !options_.create_if_missing)) {
    return Status::NotFound("database file " + path_ + " does not exist");
  }
  if (!exists) ROCKY_RETURN_IF_ERROR(env_->CreateDirs(DirName(path_)));
  FileOpenOptions fo;
  fo.create = !options_.read_only && options_.create_if_missing;
  fo.read_only = options_.read_only;
  // Refused (kBusy) when this process has the file open already, without closing any descriptor of it:
  // that would drop the other handle's locks (see open_registry.h).
  ROCKY_ASSIGN_OR_RETURN(file_, OpenRegistry::OpenAndAcquire(env_, path_, fo, &registry_key_));
  if (!options_.read_only) {
    Status lock = file_->TryLock(LockKind::kExclusive, kWriterLockOffset, 1);
    if (!lock.ok()) {
      if (lock.IsBusy()) return Status::Busy("database " + path_ + " is in use for writing: " + lock.message());
      return lock;
    }
  }
  ROCKY_ASSIGN_OR_RETURN(uint64_t size, file_->Size());
  if (size == 0) {
    if (options_.read_only) return Status::InvalidArgument(path_ + " is empty, not a rocky database");
    page_size_ = ps;
    pager_ = std::make_unique<Pager>(file_.get(), path_, ps, options_.cache_bytes);
    ROCKY_RETURN_IF_ERROR(InitializeNewFile());
    if (!exists) (void)env_->SyncDir(DirName(path_));
  }
  return Recover();
}

Status DatabaseImpl::InitializeNewFile() {
  // Page 0, synced; a blank slot B and the allocator's pages, synced; slot A last. A crash before slot A is
  // durable leaves a file with a header and a blank slot B, which the next open initialises again. Page 0 is
  // synced on its own because the disk may keep later writes and lose earlier ones: a file whose other pages
  // reached the disk without its header would be refused as "not a rocky database" forever.
  std::string page(page_size_, '\0');
  EncodeSuperHeader(SuperHeader{kFormatVersion, page_size_}, page.data());
  ROCKY_RETURN_IF_ERROR(pager_->WriteRaw(kHeaderPageId, page.data(), page.size()));
  ROCKY_RETURN_IF_ERROR(pager_->Sync());
  std::string blank(page_size_, '\0');
  ROCKY_RETURN_IF_ERROR(pager_->WriteRaw(kSlotPageIds[1], blank.data(), blank.size()));

  FreeMap fm(page_size_);
  fm.InitEmpty();
  fm.BeginTxn(1);
  std::vector<PageRef> pages = fm.PersistChanges(1);
  fm.CommitTxn();
  std::sort(pages.begin(), pages.end(), [](const PageRef& a, const PageRef& b) { return a->id < b->id; });
  ROCKY_RETURN_IF_ERROR(pager_->WritePages(pages));
  ROCKY_RETURN_IF_ERROR(pager_->Sync());

  CommitSlot slot;
  slot.txn_id = 1;
  slot.synced_before_slot = true;
  slot.page_count = fm.page_count();
  slot.catalog_root = 0;
  slot.freemap_directory = fm.directory_pages().front();
  slot.free_pages = fm.free_count();
  std::string slot_page(page_size_, '\0');
  EncodeCommitSlot(slot, kSlotPageIds[0], page_size_, slot_page.data());
  ROCKY_RETURN_IF_ERROR(pager_->WriteRaw(kSlotPageIds[0], slot_page.data(), slot_page.size()));
  return pager_->Sync();
}

Status DatabaseImpl::ReadSlots(std::optional<CommitSlot> slots[2]) {
  std::string buf(page_size_, '\0');
  for (int i = 0; i < 2; ++i) {
    size_t n = 0;
    ROCKY_RETURN_IF_ERROR(pager_->ReadRaw(kSlotPageIds[i], buf.data(), &n));
    slots[i] = n == page_size_ ? DecodeCommitSlot(buf.data(), kSlotPageIds[i], page_size_) : std::nullopt;
  }
  return Status::OK();
}

bool DatabaseImpl::VerifyCommitPages(const CommitSlot& slot) {
  for (uint64_t id : slot.verify_list) {
    if (id < kFirstDataPageId || id >= slot.page_count) return false;
    std::string head(kPageHeaderSize, '\0');
    size_t n = 0;
    if (!file_->Read(id * page_size_, head.size(), head.data(), &n).ok() || n != head.size()) return false;
    Result<PageRef> page = GetPageKind(head.data()) == PageKind::kOverflow ? pager_->ReadOverflowRun(id)
                                                                           : pager_->ReadPageUncached(id);
    if (!page.ok() || PageTxn(page.value()->data()) != slot.txn_id) return false;
  }
  return true;
}

Status DatabaseImpl::Recover() {
  std::string head(kHeaderSize, '\0');
  size_t n = 0;
  ROCKY_RETURN_IF_ERROR(file_->Read(0, head.size(), head.data(), &n));
  ROCKY_ASSIGN_OR_RETURN(SuperHeader header, DecodeSuperHeader(head.data(), n, path_));
  format_version_ = header.format_version;
  if (pager_ == nullptr || page_size_ != header.page_size) {
    page_size_ = header.page_size;
    // A read-only handle may share the file with a writer in another process, which reuses page ids:
    // it caches nothing across transactions (see BeginRead).
    pager_ = std::make_unique<Pager>(file_.get(), path_, page_size_, options_.read_only ? 0 : options_.cache_bytes);
  }
  ROCKY_ASSIGN_OR_RETURN(uint64_t file_size, file_->Size());

  std::optional<CommitSlot> slots[2];
  ROCKY_RETURN_IF_ERROR(ReadSlots(slots));
  if (!slots[0] && !slots[1]) {
    std::string b(page_size_, '\0');
    size_t nb = 0;
    ROCKY_RETURN_IF_ERROR(pager_->ReadRaw(kSlotPageIds[1], b.data(), &nb));
    // Slot B is written by the first commit after creation, so while it is blank no commit but the creating
    // one ever completed (slot A may be torn: the power failed while it was written).
    if (!options_.read_only && IsAllZero(b.data(), nb)) {
      // Creation was interrupted before the first commit: no data can be lost by starting again.
      pager_->WillTruncate(0);
      ROCKY_RETURN_IF_ERROR(file_->Truncate(0));
      pager_ = std::make_unique<Pager>(file_.get(), path_, page_size_, options_.cache_bytes);
      ROCKY_RETURN_IF_ERROR(InitializeNewFile());
      return Recover();
    }
    return Status::Corruption(path_ + ": neither commit slot (pages 1 and 2) is valid");
  }

  // The valid slot with the highest id wins, if its commit is complete; else the other one.
  int order[2] = {0, 1};
  const uint64_t id0 = slots[0] ? slots[0]->txn_id : 0;
  const uint64_t id1 = slots[1] ? slots[1]->txn_id : 0;
  if (id1 > id0) std::swap(order[0], order[1]);
  int chosen = -1;
  std::string rejected;
  for (int idx : order) {
    if (!slots[idx]) continue;
    const CommitSlot& s = *slots[idx];
    const uint64_t needed = s.page_count * page_size_;
    if (s.synced_before_slot) {
      // Its pages and the file's length were durable before the slot: a short file was cut afterwards.
      if (needed > file_size) {
        return Status::Corruption(path_ + " is truncated: commit " + std::to_string(s.txn_id) + " needs " +
                                  std::to_string(needed) + " bytes but the file holds " + std::to_string(file_size));
      }
      chosen = idx;
      break;
    }
    // Slot, pages and length were synced together: any of them missing means the commit never completed.
    if (needed <= file_size && VerifyCommitPages(s)) {
      chosen = idx;
      break;
    }
    rejected = "commit " + std::to_string(s.txn_id) + " was incomplete";
  }
  if (chosen < 0) return Status::Corruption(path_ + ": no complete commit found (" + rejected + ")");
  const CommitSlot& slot = *slots[chosen];
  file_bytes_ = file_size;
  committed_pages_ = CommittedPages(pager_.get());
  durable_txn_ = slot.txn_id;
  durable_slot_ = chosen;
  next_txn_id_ = std::max(id0, id1) + 1;
  if (!options_.read_only) {
    freemap_ = FreeMap(page_size_);
    ROCKY_RETURN_IF_ERROR(LoadFreeMap(slot, &freemap_));
    written_since_open_.clear();
  }
  auto snap = std::make_shared<Snapshot>();
  snap->txn_id = slot.txn_id;
  snap->catalog_root = slot.catalog_root;
  snap->page_count = slot.page_count;
  std::lock_guard lock(snapshot_mu_);
  current_ = std::move(snap);
  return Status::OK();
}

Status DatabaseImpl::LoadFreeMap(const CommitSlot& slot, FreeMap* freemap) {
  const uint64_t bits = BitsPerBitmapPage(page_size_);
  const uint64_t expected_bitmaps = (slot.page_count + bits - 1) / bits;
  const size_t dir_capacity = DirectoryCapacity(page_size_);
  const uint64_t expected_dirs = (expected_bitmaps + dir_capacity - 1) / dir_capacity;
  std::vector<uint64_t> bitmap_pages;
  std::vector<uint64_t> directory_pages;
  uint64_t dir = slot.freemap_directory;
  while (dir != 0) {
    if (directory_pages.size() >= expected_dirs || dir >= slot.page_count) {
      return Status::Corruption(path_ + ": freemap directory chain is malformed at page " + std::to_string(dir));
    }
    ROCKY_ASSIGN_OR_RETURN(PageRef page, pager_->ReadPageUncached(dir));
    if (GetPageKind(page->data()) != PageKind::kFreemapDirectory) {
      return Status::Corruption(path_ + ": page " + std::to_string(dir) + " should be a freemap directory");
    }
    const uint16_t count = PageCount(page->data());
    if (count > dir_capacity) return Status::Corruption(path_ + ": page " + std::to_string(dir) + ": bad count");
    for (uint16_t i = 0; i < count; ++i) {
      bitmap_pages.push_back(DecodeU64(page->data() + kDirectoryIdsOffset + 8 * i));
    }
    directory_pages.push_back(dir);
    dir = DecodeU64(page->data() + kDirectoryNextOffset);
  }
  if (bitmap_pages.size() != expected_bitmaps) {
    return Status::Corruption(path_ + ": freemap lists " + std::to_string(bitmap_pages.size()) +
                              " bitmap pages, expected " + std::to_string(expected_bitmaps));
  }
  const uint64_t words_per_bitmap = bits / 64;
  std::vector<uint64_t> words(expected_bitmaps * words_per_bitmap, 0);
  for (size_t i = 0; i < bitmap_pages.size(); ++i) {
    const uint64_t id = bitmap_pages[i];
    if (id >= slot.page_count) {
      return Status::Corruption(path_ + ": freemap bitmap page " + std::to_string(id) + " is past the end");
    }
    ROCKY_ASSIGN_OR_RETURN(PageRef page, pager_->ReadPageUncached(id));
    if (GetPageKind(page->data()) != PageKind::kFreemapBitmap) {
      return Status::Corruption(path_ + ": page " + std::to_string(id) + " should be a freemap bitmap");
    }
    std::memcpy(&words[i * words_per_bitmap], page->data() + kBitmapDataOffset, words_per_bitmap * 8);
  }
  for (uint64_t id = 0; id < kFirstDataPageId; ++id) {
    if (!((words[0] >> id) & 1)) return Status::Corruption(path_ + ": freemap marks header page free");
  }
  freemap->Load(slot.page_count, std::move(words), std::move(bitmap_pages), std::move(directory_pages));
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------------------
// Readers

Result<std::shared_ptr<const Snapshot>> DatabaseImpl::CurrentSnapshot() {
  std::lock_guard lock(snapshot_mu_);
  ++live_readers_[current_->txn_id];
  return current_;
}

bool DatabaseImpl::CommitComplete(const CommitSlot& slot, uint64_t file_size) {
  if (slot.page_count * page_size_ > file_size) return false;
  if (slot.synced_before_slot || verified_commit_.load(std::memory_order_acquire) == slot.txn_id) return true;
  if (!VerifyCommitPages(slot)) return false;
  // A complete commit stays complete (its pages are not reused while it is the newest), so verify it once.
  verified_commit_.store(slot.txn_id, std::memory_order_release);
  return true;
}

namespace {

// Whether two reads of the slots found the same commits (so no commit happened in between).
bool SameSlots(const std::optional<CommitSlot> a[2], const std::optional<CommitSlot> b[2]) {
  for (int i = 0; i < 2; ++i) {
    if (a[i].has_value() != b[i].has_value() || (a[i] && a[i]->txn_id != b[i]->txn_id)) return false;
  }
  return true;
}

}  // namespace

Result<std::shared_ptr<const Snapshot>> DatabaseImpl::ReadOnlySnapshot() {
  // Another process may be writing. Lock the snapshot's reader byte, then check that the slots have not
  // changed: only then can its writer not yet have decided to reuse pages this snapshot reaches.
  for (int attempt = 0; attempt < kReaderSnapshotRetries; ++attempt) {
    std::optional<CommitSlot> slots[2];
    ROCKY_RETURN_IF_ERROR(ReadSlots(slots));
    ROCKY_ASSIGN_OR_RETURN(uint64_t file_size, file_->Size());
    // The newest complete commit, as Recover chooses it: a writer that crashed may have left the newest slot
    // on disk without all of its pages, and reading that commit would return whatever those pages now hold.
    const CommitSlot* best = nullptr;
    const bool b_first = slots[1] && (!slots[0] || slots[1]->txn_id > slots[0]->txn_id);
    for (int idx : {b_first ? 1 : 0, b_first ? 0 : 1}) {
      if (slots[idx] && CommitComplete(*slots[idx], file_size)) {
        best = &*slots[idx];
        break;
      }
    }
    if (best == nullptr) {
      std::optional<CommitSlot> again[2];
      ROCKY_RETURN_IF_ERROR(ReadSlots(again));
      if (SameSlots(slots, again)) return Status::Corruption(path_ + ": neither commit slot holds a complete commit");
      continue;  // a writer committed meanwhile
    }
    const uint64_t id = best->txn_id;
    std::unique_lock lock(snapshot_mu_);
    if (live_readers_[id]++ == 0) {
      Status s = file_->TryLock(LockKind::kShared, kReaderLockBase + id, 1);
      if (!s.ok()) {
        if (--live_readers_[id] == 0) live_readers_.erase(id);
        return s;
      }
    }
    lock.unlock();
    std::optional<CommitSlot> again[2];
    ROCKY_RETURN_IF_ERROR(ReadSlots(again));
    if (SameSlots(slots, again)) {
      auto snap = std::make_shared<Snapshot>();
      snap->txn_id = id;
      snap->catalog_root = best->catalog_root;
      snap->page_count = best->page_count;
      return std::shared_ptr<const Snapshot>(std::move(snap));
    }
    EndRead(id);
  }
  return Status::Busy(path_ + ": the writer commits too often to take a stable snapshot");
}

Result<std::unique_ptr<ReadTransaction>> DatabaseImpl::BeginRead() {
  if (closed_) return Status::InvalidArgument("database " + path_ + " is closed");
  auto snap = options_.read_only ? ReadOnlySnapshot() : CurrentSnapshot();
  if (!snap.ok()) return snap.status();
  return std::unique_ptr<ReadTransaction>(new ReadTxnImpl(this, std::move(snap).value(), &committed_pages_));
}

void DatabaseImpl::EndRead(uint64_t snapshot_id) {
  std::lock_guard lock(snapshot_mu_);
  auto it = live_readers_.find(snapshot_id);
  if (it == live_readers_.end()) return;
  if (--it->second == 0) {
    live_readers_.erase(it);
    if (options_.read_only && file_) (void)file_->Unlock(kReaderLockBase + snapshot_id, 1);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Writers

bool DatabaseImpl::AcquireWriter(bool wait) {
  std::unique_lock lock(writer_mu_);
  if (!wait && writer_active_) return false;
  writer_cv_.wait(lock, [&] { return !writer_active_; });
  writer_active_ = true;
  return true;
}

void DatabaseImpl::ReleaseWriter() {
  {
    std::lock_guard lock(writer_mu_);
    writer_active_ = false;
  }
  writer_cv_.notify_one();
}

void DatabaseImpl::EndWrite(bool committed) {
  if (!committed) freemap_.RollbackTxn();
  ReleaseWriter();
}

void DatabaseImpl::ReleaseFreedPages() {
  // Pages freed by transaction T were reachable from snapshots older than T. They can be reused when T is
  // durable (so no crash falls back past T) and every live snapshot is at least T.
  uint64_t oldest_reader = UINT64_MAX;
  {
    std::lock_guard lock(snapshot_mu_);
    if (!live_readers_.empty()) oldest_reader = live_readers_.begin()->first;
  }
  // Pages written since the last durable commit and freed again are reached by no durable commit: no crash
  // recovers a state that needs them, and readers in other processes see durable commits only. They wait only
  // for this process's older snapshots (else a run of kNoSync commits would grow the file without bound).
  freemap_.ReleaseFreshUpTo(oldest_reader);
  const uint64_t limit = std::min(durable_txn_, oldest_reader);
  std::vector<uint64_t> pending = freemap_.PendingTxns();
  auto end = std::upper_bound(pending.begin(), pending.end(), limit);
  if (end == pending.begin()) return;
  // Readers in other processes lock kReaderLockBase + their snapshot id: find the largest T with no such
  // lock below it.
  auto free_of_readers = [&](uint64_t t) {
    auto locked = file_->IsLockedByOthers(kReaderLockBase, t);  // snapshots 0 .. t-1
    return locked.ok() && !locked.value();
  };
  size_t lo = 0;
  size_t hi = static_cast<size_t>(end - pending.begin());  // candidates pending[0 .. hi)
  if (!free_of_readers(pending[hi - 1])) {
    // Binary search the last candidate that no external snapshot blocks.
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (free_of_readers(pending[mid])) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo == 0) return;
    freemap_.ReleasePendingUpTo(pending[lo - 1]);
    return;
  }
  freemap_.ReleasePendingUpTo(pending[hi - 1]);
}

Result<std::unique_ptr<WriteTransaction>> DatabaseImpl::BeginWrite(const WriteOptions& options) {
  if (closed_) return Status::InvalidArgument("database " + path_ + " is closed");
  if (options_.read_only) return Status::InvalidArgument("database " + path_ + " was opened read-only");
  AcquireWriter(true);
  if (!poisoned_.ok()) {
    ReleaseWriter();
    return poisoned_;
  }
  ReleaseFreedPages();
  const uint64_t id = next_txn_id_++;
  freemap_.BeginTxn(id);
  std::shared_ptr<const Snapshot> base;
  {
    std::lock_guard lock(snapshot_mu_);
    base = current_;
  }
  return std::unique_ptr<WriteTransaction>(
      new WriteTxnImpl(this, id, *base, options.durability.value_or(options_.durability)));
}

Status DatabaseImpl::Poison(const Status& cause) {
  poisoned_ = Status::Poisoned("database " + path_ + " refuses writes until reopened after: " + cause.ToString());
  return cause;
}

Status DatabaseImpl::WriteSlot(const CommitSlot& slot, int slot_index) {
  std::string page(page_size_, '\0');
  EncodeCommitSlot(slot, kSlotPageIds[slot_index], page_size_, page.data());
  return pager_->WriteRaw(kSlotPageIds[slot_index], page.data(), page.size());
}

bool DatabaseImpl::OverwritesPageOfTxn(const std::vector<PageRef>& pages, uint64_t txn_id) {
  char head[kPageHeaderSize];
  for (const PageRef& p : pages) {
    const uint64_t word = p->id / 64;
    if (word < written_since_open_.size() && ((written_since_open_[word] >> (p->id % 64)) & 1)) continue;
    size_t n = 0;
    if (!file_->Read(p->id * page_size_, sizeof head, head, &n).ok()) return true;  // cannot tell: assume so
    if (n == sizeof head && PageTxn(head) == txn_id) return true;
  }
  return false;
}

Status DatabaseImpl::CommitTransaction(WriteTxnImpl& txn) {
  if (!poisoned_.ok()) return poisoned_;
  ROCKY_RETURN_IF_ERROR(freemap_.health());
  const bool durable = txn.durability() == Durability::kDurable;
  if (!txn.modified() && !(durable && unsynced_pages_)) {
    freemap_.CommitTxn();
    return Status::OK();  // nothing changed and nothing waits to become durable
  }
  std::vector<PageRef> pages;
  pages.reserve(txn.dirty_pages().size() + 8);
  txn.dirty_pages().ForEach([&](const PageRef& page) {
    SealPage(page->data(), page->size, page->id, txn.id());
    pages.push_back(page);
  });
  if (durable) {
    std::vector<PageRef> fm_pages = freemap_.PersistChanges(txn.id());
    pages.insert(pages.end(), fm_pages.begin(), fm_pages.end());
  }
  ROCKY_RETURN_IF_ERROR(freemap_.health());
  std::sort(pages.begin(), pages.end(), [](const PageRef& a, const PageRef& b) { return a->id < b->id; });
  // Recovery verifies a one-sync commit by the txn ids of the pages on its verify list. Ids restart after the
  // last complete commit, so a commit cut by a crash may have left pages on disk sealed with this very id; if
  // this commit overwrites one of them, the crash could keep the slot and lose the new page, and recovery would
  // accept the old one. Such a commit syncs its pages before the slot instead. Only pages not yet written since
  // open can hold such leftovers (pages written since carry ids of this run, all smaller than this one).
  const bool may_sync_once = durable && !unsynced_pages_ && pages.size() <= SlotVerifyCapacity(page_size_);
  const bool overwrites_same_txn = may_sync_once && OverwritesPageOfTxn(pages, txn.id());

  Status s = pager_->WritePages(pages);
  if (!s.ok()) return Poison(s);
  for (const PageRef& p : pages) {
    for (uint64_t id = p->id; id < p->id + p->size / page_size_; ++id) {
      if (id / 64 >= written_since_open_.size()) written_since_open_.resize(id / 64 + 1, 0);
      written_since_open_[id / 64] |= uint64_t{1} << (id % 64);
    }
  }
  for (const PageRef& p : pages) file_bytes_ = std::max(file_bytes_, p->id * page_size_ + p->size);
  // Pages allocated and freed again within the transaction at the end of the file are counted in page_count
  // but never written: extend the file so it always holds page_count pages (made durable by the sync below).
  const uint64_t needed = freemap_.page_count() * page_size_;
  if (file_bytes_ < needed) {
    s = file_->Truncate(needed);
    if (!s.ok()) return Poison(s);
    file_bytes_ = needed;
  }
  if (durable) {
    CommitSlot slot;
    slot.txn_id = txn.id();
    slot.page_count = freemap_.page_count();
    slot.catalog_root = txn.catalog_root();
    slot.freemap_directory = freemap_.directory_pages().front();
    slot.free_pages = freemap_.free_count();
    // One fdatasync when the slot can list every page of this commit and no earlier unsynced pages are
    // reachable from it; otherwise sync the pages first.
    const bool one_sync = may_sync_once && !overwrites_same_txn;
    if (one_sync) {
      for (const PageRef& p : pages) slot.verify_list.push_back(p->id);
    } else {
      slot.synced_before_slot = true;
      s = pager_->Sync();
      if (!s.ok()) return Poison(s);
    }
    const int slot_index = 1 - durable_slot_;
    s = WriteSlot(slot, slot_index);
    if (s.ok()) s = pager_->Sync();
    if (!s.ok()) return Poison(s);
    durable_txn_ = txn.id();
    durable_slot_ = slot_index;
    unsynced_pages_ = false;
    freemap_.MarkPersisted();
  } else {
    unsynced_pages_ = true;
  }
  freemap_.CommitTxn();
  auto snap = std::make_shared<Snapshot>();
  snap->txn_id = txn.id();
  snap->catalog_root = txn.catalog_root();
  snap->page_count = freemap_.page_count();
  std::lock_guard lock(snapshot_mu_);
  current_ = std::move(snap);
  return Status::OK();
}

Status DatabaseImpl::FlushNoSyncCommits() {
  // unsynced_pages_ belongs to the writer, and GetStats or CheckIntegrity may run while another thread
  // commits: look at it as the writer. (BeginWrite returns the latched error of a poisoned database.)
  WriteOptions wo;
  wo.durability = Durability::kDurable;
  ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<WriteTransaction> txn, BeginWrite(wo));
  if (!unsynced_pages_) {
    txn->Abort();
    return Status::OK();
  }
  return txn->Commit();
}

Status DatabaseImpl::Close() {
  if (closed_) return Status::OK();
  Status s;
  if (!poisoned_.ok() && unsynced_pages_) {
    // kNoSync commits were waiting for a durable commit that can no longer happen: say they are lost.
    s = Status::IOError("closing " + path_ + ": commits made without sync were lost: " + poisoned_.message());
  } else if (!options_.read_only && file_ && poisoned_.ok()) {
    {
      std::lock_guard lock(snapshot_mu_);
      if (!live_readers_.empty()) return Status::Busy("database " + path_ + " still has open read transactions");
    }
    {
      std::lock_guard lock(writer_mu_);
      if (writer_active_) return Status::Busy("database " + path_ + " still has an open write transaction");
    }
    s = FlushNoSyncCommits();
  }
  closed_ = true;
  pager_.reset();
  file_.reset();  // releases the byte-range locks
  if (!registry_key_.empty()) OpenRegistry::Release(registry_key_);
  registry_key_.clear();
  return s;
}

}  // namespace rocky::engine
