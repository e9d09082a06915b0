// Read and write transactions and the table handles they hand out.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "btree/btree.h"
#include "db/db_impl.h"
#include "db/dirty_pages.h"
#include "db/table_meta.h"
#include "rocky/engine/db.h"

namespace rocky::engine {

// A table of one transaction: its name and tree; reads go through the transaction's page source.
class TableImpl : public WritableTable {
 public:
  // max_key: the longest key Insert accepts in this file (DatabaseImpl::max_key_size).
  TableImpl(std::string name, TreeRoot tree, PageSource* src, PageSink* sink, uint64_t max_key)
      : name_(std::move(name)), tree_(tree), src_(src), sink_(sink), max_key_(max_key) {}

  const std::string& name() const override { return name_; }
  uint64_t Len() const override { return tree_.len; }
  Result<bool> Get(std::string_view key, std::string* value) const override;
  std::unique_ptr<Cursor> NewCursor(KeyRange range) const override;
  Result<bool> Insert(std::string_view key, std::string_view value) override;
  Result<bool> Remove(std::string_view key) override;
  Result<uint64_t> RemoveRange(const KeyRange& range) override;

  const TreeRoot& tree() const { return tree_; }
  bool meta_dirty() const { return meta_dirty_; }
  void set_meta_dirty() { meta_dirty_ = true; }
  void clear_meta_dirty() { meta_dirty_ = false; }
  void Drop() { dropped_ = true; }

 private:
  Status CheckWritable() const;
  std::string Context() const { return TableLabel(name_); }

  std::string name_;
  TreeRoot tree_;
  PageSource* src_;
  PageSink* sink_;  // nullptr in a read transaction
  uint64_t max_key_;
  bool meta_dirty_ = false;
  bool dropped_ = false;
};

class ReadTxnImpl final : public ReadTransaction {
 public:
  // Takes a registered snapshot; unregisters it (and releases `reader_lock`, if any) on destruction.
  ReadTxnImpl(DatabaseImpl* db, std::shared_ptr<const Snapshot> snapshot, PageSource* src);
  ~ReadTxnImpl() override;

  uint64_t snapshot_id() const override { return snapshot_->txn_id; }
  Result<const ReadableTable*> OpenTable(std::string_view name) override;
  Result<std::vector<std::string>> ListTables() override;

 private:
  DatabaseImpl* db_;
  std::shared_ptr<const Snapshot> snapshot_;
  PageSource* src_;
  std::map<std::string, std::unique_ptr<TableImpl>, std::less<>> tables_;
};

class WriteTxnImpl final : public WriteTransaction, public PageSink {
 public:
  WriteTxnImpl(DatabaseImpl* db, uint64_t id, const Snapshot& base, Durability durability);
  ~WriteTxnImpl() override;

  // --- WriteTransaction ---
  uint64_t id() const override { return id_; }
  Result<WritableTable*> OpenTable(std::string_view name) override;
  Result<bool> DeleteTable(std::string_view name) override;
  Result<std::vector<std::string>> ListTables() override;
  Status Commit() override;
  void Abort() override;

  // --- PageSink ---
  uint32_t page_size() const override { return db_->page_size(); }
  Result<PageRef> ReadNode(uint64_t id) override;
  Result<const char*> ReadNodeBytes(uint64_t id, PageRef* hold) override;
  Result<PageRef> ReadOverflow(uint64_t first) override;
  Result<PageRef> WritableNode(uint64_t id) override;
  PageRef NewNode() override;
  void FreeNode(uint64_t id) override;
  uint64_t WriteOverflow(std::string_view value) override;
  void FreeOverflow(uint64_t first, uint64_t value_len) override;

  // --- For the commit protocol and maintenance. ---
  // Writes the metadata of changed tables into the catalog tree.
  Status FlushTableMetas();
  DirtyPages& dirty_pages() { return dirty_; }
  uint64_t catalog_root() const { return catalog_.root; }
  Durability durability() const { return durability_; }
  bool modified() const { return modified_; }
  TreeRoot& catalog() { return catalog_; }
  // Forces Commit to write a new commit even though no page changed (compaction's shrink).
  void MarkModified() { modified_ = true; }

 private:
  Status CheckOpen() const;

  DatabaseImpl* db_;
  uint64_t id_;
  Durability durability_;
  CommittedPages committed_;
  TreeRoot catalog_;
  DirtyPages dirty_;  // pages and overflow runs this transaction owns
  std::map<std::string, std::unique_ptr<TableImpl>, std::less<>> tables_;
  std::vector<std::unique_ptr<TableImpl>> dropped_tables_;  // kept alive: callers may hold pointers
  bool modified_ = false;
  bool finished_ = false;
};

// Validates a table name or key length against max; names what is wrong.
Status CheckKeySize(std::string_view key, uint64_t max, uint32_t page_size, const char* what);

}  // namespace rocky::engine
