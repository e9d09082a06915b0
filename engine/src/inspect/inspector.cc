// Inspector: see rocky/engine/inspect.h. Reads with File::Read and the Pager's verified reads only; nothing
// here writes, truncates or locks.
#include <algorithm>
#include <bit>
#include <cstring>
#include <unordered_set>

#include "btree/btree.h"
#include "btree/node.h"
#include "db/commit_slot.h"
#include "db/commit_walker.h"
#include "db/open_registry.h"
#include "db/recovery.h"
#include "db/table_meta.h"
#include "page/page_layout.h"
#include "page/pager.h"
#include "rocky/engine/inspect.h"

namespace rocky::engine {

namespace {

// The page size of files created with default options: the best guess when the header's is unusable.
constexpr uint32_t kFallbackPageSize = 4096;

bool PlausiblePageSize(uint32_t p) {
  return p >= kMinPageSize && p <= kMaxPageSize && std::has_single_bit(p);
}

std::string PageName(uint64_t id) { return "page " + std::to_string(id); }

// Per-walk state of one tree: counts, and the pages seen (a page reached twice means a cycle or shared
// subtree, which would otherwise loop).
struct TreeWalk {
  std::unordered_set<uint64_t> visited;
  int leaf_depth = -1;
  uint64_t entries = 0;
  uint64_t leaf_pages = 0;
  uint64_t branch_pages = 0;
  uint64_t overflow_pages = 0;
  uint64_t key_overflow_pages = 0;
  const InspectVisitor* visitor = nullptr;  // null: count only, overflow runs are not read
  bool stopped = false;                     // the visitor asked to stop
};

// Tree pages read straight from disk for the btree key helpers (LoadKey): nothing is cached, every checksum
// is checked.
class UncachedPages final : public PageSource {
 public:
  explicit UncachedPages(Pager* pager) : pager_(pager) {}
  uint32_t page_size() const override { return pager_->page_size(); }
  Result<PageRef> ReadNode(uint64_t id) override {
    ROCKY_ASSIGN_OR_RETURN(PageRef page, pager_->ReadPageUncached(id));
    ROCKY_RETURN_IF_ERROR(CheckNodeStructure(page->data(), pager_->page_size(), id));
    return page;
  }
  Result<PageRef> ReadOverflow(uint64_t first) override { return pager_->ReadOverflowRun(first); }

 private:
  Pager* pager_;
};

}  // namespace

struct Inspector::Impl {
  std::string path;
  std::unique_ptr<File> file;
  uint64_t file_size = 0;
  InspectedHeader header;
  std::vector<InspectedSlot> slots;
  std::vector<std::optional<CommitSlot>> decoded;  // parallel to slots: the valid ones, decoded
  int current = -1;
  // Recovery's verdict (db/recovery.h): Open's error, or the slots it judged.
  Status open_status;
  bool uncommitted = false;
  SlotVerdict judged_slots;
  uint32_t page_size = kFallbackPageSize;
  // Over `file`, with a token cache: every read here uses the uncached calls.
  std::unique_ptr<Pager> pager;
  // The file's identity in the OpenRegistry. A Database of this process may hold the file: closing this
  // descriptor would drop its locks, so Dispose keeps it open until that Database lets go.
  std::string registry_key;

  ~Impl() {
    pager.reset();
    if (file != nullptr) OpenRegistry::Dispose(registry_key, std::move(file));
  }

  // Reads up to n bytes at offset; *n_read says how many the file had.
  Status ReadAt(uint64_t offset, size_t n, char* dst, size_t* n_read) {
    *n_read = 0;
    if (offset >= file_size) return Status::OK();
    return file->Read(offset, n, dst, n_read);
  }

  void ReadHeader();
  InspectedSlot DecodeSlot(uint64_t id, const char* bytes, size_t n, std::optional<CommitSlot>* decoded_out);
  void ReadSlots();
  void JudgeFileOnce();

