// The in-memory file system, one model for both in-memory Envs: FaultInjectionEnv (a disk with a volatile
// write cache, and the faults tests ask of it) and NewMemoryEnv() (the same files, names and locks with the
// cache off: every change is durable at once, and no fault is ever armed).
#include "rocky/engine/fault_injection_env.h"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "env/lock_table.h"
#include "rocky/engine/status.h"

namespace rocky::engine {
namespace {

constexpr uint64_t kSectorSize = 512;  // the unit a torn write is cut at: sectors are written atomically

// A change that reached the cache but not the disk, kept in order so that PowerLoss can replay a subset.
struct PendingOp {
  enum class Kind : unsigned char { kWrite, kTruncate };
  Kind kind;
  uint64_t offset;   // kWrite: where; kTruncate: the new size
  std::string data;  // kWrite only
};

// One file (the inode). Shared by the name table and the Files open on it; guarded by State::mu.
struct Node {
  explicit Node(uint64_t node_id) : id(node_id) {}

  const uint64_t id;                // for FileIdentity: env_internal::NextFileId()
  std::string durable;              // what the disk holds
  std::string current;              // durable with `unsynced` applied: what reads see
  std::vector<PendingOp> unsynced;  // in the cache, oldest first
  env_internal::RangeLocks locks;
};

// A change of directory entries that reached the cache but not the disk: each (path, node) sets the path to
// name the node, or removes the name when node is null. Applied atomically (a rename is one change).
struct NameChange {
  std::vector<std::pair<std::string, std::shared_ptr<Node>>> entries;
  bool Touches(const std::string& dir) const {
    for (const auto& [path, node] : entries) {
      if (env_internal::ParentDir(path) == dir) return true;
    }
    return false;
  }
};

void ApplyNames(const NameChange& change, std::map<std::string, std::shared_ptr<Node>>* names) {
  for (const auto& [path, node] : change.entries) {
    if (node == nullptr) {
      names->erase(path);
    } else {
      (*names)[path] = node;
    }
  }
}

}  // namespace

// Everything behind one mutex: faults are global (one op counter across files), and tests are not about
// throughput. Shared with the File objects, which may outlive the Env.
struct FaultInjectionEnv::State {
  enum class OpKind : unsigned char { kWrite, kSync, kName };

  explicit State(bool with_cache) : write_cache(with_cache) {}

  // Every op that reaches the disk gets the next op index, whether it then fails or not, so an index names
  // the same operation in every run of a deterministic workload.
  Status StartOp(OpKind kind, std::string_view path, std::string_view what, uint64_t* index) {
    *index = op_count++;
    if (kind == OpKind::kSync) ++sync_count;
    if (crash_budget == 0) return CrashError(path, what);
    bool fail = fail_op_at.erase(*index) != 0;
    if (kind == OpKind::kWrite) fail = fail_write_at.erase(*index) != 0 || fail;
    if (kind == OpKind::kSync) fail = fail_sync_at.erase(*index) != 0 || fail;
    if (fail) {
      return Status::IOError(std::string(path) + ": injected " + std::string(what) + " failure at op " +
                             std::to_string(*index));
    }
    return Status::OK();
  }

  // Only successful ops bring the crash closer ("after n more such operations have succeeded").
  void OpSucceeded() {
    if (crash_budget != 0 && crash_budget != UINT64_MAX) --crash_budget;
  }

  // After the simulated crash the process is dead as far as the disk is concerned: nothing it does may reach
  // the disk, including truncates and name changes, or a crash test could see effects no real crash leaves.
  Status CheckAlive(std::string_view path, std::string_view what) const {
    if (crash_budget == 0) return CrashError(path, what);
    return Status::OK();
  }

  Status CrashError(std::string_view path, std::string_view what) const {
    return Status::IOError("injected crash: " + std::string(path) + ": " + std::string(what) +
                           " refused, the simulated process is dead (op count " + std::to_string(op_count) +
                           ")");
  }

  // A read about to happen: fails when a read fault covers it.
  Status StartRead(const std::string& path, uint64_t offset, size_t n) {
    const uint64_t index = read_count++;
    bool fail = fail_read_at.erase(index) != 0;
    for (const ReadFault& f : read_faults) {
      if (f.path == path && offset < f.offset + f.length && f.offset < offset + n) fail = true;
    }
    if (!fail) return Status::OK();
    return Status::IOError(path + ": read " + std::to_string(n) + " bytes at offset " +
                           std::to_string(offset) + ": Input/output error (injected at read " +
                           std::to_string(index) + ")");
  }

