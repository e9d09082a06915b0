#include "btree/btree.h"

#include <cstring>
#include <vector>

#include "btree/node.h"

namespace rocky::engine {

namespace {

struct PathStep {
  PageRef page;  // a writable branch
  int child;     // index of the child we descended into
};

Status TooDeep() { return Status::Corruption("tree deeper than " + std::to_string(kMaxTreeDepth) + " levels"); }

// Descends from tree.root to the leaf that may hold key, making every page on the way writable and repointing
// parents at the copies. On return `path` holds the branches, `leaf` the writable leaf.
Status DescendWritable(PageSink& sink, TreeRoot& tree, std::string_view key, std::vector<PathStep>& path,
                       PageRef& leaf) {
  ROCKY_ASSIGN_OR_RETURN(PageRef node, sink.WritableNode(tree.root));
  tree.root = node->id;
  while (GetPageKind(node->data()) == PageKind::kBranch) {
    if (path.size() >= kMaxTreeDepth) return TooDeep();
    NodePage branch(node->data(), sink.page_size());
    const int idx = branch.BranchChildFor(key);
    const uint64_t child_id = branch.branch_child(idx);
    ROCKY_ASSIGN_OR_RETURN(PageRef child, sink.WritableNode(child_id));
    if (child->id != child_id) branch.set_branch_child(idx, child->id);
    path.push_back({node, idx});
    node = std::move(child);
  }
  leaf = std::move(node);
  return Status::OK();
}

std::vector<std::string> RawEntries(const NodePage& node) {
  std::vector<std::string> out;
  out.reserve(node.count() + 1);
  for (int i = 0; i < node.count(); ++i) out.emplace_back(node.raw_entry(i));
  return out;
}

std::vector<std::string_view> Views(const std::vector<std::string>& v, size_t begin, size_t end) {
  return {v.begin() + static_cast<std::ptrdiff_t>(begin), v.begin() + static_cast<std::ptrdiff_t>(end)};
}

std::string_view RawLeafKey(const std::string& raw) {
  const uint16_t klen = DecodeU16(raw.data());
  const size_t header = raw[2] == kLeafEntryOverflow ? kLeafOverflowEntryHeader : kLeafInlineEntryHeader;
  return {raw.data() + header, klen};
}

// Where to cut a full node holding `entries`, of which entries[inserted] is the new one: appends and
// prepends leave the old node full (sequential loads then fill pages), otherwise split by bytes in half.
size_t SplitPoint(const std::vector<std::string>& entries, size_t inserted) {
  if (inserted == entries.size() - 1) return entries.size() - 1;
  if (inserted == 0) return 1;
  size_t total = 0;
  for (const auto& e : entries) total += e.size() + 2;
  size_t acc = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    acc += entries[i].size() + 2;
    if (acc >= total / 2) return std::max<size_t>(1, std::min(i + 1, entries.size() - 1));
  }
  return entries.size() / 2;
}

// Inserts (separator -> right) into the parent at the top of path, splitting upwards as needed.
Status InsertIntoParent(PageSink& sink, TreeRoot& tree, std::vector<PathStep>& path, uint64_t left_id,
                        std::string separator, uint64_t right_id) {
  const uint32_t ps = sink.page_size();
  for (;;) {
    if (path.empty()) {
      PageRef root = sink.NewNode();
      NodePage::InitBranch(root->data(), ps, left_id);
      NodePage(root->data(), ps).InsertRaw(0, EncodeBranchEntry(separator, right_id));
      tree.root = root->id;
      return Status::OK();
    }
    PathStep step = path.back();
    path.pop_back();
    NodePage parent(step.page->data(), ps);
    std::string entry = EncodeBranchEntry(separator, right_id);
    if (parent.InsertRaw(step.child, entry)) return Status::OK();

    // Split the branch: the middle key moves up.
    std::vector<std::string> entries = RawEntries(parent);
    entries.insert(entries.begin() + step.child, std::move(entry));
    const uint64_t leftmost = parent.branch_child(0);
    const size_t mid = std::max<size_t>(1, std::min(SplitPoint(entries, step.child), entries.size() - 2));
    const std::string up = entries[mid];
    const uint16_t up_klen = DecodeU16(up.data());
    const uint64_t up_child = DecodeU64(up.data() + 2);
    BuildNode(step.page->data(), ps, PageKind::kBranch, leftmost, Views(entries, 0, mid));
    PageRef right = sink.NewNode();
    BuildNode(right->data(), ps, PageKind::kBranch, up_child, Views(entries, mid + 1, entries.size()));
    left_id = step.page->id;
    separator.assign(up.data() + kBranchEntryHeader, up_klen);
    right_id = right->id;
  }
}

// After a removal left `node` (reached through path) small or empty, merges it with a sibling while the two
// fit in one page, climbing as parents shrink; collapses a root branch with a single child.
Status Rebalance(PageSink& sink, TreeRoot& tree, std::vector<PathStep>& path, PageRef node) {
  const uint32_t ps = sink.page_size();
  for (;;) {
    NodePage n(node->data(), ps);
    if (path.empty()) {  // node is the root
      if (n.count() == 0) {
        tree.root = n.is_leaf() ? 0 : n.branch_child(0);
        sink.FreeNode(node->id);
      }
      return Status::OK();
    }
    if (n.count() > 0 && n.used_bytes() >= n.capacity() / 4) return Status::OK();

    PathStep step = path.back();
    NodePage parent(step.page->data(), ps);
    // Merge with the right sibling or, when there is none or the two do not fit in one page, with the left
    // one: looking one way only leaves every node small after deletions in key order (each node shrinks while
    // its right sibling is still full, and never looks back).
    int left_idx = -1;
    PageKind kind = PageKind::kFree;
    uint64_t leftmost = 0;
    std::vector<std::string> entries;
    for (const int candidate : {step.child, step.child - 1}) {
      if (candidate < 0 || candidate >= parent.count()) continue;  // no such sibling (or a corrupt lone child)
      PageRef l_page = node;
      PageRef r_page = node;
      if (candidate == step.child) {
        ROCKY_ASSIGN_OR_RETURN(r_page, sink.ReadNode(parent.branch_child(candidate + 1)));
      } else {
        ROCKY_ASSIGN_OR_RETURN(l_page, sink.ReadNode(parent.branch_child(candidate)));
      }
      NodePage l(l_page->data(), ps);
      NodePage r(r_page->data(), ps);
      if (l.kind() != r.kind()) {
        return Status::Corruption("page " + std::to_string(r_page->id) + ": sibling kinds differ");
      }
      std::vector<std::string> merged = RawEntries(l);
      uint64_t merged_leftmost = 0;
      if (!l.is_leaf()) {
        merged_leftmost = l.branch_child(0);
        merged.push_back(EncodeBranchEntry(parent.branch_key(candidate), r.branch_child(0)));
      }
      for (int i = 0; i < r.count(); ++i) merged.emplace_back(r.raw_entry(i));
      size_t need = 0;
      for (const auto& e : merged) need += e.size() + 2;
      if (need > l.capacity()) continue;  // too full to merge
      left_idx = candidate;
      kind = l.kind();
      leftmost = merged_leftmost;
      entries = std::move(merged);
      break;
    }
    if (left_idx < 0) return Status::OK();  // siblings too full to merge; leave the node small

    // The merged node replaces the left one (made writable only now), the right one is freed.
    PageRef left = node;
    uint64_t right_id = node->id;
    if (left_idx == step.child) {
      right_id = parent.branch_child(left_idx + 1);
    } else {
      const uint64_t left_id = parent.branch_child(left_idx);
      ROCKY_ASSIGN_OR_RETURN(left, sink.WritableNode(left_id));
      if (left->id != left_id) parent.set_branch_child(left_idx, left->id);
    }
    BuildNode(left->data(), ps, kind, leftmost, Views(entries, 0, entries.size()));
    sink.FreeNode(right_id);
    parent.RemoveAt(left_idx);  // drops key left_idx and the child to its right (the freed page)
    path.pop_back();
    node = step.page;
  }
}

}  // namespace