  Result<PageRef> ReadNode(uint64_t id, const std::string& what);
  Status WalkNode(uint64_t id, const std::string& what, int depth, uint64_t page_count, TreeWalk* w);
  Status WalkTree(uint64_t root, const std::string& what, TreeWalk* w);
  Status ListTablesInto(std::vector<InspectedTable>* tables);
  Result<TableMeta> FindTable(std::string_view name);
};

void Inspector::Impl::ReadHeader() {
  InspectedHeader& h = header;
  h.file_size = file_size;
  char bytes[kHeaderSize] = {};
  size_t n = 0;
  Status s = ReadAt(0, kHeaderSize, bytes, &n);
  if (!s.ok()) {
    h.status = s.WithContext("reading the super-header of " + path);
    h.effective_page_size = kFallbackPageSize;
    return;
  }
  h.magic_ok = n >= sizeof kMagic && std::memcmp(bytes + kHeaderMagicOffset, kMagic, sizeof kMagic) == 0;
  if (n == kHeaderSize) {
    h.format_version = DecodeU32(bytes + kHeaderVersionOffset);
    h.page_size = DecodeU32(bytes + kHeaderPageSizeOffset);
    h.checksum_ok = DecodeU64(bytes + kHeaderChecksumOffset) == Checksum64(bytes, kHeaderChecksumOffset, 0);
  }
  h.status = DecodeSuperHeader(bytes, n, path).status();
  h.effective_page_size = PlausiblePageSize(h.page_size) ? h.page_size : kFallbackPageSize;
  page_size = h.effective_page_size;
}

void Inspector::Impl::JudgeFileOnce() {
  // Stable against a writer committing meanwhile, as a read-only Database::Open is.
  Result<FileVerdict> v = JudgeFileStable(file.get(), path);
  if (!v.ok()) {
    open_status = v.status();
    return;
  }
  if (v->uncommitted) {
    uncommitted = true;
    // Not "not a rocky database": the one rule makes such a file an empty database for every tool.
    if (!header.magic_ok) {
      header.status = Status::OK();
      header.effective_page_size = page_size;
    }
    return;
  }
  judged_slots = std::move(v->slots);
}

InspectedSlot Inspector::Impl::DecodeSlot(uint64_t id, const char* bytes, size_t n,
                                          std::optional<CommitSlot>* decoded_out) {
  InspectedSlot slot;
  slot.page_id = id;
  slot.name = id == kSlotPageIds[0] ? 'A' : 'B';
  const std::string what = std::string("commit slot ") + slot.name + " (page " + std::to_string(id) + ")";
  slot.present = n == page_size;
  if (!slot.present) {
    slot.status = Status::Corruption(what + " lies beyond the end of the file");
    return slot;
  }
  slot.blank = IsAllZero(bytes, n);
  slot.checksum_ok = PageChecksumOk(bytes, page_size, id);
  slot.txn_id = PageTxn(bytes);
  slot.kind = static_cast<uint8_t>(GetPageKind(bytes));
  slot.synced_before_slot = (static_cast<uint8_t>(bytes[kSlotFlagsOffset]) & kSlotFlagSyncedBeforeSlot) != 0;
  slot.verify_count = DecodeU32(bytes + kSlotVerifyCountOffset);
  slot.page_count = DecodeU64(bytes + kSlotPageCountOffset);
  slot.catalog_root = DecodeU64(bytes + kSlotCatalogRootOffset);
  slot.freemap_directory = DecodeU64(bytes + kSlotFreemapDirOffset);
  slot.free_pages = DecodeU64(bytes + kSlotFreePagesOffset);
  std::optional<CommitSlot> decoded_slot = DecodeCommitSlot(bytes, id, page_size);
  slot.valid = decoded_slot.has_value();
  if (slot.valid) {
    slot.verify_list = decoded_slot->verify_list;
  } else if (slot.blank) {
    slot.status = Status::NotFound(what + " was never written (all zero)");
  } else if (!slot.checksum_ok) {
    slot.status = Status::Corruption(what + " fails its checksum");
  } else if (GetPageKind(bytes) != PageKind::kSlot) {
    slot.status =
        Status::Corruption(what + " has page kind " + std::to_string(slot.kind) + ", not a commit slot");
  } else {
    slot.status =
        Status::Corruption(what + " has impossible counts (verify list " + std::to_string(slot.verify_count) +
                           ", page count " + std::to_string(slot.page_count) + ")");
  }
  if (decoded_out != nullptr) *decoded_out = std::move(decoded_slot);
  return slot;
}

void Inspector::Impl::ReadSlots() {
  slots.clear();
  decoded.assign(2, std::nullopt);
  std::string buf(page_size, '\0');
  for (int i = 0; i < 2; ++i) {
    size_t n = 0;
    Status s = ReadAt(kSlotPageIds[i] * page_size, page_size, buf.data(), &n);
    InspectedSlot slot = DecodeSlot(kSlotPageIds[i], buf.data(), s.ok() ? n : 0, &decoded[i]);
    if (!s.ok()) slot.status = s.WithContext("reading commit slot page " + std::to_string(kSlotPageIds[i]));
    slots.push_back(std::move(slot));
  }
  // Which commit is current is recovery's verdict, from the engine's one function (db/recovery.h). When only
  // the super-header stands in the way, the slots are judged at the page size used here, to show the commit
  // recovery would open were the header intact.
  std::optional<SlotVerdict> verdict;
  if (open_status.ok() && !uncommitted) {
    verdict = judged_slots;
  } else if (!header.status.ok() && !uncommitted) {
    Result<SlotVerdict> v = JudgeSlots(file.get(), path, page_size, file_size);
    if (v.ok()) verdict = std::move(v).value();
  }
  if (verdict) {
    current = verdict->chosen;
    slots[current].current = true;
    slots[current].complete = true;
  }
  for (int i = 0; i < 2; ++i) {
    if (!decoded[i] || i == current) continue;
    // The verdict's reason when it rejected this slot's commit; otherwise (an older commit recovery did not
    // need to look at) the same check, for the display only.
    Status s;
    if (verdict && verdict->slots[i].checked) {
      s = verdict->slots[i].problem;
    } else {
      s = CheckCommit(file.get(), path, page_size, *decoded[i], file_size);
      if (!s.ok()) {
        s = s.WithContext(std::string("commit slot ") + slots[i].name + " (page " +
                          std::to_string(slots[i].page_id) + ")");
      }
    }
    slots[i].complete = s.ok();
    if (!s.ok()) slots[i].status = s;
  }
}

Result<PageRef> Inspector::Impl::ReadNode(uint64_t id, const std::string& what) {
  Result<PageRef> page = pager->ReadPageUncached(id);
  if (!page.ok()) return page.status().WithContext(what);
  Status s = CheckNodeStructure(page.value()->data(), page_size, id);
  if (!s.ok()) return s.WithContext(what);
  return page;
}

Status Inspector::Impl::WalkNode(uint64_t id, const std::string& what, int depth, uint64_t page_count,
                                 TreeWalk* w) {
  if (depth > kMaxTreeDepth)
    return Status::Corruption(what + ": tree deeper than " + std::to_string(kMaxTreeDepth));
  if (id >= page_count) {
    return Status::Corruption(what + ": " + PageName(id) + " lies past the end of the commit (" +
                              std::to_string(page_count) + " pages)");
  }
  if (!w->visited.insert(id).second)
    return Status::Corruption(what + ": " + PageName(id) + " is referenced twice");
  ROCKY_ASSIGN_OR_RETURN(PageRef page, ReadNode(id, what));
  NodePage node(page->data(), page_size);
  if (!node.is_leaf()) {
    ++w->branch_pages;
    // Long separators live on runs of their own: read each, so damage there is found and named too.
    UncachedPages src(pager.get());
    for (int i = 0; i < node.count(); ++i) {
      const StoredKey sep = node.branch_key(i);
      if (!sep.overflow) continue;
      std::string whole;
      Status s = LoadKey(src, sep, &whole);
      if (!s.ok()) return s.WithContext(what + ": " + PageName(id) + ": separator " + std::to_string(i));
      w->overflow_pages += OverflowRunPages(sep.len, page_size);
      w->key_overflow_pages += OverflowRunPages(sep.len, page_size);
    }
    for (int i = 0; i <= node.count() && !w->stopped; ++i) {
      ROCKY_RETURN_IF_ERROR(WalkNode(node.branch_child(i), what, depth + 1, page_count, w));
    }
    return Status::OK();
  }
  ++w->leaf_pages;
  if (w->leaf_depth < 0) w->leaf_depth = depth;
  if (w->leaf_depth != depth)
    return Status::Corruption(what + ": " + PageName(id) + ": leaves at different depths");
  UncachedPages src(pager.get());
  for (int i = 0; i < node.count() && !w->stopped; ++i) {
    const LeafEntry e = node.leaf_entry(i);
    // Overflow keys are always read (even when only counting), so damage to a key's run is reported.
    std::string whole_key;
    std::string_view key = e.key.bytes;
    if (e.key.overflow) {
      Status s = LoadKey(src, e.key, &whole_key);
      if (!s.ok()) return s.WithContext(what + ": " + PageName(id) + ": entry " + std::to_string(i));
      key = whole_key;
      w->overflow_pages += OverflowRunPages(e.key.len, page_size);
      w->key_overflow_pages += OverflowRunPages(e.key.len, page_size);
    }
    std::string_view value = e.inline_value;
    PageRef run;
    if (e.overflow) {
      w->overflow_pages += OverflowRunPages(e.value_len, page_size);
      if (w->visitor != nullptr) {
        Result<PageRef> r = pager->ReadOverflowRun(e.overflow_page);
        if (!r.ok()) return r.status().WithContext(what + ": " + PageName(id));
        run = std::move(r).value();
        if (kOverflowDataOffset + e.value_len > run->size) {
          return Status::Corruption(what + ": " + PageName(id) + ": overflow run " +
                                    std::to_string(e.overflow_page) + " is shorter than its leaf entry says");
        }
        value = std::string_view(run->data() + kOverflowDataOffset, e.value_len);
      }
    }
    ++w->entries;
    if (w->visitor != nullptr && !(*w->visitor)(key, value)) w->stopped = true;
  }
  return Status::OK();
}

Status Inspector::Impl::WalkTree(uint64_t root, const std::string& what, TreeWalk* w) {
  if (current < 0) return Status::NotFound(path + " has no usable commit");
  if (root == 0) return Status::OK();
  return WalkNode(root, what, 1, decoded[current]->page_count, w);
}

Status Inspector::Impl::ListTablesInto(std::vector<InspectedTable>* tables) {
  if (current < 0) return Status::NotFound(path + " has no usable commit");
  std::vector<std::pair<std::string, std::string>> records;
  InspectVisitor collect = [&](std::string_view key, std::string_view value) {
    records.emplace_back(std::string(key), std::string(value));
    return true;
  };
  TreeWalk catalog;
  catalog.visitor = &collect;
  Status catalog_status = WalkTree(decoded[current]->catalog_root, "catalog", &catalog);
  for (auto& [name, record] : records) {
    InspectedTable t;
    t.name = name;
    TableMeta meta;
    if (!DecodeTableMeta(record, &meta)) {
      t.status = Status::Corruption("catalog entry of " + TableLabel(name) + " has a malformed record");
      tables->push_back(std::move(t));
      continue;
    }
    t.root = meta.root;
    t.entries = meta.len;
    TreeWalk w;
    t.status = WalkTree(meta.root, TableLabel(name), &w);
    t.counted = w.entries;
    t.leaf_pages = w.leaf_pages;
    t.branch_pages = w.branch_pages;
    t.overflow_pages = w.overflow_pages;
    t.key_overflow_pages = w.key_overflow_pages;
    t.depth = w.leaf_depth < 0 ? 0 : static_cast<uint32_t>(w.leaf_depth);
    if (t.status.ok() && t.counted != t.entries) {
      t.status =
          Status::Corruption(TableLabel(name) + ": its catalog record says " + std::to_string(t.entries) +
                             " keys but its tree holds " + std::to_string(t.counted));
    }
    tables->push_back(std::move(t));
  }
  return catalog_status;
}

Result<TableMeta> Inspector::Impl::FindTable(std::string_view name) {
  std::optional<std::string> record;
  InspectVisitor find = [&](std::string_view key, std::string_view value) {
    if (key != name) return true;
    record = std::string(value);
    return false;
  };
  TreeWalk catalog;
  catalog.visitor = &find;
  if (current < 0) return Status::NotFound(path + " has no usable commit");
  ROCKY_RETURN_IF_ERROR(WalkTree(decoded[current]->catalog_root, "catalog", &catalog));
  if (!record) return Status::NotFound("no table named '" + std::string(name) + "'");
  TableMeta meta;
  if (!DecodeTableMeta(*record, &meta)) {
    return Status::Corruption("catalog entry of " + TableLabel(name) + " has a malformed record");
  }
  return meta;
}

Inspector::Inspector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Inspector::~Inspector() = default;

Result<std::unique_ptr<Inspector>> Inspector::Open(const std::string& path, Env* env) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  ROCKY_ASSIGN_OR_RETURN(
      impl->file, OpenRegistry::OpenUnregistered(
                      env, path, FileOpenOptions{.create = false, .read_only = true}, &impl->registry_key));
  ROCKY_ASSIGN_OR_RETURN(impl->file_size, impl->file->Size());
  impl->ReadHeader();
  impl->pager = std::make_unique<Pager>(impl->file.get(), path, impl->page_size, impl->page_size);
  impl->JudgeFileOnce();
  // A file without the magic is not ours (or holds no commit): its "slots" would be meaningless bytes.
  if (impl->header.magic_ok) impl->ReadSlots();
  return std::unique_ptr<Inspector>(new Inspector(std::move(impl)));
}

