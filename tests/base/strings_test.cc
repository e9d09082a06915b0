#include "rocky/base/strings.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <utility>

#include "rocky/base/temp_file.h"

namespace {

using namespace rocky::base;

TEST_CASE("Quoted, Hex, Lower and Trim") {
  CHECK(Quoted("rocky.toml") == "'rocky.toml'");
  CHECK(Quoted("") == "''");
  CHECK(Hex(std::string_view("\x00\x0a\xff", 3)) == "000aff");
  const unsigned char bytes[] = {0xde, 0xad, 0xbe, 0xef};
  CHECK(Hex(bytes, sizeof bytes) == "deadbeef");
  CHECK(Lower("Content-Type: ÄB") == "content-type: Äb");  // ASCII only: UTF-8 bytes pass unchanged
  CHECK(Trim(" \t key = value\r\n") == "key = value");
  CHECK(Trim(" \t\r\n").empty());
}

TEST_CASE("RandomHex: the requested size, and a different value each call") {
  CHECK(RandomHex(0).empty());
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) {
    const std::string h = RandomHex(16);
    REQUIRE(h.size() == 32);
    CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(h);
  }
  CHECK(seen.size() == 64);
}

TEST_CASE("TempNextTo names differ; Unlinker removes its file and tolerates a missing one") {
  char dir_template[] = "/tmp/rocky-base-test-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::string target = std::string(dir_template) + "/state.redb";
  const std::string a = TempNextTo(target, "download");
  const std::string b = TempNextTo(target, "download");
  CHECK(a != b);
  CHECK(a.starts_with(target + ".download-"));
  {
    Unlinker remove_a{a};
    Unlinker remove_missing{b};  // never created
    std::FILE* f = std::fopen(a.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fclose(f);
    struct stat st;
    REQUIRE(::stat(a.c_str(), &st) == 0);
  }
  struct stat st;
  CHECK(::stat(a.c_str(), &st) != 0);
  CHECK(::rmdir(dir_template) == 0);  // empty: both names are gone
}

// Sets an environment variable for one scope, restoring its old value (or its absence) afterwards.
struct ScopedTmpdir {
  explicit ScopedTmpdir(const std::string& value) {
    const char* old = std::getenv("TMPDIR");
    had_ = old != nullptr;
    if (had_) old_ = old;
    ::setenv("TMPDIR", value.c_str(), 1);
  }
  ~ScopedTmpdir() {
    if (had_) {
      ::setenv("TMPDIR", old_.c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }
  bool had_ = false;
  std::string old_;
};

TEST_CASE(
    "TempFolder: a private folder under $TMPDIR, removed with its contents; a clear error when it cannot") {
  char dir_template[] = "/tmp/rocky-base-test-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::string parent = dir_template;
  std::string made;
  {
    ScopedTmpdir tmpdir(parent);
    auto folder = TempFolder::Create("probe");
    REQUIRE_MESSAGE(folder.ok(), folder.status().ToString());
    made = folder->path();
    CHECK(made.starts_with(parent + "/rocky-probe-"));
    struct stat st;
    REQUIRE(::stat(made.c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK((st.st_mode & 0777) == 0700);
    // Moving hands the folder over: only the last owner removes it.
    TempFolder moved = std::move(*folder);
    CHECK(moved.path() == made);
    REQUIRE(::mkdir((made + "/sub").c_str(), 0700) == 0);
    std::FILE* f = std::fopen((made + "/sub/file").c_str(), "w");
    REQUIRE(f != nullptr);
    std::fclose(f);
  }
  struct stat st;
  CHECK(::stat(made.c_str(), &st) != 0);
  CHECK(::rmdir(dir_template) == 0);  // empty: the folder went with its contents

  ScopedTmpdir missing(parent + "/does-not-exist");
  auto failed = TempFolder::Create("probe");
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == Status::Code::kIOError);
  CHECK(failed.status().message() ==
        "cannot create a temporary folder from " + parent +
            "/does-not-exist/rocky-probe-XXXXXX ($TMPDIR): No such file or directory");
}

}  // namespace
