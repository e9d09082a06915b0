// Offline inspection of a database file: decodes the super-header, the commit slots, any page and any table
// straight from the bytes, for rocky-inspect and for debugging.
//
// Never writes and never locks: the file is opened read-only through Env and read with plain reads, so it is
// safe on the file of a running or crashed process (it then shows whatever the last completed write left).
// Works on damaged files: every decoder reports what it could not read as a Status naming the page, and keeps
// what it could, so callers can show as much as the damage allows.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rocky/engine/db.h"
#include "rocky/engine/env.h"
#include "rocky/engine/status.h"

namespace rocky::engine {

// Page 0, decoded field by field even when it fails its checks, so a damaged header still shows its values.
struct InspectedHeader {
  uint64_t file_size = 0;
  bool magic_ok = false;
  bool checksum_ok = false;
  uint32_t format_version = 0;
  uint32_t page_size = 0;  // as stored, possibly garbage
  // The page size the rest of the inspection uses: the stored one when plausible (a power of two in range),
  // else the default 4096, so a damaged header does not hide the slots and pages behind it.
  uint32_t effective_page_size = 0;
  // Why the header is not acceptable (not a rocky database, bad checksum, newer version); OK when it is.
  Status status;
};

// One commit slot (page 1 = slot A, page 2 = slot B). Fields are decoded even when the checksum fails, for
// diagnosis; only a `valid` slot can be current.
struct InspectedSlot {
  uint64_t page_id = 0;
  char name = '?';       // 'A' or 'B'
  bool present = false;  // the file holds the whole page
  bool blank = false;    // all zero: never written
  bool checksum_ok = false;
  bool valid = false;     // checksum, kind and counts are all right
  bool complete = false;  // valid, and its commit passes recovery's checks (verify list, file length)
  bool current = false;   // the commit recovery would open (see Inspector::current_slot)
  uint64_t txn_id = 0;
  uint8_t kind = 0;
  bool synced_before_slot = false;
  uint32_t verify_count = 0;
  uint64_t page_count = 0;
  uint64_t catalog_root = 0;
  uint64_t freemap_directory = 0;
  uint64_t free_pages = 0;
  std::vector<uint64_t> verify_list;  // only when valid
  // Why the slot is invalid or incomplete; OK otherwise.
  Status status;
};

// A table as the catalog of the current commit records it, and what walking its tree found.
struct InspectedTable {
  std::string name;
  uint64_t root = 0;     // 0 = empty
  uint64_t entries = 0;  // the catalog record's key count
  uint64_t counted = 0;  // keys actually reached in the tree (short of entries when damaged)
  uint64_t leaf_pages = 0;
  uint64_t branch_pages = 0;
  uint64_t overflow_pages = 0;      // runs of values, keys and separators
  uint64_t key_overflow_pages = 0;  // of overflow_pages, the runs of long keys and separators
  uint32_t depth = 0;               // a lone leaf is 1
  Status status;                    // the first damage found in this table; OK when none
};

// One entry of a leaf (key -> value) or a branch (key -> child).
struct InspectedEntry {
  // The whole key. For a key longer than the inline limit, read from its overflow run; when that run cannot
  // be read, only the prefix the entry stores, and key_status says why.
  std::string key;
  bool key_overflow = false;       // the key lives whole on an overflow run; the entry stores a prefix
  uint64_t key_overflow_page = 0;  // key_overflow: first page of the key's run
  uint64_t key_len = 0;            // the whole key's length either way
  Status key_status;               // damage reading the key's run (naming its page); OK otherwise
  std::string value;               // leaf inline value
  bool overflow = false;           // leaf: value lives in an overflow run
  uint64_t overflow_page = 0;      // leaf overflow: first page of the run
  uint64_t value_len = 0;          // leaf: length of the value either way
  uint64_t child = 0;              // branch: child holding keys >= key
};

// One page decoded. Which members mean something depends on `kind` (see each comment).
struct InspectedPage {
  uint64_t id = 0;
  uint32_t page_size = 0;
  std::string kind_name;  // "super-header", "commit slot", "leaf", ..., "unknown"
  uint8_t kind = 0;       // raw kind byte (pages >= 1)
  // Common header (pages >= 1).
  uint64_t stored_checksum = 0;
  bool checksum_ok = false;  // for an overflow run: over the whole run
  uint64_t txn_id = 0;
  uint8_t flags = 0;
  uint16_t count = 0;
  uint32_t aux = 0;
  std::optional<InspectedHeader> header;  // page 0
  std::optional<InspectedSlot> slot;      // pages 1 and 2
  // Leaf and branch: the structural check (offsets in bounds, keys in order); entries are decoded only when
  // it passes.
  Status structure;
  std::vector<InspectedEntry> entries;
  uint64_t leftmost_child = 0;          // branch
  uint64_t overflow_length = 0;         // overflow: value bytes in the run
  uint32_t run_pages = 0;               // overflow: pages in the run (aux)
  uint64_t bitmap_used = 0;             // freemap bitmap: bits set (pages in use)
  uint64_t bitmap_bits = 0;             // freemap bitmap: bits the page holds
  uint64_t directory_next = 0;          // freemap directory: next directory page (0 = last)
  std::vector<uint64_t> directory_ids;  // freemap directory: bitmap page ids
};

// Everything rocky-inspect prints by default.
struct InspectionReport {
  InspectedHeader header;
  std::vector<InspectedSlot> slots;  // A and B; empty when the header says the file is not a rocky database
  int current_slot = -1;             // index into slots, -1 when no commit is usable
  // Recovery's verdict, made by the same engine function as Database::Open's: OK when Open would open the
  // file, else the error Open would return (not a rocky database, damaged header, truncated, no usable
  // commit, a read error).
  Status open_status;
  // The file holds no commit (zero length, all zero, or a creation cut short): Open reads it as an empty
  // database and a writer initialises it. Healthy, with a warning.
  bool uncommitted = false;
  // The newest commit, which recovery rejects: Open falls back to current_slot's commit and reports this
  // (OpenReport::discarded). Makes the file unhealthy: an acknowledged commit may be lost.
  std::optional<DiscardedCommit> discarded;
  Status catalog_status;  // damage in the catalog tree itself; OK when none
  std::vector<InspectedTable> tables;
  // From a full integrity walk of the current commit (every page read from disk). Complete only when
  // integrity is OK; otherwise counts come from the per-table walks and free/fragmentation are unknown.
  Stats stats;
  bool stats_complete = false;
  Status integrity;  // the first problem the integrity walk found; OK when none
  // Every problem found, one sentence each, naming the page or table. Empty means healthy.
  std::vector<std::string> problems;
  // Problems that do not make the file damaged (e.g. a torn older slot, a file without a commit).
  std::vector<std::string> warnings;
  bool healthy() const { return problems.empty(); }
};

// Called for each key in order; return false to stop.
using InspectVisitor = std::function<bool(std::string_view key, std::string_view value)>;

class Inspector {
 public:
  // Opens `path` read-only through `env`, reads the header and slots and makes recovery's verdict (which
  // commit is current) with the engine's one verdict function, so it always agrees with Database::Open. Fails
  // only when the file cannot be opened or sized; a damaged or foreign file opens and reports its damage
  // through header(), slots() and Inspect().
  // Safe on a file a Database of this process has open: its descriptor is then kept open until that Database
  // closes, as closing it would drop the Database's POSIX record locks.
  static Result<std::unique_ptr<Inspector>> Open(const std::string& path, Env* env = Env::Default());