  // A directory change: visible at once, durable at the next SyncDir of a directory it touches (at once
  // without the write cache).
  void ChangeNames(NameChange change) {
    ApplyNames(change, &files);
    if (write_cache) pending_names.push_back(std::move(change));
  }

  void DisarmFaults() {
    crash_budget = UINT64_MAX;
    fail_write_at.clear();
    fail_sync_at.clear();
    fail_op_at.clear();
    fail_read_at.clear();
    read_faults.clear();
    capacity = UINT64_MAX;
  }

  struct ReadFault {
    std::string path;
    uint64_t offset;
    uint64_t length;
  };

  // False for NewMemoryEnv(): writes, truncates and name changes are durable at once, so nothing keeps a
  // second copy of them for PowerLoss (which that Env does not offer), and Sync and SyncDir have nothing to
  // do.
  const bool write_cache;
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<Node>> files;          // the names as reads see them
  std::map<std::string, std::shared_ptr<Node>> durable_names;  // the names on disk
  std::vector<NameChange> pending_names;                       // in the cache, oldest first
  uint64_t op_count = 0;
  uint64_t sync_count = 0;
  uint64_t read_count = 0;
  uint64_t crash_budget = UINT64_MAX;  // successful ops left before the crash; UINT64_MAX: disarmed
  std::set<uint64_t> fail_write_at;
  std::set<uint64_t> fail_sync_at;
  std::set<uint64_t> fail_op_at;
  std::set<uint64_t> fail_read_at;
  std::vector<ReadFault> read_faults;
  uint64_t capacity = UINT64_MAX;  // largest size a Write may give a file
};

namespace {

using State = FaultInjectionEnv::State;

class FaultFile final : public File {
 public:
  FaultFile(std::shared_ptr<State> state, std::shared_ptr<Node> node, std::string path, bool read_only)
      : state_(std::move(state)), node_(std::move(node)), path_(std::move(path)), read_only_(read_only) {}

  ~FaultFile() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    node_->locks.ReleaseAll(pid_);
  }

  FaultFile(const FaultFile&) = delete;
  FaultFile& operator=(const FaultFile&) = delete;

  Status Read(uint64_t offset, size_t n, char* dst, size_t* bytes_read) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    *bytes_read = 0;
    ROCKY_RETURN_IF_ERROR(state_->StartRead(path_, offset, n));
    *bytes_read = env_internal::ReadImage(node_->current, offset, n, dst);
    return Status::OK();
  }

  Status Write(uint64_t offset, std::string_view data) override {
    // Refused by the descriptor, like EBADF: never reaches the disk, so it takes no op index.
    if (read_only_) return ReadOnlyError("write");
    std::lock_guard<std::mutex> lock(state_->mu);
    uint64_t index;
    ROCKY_RETURN_IF_ERROR(state_->StartOp(State::OpKind::kWrite, path_, "write", &index));
    if (!data.empty() && data.size() <= UINT64_MAX - offset && offset + data.size() > node_->current.size() &&
        offset + data.size() > state_->capacity) {
      return Status::NoSpace(path_ + ": write of " + std::to_string(data.size()) + " bytes at offset " +
                             std::to_string(offset) + " (op " + std::to_string(index) +
                             ") exceeds the disk capacity of " + std::to_string(state_->capacity) + " bytes");
    }
    ROCKY_RETURN_IF_ERROR(env_internal::WriteImage(node_->current, offset, data, path_));
    if (state_->write_cache && !data.empty()) {
      node_->unsynced.push_back({PendingOp::Kind::kWrite, offset, std::string(data)});
    }
    state_->OpSucceeded();
    return Status::OK();
  }

