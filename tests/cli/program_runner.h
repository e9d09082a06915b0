// Running the built programs (rocky, rocky-inspect) from tests: a temporary working folder, the command
// line in shell syntax, stdout captured through a pipe (so the programs see no terminal), stderr and the
// exit code. Programs are found through ROCKY_BUILD_ROOT, which scripts/test and meson test set.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "file_bytes.h"

namespace rocky::cli::testing {

struct Run {
  int exit_code = -1;  // 128 + signal when the program was killed
  std::string out;
  std::string err;
};

inline std::string EnvOrFail(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0')
    FAIL(std::string(name) << " is not set; run through scripts/test or meson test");
  return value;
}

// 'text' for sh, with embedded single quotes escaped.
inline std::string ShellQuote(const std::string& s) {
  std::string quoted = "'";
  for (char c : s) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

using rocky_test::ReadBytes;  // tests/support/file_bytes.h
using rocky_test::WriteBytes;

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The built program `name` ("rocky", "rocky-inspect").
inline std::string ProgramPath(const std::string& name) {
  const std::string binary = EnvOrFail("ROCKY_BUILD_ROOT") + "/cli/" + name;
  REQUIRE_MESSAGE(access(binary.c_str(), X_OK) == 0, binary << " is not an executable");
  return binary;
}

// Runs `command` with sh: stdout captured through a pipe, stderr into the file err_path (read back, then
// removed), stdin from /dev/null. `command` must not redirect stdin or stderr itself.
inline Run RunShell(const std::string& command, const std::string& err_path) {
  Run run;
  FILE* pipe = popen((command + " 2>" + ShellQuote(err_path) + " </dev/null").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) run.out.append(buffer, n);
  const int status = pclose(pipe);
  REQUIRE(status != -1);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.err = ReadBytes(err_path);
  std::remove(err_path.c_str());
  return run;
}

// A temporary working folder, removed with everything in it; programs run inside it so default paths
// (.rocky-state.redb, rocky.toml) land there.
class Sandbox {
 public:
  Sandbox() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/rocky-cli-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
  }
  ~Sandbox() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  const std::string& dir() const { return dir_; }
  std::string File(const std::string& name) const { return dir_ + "/" + name; }

  // Runs `program ARGS` (ARGS in shell syntax) in the folder, with stdin from /dev/null.
  Run Program(const std::string& program, const std::string& args) const {
    return RunShell("cd " + ShellQuote(dir_) + " && " + ShellQuote(ProgramPath(program)) + " " + args,
                    File(".stderr"));
  }
  Run Rocky(const std::string& args) const { return Program("rocky", args); }

 private:
  std::string dir_;
};

// Checks the exit code, showing both outputs when it is wrong. `run` is evaluated once, before INFO: INFO
// evaluates lazily while reporting, and running a program from inside doctest's reporter deadlocks it.
#define CHECK_RUN(run, code)                                                            \
  do {                                                                                  \
    const ::rocky::cli::testing::Run& check_run_result_ = (run);                        \
    INFO("stdout:\n" << check_run_result_.out << "stderr:\n" << check_run_result_.err); \
    CHECK(check_run_result_.exit_code == (code));                                       \
  } while (0)

}  // namespace rocky::cli::testing
