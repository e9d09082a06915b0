#include "btree/btree.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "btree/node.h"

namespace rocky::engine {

namespace {

struct PathStep {
  PageRef page;  // a writable branch
  int child;     // index of the child we descended into
};

Status TooDeep() {
  return Status::Corruption("tree deeper than " + std::to_string(kMaxTreeDepth) + " levels");
}

// Descends from tree.root to the leaf that may hold key, making every page on the way writable and repointing
// parents at the copies. On return `path` holds the branches, `leaf` the writable leaf.
Status DescendWritable(PageSink& sink, TreeRoot& tree, std::string_view key, std::vector<PathStep>& path,
                       PageRef& leaf) {
  ROCKY_ASSIGN_OR_RETURN(PageRef node, sink.WritableNode(tree.root));
  tree.root = node->id;
  while (GetPageKind(node->data()) == PageKind::kBranch) {
    if (path.size() >= kMaxTreeDepth) return TooDeep();
    NodePage branch(node->data(), sink.page_size());
    ROCKY_ASSIGN_OR_RETURN(const int idx, BranchChildFor(sink, branch, key));
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

size_t CommonPrefix(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  return static_cast<size_t>(
      std::mismatch(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n), b.begin()).first - a.begin());
}

// The branch entry (pointing at child) that separates a split leaf whose last key is l from its new right
// sibling whose first key is r: the shortest prefix of r that is greater than l. Every key of the left node
// is
// <= l < separator <= r <= every key of the right one, so it routes exactly as r would, and a long shared
// prefix is the only thing that makes it long. The whole keys are read only when the stored bytes do not
// decide; a separator longer than the inline limit gets its own run (a branch entry owns its run).
Result<std::string> SeparatorEntry(PageSink& sink, const StoredKey& l, const StoredKey& r, uint64_t child) {
  std::string l_whole;
  std::string r_whole;
  std::string_view lv = l.bytes;
  std::string_view rv = r.bytes;
  size_t cp = CommonPrefix(lv, rv);
  if (cp == std::min(lv.size(), rv.size()) && (l.overflow || r.overflow)) {
    if (l.overflow) {
      ROCKY_RETURN_IF_ERROR(LoadKey(sink, l, &l_whole));
      lv = l_whole;
    }
    if (r.overflow) {
      ROCKY_RETURN_IF_ERROR(LoadKey(sink, r, &r_whole));
      rv = r_whole;
    }
    cp = CommonPrefix(lv, rv);
  }
  if (cp >= rv.size() ||
      (cp < lv.size() && static_cast<unsigned char>(lv[cp]) > static_cast<unsigned char>(rv[cp]))) {
    return Status::Corruption("keys out of order in a leaf being split");
  }
  const std::string_view sep = rv.substr(0, cp + 1);
  const uint32_t ps = sink.page_size();
  if (sep.size() <= InlineKeyLimitFor(ps)) return EncodeBranchEntry(StoredKey::Inline(sep), child);
  const uint64_t run = sink.WriteOverflow(sep);
  return EncodeBranchEntry(StoredKey{sep.substr(0, KeyPrefixLen(ps)), true, run, sep.size()}, child);
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

// Inserts sep_entry (a branch entry: separator -> the new right node) into the parent at the top of path,
// splitting upwards as needed. left_id is the node the separator's right node was split from. Entries move
// between branches as raw bytes, so an overflow separator's run moves with its entry and is never copied.
Status InsertIntoParent(PageSink& sink, TreeRoot& tree, std::vector<PathStep>& path, uint64_t left_id,
                        std::string sep_entry) {
  const uint32_t ps = sink.page_size();
  for (;;) {
    if (path.empty()) {
      PageRef root = sink.NewNode();
      NodePage::InitBranch(root->data(), ps, left_id);
      NodePage(root->data(), ps).InsertRaw(0, sep_entry);
      tree.root = root->id;
      return Status::OK();
    }
    PathStep step = path.back();
    path.pop_back();
    NodePage parent(step.page->data(), ps);
    if (parent.InsertRaw(step.child, sep_entry)) return Status::OK();

    // Split the branch: the middle entry moves up, its child becoming the right node's leftmost.
    std::vector<std::string> entries = RawEntries(parent);
    entries.insert(entries.begin() + step.child, std::move(sep_entry));
    const uint64_t leftmost = parent.branch_child(0);
    const size_t mid = std::max<size_t>(1, std::min(SplitPoint(entries, step.child), entries.size() - 2));
    std::string up = entries[mid];
    const uint64_t up_child = DecodeU64(up.data() + 2);
    BuildNode(step.page->data(), ps, PageKind::kBranch, leftmost, Views(entries, 0, mid));
    PageRef right = sink.NewNode();
    BuildNode(right->data(), ps, PageKind::kBranch, up_child, Views(entries, mid + 1, entries.size()));
    left_id = step.page->id;
    SetRawBranchChild(up, right->id);
    sep_entry = std::move(up);
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
    if (n.count() > 0 && n.UsesAtLeast(n.capacity() / 4)) return Status::OK();

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
      if (candidate < 0 || candidate >= parent.count())
        continue;  // no such sibling (or a corrupt lone child)
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
        // The parent's separator comes down between the two (with its run, if any, which it keeps owning).
        merged_leftmost = l.branch_child(0);
        std::string down(parent.raw_entry(candidate));
        SetRawBranchChild(down, r.branch_child(0));
        merged.push_back(std::move(down));
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
    if (kind == PageKind::kLeaf) {
      // Merged leaves need no separator between them: its run (if any) goes with it. (A branch merge moved
      // the separator down into the merged node above.)
      const StoredKey sep = parent.branch_key(left_idx);
      if (sep.overflow) sink.FreeOverflow(sep.page, sep.len);
    }
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

Result<PageRef> ReadKeyRun(PageSource& src, const StoredKey& key) {
  const std::string where = "key overflow run at page " + std::to_string(key.page);
  // CheckNodeStructure guarantees this for every page read; checked again because the memcmp below relies on
  // it.
  if (key.len <= key.bytes.size())
    return Status::Corruption(where + ": key no longer than its stored prefix");
  ROCKY_ASSIGN_OR_RETURN(PageRef run, src.ReadOverflow(key.page));
  if (DecodeU64(run->data() + kOverflowLengthOffset) != key.len) {
    return Status::Corruption(where + ": length differs from its entry");
  }
  if (std::memcmp(run->data() + kOverflowDataOffset, key.bytes.data(), key.bytes.size()) != 0) {
    return Status::Corruption(where + ": the key differs from the prefix its entry stores");
  }
  return run;
}

Status LoadKey(PageSource& src, const StoredKey& key, std::string* out) {
  if (!key.overflow) {
    out->assign(key.bytes.data(), key.bytes.size());
    return Status::OK();
  }
  ROCKY_ASSIGN_OR_RETURN(PageRef run, ReadKeyRun(src, key));
  out->assign(run->data() + kOverflowDataOffset, key.len);
  return Status::OK();
}

Result<int> CompareKey(PageSource& src, const StoredKey& key, std::string_view target) {
  const size_t n = std::min(key.bytes.size(), target.size());
  const int c = n == 0 ? 0 : std::memcmp(key.bytes.data(), target.data(), n);
  if (c != 0) return c < 0 ? -1 : 1;
  if (!key.overflow)
    return key.bytes.size() < target.size() ? -1 : (key.bytes.size() == target.size() ? 0 : 1);
  // target starts like the stored prefix; when it is no longer than the prefix, it is a proper prefix of the
  // (longer) whole key.
  if (target.size() <= key.bytes.size()) return 1;
  ROCKY_ASSIGN_OR_RETURN(PageRef run, ReadKeyRun(src, key));
  const std::string_view whole(run->data() + kOverflowDataOffset, key.len);
  const int w = whole.compare(target);
  return w < 0 ? -1 : (w == 0 ? 0 : 1);
}

namespace {

// The first min(n, 8) bytes at p as a big-endian integer, zero-filled: comparing two of these compares those
// bytes in memcmp order. `readable` is how many bytes may be read at p (a key near the end of its page must
// not be read past it).
inline uint64_t Prefix64(const char* p, size_t n, size_t readable) {
  if (n >= 8 || readable >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    v = __builtin_bswap64(v);
    return n >= 8 ? v : (n == 0 ? 0 : v & ~(~uint64_t{0} >> (8 * n)));
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<unsigned char>(p[i])} << (56 - 8 * i);
  return v;
}

// A search key, prepared once per node search: most comparisons with stored keys are then decided by one
// integer comparison of their first eight bytes (random keys differ there), without a memcmp call.
class SearchKey {
 public:
  explicit SearchKey(std::string_view key)
      : key_(key), prefix_(Prefix64(key.data(), key.size(), key.size())) {}

  // <0, 0, >0 as the stored key (inline, `n` bytes at p, `readable` bytes readable there) compares with this
  // one: byte order, then the shorter first.
  int CompareStored(const char* p, size_t n, size_t readable) const {
    const uint64_t stored = Prefix64(p, n, readable);
    if (stored != prefix_) return stored < prefix_ ? -1 : 1;
    // The first min(n, |key|, 8) bytes are equal, and so are the zero fills: when either key has at most 8
    // bytes, it is a prefix of the other (or they are equal).
    if (n > 8 && key_.size() > 8) {
      const int c = std::memcmp(p + 8, key_.data() + 8, std::min(n, key_.size()) - 8);
      if (c != 0) return c;
    }
    return n < key_.size() ? -1 : (n == key_.size() ? 0 : 1);
  }
  std::string_view key() const { return key_; }

 private:
  std::string_view key_;
  uint64_t prefix_;
};

// Levels of a leaf's binary search whose probes are prefetched before it starts: 2^4 - 1 = 15 entries, every
// probe a leaf of up to 15 entries can need (random 24-byte keys with 150-byte values fill a 4 KiB leaf
// with about 14) and the first four levels of a bigger one. (Prefetching a branch's probes the same way, up
// front or the two next midpoints per probe, measured no gain: branches are few and stay cached.)
constexpr int kLeafPrefetchLevels = 4;

// Starts loading the entries the first `levels` probes of a lower-bound search over [lo, hi) may compare:
// the midpoint, then both halves' midpoints, and so on (2^levels - 1 at most). A leaf is usually a page the
// search has not touched before, so every probe would otherwise be a cache miss, each waiting for the one
// before it; prefetched, they are in flight together while the offsets are read. Needs the offsets to be
// inside the page (CheckNodeStructure); the prefetched addresses may be anything (a prefetch never faults).
void PrefetchProbes(const char* page, size_t offsets_start, int lo, int hi, int levels) {
  if (levels == 0 || lo >= hi) return;
  const int mid = (lo + hi) / 2;  // as LeafLowerBound picks it
  const char* e = page + DecodeU16(page + offsets_start + 2 * mid);
  __builtin_prefetch(e);
  // The key's first eight bytes, which decide most comparisons, may start on the next cache line.
  __builtin_prefetch(e + kLeafInlineEntryHeader + 7);
  PrefetchProbes(page, offsets_start, lo, mid, levels - 1);
  PrefetchProbes(page, offsets_start, mid + 1, hi, levels - 1);
}

}  // namespace

Result<int> LeafLowerBound(PageSource& src, const NodePage& node, std::string_view key, bool* found) {
  const SearchKey search(key);
  const char* page = node.data();
  const char* end = page + src.page_size();
  int lo = 0;
  int hi = node.count();
  *found = false;
  PrefetchProbes(page, kLeafOffsetsStart, lo, hi, kLeafPrefetchLevels);
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    const char* e = page + DecodeU16(page + kLeafOffsetsStart + 2 * mid);
    const uint16_t field = DecodeU16(e);
    int c = 0;
    if ((field & kKeyOverflowFlag) == 0) {
      const char* k = e + (e[2] == kLeafEntryOverflow ? kLeafOverflowEntryHeader : kLeafInlineEntryHeader);
      c = search.CompareStored(k, field & kKeyStoredMask, static_cast<size_t>(end - k));
    } else {
      ROCKY_ASSIGN_OR_RETURN(c, CompareKey(src, node.leaf_entry(mid).key, key));
    }
    if (c < 0) {
      lo = mid + 1;
    } else {
      if (c == 0) *found = true;
      hi = mid;
    }
  }
  // Keys in a leaf are distinct, so an equal key met during the search is the one at lo.
  return lo;
}

Result<int> BranchChildFor(PageSource& src, const NodePage& node, std::string_view key) {
  const SearchKey search(key);
  const char* page = node.data();
  const char* end = page + src.page_size();
  int lo = 0;
  int hi = node.count();
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    const char* e = page + DecodeU16(page + kBranchOffsetsStart + 2 * mid);
    const uint16_t field = DecodeU16(e);
    int c = 0;
    if ((field & kKeyOverflowFlag) == 0) {
      const char* k = e + kBranchEntryHeader;
      c = search.CompareStored(k, field & kKeyStoredMask, static_cast<size_t>(end - k));
    } else {
      ROCKY_ASSIGN_OR_RETURN(c, CompareKey(src, node.branch_key(mid), key));
    }
    if (c <= 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

Result<bool> TreeGet(PageSource& src, uint64_t root, std::string_view key, std::string* value) {
  if (root == 0) return false;
  uint64_t id = root;
  PageRef hold;  // stays empty for pages of the file's map
  for (int depth = 0;; ++depth) {
    if (depth > kMaxTreeDepth) return TooDeep();
    ROCKY_ASSIGN_OR_RETURN(const char* bytes, src.ReadNodeBytes(id, &hold));
    // Read only: NodePage's accessors take a mutable page for the writer's edits, none of which run here.
    const NodePage node(const_cast<char*>(bytes), src.page_size());
    if (!node.is_leaf()) {
      ROCKY_ASSIGN_OR_RETURN(const int child, BranchChildFor(src, node, key));
      id = node.branch_child(child);
      continue;
    }
    bool found = false;
    ROCKY_ASSIGN_OR_RETURN(const int idx, LeafLowerBound(src, node, key, &found));
    if (!found) return false;
    if (value != nullptr) ROCKY_RETURN_IF_ERROR(LoadValue(src, node.leaf_entry(idx), value));
    return true;
  }
}

Result<bool> TreeInsert(PageSink& sink, TreeRoot& tree, std::string_view key, std::string_view value) {
  const uint32_t ps = sink.page_size();
  // The key as a new entry stores it: whole, or its prefix and a run holding the whole key.
  auto new_key = [&]() -> StoredKey {
    if (key.size() <= InlineKeyLimitFor(ps)) return StoredKey::Inline(key);
    return StoredKey{key.substr(0, KeyPrefixLen(ps)), true, sink.WriteOverflow(key), key.size()};
  };
  auto encode = [&](const StoredKey& k) {
    if (FitsInline(k, value.size(), ps)) return EncodeLeafInline(k, value);
    return EncodeLeafOverflow(k, sink.WriteOverflow(value), value.size());
  };
  if (tree.root == 0) {
    PageRef leaf = sink.NewNode();
    NodePage::InitLeaf(leaf->data(), ps);
    NodePage(leaf->data(), ps).InsertRaw(0, encode(new_key()));
    tree.root = leaf->id;
    tree.len = 1;
    return false;
  }
  std::vector<PathStep> path;
  PageRef leaf;
  ROCKY_RETURN_IF_ERROR(DescendWritable(sink, tree, key, path, leaf));
  NodePage node(leaf->data(), ps);
  bool found = false;
  ROCKY_ASSIGN_OR_RETURN(const int idx, LeafLowerBound(sink, node, key, &found));
  std::string entry;
  if (found) {
    // A replace keeps the key's run (only the value changes), so a long key is never written twice.
    const LeafEntry old = node.leaf_entry(idx);
    if (old.overflow) sink.FreeOverflow(old.overflow_page, old.value_len);
    const std::string stored(old.key.bytes);  // RemoveAt zeroes the bytes old.key points at
    StoredKey k = old.key;
    k.bytes = stored;
    node.RemoveAt(idx);
    entry = encode(k);
  } else {
    entry = encode(new_key());
    ++tree.len;
  }
  if (node.InsertRaw(idx, entry)) return found;

  std::vector<std::string> entries = RawEntries(node);
  entries.insert(entries.begin() + idx, std::move(entry));
  const size_t cut = SplitPoint(entries, static_cast<size_t>(idx));
  BuildNode(leaf->data(), ps, PageKind::kLeaf, 0, Views(entries, 0, cut));
  PageRef right = sink.NewNode();
  BuildNode(right->data(), ps, PageKind::kLeaf, 0, Views(entries, cut, entries.size()));
  ROCKY_ASSIGN_OR_RETURN(std::string sep, SeparatorEntry(sink, RawLeafKey(entries[cut - 1]),
                                                         RawLeafKey(entries[cut]), right->id));
  ROCKY_RETURN_IF_ERROR(InsertIntoParent(sink, tree, path, leaf->id, std::move(sep)));
  return found;
}

Result<bool> TreeRemove(PageSink& sink, TreeRoot& tree, std::string_view key) {
  if (tree.root == 0) return false;
  // One read-only descent finds the key and records the child taken at each branch; only when the key is
  // there are the pages on that path made writable (copying a committed page is wasted on an absent key).
  // The writable pages are the same bytes (the transaction's own page, or a copy of the committed one just
  // read), so the recorded indices lead to the same leaf and entry without searching again.
  int children[kMaxTreeDepth + 1];
  int depth = 0;
  int idx = 0;
  {
    uint64_t id = tree.root;
    PageRef hold;
    for (;; ++depth) {
      if (depth > kMaxTreeDepth) return TooDeep();
      ROCKY_ASSIGN_OR_RETURN(const char* bytes, sink.ReadNodeBytes(id, &hold));
      const NodePage node(const_cast<char*>(bytes), sink.page_size());
      if (!node.is_leaf()) {
        ROCKY_ASSIGN_OR_RETURN(children[depth], BranchChildFor(sink, node, key));
        id = node.branch_child(children[depth]);
        continue;
      }
      bool found = false;
      ROCKY_ASSIGN_OR_RETURN(idx, LeafLowerBound(sink, node, key, &found));
      if (!found) return false;
      break;
    }
  }
  std::vector<PathStep> path;
  path.reserve(static_cast<size_t>(depth));
  ROCKY_ASSIGN_OR_RETURN(PageRef leaf, sink.WritableNode(tree.root));  // a branch until the last level
  tree.root = leaf->id;
  for (int d = 0; d < depth; ++d) {
    NodePage branch(leaf->data(), sink.page_size());
    const uint64_t child_id = branch.branch_child(children[d]);
    ROCKY_ASSIGN_OR_RETURN(PageRef child, sink.WritableNode(child_id));
    if (child->id != child_id) branch.set_branch_child(children[d], child->id);
    path.push_back({std::move(leaf), children[d]});
    leaf = std::move(child);
  }
  NodePage node(leaf->data(), sink.page_size());
  const LeafEntry old = node.leaf_entry(idx);
  if (old.overflow) sink.FreeOverflow(old.overflow_page, old.value_len);
  if (old.key.overflow) sink.FreeOverflow(old.key.page, old.key.len);
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
        if (e.key.overflow) sink.FreeOverflow(e.key.page, e.key.len);
      }
    } else {
      for (int i = 0; i < node.count(); ++i) {
        const StoredKey sep = node.branch_key(i);
        if (sep.overflow) sink.FreeOverflow(sep.page, sep.len);
      }
      for (int i = 0; i <= node.count(); ++i) stack.push_back({node.branch_child(i), item.depth + 1});
    }
    sink.FreeNode(item.id);
  }
  return Status::OK();
}

}  // namespace rocky::engine
