// Options for opening a database and for write transactions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace rocky::engine {

class Env;

// How a commit reaches the disk.
enum class Durability : unsigned char {
  // Commit returns only once the transaction survives a power loss. A small commit costs one fdatasync.
  kDurable,
  // Commit makes the changes visible to new readers but not durable: a crash loses them (never the last
  // durable commit, never consistency). Pages of the last durable commit that they free are not reused before
  // the next durable commit (pages written and freed again by kNoSync commits alone are). So a kDurable
  // transaction begun while such pages wait first makes the kNoSync commits durable (an empty durable commit,
  // in BeginWrite, which reports its errors), and can then reuse them instead of growing the file.
  // For bulk loads and tests; the next durable commit, or Close(), makes everything durable.
  kNoSync,
};

struct Options {
  // The OS abstraction; nullptr means Env::Default(). Not owned; must outlive the database.
  Env* env = nullptr;

  // Page size of a new file: a power of two from 512 to 65536. An existing file keeps its own.
  uint32_t page_size = 4096;

  // Create the file when it does not exist.
  bool create_if_missing = true;

  // Open for reading only: no writer lock is taken, the file is never modified, and write transactions fail.
  // Another process may write the file at the same time; readers see its durable commits.
  bool read_only = false;

  // Bytes of clean pages kept in memory (shared by all readers and the writer).
  size_t cache_bytes = size_t{64} << 20;

  // Default durability of write transactions.
  Durability durability = Durability::kDurable;
};

struct WriteOptions {
  // Unset: the database's Options::durability.
  std::optional<Durability> durability;
};

}  // namespace rocky::engine