const InspectedHeader& Inspector::header() const { return impl_->header; }
const std::vector<InspectedSlot>& Inspector::slots() const { return impl_->slots; }
int Inspector::current_slot() const { return impl_->current; }

Result<InspectedPage> Inspector::DescribePage(uint64_t id) {
  Impl& d = *impl_;
  const uint64_t pages_in_file = d.file_size / d.page_size;
  if (id >= pages_in_file) {
    return Status::InvalidArgument("page " + std::to_string(id) + " lies beyond the end of the file (" +
                                   std::to_string(pages_in_file) + " whole pages of " +
                                   std::to_string(d.page_size) + " bytes)");
  }
  std::string buf(d.page_size, '\0');
  size_t n = 0;
  ROCKY_RETURN_IF_ERROR(d.ReadAt(id * d.page_size, d.page_size, buf.data(), &n));
  if (n != d.page_size) return Status::IOError("short read of " + PageName(id));
  const char* p = buf.data();
  InspectedPage page;
  page.id = id;
  page.page_size = d.page_size;
  if (id == kHeaderPageId) {
    page.kind_name = "super-header";
    page.header = d.header;
    return page;
  }
  page.stored_checksum = DecodeU64(p + kPageChecksumOffset);
  page.txn_id = PageTxn(p);
  page.kind = static_cast<uint8_t>(p[kPageKindOffset]);
  page.flags = static_cast<uint8_t>(p[kPageFlagsOffset]);
  page.count = PageCount(p);
  page.aux = PageAux(p);
  page.kind_name = std::string(PageKindName(GetPageKind(p)));
  page.checksum_ok = PageChecksumOk(p, d.page_size, id);
  if (id < kFirstDataPageId) {
    page.slot = id - 1 < d.slots.size() ? d.slots[id - 1] : d.DecodeSlot(id, p, n, nullptr);
    return page;
  }
  switch (GetPageKind(p)) {
    case PageKind::kLeaf:
    case PageKind::kBranch: {
      page.structure = CheckNodeStructure(p, d.page_size, id);
      if (!page.structure.ok()) break;
      NodePage node(buf.data(), d.page_size);
      if (!node.is_leaf()) page.leftmost_child = node.branch_child(0);
      UncachedPages src(d.pager.get());
      for (int i = 0; i < node.count(); ++i) {
        InspectedEntry e;
        const StoredKey key = node.is_leaf() ? node.leaf_entry(i).key : node.branch_key(i);
        e.key = std::string(key.bytes);
        e.key_overflow = key.overflow;
        e.key_overflow_page = key.page;
        e.key_len = key.len;
        if (key.overflow) {
          std::string whole;
          e.key_status = LoadKey(src, key, &whole);
          if (e.key_status.ok()) {
            e.key = std::move(whole);
          } else {
            e.key_status = e.key_status.WithContext(PageName(id) + ": entry " + std::to_string(i));
          }
        }
        if (node.is_leaf()) {
          const LeafEntry le = node.leaf_entry(i);
          e.overflow = le.overflow;
          e.value = std::string(le.inline_value);
          e.overflow_page = le.overflow_page;
          e.value_len = le.value_len;
        } else {
          e.child = node.branch_child(i + 1);
        }
        page.entries.push_back(std::move(e));
      }
      break;
    }
    case PageKind::kOverflow: {
      page.run_pages = page.aux;
      page.overflow_length = DecodeU64(p + kOverflowLengthOffset);
      // One checksum covers the whole run; the Pager reads and checks it, bounded by the file size.
      Result<PageRef> run = d.pager->ReadOverflowRun(id);
      page.checksum_ok = run.ok();
      page.structure = run.status();
      break;
    }
    case PageKind::kFreemapBitmap: {
      page.bitmap_bits = BitsPerBitmapPage(d.page_size);
      for (size_t i = kBitmapDataOffset; i < d.page_size; ++i) {
        page.bitmap_used += static_cast<uint64_t>(std::popcount(static_cast<uint8_t>(p[i])));
      }
      break;
    }
    case PageKind::kFreemapDirectory: {
      page.directory_next = DecodeU64(p + kDirectoryNextOffset);
      const size_t capacity = DirectoryCapacity(d.page_size);
      if (page.count > capacity) {
        page.structure = Status::Corruption(PageName(id) + ": directory count " + std::to_string(page.count) +
                                            " exceeds its capacity " + std::to_string(capacity));
      }
      for (size_t i = 0; i < std::min<size_t>(page.count, capacity); ++i) {
        page.directory_ids.push_back(DecodeU64(p + kDirectoryIdsOffset + 8 * i));
      }
      break;
    }
    case PageKind::kFree:
    case PageKind::kSlot: break;
  }
  return page;
}

