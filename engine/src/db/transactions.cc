#include "db/transactions.h"

#include <cstring>

#include "btree/node.h"
#include "btree/tree_cursor.h"
#include "db/table_meta.h"
#include "page/page_layout.h"

namespace rocky::engine {

namespace {

// Walks the catalog tree of a snapshot and returns every table name.
Result<std::vector<std::string>> CatalogNames(PageSource* src, uint64_t catalog_root) {
  std::vector<std::string> names;
  TreeCursor c(src, catalog_root, {}, "catalog");
  for (c.SeekToFirst(); c.Valid(); c.Next()) names.emplace_back(c.key());
  if (!c.status().ok()) return c.status();
  return names;
}

Result<std::optional<TableMeta>> LookupTable(PageSource* src, uint64_t catalog_root, std::string_view name) {
  std::string value;
  auto found = TreeGet(*src, catalog_root, name, &value);
  if (!found.ok()) return found.status().WithContext("catalog");
  if (!found.value()) return std::optional<TableMeta>();
  TableMeta meta;
  if (!DecodeTableMeta(value, &meta)) {
    return Status::Corruption("catalog entry of " + TableLabel(name) + " has a malformed record");
  }
  return std::optional<TableMeta>(meta);
}

}  // namespace

Status CheckKeySize(std::string_view key, uint64_t max, uint32_t page_size, const char* what) {
  if (key.size() > max) {
    return Status::InvalidArgument(
        std::string(what) + " of " + std::to_string(key.size()) + " bytes exceeds the maximum of " +
        std::to_string(max) + " bytes" +
        (max < kMaxKeySize ? " for a format version 1 file with page size " + std::to_string(page_size)
                           : std::string()));
  }
  return Status::OK();
}

uint32_t InlineKeyLimit(uint32_t page_size) { return static_cast<uint32_t>(InlineKeyLimitFor(page_size)); }

uint64_t DatabaseImpl::max_key_size() const {
  return format_version_ >= 2 ? kMaxKeySize : InlineKeyLimitFor(page_size_);
}

uint64_t DatabaseImpl::max_table_name_size() const {
  // Version 1 kept the 16-byte table record inline beside the name, and its integrity check insists on it.
  return format_version_ >= 2 ? kMaxKeySize
                              : MaxInlineEntry(page_size_) - kLeafInlineEntryHeader - kTableMetaSize;
}

KeyRange KeyRange::Prefix(std::string_view prefix) {
  KeyRange r;
  r.lower = std::string(prefix);
  // The smallest key greater than every key with this prefix: drop trailing 0xff bytes, increment the last.
  std::string upper(prefix);
  while (!upper.empty() && static_cast<unsigned char>(upper.back()) == 0xff) upper.pop_back();
  if (!upper.empty()) {
    upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);
    r.upper = std::move(upper);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// TableImpl

Status TableImpl::CheckWritable() const {
  if (dropped_) return Status::InvalidArgument(Context() + " was deleted in this transaction");
  if (sink_ == nullptr) return Status::InvalidArgument(Context() + " is read-only here");
  return Status::OK();
}

Result<bool> TableImpl::Get(std::string_view key, std::string* value) const {
  if (dropped_) return Status::InvalidArgument(Context() + " was deleted in this transaction");
  std::string scratch;
  auto r = TreeGet(*src_, tree_.root, key, value == nullptr ? &scratch : value);
  if (!r.ok()) return r.status().WithContext(Context());
  return r;
}

std::unique_ptr<Cursor> TableImpl::NewCursor(KeyRange range) const {
  return std::make_unique<TreeCursor>(src_, dropped_ ? 0 : tree_.root, std::move(range), Context());
}

Result<bool> TableImpl::Insert(std::string_view key, std::string_view value) {
  ROCKY_RETURN_IF_ERROR(CheckWritable());
  // The context names the table; built only for an error, since Insert is on the bulk-load path.
  if (Status s = CheckKeySize(key, max_key_, src_->page_size(), "key"); !s.ok())
    return s.WithContext(Context());
  if (value.size() > kMaxValueSize) {
    return Status::InvalidArgument(Context() + ": value of " + std::to_string(value.size()) +
                                   " bytes exceeds the maximum of 2^40 bytes");
  }
  auto r = TreeInsert(*sink_, tree_, key, value);
  meta_dirty_ = true;
  if (!r.ok()) return r.status().WithContext(Context());
  return r;
}

Result<bool> TableImpl::Remove(std::string_view key) {
  ROCKY_RETURN_IF_ERROR(CheckWritable());
  auto r = TreeRemove(*sink_, tree_, key);
  if (!r.ok()) return r.status().WithContext(Context());
  if (r.value()) meta_dirty_ = true;
  return r;
}

Result<uint64_t> TableImpl::RemoveRange(const KeyRange& range) {
  ROCKY_RETURN_IF_ERROR(CheckWritable());
  uint64_t removed = 0;
  for (;;) {
    std::string key;
    {
      TreeCursor c(src_, tree_.root, range, Context());
      c.SeekToFirst();
      if (!c.status().ok()) return c.status();
      if (!c.Valid()) break;
      key.assign(c.key());
    }
    auto r = TreeRemove(*sink_, tree_, key);
    if (!r.ok()) return r.status().WithContext(Context());
    meta_dirty_ = true;
    ++removed;
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------------------
// ReadTxnImpl

ReadTxnImpl::ReadTxnImpl(DatabaseImpl* db, std::shared_ptr<const Snapshot> snapshot, PageSource* src)
    : db_(db), snapshot_(std::move(snapshot)), src_(src) {}

ReadTxnImpl::~ReadTxnImpl() {
  tables_.clear();
  db_->EndRead(snapshot_->txn_id);
}

Result<const ReadableTable*> ReadTxnImpl::OpenTable(std::string_view name) {
  if (auto it = tables_.find(name); it != tables_.end())
    return static_cast<const ReadableTable*>(it->second.get());
  ROCKY_ASSIGN_OR_RETURN(std::optional<TableMeta> meta, LookupTable(src_, snapshot_->catalog_root, name));
  if (!meta) return Status::NotFound(TableLabel(name) + " does not exist");
  auto table =
      std::make_unique<TableImpl>(std::string(name), TreeRoot{meta->root, meta->len}, src_, nullptr, 0);
  const ReadableTable* out = table.get();
  tables_.emplace(std::string(name), std::move(table));
  return out;
}

Result<std::vector<std::string>> ReadTxnImpl::ListTables() {
  return CatalogNames(src_, snapshot_->catalog_root);
}

// ---------------------------------------------------------------------------------------------------------
// WriteTxnImpl

WriteTxnImpl::WriteTxnImpl(DatabaseImpl* db, uint64_t id, const Snapshot& base, Durability durability)
    : db_(db), id_(id), durability_(durability), committed_(&db->pager()), catalog_{base.catalog_root, 0} {}

WriteTxnImpl::~WriteTxnImpl() {
  if (!finished_) Abort();
}

Status WriteTxnImpl::CheckOpen() const {
  if (finished_) return Status::InvalidArgument("the write transaction has already ended");
  return Status::OK();
}

Result<WritableTable*> WriteTxnImpl::OpenTable(std::string_view name) {
  ROCKY_RETURN_IF_ERROR(CheckOpen());
  if (auto it = tables_.find(name); it != tables_.end()) return static_cast<WritableTable*>(it->second.get());
  if (name.empty()) return Status::InvalidArgument("a table name must not be empty");
  ROCKY_RETURN_IF_ERROR(CheckKeySize(name, db_->max_table_name_size(), page_size(), "table name"));
  ROCKY_ASSIGN_OR_RETURN(std::optional<TableMeta> meta, LookupTable(this, catalog_.root, name));
  TreeRoot tree = meta ? TreeRoot{meta->root, meta->len} : TreeRoot{};
  auto table = std::make_unique<TableImpl>(std::string(name), tree, this, this, db_->max_key_size());
  if (!meta) table->set_meta_dirty();  // created on first use
  WritableTable* out = table.get();
  tables_.emplace(std::string(name), std::move(table));
  return out;
}

Result<bool> WriteTxnImpl::DeleteTable(std::string_view name) {
  ROCKY_RETURN_IF_ERROR(CheckOpen());
  bool existed = false;
  if (auto it = tables_.find(name); it != tables_.end()) {
    existed = true;
    ROCKY_RETURN_IF_ERROR(TreeFreeAll(*this, it->second->tree().root).WithContext(TableLabel(name)));
    it->second->Drop();
    dropped_tables_.push_back(std::move(it->second));
    tables_.erase(it);
  } else {
    ROCKY_ASSIGN_OR_RETURN(std::optional<TableMeta> meta, LookupTable(this, catalog_.root, name));
    if (meta) {
      existed = true;
      ROCKY_RETURN_IF_ERROR(TreeFreeAll(*this, meta->root).WithContext(TableLabel(name)));
    }
  }
  auto removed = TreeRemove(*this, catalog_, name);
  if (!removed.ok()) return removed.status().WithContext("catalog");
  return existed;
}

Status WriteTxnImpl::FlushTableMetas() {
  for (auto& [name, table] : tables_) {
    if (!table->meta_dirty()) continue;
    const TreeRoot& t = table->tree();
    auto r = TreeInsert(*this, catalog_, name, EncodeTableMeta(TableMeta{t.root, t.len}));
    if (!r.ok()) return r.status().WithContext("catalog");
    table->clear_meta_dirty();
  }
  return Status::OK();
}

Result<std::vector<std::string>> WriteTxnImpl::ListTables() {
  ROCKY_RETURN_IF_ERROR(CheckOpen());
  ROCKY_RETURN_IF_ERROR(FlushTableMetas());
  return CatalogNames(this, catalog_.root);
}

Status WriteTxnImpl::Commit() {
  ROCKY_RETURN_IF_ERROR(CheckOpen());
  Status s = FlushTableMetas();
  if (s.ok()) s = db_->CommitTransaction(*this);
  finished_ = true;
  dirty_.Clear();
  db_->EndWrite(s.ok());
  return s;
}

void WriteTxnImpl::Abort() {
  if (finished_) return;
  finished_ = true;
  dirty_.Clear();
  db_->EndWrite(false);
}

Result<PageRef> WriteTxnImpl::ReadNode(uint64_t id) {
  if (const PageRef* owned = dirty_.Find(id)) return *owned;
  return committed_.ReadNode(id);
}

Result<const char*> WriteTxnImpl::ReadNodeBytes(uint64_t id, PageRef* hold) {
  if (const PageRef* owned = dirty_.Find(id)) {
    *hold = *owned;
    return static_cast<const char*>((*owned)->data());
  }
  return committed_.ReadNodeBytes(id, hold);
}

Result<PageRef> WriteTxnImpl::ReadOverflow(uint64_t first) {
  if (const PageRef* owned = dirty_.Find(first)) return *owned;
  return committed_.ReadOverflow(first);
}

Result<PageRef> WriteTxnImpl::WritableNode(uint64_t id) {
  if (const PageRef* owned = dirty_.Find(id)) return *owned;
  PageRef hold;
  ROCKY_ASSIGN_OR_RETURN(const char* committed, committed_.ReadNodeBytes(id, &hold));
  modified_ = true;
  auto copy = std::make_shared<Page>(db_->freemap().Allocate(), page_size(), false);
  std::memcpy(copy->data(), committed, page_size());
  copy->structure_checked.store(true, std::memory_order_relaxed);
  db_->freemap().FreeCommitted(id);
  dirty_.Insert(copy);
  return copy;
}

PageRef WriteTxnImpl::NewNode() {
  modified_ = true;
  auto page = std::make_shared<Page>(db_->freemap().Allocate(), page_size(), true);
  page->structure_checked.store(true, std::memory_order_relaxed);
  dirty_.Insert(page);
  return page;
}

void WriteTxnImpl::FreeNode(uint64_t id) {
  modified_ = true;
  if (dirty_.Erase(id)) {
    db_->freemap().FreeUncommitted(id);
  } else {
    db_->freemap().FreeCommitted(id);
  }
}

uint64_t WriteTxnImpl::WriteOverflow(std::string_view value) {
  modified_ = true;
  const uint64_t pages = OverflowRunPages(value.size(), page_size());
  const uint64_t first = db_->freemap().AllocateRun(pages);
  auto run = std::make_shared<Page>(first, pages * page_size(), false);
  char* p = run->data();
  std::memset(p, 0, kOverflowDataOffset);
  InitPageHeader(p, PageKind::kOverflow);
  SetPageAux(p, static_cast<uint32_t>(pages));
  EncodeU64(p + kOverflowLengthOffset, value.size());
  if (!value.empty()) std::memcpy(p + kOverflowDataOffset, value.data(), value.size());
  std::memset(p + kOverflowDataOffset + value.size(), 0, run->size - kOverflowDataOffset - value.size());
  dirty_.Insert(std::move(run));
  return first;
}

void WriteTxnImpl::FreeOverflow(uint64_t first, uint64_t value_len) {
  modified_ = true;
  const uint64_t pages = OverflowRunPages(value_len, page_size());
  if (dirty_.Erase(first)) {
    db_->freemap().FreeUncommitted(first, pages);
  } else {
    db_->freemap().FreeCommitted(first, pages);
  }
}

}  // namespace rocky::engine
