// End to end: runs the built `rocky` and `rocky-inspect` (under $ROCKY_BUILD_ROOT/cli, set by meson's test()
// and scripts/test) and checks what they print and how they exit.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "version.h"

namespace {

struct ProgramRun {
  int exit_code = -1;  // 128 + signal number when the program was killed by a signal
  std::string out;
  std::string err;
};

std::string EnvOrFail(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') FAIL(name << " is not set; run through scripts/test or meson test");
  return value;
}

// For sh -c: wraps s in single quotes.
std::string ShellQuote(const std::string& s) {
  std::string quoted = "'";
  for (char c : s) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs $ROCKY_BUILD_ROOT/cli/<program> with `args` (shell syntax), capturing stdout and stderr apart;
// `environment` ("NAME=value ...") is set for the program alone.
ProgramRun RunProgram(const std::string& program, const std::string& args,
                      const std::string& environment = "") {
  const std::string binary = EnvOrFail("ROCKY_BUILD_ROOT") + "/cli/" + program;
  REQUIRE_MESSAGE(access(binary.c_str(), X_OK) == 0, binary << " is not an executable");

  const char* tmpdir = std::getenv("TMPDIR");
  std::string err_path =
      std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/rocky-cli-test-XXXXXX";
  const int err_fd = mkstemp(err_path.data());
  REQUIRE_MESSAGE(err_fd >= 0, "mkstemp failed for " << err_path);
  close(err_fd);

  const std::string command = (environment.empty() ? "" : "env " + environment + " ") + ShellQuote(binary) +
                              " " + args + " 2>" + ShellQuote(err_path) + " </dev/null";
  ProgramRun run;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE_MESSAGE(pipe != nullptr, "popen failed for " << command);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) run.out.append(buffer, n);
  const int status = pclose(pipe);
  REQUIRE_MESSAGE(status != -1, "pclose failed for " << command);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.err = ReadFile(err_path);
  unlink(err_path.c_str());
  return run;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_CASE("rocky --help lists the global options and only commands that exist") {
  const ProgramRun run = RunProgram("rocky", "--help");
  INFO("stdout:\n" << run.out << "stderr:\n" << run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.err.empty());
  CHECK(Contains(run.out, "Usage: rocky [OPTIONS] COMMAND\n"));
  CHECK(Contains(run.out, "--config PATH"));
  CHECK(Contains(run.out, "--state-path PATH"));
  CHECK(Contains(run.out, "--output table|json"));
  CHECK(Contains(run.out, "--version"));
  for (const char* command : {"init", "plan", "apply", "run", "state", "help [COMMAND]"}) {
    CHECK_MESSAGE(Contains(run.out, "\n  " + std::string(command) + " "), command);
  }
  CHECK_FALSE(Contains(run.out, "not implemented"));
}

TEST_CASE("rocky help prints the same text as rocky --help") {
  const ProgramRun help_command = RunProgram("rocky", "help");
  const ProgramRun help_flag = RunProgram("rocky", "--help");
  CHECK(help_command.exit_code == 0);
  CHECK(help_command.out == help_flag.out);
}

TEST_CASE("rocky --version prints the version, also as JSON") {
  const ProgramRun run = RunProgram("rocky", "--version");
  CHECK(run.exit_code == 0);
  CHECK(run.out == "rocky " + std::string(rocky::cli::kVersion) + "\n");
  CHECK(run.err.empty());

  const ProgramRun json = RunProgram("rocky", "--output json --version");
  CHECK(json.exit_code == 0);
  CHECK(json.out == "{\"program\":\"rocky\",\"version\":\"" + std::string(rocky::cli::kVersion) + "\"}\n");
}

TEST_CASE("rocky loads libcurl, libpq and OpenSSL only when a command reaches S3, Valkey or PostgreSQL") {
  // The dynamic loader lists every library it loads (LD_DEBUG=files, on stderr).
  const ProgramRun local =
      RunProgram("rocky", "--state-path /nonexistent/state.redb state --output json", "LD_DEBUG=files");
  // In a folder of its own, removed after: init may write there before it connects.
  const char* tmp = std::getenv("TMPDIR");
  std::string folder = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/rocky-dynload-XXXXXX";
  REQUIRE(mkdtemp(folder.data()) != nullptr);
  const ProgramRun postgres = RunProgram("rocky",
                                         "--config " + ShellQuote(folder + "/rocky.toml") +
                                             " init --adapter postgres --url "
                                             "'postgresql://rocky@127.0.0.1:1/nowhere' --force",
                                         "LD_DEBUG=files");
  std::error_code ec;
  std::filesystem::remove_all(folder, ec);
  INFO(local.err);
  CHECK(Contains(local.err, "file=libsqlite3.so"));  // the listing works
  CHECK_FALSE(Contains(local.err, "libcurl"));
  CHECK_FALSE(Contains(local.err, "libpq"));
  CHECK_FALSE(Contains(local.err, "libssl"));
  CHECK_FALSE(Contains(local.err, "libcrypto"));
  // Nothing listens on port 1: the command fails, after loading libpq to try.
  CHECK(postgres.exit_code != 0);
  CHECK(Contains(postgres.err, "file=libpq.so.5"));
  CHECK_FALSE(Contains(postgres.err, "libcurl"));
}

TEST_CASE("the version the programs print is meson's project version") {
  // The root meson.build declares it as `version : '0.1.0'` inside project(...).
  const std::string meson_build = ReadFile(EnvOrFail("ROCKY_SOURCE_ROOT") + "/meson.build");
  const size_t project = meson_build.find("project(");
  REQUIRE(project != std::string::npos);
  const size_t key = meson_build.find("version :", project);
  REQUIRE(key != std::string::npos);
  const size_t open_quote = meson_build.find('\'', key);
  const size_t close_quote = meson_build.find('\'', open_quote + 1);
  REQUIRE(close_quote != std::string::npos);
  const std::string project_version = meson_build.substr(open_quote + 1, close_quote - open_quote - 1);
  CHECK(std::string(rocky::cli::kVersion) == project_version);
  CHECK(RunProgram("rocky-inspect", "--version").out == "rocky-inspect " + project_version + "\n");
}

TEST_CASE("rocky: an unknown command exits 2 with a message naming it") {
  const ProgramRun run = RunProgram("rocky", "frobnicate");
  CHECK(run.exit_code == 2);
  CHECK(run.out.empty());
  CHECK(run.err == "rocky: unknown command 'frobnicate'\nRun 'rocky --help' for usage.\n");
}

TEST_CASE("rocky: an unknown flag or a bad --output value exits 2 naming it") {
  const ProgramRun flag = RunProgram("rocky", "--frobnicate");
  CHECK(flag.exit_code == 2);
  CHECK(Contains(flag.err, "unknown flag '--frobnicate'"));

  const ProgramRun output = RunProgram("rocky", "--output xml --version");
  CHECK(output.exit_code == 2);
  CHECK(output.out.empty());
  CHECK(Contains(output.err, "invalid value 'xml' for flag '--output'"));

  const ProgramRun missing = RunProgram("rocky", "--state-path");
  CHECK(missing.exit_code == 2);
  CHECK(Contains(missing.err, "flag '--state-path' needs a value (PATH)"));
}

TEST_CASE("rocky without a command exits 2 and says so") {
  const ProgramRun run = RunProgram("rocky", "");
  CHECK(run.exit_code == 2);
  CHECK(run.err == "rocky: no command given\nRun 'rocky --help' for usage.\n");
}

TEST_CASE("rocky-inspect --help says it is a read-only dumper") {
  const ProgramRun run = RunProgram("rocky-inspect", "--help");
  INFO("stdout:\n" << run.out << "stderr:\n" << run.err);
  CHECK(run.exit_code == 0);
  CHECK(run.err.empty());
  CHECK(Contains(run.out, "offline dumper of a state file; never modifies it"));
  CHECK(Contains(run.out, "Usage: rocky-inspect [OPTIONS] FILE\n"));
  CHECK(Contains(run.out, "--output table|json"));
}

TEST_CASE("rocky-inspect: an extra argument exits 2 with a message naming it") {
  const ProgramRun run = RunProgram("rocky-inspect", "one.redb frobnicate");
  CHECK(run.exit_code == 2);
  CHECK(run.err ==
        "rocky-inspect: unexpected argument 'frobnicate'\nRun 'rocky-inspect --help' for usage.\n");
}

}  // namespace
