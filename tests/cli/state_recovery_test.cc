// End to end, the paths a user takes when something is wrong: I/O errors told from damage, imports that ask
// before replacing a state and say where their JSON is broken, a damaged check history that costs neither the
// watermarks nor the export, compaction, the modes of the files rocky writes, and the exceptions that used to
// abort rocky. Faults are injected into the real binary with strace (`-e inject=...`).
#include <doctest/doctest.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "app.h"
#include "program_runner.h"
#include "rocky/state/store.h"
#include "state_damage.h"

namespace {

using namespace rocky::cli::testing;

// The permission bits of a file.
unsigned Mode(const std::string& path) {
  struct stat st {};
  REQUIRE_MESSAGE(::stat(path.c_str(), &st) == 0, path);
  return st.st_mode & 07777;
}

// `rocky ARGS` under strace, with strace's options `strace_options` (e.g. "-P FILE -e trace=read -e
// inject=read:error=EIO:when=1"); strace's own output is discarded, and its notes on stderr are dropped.
Run RockyUnderStrace(const Sandbox& box, const std::string& strace_options, const std::string& args) {
  // LeakSanitizer cannot run under ptrace (it would fail the exit of a sanitizer build): off, under strace.
  Run run = RunShell(
      "cd " + ShellQuote(box.dir()) +
          " && ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" strace -f -o /dev/null " +
          strace_options + " " + ShellQuote(ProgramPath("rocky")) + " " + args,
      box.File(".stderr"));
  const std::string err = std::move(run.err);
  run.err.clear();
  size_t start = 0;
  while (start < err.size()) {
    size_t end = err.find('\n', start);
    if (end == std::string::npos) end = err.size();
    const std::string line = err.substr(start, end - start);
    if (!line.starts_with("strace: ")) run.err += line + "\n";
    start = end + 1;
  }
  return run;
}

TEST_CASE(
    "an I/O error while opening the state file is reported as one, never as damage, and writes nothing") {
  Sandbox box;
  CHECK_RUN(box.Rocky("state set --table a.b.c --value 2026-01-01T00:00:00Z"), 0);
  CHECK_RUN(box.Rocky("state set --table a.b.d --value 2026-01-02T00:00:00Z"), 0);
  const std::string before = ReadBytes(box.File(".rocky-state.redb"));
  // Every read of the state file from the Nth on fails with EIO (a disk going bad), for each N that reaches
  // a read of the file at all: the header, the slots, the commit's pages, the tables.
  int failed_opens = 0;
  for (int n = 1; n <= 12; ++n) {
    for (const std::string command :
         {"state --output table", "state set --table a.b.e --value 2026-01-03T00:00:00Z"}) {
      Run run = RockyUnderStrace(
          box,
          "-P .rocky-state.redb -e trace=pread64 -e inject=pread64:error=EIO:when=" + std::to_string(n) + "+",
          command);
      INFO("read " << n << "+ fails, rocky " << command << ": exit " << run.exit_code << "\n" << run.err);
      if (run.exit_code == 0) continue;  // fewer reads than n: nothing failed
      ++failed_opens;
      CHECK(run.exit_code == 1);
      CHECK(Contains(run.err, "Input/output error"));
      CHECK(!Contains(run.err, "damaged"));
      CHECK(!Contains(run.err, "corrupt"));
      CHECK(!Contains(run.err, "not a rocky"));
      CHECK(std::count(run.err.begin(), run.err.end(), '\n') == 1);
      CHECK(ReadBytes(box.File(".rocky-state.redb")) == before);
    }
  }
  CHECK(failed_opens > 4);
}

TEST_CASE(
    "a failed sync: rocky says 'unchanged' only when the value never appears, and never loses an "
    "acknowledged one") {
  Sandbox box;
  CHECK_RUN(box.Rocky("state set --table a.b.c --value 2026-01-01T00:00:00Z"), 0);
  std::string acknowledged = "2026-01-01T00:00:00Z";
  int failed = 0, said_unchanged = 0, said_unknown = 0;
  // Each fdatasync of the commit, failing once (n) or from then on (n+: the engine cannot undo its slot).
  for (int n = 1; n <= 4; ++n) {
    for (const std::string repeat : {"", "+"}) {
      char value[32];
      std::snprintf(value, sizeof value, "2026-02-%02dT00:00:00Z", n * 2 + (repeat.empty() ? 0 : 1));
      Run set = RockyUnderStrace(
          box, "-e trace=fdatasync -e inject=fdatasync:error=EIO:when=" + std::to_string(n) + repeat,
          "state set --table a.b.c --value " + std::string(value));
      Run shown = box.Rocky("state --output table");
      INFO("fdatasync " << n << repeat << " fails: exit " << set.exit_code << ", " << set.err << "then:\n"
                        << shown.out << shown.err);
      REQUIRE(shown.exit_code == 0);
      const bool present = Contains(shown.out, value);
      if (set.exit_code == 0) {
        CHECK(present);  // acknowledged: there
        acknowledged = value;
        continue;
      }
      ++failed;
      CHECK(set.exit_code == 1);
      if (Contains(set.err, "unchanged")) {
        ++said_unchanged;
        CHECK(!present);  // said unchanged: truly unchanged
        CHECK(Contains(shown.out, acknowledged));
      } else {
        CHECK(Contains(set.err, "may have been kept"));
        ++said_unknown;
        if (present) acknowledged = value;
        if (!present) CHECK(Contains(shown.out, acknowledged));
      }
    }
  }
  CHECK(failed >= 3);
  CHECK(said_unchanged >= 1);
  CHECK(said_unknown >= 1);
}

TEST_CASE(
    "a discarded newest commit is told by every command, in JSON too, and by doctor, until its copy is "
    "deleted") {
  Sandbox box;
  CHECK_RUN(box.Rocky("state set --table a.b.c --value 2026-01-01T00:00:00Z"), 0);
  CHECK_RUN(box.Rocky("state set --table a.b.c --value 2026-02-01T00:00:00Z"), 0);
  const std::string state = box.File(".rocky-state.redb");
  const uint64_t newest = rocky_test::NewestCommitId(state);
  const std::vector<uint64_t> written = rocky_test::NewestCommitPages(state);
  REQUIRE(!written.empty());
  rocky_test::DamagePage(state, written.front());
  const std::string txn = "txn " + std::to_string(newest);

  // A reader: told on stderr and in JSON; it shows the commit before (the earlier value); nothing written.
  const std::string before = ReadBytes(state);
  Run show = box.Rocky("state --output json");
  CHECK_RUN(show, 0);
  CHECK(Contains(show.err, "rocky: warning: the newest commit of the state file .rocky-state.redb (" + txn +
                               ") was discarded: page " + std::to_string(written.front())));
  CHECK(Contains(show.out, "2026-01-01T00:00:00Z"));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(show.out).get(doc) == simdjson::SUCCESS);
  CHECK(doc["discarded_commit"]["txn_id"].get_uint64().value() == newest);
  CHECK(Contains(std::string(doc["discarded_commit"]["reason"].get_string().value()), "page"));
  CHECK(doc["discarded_commit"]["evidence_path"].is_null());
  CHECK(ReadBytes(state) == before);
  Run history = box.Rocky("state history --table a.b.c");
  CHECK_RUN(history, 0);
  CHECK(Contains(history.err, txn + ") was discarded"));

