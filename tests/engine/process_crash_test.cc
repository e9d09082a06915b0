// Crash torture with real processes: a child process commits durably in a loop and reports each committed
// sequence number through a pipe; the parent SIGKILLs it, reopens the file and checks that it opens, passes
// the integrity check, and holds a sequence number at least the last one reported.
//
// Kills land two ways, so that both every stage of a writer's life and steady progress are covered without
// any assumption about how fast the child runs (ASan, a busy disk): half of them at a random instant after
// the fork (in start-up, recovery, or a commit), the other half a random delay after the child has reported a
// commit it made in this life, which proves it made progress. Sampled in CI (tests/support/sweep.h):
// ROCKY_TORTURE_KILLS (default 300) is the full sweep, and each commit's run takes a third of it with its own
// random instants.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
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
#include "sweep.h"

using namespace rocky::engine;

namespace {

int KillCount() {
  const char* env = std::getenv("ROCKY_TORTURE_KILLS");
  return env != nullptr ? std::atoi(env) : 300;
}

// How long a child may take to make its first commit before the test fails (a hung or crashed child), far
// beyond any slow start.
constexpr int kFirstCommitDeadlineMs = 60000;

std::string TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "rocky-torture-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

std::string SeqKey(uint64_t seq) { return "seq-" + std::to_string(seq % 500); }

// The child: commits forever. Each commit writes the sequence number under "last", rewrites a rotating key
// with a value large enough to need several pages every few commits (so pages are freed and reused), and
// removes an older key. Reports the number on `fd` only after a durable Commit returned OK. With nosync_runs,
// three commits in four are kNoSync (they free pages of the last durable commit, so the durable one after
// them first makes them durable: FORMAT.md, "Writing a commit").
[[noreturn]] void WriterLoop(const std::string& path, int fd, uint64_t seed, bool nosync_runs) {
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
    if (t.ok() && (*t)->Get("last", &v).value_or(false)) seq = std::strtoull(v.c_str(), nullptr, 10);
  }
  for (;;) {
    ++seq;
    const bool durable = !nosync_runs || seq % 4 == 0;
    WriteOptions wo;
    wo.durability = durable ? Durability::kDurable : Durability::kNoSync;
    auto w = (*db)->BeginWrite(wo);
    if (!w.ok()) _exit(5);
    auto t = (*w)->OpenTable("torture");
    if (!t.ok()) _exit(6);
    const size_t size = (rng() % 8 == 0) ? 3000 + rng() % 3000 : 20 + rng() % 200;
    if (!(*t)->Insert(SeqKey(seq), std::string(size, static_cast<char>('a' + seq % 26))).ok()) _exit(7);
    if (!(*t)->Remove(SeqKey(seq + 250)).ok()) _exit(8);
    if (!(*t)->Insert("last", std::to_string(seq)).ok()) _exit(9);
    if (!(*w)->Commit().ok()) _exit(10);
    if (durable && write(fd, &seq, sizeof seq) != sizeof seq) _exit(11);
  }
}

// Blocks until the child has reported one commit on `fd`; returns its number. Fails the test when none comes
// within the deadline or the child ends first.
uint64_t AwaitReport(int fd) {
  pollfd p{fd, POLLIN, 0};
  const int ready = poll(&p, 1, kFirstCommitDeadlineMs);
  REQUIRE_MESSAGE(ready == 1,
                  "the writer reported no commit within " << kFirstCommitDeadlineMs / 1000 << " s");
  uint64_t seq = 0;
  REQUIRE_MESSAGE(read(fd, &seq, sizeof seq) == sizeof seq, "the writer ended before reporting a commit");
  return seq;
}

// The last sequence number the child reported before dying.
uint64_t DrainReports(int fd, uint64_t last = 0) {
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
  return std::strtoull(v.c_str(), nullptr, 10);
}

// Kills writers (see WriterLoop) at sampled instants; each time the file must open, pass the integrity check
// and hold at least the last durable commit reported.
void KillWriters(bool nosync_runs) {
  const std::string dir = TempDir();
  const std::string path = dir + "/torture.redb";
  const rocky::tests::Sweep sweep("kills", static_cast<uint64_t>(KillCount()), 3);
  // The instants differ from one commit's run to the next, as the sample does.
  std::mt19937_64 rng(20261121 ^ rocky::tests::SweepSeed());
  uint64_t max_reported = 0;
  uint64_t recovered = 0;
  int progress_kills = 0;
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < static_cast<uint64_t>(KillCount()); ++i) {
    if (!sweep.Includes(i)) continue;
    CAPTURE(i);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      WriterLoop(path, fds[1], rng(), nosync_runs);
    }
    close(fds[1]);
    uint64_t reported = 0;
    if (i % 2 == 0) {
      // Anywhere: often in start-up or recovery, sometimes in a commit; microseconds to 15 ms.
      usleep(static_cast<useconds_t>(rng() % 4 == 0 ? rng() % 200 : rng() % 15000));
    } else {
      // After a commit of this life: it is durable, so the sequence must grow by at least one per such kill.
      reported = AwaitReport(fds[0]);
      ++progress_kills;
      usleep(static_cast<useconds_t>(rng() % 3000));
    }
    kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    reported = DrainReports(fds[0], reported);
    close(fds[0]);
    if (WIFEXITED(status)) FAIL("writer exited by itself with code " << WEXITSTATUS(status));
    max_reported = std::max(max_reported, reported);
    recovered = RecoveredSeq(path);
    CHECK_MESSAGE(recovered >= max_reported,
                  "kill " << i << ": recovered " << recovered << " < reported " << max_reported);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE(sweep.Describe() << "; " << recovered << " commits survived, " << seconds << " s");
  // Each kill that waited for a commit saw one more durable commit than any before it.
  CHECK(recovered >= static_cast<uint64_t>(progress_kills));
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST_CASE("SIGKILLed writer: every reported commit survives and the file stays intact") {
  KillWriters(false);
}

TEST_CASE("SIGKILLed writer during kNoSync runs: every durable commit survives and the file stays intact") {
  KillWriters(true);
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
      WriterLoop(path, fds[1], 1, false);
    }
    close(fds[1]);
    // Some history: wait until the writer has committed a few times.
    uint64_t seq = 0;
    while (seq < 20) seq = AwaitReport(fds[0]);
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
      WriterLoop(path, fds[1], rng(), false);
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
