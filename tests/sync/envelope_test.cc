// The state envelope: snapshots are commits, round trips are exact, and every damaged, truncated or foreign
// object is refused with the local state left as it was.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "rocky/engine/db.h"
#include "rocky/sync/state_envelope.h"
#include "state_contents.h"
#include "temp_dir.h"

namespace {

using rocky_sync_test::Contents;
using rocky_sync_test::ReadState;

using rocky::base::Status;
using rocky::engine::Database;
using rocky::engine::Options;
using rocky::sync::DecodeEnvelope;
using rocky::sync::EncodeEnvelope;
using rocky::sync::WriteStateSnapshot;

using TempDir = rocky_test::TempDir;  // tests/support/temp_dir.h

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  REQUIRE(out.good());
}

// A state database with a few tables, an empty one, and a value large enough for overflow pages.
Contents MakeState(const std::string& path) {
  Contents want;
  auto db = Database::Open(path, Options{});
  REQUIRE(db.ok());
  auto w = (*db)->BeginWrite();
  REQUIRE(w.ok());
  std::mt19937_64 rng(7);
  for (const char* name : {"watermarks", "check_history", "metadata"}) {
    auto t = (*w)->OpenTable(name);
    REQUIRE(t.ok());
    auto& table = want[name];
    for (int i = 0; i < 500; ++i) {
      std::string key = std::string(name) + ".table" + std::to_string(i);
      std::string value = "{\"last_value\":" + std::to_string(rng()) + "}";
      REQUIRE((*t)->Insert(key, value).ok());
      table[key] = value;
    }
  }
  std::string big(3 << 20, '\0');
  for (auto& ch : big) ch = static_cast<char>(rng());
  auto t = (*w)->OpenTable("blobs");
  REQUIRE(t.ok());
  REQUIRE((*t)->Insert("big", big).ok());
  want["blobs"]["big"] = big;
  REQUIRE((*w)->OpenTable("empty").ok());
  want["empty"];
  REQUIRE((*w)->Commit().ok());
  REQUIRE((*db)->Close().ok());
  return want;
}

// An envelope around arbitrary content, with a valid header checksum: what a buggy or hostile writer could
// upload, to check that the decoder's later checks (not just the header) catch it.
std::string CraftEnvelope(const std::string& content, uint32_t envelope_version, uint32_t format_version,
                          uint64_t claimed_length, uint64_t claimed_hash) {
  std::string header(rocky::sync::kEnvelopeHeaderSize, '\0');
  std::memcpy(header.data(), rocky::sync::kEnvelopeMagic, 8);
  auto put = [&](size_t at, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) header[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
  };
  put(8, envelope_version, 4);
  put(12, format_version, 4);
  put(16, claimed_length, 8);
  put(24, claimed_hash, 8);
  put(32, XXH3_64bits(header.data(), 32), 8);
  std::string frame(ZSTD_compressBound(content.size()), '\0');
  size_t n = ZSTD_compress(frame.data(), frame.size(), content.data(), content.size(), 1);
  REQUIRE(!ZSTD_isError(n));
  frame.resize(n);
  return header + frame;
}

// Decoding `object` must fail with `code` and a message containing `words`, leave the destination as it was
// and leave no temporary file.
void ExpectRejected(const TempDir& dir, const std::string& object, Status::Code code,
                    const std::string& words) {
  const std::string dest = dir.File("local.redb");
  const std::string before = ReadBytes(dest);
  auto names_before = dir.Names();
  WriteBytes(dir.File("object"), object);
  auto r = DecodeEnvelope(dir.File("object"), dest);
  REQUIRE_FALSE(r.ok());
  CHECK_MESSAGE(r.status().code() == code, r.status().ToString());
  CHECK_MESSAGE(r.status().message().find(words) != std::string::npos, r.status().ToString());
  CHECK(ReadBytes(dest) == before);
  std::filesystem::remove(dir.File("object"));
  auto names_after = dir.Names();
  names_before.erase(std::remove(names_before.begin(), names_before.end(), "object"), names_before.end());
  CHECK(names_after == names_before);
}

