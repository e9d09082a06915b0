// Locking on the POSIX Env: one open per process, one writer per file across processes ("locked by process
// N"), read-only readers beside a writer, and a reader in another process whose snapshot the writer must not
// overwrite.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "engine_test_util.h"
#include "rocky/engine/db.h"
#include "rocky/engine/env.h"
#include "rocky/engine/inspect.h"

namespace rocky::engine::testing {
namespace {

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// A pipe carrying short messages, with a timeout so a broken peer fails the test instead of hanging it.
class Pipe {
 public:
  Pipe() { REQUIRE(::pipe(fds_) == 0); }
  ~Pipe() {
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }
  void CloseRead() { CloseEnd(0); }
  void CloseWrite() { CloseEnd(1); }

  bool Send(const std::string& msg) {
    const std::string line = msg + "\n";
    return ::write(fds_[1], line.data(), line.size()) == static_cast<ssize_t>(line.size());
  }

  // The next line, or "" on timeout or end of file.
  std::string Receive(int timeout_ms = 30000) {
    std::string line;
    for (;;) {
      struct pollfd p {
        fds_[0], POLLIN, 0
      };
      if (::poll(&p, 1, timeout_ms) <= 0) return "";
      char ch;
      const ssize_t n = ::read(fds_[0], &ch, 1);
      if (n <= 0) return "";
      if (ch == '\n') return line;
      line.push_back(ch);
    }
  }

 private:
  void CloseEnd(int i) {
    if (fds_[i] >= 0) ::close(fds_[i]);
    fds_[i] = -1;
  }
  int fds_[2];
};

// Runs `body` in a child process; the child exits with what body returns (never returning into doctest).
template <typename F>
pid_t Fork(F body) {
  std::cout.flush();  // or the child's copy of the buffer may be written twice
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 98;
    }
    ::_exit(code);
  }
  return pid;
}

int Wait(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Key(int i) {
  char buf[32];
  snprintf(buf, sizeof buf, "key-%06d", i);
  return buf;
}

// FNV-1a over every table, key and value of a snapshot, in order. Empty string on any error.
std::string ChecksumOf(ReadTransaction& r) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::string_view s) {
    for (char ch : s) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  };
  auto names = r.ListTables();
  if (!names.ok()) return "";
  uint64_t entries = 0;
  for (const std::string& name : names.value()) {
    mix(name);
    auto t = r.OpenTable(name);
    if (!t.ok()) return "";
    auto c = (*t)->NewCursor();
    uint64_t n = 0;
    for (c->SeekToFirst(); c->Valid(); c->Next(), ++n) {
      mix(c->key());
      mix(c->value());
    }
    if (!c->status().ok() || n != (*t)->Len()) return "";
    entries += n;
  }
  return std::to_string(h) + "/" + std::to_string(entries);
}

void Fill(Database& db, const std::string& table, int first, int n, char fill) {
  auto w = db.BeginWrite();
  REQUIRE(w.ok());
  auto t = (*w)->OpenTable(table);
  REQUIRE(t.ok());
  for (int i = first; i < first + n; ++i) REQUIRE((*t)->Insert(Key(i), std::string(50 + i % 200, fill)).ok());
  REQUIRE((*w)->Commit().ok());
}

}  // namespace

TEST_CASE("locking: a second open of the same file in one process is refused") {
  TempDir dir;
  const std::string path = dir.path() + "/a.redb";
  auto db = Database::Open(path, Options{});
  REQUIRE(db.ok());
  auto again = Database::Open(path, Options{});
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().IsBusy());
  CHECK_MESSAGE(Contains(again.status().message(), "already open in this process"),
                again.status().ToString());
  // Also read-only, and also through another name of the same file.
  Options ro;
  ro.read_only = true;
  CHECK(Database::Open(path, ro).status().IsBusy());
  std::filesystem::create_symlink(path, dir.path() + "/link.redb");
  CHECK(Database::Open(dir.path() + "/link.redb", Options{}).status().IsBusy());
  // The refused opens did not disturb the open one: it still holds the writer lock and works.
  Fill(**db, "t", 0, 10, 'a');
  REQUIRE((*db)->Close().ok());
  auto reopened = Database::Open(dir.path() + "/link.redb", Options{});
  REQUIRE_MESSAGE(reopened.ok(), reopened.status().ToString());
}

// Env::Default() except that FileIdentity never finds the file: as if the file appeared at the path between
// the engine's stat of the path and its open() (created, renamed over or linked there by someone else).
class FileAppearsLateEnv final : public EnvWrapper {
 public:
  FileAppearsLateEnv() : EnvWrapper(Env::Default()) {}
  Result<std::string> FileIdentity(const std::string& path) override {
    return Status::NotFound(path + ": stat: No such file or directory (simulated)");
  }
};