  // A writer keeps a copy of the file first, and says where.
  const std::string copy = ".rocky-state.redb.discarded-" + std::to_string(newest);
  Run set = box.Rocky("state set --table x.y.z --value 2026-03-01T00:00:00Z --output json");
  CHECK_RUN(set, 0);
  CHECK(Contains(set.err, txn + ") was discarded"));
  CHECK(Contains(set.err, "kept at " + copy));
  CHECK(std::filesystem::exists(box.File(copy)));
  CHECK(Mode(box.File(copy)) == 0600);
  simdjson::dom::parser set_parser;
  simdjson::dom::element set_doc;
  REQUIRE(set_parser.parse(set.out).get(set_doc) == simdjson::SUCCESS);
  CHECK(std::string_view(set_doc["discarded_commit"]["evidence_path"].get_string().value()).ends_with(copy));

  // Later commands open a clean file, and keep warning about the copy until it is deleted.
  Run later = box.Rocky("state --output json");
  CHECK_RUN(later, 0);
  CHECK(Contains(later.err, copy + " is a copy of the state file"));
  simdjson::dom::parser later_parser;
  simdjson::dom::element later_doc;
  REQUIRE(later_parser.parse(later.out).get(later_doc) == simdjson::SUCCESS);
  CHECK(later_doc["discarded_commit"].is_null());
  CHECK(later_doc["discarded_copies"].get_array().value().size() == 1);
  Run doctor = box.Rocky("doctor --check state_file --output json");
  CHECK_RUN(doctor, 0);
  CHECK(Contains(doctor.out, "\"status\":\"warning\""));
  CHECK(Contains(doctor.out, copy));
  CHECK(Contains(doctor.out, "\"overall\":\"warning\""));

