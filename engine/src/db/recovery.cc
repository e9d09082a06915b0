#include "db/recovery.h"

#include <algorithm>
#include <cstring>

#include "alloc/free_map.h"
#include "page/page_layout.h"
#include "page/pager.h"

namespace rocky::engine {

namespace {

// An all-zero file up to this long is a file no commit ever reached (the data of a creation that never got
// to the disk, though its length did); past it, a file of zeros is not one of ours.
constexpr uint64_t kMaxZeroFileBytes = 5 * uint64_t{kMaxPageSize};

std::string SlotName(int i) {
  return std::string("commit slot ") + (i == 0 ? "A" : "B") + " (page " + std::to_string(kSlotPageIds[i]) +
         ")";
}

// Fills v->slots from the raw slot pages; OK or an I/O error.
Status ReadSlotFindings(File* file, const std::string& path, uint32_t page_size, SlotVerdict* v,
                        std::string* raw) {
  std::string buf(page_size, '\0');
  if (raw != nullptr) raw->clear();
  for (int i = 0; i < 2; ++i) {
    size_t n = 0;
    Status s = file->Read(kSlotPageIds[i] * page_size, page_size, buf.data(), &n);
    if (!s.ok()) return s.WithContext("reading " + SlotName(i) + " of " + path);
    if (raw != nullptr) raw->append(buf.data(), n);
    SlotFinding& f = v->slots[i];
    f.present = n == page_size;
    f.blank = IsAllZero(buf.data(), n);
    if (n >= kPageHeaderSize) f.stored_txn = PageTxn(buf.data());
    if (f.present) f.slot = DecodeCommitSlot(buf.data(), kSlotPageIds[i], page_size);
    if (f.slot) {
      v->next_txn_id = std::max(v->next_txn_id, f.slot->txn_id + 1);
    } else if (f.blank) {
      f.problem = Status::NotFound(
          SlotName(i) + (n == 0 ? " lies beyond the end of the file" : " was never written (all zero)"));
    } else if (!f.present) {
      f.problem = Status::Corruption(SlotName(i) + " is cut short by the end of the file");
    } else if (!PageChecksumOk(buf.data(), page_size, kSlotPageIds[i])) {
      f.problem = Status::Corruption(SlotName(i) + " fails its checksum");
    } else if (GetPageKind(buf.data()) != PageKind::kSlot) {
      f.problem = Status::Corruption(SlotName(i) + " has page kind " +
                                     std::to_string(static_cast<unsigned>(GetPageKind(buf.data()))) +
                                     ", not a commit slot");
    } else {
      f.problem = Status::Corruption(SlotName(i) + " has impossible counts");
    }
  }
  return Status::OK();
}

// JudgeSlots, leaving in *v whatever was found even when it fails.
Status JudgeSlotsInto(File* file, const std::string& path, uint32_t page_size, uint64_t file_size,
                      const CommitSlot* known_complete, SlotVerdict* v, std::string* raw) {
  *v = SlotVerdict{};
  ROCKY_RETURN_IF_ERROR(ReadSlotFindings(file, path, page_size, v, raw));
  // The valid slot with the highest id wins, if its commit is complete; else the other one.
  int order[2] = {0, 1};
  const uint64_t id0 = v->slots[0].slot ? v->slots[0].slot->txn_id : 0;
  const uint64_t id1 = v->slots[1].slot ? v->slots[1].slot->txn_id : 0;
  if (id1 > id0) std::swap(order[0], order[1]);
  std::string rejected;
  for (int idx : order) {
    SlotFinding& f = v->slots[idx];
    if (!f.slot) continue;
    const CommitSlot& s = *f.slot;
    f.checked = true;
    if (known_complete != nullptr && *known_complete == s) {
      v->chosen = idx;
      break;
    }
    const uint64_t needed = s.page_count * page_size;
    if (s.synced_before_slot && needed > file_size) {
      // Its pages and the file's length were durable before the slot: a short file was cut afterwards, which
      // no crash of ours does. Refused rather than rolled back: the file was damaged from outside.
      f.problem = Status::Corruption(path + " is truncated: commit " + std::to_string(s.txn_id) + " needs " +
                                     std::to_string(needed) + " bytes but the file holds " +
                                     std::to_string(file_size));
      return f.problem;
    }
    Status c = CheckCommit(file, path, page_size, s, file_size);
    if (c.ok()) {
      v->chosen = idx;
      break;
    }
    if (!c.IsCorruption()) {
      // Not evidence of anything: the page could not be read. The verdict cannot be made.
      f.problem = c.WithContext("verifying commit " + std::to_string(s.txn_id) + " (" + SlotName(idx) + ")");
      return f.problem;
    }
    f.problem = Status::Corruption("commit " + std::to_string(s.txn_id) + " in " + SlotName(idx) +
                                   " is incomplete: " + c.message());
    if (!rejected.empty()) rejected += "; ";
    rejected += f.problem.message();
    if (!v->discarded) {
      v->discarded = DiscardedCommit{s.txn_id, c.message(), ""};
      v->discarded_slot = idx;
    }
  }
  if (v->chosen < 0) {
    if (!v->slots[0].slot && !v->slots[1].slot) {
      return Status::Corruption(path + ": neither commit slot (pages 1 and 2) is valid (" +
                                v->slots[0].problem.message() + "; " + v->slots[1].problem.message() + ")");
    }
    v->discarded.reset();
    v->discarded_slot = -1;
    return Status::Corruption(path + ": no complete commit found (" + rejected + ")");
  }
  const uint64_t current = v->slots[v->chosen].slot->txn_id;
  if (!v->discarded) {
    // A damaged slot whose page claims a newer commit than the one chosen: that commit is lost (a slot torn
    // by a power cut while it was written, or damaged since). A damaged slot claiming an older id held the
    // fallback commit, which the chosen one replaces anyway.
    for (int i = 0; i < 2; ++i) {
      const SlotFinding& f = v->slots[i];
      if (f.slot || f.blank || f.stored_txn <= current) continue;
      v->discarded = DiscardedCommit{f.stored_txn,
                                     f.problem.message() + " (its page claims commit " +
                                         std::to_string(f.stored_txn) + ", which cannot be verified)",
                                     ""};
      v->discarded_slot = i;
    }
  }
  return Status::OK();
}

}  // namespace

Status CheckCommit(File* file, const std::string& path, uint32_t page_size, const CommitSlot& slot,
                   uint64_t file_size) {
  const uint64_t needed = slot.page_count * page_size;
  if (needed > file_size) {
    return Status::Corruption("the file holds " + std::to_string(file_size) + " bytes but commit " +
                              std::to_string(slot.txn_id) + " needs " + std::to_string(needed) +
                              " (its last pages never reached the disk)");
  }
  if (slot.synced_before_slot) return Status::OK();
  Pager pager(file, path, page_size, /*cache_bytes=*/0);  // no cache and no map: plain reads
  for (uint64_t id : slot.verify_list) {
    const std::string page_name = "page " + std::to_string(id);
    if (id < kFirstDataPageId || id >= slot.page_count) {
      return Status::Corruption("verify-list " + page_name + " lies outside the commit");
    }
    char head[kPageHeaderSize];
    size_t n = 0;
    Status s = file->Read(id * page_size, sizeof head, head, &n);
    if (!s.ok()) return s.WithContext("reading " + page_name);
    if (n != sizeof head) return Status::Corruption(page_name + " lies beyond the end of the file");
    const bool run = GetPageKind(head) == PageKind::kOverflow;
    Result<PageRef> page = run ? pager.ReadOverflowRun(id) : pager.ReadPageUncached(id);
    if (!page.ok()) {
      if (page.status().IsCorruption()) return page.status();
      return run ? page.status().WithContext("reading the overflow run at " + page_name) : page.status();
    }
    // A run's later pages must lie inside the commit too. Its checksum passed, so this is not a torn write
    // but a run no complete commit of this engine has: judged like any other page that fails verification.
    const uint64_t pages = page.value()->size / page_size;
    if (id + pages > slot.page_count) {
      return Status::Corruption("verify-list overflow run at " + page_name + " (" + std::to_string(pages) +
                                " pages) runs past the end of the commit (" +
                                std::to_string(slot.page_count) + " pages)");
    }
    const uint64_t txn = PageTxn(page.value()->data());
    if (txn != slot.txn_id) {
      return Status::Corruption(page_name + " was written by transaction " + std::to_string(txn) +
                                ", not by commit " + std::to_string(slot.txn_id));
    }
  }
  return Status::OK();
}

Result<SlotVerdict> JudgeSlots(File* file, const std::string& path, uint32_t page_size, uint64_t file_size,
                               const CommitSlot* known_complete) {
  SlotVerdict v;
  ROCKY_RETURN_IF_ERROR(JudgeSlotsInto(file, path, page_size, file_size, known_complete, &v, nullptr));
  return v;
}

Result<FileVerdict> JudgeFile(File* file, const std::string& path, const CommitSlot* known_complete,
                              std::string* slot_bytes) {
  if (slot_bytes != nullptr) slot_bytes->clear();
  FileVerdict v;
  ROCKY_ASSIGN_OR_RETURN(v.file_size, file->Size());
  if (v.file_size == 0) {
    v.uncommitted = true;
    return v;
  }
  char head[kHeaderSize] = {};
  size_t n = 0;
  Status s = file->Read(0, sizeof head, head, &n);
  if (!s.ok()) return s.WithContext("reading the super-header (page 0) of " + path);
  if (n < sizeof kMagic || std::memcmp(head + kHeaderMagicOffset, kMagic, sizeof kMagic) != 0) {
    if (v.file_size <= kMaxZeroFileBytes) {
      std::string all(v.file_size, '\0');
      size_t got = 0;
      s = file->Read(0, all.size(), all.data(), &got);
      if (!s.ok()) return s.WithContext("reading " + path);
      if (got == all.size() && IsAllZero(all.data(), got)) {
        v.uncommitted = true;
        return v;
      }
    }
    return DecodeSuperHeader(head, n, path).status();
  }
  ROCKY_ASSIGN_OR_RETURN(v.header, DecodeSuperHeader(head, n, path));
  v.header_valid = true;
  const uint32_t page_size = v.header.page_size;
  s = JudgeSlotsInto(file, path, page_size, v.file_size, known_complete, &v.slots, slot_bytes);
  if (s.ok()) return v;
  const SlotFinding* f = v.slots.slots;
  // No commit can ever have completed in this file: slot B is written by the first commit after creation, so
  // while it is blank only creation's commit 1 (slot A) could have, and it is not valid; and the file is no
  // longer than a new one, so it cannot hold a table (FORMAT.md, "Files without a commit").
  if (s.IsCorruption() && !f[0].slot && !f[1].slot && f[1].blank &&
      v.file_size <= MakeNewFileImage(page_size).slot.page_count * page_size) {
    v.uncommitted = true;
    v.slots = SlotVerdict{};
    return v;
  }
  return s;
}

Status ReadSlotBytes(File* file, uint32_t page_size, std::string* out) {
  out->assign(2 * size_t{page_size}, '\0');
  size_t n = 0;
  Status s = file->Read(kSlotPageIds[0] * page_size, out->size(), out->data(), &n);
  out->resize(n);
  return s;
}

Result<FileVerdict> JudgeFileStable(File* file, const std::string& path, int attempts) {
  for (int attempt = 0; attempt < attempts; ++attempt) {
    std::string before;
    Result<FileVerdict> r = JudgeFile(file, path, nullptr, &before);
    if (!r.ok() && !r.status().IsCorruption()) return r;
    // A file without a commit is a safe verdict at any instant: a writer initialising it goes from no commit
    // to an empty commit 1.
    if (r.ok() && r->uncommitted) return r;
    if (before.empty()) return r;  // the slots were never read (a damaged header): nothing a writer changes
    uint32_t page_size = 0;
    if (r.ok()) {
      page_size = r->header.page_size;
    } else {
      // The slots were read, so the header was valid: its page size again.
      char head[kHeaderSize] = {};
      size_t n = 0;
      ROCKY_RETURN_IF_ERROR(file->Read(0, sizeof head, head, &n));
      ROCKY_ASSIGN_OR_RETURN(SuperHeader h, DecodeSuperHeader(head, n, path));
      page_size = h.page_size;
    }
    std::string after;
    ROCKY_RETURN_IF_ERROR(ReadSlotBytes(file, page_size, &after));
    if (after == before) return r;
  }
  return Status::Busy(path + ": a writer commits too often to reach a verdict on the file");
}

NewFileImage MakeNewFileImage(uint32_t page_size) {
  NewFileImage img;
  img.header.assign(page_size, '\0');
  EncodeSuperHeader(SuperHeader{kFormatVersion, page_size}, img.header.data());
  FreeMap fm(page_size);
  fm.InitEmpty();
  fm.BeginTxn(1);
  img.freemap = fm.PersistChanges(1);
  fm.CommitTxn();
  std::sort(img.freemap.begin(), img.freemap.end(),
            [](const PageRef& a, const PageRef& b) { return a->id < b->id; });
  img.slot.txn_id = 1;
  img.slot.synced_before_slot = true;
  img.slot.page_count = fm.page_count();
  img.slot.catalog_root = 0;
  img.slot.freemap_directory = fm.directory_pages().front();
  img.slot.free_pages = fm.free_count();
  return img;
}

Status WriteNewFile(File* file, const std::string& path, uint32_t page_size) {
  // Page 0 is synced on its own because the disk may keep later writes and lose earlier ones: a file whose
  // other pages reached the disk without its header would be refused as "not a rocky database" forever.
  const NewFileImage img = MakeNewFileImage(page_size);
  Pager pager(file, path, page_size, /*cache_bytes=*/0);
  ROCKY_RETURN_IF_ERROR(pager.WriteRaw(kHeaderPageId, img.header.data(), img.header.size()));
  ROCKY_RETURN_IF_ERROR(pager.Sync());
  const std::string blank(page_size, '\0');
  ROCKY_RETURN_IF_ERROR(pager.WriteRaw(kSlotPageIds[1], blank.data(), blank.size()));
  ROCKY_RETURN_IF_ERROR(pager.WritePages(img.freemap));
  ROCKY_RETURN_IF_ERROR(pager.Sync());
  std::string slot_page(page_size, '\0');
  EncodeCommitSlot(img.slot, kSlotPageIds[0], page_size, slot_page.data());
  ROCKY_RETURN_IF_ERROR(pager.WriteRaw(kSlotPageIds[0], slot_page.data(), slot_page.size()));
  return pager.Sync();
}

}  // namespace rocky::engine
