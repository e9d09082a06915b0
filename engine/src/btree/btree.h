// Copy-on-write B+tree operations over one tree (a table, or the catalog of tables).
//
// A tree is identified by its root page id (0 = empty). Lookups read pages through a PageSource (a snapshot);
// changes go through a PageSink (a write transaction), which copies a committed page to a new id the first
// time it is changed in the transaction, so committed pages are never modified in place.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "btree/node.h"
#include "page/page.h"
#include "rocky/engine/status.h"

namespace rocky::engine {

// Where trees read pages from. Implementations verify checksums and node structure before returning a page.
class PageSource {
 public:
  virtual ~PageSource() = default;
  virtual uint32_t page_size() const = 0;
  // A leaf or branch page, checksum- and structure-checked.
  virtual Result<PageRef> ReadNode(uint64_t id) = 0;
  // The same page's bytes, for searches that only read: valid while the snapshot lives and *hold is kept.
  // *hold is set when the bytes belong to a page object (and left empty for a page of the file's read-only
  // map, which needs no object, no reference count and no lock per access). This default reads the page.
  virtual Result<const char*> ReadNodeBytes(uint64_t id, PageRef* hold) {
    ROCKY_ASSIGN_OR_RETURN(*hold, ReadNode(id));
    return static_cast<const char*>((*hold)->data());
  }
  // A whole overflow run, checksum-checked.
  virtual Result<PageRef> ReadOverflow(uint64_t first) = 0;
};

// Where trees write pages to: a write transaction. Not thread-safe.
class PageSink : public PageSource {
 public:
  // The page itself when this transaction already owns it, else a copy under a newly allocated id (the old
  // id is freed for reuse once no snapshot needs it). The caller must repoint the parent at the returned id.
  virtual Result<PageRef> WritableNode(uint64_t id) = 0;
  // A zeroed page under a newly allocated id, owned by the transaction.
  virtual PageRef NewNode() = 0;
  virtual void FreeNode(uint64_t id) = 0;
  // Stores value (or a whole long key) on a new overflow run; returns its first page.
  virtual uint64_t WriteOverflow(std::string_view value) = 0;
  // Frees the run at first that holds value_len bytes (a value, or a key of that length).
  virtual void FreeOverflow(uint64_t first, uint64_t value_len) = 0;
};

struct TreeRoot {
  uint64_t root = 0;  // 0: empty tree
  uint64_t len = 0;   // number of keys
};

// Deepest tree the engine will descend; deeper means a corrupt file (for example a cycle of pages).
inline constexpr int kMaxTreeDepth = 48;

// True and *value set (when value != nullptr) when key is present.
Result<bool> TreeGet(PageSource& src, uint64_t root, std::string_view key, std::string* value);
// Inserts or replaces; returns true when it replaced. Updates tree.root and tree.len.
Result<bool> TreeInsert(PageSink& sink, TreeRoot& tree, std::string_view key, std::string_view value);
// Returns true when the key existed. Updates tree.root and tree.len.
Result<bool> TreeRemove(PageSink& sink, TreeRoot& tree, std::string_view key);
// Frees every page of the tree (tree pages and overflow runs).
Status TreeFreeAll(PageSink& sink, uint64_t root);

// Reads the value of a leaf entry (inline or from its overflow run) into *value.
Status LoadValue(PageSource& src, const LeafEntry& entry, std::string* value);

// --- Keys that may live on overflow runs (format-spec: "Keys longer than the inline limit"). ---
// The run holding an overflow key, checked against the entry's reference (length and stored prefix); the key
// is at run->data() + kOverflowDataOffset, key.len bytes.
Result<PageRef> ReadKeyRun(PageSource& src, const StoredKey& key);
// The whole key into *out (reading its run only when the key overflows).
Status LoadKey(PageSource& src, const StoredKey& key, std::string* out);
// Sign of (the whole key that `key` stands for) compared with target: the stored bytes decide unless they are
// an equal prefix of target, and only then is the run read.
Result<int> CompareKey(PageSource& src, const StoredKey& key, std::string_view target);
// Index of the first leaf entry whose key >= key; *found when equal.
Result<int> LeafLowerBound(PageSource& src, const NodePage& node, std::string_view key, bool* found);
// Index of the child of a branch that may hold key (the number of separators <= key).
Result<int> BranchChildFor(PageSource& src, const NodePage& node, std::string_view key);

}  // namespace rocky::engine