Result<std::vector<InspectedTable>> Inspector::ListTables() {
  std::vector<InspectedTable> tables;
  ROCKY_RETURN_IF_ERROR(impl_->ListTablesInto(&tables));
  return tables;
}

Status Inspector::WalkTable(std::string_view name, const InspectVisitor& visitor) {
  ROCKY_ASSIGN_OR_RETURN(TableMeta meta, impl_->FindTable(name));
  TreeWalk w;
  w.visitor = &visitor;
  return impl_->WalkTree(meta.root, TableLabel(name), &w);
}

InspectionReport Inspector::Inspect() {
  Impl& d = *impl_;
  InspectionReport r;
  r.header = d.header;
  r.slots = d.slots;
  r.current_slot = d.current;
  r.open_status = d.open_status;
  r.uncommitted = d.uncommitted;
  if (!d.header.status.ok()) r.problems.push_back(d.header.status.message());
  // What Open would say, unless the header's own problem said it already.
  if (!d.open_status.ok() && d.open_status.message() != d.header.status.message()) {
    r.problems.push_back(d.open_status.message());
  }
  if (d.uncommitted) {
    r.warnings.push_back(d.path +
                         " holds no commit: it reads as an empty database, and the next writer "
                         "initialises it");
    return r;
  }
  if (!d.header.magic_ok) return r;
  if (d.open_status.ok() && d.judged_slots.discarded) {
    const DiscardedCommit& dc = *d.judged_slots.discarded;
    r.discarded = dc;
    r.problems.push_back("the newest commit (txn " + std::to_string(dc.txn_id) +
                         ") is discarded: " + dc.reason + "; the file opens at commit " +
                         std::to_string(d.slots[d.current].txn_id) +
                         " (lost if it was acknowledged; expected if a power cut hit that commit)");
  }
  for (int i = 0; i < static_cast<int>(d.slots.size()); ++i) {
    const InspectedSlot& s = d.slots[i];
    // A torn or never-written slot is normal after a crash or with one commit, and an older commit that is no
    // longer complete is normal after the newer one reused its pages; a discarded newest commit is not.
    if (s.status.ok() || s.current || (r.discarded && i == d.judged_slots.discarded_slot)) continue;
    r.warnings.push_back(s.status.message());
  }
  if (d.current < 0) {
    if (d.open_status.ok() || d.open_status.message() == d.header.status.message()) {
      r.problems.push_back(d.path + " has no usable commit: neither slot holds a complete commit");
    }
    return r;
  }
  r.catalog_status = d.ListTablesInto(&r.tables);
  if (!r.catalog_status.ok()) r.problems.push_back(r.catalog_status.message());
  for (const InspectedTable& t : r.tables) {
    if (!t.status.ok()) r.problems.push_back(t.status.message());
  }
  CommitWalker walker(d.pager.get(), *d.decoded[d.current], /*from_disk=*/true);
  r.integrity = walker.Walk();
  if (r.integrity.ok()) {
    r.stats = walker.stats();
    r.stats_complete = true;
  } else {
    if (std::find(r.problems.begin(), r.problems.end(), r.integrity.message()) == r.problems.end()) {
      r.problems.push_back(r.integrity.message());
    }
    // What the tolerant per-table walks saw; free pages and fragmentation need the full walk.
    Stats& st = r.stats;
    st.page_size = d.page_size;
    st.file_pages = d.decoded[d.current]->page_count;
    st.header_pages = kFirstDataPageId;
    st.last_commit_id = d.decoded[d.current]->txn_id;
    for (const InspectedTable& t : r.tables) {
      st.leaf_pages += t.leaf_pages;
      st.branch_pages += t.branch_pages;
      st.overflow_pages += t.overflow_pages;
      st.key_overflow_pages += t.key_overflow_pages;
      st.tree_depth = std::max(st.tree_depth, t.depth);
      st.entries += t.counted;
      ++st.tables;
    }
  }
  return r;
}

}  // namespace rocky::engine