  // Flushes the whole file's cache, including writes made through other Files of it, as fdatasync does.
  Status Sync() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    uint64_t index;
    ROCKY_RETURN_IF_ERROR(state_->StartOp(State::OpKind::kSync, path_, "sync", &index));
    if (state_->write_cache) {
      node_->durable = node_->current;
      node_->unsynced.clear();
    }
    state_->OpSucceeded();
    return Status::OK();
  }

  // Cached like a write (a size change is not durable before the next sync) but takes no op index. The
  // capacity does not apply: growing a file by truncation allocates nothing.
  Status Truncate(uint64_t size) override {
    if (read_only_) return ReadOnlyError("truncate");
    std::lock_guard<std::mutex> lock(state_->mu);
    ROCKY_RETURN_IF_ERROR(state_->CheckAlive(path_, "truncate"));
    ROCKY_RETURN_IF_ERROR(env_internal::ResizeImage(node_->current, size, path_));
    if (state_->write_cache) node_->unsynced.push_back({PendingOp::Kind::kTruncate, size, {}});
    return Status::OK();
  }

  Result<uint64_t> Size() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    return static_cast<uint64_t>(node_->current.size());
  }

  Status TryLock(LockKind kind, uint64_t start, uint64_t length) override {
    ROCKY_RETURN_IF_ERROR(env_internal::CheckLockAllowed(path_, read_only_, kind));
    std::lock_guard<std::mutex> lock(state_->mu);
    return node_->locks.TryLock(path_, pid_, kind, start, length);
  }

  Status Unlock(uint64_t start, uint64_t length) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    node_->locks.Unlock(pid_, start, length);
    return Status::OK();
  }

  Result<bool> IsLockedByOthers(uint64_t start, uint64_t length) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    return node_->locks.LockedByOthers(pid_, start, length);
  }

 private:
  Status ReadOnlyError(std::string_view operation) const {
    return Status::IOError(path_ + ": " + std::string(operation) + ": file is open read-only");
  }

  const std::shared_ptr<State> state_;
  const std::shared_ptr<Node> node_;
  const std::string path_;
  const bool read_only_;
  const uint64_t pid_ = env_internal::NextFakePid();  // each File object is its own "process" for locking
};

// The part of an unsynced write that reaches the disk under kTearRandom, given that the write is kept: all of
// it, or (half the time, when the write spans a sector boundary) the part before a random boundary inside it.
// A cut at offset 0 of the write is not offered, because that is the write being dropped, which the keep coin
// already covers.
std::string_view TearWrite(const PendingOp& op, std::mt19937_64& rng) {
  const uint64_t end = op.offset + op.data.size();
  const uint64_t first_boundary = (op.offset / kSectorSize + 1) * kSectorSize;
  if (first_boundary >= end || (rng() & 1) == 0) return op.data;
  const uint64_t boundaries = (end - 1 - first_boundary) / kSectorSize + 1;
  const uint64_t cut = first_boundary + (rng() % boundaries) * kSectorSize;
  return std::string_view(op.data).substr(0, static_cast<size_t>(cut - op.offset));
}

}  // namespace

FaultInjectionEnv::FaultInjectionEnv() : FaultInjectionEnv(/*write_cache=*/true) {}
FaultInjectionEnv::FaultInjectionEnv(bool write_cache) : state_(std::make_shared<State>(write_cache)) {}
FaultInjectionEnv::~FaultInjectionEnv() = default;

Result<std::unique_ptr<File>> FaultInjectionEnv::OpenFile(const std::string& path,
                                                          const FileOpenOptions& options) {
  std::shared_ptr<Node> node;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->files.find(path);
    if (it != state_->files.end()) {
      if (options.create && options.exclusive) return Status::IOError(path + ": open: File exists");
      node = it->second;
    } else if (options.create) {
      uint64_t index;
      ROCKY_RETURN_IF_ERROR(state_->StartOp(State::OpKind::kName, path, "create", &index));
      node = std::make_shared<Node>(env_internal::NextFileId());
      state_->ChangeNames(NameChange{{{path, node}}});
      state_->OpSucceeded();
    } else {
      return Status::NotFound(path + ": open: no such file");
    }
  }
  return std::unique_ptr<File>(std::make_unique<FaultFile>(state_, std::move(node), path, options.read_only));
}

Result<bool> FaultInjectionEnv::FileExists(const std::string& path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->files.contains(path);
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  uint64_t index;
  ROCKY_RETURN_IF_ERROR(state_->StartOp(State::OpKind::kName, path, "remove", &index));
  if (!state_->files.contains(path)) return Status::NotFound(path + ": remove: no such file");
  state_->ChangeNames(NameChange{{{path, nullptr}}});
  state_->OpSucceeded();
  return Status::OK();
}

Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(state_->mu);
  uint64_t index;
  ROCKY_RETURN_IF_ERROR(state_->StartOp(State::OpKind::kName, from, "rename to " + to, &index));
  auto it = state_->files.find(from);
  if (it == state_->files.end()) return Status::NotFound(from + ": rename to " + to + ": no such file");
  if (from != to) state_->ChangeNames(NameChange{{{to, it->second}, {from, nullptr}}});
  state_->OpSucceeded();
  return Status::OK();
}