// POSIX record locks belong to the process and are all dropped when ANY descriptor of the file is closed, so
// a refused second open must never open-and-close a descriptor of the file this process holds. Checked from
// another process, the only place the writer lock is visible: after each refused (or inspecting) open here,
// the child's read-write open must still fail with "locked by process <this pid>".
TEST_CASE("locking: refused second opens and inspections in one process keep the writer lock") {
  TempDir dir;
  const std::string path = dir.path() + "/held.redb";
  Pipe to_parent;
  Pipe to_child;
  // Forked before this process opens anything: the child inherits no descriptor and no registry entry.
  const pid_t child = Fork([&] {
    to_parent.CloseRead();
    to_child.CloseWrite();
    const std::string expected = "locked by process " + std::to_string(::getppid());
    for (;;) {
      const std::string cmd = to_child.Receive();
      if (cmd == "exit") return 0;
      if (cmd != "probe") return 1;
      auto db = Database::Open(path, Options{});
      if (db.ok()) {
        to_parent.Send("opened");
        (void)(*db)->Close();
      } else if (db.status().IsBusy() && Contains(db.status().message(), expected)) {
        to_parent.Send("locked");
      } else {
        to_parent.Send("unexpected: " + db.status().ToString());
      }
    }
  });
  to_parent.CloseWrite();
  to_child.CloseRead();
  auto probe = [&] {
    REQUIRE(to_child.Send("probe"));
    return to_parent.Receive();
  };

  auto db = Database::Open(path, Options{});
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  Fill(**db, "t", 0, 10, 'a');
  CHECK(probe() == "locked");

  SUBCASE("read-only open of the same path") {
    Options ro;
    ro.read_only = true;
    auto again = Database::Open(path, ro);
    REQUIRE_FALSE(again.ok());
    CHECK_MESSAGE(again.status().IsBusy(), again.status().ToString());
    CHECK(probe() == "locked");
  }
  SUBCASE("read-write open of the same path") {
    auto again = Database::Open(path, Options{});
    REQUIRE_FALSE(again.ok());
    CHECK_MESSAGE(again.status().IsBusy(), again.status().ToString());
    CHECK(probe() == "locked");
  }
  SUBCASE("open through a hard link") {
    REQUIRE(::link(path.c_str(), (dir.path() + "/hard.redb").c_str()) == 0);
    auto again = Database::Open(dir.path() + "/hard.redb", Options{});
    REQUIRE_FALSE(again.ok());
    CHECK_MESSAGE(again.status().IsBusy(), again.status().ToString());
    CHECK(probe() == "locked");
  }
  SUBCASE("the file appears at the path between the identity check and the open") {
    FileAppearsLateEnv env;
    for (bool read_only : {true, false}) {
      Options o;
      o.env = &env;
      o.read_only = read_only;
      auto again = Database::Open(path, o);
      REQUIRE_FALSE(again.ok());
      CHECK_MESSAGE(again.status().IsBusy(), again.status().ToString());
      CHECK(probe() == "locked");
    }
  }
  SUBCASE("an Inspector of the open file, opened and destroyed") {
    {
      auto in = Inspector::Open(path);
      REQUIRE_MESSAGE(in.ok(), in.status().ToString());
      CHECK((*in)->current_slot() >= 0);
    }
    CHECK(probe() == "locked");
  }

  // The database still works, and closing it releases the lock (and any descriptor kept for it).
  Fill(**db, "t", 100, 10, 'b');
  RequireIntegrity(**db);
  CHECK(probe() == "locked");
  REQUIRE((*db)->Close().ok());
  CHECK(probe() == "opened");  // the lock went with the Close
  REQUIRE(to_child.Send("exit"));
  CHECK(Wait(child) == 0);
  auto reopened = Database::Open(path, Options{});
  REQUIRE_MESSAGE(reopened.ok(), reopened.status().ToString());
}