Status LoadValue(PageSource& src, const LeafEntry& entry, std::string* value) {
  if (!entry.overflow) {
    value->assign(entry.inline_value.data(), entry.inline_value.size());
    return Status::OK();
  }
  ROCKY_ASSIGN_OR_RETURN(PageRef run, src.ReadOverflow(entry.overflow_page));
  const uint64_t stored = DecodeU64(run->data() + kOverflowLengthOffset);
  if (stored != entry.value_len) {
    return Status::Corruption("overflow run at page " + std::to_string(entry.overflow_page) +
                              ": length differs from its leaf entry");
  }
  value->assign(run->data() + kOverflowDataOffset, stored);
  return Status::OK();
}

Result<bool> TreeGet(PageSource& src, uint64_t root, std::string_view key, std::string* value) {
  if (root == 0) return false;
  uint64_t id = root;
  for (int depth = 0;; ++depth) {
    if (depth > kMaxTreeDepth) return TooDeep();
    ROCKY_ASSIGN_OR_RETURN(PageRef page, src.ReadNode(id));
    NodePage node(page->data(), src.page_size());
    if (!node.is_leaf()) {
      id = node.branch_child(node.BranchChildFor(key));
      continue;
    }
    bool found = false;
    const int idx = node.LeafLowerBound(key, &found);
    if (!found) return false;
    if (value != nullptr) ROCKY_RETURN_IF_ERROR(LoadValue(src, node.leaf_entry(idx), value));
    return true;
  }
}

