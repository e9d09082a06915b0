#include "page/pager.h"

#include <algorithm>
#include <string>

#include "env/posix_file.h"
#include "page/page_layout.h"

namespace rocky::engine {

namespace {

// Upper bound of one coalesced write; large enough to amortise syscalls, small enough to bound the copy.
constexpr size_t kMaxCoalescedWrite = size_t{1} << 20;

// Longest hole between two written pages that WritePages fills with zeros (see its comment): a removal
// commit's holes are mostly one to three pages; a longer gap is left sparse.
constexpr uint64_t kMaxFilledGapBytes = uint64_t{64} << 10;

// Overflow runs are at most 2^40 bytes of value; a longer run in a header is corruption.
constexpr uint64_t kMaxRunBytes = (uint64_t{1} << 40) + kMaxPageSize;

}  // namespace

Pager::Pager(File* file, std::string path, uint32_t page_size, size_t cache_bytes)
    : file_(file), path_(std::move(path)), page_size_(page_size), cache_(cache_bytes / page_size) {
  const int fd = PosixFileDescriptor(file);
  auto size = file->Size();
  if (size.ok()) unwritten_from_ = size.value();
  if (cache_bytes / page_size > 0 && fd >= 0) {
    // Without the size (or the map) every page is read with pread, as without a mapping.
    if (size.ok()) mapping_ = FileMapping::Create(fd, page_size, size.value());
  }
}

Status Pager::ReadRaw(uint64_t id, char* dst, size_t* bytes_read) {
  return file_->Read(id * page_size_, page_size_, dst, bytes_read);
}

Result<PageRef> Pager::Load(uint64_t id) {
  if (id < kFirstDataPageId) {
    return Status::Corruption("page " + std::to_string(id) + " is referenced as data but is a header page");
  }
  if (mapping_ != nullptr) {
    if (const char* mapped = mapping_->PageAt(id)) {
      std::atomic<uint8_t>& state = mapping_->state(id);
      const uint8_t verified = state.load(std::memory_order_acquire);
      if ((verified & kMapChecksumOk) == 0) {
        if (!PageChecksumOk(mapped, page_size_, id)) {
          return Status::Corruption("page " + std::to_string(id) + ": checksum mismatch");
        }
        state.fetch_or(kMapChecksumOk, std::memory_order_release);
      }
      return std::make_shared<Page>(id, page_size_, mapped, &state, (verified & kMapStructureOk) != 0);
    }
  }
  auto page = std::make_shared<Page>(id, page_size_, false);
  size_t n = 0;
  Status s = file_->Read(id * page_size_, page_size_, page->data(), &n);
  if (!s.ok()) return s.WithContext("reading page " + std::to_string(id));
  if (n != page_size_) {
    return Status::Corruption("page " + std::to_string(id) + " lies beyond the end of the file");
  }
  if (!PageChecksumOk(page->data(), page_size_, id)) {
    return Status::Corruption("page " + std::to_string(id) + ": checksum mismatch");
  }
  return page;
}

Result<PageRef> Pager::ReadPage(uint64_t id) {
  // A mapped page costs a view object and no read: caching it would only add a lock per access.
  if (mapping_ != nullptr && mapping_->PageAt(id) != nullptr) return Load(id);
  if (PageRef cached = cache_.Get(id)) return cached;
  auto page = Load(id);
  if (page.ok()) cache_.Put(page.value());
  return page;
}

Result<PageRef> Pager::ReadPageUncached(uint64_t id) { return Load(id); }

Result<PageRef> Pager::ReadOverflowRun(uint64_t first) {
  const std::string where = "overflow run at page " + std::to_string(first);
  if (first < kFirstDataPageId) return Status::Corruption(where + ": points into the file header");
  std::string head(kOverflowDataOffset, '\0');
  size_t n = 0;
  ROCKY_RETURN_IF_ERROR(file_->Read(first * page_size_, head.size(), head.data(), &n));
  if (n != head.size()) return Status::Corruption(where + ": lies beyond the end of the file");
  if (GetPageKind(head.data()) != PageKind::kOverflow)
    return Status::Corruption(where + ": not an overflow page");
  const uint64_t pages = PageAux(head.data());
  const uint64_t value_len = DecodeU64(head.data() + kOverflowLengthOffset);
  if (pages == 0 || pages * page_size_ > kMaxRunBytes ||
      value_len + kOverflowDataOffset > pages * page_size_) {
    return Status::Corruption(where + ": impossible length");
  }
  // Check the run against the file before allocating: a damaged header must not make us allocate 1 TiB.
  ROCKY_ASSIGN_OR_RETURN(uint64_t file_size, file_->Size());
  if ((first + pages) * page_size_ > file_size)
    return Status::Corruption(where + ": runs past the end of the file");
  auto run = std::make_shared<Page>(first, pages * page_size_, false);
  ROCKY_RETURN_IF_ERROR(file_->Read(first * page_size_, run->size, run->data(), &n));
  if (n != run->size) return Status::Corruption(where + ": truncated by the end of the file");
  if (!PageChecksumOk(run->data(), run->size, first))
    return Status::Corruption(where + ": checksum mismatch");
  return run;
}

Status Pager::WritePages(const std::vector<PageRef>& pages) {
  // The pages' bytes change: forget that they were verified before the first byte is written, so no state
  // survives a write that fails half way.
  if (mapping_ != nullptr) {
    for (const PageRef& p : pages) mapping_->ClearVerified(p->id, p->size / page_size_);
  }
  std::string batch;
  uint64_t batch_start = 0;  // offset of batch's first byte
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::OK();
    Status s = file_->Write(batch_start, batch);
    batch.clear();
    return s;
  };
  // Appends bytes meant for offset `at` (zeros when data is null) to the batch, starting a new one when they
  // do not follow it or would make it too large.
  auto append = [&](uint64_t at, const char* data, size_t n) -> Status {
    if (!batch.empty() && (batch_start + batch.size() != at || batch.size() + n > kMaxCoalescedWrite)) {
      ROCKY_RETURN_IF_ERROR(flush());
    }
    if (batch.empty()) batch_start = at;
    if (data == nullptr) {
      batch.append(n, '\0');
    } else {
      batch.append(data, n);
    }
    return Status::OK();
  };
  // Moved past these pages before writing: a write that fails may still have written some of them.
  const uint64_t fill_from = unwritten_from_;
  if (unwritten_from_ != UINT64_MAX && !pages.empty()) {
    unwritten_from_ = std::max(unwritten_from_, pages.back()->id * page_size_ + pages.back()->size);
  }
  uint64_t written_end = 0;  // end of the last page written by this call
  for (const PageRef& p : pages) {
    const uint64_t at = p->id * page_size_;
    // A hole right before this page, past everything ever written: fill it (see the declaration).
    const uint64_t hole = std::max(written_end, fill_from);
    if (hole < at && at - hole <= kMaxFilledGapBytes) {
      if (mapping_ != nullptr) mapping_->ClearVerified(hole / page_size_, (at - hole) / page_size_);
      ROCKY_RETURN_IF_ERROR(append(hole, nullptr, at - hole));
    }
    written_end = at + p->size;
    if (p->size > kMaxCoalescedWrite) {  // a large overflow run: write it directly
      ROCKY_RETURN_IF_ERROR(flush());
      ROCKY_RETURN_IF_ERROR(file_->Write(at, std::string_view(p->data(), p->size)));
      continue;
    }
    ROCKY_RETURN_IF_ERROR(append(at, p->data(), p->size));
  }
  ROCKY_RETURN_IF_ERROR(flush());
  if (mapping_ != nullptr) {
    uint64_t end = 0;
    for (const PageRef& p : pages) end = std::max(end, p->id * page_size_ + p->size);
    mapping_->GrowReadable(end);
  }
  for (const PageRef& p : pages) {
    // Readers of the new commit find a mapped page in the map; a page past it (the map could not grow) is put
    // in the cache, which pread readers use. Either way no stale copy of the id may stay cached.
    if (p->size == page_size_ && (mapping_ == nullptr || mapping_->PageAt(p->id) == nullptr)) {
      cache_.Put(p);
    } else {
      cache_.Erase(p->id);
    }
  }
  return Status::OK();
}

Status Pager::WriteRaw(uint64_t id, const char* data, size_t size) {
  // Even a write that fails may write some of the bytes: they are no longer a hole.
  if (unwritten_from_ != UINT64_MAX)
    unwritten_from_ = std::max<uint64_t>(unwritten_from_, id * page_size_ + size);
  return file_->Write(id * page_size_, std::string_view(data, size));
}

Status Pager::Sync() { return file_->Sync(); }

void Pager::WillTruncate(uint64_t bytes) {
  if (mapping_ != nullptr) mapping_->ShrinkReadable(bytes);
  unwritten_from_ = std::min(unwritten_from_, bytes);
}

}  // namespace rocky::engine
