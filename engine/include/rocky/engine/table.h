// Tables as a transaction sees them: a table's keys and values, the ranges a scan covers, the cursors that
// walk them, and the limits on key and value sizes. Tables are reached through a transaction (transaction.h)
// of a Database (db.h) and belong to it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rocky/engine/status.h"

namespace rocky::engine {

// Bounds of a scan: keys k with lower <= k < upper (each bound optional).
struct KeyRange {
  std::optional<std::string> lower;  // inclusive
  std::optional<std::string> upper;  // exclusive

  static KeyRange All() { return {}; }
  // Every key that starts with prefix.
  static KeyRange Prefix(std::string_view prefix);
};

// Walks the keys of one table of one snapshot in order, forward or backward, within a KeyRange.
// Not thread-safe. Usage:
//   for (c->SeekToFirst(); c->Valid(); c->Next()) use(c->key(), c->value());
//   if (!c->status().ok()) ...
// An error (a corrupt page) makes Valid() false and is kept in status(); a cursor never yields wrong data.
// In a write transaction, any change to the table invalidates its cursors (using one afterwards is
// undefined).
class Cursor {
 public:
  virtual ~Cursor() = default;

  virtual bool Valid() const = 0;
  virtual void SeekToFirst() = 0;
  virtual void SeekToLast() = 0;
  // First key >= target (within the range).
  virtual void Seek(std::string_view target) = 0;
  // Last key <= target (within the range).
  virtual void SeekForPrev(std::string_view target) = 0;
  virtual void Next() = 0;
  virtual void Prev() = 0;

  // Requires Valid(). The views stay valid until the cursor moves or is destroyed.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;

  virtual Status status() const = 0;
};

// A table as seen by a transaction's snapshot.
class ReadableTable {
 public:
  virtual ~ReadableTable() = default;

  virtual const std::string& name() const = 0;
  // Number of keys, in O(1).
  virtual uint64_t Len() const = 0;
  // True and *value set when key exists; false when it does not.
  virtual Result<bool> Get(std::string_view key, std::string* value) const = 0;
  virtual std::unique_ptr<Cursor> NewCursor(KeyRange range = {}) const = 0;
};

// Keys (and table names) may be of any length up to kMaxKeySize, values up to kMaxValueSize; both are
// bounded only so that a length can never overflow a size computation.
inline constexpr uint64_t kMaxKeySize = uint64_t{1} << 40;
inline constexpr uint64_t kMaxValueSize = uint64_t{1} << 40;

// Keys up to this many bytes are stored whole in their leaf (about a quarter page less overheads: 997 bytes
// at 4 KiB pages); a longer key keeps a prefix in the leaf and the whole key on overflow pages, which costs
// reading those pages whenever a search key shares the whole stored prefix. Files of format version 1
// (written before long keys existed) still accept keys and table names only up to their old limits,
// InlineKeyLimit() and InlineKeyLimit() - 4 bytes, so that older builds can keep reading them.
uint32_t InlineKeyLimit(uint32_t page_size);

class WritableTable : public ReadableTable {
 public:
  // Inserts key, or replaces its value. Returns true when a value was replaced. Keys and values may be of any
  // size up to kMaxKeySize and kMaxValueSize (large ones are stored on overflow pages).
  virtual Result<bool> Insert(std::string_view key, std::string_view value) = 0;
  // Returns true when the key existed.
  virtual Result<bool> Remove(std::string_view key) = 0;
  // Removes every key in range; returns how many.
  virtual Result<uint64_t> RemoveRange(const KeyRange& range) = 0;
};

}  // namespace rocky::engine
