// The embedded key-value store: one file, named tables of ordered byte-string keys, ACID transactions.
//
//   auto db = Database::Open("state.redb", Options{});          // Result<std::unique_ptr<Database>>
//   auto w = (*db)->BeginWrite();
//   auto t = (*w)->OpenTable("watermarks");                      // created on first use
//   (*t)->Insert("acme.orders", "{...}");
//   (*w)->Commit();                                              // durable: survives a power cut
//   auto r = (*db)->BeginRead();                                 // a stable snapshot
//
// Concurrency: one write transaction at a time (BeginWrite blocks while another thread writes; another
// process that holds the file for writing makes Open fail with "locked by process N"), any number of read
// transactions on any threads, each seeing the snapshot of the last commit when it began.
//
// Lifetimes: tables and cursors belong to their transaction and must not outlive it; transactions must not
// outlive their Database. The on-disk format is documented in format-spec/FORMAT.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rocky/engine/options.h"
#include "rocky/engine/status.h"

namespace rocky::engine {

// Bounds of a scan: keys k with lower <= k < upper (each bound optional).
struct KeyRange {
  std::optional<std::string> lower;  // inclusive
  std::optional<std::string> upper;  // exclusive

  static KeyRange All() { return {}; }
  // Every key that starts with prefix.
  static KeyRange Prefix(std::string_view prefix);
};

// Walks the keys of one table of one snapshot in order, forward or backward, within a KeyRange.
// Not thread-safe. Usage:
//   for (c->SeekToFirst(); c->Valid(); c->Next()) use(c->key(), c->value());
//   if (!c->status().ok()) ...
// An error (a corrupt page) makes Valid() false and is kept in status(); a cursor never yields wrong data.
// In a write transaction, any change to the table invalidates its cursors (using one afterwards is undefined).
class Cursor {
 public:
  virtual ~Cursor() = default;

  virtual bool Valid() const = 0;
  virtual void SeekToFirst() = 0;
  virtual void SeekToLast() = 0;
  // First key >= target (within the range).
  virtual void Seek(std::string_view target) = 0;
  // Last key <= target (within the range).
  virtual void SeekForPrev(std::string_view target) = 0;
  virtual void Next() = 0;
  virtual void Prev() = 0;

  // Requires Valid(). The views stay valid until the cursor moves or is destroyed.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;

  virtual Status status() const = 0;
};

// A table as seen by a transaction's snapshot.
class ReadableTable {
 public:
  virtual ~ReadableTable() = default;

  virtual const std::string& name() const = 0;
  // Number of keys, in O(1).
  virtual uint64_t Len() const = 0;
  // True and *value set when key exists; false when it does not.
  virtual Result<bool> Get(std::string_view key, std::string* value) const = 0;
  virtual std::unique_ptr<Cursor> NewCursor(KeyRange range = {}) const = 0;
};

// Keys (and table names) may be of any length up to kMaxKeySize, values up to kMaxValueSize; both are
// bounded only so that a length can never overflow a size computation.
inline constexpr uint64_t kMaxKeySize = uint64_t{1} << 40;
inline constexpr uint64_t kMaxValueSize = uint64_t{1} << 40;

// Keys up to this many bytes are stored whole in their leaf (about a quarter page less overheads: 997 bytes at
// 4 KiB pages); a longer key keeps a prefix in the leaf and the whole key on overflow pages, which costs
// reading those pages whenever a search key shares the whole stored prefix. Files of format version 1 (written before long keys existed)
// still accept keys and table names only up to their old limits, InlineKeyLimit() and InlineKeyLimit() - 4
// bytes, so that older builds can keep reading them.
uint32_t InlineKeyLimit(uint32_t page_size);

class WritableTable : public ReadableTable {
 public:
  // Inserts key, or replaces its value. Returns true when a value was replaced. Keys and values may be of any
  // size up to kMaxKeySize and kMaxValueSize (large ones are stored on overflow pages).
  virtual Result<bool> Insert(std::string_view key, std::string_view value) = 0;
  // Returns true when the key existed.
  virtual Result<bool> Remove(std::string_view key) = 0;
  // Removes every key in range; returns how many.
  virtual Result<uint64_t> RemoveRange(const KeyRange& range) = 0;
};

class ReadTransaction {
 public:
  virtual ~ReadTransaction() = default;