  std::filesystem::remove(box.File(copy));
  Run quiet = box.Rocky("state --output json");
  CHECK_RUN(quiet, 0);
  CHECK(quiet.err.empty());
  CHECK(Contains(quiet.out, "\"discarded_copies\":[]"));
  Run healthy = box.Rocky("doctor --check state_file --output json");
  CHECK_RUN(healthy, 0);
  CHECK(Contains(healthy.out, "\"overall\":\"healthy\""));
}

TEST_CASE("state import: an I/O error reading the file is one, never 'invalid JSON'; nothing is written") {
  Sandbox box;
  CHECK_RUN(box.Rocky("state set --table a.b.c --value 2026-01-01T00:00:00Z --state-path one.redb"), 0);
  CHECK_RUN(box.Rocky("state export dump.json --state-path one.redb"), 0);
  Run run = RockyUnderStrace(box, "-P dump.json -e trace=read -e inject=read:error=EIO:when=1",
                             "state import dump.json --state-path two.redb");
  CHECK_RUN(run, 1);
  CHECK(Contains(run.err, "cannot read import file 'dump.json'"));
  CHECK(Contains(run.err, "Input/output error"));
  CHECK(!Contains(run.err, "JSON"));
  CHECK(!std::filesystem::exists(box.File("two.redb")));
}

TEST_CASE(
    "state import: --yes over a state that holds something; unknown fields refused; JSON errors located") {
  Sandbox box;
  CHECK_RUN(box.Rocky("state set --table a.b.c --value 2026-01-01T00:00:00Z --state-path one.redb"), 0);
  CHECK_RUN(box.Rocky("state export dump.json --state-path one.redb"), 0);
  // Into a new or empty state: no question.
  CHECK_RUN(box.Rocky("state import dump.json --state-path two.redb"), 0);
  // Over a state that holds something: asked, like delete --all, and nothing changes.
  CHECK_RUN(box.Rocky("state set --table x.y.z --value 2026-02-01T00:00:00Z --state-path two.redb"), 0);
  const std::string before = ReadBytes(box.File("two.redb"));
  Run asked = box.Rocky("state import dump.json --state-path two.redb");
  CHECK_RUN(asked, 2);
  CHECK(Contains(asked.err, "is not empty (2 watermarks"));
  CHECK(Contains(asked.err, "--yes"));
  CHECK(ReadBytes(box.File("two.redb")) == before);
  CHECK_RUN(box.Rocky("state import dump.json --yes --state-path two.redb"), 0);
  CHECK(!Contains(box.Rocky("state --output table --state-path two.redb").out, "x.y.z"));

  // Unknown and repeated fields, at every level, are refused, naming the field.
  const std::string valid = ReadBytes(box.File("dump.json"));
  struct Bad {
    std::string json, message;
  };
  const std::vector<Bad> bad = {
      {R"({"format":"rocky-state","schema_version":1,"watermarks":[],"check_history":[],"run_history":[],"extra":1})",
       "unknown field 'extra'"},
      {R"({"format":"rocky-state","schema_version":1,"watermarks":[{"table":"a.b.c","last_value":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","lastvalue":"x"}],"check_history":[],"run_history":[]})",
       "watermarks[0]: unknown field 'lastvalue'"},
      {R"({"format":"rocky-state","schema_version":1,"watermarks":[],"check_history":[{"table":"a.b.c","entries":[{"count":1,"timestamp":"2026-01-01T00:00:00Z","note":1}]}],"run_history":[]})",
       "unknown field 'note'"},
      {R"({"format":"rocky-state","schema_version":1,"watermarks":[],"watermarks":[],"check_history":[],"run_history":[]})",
       "field 'watermarks' is given twice"},
  };
  for (const Bad& b : bad) {
    WriteBytes(box.File("bad.json"), b.json);
    Run run = box.Rocky("state import bad.json --yes --state-path two.redb");
    INFO(b.json);
    CHECK_RUN(run, 1);
    CHECK(Contains(run.err, b.message));
  }
  // Invalid JSON: the line and column of the first character that is wrong.
  WriteBytes(box.File("bad.json"),
             "{\n  \"format\": \"rocky-state\",\n  \"schema_version\": 1,\n  \"watermarks\": [,]\n}\n");
  Run broken = box.Rocky("state import bad.json --yes --state-path two.redb");
  CHECK_RUN(broken, 1);
  CHECK(Contains(broken.err, "invalid JSON at line 4, column 18"));
  WriteBytes(box.File("bad.json"), valid.substr(0, valid.size() / 2));
  Run cut = box.Rocky("state import bad.json --yes --state-path two.redb");
  CHECK_RUN(cut, 1);
  CHECK(Contains(cut.err, "(end of input)"));
  CHECK(!Contains(box.Rocky("state --output table --state-path two.redb").out, "x.y.z"));
}