Result<bool> TreeInsert(PageSink& sink, TreeRoot& tree, std::string_view key, std::string_view value) {
  const uint32_t ps = sink.page_size();
  auto encode = [&]() {
    if (FitsInline(key.size(), value.size(), ps)) return EncodeLeafInline(key, value);
    return EncodeLeafOverflow(key, sink.WriteOverflow(value), value.size());
  };
  if (tree.root == 0) {
    PageRef leaf = sink.NewNode();
    NodePage::InitLeaf(leaf->data(), ps);
    NodePage(leaf->data(), ps).InsertRaw(0, encode());
    tree.root = leaf->id;
    tree.len = 1;
    return false;
  }
  std::vector<PathStep> path;
  PageRef leaf;
  ROCKY_RETURN_IF_ERROR(DescendWritable(sink, tree, key, path, leaf));
  NodePage node(leaf->data(), ps);
  bool found = false;
  const int idx = node.LeafLowerBound(key, &found);
  if (found) {
    const LeafEntry old = node.leaf_entry(idx);
    if (old.overflow) sink.FreeOverflow(old.overflow_page, old.value_len);
    node.RemoveAt(idx);
  }
  std::string entry = encode();
  if (!found) ++tree.len;
  if (node.InsertRaw(idx, entry)) return found;

  std::vector<std::string> entries = RawEntries(node);
  entries.insert(entries.begin() + idx, std::move(entry));
  const size_t cut = SplitPoint(entries, static_cast<size_t>(idx));
  BuildNode(leaf->data(), ps, PageKind::kLeaf, 0, Views(entries, 0, cut));
  PageRef right = sink.NewNode();
  BuildNode(right->data(), ps, PageKind::kLeaf, 0, Views(entries, cut, entries.size()));
  ROCKY_RETURN_IF_ERROR(
      InsertIntoParent(sink, tree, path, leaf->id, std::string(RawLeafKey(entries[cut])), right->id));
  return found;
}

Result<bool> TreeRemove(PageSink& sink, TreeRoot& tree, std::string_view key) {
  ROCKY_ASSIGN_OR_RETURN(bool present, TreeGet(sink, tree.root, key, nullptr));
  if (!present) return false;
  std::vector<PathStep> path;
  PageRef leaf;
  ROCKY_RETURN_IF_ERROR(DescendWritable(sink, tree, key, path, leaf));
  NodePage node(leaf->data(), sink.page_size());
  bool found = false;
  const int idx = node.LeafLowerBound(key, &found);
  if (!found) return Status::Corruption("key vanished between lookup and removal");
  const LeafEntry old = node.leaf_entry(idx);
  if (old.overflow) sink.FreeOverflow(old.overflow_page, old.value_len);
  node.RemoveAt(idx);
  --tree.len;
  ROCKY_RETURN_IF_ERROR(Rebalance(sink, tree, path, leaf));
  return true;
}

Status TreeFreeAll(PageSink& sink, uint64_t root) {
  if (root == 0) return Status::OK();
  struct Item {
    uint64_t id;
    int depth;
  };
  std::vector<Item> stack{{root, 0}};
  while (!stack.empty()) {
    Item item = stack.back();
    stack.pop_back();
    if (item.depth > kMaxTreeDepth) return TooDeep();
    ROCKY_ASSIGN_OR_RETURN(PageRef page, sink.ReadNode(item.id));
    NodePage node(page->data(), sink.page_size());
    if (node.is_leaf()) {
      for (int i = 0; i < node.count(); ++i) {
        const LeafEntry e = node.leaf_entry(i);
        if (e.overflow) sink.FreeOverflow(e.overflow_page, e.value_len);
      }
    } else {
      for (int i = 0; i <= node.count(); ++i) stack.push_back({node.branch_child(i), item.depth + 1});
    }
    sink.FreeNode(item.id);
  }
  return Status::OK();
}

}  // namespace rocky::engine
