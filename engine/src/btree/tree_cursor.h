// TreeCursor: ordered, bidirectional iteration over one tree within a KeyRange.
//
// Keeps the path from the root to the current leaf (each page's bytes, pinned when they belong to a page
// object), so moving to a neighbouring leaf climbs only as far as needed. Holds no locks; the snapshot behind
// its PageSource must outlive it.
#pragma once

#include <string>
#include <vector>

#include "btree/btree.h"
#include "btree/node.h"
#include "rocky/engine/db.h"

namespace rocky::engine {

class TreeCursor final : public Cursor {
 public:
  // `context` prefixes error messages ("table 'orders'"). Requires: src outlives the cursor.
  TreeCursor(PageSource* src, uint64_t root, KeyRange range, std::string context);

  bool Valid() const override { return valid_; }
  void SeekToFirst() override;
  void SeekToLast() override;
  void Seek(std::string_view target) override;
  void SeekForPrev(std::string_view target) override;
  void Next() override;
  void Prev() override;
  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_; }
  Status status() const override { return status_; }

 private:
  struct Level {
    const char* data;  // the page's bytes (read only), valid while `hold` is kept (see ReadNodeBytes)
    PageRef hold;      // empty for a page of the file's map
    int index;
  };
  enum class Edge { kFirst, kLast };

  // Descends from the root toward target; at the leaf positions at the first key >= target (forward) or
  // the last key <= target (backward).
  void DescendTo(std::string_view target, bool forward);
  // Descends from the node at the top of the stack to its first or last leaf entry.
  bool DescendEdge(Edge edge);
  bool StepLeaf(bool forward);  // moves to the neighbouring leaf entry across leaves
  // Loads key/value at the current leaf position and applies the range; sets valid_.
  void Settle(bool forward);
  void Fail(Status s);
  // The level for page id, positioned at index.
  Result<Level> Read(uint64_t id, int index);
  NodePage Node(const Level& level) const {
    return NodePage(const_cast<char*>(level.data), src_->page_size());
  }

  PageSource* src_;
  uint64_t root_;
  KeyRange range_;
  std::string context_;
  std::vector<Level> stack_;
  bool valid_ = false;
  Status status_;
  std::string_view key_;
  std::string_view value_;
  std::string overflow_key_;    // owns key_ when the key lives on an overflow run
  std::string overflow_value_;  // owns value_ when it came from an overflow run
};

}  // namespace rocky::engine