TEST_CASE("locking: a writer in another process locks the file; read-only opens still work") {
  TempDir dir;
  const std::string path = dir.path() + "/w.redb";
  Pipe to_parent;
  Pipe to_child;
  const pid_t child = Fork([&] {
    to_parent.CloseRead();
    to_child.CloseWrite();
    auto db = Database::Open(path, Options{});
    if (!db.ok()) return 1;
    {
      auto w = (*db)->BeginWrite();
      if (!w.ok() || !(*w)->OpenTable("t").value()->Insert("first", "committed by the child").ok()) return 2;
      if (!(*w)->Commit().ok()) return 3;
    }
    to_parent.Send("open");
    if (to_child.Receive() != "write") return 4;
    // More commits while the parent reads.
    for (int i = 0; i < 50; ++i) {
      auto w = (*db)->BeginWrite();
      if (!w.ok() || !(*w)->OpenTable("t").value()->Insert(Key(i), std::string(100, 'c')).ok()) return 5;
      if (!(*w)->Commit().ok()) return 6;
    }
    to_parent.Send("written");
    if (to_child.Receive() != "exit") return 7;
    return (*db)->Close().ok() ? 0 : 8;
  });
  to_parent.CloseWrite();
  to_child.CloseRead();
  REQUIRE(to_parent.Receive() == "open");

  auto refused = Database::Open(path, Options{});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().IsBusy());
  CHECK_MESSAGE(Contains(refused.status().message(), "locked by process " + std::to_string(child)),
                refused.status().ToString());

  {
    Options ro;
    ro.read_only = true;
    auto reader = Database::Open(path, ro);
    REQUIRE_MESSAGE(reader.ok(), reader.status().ToString());
    CHECK(DumpDb(**reader)["t"]["first"] == "committed by the child");
    CHECK((*reader)->BeginWrite().status().code() == Status::Code::kInvalidArgument);
    REQUIRE(to_child.Send("write"));
    // Read while the child commits: every snapshot is a complete commit.
    for (int i = 0; i < 200; ++i) {
      auto r = (*reader)->BeginRead();
      REQUIRE_MESSAGE(r.ok(), r.status().ToString());
      auto t = (*r)->OpenTable("t");
      REQUIRE(t.ok());
      const Tables snap = DumpSnapshot(**r);
      CHECK(snap.at("t").size() == (*t)->Len());
      CHECK(snap.at("t").at("first") == "committed by the child");
    }
    REQUIRE(to_parent.Receive() == "written");
    CHECK(DumpDb(**reader)["t"].size() == 51);
    RequireIntegrity(**reader);
  }
  REQUIRE(to_child.Send("exit"));
  CHECK(Wait(child) == 0);
  // The writer is gone: the parent may write now.
  auto db = Database::Open(path, Options{});
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  Fill(**db, "t", 1000, 5, 'p');
  RequireIntegrity(**db);
}

TEST_CASE("locking: a reader in another process keeps its snapshot while the writer frees and reuses pages") {
  TempDir dir;
  const std::string path = dir.path() + "/r.redb";
  Options small;
  small.page_size = 512;  // many pages per commit
  std::string expected;
  {
    auto db = Database::Open(path, small);
    REQUIRE(db.ok());
    for (int i = 0; i < 5; ++i)
      Fill(**db, i % 2 == 0 ? "t0" : "t1", i * 300, 300, static_cast<char>('a' + i));
    auto r = (*db)->BeginRead();
    expected = ChecksumOf(**r);
    REQUIRE_FALSE(expected.empty());
    r->reset();
    REQUIRE((*db)->Close().ok());
  }
  Pipe to_parent;
  Pipe to_child;
  const pid_t child = Fork([&] {
    to_parent.CloseRead();
    to_child.CloseWrite();
    Options ro;
    ro.read_only = true;
    auto db = Database::Open(path, ro);
    if (!db.ok()) return 1;
    auto r = (*db)->BeginRead();
    if (!r.ok()) return 2;
    to_parent.Send("holding " + ChecksumOf(**r));
    if (to_child.Receive(60000) != "check") return 3;
    to_parent.Send(ChecksumOf(**r));  // the same snapshot, after the parent's commits
    return 0;
  });
  to_parent.CloseWrite();
  to_child.CloseRead();
  REQUIRE(to_parent.Receive() == "holding " + expected);

  {
    auto db = Database::Open(path, small);
    REQUIRE_MESSAGE(db.ok(), db.status().ToString());
    // Rewrite and delete everything, many times: every page the child's snapshot reaches gets freed, and
    // without the child's lock would be reused within a few commits.
    for (int round = 0; round < 20; ++round) {
      auto w = (*db)->BeginWrite();
      REQUIRE(w.ok());
      for (int t = 0; t < 2; ++t) {
        auto table = (*w)->OpenTable(t == 0 ? "t0" : "t1");
        REQUIRE((*table)->RemoveRange(KeyRange{}).ok());
        for (int i = 0; i < 400; ++i)
          REQUIRE((*table)->Insert(Key(i), std::string(60, static_cast<char>('A' + round))).ok());
      }
      REQUIRE((*w)->Commit().ok());
    }
    RequireIntegrity(**db);
    auto stats = (*db)->GetStats();
    REQUIRE(stats.ok());
    MESSAGE("writer file: " << stats->file_pages << " pages, " << stats->free_pages << " free");
    REQUIRE(to_child.Send("check"));
    CHECK(to_parent.Receive() == expected);
  }
  CHECK(Wait(child) == 0);

  // With the reader gone, the pages it held are reused: the file stops growing.
  auto db = Database::Open(path, small);
  REQUIRE(db.ok());
  for (int round = 0; round < 5; ++round) Fill(**db, "t0", 0, 400, 'z');
  const uint64_t size = std::filesystem::file_size(path);
  for (int round = 0; round < 20; ++round) Fill(**db, "t0", 0, 400, static_cast<char>('a' + round));
  CHECK(std::filesystem::file_size(path) == size);
}

}  // namespace rocky::engine::testing
