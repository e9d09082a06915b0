// TableMeta: the catalog's record of one table (the value stored under the table's name).
//   u64 root page (0 = empty) | u64 number of keys
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/coding.h"

namespace rocky::engine {

struct TableMeta {
  uint64_t root = 0;
  uint64_t len = 0;
};

inline constexpr size_t kTableMetaSize = 16;

inline std::string EncodeTableMeta(const TableMeta& m) {
  std::string out(kTableMetaSize, '\0');
  EncodeU64(out.data(), m.root);
  EncodeU64(out.data() + 8, m.len);
  return out;
}

// "table 'name'" for messages. A name may be megabytes long (format version 2), so a long one is cut to its
// first 64 bytes and its length, keeping error messages readable and small.
inline std::string TableLabel(std::string_view name) {
  constexpr size_t kShown = 64;
  if (name.size() <= 2 * kShown) return "table '" + std::string(name) + "'";
  return "table '" + std::string(name.substr(0, kShown)) + "...' (a name of " + std::to_string(name.size()) +
         " bytes)";
}

// False when the record has the wrong size (corruption).
inline bool DecodeTableMeta(std::string_view bytes, TableMeta* m) {
  if (bytes.size() != kTableMetaSize) return false;
  m->root = DecodeU64(bytes.data());
  m->len = DecodeU64(bytes.data() + 8);
  return true;
}

}  // namespace rocky::engine
