// FaultInjectionEnv: an in-memory Env that fails, tears and forgets writes on command. Test-only: this header
// is outside include/, reached through engine_internal_dep (the engine's tests and fuzzers), not engine_dep.
//
// It models a disk with a volatile write cache: every Write lands in the cache (visible to reads at once) and
// becomes durable only at the next Sync of that file. Directory entries are cached the same way: a file
// created, linked, renamed or removed has (or loses) its name at once, but the change is durable only once
// its directory is synced (SyncDir), so a new file whose directory was never synced is gone after a power
// loss. PowerLoss() throws the caches away, optionally keeping or tearing some of what was in them, which is
// what a crash at that instant can leave behind. Tests use it to cut power at every op index of a workload
// and check that recovery always finds a committed state, and to fail single reads, writes, syncs and
// directory operations.
//
// Directories themselves are not modelled: a path's directory is what precedes its last '/', CreateDirs
// succeeds without doing anything, and every directory exists. A rename across two directories is
// made durable by syncing either of them.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rocky/engine/env.h"

namespace rocky::engine {

class FaultInjectionEnv : public Env {
 public:
  // What happens to writes that were not yet synced when power is lost.
  enum class LossMode : unsigned char {
    kDropAll,     // none of them reached the disk
    kKeepRandom,  // each one independently reached the disk or not (seeded)
    kTearRandom,  // like kKeepRandom, and a kept write may be cut at a random 512-byte sector boundary
  };

  FaultInjectionEnv();
  ~FaultInjectionEnv() override;

  // --- Env ---
  Result<std::unique_ptr<File>> OpenFile(const std::string& path, const FileOpenOptions& options) override;
  Result<bool> FileExists(const std::string& path) override;
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Result<bool> LinkFile(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status CreateDirs(const std::string& dir) override;
  Result<std::string> FileIdentity(const std::string& path) override;

  // --- Faults. All thread-safe. ---

  // Ops are what changes the disk: every Write and Sync of any file, and the directory operations (creating a
  // file by opening it, RemoveFile, RenameFile, LinkFile, SyncDir). They are counted from 0; reads, truncates
  // and CreateDirs are not ops. After `n` more ops have succeeded, every following op (and truncate) fails
  // with kIOError ("injected crash") as if the process had died; reads still work. UINT64_MAX disarms.
  void CrashAfterOps(uint64_t n);
  // The next Write whose op index is `index` fails with kIOError (once), without writing anything.
  void FailWriteAt(uint64_t index);
  // The next Sync whose op index is `index` fails with kIOError (once); the cache is kept, as after an fsync
  // error on Linux the data may or may not be on disk.
  void FailSyncAt(uint64_t index);
  // The op whose index is `index`, whatever its kind, fails with kIOError (once). A failed Write or directory
  // operation changes nothing; a failed Sync keeps the cache (as FailSyncAt).
  void FailOpAt(uint64_t index);
  // Writes that would make a file larger than `bytes` fail with kNoSpace. UINT64_MAX disarms.
  void SetDiskCapacity(uint64_t bytes);

  // Read faults, as a disk with a bad sector or a flaky cable gives them: the read fails with kIOError
  // ("Input/output error"), naming the file and the offset, and copies nothing.
  // The read whose read index is `index` (reads of any file, counted from 0) fails, once.
  void FailReadAt(uint64_t index);
  // Every read of `path` (as it was opened) that overlaps [offset, offset + length) fails, until ClearFaults
  // or PowerLoss.
  void FailReadsOf(const std::string& path, uint64_t offset, uint64_t length);

  // Disarms every fault (crash, failing ops and reads, disk capacity) without losing power.
  void ClearFaults();

  // Simulates power loss: every file reverts to its durable contents plus whatever part of its unsynced
  // writes `mode` lets through, and the directory entries to their durable state plus, in the kKeep and kTear
  // modes, each unsynced directory change (in order) on a coin of its own. Open File objects stay usable
  // (tests normally drop them first), and faults are disarmed.
  void PowerLoss(LossMode mode = LossMode::kDropAll, uint64_t seed = 0);

  // Number of ops so far (the index space of CrashAfterOps/FailWriteAt/FailSyncAt/FailOpAt).
  uint64_t OpCount() const;
  uint64_t SyncCount() const;
  // Number of reads so far (the index space of FailReadAt).
  uint64_t ReadCount() const;

  struct State;  // shared with the File objects; private to the implementation

 private:
  // NewMemoryEnv() is this file system without the write cache (one in-memory model, not two).
  friend std::unique_ptr<Env> NewMemoryEnv();
  explicit FaultInjectionEnv(bool write_cache);

  std::shared_ptr<State> state_;
};

}  // namespace rocky::engine
