// Crash torture with real processes: a child process commits durably in a loop and reports each committed
// sequence number through a pipe; the parent SIGKILLs it at a random moment, reopens the file and checks that
// it opens, passes the integrity check, and holds a sequence number at least the last one reported.
// ROCKY_TORTURE_KILLS sets the number of kills (default 300, bounded to well under a minute).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "rocky/engine/db.h"

using namespace rocky::engine;

namespace {

int KillCount() {
  const char* env = std::getenv("ROCKY_TORTURE_KILLS");
  return env != nullptr ? std::atoi(env) : 300;
}

std::string TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "rocky-torture-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

std::string SeqKey(uint64_t seq) { return "seq-" + std::to_string(seq % 500); }

// The child: commits forever. Each commit writes the sequence number under "last", rewrites a rotating key
// with a value large enough to need several pages every few commits (so pages are freed and reused), and
// removes an older key. Reports the number on `fd` only after Commit returned OK.
[[noreturn]] void WriterLoop(const std::string& path, int fd, uint64_t seed) {
  Options o;
  o.page_size = 1024;
  auto db = Database::Open(path, o);
  if (!db.ok()) _exit(3);
  std::mt19937_64 rng(seed);
  uint64_t seq = 0;
  {
    auto r = (*db)->BeginRead();
    if (!r.ok()) _exit(4);
    auto t = (*r)->OpenTable("torture");
    std::string v;
    if (t.ok() && (*t)->Get("last", &v).value_or(false)) seq = std::stoull(v);
  }
  for (;;) {
    ++seq;
    auto w = (*db)->BeginWrite();
    if (!w.ok()) _exit(5);
    auto t = (*w)->OpenTable("torture");
    if (!t.ok()) _exit(6);
    const size_t size = (rng() % 8 == 0) ? 3000 + rng() % 3000 : 20 + rng() % 200;
    if (!(*t)->Insert(SeqKey(seq), std::string(size, static_cast<char>('a' + seq % 26))).ok()) _exit(7);
    if (!(*t)->Remove(SeqKey(seq + 250)).ok()) _exit(8);
    if (!(*t)->Insert("last", std::to_string(seq)).ok()) _exit(9);
    if (!(*w)->Commit().ok()) _exit(10);
    if (write(fd, &seq, sizeof seq) != sizeof seq) _exit(11);
  }
}

// The last sequence number the child reported before dying.
uint64_t DrainReports(int fd) {
  uint64_t last = 0;
  uint64_t seq;
  while (read(fd, &seq, sizeof seq) == sizeof seq) last = seq;
  return last;
}

uint64_t RecoveredSeq(const std::string& path) {
  Options o;
  auto db = Database::Open(path, o);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  auto report = (*db)->CheckIntegrity();
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
  auto r = (*db)->BeginRead();
  REQUIRE(r.ok());
  auto t = (*r)->OpenTable("torture");
  if (!t.ok()) return 0;  // killed before the first commit
  std::string v;
  REQUIRE((*t)->Get("last", &v).value());
  return std::stoull(v);
}

}  // namespace

TEST_CASE("SIGKILLed writer: every reported commit survives and the file stays intact") {
  const std::string dir = TempDir();
  const std::string path = dir + "/torture.redb";
  std::mt19937_64 rng(20261121);
  const int kills = KillCount();
  uint64_t max_reported = 0;
  int commits_seen = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kills; ++i) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      WriterLoop(path, fds[1], rng());
    }
    close(fds[1]);
    // Sleep a random time up to 15 ms, sometimes only microseconds, so kills land at every stage.
    usleep(static_cast<useconds_t>(rng() % 4 == 0 ? rng() % 200 : rng() % 15000));
    kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    const uint64_t reported = DrainReports(fds[0]);
    close(fds[0]);
    if (WIFEXITED(status)) FAIL("writer exited by itself with code " << WEXITSTATUS(status));
    max_reported = std::max(max_reported, reported);
    const uint64_t recovered = RecoveredSeq(path);
    CHECK_MESSAGE(recovered >= max_reported, "kill " << i << ": recovered " << recovered << " < reported " << max_reported);
    commits_seen = static_cast<int>(recovered);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE(kills << " kills, " << commits_seen << " commits survived, " << seconds << " s");
  CHECK(commits_seen > kills / 2);  // the writer really made progress between kills
  std::filesystem::remove_all(dir);
}

TEST_CASE("SIGKILLed writer while a reader process holds a snapshot") {
  const std::string dir = TempDir();
  const std::string path = dir + "/torture.redb";
  std::mt19937_64 rng(7);
  // Build some history first.
  {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      WriterLoop(path, fds[1], 1);
    }
    close(fds[1]);
    usleep(50000);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    DrainReports(fds[0]);
    close(fds[0]);
  }
  const int rounds = std::max(10, KillCount() / 10);
  for (int i = 0; i < rounds; ++i) {
    // Reader process: open read-only, take a snapshot, note its contents, signal, wait while the writer runs
    // and dies, then read the snapshot again: it must be unchanged.
    int ready[2];
    int go[2];
    int verdict[2];
    REQUIRE(pipe(ready) == 0);
    REQUIRE(pipe(go) == 0);
    REQUIRE(pipe(verdict) == 0);
    const pid_t reader = fork();
    if (reader == 0) {
      Options o;
      o.read_only = true;
      auto db = Database::Open(path, o);
      if (!db.ok()) _exit(20);
      auto r = (*db)->BeginRead();
      if (!r.ok()) _exit(21);
      auto fingerprint = [&]() {
        auto t = (*r)->OpenTable("torture");
        if (!t.ok()) return std::string("no table");
        std::string acc;
        auto c = (*t)->NewCursor();
        for (c->SeekToFirst(); c->Valid(); c->Next()) {
          acc += std::string(c->key()) + "=" + std::to_string(c->value().size()) + ";";
        }
        if (!c->status().ok()) return "error: " + c->status().ToString();
        return acc;
      };
      const std::string before = fingerprint();
      char byte = 1;
      if (write(ready[1], &byte, 1) != 1) _exit(22);
      if (read(go[0], &byte, 1) != 1) _exit(23);
      const std::string after = fingerprint();
      const char ok = before == after && before.rfind("error", 0) != 0 ? 'y' : 'n';
      if (write(verdict[1], &ok, 1) != 1) _exit(24);
      _exit(0);
    }
    char byte;
    REQUIRE(read(ready[0], &byte, 1) == 1);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    const pid_t writer = fork();
    if (writer == 0) {
      close(fds[0]);
      WriterLoop(path, fds[1], rng());
    }
    close(fds[1]);
    usleep(static_cast<useconds_t>(2000 + rng() % 20000));
    kill(writer, SIGKILL);
    REQUIRE(waitpid(writer, nullptr, 0) == writer);
    const uint64_t reported = DrainReports(fds[0]);
    close(fds[0]);
    REQUIRE(write(go[1], &byte, 1) == 1);
    char ok = 'n';
    REQUIRE(read(verdict[0], &ok, 1) == 1);
    int status = 0;
    REQUIRE(waitpid(reader, &status, 0) == reader);
    CHECK_MESSAGE(ok == 'y', "round " << i << ": the reader's snapshot changed under it");
    CHECK(WIFEXITED(status));
    CHECK(RecoveredSeq(path) >= reported);
    for (int fd : {ready[0], ready[1], go[0], go[1], verdict[0], verdict[1]}) close(fd);
  }
  std::filesystem::remove_all(dir);
}