TEST_CASE("envelope: a snapshot round-trips exactly and the header says what it holds") {
  TempDir dir;
  Contents want = MakeState(dir.File("state.redb"));
  REQUIRE(WriteStateSnapshot(dir.File("state.redb"), dir.File("snap.redb")).ok());
  auto enc = EncodeEnvelope(dir.File("snap.redb"), dir.File("env"));
  REQUIRE_MESSAGE(enc.ok(), enc.status().ToString());
  const std::string snap = ReadBytes(dir.File("snap.redb"));
  CHECK(enc->envelope_version == 1);
  CHECK(enc->state_format_version == 2);
  CHECK(enc->content_length == snap.size());
  CHECK(enc->content_xxh3 == XXH3_64bits(snap.data(), snap.size()));
  CHECK(enc->encoded_length == ReadBytes(dir.File("env")).size());

  auto dec = DecodeEnvelope(dir.File("env"), dir.File("restored.redb"));
  REQUIRE_MESSAGE(dec.ok(), dec.status().ToString());
  CHECK(dec->content_length == enc->content_length);
  CHECK(dec->content_xxh3 == enc->content_xxh3);
  CHECK(ReadBytes(dir.File("restored.redb")) == snap);
  CHECK(ReadState(dir.File("restored.redb")) == want);
  // Replacing an existing file works too, and leaves nothing else behind.
  REQUIRE(DecodeEnvelope(dir.File("env"), dir.File("restored.redb")).ok());
  CHECK(dir.Names() == std::vector<std::string>{"env", "restored.redb", "snap.redb", "state.redb"});
}

TEST_CASE("envelope: the snapshot is one commit even while a writer keeps committing") {
  TempDir dir;
  const std::string path = dir.File("state.redb");
  auto db = Database::Open(path, Options{});
  REQUIRE(db.ok());
  // Invariant of every commit: tables a and b hold the same counter under every one of 200 keys.
  auto write_round = [&](uint64_t n) {
    auto w = (*db)->BeginWrite(rocky::engine::WriteOptions{rocky::engine::Durability::kNoSync});
    REQUIRE(w.ok());
    for (const char* name : {"a", "b"}) {
      auto t = (*w)->OpenTable(name);
      REQUIRE(t.ok());
      for (int k = 0; k < 200; ++k) REQUIRE((*t)->Insert("k" + std::to_string(k), std::to_string(n)).ok());
    }
    REQUIRE((*w)->Commit().ok());
  };
  write_round(0);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t n = 1; !stop.load(); ++n) write_round(n);
  });
  for (int i = 0; i < 5; ++i) {
    std::string snap = dir.File("snap" + std::to_string(i) + ".redb");
    REQUIRE(WriteStateSnapshot(**db, snap).ok());
    Contents got = ReadState(snap);
    REQUIRE(got.size() == 2);
    REQUIRE(got["a"].size() == 200);
    const std::string n = got["a"]["k0"];
    for (const auto& [k, v] : got["a"]) CHECK(v == n);
    CHECK(got["a"] == got["b"]);
  }
  stop = true;
  writer.join();
  REQUIRE((*db)->Close().ok());
}

