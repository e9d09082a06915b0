// Recovery's verdict on a file: which commit is current, which one was discarded and why, or that the file
// holds no commit at all. ONE implementation, used by Database::Open (read-write and read-only), by read-only
// snapshots, and by the Inspector, so every tool gives the same answer for the same bytes
// (format-spec/FORMAT.md, "Recovery").
//
// What is never confused: a page that cannot be READ (an I/O error) is an error of the verdict itself, never
// evidence that a commit was cut by a crash. Only a checksum or transaction-id mismatch on a page of the
// verify list, or a file too short for the commit, make a commit incomplete.
//
// Every function here only reads, through File::Read (never a memory map, so a bad sector is an error, not a
// SIGBUS), and is thread-safe for distinct File objects and for concurrent reads of one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/commit_slot.h"
#include "page/page.h"
#include "rocky/engine/db.h"
#include "rocky/engine/env.h"
#include "rocky/engine/status.h"

namespace rocky::engine {

// One commit slot as read.
struct SlotFinding {
  bool present = false;            // the file holds the whole slot page
  bool blank = false;              // absent or all zero: never written (or invalidated by a failed commit)
  uint64_t stored_txn = 0;         // the page's txn id field as stored, even when the slot is invalid
  std::optional<CommitSlot> slot;  // decoded, when valid
  bool checked = false;            // its commit was checked against the file (the slot was considered)
  // Why the slot is invalid, or why its commit is incomplete (Corruption naming the page); OK when valid and
  // complete, or valid and not checked.
  Status problem;
};

struct SlotVerdict {
  SlotFinding slots[2];
  int chosen = -1;  // the slot holding the current commit
  // The newest commit, when it is not the one chosen: a valid newer slot whose commit is incomplete, or an
  // invalid slot whose (unverified) stored txn id is newer than the chosen commit's. evidence_path empty.
  std::optional<DiscardedCommit> discarded;
  int discarded_slot = -1;
  // One more than the highest txn id of either valid slot: the next writer's first transaction id.
  uint64_t next_txn_id = 0;
};

// Decides which commit is current from the two slots of a file whose pages are page_size bytes and whose
// length is file_size. `known_complete` (optional): a slot this caller verified before; a slot equal to it is
// taken as complete without reading its pages again.
// Errors: an I/O error reading a slot or a page (the message names the file, the page and the system's
// error), Corruption when no slot holds a usable commit or when a commit whose pages were synced before its
// slot finds the file too short ("is truncated").
Result<SlotVerdict> JudgeSlots(File* file, const std::string& path, uint32_t page_size, uint64_t file_size,
                               const CommitSlot* known_complete = nullptr);

struct FileVerdict {
  uint64_t file_size = 0;
  bool header_valid = false;  // page 0 is a valid super-header
  SuperHeader header;         // when header_valid
  // The file holds no commit, and none can ever have been made in it: empty, all zero, or a valid header
  // whose slot B was never written, no valid slot, and no more pages than a newly created file has. It reads
  // as an empty database; a writer initialises it in place (FORMAT.md, "Files without a commit").
  bool uncommitted = false;
  SlotVerdict slots;  // when !uncommitted
};

// The whole verdict: the super-header, then JudgeSlots, or `uncommitted`. Errors as JudgeSlots, plus the
// header's own (not a rocky database, newer format version, damaged header). `slot_bytes` (optional) receives
// the raw bytes of both slot pages as read, for callers that must check that no writer changed them
// meanwhile.
Result<FileVerdict> JudgeFile(File* file, const std::string& path, const CommitSlot* known_complete = nullptr,
                              std::string* slot_bytes = nullptr);

// JudgeFile for a file another process may be writing: repeats the verdict until the slots read after it
// are the ones it was made from, so a commit in progress is never mistaken for damage. I/O errors are
// returned at once; Busy when the writer never lets a verdict stand (after `attempts` tries).
Result<FileVerdict> JudgeFileStable(File* file, const std::string& path, int attempts = 1000);

// Reads the raw bytes of both slot pages (short when the file is), for comparing with JudgeFile's slot_bytes.
Status ReadSlotBytes(File* file, uint32_t page_size, std::string* out);

// Checks one valid slot's commit against the file as JudgeSlots does: OK when complete; Corruption naming the
// page (or the file length) when the commit is incomplete; any other code is an error reading the file.
Status CheckCommit(File* file, const std::string& path, uint32_t page_size, const CommitSlot& slot,
                   uint64_t file_size);

// The contents of a new file's first commit (txn 1, no tables): header, blank slot B, the allocator's pages
// and slot A, in the order they are written.
struct NewFileImage {
  std::string header;            // page 0
  std::vector<PageRef> freemap;  // sealed, sorted by id
  CommitSlot slot;               // slot A
};
NewFileImage MakeNewFileImage(uint32_t page_size);

// Writes a new file's first commit into `file` (empty, or to be overwritten from offset 0), durably, in an
// order that leaves a file without a commit (never an unopenable one) if it is cut anywhere: page 0, synced;
// slot B blank and the allocator's pages, synced; slot A, synced.
Status WriteNewFile(File* file, const std::string& path, uint32_t page_size);

}  // namespace rocky::engine
