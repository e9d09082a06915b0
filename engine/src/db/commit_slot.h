// The super-header (page 0) and the two commit slots (pages 1 and 2): how a file says what it is and which
// commit is current. Layouts in page/page_layout.h and format-spec/FORMAT.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rocky/engine/status.h"

namespace rocky::engine {

struct SuperHeader {
  uint32_t format_version = 0;
  uint32_t page_size = 0;
};

// Encodes page 0 into a zeroed buffer of page_size bytes.
void EncodeSuperHeader(const SuperHeader& h, char* page);
// Decodes the first kHeaderSize bytes; explains precisely what is wrong with a file that is not ours,
// damaged, or too new. `path` names the file in errors.
Result<SuperHeader> DecodeSuperHeader(const char* bytes, size_t n, const std::string& path);

struct CommitSlot {
  uint64_t txn_id = 0;
  bool synced_before_slot = false;  // pages were synced before this slot: nothing to verify at open
  uint64_t page_count = 0;
  uint64_t catalog_root = 0;
  uint64_t freemap_directory = 0;
  uint64_t free_pages = 0;
  std::vector<uint64_t> verify_list;  // pages written by this commit (first page of a run)

  bool operator==(const CommitSlot&) const = default;
};

// Encodes into a zeroed buffer of page_size bytes; `slot_page_id` (1 or 2) seeds the checksum.
// Requires: verify_list fits SlotVerifyCapacity(page_size).
void EncodeCommitSlot(const CommitSlot& slot, uint64_t slot_page_id, uint32_t page_size, char* page);
// nullopt when the slot is blank or fails its checksum (a torn or never-written slot).
std::optional<CommitSlot> DecodeCommitSlot(const char* page, uint64_t slot_page_id, uint32_t page_size);
bool IsAllZero(const char* bytes, size_t n);

}  // namespace rocky::engine
