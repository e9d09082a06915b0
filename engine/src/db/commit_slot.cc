#include "db/commit_slot.h"

#include <cstring>

#include "page/page_layout.h"

namespace rocky::engine {

void EncodeSuperHeader(const SuperHeader& h, char* page) {
  std::memcpy(page + kHeaderMagicOffset, kMagic, sizeof kMagic);
  EncodeU32(page + kHeaderVersionOffset, h.format_version);
  EncodeU32(page + kHeaderPageSizeOffset, h.page_size);
  EncodeU64(page + kHeaderReservedOffset, 0);
  EncodeU64(page + kHeaderChecksumOffset, Checksum64(page, kHeaderChecksumOffset, 0));
}

Result<SuperHeader> DecodeSuperHeader(const char* bytes, size_t n, const std::string& path) {
  if (n < kHeaderSize) {
    return Status::InvalidArgument(path + " is not a rocky database: the file is only " + std::to_string(n) +
                                   " bytes long");
  }
  if (std::memcmp(bytes + kHeaderMagicOffset, kMagic, sizeof kMagic) != 0) {
    return Status::InvalidArgument(
        path + " is not a rocky database (its first bytes are not the rocky magic number)");
  }
  if (DecodeU64(bytes + kHeaderChecksumOffset) != Checksum64(bytes, kHeaderChecksumOffset, 0)) {
    return Status::Corruption(path + ": the super-header (page 0) fails its checksum");
  }
  SuperHeader h;
  h.format_version = DecodeU32(bytes + kHeaderVersionOffset);
  h.page_size = DecodeU32(bytes + kHeaderPageSizeOffset);
  if (h.format_version > kFormatVersion) {
    return Status::NotSupported(path + " has format version " + std::to_string(h.format_version) +
                                ", newer than the version this build reads (" +
                                std::to_string(kFormatVersion) + "); upgrade rocky");
  }
  if (h.format_version == 0) return Status::Corruption(path + ": format version 0 is invalid");
  if (h.page_size < kMinPageSize || h.page_size > kMaxPageSize || (h.page_size & (h.page_size - 1)) != 0) {
    return Status::Corruption(path + ": invalid page size " + std::to_string(h.page_size) +
                              " in the super-header");
  }
  return h;
}

void EncodeCommitSlot(const CommitSlot& slot, uint64_t slot_page_id, uint32_t page_size, char* page) {
  InitPageHeader(page, PageKind::kSlot);
  page[kSlotFlagsOffset] = slot.synced_before_slot ? static_cast<char>(kSlotFlagSyncedBeforeSlot) : 0;
  EncodeU32(page + kSlotVerifyCountOffset, static_cast<uint32_t>(slot.verify_list.size()));
  EncodeU64(page + kSlotPageCountOffset, slot.page_count);
  EncodeU64(page + kSlotCatalogRootOffset, slot.catalog_root);
  EncodeU64(page + kSlotFreemapDirOffset, slot.freemap_directory);
  EncodeU64(page + kSlotFreePagesOffset, slot.free_pages);
  for (size_t i = 0; i < slot.verify_list.size(); ++i) {
    EncodeU64(page + kSlotVerifyListOffset + 8 * i, slot.verify_list[i]);
  }
  SealPage(page, page_size, slot_page_id, slot.txn_id);
}

bool IsAllZero(const char* bytes, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

std::optional<CommitSlot> DecodeCommitSlot(const char* page, uint64_t slot_page_id, uint32_t page_size) {
  if (!PageChecksumOk(page, page_size, slot_page_id)) return std::nullopt;
  if (GetPageKind(page) != PageKind::kSlot) return std::nullopt;
  CommitSlot slot;
  slot.txn_id = PageTxn(page);
  slot.synced_before_slot = (static_cast<uint8_t>(page[kSlotFlagsOffset]) & kSlotFlagSyncedBeforeSlot) != 0;
  const uint32_t count = DecodeU32(page + kSlotVerifyCountOffset);
  if (count > SlotVerifyCapacity(page_size)) return std::nullopt;
  slot.page_count = DecodeU64(page + kSlotPageCountOffset);
  slot.catalog_root = DecodeU64(page + kSlotCatalogRootOffset);
  slot.freemap_directory = DecodeU64(page + kSlotFreemapDirOffset);
  slot.free_pages = DecodeU64(page + kSlotFreePagesOffset);
  slot.verify_list.resize(count);
  for (uint32_t i = 0; i < count; ++i) slot.verify_list[i] = DecodeU64(page + kSlotVerifyListOffset + 8 * i);
  if (slot.page_count < kFirstDataPageId) return std::nullopt;
  return slot;
}

}  // namespace rocky::engine
