// A real PostgreSQL server for tests, from Debian's postgresql package (/usr/lib/postgresql/<version>/bin):
// initdb into a temporary folder (password authentication, scram-sha-256, with a password unique to this
// server), then `postgres` on a free port on 127.0.0.1 only (no Unix socket), stopped and removed by the
// destructor. PostgreSQL refuses to run as root, and CI runs as root: then the server runs as `nobody`
// (setpriv), and its folder is owned by nobody. No mock: when the server cannot start, the test fails.
//
// Ports: FreePort's port may be taken by another test binary before the server binds it (binaries run in
// parallel); the server then exits saying "could not bind" and starts again on another port (free_port.h).
// The server is identified as ours by logging in with its unique password and reading back its
// data_directory. With `tls`, the server also accepts TLS (ssl = on) with a TestPki certificate for
// 127.0.0.1, whose CA is ca_file(); plaintext stays allowed, so sslmode decides.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "free_port.h"
#include "test_pki.h"

extern char** environ;

namespace rocky_test {

// The folder holding initdb and postgres: the newest /usr/lib/postgresql/<version>/bin.
inline std::string PostgresBinDir() {
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/usr/lib/postgresql", ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const int version = std::atoi(name.c_str());
    if (version > best_version && std::filesystem::exists(it->path() / "bin" / "postgres")) {
      best_version = version;
      best = (it->path() / "bin").string();
    }
  }
  REQUIRE_MESSAGE(!best.empty(),
                  "no PostgreSQL server in /usr/lib/postgresql (scripts/setup installs postgresql)");
  return best;
}

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class PostgresServer {
 public:
  static constexpr const char* kUser = "rocky";
  static constexpr const char* kDatabase = "rocky";

  explicit PostgresServer(bool tls = false) {
    ReapOrphans();
    std::random_device random;
    std::ostringstream pw;
    pw << "pw-" << std::hex << random() << random() << "-x";
    password_ = pw.str();
    char dir[] = "/tmp/rocky-pg-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    dir_ = dir;
    as_nobody_ = ::geteuid() == 0;
    if (as_nobody_) {
      const passwd* nobody = ::getpwnam("nobody");
      REQUIRE_MESSAGE(nobody != nullptr,
                      "running as root, and there is no user 'nobody' to run PostgreSQL as");
      uid_ = nobody->pw_uid;
      gid_ = nobody->pw_gid;
      REQUIRE(::chown(dir_.c_str(), uid_, gid_) == 0);
    }
    {
      std::ofstream out(dir_ + "/pw");
      out << password_ << "\n";
      // Which test process owns this server, for ReapOrphans.
      std::ofstream(dir_ + "/owner.pid") << ::getpid() << "\n";
    }
    if (as_nobody_) REQUIRE(::chown((dir_ + "/pw").c_str(), uid_, gid_) == 0);
    if (tls) {
      pki_ = std::make_unique<TestPki>(dir_, "postgres");
      // PostgreSQL refuses a key file others can read.
      REQUIRE(::chmod(pki_->key_file().c_str(), 0600) == 0);
      if (as_nobody_) {
        for (const std::string& f : {pki_->key_file(), pki_->cert_file(), pki_->ca_file()}) {
          REQUIRE(::chown(f.c_str(), uid_, gid_) == 0);
        }
      }
    }
    const std::string bin = PostgresBinDir();
    const int rc = Run({bin + "/initdb", "-D", data_dir(), "-U", kUser, "--pwfile=" + dir_ + "/pw",
                        "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
                       dir_ + "/initdb.log");
    REQUIRE_MESSAGE(rc == 0, "initdb failed: " << ReadWholeFile(dir_ + "/initdb.log"));
    Start();
    Exec("CREATE DATABASE " + std::string(kDatabase), "postgres");
  }

  // A hot standby of `primary` (the tag of the constructor below).
  struct StandbyOf {
    const PostgresServer& primary;
  };
  // A hot standby of `primary`: pg_basebackup -R (streaming replication from it; read-only queries), in a
  // folder and on a port of its own, with the primary's password. Requires: `primary` runs (and outlives it).
  explicit PostgresServer(StandbyOf of) {
    ReapOrphans();
    password_ = of.primary.password_;
    char dir[] = "/tmp/rocky-pg-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    dir_ = dir;
    as_nobody_ = of.primary.as_nobody_;
    uid_ = of.primary.uid_;
    gid_ = of.primary.gid_;
    if (as_nobody_) REQUIRE(::chown(dir_.c_str(), uid_, gid_) == 0);
    std::ofstream(dir_ + "/owner.pid") << ::getpid() << "\n";
    const int rc = Run({PostgresBinDir() + "/pg_basebackup", "-D", data_dir(), "-R", "-X", "stream",
                        "--no-sync", "-d", of.primary.Keywords("postgres")},
                       dir_ + "/basebackup.log");
    REQUIRE_MESSAGE(rc == 0, "pg_basebackup failed: " << ReadWholeFile(dir_ + "/basebackup.log"));
    Start();
  }

  // Standby only: waits (deadline 60 s) until it has replayed everything `primary` had written when called.
  void WaitReplayed(const PostgresServer& primary) const {
    const std::string lsn = primary.Scalar("SELECT pg_current_wal_lsn()::text", "postgres");
    WaitUntil(
        [&] { return Scalar("SELECT pg_last_wal_replay_lsn() >= '" + lsn + "'::pg_lsn", "postgres") == "t"; },
        "the standby did not replay the primary's WAL up to " + lsn);
  }

  ~PostgresServer() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& password() const { return password_; }
  std::string data_dir() const { return dir_ + "/data"; }
  // The CA that signed the server's certificate (tls only).
  std::string ca_file() const { return pki_ ? pki_->ca_file() : ""; }

  // A libpq URI for `database` with the password in it.
  std::string Url(const std::string& database = kDatabase, const std::string& extra = "") const {
    return "postgresql://" + std::string(kUser) + ":" + password_ + "@127.0.0.1:" + std::to_string(port_) +
           "/" + database + (extra.empty() ? "" : "?" + extra);
  }
  // The same as a keyword string.
  std::string Keywords(const std::string& database = kDatabase) const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + kUser + " password=" + password_ +
           " dbname=" + database;
  }

  // Starts the server (again) on port_ (a new free port the first time, or when another process took it).
  void Start() {
    const std::string log = dir_ + "/server.log";
    port_ = StartOnFreePort(
        "PostgreSQL",
        [&](int port) {
          std::vector<std::string> args = {PostgresBinDir() + "/postgres",
                                           "-D",
                                           data_dir(),
                                           "-p",
                                           std::to_string(port),
                                           "-c",
                                           "listen_addresses=127.0.0.1",
                                           "-c",
                                           "unix_socket_directories=",
                                           "-c",
                                           "fsync=off",
                                           "-c",
                                           "max_connections=40",
                                           "-c",
                                           "shared_buffers=32MB"};
          if (pki_) {
            for (const std::string& a : {std::string("ssl=on"), "ssl_cert_file=" + pki_->cert_file(),
                                         "ssl_key_file=" + pki_->key_file()}) {
              args.push_back("-c");
              args.push_back(a);
            }
          }
          port_ = port;
          pid_ = Spawn(args, log);
          if (WaitReady()) return true;
          const std::string text = ReadWholeFile(log);
          REQUIRE_MESSAGE((text.find("could not bind") != std::string::npos ||
                           text.find("already in use") != std::string::npos),
                          "PostgreSQL did not start: " << text);
          return false;
        },
        [&] { return ReadWholeFile(log); }, port_);
  }

  // Fast shutdown (SIGINT: connections are closed, the data is kept); harmless twice.
  void Stop() { Signal(SIGINT); }

  // Immediate shutdown (SIGQUIT: no checkpoint; the next start recovers from the WAL), then a start on the
  // same port: what a server restarted under a running client looks like.
  void Restart() {
    Signal(SIGQUIT);
    Start();
  }

  // Kills the whole server at once, as the OOM killer or a crash of its machine would (the files stay as the
  // page cache left them): SIGKILL to the postmaster and to every process it started (backends, checkpointer,
  // autovacuum, ...). The postmaster is stopped first (SIGSTOP, waited for), so that it forks nothing between
  // the listing of its children and their kill; the children are listed before it dies, since they are then
  // re-parented. Returns once every one of them is gone (deadline 60 s), so that Start() on the same data
  // directory finds none still attached to the old shared memory; that start recovers from the WAL.
  void Crash() {
    if (pid_ <= 0) return;
    REQUIRE(::kill(pid_, SIGSTOP) == 0);
    WaitUntil([&] { return ProcState(pid_) == 'T'; }, "the postmaster did not stop (SIGSTOP)");
    const std::vector<pid_t> children = ChildrenOf(pid_);
    REQUIRE(::kill(pid_, SIGKILL) == 0);
    for (const pid_t child : children) ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    // The children are no longer ours to reap: gone, or a zombie awaiting init, is dead enough.
    for (const pid_t child : children) {
      WaitUntil([&] { return ProcState(child) == 0 || ProcState(child) == 'Z'; },
                "a killed server process " + std::to_string(child) + " did not exit");
    }
  }

  // Sends `sig` to the postmaster and waits for it to exit.
  void Signal(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // Runs statements as the server's superuser (test setup); fails the test on an error. Returns the rows of
  // the last one, each row's columns joined by '|' (NULL as "NULL").
  std::vector<std::string> Exec(const std::string& sql, const std::string& database = kDatabase) const {
    PGconn* conn = PQconnectdb(Keywords(database).c_str());
    REQUIRE_MESSAGE(PQstatus(conn) == CONNECTION_OK,
                    "connecting to the test server: " << std::string(PQerrorMessage(conn)));
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);
    PGresult* r = PQexec(conn, sql.c_str());
    const ExecStatusType st = PQresultStatus(r);
    const std::string error = PQresultErrorMessage(r);
    std::vector<std::string> rows;
    if (st == PGRES_TUPLES_OK) {
      for (int i = 0; i < PQntuples(r); ++i) {
        std::string row;
        for (int c = 0; c < PQnfields(r); ++c) {
          if (c > 0) row += '|';
          row += PQgetisnull(r, i, c) ? "NULL" : PQgetvalue(r, i, c);
        }
        rows.push_back(std::move(row));
      }
    }
    PQclear(r);
    PQfinish(conn);
    REQUIRE_MESSAGE((st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK),
                    "SQL failed: " << sql << ": " << error);
    return rows;
  }

  std::string Scalar(const std::string& sql, const std::string& database = kDatabase) const {
    const std::vector<std::string> rows = Exec(sql, database);
    REQUIRE_MESSAGE(rows.size() == 1, "expected one row from " << sql);
    return rows[0];
  }

  // SIGKILLs one backend of this server; the postmaster then ends every session and recovers from its WAL
  // (what a crash of the server looks like to clients). Returns once the server says it is ready again (a new
  // "ready to accept connections" line in its log; deadline 60 s), so no later session can be caught by the
  // restart.
  void KillBackend(int backend_pid) const {
    const size_t ready_before = ReadyLines();
    REQUIRE(::kill(backend_pid, SIGKILL) == 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (ReadyLines() <= ready_before) {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                      "the server did not recover within 60 s: " << ReadWholeFile(dir_ + "/server.log"));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    WaitAccepting();
  }

  // Waits (deadline 60 s) until the server runs queries again.
  void WaitAccepting() const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (true) {
      PGconn* conn = PQconnectdb((Keywords() + " connect_timeout=2").c_str());
      bool ok = false;
      if (PQstatus(conn) == CONNECTION_OK) {
        PGresult* r = PQexec(conn, "SELECT 1");
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
      }
      PQfinish(conn);
      if (ok) return;
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                      "the server did not come back within 60 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Waits (deadline 60 s) until a session of this server shows `pattern` in pg_stat_activity's
  // wait_event_type 'Lock' with a query LIKE `query_like`, and returns its backend pid: a copy blocked at a
  // known statement.
  int WaitForBlockedQuery(const std::string& query_like) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::vector<std::string> rows =
          Exec("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '" +
               query_like + "'");
      if (!rows.empty()) return std::atoi(rows[0].c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("no session blocked on a query like " << query_like << " within 60 s");
    return -1;
  }

 private:
  // A test binary that crashed (an abort, a sanitizer's report) never ran its servers' destructors: their
  // postmasters outlive it. Each new server first ends those of earlier, dead owners (a /tmp/rocky-pg-*
  // folder whose owner.pid names no live process): an immediate shutdown of the postmaster its
  // postmaster.pid names, then the folder is removed. Servers of live test binaries are left alone.
  static void ReapOrphans() {
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/tmp", ec), end; !ec && it != end; it.increment(ec)) {
      const std::string dir = it->path().string();
      if (it->path().filename().string().rfind("rocky-pg-", 0) != 0) continue;
      const std::string owner = ReadWholeFile(dir + "/owner.pid");
      const pid_t owner_pid = static_cast<pid_t>(std::atol(owner.c_str()));
      if (owner_pid <= 0 || ::kill(owner_pid, 0) == 0 || errno != ESRCH) continue;
      const pid_t postmaster =
          static_cast<pid_t>(std::atol(ReadWholeFile(dir + "/data/postmaster.pid").c_str()));
      if (postmaster > 0 && ::kill(postmaster, SIGQUIT) == 0) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (::kill(postmaster, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
      std::filesystem::remove_all(dir, ec);
      ec.clear();
    }
  }

  // posix_spawn of `args` (as nobody when root), stdout and stderr appended to `log`, in dir_.
  pid_t Spawn(const std::vector<std::string>& args, const std::string& log) const {
    std::vector<std::string> full;
    if (as_nobody_) {
      full = {"/usr/bin/setpriv", "--reuid=" + std::to_string(uid_), "--regid=" + std::to_string(gid_),
              "--clear-groups", "--"};
    }
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addchdir_np(&actions, dir_.c_str());
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(rc == 0, "cannot start " << argv[0]);
    return pid;
  }

  // The state letter of /proc/PID/stat ('R', 'S', 'T', 'Z', ...), or 0 when there is no such process.
  static char ProcState(pid_t pid) {
    const std::string stat = ReadWholeFile("/proc/" + std::to_string(pid) + "/stat");
    const size_t paren = stat.rfind(')');  // the command name may hold spaces and parentheses
    return paren == std::string::npos || paren + 2 >= stat.size() ? 0 : stat[paren + 2];
  }

  // The processes whose parent is `parent` (from /proc/*/stat: the field after the state letter).
  static std::vector<pid_t> ChildrenOf(pid_t parent) {
    std::vector<pid_t> out;
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::string stat = ReadWholeFile(it->path().string() + "/stat");
      const size_t paren = stat.rfind(')');
      if (paren == std::string::npos || paren + 4 >= stat.size()) continue;
      if (std::atol(stat.c_str() + paren + 4) == parent)
        out.push_back(static_cast<pid_t>(std::atol(name.c_str())));
    }
    return out;
  }

  template <typename Predicate>
  static void WaitUntil(Predicate done, const std::string& failure) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done()) {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, failure << " within 60 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  size_t ReadyLines() const {
    const std::string log = ReadWholeFile(dir_ + "/server.log");
    size_t n = 0;
    for (size_t at = log.find("ready to accept connections"); at != std::string::npos;
         at = log.find("ready to accept connections", at + 1)) {
      ++n;
    }
    return n;
  }

  int Run(const std::vector<std::string>& args, const std::string& log) const {
    const pid_t pid = Spawn(args, log);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  // True once our server accepts our password and reports our data directory; false when the process
  // exited (the log says why).
  bool WaitReady() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      PGconn* conn = PQconnectdb((Keywords("postgres") + " connect_timeout=2").c_str());
      bool ours = false;
      if (PQstatus(conn) == CONNECTION_OK) {
        PGresult* r = PQexec(conn, "SELECT current_setting('data_directory')");
        ours = PQresultStatus(r) == PGRES_TUPLES_OK &&
               std::filesystem::equivalent(PQgetvalue(r, 0, 0), data_dir());
        PQclear(r);
      }
      PQfinish(conn);
      if (ours) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL("PostgreSQL did not accept connections within 60 s: " << ReadWholeFile(dir_ + "/server.log"));
    return false;
  }

  std::string dir_;
  std::string password_;
  std::unique_ptr<TestPki> pki_;
  bool as_nobody_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace rocky_test