TEST_CASE("state export FILE is created 0600 and replaces a wider file atomically") {
  Sandbox box;
  CHECK_RUN(box.Rocky("state set --table a.b.c --value 2026-01-01T00:00:00Z"), 0);
  ::umask(022);
  CHECK_RUN(box.Rocky("state export new.json"), 0);
  CHECK(Mode(box.File("new.json")) == 0600);
  WriteBytes(box.File("old.json"), "old");
  REQUIRE(::chmod(box.File("old.json").c_str(), 0644) == 0);
  CHECK_RUN(box.Rocky("state export old.json"), 0);
  CHECK(Mode(box.File("old.json")) == 0600);
  CHECK(Contains(ReadBytes(box.File("old.json")), "\"a.b.c\""));
  // No temporary file is left beside it.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(box.dir())) {
    (void)entry;
    ++files;
  }
  CHECK(files == 3);  // the state file and the two exports
}

TEST_CASE("state compact: 100,000 watermarks deleted, the file shrinks to what it holds") {
  Sandbox box;
  std::string json = R"({"format":"rocky-state","schema_version":1,"watermarks":[)";
  for (int i = 0; i < 100000; ++i) {
    char entry[160];
    std::snprintf(
        entry, sizeof entry,
        R"(%s{"table":"acme_warehouse.staging__us_west__shopify.t%06d","last_value":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"})",
        i == 0 ? "" : ",", i);
    json += entry;
  }
  json += R"(],"check_history":[],"run_history":[]})";
  WriteBytes(box.File("big.json"), json);
  CHECK_RUN(box.Rocky("state import big.json"), 0);
  CHECK_RUN(box.Rocky("state delete --all --yes"), 0);
  const auto before = std::filesystem::file_size(box.File(".rocky-state.redb"));
  Run compact = box.Rocky("state compact --output json");
  CHECK_RUN(compact, 0);
  const auto after = std::filesystem::file_size(box.File(".rocky-state.redb"));
  INFO("before " << before << " bytes, after " << after);
  CHECK(before > 8'000'000);
  CHECK(after < 100'000);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(compact.out).get(doc) == simdjson::SUCCESS);
  CHECK(doc["command"].get_string().value() == "state compact");
  CHECK(doc["bytes_before"].get_uint64().value() == before);
  CHECK(doc["bytes_after"].get_uint64().value() == after);
  Run table = box.Rocky("state compact --output table");
  CHECK_RUN(table, 0);
  CHECK(Contains(table.out, "before"));
  // The state is whole afterwards.
  CHECK_RUN(box.Rocky("state set --table a.b.c --value 2026-01-01T00:00:00Z"), 0);
  CHECK_RUN(box.Program("rocky-inspect", ".rocky-state.redb"), 0);
}