  ~Inspector();
  Inspector(const Inspector&) = delete;
  Inspector& operator=(const Inspector&) = delete;

  const InspectedHeader& header() const;
  const std::vector<InspectedSlot>& slots() const;
  // Index into slots() of the commit recovery would open, or -1 when Open would open none (no usable commit,
  // a truncated file, a read error, no commit at all). When only the super-header is damaged (Open refuses
  // the file for that), the commit recovery would open were the header intact, so the tables can still be
  // shown.
  int current_slot() const;

  // Decodes page `id` (0 = super-header, 1-2 = slots). Fails only when the page lies past the end of the file
  // or cannot be read; damage inside the page is reported in its fields.
  Result<InspectedPage> DescribePage(uint64_t id);

  // The tables of the current commit with their entry counts, each walked for damage. Fails when there is no
  // usable commit or the catalog cannot be read at all; a damaged table is listed with its status.
  Result<std::vector<InspectedTable>> ListTables();

  // Visits every key and value of table `name` in key order (overflow values are read in full). Stops at the
  // first damage and returns it naming the page; keys visited before it were intact. NotFound when the
  // current commit has no such table.
  Status WalkTable(std::string_view name, const InspectVisitor& visitor);

  // Header, slots, tables, statistics and the integrity verdict, going as far as the damage allows.
  InspectionReport Inspect();

 private:
  struct Impl;
  explicit Inspector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rocky::engine
