// Transactions over a Database (db.h): a read transaction is a stable snapshot, a write transaction the one
// writer's changes, made visible and durable by Commit. Their tables are in table.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rocky/engine/status.h"
#include "rocky/engine/table.h"

namespace rocky::engine {

class ReadTransaction {
 public:
  virtual ~ReadTransaction() = default;

  // Id of the commit this snapshot shows.
  virtual uint64_t snapshot_id() const = 0;
  // kNotFound (naming the table) when it does not exist in this snapshot. The table belongs to the
  // transaction.
  virtual Result<const ReadableTable*> OpenTable(std::string_view name) = 0;
  virtual Result<std::vector<std::string>> ListTables() = 0;
};

class WriteTransaction {
 public:
  // Destroying an uncommitted transaction aborts it.
  virtual ~WriteTransaction() = default;

  virtual uint64_t id() const = 0;
  // Opens the table, creating it when missing. The table belongs to the transaction. A name is any non-empty
  // byte string up to kMaxKeySize bytes (in a format version 1 file, up to InlineKeyLimit() - 4 bytes).
  virtual Result<WritableTable*> OpenTable(std::string_view name) = 0;
  // Returns true when the table existed. Tables opened under that name become unusable.
  virtual Result<bool> DeleteTable(std::string_view name) = 0;
  virtual Result<std::vector<std::string>> ListTables() = 0;

  // Makes every change visible atomically (and durable, unless the durability is kNoSync). After a failed
  // commit nothing of the transaction is visible to this Database's readers, the last durable commit is
  // intact on disk, and the Database refuses further writes (kPoisoned) until reopened. Whether the failed
  // commit can still appear after a reopen is told by the code:
  //   - kOutcomeUnknown: the commit's slot was written but its sync failed (or the write of the slot itself
  //     failed half way), and making the slot invalid again failed too. The commit may have been kept: the
  //     next Database::Open settles it (its OpenReport::commit_id is this transaction's id() if it was kept).
  //   - any other code (kIOError, kNoSpace, ...): certainly not committed. Either nothing of the commit's
  //     slot was written, or its slot was overwritten with zeros and that was synced. The message says "not
  //     committed; the state is unchanged": the file's current commit is the last durable one (commits made
  //     with kNoSync since it, which were visible to this Database's readers, are lost with it).
  virtual Status Commit() = 0;
  // Drops every change. Also what the destructor does.
  virtual void Abort() = 0;
};

}  // namespace rocky::engine