  // Id of the commit this snapshot shows.
  virtual uint64_t snapshot_id() const = 0;
  // kNotFound (naming the table) when it does not exist in this snapshot. The table belongs to the transaction.
  virtual Result<const ReadableTable*> OpenTable(std::string_view name) = 0;
  virtual Result<std::vector<std::string>> ListTables() = 0;
};

class WriteTransaction {
 public:
  // Destroying an uncommitted transaction aborts it.
  virtual ~WriteTransaction() = default;

  virtual uint64_t id() const = 0;
  // Opens the table, creating it when missing. The table belongs to the transaction. A name is any non-empty
  // byte string up to kMaxKeySize bytes (in a format version 1 file, up to InlineKeyLimit() - 4 bytes).
  virtual Result<WritableTable*> OpenTable(std::string_view name) = 0;
  // Returns true when the table existed. Tables opened under that name become unusable.
  virtual Result<bool> DeleteTable(std::string_view name) = 0;
  virtual Result<std::vector<std::string>> ListTables() = 0;

  // Makes every change visible atomically (and durable, unless the durability is kNoSync). After a failed
  // commit nothing of the transaction is visible, and the last commit is intact on disk.
  virtual Status Commit() = 0;
  // Drops every change. Also what the destructor does.
  virtual void Abort() = 0;
};

// What stats() reports; counts are of pages of the current commit.
struct Stats {
  uint32_t page_size = 0;
  uint64_t file_pages = 0;      // pages the file holds
  uint64_t header_pages = 0;    // the super-header and the two commit slots
  uint64_t branch_pages = 0;
  uint64_t leaf_pages = 0;
  uint64_t overflow_pages = 0;  // pages of values and keys too large for a leaf
  uint64_t key_overflow_pages = 0;  // of overflow_pages, those holding keys (and long branch separators)
  uint64_t freemap_pages = 0;   // the allocator's bitmaps and their directory
  uint64_t free_pages = 0;      // reusable now, or once no snapshot needs them
  uint32_t tree_depth = 0;      // deepest table tree (a lone leaf is depth 1)
  uint64_t tables = 0;
  uint64_t entries = 0;
  uint64_t key_bytes = 0;
  uint64_t value_bytes = 0;
  uint64_t last_commit_id = 0;
  // Share of the file not holding live data: free pages plus unused bytes inside tree pages, over file bytes.
  double fragmentation = 0.0;
};

struct IntegrityReport {
  uint64_t pages_checked = 0;
  uint64_t tables_checked = 0;
  uint64_t entries_checked = 0;
};

class Database {
 public:
  // Opens (or creates) the database file at path. Recovery after a crash happens here and costs about the
  // same whatever the file's size. Fails, changing nothing, on a file that is not ours, is truncated, or has
  // a newer format version.
  //
  // One Database per file per process: opening a file this process already has open as a Database (by the
  // same path or any other name of it, read-only or not) fails with kBusy "already open in this process",
  // and the refusal leaves the open one's locks intact. (Locks are POSIX record locks, which closing any
  // descriptor of the file would drop for the whole process; the engine never closes a descriptor of a file
  // another Database of the process holds. Code outside the engine must not open and close the file either
  // while it is open here.)
  static Result<std::unique_ptr<Database>> Open(const std::string& path, const Options& options);

  // Closes, making kNoSync commits durable first. Errors are lost; call Close() to see them.
  virtual ~Database() = default;

  // Thread-safe. Never blocks on the writer.
  virtual Result<std::unique_ptr<ReadTransaction>> BeginRead() = 0;
  // Thread-safe; blocks while another write transaction of this Database is open.
  virtual Result<std::unique_ptr<WriteTransaction>> BeginWrite(const WriteOptions& options = {}) = 0;

  // Shrinks the file by moving pages from its end into free space and truncating it. Requires that no read
  // or write transaction is open (else kBusy).
  virtual Status Compact() = 0;
  // Verifies every checksum and every structural invariant of the last commit: key order, table lengths,
  // every page referenced once, and the allocator marking exactly the reachable pages as used.
  virtual Result<IntegrityReport> CheckIntegrity() = 0;
  virtual Result<Stats> GetStats() = 0;

  // Makes pending kNoSync commits durable and releases the file. Requires no open transactions.
  virtual Status Close() = 0;

  virtual const std::string& path() const = 0;
};

}  // namespace rocky::engine
