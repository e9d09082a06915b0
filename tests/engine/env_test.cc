// Tests of the OS abstraction: the POSIX Env, the in-memory Env and the FaultInjectionEnv.
#include "rocky/engine/env.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "rocky/engine/fault_injection_env.h"
#include "rocky/engine/status.h"
#include "temp_dir.h"

namespace rocky::engine {
namespace {

using LossMode = FaultInjectionEnv::LossMode;

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// A fresh private folder, removed with everything in it at the end of the test (tests/support/temp_dir.h).
struct TempDir : rocky_test::TempDir {
  TempDir() : rocky_test::TempDir("engine-env") {}
};

// The value of a Result that must be OK. (Result has no operator* for rvalues, so `*env->FileExists(p)`
// does not compile.)
template <typename T>
T Get(Result<T> r) {
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

std::unique_ptr<File> Open(Env* env, const std::string& path, bool create = true, bool read_only = false) {
  FileOpenOptions options;
  options.create = create;
  options.read_only = read_only;
  auto f = env->OpenFile(path, options);
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  return std::move(f).value();
}

std::string ReadAll(File* f) {
  auto size = f->Size();
  REQUIRE(size.ok());
  std::string buf(*size, '\0');
  size_t got = 0;
  REQUIRE(f->Read(0, buf.size(), buf.data(), &got).ok());
  REQUIRE(got == buf.size());
  return buf;
}

uint64_t SizeOf(File* f) {
  auto size = f->Size();
  REQUIRE(size.ok());
  return *size;
}

// The pid in "... locked by process N", or nullopt when the message does not have that shape.
std::optional<long> LockHolder(const Status& s) {
  constexpr std::string_view kMarker = "locked by process ";
  const size_t at = s.message().find(kMarker);
  if (at == std::string::npos) return std::nullopt;
  const std::string rest = s.message().substr(at + kMarker.size());
  if (rest.empty() || rest[0] < '0' || rest[0] > '9') return std::nullopt;
  return std::stol(rest);
}

// The Env contract every implementation must meet; `dir` is an existing directory (or, for the in-memory
// Envs, any prefix).
void CheckBasicContract(Env* env, const std::string& dir) {
  const std::string path = dir + "/a";
  const std::string other = dir + "/b";

  // A missing file without `create` is NotFound, and the message names it.
  auto exists = env->FileExists(path);
  REQUIRE(exists.ok());
  CHECK_FALSE(*exists);
  auto missing = env->OpenFile(path, FileOpenOptions{});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().IsNotFound());
  CHECK(Contains(missing.status().message(), path));
  auto missing_id = env->FileIdentity(path);
  REQUIRE_FALSE(missing_id.ok());
  CHECK(missing_id.status().IsNotFound());

  auto f = Open(env, path);
  CHECK(Get(env->FileExists(path)));
  CHECK(SizeOf(f.get()) == 0);

  // Writes at absolute offsets; a write past the end zero-fills the gap.
  REQUIRE(f->Write(0, "hello").ok());
  REQUIRE(f->Write(10, "world").ok());
  CHECK(SizeOf(f.get()) == 15);
  CHECK(ReadAll(f.get()) == std::string("hello\0\0\0\0\0world", 15));

  // Short reads only at the end of the file.
  char buf[32] = {};
  size_t got = 99;
  REQUIRE(f->Read(1, 4, buf, &got).ok());
  CHECK(got == 4);
  CHECK(std::string_view(buf, got) == "ello");
  REQUIRE(f->Read(12, 10, buf, &got).ok());
  CHECK(got == 3);
  CHECK(std::string_view(buf, got) == "rld");
  REQUIRE(f->Read(100, 10, buf, &got).ok());
  CHECK(got == 0);

  // Truncate shrinks and grows (with zeros).
  REQUIRE(f->Truncate(7).ok());
  CHECK(ReadAll(f.get()) == std::string("hello\0\0", 7));
  REQUIRE(f->Truncate(9).ok());
  CHECK(ReadAll(f.get()) == std::string("hello\0\0\0\0", 9));
  REQUIRE(f->Write(5, "!!").ok());
  REQUIRE(f->Sync().ok());

  // A second File of the same path sees the same contents.
  auto again = Open(env, path, /*create=*/false);
  CHECK(ReadAll(again.get()) == std::string("hello!!\0\0", 9));

  // Read-only: reads work, writes and truncates are refused and change nothing, exclusive locks are refused
  // (as fcntl does with EBADF) but shared ones are fine.
  auto ro = Open(env, path, /*create=*/false, /*read_only=*/true);
  CHECK(ReadAll(ro.get()) == std::string("hello!!\0\0", 9));
  Status w = ro->Write(0, "HELLO");
  CHECK_FALSE(w.ok());
  CHECK(Contains(w.message(), path));
  CHECK_FALSE(ro->Truncate(0).ok());
  CHECK(ReadAll(f.get()) == std::string("hello!!\0\0", 9));
  Status x = ro->TryLock(LockKind::kExclusive, 0, 1);
  CHECK_FALSE(x.ok());
  CHECK_FALSE(x.IsBusy());
  CHECK(ro->TryLock(LockKind::kShared, 0, 1).ok());
  CHECK(ro->Unlock(0, 1).ok());
  ro.reset();
  again.reset();

  // Identity: stable per file, follows it across a rename, differs between files.
  auto id = env->FileIdentity(path);
  REQUIRE(id.ok());
  CHECK(Get(env->FileIdentity(path)) == *id);
  auto o = Open(env, other);
  auto other_id = env->FileIdentity(other);
  REQUIRE(other_id.ok());
  CHECK(*other_id != *id);
  o.reset();

  // Rename replaces the target; the moved file keeps its contents and identity, and an open File keeps
  // working.
  REQUIRE(env->RenameFile(path, other).ok());
  CHECK_FALSE(Get(env->FileExists(path)));
  CHECK(Get(env->FileExists(other)));
  CHECK(Get(env->FileIdentity(other)) == *id);
  auto moved = Open(env, other, /*create=*/false);
  CHECK(ReadAll(moved.get()) == std::string("hello!!\0\0", 9));
  CHECK(ReadAll(f.get()) == std::string("hello!!\0\0", 9));
  Status bad_rename = env->RenameFile(path, other);
  CHECK(bad_rename.IsNotFound());
  CHECK(Contains(bad_rename.message(), path));

  // LinkFile gives the file a second name and never replaces: false, changing nothing, when the name is
  // taken.
  const std::string third = dir + "/c";
  CHECK(Get(env->LinkFile(other, third)));
  CHECK(Get(env->FileIdentity(third)) == *id);
  auto linked = Open(env, third, /*create=*/false);
  CHECK(ReadAll(linked.get()) == std::string("hello!!\0\0", 9));
  linked.reset();
  auto taken = Open(env, dir + "/taken");
  REQUIRE(taken->Write(0, "mine").ok());
  CHECK_FALSE(Get(env->LinkFile(other, dir + "/taken")));
  CHECK(ReadAll(taken.get()) == "mine");
  taken.reset();
  CHECK(env->LinkFile(dir + "/nope", dir + "/nope2").status().IsNotFound());

  // ListDir names the directory's files (names, not paths), and only those of that directory.
  {
    std::vector<std::string> names = Get(env->ListDir(dir));
    std::set<std::string> got(names.begin(), names.end());
    CHECK(got.count("b") == 1);
    CHECK(got.count("c") == 1);
    CHECK(got.count("taken") == 1);
    CHECK(got.count("a") == 0);
  }
  REQUIRE(env->RemoveFile(third).ok());
  REQUIRE(env->RemoveFile(dir + "/taken").ok());

  // An exclusive create refuses an existing file and changes nothing.
  auto excl = env->OpenFile(other, FileOpenOptions{.create = true, .exclusive = true});
  CHECK_FALSE(excl.ok());
  CHECK(Contains(excl.status().message(), other));
  auto fresh = env->OpenFile(dir + "/fresh", FileOpenOptions{.create = true, .exclusive = true});
  REQUIRE_MESSAGE(fresh.ok(), fresh.status().ToString());
  fresh->reset();
  REQUIRE(env->RemoveFile(dir + "/fresh").ok());

  REQUIRE(env->RemoveFile(other).ok());
  CHECK_FALSE(Get(env->FileExists(other)));
  CHECK(env->RemoveFile(other).IsNotFound());

  // Nested directories; a file can be created in the deepest one and the directory synced.
  const std::string nested = dir + "/x/y/z";
  REQUIRE(env->CreateDirs(nested).ok());
  CHECK(env->CreateDirs(nested).ok());  // idempotent
  Open(env, nested + "/f");
  CHECK(Get(env->FileExists(nested + "/f")));
  CHECK(env->SyncDir(nested).ok());
}

// The lock emulation of the in-memory Envs, where each File object acts as its own process.
void CheckEmulatedLocks(Env* env, const std::string& path) {
  auto a = Open(env, path);
  auto b = Open(env, path, /*create=*/false);
  auto c = Open(env, path, /*create=*/false);

  REQUIRE(a->TryLock(LockKind::kExclusive, 0, 10).ok());
  Status busy = b->TryLock(LockKind::kExclusive, 5, 1);
  REQUIRE(busy.IsBusy());
  CHECK(Contains(busy.message(), path + " is locked by process "));
  const std::optional<long> a_pid = LockHolder(busy);
  REQUIRE(a_pid.has_value());
  // The same holder is reported to everyone, also for a shared request against an exclusive lock.
  Status busy2 = c->TryLock(LockKind::kShared, 0, 1);
  REQUIRE(busy2.IsBusy());
  CHECK(LockHolder(busy2) == a_pid);

  CHECK_FALSE(Get(a->IsLockedByOthers(0, 10)));  // own locks are not "others"
  CHECK(Get(b->IsLockedByOthers(0, 10)));
  CHECK(Get(b->IsLockedByOthers(9, 100)));
  CHECK_FALSE(Get(b->IsLockedByOthers(10, 10)));

  // Converting to shared lets other shared holders in, but still conflicts with exclusive.
  REQUIRE(a->TryLock(LockKind::kShared, 0, 10).ok());
  REQUIRE(b->TryLock(LockKind::kShared, 0, 10).ok());
  CHECK(c->TryLock(LockKind::kExclusive, 3, 1).IsBusy());
  CHECK(Get(c->IsLockedByOthers(0, 10)));  // a shared lock conflicts with an exclusive one
  REQUIRE(a->Unlock(0, 10).ok());
  REQUIRE(b->Unlock(0, 10).ok());
  CHECK_FALSE(Get(c->IsLockedByOthers(0, 10)));

  // Unlocking the middle of a range splits it.
  REQUIRE(a->TryLock(LockKind::kExclusive, 0, 100).ok());
  REQUIRE(a->Unlock(40, 20).ok());
  CHECK(b->TryLock(LockKind::kExclusive, 45, 10).ok());
  CHECK(b->TryLock(LockKind::kExclusive, 0, 1).IsBusy());
  CHECK(b->TryLock(LockKind::kExclusive, 90, 1).IsBusy());
  CHECK(c->TryLock(LockKind::kExclusive, 50, 1).IsBusy());
  // b holds 45..55 now and is reported as a different process than a.
  Status by_b = c->TryLock(LockKind::kShared, 50, 1);
  REQUIRE(by_b.IsBusy());
  REQUIRE(LockHolder(by_b).has_value());
  CHECK(LockHolder(by_b) != a_pid);

  // Length 0 reaches to the end of any possible file, as with fcntl.
  REQUIRE(a->TryLock(LockKind::kExclusive, 1000, 0).ok());
  CHECK(c->TryLock(LockKind::kExclusive, uint64_t{1} << 50, 1).IsBusy());

  // Other files are unaffected.
  auto unrelated = Open(env, path + ".other");
  CHECK(unrelated->TryLock(LockKind::kExclusive, 0, 0).ok());

  // Destroying a File releases its locks.
  a.reset();
  b.reset();
  CHECK_FALSE(Get(c->IsLockedByOthers(0, 0)));
  CHECK(c->TryLock(LockKind::kExclusive, 0, 0).ok());
}

// ---------------------------------------------------------------------------------------------------------
// POSIX

TEST_CASE("posix: basic contract") {
  TempDir dir;
  CheckBasicContract(Env::Default(), dir.path());
}

TEST_CASE("posix: Default() is one object") { CHECK(Env::Default() == Env::Default()); }

TEST_CASE("posix: files are created 0600 and directories 0700") {
  TempDir dir;
  Env* env = Env::Default();
  const std::string path = dir.path() + "/f";
  Open(env, path);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);

