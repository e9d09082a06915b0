// Helpers for tests that take a database file apart: its whole image in an in-memory Env, its slots, and
// what a power cut or a bad disk leaves of it. Uses the engine's internal layouts (db/, page/).
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>

#include "db/commit_slot.h"
#include "page/page_layout.h"
#include "rocky/engine/env.h"

namespace rocky::engine::testing {

// The whole image of a file of an in-memory Env (no database may have it open: on the POSIX Env, closing
// another descriptor of a database file would drop its locks).
inline std::string ReadImage(Env* env, const std::string& path) {
  auto f = env->OpenFile(path, FileOpenOptions{});
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  const uint64_t size = (*f)->Size().value();
  std::string out(size, '\0');
  size_t n = 0;
  REQUIRE((*f)->Read(0, size, out.data(), &n).ok());
  REQUIRE(n == size);
  return out;
}

// Replaces the file's contents with `image`, durably (contents and, when it is new, its name).
inline void WriteImage(Env* env, const std::string& path, const std::string& image) {
  auto f = env->OpenFile(path, FileOpenOptions{.create = true});
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  REQUIRE((*f)->Truncate(0).ok());
  REQUIRE((*f)->Write(0, image).ok());
  REQUIRE((*f)->Sync().ok());
  const size_t slash = path.find_last_of('/');
  REQUIRE(env->SyncDir(slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash)).ok());
}

// The newest valid commit slot of an image.
inline CommitSlot NewestSlot(const std::string& image, uint32_t page_size) {
  std::optional<CommitSlot> best;
  for (uint64_t id : kSlotPageIds) {
    if ((id + 1) * page_size > image.size()) continue;
    auto s = DecodeCommitSlot(image.data() + id * page_size, id, page_size);
    if (s && (!best || s->txn_id > best->txn_id)) best = s;
  }
  REQUIRE(best.has_value());
  return *best;
}

// Copies pages (and whole overflow runs) listed by `slot` from `from` into `to`: what a power cut leaves when
// the slot reached the disk but those page writes did not.
inline void RevertPages(std::string& to, const std::string& from, const CommitSlot& slot,
                        uint32_t page_size) {
  for (uint64_t id : slot.verify_list) {
    const char* page = to.data() + id * page_size;
    uint64_t pages = 1;
    if (GetPageKind(page) == PageKind::kOverflow) pages = PageAux(page);
    for (uint64_t p = id; p < id + pages; ++p) {
      const size_t off = p * page_size;
      if (off + page_size <= from.size()) {
        to.replace(off, page_size, from, off, page_size);
      } else {
        to.replace(off, page_size, std::string(page_size, '\0'));
      }
    }
  }
}

}  // namespace rocky::engine::testing
