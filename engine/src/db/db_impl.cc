#include "db/db_impl.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <random>
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

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Bytes copied per read and write when keeping a copy of a file.
constexpr size_t kCopyChunk = size_t{1} << 20;
// How many "<path>.discarded-<txn>-<n>" names are tried before giving up.
constexpr int kMaxEvidenceNames = 100;

// "<path>.tmp-<16 hex digits>": a name in the file's own directory (so link and rename stay within one file
// system) that no other process picks, even one that reuses this process's pid after a crash.
std::string TempName(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  uint64_t r = counter.fetch_add(1) * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(::getpid()) << 32);
  try {
    std::random_device rd;
    r ^= (static_cast<uint64_t>(rd()) << 32) ^ rd();
  } catch (...) {
    // No entropy source: the pid and the counter still make the name unique among live processes, and the
    // temporary file is opened with O_EXCL, so a collision fails the open rather than sharing a file.
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(r));
  return path + ".tmp-" + hex;
}

// The txn and copy number of a "<base>.discarded-<txn>[-<n>]" directory entry (n = 1 without the suffix).
bool ParseEvidenceName(const std::string& entry, const std::string& prefix, uint64_t* txn, uint64_t* n) {
  if (entry.size() <= prefix.size() || entry.compare(0, prefix.size(), prefix) != 0) return false;
  uint64_t parts[2] = {0, 1};
  int part = 0;
  bool digit_seen = false;
  for (size_t i = prefix.size(); i < entry.size(); ++i) {
    const char c = entry[i];
    if (c == '-' && part == 0 && digit_seen) {
      part = 1;
      parts[1] = 0;
      digit_seen = false;
      continue;
    }
    if (c < '0' || c > '9' || parts[part] > (UINT64_MAX - 9) / 10) return false;
    parts[part] = parts[part] * 10 + static_cast<uint64_t>(c - '0');
    digit_seen = true;
  }
  if (!digit_seen) return false;
  *txn = parts[0];
  *n = parts[1];
  return true;
}

}  // namespace

