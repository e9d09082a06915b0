// Byte layout of every page kind. format-spec/FORMAT.md is the prose version of this file; the golden-file
// test keeps the two honest. All integers are little-endian (util/coding.h).
//
// File = page 0 (super-header) | page 1 (commit slot A) | page 2 (commit slot B) | pages 3.. (tree pages,
// overflow runs, allocator bitmaps), all of the page size fixed at creation.
//
// Every page from 3 on starts with the common header:
//   [0, 8)   checksum  XXH3-64 of bytes [8, end) of the page (or of the whole run, for an overflow run),
//                      seeded with the page id
//   [8, 16)  txn_id    the commit that wrote this page
//   [16]     kind      PageKind
//   [17]     flags     0
//   [18, 20) count     entries (leaf), keys (branch), ids (directory); 0 otherwise
//   [20, 24) aux       heap start (leaf, branch); pages in the run (overflow)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "rocky/engine/status.h"
#include "util/checksum.h"
#include "util/coding.h"

namespace rocky::engine {

inline constexpr uint64_t kHeaderPageId = 0;
inline constexpr uint64_t kSlotPageIds[2] = {1, 2};
inline constexpr uint64_t kFirstDataPageId = 3;

inline constexpr uint32_t kMinPageSize = 512;
inline constexpr uint32_t kMaxPageSize = 65536;

// --- Super-header (page 0): written once, at creation. ---
// 8 bytes: 0x89 'R' 'K' 'Y' '\r' '\n' 0x1A '\n' (catches text-mode mangling, like PNG's).
inline constexpr char kMagic[8] = {'\x89', 'R', 'K', 'Y', '\r', '\n', '\x1a', '\n'};
// Version 2 added keys longer than a leaf can hold (a key-overflow flag in the key length field, format-spec
// "Keys longer than the inline limit"). Version 1 files are a subset of version 2 (no entry sets the flag),
// so this build reads and writes both; it keeps version 1's key limits on a version-1 file so that the older
// builds which read it never meet a flag they do not know. New files are created as version 2.
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr uint32_t kOldestFormatVersion = 1;
inline constexpr size_t kHeaderMagicOffset = 0;
inline constexpr size_t kHeaderVersionOffset = 8;    // u32
inline constexpr size_t kHeaderPageSizeOffset = 12;  // u32
inline constexpr size_t kHeaderReservedOffset = 16;  // u64, zero
inline constexpr size_t kHeaderChecksumOffset = 24;  // u64 = XXH3-64 of [0, 24), seed 0
inline constexpr size_t kHeaderSize = 32;

// --- Common page header (pages >= 3). ---
inline constexpr size_t kPageChecksumOffset = 0;
inline constexpr size_t kPageTxnOffset = 8;
inline constexpr size_t kPageKindOffset = 16;
inline constexpr size_t kPageFlagsOffset = 17;
inline constexpr size_t kPageCountOffset = 18;
inline constexpr size_t kPageAuxOffset = 20;
inline constexpr size_t kPageHeaderSize = 24;

enum class PageKind : uint8_t {
  kFree = 0,  // never written as such; a zeroed page
  kSlot = 1,
  kLeaf = 2,
  kBranch = 3,
  kOverflow = 4,
  kFreemapBitmap = 5,
  kFreemapDirectory = 6,
};

std::string_view PageKindName(PageKind kind);

// --- Commit slot (pages 1 and 2). Same first 24 bytes as the common header (kind = kSlot, seed = slot page
// id), then: ---
inline constexpr size_t kSlotFlagsOffset = 17;        // u8: kSlotFlagSyncedBeforeSlot
inline constexpr size_t kSlotVerifyCountOffset = 20;  // u32: entries in the verify list
inline constexpr size_t kSlotPageCountOffset = 24;    // u64: pages in the file for this commit
inline constexpr size_t kSlotCatalogRootOffset = 32;  // u64: root of the catalog tree (0 = no tables)
inline constexpr size_t kSlotFreemapDirOffset = 40;   // u64: first freemap directory page
inline constexpr size_t kSlotFreePagesOffset = 48;    // u64: pages marked free in the bitmaps
inline constexpr size_t kSlotVerifyListOffset = 64;   // u64 page ids written by this commit
// Set when every page of the commit was synced before the slot was written: nothing to verify on open.
// Clear: the pages and the slot were synced together (one fdatasync), and recovery verifies each page on
// the verify list (checksum valid and txn_id equal to the slot's) before trusting the slot.
inline constexpr uint8_t kSlotFlagSyncedBeforeSlot = 1;

inline size_t SlotVerifyCapacity(uint32_t page_size) { return (page_size - kSlotVerifyListOffset) / 8; }

// --- Leaf and branch (slotted pages). aux = heap start: entries are packed at [aux, page_size); the u16
// offset array (sorted by key) follows the fixed part. ---
// Every entry starts with the u16 key field: bits 0-14 = key bytes stored in the entry (`s`), bit 15 = the
// key is longer than the inline limit and lives whole on an overflow run; the entry then stores only its
// first KeyPrefixLen bytes, and a 16-byte key reference [u64 first page of the key's run | u64 full key
// length] follows the entry's fixed header (written `ref` below; absent when bit 15 is clear). Leaf: offsets
// at [24, 24 + 2*count).
//   inline entry:   u16 key field | u8 0 | u32 value_len | ref | key bytes | value
//   overflow entry: u16 key field | u8 1 | u64 first_page | u64 value_len | ref | key bytes
// Branch: u64 leftmost child at [24, 32); offsets at [32, 32 + 2*count).
//   entry: u16 key field | u64 child | ref | key bytes   (child holds the keys >= key, up to the next key)
inline constexpr size_t kLeafOffsetsStart = kPageHeaderSize;
inline constexpr size_t kBranchLeftChildOffset = kPageHeaderSize;
inline constexpr size_t kBranchOffsetsStart = kPageHeaderSize + 8;
inline constexpr uint8_t kLeafEntryInline = 0;
inline constexpr uint8_t kLeafEntryOverflow = 1;
inline constexpr size_t kLeafInlineEntryHeader = 7;
inline constexpr size_t kLeafOverflowEntryHeader = 19;
inline constexpr size_t kBranchEntryHeader = 10;
inline constexpr uint16_t kKeyOverflowFlag = 0x8000;
inline constexpr uint16_t kKeyStoredMask = 0x7fff;
inline constexpr size_t kKeyRefSize = 16;

// --- Overflow run: aux = pages in the run; u64 value length at [24, 32); value bytes from 32. One checksum
// covers the whole run. ---
inline constexpr size_t kOverflowLengthOffset = kPageHeaderSize;
inline constexpr size_t kOverflowDataOffset = kPageHeaderSize + 8;

// --- Freemap bitmap: bits from byte 24; bit i (LSB first) of bitmap page n is page n*BitsPerBitmapPage + i;
// set = in use by this commit. ---
inline constexpr size_t kBitmapDataOffset = kPageHeaderSize;
inline uint64_t BitsPerBitmapPage(uint32_t page_size) { return uint64_t{page_size - kBitmapDataOffset} * 8; }

// --- Freemap directory: u64 next directory page (0 = last) at [24, 32); count u64 bitmap page ids from 32,
// in bitmap order. ---
inline constexpr size_t kDirectoryNextOffset = kPageHeaderSize;
inline constexpr size_t kDirectoryIdsOffset = kPageHeaderSize + 8;
inline size_t DirectoryCapacity(uint32_t page_size) { return (page_size - kDirectoryIdsOffset) / 8; }

// Largest leaf entry stored inline: a leaf must hold at least four of them.
inline size_t MaxInlineEntry(uint32_t page_size) { return (page_size - kPageHeaderSize) / 4 - 2; }

// Keys up to this length are stored whole in their entry (997 bytes at 4 KiB pages, 101 at 512): the largest
// key whose leaf entry still fits with its value on an overflow run. It was version 1's key size limit.
inline size_t InlineKeyLimitFor(uint32_t page_size) {
  return MaxInlineEntry(page_size) - kLeafOverflowEntryHeader;
}
// Bytes of a longer key kept in its entry: the limit less the key reference, so an entry holding a prefix is
// never larger than one holding a key at the limit (four entries per leaf still fit).
inline size_t KeyPrefixLen(uint32_t page_size) { return InlineKeyLimitFor(page_size) - kKeyRefSize; }

// --- Header accessors. ---
inline uint64_t PageTxn(const char* page) { return DecodeU64(page + kPageTxnOffset); }
inline PageKind GetPageKind(const char* page) { return static_cast<PageKind>(page[kPageKindOffset]); }
inline uint16_t PageCount(const char* page) { return DecodeU16(page + kPageCountOffset); }
inline uint32_t PageAux(const char* page) { return DecodeU32(page + kPageAuxOffset); }
inline void SetPageCount(char* page, uint16_t v) { EncodeU16(page + kPageCountOffset, v); }
inline void SetPageAux(char* page, uint32_t v) { EncodeU32(page + kPageAuxOffset, v); }

// Starts a page of `kind` in a zeroed buffer.
inline void InitPageHeader(char* page, PageKind kind) {
  page[kPageKindOffset] = static_cast<char>(kind);
  page[kPageFlagsOffset] = 0;
}

// Stamps txn_id and the checksum over `size` bytes (a page, or a whole overflow run).
inline void SealPage(char* page, size_t size, uint64_t page_id, uint64_t txn_id) {
  EncodeU64(page + kPageTxnOffset, txn_id);
  EncodeU64(page + kPageChecksumOffset, Checksum64(page + 8, size - 8, page_id));
}

inline bool PageChecksumOk(const char* page, size_t size, uint64_t page_id) {
  return DecodeU64(page + kPageChecksumOffset) == Checksum64(page + 8, size - 8, page_id);
}

}  // namespace rocky::engine