  // Directories that always exist, as DirName() of a database path may yield.
  CHECK(env->CreateDirs("/").ok());
  CHECK(env->CreateDirs(".").ok());
  CHECK(env->CreateDirs("").ok());
  CHECK(env->SyncDir(".").ok());

  const std::string nested = dir.path() + "/p/q";
  REQUIRE(env->CreateDirs(nested + "/").ok());
  for (const std::string& d : {dir.path() + "/p", nested}) {
    REQUIRE(::stat(d.c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK((st.st_mode & 07777) == 0700);
  }
}

TEST_CASE("posix: errors name the path, the operation and the cause") {
  TempDir dir;
  Env* env = Env::Default();
  const std::string file = dir.path() + "/file";
  Open(env, file);

  // unlink(2) of a directory: EISDIR, an I/O error that says what was tried on what.
  Status s = env->RemoveFile(dir.path());
  CHECK(s.code() == Status::Code::kIOError);
  CHECK(Contains(s.message(), dir.path()));
  CHECK(Contains(s.message(), "unlink"));
  CHECK(Contains(s.message(), std::strerror(EISDIR)));

  // A directory cannot be opened as a file.
  auto d = env->OpenFile(dir.path(), FileOpenOptions{.create = false, .read_only = true});
  CHECK_FALSE(d.ok());

  // A file in the way of CreateDirs.
  Status in_the_way = env->CreateDirs(file + "/sub");
  CHECK_FALSE(in_the_way.ok());
  CHECK(Contains(in_the_way.message(), file));

  // Missing things: NotFound, or simply "does not exist".
  CHECK(env->SyncDir(dir.path() + "/nope").IsNotFound());
  auto under_file = env->FileExists(file + "/x");
  REQUIRE(under_file.ok());
  CHECK_FALSE(*under_file);
}

TEST_CASE("posix: a full disk is kNoSpace naming the file") {
  // /dev/full fails every write with ENOSPC.
  if (::access("/dev/full", W_OK) != 0) {
    MESSAGE("skipped: /dev/full is not writable here");
    return;
  }
  auto f = Open(Env::Default(), "/dev/full", /*create=*/false);
  Status s = f->Write(0, "x");
  CHECK(s.IsNoSpace());
  CHECK(Contains(s.message(), "/dev/full"));
}

TEST_CASE("posix: huge offsets are refused before reaching the kernel") {
  TempDir dir;
  auto f = Open(Env::Default(), dir.path() + "/f");
  CHECK(f->Write(UINT64_MAX - 1, "xy").code() == Status::Code::kInvalidArgument);
  char c;
  size_t got = 1;
  CHECK(f->Read(uint64_t{1} << 63, 1, &c, &got).code() == Status::Code::kInvalidArgument);
  CHECK(got == 0);
  CHECK(f->TryLock(LockKind::kExclusive, uint64_t{1} << 63, 1).code() == Status::Code::kInvalidArgument);
}

// Kills and reaps the child when the test ends, whichever way it ends.
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ~ChildGuard() { Reap(); }
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;

  void Reap() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  pid_t pid_;
};

TEST_CASE("posix: a lock held by another process is reported with that process's pid") {
  TempDir dir;
  Env* env = Env::Default();
  const std::string path = dir.path() + "/locked";
  auto f = Open(env, path);

  int ready[2];
  int hold[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(hold) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: exclusive lock on [0, 10), shared on [100, 110), report, then wait to be killed.
    ::close(ready[0]);
    ::close(hold[1]);
    char ok = '0';
    auto cf = env->OpenFile(path, FileOpenOptions{});
    if (cf.ok() && (*cf)->TryLock(LockKind::kExclusive, 0, 10).ok() &&
        (*cf)->TryLock(LockKind::kShared, 100, 10).ok()) {
      ok = '1';
    }
    if (::write(ready[1], &ok, 1) != 1) ::_exit(2);
    char c;
    while (::read(hold[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  ChildGuard child(pid);
  ::close(ready[1]);
  ::close(hold[0]);
  char ok = 0;
  ssize_t n;
  do {
    n = ::read(ready[0], &ok, 1);
  } while (n < 0 && errno == EINTR);
  ::close(ready[0]);
  REQUIRE(n == 1);
  REQUIRE(ok == '1');

  const std::string expected = path + " is locked by process " + std::to_string(pid);
  Status excl = f->TryLock(LockKind::kExclusive, 0, 10);
  CHECK(excl.IsBusy());
  CHECK_MESSAGE(Contains(excl.message(), expected), excl.message());
  // Shared against the child's exclusive lock, and exclusive against its shared one, name it too.
  Status shared = f->TryLock(LockKind::kShared, 5, 1);
  CHECK(shared.IsBusy());
  CHECK_MESSAGE(Contains(shared.message(), expected), shared.message());
  Status excl_vs_shared = f->TryLock(LockKind::kExclusive, 105, 1);
  CHECK(excl_vs_shared.IsBusy());
  CHECK_MESSAGE(Contains(excl_vs_shared.message(), expected), excl_vs_shared.message());
  // Shared with shared is fine.
  CHECK(f->TryLock(LockKind::kShared, 100, 10).ok());
  CHECK(f->Unlock(100, 10).ok());

  CHECK(Get(f->IsLockedByOthers(0, 10)));
  CHECK(Get(f->IsLockedByOthers(100, 10)));
  CHECK(Get(f->IsLockedByOthers(0, 0)));
  CHECK_FALSE(Get(f->IsLockedByOthers(50, 10)));

  child.Reap();  // the kernel drops a dead process's locks
  ::close(hold[1]);
  CHECK_FALSE(Get(f->IsLockedByOthers(0, 0)));
  CHECK(f->TryLock(LockKind::kExclusive, 0, 0).ok());
  CHECK(f->Unlock(0, 0).ok());
}

// ---------------------------------------------------------------------------------------------------------
// Memory

TEST_CASE("memory: basic contract") {
  auto env = NewMemoryEnv();
  CheckBasicContract(env.get(), "/mem");
}

TEST_CASE("memory: each File object locks as its own process") {
  auto env = NewMemoryEnv();
  CheckEmulatedLocks(env.get(), "/mem/db");
}

TEST_CASE("memory: Envs are private and files live as long as the Env") {
  auto e1 = NewMemoryEnv();
  auto e2 = NewMemoryEnv();
  {
    auto f = Open(e1.get(), "/f");
    REQUIRE(f->Write(0, "one").ok());
  }
  CHECK_FALSE(Get(e2->FileExists("/f")));
  auto f = Open(e1.get(), "/f", /*create=*/false);
  CHECK(ReadAll(f.get()) == "one");
  // Identities never collide across Envs, which the engine's one-open-per-process check relies on.
  Open(e2.get(), "/f");
  CHECK(Get(e1->FileIdentity("/f")) != Get(e2->FileIdentity("/f")));
  // A removed file stays readable through a File open on it.
  REQUIRE(e1->RemoveFile("/f").ok());
  CHECK(ReadAll(f.get()) == "one");
}

// ---------------------------------------------------------------------------------------------------------
// Fault injection

TEST_CASE("fault: basic contract") {
  FaultInjectionEnv env;
  CheckBasicContract(&env, "/fault");
}

TEST_CASE("fault: each File object locks as its own process") {
  FaultInjectionEnv env;
  CheckEmulatedLocks(&env, "/fault/db");
}

TEST_CASE("fault: unsynced writes vanish at power loss, synced ones survive") {
  FaultInjectionEnv env;
  auto f = Open(&env, "/db");
  REQUIRE(f->Write(0, "durable").ok());
  REQUIRE(f->Sync().ok());
  REQUIRE(f->Write(100, "cached").ok());
  REQUIRE(f->Write(0, "D").ok());
  CHECK(SizeOf(f.get()) == 106);  // the cache is visible to reads at once

  // An unsynced truncate is lost like a write.
  auto h = Open(&env, "/truncated");
  REQUIRE(h->Write(0, "0123456789").ok());
  REQUIRE(h->Sync().ok());
  REQUIRE(h->Truncate(3).ok());
  CHECK(SizeOf(h.get()) == 3);
  REQUIRE(env.SyncDir("/").ok());  // both names are durable

  env.PowerLoss(LossMode::kDropAll);
  CHECK(ReadAll(f.get()) == "durable");
  CHECK(ReadAll(h.get()) == "0123456789");

  // Sync flushes writes made through any File of the file, and a synced truncate sticks.
  auto f2 = Open(&env, "/db", /*create=*/false);
  REQUIRE(f2->Write(7, "+more").ok());
  REQUIRE(f->Sync().ok());
  REQUIRE(h->Truncate(3).ok());
  REQUIRE(h->Sync().ok());
  env.PowerLoss(LossMode::kDropAll);
  CHECK(ReadAll(f.get()) == "durable+more");
  CHECK(ReadAll(h.get()) == "012");
}

TEST_CASE("fault: a file created, linked or renamed is lost at power loss unless its directory was synced") {
  FaultInjectionEnv env;
  // Created and its data synced, but not its directory entry: gone, however durable its contents.
  auto g = Open(&env, "/d/never-synced");
  REQUIRE(g->Write(0, "data").ok());
  REQUIRE(g->Sync().ok());
  env.PowerLoss(LossMode::kDropAll);
  CHECK_FALSE(Get(env.FileExists("/d/never-synced")));

  // Created, synced, directory synced: survives.
  auto a = Open(&env, "/d/a");
  REQUIRE(a->Write(0, "old").ok());
  REQUIRE(a->Sync().ok());
  REQUIRE(env.SyncDir("/d").ok());
  // Syncing another directory does not help a file of this one.
  auto b = Open(&env, "/d/b");
  REQUIRE(b->Sync().ok());
  REQUIRE(env.SyncDir("/elsewhere").ok());
  env.PowerLoss(LossMode::kDropAll);
  CHECK(Get(env.FileExists("/d/a")));
  CHECK_FALSE(Get(env.FileExists("/d/b")));

  // A rename and a link, not synced: undone. A removal, not synced: the file is back.
  REQUIRE(env.RenameFile("/d/a", "/d/renamed").ok());
  REQUIRE(Get(env.LinkFile("/d/renamed", "/d/linked")));
  CHECK_FALSE(Get(env.FileExists("/d/a")));
  env.PowerLoss(LossMode::kDropAll);
  CHECK(Get(env.FileExists("/d/a")));
  CHECK_FALSE(Get(env.FileExists("/d/renamed")));
  CHECK_FALSE(Get(env.FileExists("/d/linked")));
  REQUIRE(env.RemoveFile("/d/a").ok());
  env.PowerLoss(LossMode::kDropAll);
  CHECK(Get(env.FileExists("/d/a")));
  CHECK(ReadAll(Open(&env, "/d/a", /*create=*/false).get()) == "old");

  // The same, synced: they stick.
  REQUIRE(env.RenameFile("/d/a", "/d/renamed").ok());
  REQUIRE(Get(env.LinkFile("/d/renamed", "/d/linked")));
  REQUIRE(env.SyncDir("/d").ok());
  env.PowerLoss(LossMode::kDropAll);
  CHECK_FALSE(Get(env.FileExists("/d/a")));
  CHECK(ReadAll(Open(&env, "/d/renamed", /*create=*/false).get()) == "old");
  CHECK(ReadAll(Open(&env, "/d/linked", /*create=*/false).get()) == "old");

  // kKeepRandom keeps or drops each unsynced directory change on its own coin, in order.
  std::set<std::pair<bool, bool>> outcomes;
  for (uint64_t seed = 0; seed < 32; ++seed) {
    FaultInjectionEnv e;
    REQUIRE(Open(&e, "/x")->Sync().ok());
    REQUIRE(Get(e.LinkFile("/x", "/y")));
    e.PowerLoss(LossMode::kKeepRandom, seed);
    outcomes.insert({Get(e.FileExists("/x")), Get(e.FileExists("/y"))});
  }
  CHECK(outcomes.size() == 4);
}

TEST_CASE("fault: op indices count every Write, Sync and directory operation") {
  FaultInjectionEnv env;
  auto f = Open(&env, "/db");     // op 0: the creation
  auto g = Open(&env, "/other");  // op 1
  CHECK(env.OpCount() == 2);
  auto again = Open(&env, "/db", /*create=*/false);  // an existing file: not an op
  REQUIRE(f->Write(0, "a").ok());
  REQUIRE(g->Write(0, "b").ok());
  REQUIRE(f->Sync().ok());
  REQUIRE(f->Truncate(0).ok());  // not an op
  char c;
  size_t got;
  REQUIRE(f->Read(0, 1, &c, &got).ok());  // not an op
  CHECK(env.OpCount() == 5);
  CHECK(env.SyncCount() == 1);
  REQUIRE(Get(env.LinkFile("/db", "/db2")));     // 5
  REQUIRE(env.RenameFile("/db2", "/db3").ok());  // 6
  REQUIRE(env.RemoveFile("/db3").ok());          // 7
  REQUIRE(env.SyncDir("/").ok());                // 8
  REQUIRE(env.CreateDirs("/a/b").ok());          // not an op
  CHECK(env.OpCount() == 9);
  CHECK(env.ReadCount() == 1);
}

TEST_CASE("fault: FailOpAt fails an op of any kind once, changing nothing") {
  FaultInjectionEnv env;
  auto f = Open(&env, "/db");
  REQUIRE(f->Write(0, "x").ok());
  REQUIRE(f->Sync().ok());
  REQUIRE(env.SyncDir("/").ok());
  const uint64_t base = env.OpCount();
  for (uint64_t i = 0; i < 6; ++i) env.FailOpAt(base + i);
  CHECK_FALSE(env.OpenFile("/new", FileOpenOptions{.create = true}).ok());  // base
  CHECK_FALSE(Get(env.FileExists("/new")));
  CHECK_FALSE(env.LinkFile("/db", "/db2").ok());  // base + 1
  CHECK_FALSE(Get(env.FileExists("/db2")));
  CHECK_FALSE(env.RenameFile("/db", "/db3").ok());  // base + 2
  CHECK(Get(env.FileExists("/db")));
  Status rm = env.RemoveFile("/db");  // base + 3
  CHECK(rm.code() == Status::Code::kIOError);
  CHECK(Contains(rm.message(), "injected remove failure at op " + std::to_string(base + 3)));
  CHECK(Get(env.FileExists("/db")));
  CHECK_FALSE(env.SyncDir("/").ok());  // base + 4
  CHECK_FALSE(f->Write(0, "y").ok());  // base + 5
  CHECK(ReadAll(f.get()) == "x");
  // Each fired once.
  CHECK(env.RenameFile("/db", "/db3").ok());
  CHECK(env.SyncDir("/").ok());
}

TEST_CASE("fault: read faults fail the chosen reads with an I/O error naming the file and offset") {
  FaultInjectionEnv env;
  auto f = Open(&env, "/db");
  REQUIRE(f->Write(0, std::string(8192, 'r')).ok());
  char buf[16];
  size_t got = 99;
  const uint64_t next = env.ReadCount();
  env.FailReadAt(next + 1);
  REQUIRE(f->Read(0, 4, buf, &got).ok());  // next
  Status s = f->Read(100, 4, buf, &got);   // next + 1
  CHECK(s.code() == Status::Code::kIOError);
  CHECK(got == 0);
  CHECK(Contains(s.message(), "/db"));
  CHECK(Contains(s.message(), "offset 100"));
  CHECK(Contains(s.message(), "Input/output error"));
  CHECK(f->Read(100, 4, buf, &got).ok());  // once only
  CHECK(got == 4);

  // A range fails every read overlapping it, until cleared.
  env.FailReadsOf("/db", 4096, 4096);
  CHECK(f->Read(0, 16, buf, &got).ok());
  CHECK_FALSE(f->Read(4090, 16, buf, &got).ok());
  CHECK_FALSE(f->Read(5000, 16, buf, &got).ok());
  CHECK_FALSE(f->Read(5000, 16, buf, &got).ok());
  CHECK(f->Read(8192, 16, buf, &got).ok());
  env.ClearFaults();
  CHECK(f->Read(5000, 16, buf, &got).ok());
  CHECK(got == 16);
  // PowerLoss clears them too.
  env.FailReadsOf("/db", 0, 1);
  env.PowerLoss();
  CHECK(f->Read(0, 1, buf, &got).ok());
}

TEST_CASE("fault: CrashAfterOps kills every later op until PowerLoss") {
  FaultInjectionEnv env;
  auto f = Open(&env, "/db");           // op 0
  REQUIRE(f->Write(0, "before").ok());  // op 1
  env.CrashAfterOps(2);
  REQUIRE(f->Write(0, "B").ok());   // op 2
  REQUIRE(f->Sync().ok());          // op 3: "Before" is durable
  Status w = f->Write(0, "after");  // op 4: dead
  CHECK(w.code() == Status::Code::kIOError);
  CHECK(Contains(w.message(), "injected crash"));
  CHECK(Contains(w.message(), "/db"));
  CHECK(ReadAll(f.get()) == "Before");  // nothing changed, reads still work
  REQUIRE(f->Write(6, "!").code() == Status::Code::kIOError);
  Status s = f->Sync();
  CHECK(Contains(s.message(), "injected crash"));
  // A dead process cannot change the disk any other way either.
  CHECK_FALSE(f->Truncate(0).ok());
  CHECK_FALSE(env.RenameFile("/db", "/db2").ok());
  CHECK_FALSE(env.RemoveFile("/db").ok());
  CHECK_FALSE(env.OpenFile("/new", FileOpenOptions{.create = true}).ok());
  CHECK_FALSE(env.SyncDir("/").ok());
  CHECK(SizeOf(f.get()) == 6);
  CHECK(env.OpCount() == 11);  // failed ops still take indices

  env.PowerLoss(LossMode::kDropAll);
  CHECK(ReadAll(f.get()) == "Before");
  // Disarmed, and the counter keeps counting.
  REQUIRE(f->Write(0, "x").ok());
  CHECK(env.OpCount() == 12);

  // CrashAfterOps(0): the very next op fails; UINT64_MAX disarms.
  env.CrashAfterOps(0);
  CHECK_FALSE(f->Sync().ok());
  env.CrashAfterOps(UINT64_MAX);
  CHECK(f->Sync().ok());
}

TEST_CASE("fault: FailWriteAt fails exactly that write, once") {
  FaultInjectionEnv env;
  auto f = Open(&env, "/db");
  const uint64_t base = env.OpCount();
  env.FailWriteAt(base + 1);
  env.FailWriteAt(base + 3);       // a Sync's index: a write-only fault never fires there
  REQUIRE(f->Write(0, "A").ok());  // base
  Status s = f->Write(1, "B");     // base + 1
  CHECK(s.code() == Status::Code::kIOError);
  CHECK(Contains(s.message(), "injected write failure at op " + std::to_string(base + 1)));
  REQUIRE(f->Write(2, "C").ok());  // base + 2
  CHECK(f->Sync().ok());           // base + 3
  CHECK(ReadAll(f.get()) == std::string("A\0C", 3));
  // The failed write kept its index, and the next write at the same offset succeeds.
  REQUIRE(f->Write(1, "B").ok());
  CHECK(env.OpCount() == base + 5);
  CHECK(ReadAll(f.get()) == "ABC");
}

TEST_CASE("fault: FailSyncAt fails that sync once and keeps the data unsynced") {
  FaultInjectionEnv env;
  auto f = Open(&env, "/db");
  REQUIRE(f->Write(0, "data").ok());
  env.FailSyncAt(env.OpCount());
  Status s = f->Sync();
  CHECK(s.code() == Status::Code::kIOError);
  CHECK(Contains(s.message(), "injected sync failure"));
  CHECK(ReadAll(f.get()) == "data");  // still in the cache
  env.PowerLoss(LossMode::kDropAll);
  CHECK(SizeOf(f.get()) == 0);  // and never made it to the disk

  // A retry after a failed sync does make the data durable.
  REQUIRE(f->Write(0, "again").ok());
  env.FailSyncAt(env.OpCount());
  CHECK_FALSE(f->Sync().ok());
  REQUIRE(f->Sync().ok());
  env.PowerLoss(LossMode::kDropAll);
  CHECK(ReadAll(f.get()) == "again");
}

TEST_CASE("fault: SetDiskCapacity makes growing writes fail with kNoSpace") {
  FaultInjectionEnv env;
  auto f = Open(&env, "/db");
  env.SetDiskCapacity(1000);
  REQUIRE(f->Write(0, std::string(1000, 'a')).ok());
  Status s = f->Write(1000, "b");
  CHECK(s.IsNoSpace());
  CHECK(Contains(s.message(), "/db"));
  CHECK(SizeOf(f.get()) == 1000);                    // nothing written
  CHECK(f->Write(500, std::string(500, 'c')).ok());  // overwriting within the capacity is fine
  CHECK(f->Write(999, "de").IsNoSpace());            // partly beyond it is not
  auto g = Open(&env, "/other");
  CHECK(g->Write(0, std::string(1000, 'e')).ok());  // the capacity is per file
  env.SetDiskCapacity(UINT64_MAX);
  CHECK(f->Write(1000, "b").ok());

  // PowerLoss disarms it.
  env.SetDiskCapacity(10);
  CHECK(g->Write(2000, "x").IsNoSpace());
  env.PowerLoss();
  CHECK(g->Write(2000, "x").ok());
}

// Runs one write workload on a fresh env and returns the disk after a power loss with `mode` and `seed`.
std::string AfterPowerLoss(LossMode mode, uint64_t seed,
                           const std::vector<std::pair<uint64_t, std::string>>& writes) {
  FaultInjectionEnv env;
  auto f = Open(&env, "/db");
  REQUIRE(f->Sync().ok());
  REQUIRE(env.SyncDir("/").ok());
  for (const auto& [offset, data] : writes) REQUIRE(f->Write(offset, data).ok());
  f.reset();
  env.PowerLoss(mode, seed);
  auto g = Open(&env, "/db", /*create=*/false);
  return ReadAll(g.get());
}

TEST_CASE("fault: kKeepRandom keeps each unsynced write whole or not at all, deterministically") {
  // Eight writes of 512 bytes, each to its own sector, with gaps between them.
  std::vector<std::pair<uint64_t, std::string>> writes;
  for (int i = 0; i < 8; ++i) writes.emplace_back(uint64_t(i) * 1024, std::string(512, char('a' + i)));

  bool saw_mixed = false;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    const std::string disk = AfterPowerLoss(LossMode::kKeepRandom, seed, writes);
    int kept = 0;
    for (int i = 0; i < 8; ++i) {
      const uint64_t at = uint64_t(i) * 1024;
      const std::string region = at < disk.size() ? disk.substr(at, 512) : std::string();
      if (region == std::string(512, char('a' + i))) {
        ++kept;
      } else {
        // Dropped: zeros (a later write extended the file) or beyond the end.
        CHECK_MESSAGE((region.empty() || region == std::string(512, '\0')),
                      "seed " << seed << " write " << i);
      }
    }
    if (kept > 0 && kept < 8) saw_mixed = true;
    CHECK(AfterPowerLoss(LossMode::kKeepRandom, seed, writes) == disk);
  }
  CHECK(saw_mixed);
  // Different seeds give different disks (not all the same outcome).
  std::set<std::string> outcomes;
  for (uint64_t seed = 0; seed < 16; ++seed)
    outcomes.insert(AfterPowerLoss(LossMode::kKeepRandom, seed, writes));
  CHECK(outcomes.size() > 1);
}

TEST_CASE("fault: an unsynced truncate is an op that PowerLoss may keep or drop") {
  std::set<uint64_t> sizes;
  for (uint64_t seed = 0; seed < 32; ++seed) {
    FaultInjectionEnv env;
    auto f = Open(&env, "/db");
    REQUIRE(f->Write(0, std::string(1024, 'y')).ok());
    REQUIRE(f->Sync().ok());
    REQUIRE(f->Truncate(100).ok());
    env.PowerLoss(LossMode::kKeepRandom, seed);
    const std::string disk = ReadAll(f.get());
    CHECK(disk == std::string(disk.size(), 'y'));
    sizes.insert(disk.size());
  }
  CHECK(sizes == std::set<uint64_t>{100, 1024});
}

TEST_CASE("fault: kTearRandom cuts a kept write at a 512-byte boundary, deterministically") {
  // One write of 4096 bytes starting mid-sector: it ends at 4352, and its sector boundaries are 512..4096.
  constexpr uint64_t kStart = 256;
  constexpr uint64_t kEnd = kStart + 4096;
  const std::vector<std::pair<uint64_t, std::string>> writes = {{kStart, std::string(4096, 'x')}};

  std::optional<uint64_t> torn_seed;
  bool saw_dropped = false;
  bool saw_whole = false;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const std::string disk = AfterPowerLoss(LossMode::kTearRandom, seed, writes);
    const uint64_t size = disk.size();
    if (size == 0) {
      saw_dropped = true;
      continue;
    }
    if (size == kEnd) {
      saw_whole = true;
    } else {
      // Torn: only at a sector boundary strictly inside the write.
      CHECK_MESSAGE((size % 512 == 0 && size > kStart && size < kEnd), "seed " << seed << " size " << size);
      if (!torn_seed) torn_seed = seed;
    }
    // Whatever reached the disk is a prefix of the write.
    CHECK(disk == std::string(kStart, '\0') + std::string(size - kStart, 'x'));
  }
  REQUIRE(torn_seed.has_value());
  CHECK(saw_dropped);
  CHECK(saw_whole);
  // The same seed tears the same way.
  CHECK(AfterPowerLoss(LossMode::kTearRandom, *torn_seed, writes) ==
        AfterPowerLoss(LossMode::kTearRandom, *torn_seed, writes));

  // kKeepRandom never tears.
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const size_t size = AfterPowerLoss(LossMode::kKeepRandom, seed, writes).size();
    CHECK_MESSAGE((size == 0 || size == kEnd), "seed " << seed);
  }
}

TEST_CASE("fault: concurrent writers on different files") {
  FaultInjectionEnv env;
  constexpr int kThreads = 4;
  constexpr int kWrites = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&env, t] {
      auto f = env.OpenFile("/t" + std::to_string(t), FileOpenOptions{.create = true});
      if (!f.ok()) return;
      for (int i = 0; i < kWrites; ++i) (void)(*f)->Write(uint64_t(i), std::string(1, char('a' + t)));
      (void)(*f)->Sync();
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(env.OpCount() == kThreads * (kWrites + 2));  // the creation, the writes, the sync
  CHECK(env.SyncCount() == kThreads);
  REQUIRE(env.SyncDir("/").ok());
  env.PowerLoss(LossMode::kDropAll);
  for (int t = 0; t < kThreads; ++t) {
    auto f = Open(&env, "/t" + std::to_string(t), /*create=*/false);
    CHECK(ReadAll(f.get()) == std::string(kWrites, char('a' + t)));
  }
}

}  // namespace
}  // namespace rocky::engine
