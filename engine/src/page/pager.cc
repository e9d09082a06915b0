#include "page/pager.h"

#include <algorithm>
#include <string>

#include "env/posix_file.h"
#include "page/page_layout.h"

namespace rocky::engine {

namespace {

// Upper bound of one coalesced write; large enough to amortise syscalls, small enough to bound the copy.
constexpr size_t kMaxCoalescedWrite = size_t{1} << 20;

// Overflow runs are at most 2^40 bytes of value; a longer run in a header is corruption.
constexpr uint64_t kMaxRunBytes = (uint64_t{1} << 40) + kMaxPageSize;

}  // namespace

Pager::Pager(File* file, std::string path, uint32_t page_size, size_t cache_bytes)
    : file_(file), path_(std::move(path)), page_size_(page_size), cache_(cache_bytes / page_size) {
  const int fd = PosixFileDescriptor(file);
  if (cache_bytes / page_size > 0 && fd >= 0) {
    auto size = file->Size();
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
  uint64_t batch_start = 0;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::OK();
    Status s = file_->Write(batch_start * page_size_, batch);
    batch.clear();
    return s;
  };
  for (const PageRef& p : pages) {
    const uint64_t pages_in = p->size / page_size_;
    const bool contiguous = !batch.empty() && batch_start + batch.size() / page_size_ == p->id;
    if (!contiguous || batch.size() + p->size > kMaxCoalescedWrite) {
      ROCKY_RETURN_IF_ERROR(flush());
      batch_start = p->id;
    }
    if (p->size > kMaxCoalescedWrite) {  // a large overflow run: write it directly
      ROCKY_RETURN_IF_ERROR(file_->Write(p->id * page_size_, std::string_view(p->data(), p->size)));
      continue;
    }
    if (batch.empty()) batch_start = p->id;
    batch.append(p->data(), p->size);
    (void)pages_in;
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
  return file_->Write(id * page_size_, std::string_view(data, size));
}

Status Pager::Sync() { return file_->Sync(); }

void Pager::WillTruncate(uint64_t bytes) {
  if (mapping_ != nullptr) mapping_->ShrinkReadable(bytes);
}

}  // namespace rocky::engine
