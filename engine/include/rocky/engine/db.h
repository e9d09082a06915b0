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
//
// The rest of the API is in the headers this one includes: table.h (KeyRange, Cursor, the tables and the size
// limits), transaction.h (ReadTransaction, WriteTransaction), reports.h (OpenReport, DiscardedCommit,
// FindDiscardedCopies, IntegrityReport, Stats), options.h, env.h and status.h.
#pragma once

#include <memory>
#include <string>

#include "rocky/engine/env.h"
#include "rocky/engine/options.h"
#include "rocky/engine/reports.h"
#include "rocky/engine/status.h"
#include "rocky/engine/table.h"
#include "rocky/engine/transaction.h"

namespace rocky::engine {

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