TEST_CASE("doctor: a state file this user cannot write is critical, with a permission suggestion") {
  Sandbox box;
  CHECK_RUN(box.Rocky("state set --table a.b.c --value 2026-01-01T00:00:00Z"), 0);
  REQUIRE(::chmod(box.File(".rocky-state.redb").c_str(), 0444) == 0);
  // As root, permission bits do not stop writes: the check runs as an unprivileged user then.
  std::string prefix;
  if (::geteuid() == 0) {
    REQUIRE(::chmod(box.dir().c_str(), 0755) == 0);
    REQUIRE(std::system("command -v setpriv >/dev/null") == 0);
    prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  }
  const std::string command = "cd " + ShellQuote(box.dir()) + " && " + prefix +
                              ShellQuote(ProgramPath("rocky")) +
                              " doctor --check state_file --output json 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  const int status = pclose(pipe);
  INFO(out);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(Contains(out, "\"status\":\"critical\""));
  CHECK(Contains(out, "cannot be written by this user"));
  CHECK(Contains(out, "write access"));
  CHECK(!Contains(out, "state import"));
}

TEST_CASE(
    "no exception aborts rocky: doctor on a path through a file, TMPDIR and --events that cannot be used") {
  Sandbox box;
  WriteBytes(box.File("plainfile"), "x");
  // The local probe used std::filesystem::remove, which threw on ENOTDIR: exit 134 instead of a verdict.
  Run doctor = box.Rocky("doctor --state-path plainfile/state.redb --output json");
  CHECK_RUN(doctor, 1);
  CHECK(Contains(doctor.out, "cannot create a file in plainfile"));
  // A remote backend, so that state --remote gets as far as its temporary folder and --events; nothing
  // listens at the endpoint, and nothing is reached before these fail.
  WriteBytes(box.File("rocky.toml"),
             "[state]\nbackend = \"s3\"\ns3_bucket = \"b\"\ns3_region = \"us-east-1\"\ns3_endpoint = "
             "\"http://127.0.0.1:9\"\n");
  // std::filesystem::temp_directory_path() threw on a TMPDIR that is not a folder.
  const char* saved = std::getenv("TMPDIR");
  const std::string saved_value = saved != nullptr ? saved : "";
  // A folder inside the sandbox that does not exist (not a fixed path such as /nonexistent, which another
  // program on the machine may have created: nobody's home directory).
  const std::string missing_tmpdir = box.File("no-such-folder");
  ::setenv("TMPDIR", missing_tmpdir.c_str(), 1);
  Run remote = box.Rocky("state --remote");
  if (saved != nullptr) {
    ::setenv("TMPDIR", saved_value.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  CHECK_RUN(remote, 1);
  CHECK(Contains(remote.err, "$TMPDIR"));
  CHECK(Contains(remote.err, missing_tmpdir));
  CHECK(std::count(remote.err.begin(), remote.err.end(), '\n') == 1);
  // A symbolic link that loops: std::filesystem::exists threw on it.
  REQUIRE(::symlink("loop", box.File("loop").c_str()) == 0);
  Run events = box.Rocky("state set --table a.b.c --value 2026-01-01T00:00:00Z --events loop");
  CHECK_RUN(events, 1);
  CHECK(Contains(events.err, "events file (--events) 'loop'"));
  CHECK(std::count(events.err.begin(), events.err.end(), '\n') == 1);
}

TEST_CASE("the last resort: an exception escaping a command is one line on stderr and exit 1, never abort") {
  const rocky::cli::CommandSpec root{
      .name = "thrower",
      .handler = [](const rocky::cli::CommandContext&) -> int {
        throw std::runtime_error("boom in a handler");
      },
  };
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::close(pipe_fds[0]);
    char name[] = "thrower";
    char* argv[] = {name, nullptr};
    _exit(rocky::cli::RunMain(root, 1, argv));
  }
  ::close(pipe_fds[1]);
  std::string err;
  char buffer[512];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0) err.append(buffer, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO(err);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(err.starts_with("thrower: internal error: boom in a handler"));
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}

}  // namespace
