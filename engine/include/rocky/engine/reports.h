// What a Database says about its file: what Open found (OpenReport, DiscardedCommit and the copies kept of
// discarded commits), what CheckIntegrity verified (IntegrityReport) and what GetStats counts (Stats).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rocky/engine/env.h"
#include "rocky/engine/status.h"

namespace rocky::engine {

// What Database::GetStats() reports; counts are of pages of the current commit.
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

}  // namespace rocky::engine