TEST_CASE("envelope: truncated, corrupt and foreign objects are refused, the local state untouched") {
  TempDir dir;
  MakeState(dir.File("state.redb"));
  REQUIRE(WriteStateSnapshot(dir.File("state.redb"), dir.File("snap.redb")).ok());
  REQUIRE(EncodeEnvelope(dir.File("snap.redb"), dir.File("env")).ok());
  const std::string good = ReadBytes(dir.File("env"));
  WriteBytes(dir.File("local.redb"), "the local state, which must survive");
  using C = Status::Code;

  SUBCASE("truncated") {
    ExpectRejected(dir, good.substr(0, 0), C::kCorruption, "foreign");
    ExpectRejected(dir, good.substr(0, 20), C::kCorruption, "truncated");
    ExpectRejected(dir, good.substr(0, 40), C::kCorruption, "truncated");
    ExpectRejected(dir, good.substr(0, good.size() / 2), C::kCorruption, "truncated");
    ExpectRejected(dir, good.substr(0, good.size() - 1), C::kCorruption, "truncated");
  }
  SUBCASE("corrupt header") {
    std::string bad = good;
    bad[17] ^= 1;  // the content length
    ExpectRejected(dir, bad, C::kCorruption, "header checksum");
  }
  SUBCASE("corrupt compressed bytes") {
    std::string bad = good;
    bad[good.size() / 2] ^= 0x40;
    ExpectRejected(dir, bad, C::kCorruption, "corrupt");
  }
  SUBCASE("trailing bytes") { ExpectRejected(dir, good + "x", C::kCorruption, "after the end"); }
  SUBCASE("foreign objects") {
    ExpectRejected(dir, "<html>not found</html>", C::kCorruption, "foreign");
    ExpectRejected(dir, ReadBytes(dir.File("snap.redb")), C::kCorruption, "foreign");  // a raw state file
  }
  SUBCASE("a header whose hash or length does not match the content") {
    const std::string snap = ReadBytes(dir.File("snap.redb"));
    const uint64_t h = XXH3_64bits(snap.data(), snap.size());
    ExpectRejected(dir, CraftEnvelope(snap, 1, 2, snap.size(), h + 1), C::kCorruption, "XXH3");
    ExpectRejected(dir, CraftEnvelope(snap, 1, 2, snap.size() + 5, h), C::kCorruption, "header says");
    ExpectRejected(dir, CraftEnvelope(snap, 1, 2, snap.size() - 5, h), C::kCorruption, "more than");
    ExpectRejected(dir, CraftEnvelope(snap, 1, 1, snap.size(), h), C::kCorruption, "format version");
  }
  SUBCASE("content that is not a sound state file") {
    std::string junk = "not a state file at all";
    ExpectRejected(dir, CraftEnvelope(junk, 1, 2, junk.size(), XXH3_64bits(junk.data(), junk.size())),
                   C::kCorruption, "state magic");
    std::string snap = ReadBytes(dir.File("snap.redb"));
    snap[snap.size() - 100] ^= 1;  // a page of the tree (or free space): the checks below must catch either
    std::string dest_before = ReadBytes(dir.File("local.redb"));
    WriteBytes(dir.File("object"),
               CraftEnvelope(snap, 1, 2, snap.size(), XXH3_64bits(snap.data(), snap.size())));
    auto r = DecodeEnvelope(dir.File("object"), dir.File("local.redb"));
    if (!r.ok()) {
      CHECK(r.status().IsCorruption());
      CHECK(ReadBytes(dir.File("local.redb")) == dest_before);
    }
    // Cut to its header: the engine reads such a file as an empty database (it holds no commit), which must
    // never replace the local state.
    std::string trunc = ReadBytes(dir.File("snap.redb")).substr(0, 4096);
    ExpectRejected(dir, CraftEnvelope(trunc, 1, 2, trunc.size(), XXH3_64bits(trunc.data(), trunc.size())),
                   C::kCorruption, "holds no commit");
    // Its newest commit's slot damaged: the engine would open the commit before it, an older state.
    std::string torn = ReadBytes(dir.File("snap.redb"));
    const auto txn_of = [&](size_t page) {
      uint64_t v = 0;
      for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(torn[page * 4096 + 8 + i]);
      return v;
    };
    const size_t newest_slot = txn_of(1) > txn_of(2) ? 1 : 2;
    torn[newest_slot * 4096 + 2000] ^= 1;
    ExpectRejected(dir, CraftEnvelope(torn, 1, 2, torn.size(), XXH3_64bits(torn.data(), torn.size())),
                   C::kCorruption, "newest commit");
  }
  SUBCASE("a newer envelope version") {
    const std::string snap = ReadBytes(dir.File("snap.redb"));
    ExpectRejected(dir, CraftEnvelope(snap, 2, 2, snap.size(), XXH3_64bits(snap.data(), snap.size())),
                   C::kNotSupported, "envelope version 2");
  }
}

TEST_CASE("envelope: only a state file is encoded") {
  TempDir dir;
  WriteBytes(dir.File("notes.txt"), "hello, not a database");
  auto r = EncodeEnvelope(dir.File("notes.txt"), dir.File("env"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
  CHECK(r.status().message().find("not a rocky state file") != std::string::npos);
  CHECK(dir.Names() == std::vector<std::string>{"notes.txt"});
}

}  // namespace