Result<std::vector<std::string>> FindDiscardedCopies(const std::string& path, Env* env) {
  if (env == nullptr) env = Env::Default();
  const size_t slash = path.find_last_of('/');
  const std::string dir = DirName(path);
  // The copies are named like the file: "<dir>/<name>" for a path with a directory, "<name>" without.
  const std::string dir_prefix = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  ROCKY_ASSIGN_OR_RETURN(std::vector<std::string> entries, env->ListDir(dir));
  const std::string prefix = BaseName(path) + ".discarded-";
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> found;
  for (const std::string& entry : entries) {
    uint64_t txn = 0;
    uint64_t n = 0;
    if (ParseEvidenceName(entry, prefix, &txn, &n)) found.push_back({{txn, n}, dir_prefix + entry});
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  out.reserve(found.size());
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

Result<PageRef> CommittedPages::ReadNode(uint64_t id) {
  ROCKY_ASSIGN_OR_RETURN(PageRef page, pager_->ReadPage(id));
  if (!page->structure_checked.load(std::memory_order_acquire)) {
    ROCKY_RETURN_IF_ERROR(CheckNodeStructure(page->data(), pager_->page_size(), id));
    page->MarkStructureChecked();
  }
  return page;
}

Result<const char*> CommittedPages::ReadNodeBytes(uint64_t id, PageRef* hold) {
  if (FileMapping* map = pager_->mapping(); map != nullptr && id >= kFirstDataPageId) {
    if (const char* bytes = map->PageAt(id)) {
      std::atomic<uint8_t>& state = map->state(id);
      constexpr uint8_t kVerified = kMapChecksumOk | kMapStructureOk;
      const uint8_t seen = state.load(std::memory_order_acquire);
      if ((seen & kVerified) != kVerified) {
        if ((seen & kMapChecksumOk) == 0 && !PageChecksumOk(bytes, pager_->page_size(), id)) {
          return Status::Corruption("page " + std::to_string(id) + ": checksum mismatch");
        }
        ROCKY_RETURN_IF_ERROR(CheckNodeStructure(bytes, pager_->page_size(), id));
        state.fetch_or(kVerified, std::memory_order_release);
      }
      return bytes;
    }
  }
  return PageSource::ReadNodeBytes(id, hold);
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
    return Status::InvalidArgument("page size " + std::to_string(ps) +
                                   " is not a power of two from 512 to 65536");
  }
  for (int attempt = 0;; ++attempt) {
    ROCKY_ASSIGN_OR_RETURN(bool exists, env_->FileExists(path_));
    if (!exists) {
      if (options_.read_only || !options_.create_if_missing) {
        return Status::NotFound("database file " + path_ + " does not exist");
      }
      ROCKY_RETURN_IF_ERROR(env_->CreateDirs(DirName(path_)));
      ROCKY_ASSIGN_OR_RETURN(bool created, CreateFileAtomically());
      report_.created = created;
      name_durable_ = created;
    }
    FileOpenOptions fo;
    fo.read_only = options_.read_only;
    // Refused (kBusy) when this process has the file open already, without closing any descriptor of it:
    // that would drop the other handle's locks (see open_registry.h).
    Result<std::unique_ptr<File>> opened = OpenRegistry::OpenAndAcquire(env_, path_, fo, &registry_key_);
    if (opened.ok()) {
      file_ = std::move(opened).value();
      break;
    }
    // Removed between the check and the open: make it again (a few times, then give up saying why).
    const bool may_create = !options_.read_only && options_.create_if_missing;
    if (!opened.status().IsNotFound() || !may_create || attempt >= 3) return opened.status();
  }
  if (!options_.read_only) {
    Status lock = file_->TryLock(LockKind::kExclusive, kWriterLockOffset, 1);
    if (!lock.ok()) {
      if (lock.IsBusy())
        return Status::Busy("database " + path_ + " is in use for writing: " + lock.message());
      return lock;
    }
    // The file's name is made durable before the first durable commit (name_durable_), not here.
  }
  return Recover();
}

Result<bool> DatabaseImpl::CreateFileAtomically() {
  const std::string dir = DirName(path_);
  const std::string tmp = TempName(path_);
  const std::string what = "creating " + path_;
  {
    FileOpenOptions fo;
    fo.create = true;
    fo.exclusive = true;
    Result<std::unique_ptr<File>> f = env_->OpenFile(tmp, fo);
    if (!f.ok()) return f.status().WithContext(what);
    Status s = WriteNewFile(f->get(), tmp, options_.page_size);
    // Closed before it has the database's name, so that no Database of this process can hold it yet (closing
    // a descriptor of a file drops the process's locks on it).
    f->reset();
    if (!s.ok()) {
      (void)env_->RemoveFile(tmp);  // best effort: an orphan under a temporary name harms nothing
      return s.WithContext(what);
    }
  }
  // link(2) never replaces: if another process created the database meanwhile, that one is used.
  Result<bool> linked = env_->LinkFile(tmp, path_);
  // NotFound when LinkFile renamed instead (file systems without hard links). Any other failure leaves an
  // orphaned temporary file, which harms nothing; the database itself is whole either way.
  (void)env_->RemoveFile(tmp);
  if (!linked.ok()) return linked.status().WithContext(what);
  // Until the directory is synced, a power cut may lose the new name, and with it the whole file.
  Status s = env_->SyncDir(dir);
  if (!s.ok()) return s.WithContext(what + ": making its directory entry durable");
  return linked.value();
}

Status DatabaseImpl::InitializeInPlace(uint32_t page_size) {
  // Every state a crash can leave on the way holds no commit either (see WriteNewFile), so the next open
  // simply starts again.
  ROCKY_RETURN_IF_ERROR(file_->Truncate(0));
  Status s = WriteNewFile(file_.get(), path_, page_size);
  if (!s.ok()) return s.WithContext("initialising " + path_ + ", which held no commit");
  return Status::OK();
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

Status DatabaseImpl::Recover() {
  for (int attempt = 0;; ++attempt) {
    // A read-only handle may share the file with a writer in another process: its verdict must come from
    // slots that stayed put meanwhile. A writer holds the writer lock, which keeps other writers out.
    Result<FileVerdict> judged =
        options_.read_only ? JudgeFileStable(file_.get(), path_) : JudgeFile(file_.get(), path_);
    if (!judged.ok()) return judged.status();
    const FileVerdict& v = judged.value();
    if (v.uncommitted) {
      report_.uncommitted = true;
      const uint32_t ps = v.header_valid ? v.header.page_size : options_.page_size;
      if (options_.read_only) {
        // An empty database, and nothing changed: the next writer initialises the file.
        page_size_ = ps;
        format_version_ = v.header_valid ? v.header.format_version : kFormatVersion;
        pager_ = std::make_unique<Pager>(file_.get(), path_, page_size_, 0);
        committed_pages_ = CommittedPages(pager_.get());
        report_.commit_id = 0;
        std::lock_guard lock(snapshot_mu_);
        current_ = std::make_shared<Snapshot>();
        return Status::OK();
      }
      if (attempt > 0)
        return Status::Corruption(path_ + ": initialised as a new database, yet it holds no commit");
      if (pager_ != nullptr) pager_->WillTruncate(0);
      pager_.reset();
      ROCKY_RETURN_IF_ERROR(InitializeInPlace(ps));
      report_.created = true;
      continue;
    }
    format_version_ = v.header.format_version;
    page_size_ = v.header.page_size;
    // A read-only handle may share the file with a writer in another process, which reuses page ids:
    // it caches nothing across transactions (see BeginRead).
    pager_ = std::make_unique<Pager>(file_.get(), path_, page_size_,
                                     options_.read_only ? 0 : options_.cache_bytes);
    const SlotVerdict& sv = v.slots;
    const CommitSlot& slot = *sv.slots[sv.chosen].slot;
    file_bytes_ = v.file_size;
    committed_pages_ = CommittedPages(pager_.get());
    durable_txn_ = slot.txn_id;
    durable_slot_ = sv.chosen;
    next_txn_id_ = sv.next_txn_id;
    report_.commit_id = slot.txn_id;
    report_.discarded = sv.discarded;
    if (!options_.read_only) {
      freemap_ = FreeMap(page_size_);
      ROCKY_RETURN_IF_ERROR(LoadFreeMap(slot, &freemap_));
      written_since_open_.clear();
    } else if (!slot.synced_before_slot) {
      std::lock_guard lock(verified_mu_);
      verified_commit_ = slot;
    }
    {
      auto snap = std::make_shared<Snapshot>();
      snap->txn_id = slot.txn_id;
      snap->catalog_root = slot.catalog_root;
      snap->page_count = slot.page_count;
      std::lock_guard lock(snapshot_mu_);
      current_ = std::move(snap);
    }
    // The next commit overwrites the rejected commit's slot and may reuse its pages: keep the evidence first.
    if (!options_.read_only && report_.discarded) ROCKY_RETURN_IF_ERROR(KeepDiscardedEvidence());
    return Status::OK();
  }
}

Status DatabaseImpl::KeepDiscardedEvidence() {
  DiscardedCommit& d = *report_.discarded;
  const std::string dir = DirName(path_);
  const std::string base = path_ + ".discarded-" + std::to_string(d.txn_id);
  const std::string what = "keeping a copy of " + path_ + " before its discarded commit " +
                           std::to_string(d.txn_id) + " is overwritten";
  ROCKY_ASSIGN_OR_RETURN(uint64_t size, file_->Size());
  ROCKY_ASSIGN_OR_RETURN(std::string self, env_->FileIdentity(path_));
  std::string ours(kCopyChunk, '\0');
  std::string theirs(kCopyChunk, '\0');
  for (int k = 1; k <= kMaxEvidenceNames; ++k) {
    const std::string name = k == 1 ? base : base + "-" + std::to_string(k);
    ROCKY_ASSIGN_OR_RETURN(bool exists, env_->FileExists(name));
    if (exists) {
      // An earlier open's copy of this very file (it made the copy, and no commit followed): use it.
      Result<std::string> identity = env_->FileIdentity(name);
      if (!identity.ok()) return identity.status().WithContext(what);
      if (identity.value() == self) continue;  // another name of the database itself: never close it (locks)
      Result<std::unique_ptr<File>> copy =
          env_->OpenFile(name, FileOpenOptions{.create = false, .read_only = true});
      if (!copy.ok()) return copy.status().WithContext(what);
      Result<uint64_t> copy_size = (*copy)->Size();
      if (!copy_size.ok()) return copy_size.status().WithContext(what);
      bool same = copy_size.value() == size;
      for (uint64_t off = 0; same && off < size; off += kCopyChunk) {
        const size_t len = static_cast<size_t>(std::min<uint64_t>(kCopyChunk, size - off));
        size_t a = 0;
        size_t b = 0;
        ROCKY_RETURN_IF_ERROR(file_->Read(off, len, ours.data(), &a).WithContext(what));
        ROCKY_RETURN_IF_ERROR((*copy)->Read(off, len, theirs.data(), &b).WithContext(what));
        same = a == len && b == len && std::memcmp(ours.data(), theirs.data(), len) == 0;
      }
      if (same) {
        d.evidence_path = name;
        return Status::OK();
      }
      continue;
    }
    const std::string tmp = TempName(path_);
    Status s;
    {
      FileOpenOptions fo;
      fo.create = true;
      fo.exclusive = true;
      Result<std::unique_ptr<File>> out = env_->OpenFile(tmp, fo);
      if (!out.ok()) return out.status().WithContext(what);
      for (uint64_t off = 0; s.ok() && off < size; off += kCopyChunk) {
        const size_t len = static_cast<size_t>(std::min<uint64_t>(kCopyChunk, size - off));
        size_t got = 0;
        s = file_->Read(off, len, ours.data(), &got);
        if (s.ok() && got != len) s = Status::IOError(path_ + ": shrank while being copied");
        if (s.ok()) s = (*out)->Write(off, std::string_view(ours.data(), len));
      }
      if (s.ok()) s = (*out)->Sync();
    }
    if (!s.ok()) {
      (void)env_->RemoveFile(tmp);
      return s.WithContext(what);
    }
    Result<bool> linked = env_->LinkFile(tmp, name);
    (void)env_->RemoveFile(tmp);  // NotFound after a rename; an orphaned temporary file harms nothing
    if (!linked.ok()) return linked.status().WithContext(what);
    if (!linked.value()) continue;  // someone made that name meanwhile: try the next
    s = env_->SyncDir(dir);
    if (!s.ok()) return s.WithContext(what + ": making its directory entry durable");
    d.evidence_path = name;
    return Status::OK();
  }
  return Status::IOError(what + ": the names " + base + " and " + base + "-2 to -" +
                         std::to_string(kMaxEvidenceNames) +
                         " hold other copies already; remove those no longer needed");
}

Status DatabaseImpl::LoadFreeMap(const CommitSlot& slot, FreeMap* freemap) {
  // Plain reads, not the writer's memory map: an unreadable page must be an error here, not a SIGBUS.
  Pager direct(file_.get(), path_, page_size_, /*cache_bytes=*/0);
  const uint64_t bits = BitsPerBitmapPage(page_size_);
  const uint64_t expected_bitmaps = (slot.page_count + bits - 1) / bits;
  const size_t dir_capacity = DirectoryCapacity(page_size_);
  const uint64_t expected_dirs = (expected_bitmaps + dir_capacity - 1) / dir_capacity;
  std::vector<uint64_t> bitmap_pages;
  std::vector<uint64_t> directory_pages;
  uint64_t dir = slot.freemap_directory;
  while (dir != 0) {
    if (directory_pages.size() >= expected_dirs || dir >= slot.page_count) {
      return Status::Corruption(path_ + ": freemap directory chain is malformed at page " +
                                std::to_string(dir));
    }
    ROCKY_ASSIGN_OR_RETURN(PageRef page, direct.ReadPageUncached(dir));
    if (GetPageKind(page->data()) != PageKind::kFreemapDirectory) {
      return Status::Corruption(path_ + ": page " + std::to_string(dir) + " should be a freemap directory");
    }
    const uint16_t count = PageCount(page->data());
    if (count > dir_capacity)
      return Status::Corruption(path_ + ": page " + std::to_string(dir) + ": bad count");
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
    ROCKY_ASSIGN_OR_RETURN(PageRef page, direct.ReadPageUncached(id));
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

Result<std::shared_ptr<const Snapshot>> DatabaseImpl::ReadOnlySnapshot() {
  // Another process may be writing. Take the newest complete commit as recovery chooses it (a writer that
  // crashed may have left the newest slot on disk without all of its pages, and reading that commit would
  // return whatever those pages now hold), lock the snapshot's reader byte, then check that the slots have
  // not changed: only then can its writer not yet have decided to reuse pages this snapshot reaches.
  for (int attempt = 0; attempt < kReaderSnapshotRetries; ++attempt) {
    std::optional<CommitSlot> known;
    {
      std::lock_guard lock(verified_mu_);
      known = verified_commit_;
    }
    std::string before;
    Result<FileVerdict> judged = JudgeFile(file_.get(), path_, known ? &*known : nullptr, &before);
    if (!judged.ok()) {
      // An I/O error is an error; damage is damage only if no writer changed the slots meanwhile.
      if (!judged.status().IsCorruption() || before.empty()) return judged.status();
      std::string after;
      ROCKY_RETURN_IF_ERROR(ReadSlotBytes(file_.get(), page_size_, &after));
      if (after == before) return judged.status();
      continue;
    }
    // No commit yet: an empty snapshot, with no page a writer could take from it.
    if (judged->uncommitted) return std::shared_ptr<const Snapshot>(std::make_shared<Snapshot>());
    if (judged->header.page_size != page_size_) {
      return Status::Busy(path_ + ": another process initialised the file with " +
                          std::to_string(judged->header.page_size) +
                          "-byte pages after this read-only handle " + "opened it; open it again");
    }
    const CommitSlot& best = *judged->slots.slots[judged->slots.chosen].slot;
    if (!best.synced_before_slot) {
      // A complete commit stays complete (its pages are not reused while it is the newest): verify it once.
      std::lock_guard lock(verified_mu_);
      verified_commit_ = best;
    }
    const uint64_t id = best.txn_id;
    std::unique_lock lock(snapshot_mu_);
    if (live_readers_[id]++ == 0) {
      Status s = file_->TryLock(LockKind::kShared, kReaderLockBase + id, 1);
      if (!s.ok()) {
        if (--live_readers_[id] == 0) live_readers_.erase(id);
        return s;
      }
    }
    lock.unlock();
    std::string again;
    Status s = ReadSlotBytes(file_.get(), page_size_, &again);
    if (!s.ok()) {
      EndRead(id);
      return s;
    }
    if (again == before) {
      auto snap = std::make_shared<Snapshot>();
      snap->txn_id = id;
      snap->catalog_root = best.catalog_root;
      snap->page_count = best.page_count;
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
  const Durability durability = options.durability.value_or(options_.durability);
  for (;;) {
    AcquireWriter(true);
    if (!poisoned_.ok()) {
      ReleaseWriter();
      return poisoned_;
    }
    // kNoSync commits since the last durable commit freed pages that it reaches: they stay pending until a
    // durable commit, so this transaction could not reuse them and would grow the file by every page it
    // copies (removing half of 1M keys after 100 kNoSync commits: 194,758 pages instead of about 133,000).
    // A durable transaction makes those commits durable first, with the empty commit Close and Compact
    // make; then the pages are free for it. Nothing is weakened: the commits become durable earlier, and a
    // crash still finds the last durable commit (now that one) intact. It costs the slot's fdatasync.
    if (durability == Durability::kDurable && unsynced_pages_ && freemap_.HasPendingAfter(durable_txn_)) {
      ROCKY_RETURN_IF_ERROR(StartWriteTxn(Durability::kDurable)->Commit());  // lets the writer go either way
      continue;  // take the writer again: another thread may have committed meanwhile
    }
    break;
  }
  return std::unique_ptr<WriteTransaction>(StartWriteTxn(durability));
}

std::unique_ptr<WriteTxnImpl> DatabaseImpl::StartWriteTxn(Durability durability) {
  ReleaseFreedPages();
  const uint64_t id = next_txn_id_++;
  freemap_.BeginTxn(id);
  std::shared_ptr<const Snapshot> base;
  {
    std::lock_guard lock(snapshot_mu_);
    base = current_;
  }
  return std::make_unique<WriteTxnImpl>(this, id, *base, durability);
}

Status DatabaseImpl::Poison(const Status& cause) {
  poisoned_ =
      Status::Poisoned("database " + path_ + " refuses writes until reopened after: " + cause.ToString());
  return cause;
}

Status DatabaseImpl::WriteSlot(const CommitSlot& slot, int slot_index) {
  std::string page(page_size_, '\0');
  EncodeCommitSlot(slot, kSlotPageIds[slot_index], page_size_, page.data());
  return pager_->WriteRaw(kSlotPageIds[slot_index], page.data(), page.size());
}

Status DatabaseImpl::NotCommitted(uint64_t txn_id, const Status& cause) const {
  return Status::FromCode(cause.code(), "commit " + std::to_string(txn_id) + " of " + path_ +
                                            " not committed; the state is unchanged (commit " +
                                            std::to_string(durable_txn_) +
                                            " is current): " + cause.message());
}

Status DatabaseImpl::SettleFailedSlot(int slot_index, uint64_t txn_id, const Status& cause) {
  // Zeros are an invalid (blank) slot, so once they are durable the other slot, which holds the last durable
  // commit, is certainly the newest valid one; the pages this commit wrote are reachable from no slot. The
  // zeros are synced on their own: an fdatasync after a failed one reports the errors of the writes made
  // since, so its success means the zeros are on disk, whatever became of the failed writes.
  const std::string zeros(page_size_, '\0');
  Status s = pager_->WriteRaw(kSlotPageIds[slot_index], zeros.data(), zeros.size());
  if (s.ok()) s = pager_->Sync();
  if (s.ok()) return NotCommitted(txn_id, cause);
  return Status::OutcomeUnknown("commit " + std::to_string(txn_id) + " of " + path_ +
                                ": the commit may have been kept; the next open will settle it: " +
                                cause.message() + "; then invalidating its commit slot (page " +
                                std::to_string(kSlotPageIds[slot_index]) + ") failed too: " + s.message());
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
  if (durable && !name_durable_) {
    // Nothing is written yet: a failure leaves the last durable commit current, and the next commit tries
    // again.
    Status s = env_->SyncDir(DirName(path_));
    if (!s.ok()) {
      return NotCommitted(txn.id(), s.WithContext("making the directory entry of " + path_ + " durable"));
    }
    name_durable_ = true;
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
  // this commit overwrites one of them, the crash could keep the slot and lose the new page, and recovery
  // would accept the old one. Such a commit syncs its pages before the slot instead. Only pages not yet
  // written since open can hold such leftovers (pages written since carry ids of this run, all smaller than
  // this one).
  const bool may_sync_once = durable && !unsynced_pages_ && pages.size() <= SlotVerifyCapacity(page_size_);
  const bool overwrites_same_txn = may_sync_once && OverwritesPageOfTxn(pages, txn.id());

  Status s = pager_->WritePages(pages);
  // Nothing of a slot was written yet: the last durable commit is certainly still the current one.
  if (!s.ok()) return Poison(NotCommitted(txn.id(), s));
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
    if (!s.ok()) return Poison(NotCommitted(txn.id(), s));
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
      if (!s.ok()) return Poison(NotCommitted(txn.id(), s));
    }
    const int slot_index = 1 - durable_slot_;
    s = WriteSlot(slot, slot_index);
    if (s.ok()) s = pager_->Sync();
    // The slot may be on disk, whole or in part: make it invalid again, or say that the outcome is unknown.
    if (!s.ok()) return Poison(SettleFailedSlot(slot_index, txn.id(), s));
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
      if (!live_readers_.empty())
        return Status::Busy("database " + path_ + " still has open read transactions");
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
