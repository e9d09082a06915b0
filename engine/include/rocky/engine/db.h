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

#include "rocky/engine/env.h"
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
// In a write transaction, any change to the table invalidates its cursors (using one afterwards is
// undefined).
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

// Keys up to this many bytes are stored whole in their leaf (about a quarter page less overheads: 997 bytes
// at 4 KiB pages); a longer key keeps a prefix in the leaf and the whole key on overflow pages, which costs
// reading those pages whenever a search key shares the whole stored prefix. Files of format version 1
// (written before long keys existed) still accept keys and table names only up to their old limits,
// InlineKeyLimit() and InlineKeyLimit() - 4 bytes, so that older builds can keep reading them.
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
  // kNotFound (naming the table) when it does not exist in this snapshot. The table belongs to the
  // transaction.
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
  // commit nothing of the transaction is visible to this Database's readers, the last durable commit is
  // intact on disk, and the Database refuses further writes (kPoisoned) until reopened. Whether the failed
  // commit can still appear after a reopen is told by the code:
  //   - kOutcomeUnknown: the commit's slot was written but its sync failed (or the write of the slot itself
  //     failed half way), and making the slot invalid again failed too. The commit may have been kept: the
  //     next Database::Open settles it (its OpenReport::commit_id is this transaction's id() if it was kept).
  //   - any other code (kIOError, kNoSpace, ...): certainly not committed. Either nothing of the commit's
  //     slot was written, or its slot was overwritten with zeros and that was synced. The message says "not
  //     committed; the state is unchanged": the file's current commit is the last durable one (commits made
  //     with kNoSync since it, which were visible to this Database's readers, are lost with it).
  virtual Status Commit() = 0;
  // Drops every change. Also what the destructor does.
  virtual void Abort() = 0;
};

// What stats() reports; counts are of pages of the current commit.
struct Stats {
  uint32_t page_size = 0;
  uint64_t file_pages = 0;    // pages the file holds
  uint64_t header_pages = 0;  // the super-header and the two commit slots
  uint64_t branch_pages = 0;
  uint64_t leaf_pages = 0;
  uint64_t overflow_pages = 0;      // pages of values and keys too large for a leaf
  uint64_t key_overflow_pages = 0;  // of overflow_pages, those holding keys (and long branch separators)
  uint64_t freemap_pages = 0;       // the allocator's bitmaps and their directory
  uint64_t free_pages = 0;          // reusable now, or once no snapshot needs them
  uint32_t tree_depth = 0;          // deepest table tree (a lone leaf is depth 1)
  uint64_t tables = 0;
  uint64_t entries = 0;
  uint64_t key_bytes = 0;
  uint64_t value_bytes = 0;
  uint64_t last_commit_id = 0;
  // Share of the file not holding live data: free pages plus unused bytes inside tree pages, over file bytes.
  double fragmentation = 0.0;
};

// The newest commit of a file, which Database::Open found damaged or incomplete and did not use. After a
// power cut that hit a commit before it was acknowledged, this is expected (that commit never returned OK);
// otherwise it is damage to the file: a commit that was acknowledged is gone. Callers must tell the user
// either way, since they cannot tell the two apart.
struct DiscardedCommit {
  // The rejected commit's transaction id. For a commit slot that fails its own checksum, the id its page
  // claims (unverified).
  uint64_t txn_id = 0;
  // Why it was rejected, naming the page: "page 17: checksum mismatch", "page 9 was written by transaction
  // 40, not by commit 42", "the file holds 8192 bytes but commit 42 needs 12288 ...", "commit slot B (page 2)
  // fails its checksum ...".
  std::string reason;
  // A copy of the file as Open found it, kept before anything could overwrite the rejected commit, named
  // "<path>.discarded-<txn_id>" (or "<path>.discarded-<txn_id>-<n>" when that name holds a different copy),
  // in the file's directory, created 0600 and synced with its directory entry. A read-write Open makes it
  // before it returns (and fails if it cannot), or names one an earlier Open already made of the same file;
  // a read-only Open never writes, so it leaves this empty. The engine never removes it: removing it is the
  // user's acknowledgement (FindDiscardedCopies lists those still there).
  std::string evidence_path;
};

// What Database::Open found. Available from Database::open_report() for the life of the Database.
struct OpenReport {
  // The commit the Database opened at (ReadTransaction::snapshot_id() of a first read). 0 when a read-only
  // Open found a file holding no commit (an empty database; see `uncommitted`).
  uint64_t commit_id = 0;
  // This Open created the file, or found one holding no commit (zero length, all zero, or a creation cut
  // short, e.g. by an older rocky) and initialised it in place as a new empty database.
  bool created = false;
  // The file held no commit: it reads as an empty database. Set for a read-only Open of such a file (which
  // changes nothing; the next read-write Open initialises it) and together with `created` for a read-write
  // one.
  bool uncommitted = false;
  // Set when the newest commit was rejected and Open fell back to the previous one (commit_id).
  std::optional<DiscardedCommit> discarded;
};

// The copies of `path` that Opens kept of discarded commits (DiscardedCommit::evidence_path) and that are
// still there: paths "<path>.discarded-<txn>[-<n>]" in path's directory, sorted by txn id. Empty when none.
// Commands call it to keep warning until the user removes them. env nullptr means Env::Default().
Result<std::vector<std::string>> FindDiscardedCopies(const std::string& path, Env* env = nullptr);

struct IntegrityReport {
  uint64_t pages_checked = 0;
  uint64_t tables_checked = 0;
  uint64_t entries_checked = 0;
};

class Database {
 public:
  // Opens (or creates) the database file at path. Recovery after a crash happens here and costs about the
  // same whatever the file's size. Fails, changing nothing, on a file that is not ours, is truncated, or has
  // a newer format version, and on any error reading it (kIOError naming the file, the page and the
  // system's error): an unreadable page is never taken for a commit cut by a crash.
  //
  // A new file is created atomically: built and synced under a temporary name in the same directory
  // ("<path>.tmp-<random>", 0600), then given its name with link(2) and the directory synced. An interrupted
  // creation leaves no file at `path` (at worst an orphaned temporary file); when another process creates
  // the file meanwhile, this Open opens that one. A read-write Open also syncs the file's directory before it
  // returns (whoever created the file), so no commit it acknowledges can be lost with a name that never
  // reached the disk. A file that exists but holds no commit (zero length, all zero, or a creation by an
  // older rocky cut short) is an empty database: read-only Opens read it as one, and a read-write Open
  // initialises it in place under the writer lock (OpenReport::created and ::uncommitted).
  //
  // When the newest commit is damaged or incomplete, Open uses the previous one and says so in
  // open_report().discarded; a read-write Open first keeps a copy of the file
  // (DiscardedCommit::evidence_path). Nothing is copied when no commit was discarded.
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

  // What Open found: the commit opened, whether the file was created, and any discarded commit. Thread-safe
  // (never changes after Open).
  virtual const OpenReport& open_report() const = 0;
};

}  // namespace rocky::engine
