#include "btree/tree_cursor.h"

namespace rocky::engine {

TreeCursor::TreeCursor(PageSource* src, uint64_t root, KeyRange range, std::string context)
    : src_(src), root_(root), range_(std::move(range)), context_(std::move(context)) {}

void TreeCursor::Fail(Status s) {
  status_ = context_.empty() ? s : s.WithContext(context_);
  valid_ = false;
  stack_.clear();
}

Result<TreeCursor::Level> TreeCursor::Read(uint64_t id, int index) {
  Level level{nullptr, nullptr, index};
  ROCKY_ASSIGN_OR_RETURN(level.data, src_->ReadNodeBytes(id, &level.hold));
  return level;
}

void TreeCursor::DescendTo(std::string_view target, bool forward) {
  stack_.clear();
  valid_ = false;
  if (!status_.ok() || root_ == 0) return;
  uint64_t id = root_;
  for (;;) {
    if (stack_.size() > kMaxTreeDepth) return Fail(Status::Corruption("tree too deep"));
    auto level = Read(id, 0);
    if (!level.ok()) return Fail(level.status());
    const NodePage node = Node(*level);
    if (!node.is_leaf()) {
      auto idx = BranchChildFor(*src_, node, target);
      if (!idx.ok()) return Fail(idx.status());
      level->index = idx.value();
      stack_.push_back(std::move(*level));
      id = node.branch_child(idx.value());
      continue;
    }
    bool found = false;
    auto lower = LeafLowerBound(*src_, node, target, &found);
    if (!lower.ok()) return Fail(lower.status());
    int idx = lower.value();
    if (!forward && !found) --idx;  // last key <= target
    level->index = idx;
    stack_.push_back(std::move(*level));
    break;
  }
  Settle(forward);
}

bool TreeCursor::DescendEdge(Edge edge) {
  for (;;) {
    if (stack_.size() > kMaxTreeDepth) {
      Fail(Status::Corruption("tree too deep"));
      return false;
    }
    const NodePage node = Node(stack_.back());
    if (node.is_leaf()) return true;
    auto child = Read(node.branch_child(stack_.back().index), 0);
    if (!child.ok()) {
      Fail(child.status());
      return false;
    }
    const NodePage c = Node(*child);
    child->index = edge == Edge::kFirst ? 0 : (c.is_leaf() ? c.count() - 1 : c.count());
    stack_.push_back(std::move(*child));
  }
}

bool TreeCursor::StepLeaf(bool forward) {
  // Climb to the nearest branch that has a sibling subtree in the direction of travel.
  stack_.pop_back();
  while (!stack_.empty()) {
    Level& top = stack_.back();
    const NodePage node = Node(top);
    if (forward ? top.index < node.count() : top.index > 0) {
      top.index += forward ? 1 : -1;
      return DescendEdge(forward ? Edge::kFirst : Edge::kLast);
    }
    stack_.pop_back();
  }
  return false;
}

void TreeCursor::Settle(bool forward) {
  valid_ = false;
  for (;;) {
    if (stack_.empty()) return;
    Level& leaf = stack_.back();
    const NodePage node = Node(leaf);
    if (leaf.index < 0 || leaf.index >= node.count()) {
      if (!StepLeaf(forward)) return;
      // After stepping, a backward move lands on the last entry (DescendEdge set it), a forward one on 0.
      continue;
    }
    const LeafEntry e = node.leaf_entry(leaf.index);
    // The cursor hands out whole keys, so an overflow key is read here once and the bounds compared with it.
    if (e.key.overflow) {
      Status s = LoadKey(*src_, e.key, &overflow_key_);
      if (!s.ok()) return Fail(s);
      key_ = overflow_key_;
    } else {
      key_ = e.key.bytes;
    }
    if (range_.lower && key_ < *range_.lower) {
      if (!forward) return;  // walked below the range
      ++leaf.index;
      continue;
    }
    if (range_.upper && key_ >= *range_.upper) {
      if (forward) return;  // walked past the range
      --leaf.index;
      continue;
    }
    if (e.overflow) {
      Status s = LoadValue(*src_, e, &overflow_value_);
      if (!s.ok()) return Fail(s);
      value_ = overflow_value_;
    } else {
      value_ = e.inline_value;
    }
    valid_ = true;
    return;
  }
}

void TreeCursor::SeekToFirst() {
  if (range_.lower) return DescendTo(*range_.lower, true);
  stack_.clear();
  valid_ = false;
  if (!status_.ok() || root_ == 0) return;
  auto level = Read(root_, 0);
  if (!level.ok()) return Fail(level.status());
  stack_.push_back(std::move(*level));
  if (DescendEdge(Edge::kFirst)) Settle(true);
}

void TreeCursor::SeekToLast() {
  if (range_.upper) {
    DescendTo(*range_.upper, false);
    if (valid_ && key_ == *range_.upper) Prev();  // upper is exclusive
    return;
  }
  stack_.clear();
  valid_ = false;
  if (!status_.ok() || root_ == 0) return;
  auto level = Read(root_, 0);
  if (!level.ok()) return Fail(level.status());
  const NodePage node = Node(*level);
  level->index = node.is_leaf() ? node.count() - 1 : node.count();
  stack_.push_back(std::move(*level));
  if (DescendEdge(Edge::kLast)) Settle(false);
}

void TreeCursor::Seek(std::string_view target) {
  if (range_.lower && target < *range_.lower) target = *range_.lower;
  DescendTo(target, true);
}

void TreeCursor::SeekForPrev(std::string_view target) {
  if (range_.upper && target >= *range_.upper) return SeekToLast();
  DescendTo(target, false);
}

void TreeCursor::Next() {
  if (!valid_) return;
  ++stack_.back().index;
  Settle(true);
}

void TreeCursor::Prev() {
  if (!valid_) return;
  --stack_.back().index;
  Settle(false);
}

}  // namespace rocky::engine
