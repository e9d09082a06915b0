#include "rocky/base/strings.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>

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

}  // namespace
