// FaultInjectionEnv: an in-memory Env that fails, tears and forgets writes on command.
//
// It models a disk with a volatile write cache: every Write lands in the cache (visible to reads at once) and
// becomes durable only at the next Sync of that file. PowerLoss() throws the cache away, optionally tearing
// the writes in it, which is what a crash at that instant can leave behind. Tests use it to cut power at every
// write and sync index of a workload and check that recovery always finds a committed state.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "rocky/engine/env.h"

namespace rocky::engine {

class FaultInjectionEnv : public Env {
 public:
  // What happens to writes that were not yet synced when power is lost.
  enum class LossMode : unsigned char {
    kDropAll,        // none of them reached the disk
    kKeepRandom,     // each one independently reached the disk or not (seeded)
    kTearRandom,     // like kKeepRandom, and a kept write may be cut at a random 512-byte sector boundary
  };

  FaultInjectionEnv();
  ~FaultInjectionEnv() override;

  // --- Env ---
  Result<std::unique_ptr<File>> OpenFile(const std::string& path, const FileOpenOptions& options) override;
  Result<bool> FileExists(const std::string& path) override;
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Status CreateDirs(const std::string& dir) override;
  Result<std::string> FileIdentity(const std::string& path) override;

  // --- Faults. All thread-safe. ---

  // Counts every Write and Sync on any file, starting at 0. After `n` more such operations have succeeded,
  // every following Write and Sync fails with kIOError ("injected crash") as if the process had died; reads
  // still work. Pass UINT64_MAX to disarm.
  void CrashAfterOps(uint64_t n);
  // The next Write whose op index is `index` fails with kIOError (once), without writing anything.
  void FailWriteAt(uint64_t index);
  // The next Sync whose op index is `index` fails with kIOError (once); the cache is kept, as after an fsync
  // error on Linux the data may or may not be on disk.
  void FailSyncAt(uint64_t index);
  // Writes that would make a file larger than `bytes` fail with kNoSpace. UINT64_MAX disarms.
  void SetDiskCapacity(uint64_t bytes);

  // Simulates power loss: every file reverts to its durable contents plus whatever part of its unsynced
  // writes `mode` lets through. Open File objects stay usable (tests normally drop them first), and faults
  // are disarmed.
  void PowerLoss(LossMode mode = LossMode::kDropAll, uint64_t seed = 0);

  // Number of Write and Sync operations so far (the index space of CrashAfterOps/FailWriteAt/FailSyncAt).
  uint64_t OpCount() const;
  uint64_t SyncCount() const;

  struct State;  // shared with the File objects; private to the implementation

 private:
  std::shared_ptr<State> state_;
};

}  // namespace rocky::engine