Result<bool> FaultInjectionEnv::LinkFile(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(state_->mu);
  uint64_t index;
  ROCKY_RETURN_IF_ERROR(state_->StartOp(State::OpKind::kName, from, "link to " + to, &index));
  auto it = state_->files.find(from);
  if (it == state_->files.end()) return Status::NotFound(from + ": link to " + to + ": no such file");
  const bool linked = !state_->files.contains(to);
  if (linked) state_->ChangeNames(NameChange{{{to, it->second}}});
  state_->OpSucceeded();
  return linked;
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  const std::string d = env_internal::NormalDir(dir);
  std::lock_guard<std::mutex> lock(state_->mu);
  uint64_t index;
  ROCKY_RETURN_IF_ERROR(state_->StartOp(State::OpKind::kName, d, "sync directory", &index));
  std::vector<NameChange> still_pending;
  for (NameChange& change : state_->pending_names) {
    if (change.Touches(d)) {
      ApplyNames(change, &state_->durable_names);
    } else {
      still_pending.push_back(std::move(change));
    }
  }
  state_->pending_names = std::move(still_pending);
  state_->OpSucceeded();
  return Status::OK();
}

Result<std::vector<std::string>> FaultInjectionEnv::ListDir(const std::string& dir) {
  const std::string d = env_internal::NormalDir(dir);
  std::lock_guard<std::mutex> lock(state_->mu);
  std::vector<std::string> out;
  for (const auto& [path, node] : state_->files) {
    if (env_internal::ParentDir(path) == d) out.push_back(env_internal::BaseName(path));
  }
  return out;
}

Status FaultInjectionEnv::CreateDirs(const std::string& dir) {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->CheckAlive(dir, "create directories");
}

Result<std::string> FaultInjectionEnv::FileIdentity(const std::string& path) {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->files.find(path);
  if (it == state_->files.end()) return Status::NotFound(path + ": identity: no such file");
  return "mem:" + std::to_string(it->second->id);
}

void FaultInjectionEnv::CrashAfterOps(uint64_t n) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->crash_budget = n;
}

void FaultInjectionEnv::FailWriteAt(uint64_t index) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->fail_write_at.insert(index);
}

void FaultInjectionEnv::FailSyncAt(uint64_t index) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->fail_sync_at.insert(index);
}

void FaultInjectionEnv::FailOpAt(uint64_t index) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->fail_op_at.insert(index);
}

void FaultInjectionEnv::FailReadAt(uint64_t index) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->fail_read_at.insert(index);
}

void FaultInjectionEnv::FailReadsOf(const std::string& path, uint64_t offset, uint64_t length) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->read_faults.push_back({path, offset, length});
}

void FaultInjectionEnv::ClearFaults() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->DisarmFaults();
}

void FaultInjectionEnv::SetDiskCapacity(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->capacity = bytes;
}

// Files are visited in path order (the names reads see, then names only the disk still has) and their ops
// oldest first, then the unsynced directory changes oldest first, all drawing from one generator, so a seed
// always produces the same disk. Only the raw 64-bit output of mt19937_64 is used (its sequence is fixed by
// the standard, unlike the distributions'), which keeps that true across standard libraries.
void FaultInjectionEnv::PowerLoss(LossMode mode, uint64_t seed) {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::mt19937_64 rng(seed);
  std::vector<std::pair<std::string, Node*>> nodes;
  std::set<const Node*> seen;
  for (const auto* names : {&state_->files, &state_->durable_names}) {
    for (const auto& [path, node] : *names) {
      if (seen.insert(node.get()).second) nodes.emplace_back(path, node.get());
    }
  }
  for (auto& [path, node] : nodes) {
    if (mode != LossMode::kDropAll) {
      // Each op, truncates included, reaches the disk or not on its own coin.
      for (const PendingOp& op : node->unsynced) {
        if ((rng() & 1) == 0) continue;
        if (op.kind == PendingOp::Kind::kTruncate) {
          // Cannot fail in practice: `current` had this size once. PowerLoss has no way to report an error.
          (void)env_internal::ResizeImage(node->durable, op.offset, path);
          continue;
        }
        std::string_view data =
            mode == LossMode::kTearRandom ? TearWrite(op, rng) : std::string_view(op.data);
        (void)env_internal::WriteImage(node->durable, op.offset, data, path);
      }
    }
    node->current = node->durable;
    node->unsynced.clear();
  }
  if (mode != LossMode::kDropAll) {
    for (const NameChange& change : state_->pending_names) {
      if ((rng() & 1) != 0) ApplyNames(change, &state_->durable_names);
    }
  }
  state_->pending_names.clear();
  state_->files = state_->durable_names;
  state_->DisarmFaults();
}

uint64_t FaultInjectionEnv::OpCount() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->op_count;
}

uint64_t FaultInjectionEnv::SyncCount() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->sync_count;
}

uint64_t FaultInjectionEnv::ReadCount() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->read_count;
}

std::unique_ptr<Env> NewMemoryEnv() {
  return std::unique_ptr<Env>(new FaultInjectionEnv(/*write_cache=*/false));
}

}  // namespace rocky::engine
