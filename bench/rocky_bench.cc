// rocky-bench: the same workload on our engine, LMDB, RocksDB and SQLite (WAL and rollback journal), and the
// state commands of the `rocky` binary against the sqlite3 shell on the same rows; see bench/README.md.
//
// Engines are interleaved phase by phase: in each round every engine gets a fresh directory, then each phase
// runs on every engine before the next phase starts (A B A B ...), so a burst of load from other processes on
// this shared machine falls on all engines of a phase alike. Each engine's phases still run in order on the
// state its previous phase left (reads need the bulk load, removals need the reads done). The order of the
// engines alternates between rounds. Every ratio is computed within a round and reported as the median over
// the rounds with its min-max.
#include <fcntl.h>
#include <lmdb.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "rocky/engine/db.h"

extern char** environ;

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------------------
// Workload: keys and values are pure functions of an index, so every engine sees the same bytes in the same
// (random) order without holding a million strings in memory.

constexpr size_t kKeySize = 24;
constexpr size_t kValueSize = 150;
constexpr uint64_t kSeed = 0x5eed'2026'0005ULL;  // fixed, so runs are comparable
constexpr uint64_t kBatchKeys = 1000;            // keys per commit in the batch and no-sync phases
// Every engine's own cache gets the same budget: our Options::cache_bytes default.
constexpr size_t kCacheBytes = size_t{64} << 20;

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct Config {
  uint64_t entries = 1'000'000;
  uint64_t individual = 1000;  // durable commits of one key each
  uint64_t batches = 100;      // commits of kBatchKeys keys, durable and then no-sync
  int rounds = 3;
  std::string dir = "build/bench-data";
  std::string json;
  std::vector<std::string> engines = {"rocky", "lmdb", "rocksdb", "sqlite-wal", "sqlite-journal"};
  std::set<std::string> phases;  // empty: every phase
  bool keep = false;
  bool quick = false;
  // Our engine's Options::cache_bytes; the other engines keep kCacheBytes. For measuring how much of our read
  // time is cache misses (a tuning experiment), not for the published table.
  size_t rocky_cache_bytes = kCacheBytes;
  // The state phase: the `rocky` binary's state commands against the sqlite3 shell, as whole processes.
  bool state = true;
  uint64_t watermarks = 100'000;
  int state_reps = 5;     // per round and side; point lookups take 3x as many
  std::string rocky_cli;  // default: ../cli/rocky beside this binary
  std::string sqlite3_cli = "sqlite3";
  std::string spawn;  // default: rocky-bench-spawn beside this binary
};

class Workload {
 public:
  explicit Workload(const Config& c) : cfg_(c), values_(1 << 20) {
    uint64_t s = kSeed;
    for (size_t i = 0; i < values_.size(); i += 8) {
      uint64_t r = SplitMix(s++);
      std::memcpy(&values_[i], &r, 8);
    }
  }
  const Config& cfg() const { return cfg_; }
  // Index ranges of each writing phase, disjoint so that each phase inserts new keys.
  uint64_t bulk_first() const { return 0; }
  uint64_t individual_first() const { return cfg_.entries; }
  uint64_t batch_first() const { return individual_first() + cfg_.individual; }
  uint64_t nosync_first() const { return batch_first() + cfg_.batches * kBatchKeys; }
  uint64_t crash_first() const { return nosync_first() + cfg_.batches * kBatchKeys; }

  void Key(uint64_t i, char* out) const {
    for (int w = 0; w < 3; ++w) {
      uint64_t r = SplitMix((kSeed ^ 0xa5a5) + i * 3 + static_cast<uint64_t>(w));
      std::memcpy(out + 8 * w, &r, 8);
    }
  }
  std::string Key(uint64_t i) const {
    std::string k(kKeySize, '\0');
    Key(i, k.data());
    return k;
  }
  std::string_view Value(uint64_t i) const {
    return {values_.data() + (i * 7919) % (values_.size() - kValueSize), kValueSize};
  }

 private:
  Config cfg_;
  std::vector<char> values_;
};

[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error(what); }

uint64_t FileSize(const fs::path& p) {
  std::error_code ec;
  uint64_t n = fs::file_size(p, ec);
  return ec ? 0 : n;
}
uint64_t DirSize(const fs::path& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) total += e.file_size();
  return total;
}

// ---------------------------------------------------------------------------------------------------------
// The engine adapters. Each throws std::runtime_error naming the failing call.

// Per-thread read handle: one snapshot/connection per reader thread, as each engine wants it.
class Reader {
 public:
  virtual ~Reader() = default;
  // Returns the value's length, or 0 when the key is missing.
  virtual size_t Get(std::string_view key) = 0;
  // Reads up to n entries from the first key >= start; returns the bytes read.
  virtual size_t Scan(std::string_view start, int n) = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual void Open(const fs::path& dir) = 0;
  virtual void Close() = 0;
  // Inserts keys [first, first+count) in commits of per_commit keys; durable: each commit fsynced.
  virtual void Write(const Workload& w, uint64_t first, uint64_t count, uint64_t per_commit,
                     bool durable) = 0;
  virtual std::unique_ptr<Reader> NewReader() = 0;
  virtual uint64_t Len() = 0;
  // Removes keys [first, first+count) in one durable commit.
  virtual void Remove(const Workload& w, uint64_t first, uint64_t count) = 0;
  virtual uint64_t SizeBytes() = 0;
  virtual void Compact() = 0;
  virtual std::string Durability() const = 0;
  // Waits until the engine does no work in the background (between phases, never measured).
  virtual void Quiesce() {}
};

// ---- ours
namespace re = rocky::engine;

void Check(const re::Status& s, const char* what) {
  if (!s.ok()) Fail(std::string(what) + ": " + s.ToString());
}
template <typename T>
T Take(re::Result<T> r, const char* what) {
  if (!r.ok()) Fail(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

class RockyReader : public Reader {
 public:
  explicit RockyReader(re::Database* db) {
    txn_ = Take(db->BeginRead(), "BeginRead");
    table_ = Take(txn_->OpenTable("kv"), "OpenTable");
  }
  size_t Get(std::string_view key) override {
    bool found = Take(table_->Get(key, &buf_), "Get");
    return found ? buf_.size() : 0;
  }
  size_t Scan(std::string_view start, int n) override {
    if (!cursor_) cursor_ = table_->NewCursor();
    size_t bytes = 0;
    cursor_->Seek(start);
    for (int i = 0; i < n && cursor_->Valid(); ++i, cursor_->Next())
      bytes += cursor_->key().size() + cursor_->value().size();
    Check(cursor_->status(), "cursor");
    return bytes;
  }

 private:
  std::unique_ptr<re::ReadTransaction> txn_;
  const re::ReadableTable* table_ = nullptr;
  std::unique_ptr<re::Cursor> cursor_;
  std::string buf_;
};

class RockyEngine : public Engine {
 public:
  explicit RockyEngine(size_t cache_bytes) : cache_bytes_(cache_bytes) {}
  void Open(const fs::path& dir) override {
    path_ = (dir / "rocky.redb").string();
    re::Options o;
    o.cache_bytes = cache_bytes_;
    db_ = Take(re::Database::Open(path_, o), "Database::Open");
    auto w = Take(db_->BeginWrite(), "BeginWrite");
    Take(w->OpenTable("kv"), "OpenTable");
    Check(w->Commit(), "Commit");
  }
  void Close() override {
    if (db_) Check(db_->Close(), "Close");
    db_.reset();
  }
  void Write(const Workload& w, uint64_t first, uint64_t count, uint64_t per_commit, bool durable) override {
    char key[kKeySize];
    re::WriteOptions wo;
    wo.durability = durable ? re::Durability::kDurable : re::Durability::kNoSync;
    for (uint64_t done = 0; done < count;) {
      auto txn = Take(db_->BeginWrite(wo), "BeginWrite");
      auto* t = Take(txn->OpenTable("kv"), "OpenTable");
      for (uint64_t n = 0; n < per_commit && done < count; ++n, ++done) {
        w.Key(first + done, key);
        Take(t->Insert({key, kKeySize}, w.Value(first + done)), "Insert");
      }
      Check(txn->Commit(), "Commit");
    }
  }
  std::unique_ptr<Reader> NewReader() override { return std::make_unique<RockyReader>(db_.get()); }
  uint64_t Len() override {
    auto txn = Take(db_->BeginRead(), "BeginRead");
    return Take(txn->OpenTable("kv"), "OpenTable")->Len();
  }
  void Remove(const Workload& w, uint64_t first, uint64_t count) override {
    char key[kKeySize];
    auto txn = Take(db_->BeginWrite(), "BeginWrite");
    auto* t = Take(txn->OpenTable("kv"), "OpenTable");
    for (uint64_t i = first; i < first + count; ++i) {
      w.Key(i, key);
      if (!Take(t->Remove({key, kKeySize}), "Remove")) Fail("Remove: key missing");
    }
    Check(txn->Commit(), "Commit");
  }
  uint64_t SizeBytes() override { return FileSize(path_); }
  void Compact() override { Check(db_->Compact(), "Compact"); }
  std::string Durability() const override {
    return "durable: Durability::kDurable (fdatasync per commit); no-sync: kNoSync; cache_bytes " +
           std::to_string(cache_bytes_ >> 20) + " MiB";
  }

 private:
  size_t cache_bytes_;
  std::string path_;
  std::unique_ptr<re::Database> db_;
};

// ---- LMDB
void Mdb(int rc, const char* what) {
  if (rc != MDB_SUCCESS) Fail(std::string(what) + ": " + mdb_strerror(rc));
}

class LmdbReader : public Reader {
 public:
  LmdbReader(MDB_env* env, MDB_dbi dbi) : dbi_(dbi) {
    Mdb(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn_), "mdb_txn_begin(ro)");
    Mdb(mdb_cursor_open(txn_, dbi_, &cur_), "mdb_cursor_open");
  }
  ~LmdbReader() override {
    mdb_cursor_close(cur_);
    mdb_txn_abort(txn_);
  }
  size_t Get(std::string_view key) override {
    MDB_val k{key.size(), const_cast<char*>(key.data())}, v;
    int rc = mdb_get(txn_, dbi_, &k, &v);
    if (rc == MDB_NOTFOUND) return 0;
    Mdb(rc, "mdb_get");
    return v.mv_size;
  }
  size_t Scan(std::string_view start, int n) override {
    MDB_val k{start.size(), const_cast<char*>(start.data())}, v;
    size_t bytes = 0;
    int rc = mdb_cursor_get(cur_, &k, &v, MDB_SET_RANGE);
    for (int i = 0; i < n && rc == MDB_SUCCESS; ++i) {
      bytes += k.mv_size + v.mv_size;
      rc = mdb_cursor_get(cur_, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) Mdb(rc, "mdb_cursor_get");
    return bytes;
  }

 private:
  MDB_txn* txn_ = nullptr;
  MDB_cursor* cur_ = nullptr;
  MDB_dbi dbi_;
};

class LmdbEngine : public Engine {
 public:
  void Open(const fs::path& dir) override {
    dir_ = dir;
    Mdb(mdb_env_create(&env_), "mdb_env_create");
    // Address space only; the file grows with its contents.
    Mdb(mdb_env_set_mapsize(env_, size_t{64} << 30), "mdb_env_set_mapsize");
    Mdb(mdb_env_set_maxreaders(env_, 16), "mdb_env_set_maxreaders");
    Mdb(mdb_env_open(env_, dir.c_str(), MDB_NOTLS, 0644), "mdb_env_open");
    MDB_txn* txn;
    Mdb(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
    Mdb(mdb_dbi_open(txn, nullptr, 0, &dbi_), "mdb_dbi_open");
    Mdb(mdb_txn_commit(txn), "mdb_txn_commit");
  }
  void Close() override {
    if (env_) mdb_env_close(env_);
    env_ = nullptr;
  }
  void Write(const Workload& w, uint64_t first, uint64_t count, uint64_t per_commit, bool durable) override {
    if (!durable) Mdb(mdb_env_set_flags(env_, MDB_NOSYNC, 1), "mdb_env_set_flags");
    char key[kKeySize];
    for (uint64_t done = 0; done < count;) {
      MDB_txn* txn;
      Mdb(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
      for (uint64_t n = 0; n < per_commit && done < count; ++n, ++done) {
        w.Key(first + done, key);
        std::string_view val = w.Value(first + done);
        MDB_val k{kKeySize, key}, v{val.size(), const_cast<char*>(val.data())};
        Mdb(mdb_put(txn, dbi_, &k, &v, 0), "mdb_put");
      }
      Mdb(mdb_txn_commit(txn), "mdb_txn_commit");
    }
    if (!durable) Mdb(mdb_env_set_flags(env_, MDB_NOSYNC, 0), "mdb_env_set_flags");
  }
  std::unique_ptr<Reader> NewReader() override { return std::make_unique<LmdbReader>(env_, dbi_); }
  uint64_t Len() override {
    MDB_txn* txn;
    MDB_stat st;
    Mdb(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    int rc = mdb_stat(txn, dbi_, &st);
    mdb_txn_abort(txn);
    Mdb(rc, "mdb_stat");
    return st.ms_entries;
  }
  void Remove(const Workload& w, uint64_t first, uint64_t count) override {
    char key[kKeySize];
    MDB_txn* txn;
    Mdb(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
    for (uint64_t i = first; i < first + count; ++i) {
      w.Key(i, key);
      MDB_val k{kKeySize, key};
      Mdb(mdb_del(txn, dbi_, &k, nullptr), "mdb_del");
    }
    Mdb(mdb_txn_commit(txn), "mdb_txn_commit");
  }
  uint64_t SizeBytes() override { return FileSize(dir_ / "data.mdb"); }
  // LMDB cannot shrink in place: a compacting copy, then the copy replaces the file.
  void Compact() override {
    fs::path tmp = dir_ / "compact";
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    Mdb(mdb_env_copy2(env_, tmp.c_str(), MDB_CP_COMPACT), "mdb_env_copy2");
    Close();
    fs::rename(tmp / "data.mdb", dir_ / "data.mdb");
    fs::remove_all(tmp);
    Open(dir_);
  }
  std::string Durability() const override {
    return "durable: default flags (fdatasync per commit); no-sync: MDB_NOSYNC; OS page cache";
  }

 private:
  fs::path dir_;
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
};

// ---- RocksDB
void Rdb(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) Fail(std::string(what) + ": " + s.ToString());
}

class RocksReader : public Reader {
 public:
  explicit RocksReader(rocksdb::DB* db) : db_(db) {
    snap_ = db_->GetSnapshot();
    ro_.snapshot = snap_;
    it_.reset(db_->NewIterator(ro_));
  }
  ~RocksReader() override {
    it_.reset();
    db_->ReleaseSnapshot(snap_);
  }
  size_t Get(std::string_view key) override {
    rocksdb::Status s =
        db_->Get(ro_, db_->DefaultColumnFamily(), rocksdb::Slice(key.data(), key.size()), &buf_);
    if (s.IsNotFound()) return 0;
    Rdb(s, "Get");
    return buf_.size();
  }
  size_t Scan(std::string_view start, int n) override {
    size_t bytes = 0;
    it_->Seek(rocksdb::Slice(start.data(), start.size()));
    for (int i = 0; i < n && it_->Valid(); ++i, it_->Next()) bytes += it_->key().size() + it_->value().size();
    Rdb(it_->status(), "Iterator");
    return bytes;
  }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
  rocksdb::ReadOptions ro_;
  std::unique_ptr<rocksdb::Iterator> it_;
  rocksdb::PinnableSlice buf_;
};

class RocksEngine : public Engine {
 public:
  void Open(const fs::path& dir) override {
    dir_ = dir;
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = rocksdb::NewLRUCache(kCacheBytes);
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    rocksdb::DB* db;
    Rdb(rocksdb::DB::Open(o, dir.string(), &db), "DB::Open");
    db_.reset(db);
  }
  void Close() override {
    if (db_) Rdb(db_->Close(), "Close");
    db_.reset();
  }
  void Write(const Workload& w, uint64_t first, uint64_t count, uint64_t per_commit, bool durable) override {
    rocksdb::WriteOptions wo;
    wo.sync = durable;
    char key[kKeySize];
    for (uint64_t done = 0; done < count;) {
      rocksdb::WriteBatch b;
      for (uint64_t n = 0; n < per_commit && done < count; ++n, ++done) {
        w.Key(first + done, key);
        std::string_view v = w.Value(first + done);
        Rdb(b.Put(rocksdb::Slice(key, kKeySize), rocksdb::Slice(v.data(), v.size())), "Put");
      }
      Rdb(db_->Write(wo, &b), "Write");
    }
  }
  std::unique_ptr<Reader> NewReader() override { return std::make_unique<RocksReader>(db_.get()); }
  // RocksDB keeps no exact count (rocksdb.estimate-num-keys is an estimate): a full iteration.
  uint64_t Len() override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    Rdb(it->status(), "Iterator");
    return n;
  }
  void Remove(const Workload& w, uint64_t first, uint64_t count) override {
    rocksdb::WriteBatch b;
    char key[kKeySize];
    for (uint64_t i = first; i < first + count; ++i) {
      w.Key(i, key);
      Rdb(b.Delete(rocksdb::Slice(key, kKeySize)), "Delete");
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    Rdb(db_->Write(wo, &b), "Write");
  }
  uint64_t SizeBytes() override { return DirSize(dir_); }
  // RocksDB flushes and compacts in background threads, which would otherwise run during the next engine's
  // phase and steal its CPU and disk: wait for them (outside any measurement).
  void Quiesce() override {
    for (int i = 0; i < 60000; ++i) {
      uint64_t busy = 0;
      for (const char* p : {"rocksdb.num-running-compactions", "rocksdb.num-running-flushes",
                            "rocksdb.compaction-pending", "rocksdb.mem-table-flush-pending"}) {
        uint64_t v = 0;
        if (db_->GetIntProperty(p, &v)) busy += v;
      }
      if (busy == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  void Compact() override {
    Rdb(db_->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr), "CompactRange");
  }
  std::string Durability() const override {
    return "durable: WriteOptions::sync=true (WAL fsync per write batch); no-sync: sync=false; "
           "block cache 64 MiB, other options default";
  }

 private:
  fs::path dir_;
  std::unique_ptr<rocksdb::DB> db_;
};

// ---- SQLite
class Sqlite {
 public:
  Sqlite(const std::string& path, bool wal) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK)
      Fail("sqlite3_open: " + std::string(sqlite3_errmsg(db_)));
    Exec(wal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=DELETE");
    Exec("PRAGMA synchronous=FULL");
    Exec("PRAGMA cache_size=-65536");  // KiB: the same 64 MiB as the others
    Exec("CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID");
  }
  ~Sqlite() {
    for (auto& [sql, st] : stmts_) sqlite3_finalize(st);
    sqlite3_close(db_);
  }
  void Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      Fail(std::string(sql) + ": " + msg);
    }
  }
  sqlite3_stmt* Stmt(const char* sql) {
    auto& st = stmts_[sql];
    if (!st && sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK)
      Fail(std::string("prepare ") + sql + ": " + sqlite3_errmsg(db_));
    sqlite3_reset(st);
    return st;
  }
  void Done(sqlite3_stmt* st, int rc) {
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) Fail(std::string("step: ") + sqlite3_errmsg(db_));
    sqlite3_reset(st);
  }

 private:
  sqlite3* db_ = nullptr;
  std::map<std::string, sqlite3_stmt*> stmts_;
};

class SqliteReader : public Reader {
 public:
  SqliteReader(const std::string& path, bool wal) : db_(path, wal) { db_.Exec("BEGIN"); }
  ~SqliteReader() override {
    try {
      db_.Exec("COMMIT");
    } catch (const std::exception&) {
      // The read transaction ends with the connection anyway.
    }
  }
  size_t Get(std::string_view key) override {
    sqlite3_stmt* st = db_.Stmt("SELECT v FROM kv WHERE k = ?");
    sqlite3_bind_blob(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    int rc = sqlite3_step(st);
    size_t n = rc == SQLITE_ROW ? static_cast<size_t>(sqlite3_column_bytes(st, 0)) : 0;
    db_.Done(st, rc);
    return n;
  }
  size_t Scan(std::string_view start, int n) override {
    sqlite3_stmt* st = db_.Stmt("SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?");
    sqlite3_bind_blob(st, 1, start.data(), static_cast<int>(start.size()), SQLITE_STATIC);
    sqlite3_bind_int(st, 2, n);
    size_t bytes = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
      bytes += static_cast<size_t>(sqlite3_column_bytes(st, 0) + sqlite3_column_bytes(st, 1));
    db_.Done(st, rc);
    return bytes;
  }

 private:
  Sqlite db_;
};

class SqliteEngine : public Engine {
 public:
  explicit SqliteEngine(bool wal) : wal_(wal) {}
  void Open(const fs::path& dir) override {
    path_ = (dir / "sqlite.db").string();
    db_ = std::make_unique<Sqlite>(path_, wal_);
  }
  void Close() override { db_.reset(); }
  void Write(const Workload& w, uint64_t first, uint64_t count, uint64_t per_commit, bool durable) override {
    if (!durable) db_->Exec("PRAGMA synchronous=OFF");
    char key[kKeySize];
    for (uint64_t done = 0; done < count;) {
      db_->Exec("BEGIN");
      for (uint64_t n = 0; n < per_commit && done < count; ++n, ++done) {
        sqlite3_stmt* st = db_->Stmt("INSERT OR REPLACE INTO kv(k, v) VALUES (?, ?)");
        w.Key(first + done, key);
        std::string_view v = w.Value(first + done);
        sqlite3_bind_blob(st, 1, key, kKeySize, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
        db_->Done(st, sqlite3_step(st));
      }
      db_->Exec("COMMIT");
    }
    if (!durable) db_->Exec("PRAGMA synchronous=FULL");
  }
  std::unique_ptr<Reader> NewReader() override { return std::make_unique<SqliteReader>(path_, wal_); }
  uint64_t Len() override {
    sqlite3_stmt* st = db_->Stmt("SELECT count(*) FROM kv");
    int rc = sqlite3_step(st);
    uint64_t n = rc == SQLITE_ROW ? static_cast<uint64_t>(sqlite3_column_int64(st, 0)) : 0;
    db_->Done(st, rc);
    return n;
  }
  void Remove(const Workload& w, uint64_t first, uint64_t count) override {
    char key[kKeySize];
    db_->Exec("BEGIN");
    for (uint64_t i = first; i < first + count; ++i) {
      sqlite3_stmt* st = db_->Stmt("DELETE FROM kv WHERE k = ?");
      w.Key(i, key);
      sqlite3_bind_blob(st, 1, key, kKeySize, SQLITE_STATIC);
      db_->Done(st, sqlite3_step(st));
    }
    db_->Exec("COMMIT");
  }
  uint64_t SizeBytes() override {
    return FileSize(path_) + FileSize(path_ + "-wal") + FileSize(path_ + "-journal");
  }
  void Compact() override {
    db_->Exec("VACUUM");
    if (wal_) db_->Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  std::string Durability() const override {
    return std::string("durable: journal_mode=") + (wal_ ? "WAL" : "DELETE") +
           ", synchronous=FULL; no-sync: synchronous=OFF; cache_size 64 MiB";
  }

 private:
  bool wal_;
  std::string path_;
  std::unique_ptr<Sqlite> db_;
};

std::unique_ptr<Engine> MakeEngine(const Config& cfg, const std::string& name) {
  if (name == "rocky") return std::make_unique<RockyEngine>(cfg.rocky_cache_bytes);
  if (name == "lmdb") return std::make_unique<LmdbEngine>();
  if (name == "rocksdb") return std::make_unique<RocksEngine>();
  if (name == "sqlite-wal") return std::make_unique<SqliteEngine>(true);
  if (name == "sqlite-journal") return std::make_unique<SqliteEngine>(false);
  Fail("unknown engine " + name);
}

// ---------------------------------------------------------------------------------------------------------
// Results: values[metric][side] holds one value per round (NaN where it failed or did not run). A metric is
// an engine phase (sides are engines) or a state measurement (sides are "rocky" and "sqlite3", or the two
// state files of the run start-up).

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

struct Metric {
  std::string id;
  std::string title;
  std::string unit;  // "ms" or "bytes"
};

// Engine phases, in the order each engine runs them. uncompacted_size, compacted_size and crash_file_size are
// recorded by the compaction and crash phases.
const std::vector<Metric>& EnginePhases() {
  static const std::vector<Metric> phases = {
      {"bulk_load", "bulk load", "ms"},
      {"individual_writes", "individual writes", "ms"},
      {"batch_writes", "batch writes", "ms"},
      {"nosync_writes", "nosync writes", "ms"},
      {"len", "len()", "ms"},
      {"random_reads", "random reads", "ms"},
      {"random_reads_2t", "random reads (2 threads)", "ms"},
      {"random_range_reads", "random range reads", "ms"},
      {"removals", "removals", "ms"},
      {"compaction", "compaction", "ms"},
      {"uncompacted_size", "uncompacted size", "bytes"},
      {"compacted_size", "compacted size", "bytes"},
      {"crash_open", "open after crash", "ms"},
      {"crash_file_size", "file size at crash", "bytes"},
  };
  return phases;
}

// The state phase: whole processes (`rocky` and `sqlite3`), CPU time (user + system), wall time and peak RSS.
const std::vector<Metric>& StateMetrics() {
  static const std::vector<Metric> metrics = {
      {"state_import_wall", "import N watermarks: wall", "ms"},
      {"state_import_cpu", "import N watermarks: CPU", "ms"},
      {"state_import_rss", "import N watermarks: peak RSS", "bytes"},
      {"state_list_cpu", "list N watermarks (JSON): CPU", "ms"},
      {"state_list_rss", "list N watermarks (JSON): peak RSS", "bytes"},
      {"state_list_wall", "list N watermarks (JSON): wall", "ms"},
      {"state_get_cpu", "one watermark by exact name: CPU", "ms"},
      {"state_get_rss", "one watermark by exact name: peak RSS", "bytes"},
      {"state_prefix_cpu", "watermarks matching a prefix pattern: CPU", "ms"},
      {"run_startup_cpu", "`rocky run`, nothing to copy: CPU", "ms"},
      {"run_startup_wall", "`rocky run`, nothing to copy: wall", "ms"},
      {"run_startup_rss", "`rocky run`, nothing to copy: peak RSS", "bytes"},
  };
  return metrics;
}

std::map<std::string, std::map<std::string, std::vector<double>>> g_values;
std::vector<std::string> g_errors;

void Record(const Config& cfg, const std::string& metric, const std::string& side, int round, double v) {
  auto& slots = g_values[metric][side];
  if (slots.empty()) slots.assign(static_cast<size_t>(cfg.rounds), kMissing);
  slots[static_cast<size_t>(round)] = v;
}

double Median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  if (v.empty()) return kMissing;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Spread {
  double median = kMissing, min = kMissing, max = kMissing;
  int n = 0;
  bool ok() const { return n > 0; }
};

Spread SpreadOf(const std::vector<double>& v) {
  Spread s;
  for (double x : v) {
    if (std::isnan(x)) continue;
    s.min = s.n == 0 ? x : std::min(s.min, x);
    s.max = s.n == 0 ? x : std::max(s.max, x);
    ++s.n;
  }
  s.median = Median(v);
  return s;
}

// Per round: ours / theirs. theirs "best" is the smallest value of any side but `ours` in that round.
std::vector<double> RoundRatios(const std::string& metric, const std::string& ours,
                                const std::string& theirs) {
  const auto& sides = g_values[metric];
  auto o = sides.find(ours);
  if (o == sides.end()) return {};
  std::vector<double> out;
  for (size_t r = 0; r < o->second.size(); ++r) {
    double denom = kMissing;
    if (theirs == "best") {
      for (const auto& [side, vals] : sides) {
        if (side == ours || r >= vals.size() || std::isnan(vals[r])) continue;
        if (std::isnan(denom) || vals[r] < denom) denom = vals[r];
      }
    } else {
      auto t = sides.find(theirs);
      if (t != sides.end() && r < t->second.size()) denom = t->second[r];
    }
    const double num = o->second[r];
    out.push_back(std::isnan(num) || std::isnan(denom) || denom <= 0 ? kMissing : num / denom);
  }
  return out;
}

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string Human(double v, const std::string& unit) {
  char buf[64];
  if (std::isnan(v)) return "—";
  if (unit == "bytes") {
    if (v >= 1 << 30)
      std::snprintf(buf, sizeof buf, "%.2f GiB", v / (1 << 30));
    else if (v >= 1 << 20)
      std::snprintf(buf, sizeof buf, "%.1f MiB", v / (1 << 20));
    else
      std::snprintf(buf, sizeof buf, "%.0f KiB", v / 1024);
  } else {
    std::snprintf(buf, sizeof buf, v < 10 ? "%.3f ms" : "%.1f ms", v);  // len() can take microseconds
  }
  return buf;
}

std::string RatioText(const Spread& s) {
  if (!s.ok()) return "—";
  char buf[96];
  if (s.n == 1) {
    std::snprintf(buf, sizeof buf, "%.2fx", s.median);
  } else {
    std::snprintf(buf, sizeof buf, "%.2fx (%.2f–%.2f)", s.median, s.min, s.max);
  }
  return buf;
}

std::string LoadText() {
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) != 3) return "?";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", load[0], load[1], load[2]);
  return buf;
}

double Load1() {
  double load[3] = {0, 0, 0};
  return getloadavg(load, 3) == 3 ? load[0] : kMissing;
}

// ---------------------------------------------------------------------------------------------------------
// Engine phases

// Random key indices in [0, live), one stream per reader thread.
uint64_t ReadIndex(uint64_t stream, uint64_t j, uint64_t live) {
  return SplitMix(kSeed * 31 + stream * 1'000'003 + j) % live;
}

size_t ReadRandom(Engine& e, const Workload& w, uint64_t stream, uint64_t count) {
  auto r = e.NewReader();
  char key[kKeySize];
  size_t found = 0;
  for (uint64_t j = 0; j < count; ++j) {
    w.Key(ReadIndex(stream, j, w.cfg().entries), key);
    if (r->Get({key, kKeySize}) == kValueSize) ++found;
  }
  return found;
}

std::string g_self;  // path of this binary, re-executed as the crashing writer

// The crashing writer: the child process opens the database and commits durable batches forever; it says so
// on stdout after the first commit, and the parent SIGKILLs it mid-work.
int CrashChild(const Config& cfg, const std::string& engine, const fs::path& dir) {
  Workload w(cfg);
  auto e = MakeEngine(cfg, engine);
  e->Open(dir);
  uint64_t next = w.crash_first();
  for (uint64_t i = 0;; ++i) {
    e->Write(w, next, kBatchKeys, kBatchKeys, true);
    next += kBatchKeys;
    if (i == 0) {
      if (write(1, "1", 1) != 1) return 1;
    }
  }
}

// Closes the engine, kills a writer child mid-commit, then times open + one read of the crashed files.
double CrashAndReopen(Engine& e, const Workload& w, const std::string& engine, const fs::path& dir,
                      int round) {
  e.Close();
  int pipefd[2];
  if (pipe(pipefd) != 0) Fail("pipe");
  pid_t pid = fork();
  if (pid < 0) Fail("fork");
  if (pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    const Config& c = w.cfg();
    std::string entries = std::to_string(c.entries), individual = std::to_string(c.individual),
                batches = std::to_string(c.batches);
    execl(g_self.c_str(), g_self.c_str(), "--entries", entries.c_str(), "--individual", individual.c_str(),
          "--batches", batches.c_str(), "--crash-child", engine.c_str(), dir.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipefd[1]);
  char c;
  const bool started = read(pipefd[0], &c, 1) == 1;
  close(pipefd[0]);
  if (started) std::this_thread::sleep_for(std::chrono::milliseconds(150));  // mid-way through later commits
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!started) Fail("crash child never committed (exit status " + std::to_string(status) + ")");
  Record(w.cfg(), "crash_file_size", engine, round, static_cast<double>(DirSize(dir)));
  auto t0 = Clock::now();
  e.Open(dir);
  auto r = e.NewReader();
  if (r->Get(w.Key(w.bulk_first() + w.cfg().entries - 1)) != kValueSize)
    Fail("after crash: a key is missing");
  double secs = Since(t0);
  r.reset();
  e.Close();
  return secs;
}

// Whether --phases measures phase id (all phases without it).
bool PhaseSelected(const Config& cfg, const std::string& id) {
  return cfg.phases.empty() || cfg.phases.count(id) > 0;
}

// One engine phase; returns its measured seconds.
double RunEnginePhase(const std::string& phase, Engine& e, const std::string& engine, const Workload& w,
                      const fs::path& dir, int round) {
  const Config& cfg = w.cfg();
  if (phase == "bulk_load") {
    fs::remove_all(dir);
    fs::create_directories(dir);
    e.Open(dir);
    auto t0 = Clock::now();
    e.Write(w, w.bulk_first(), cfg.entries, cfg.entries, true);
    return Since(t0);
  }
  if (phase == "individual_writes") {
    auto t0 = Clock::now();
    e.Write(w, w.individual_first(), cfg.individual, 1, true);
    return Since(t0);
  }
  if (phase == "batch_writes") {
    auto t0 = Clock::now();
    e.Write(w, w.batch_first(), cfg.batches * kBatchKeys, kBatchKeys, true);
    return Since(t0);
  }
  if (phase == "nosync_writes") {
    auto t0 = Clock::now();
    e.Write(w, w.nosync_first(), cfg.batches * kBatchKeys, kBatchKeys, false);
    return Since(t0);
  }
  if (phase == "len") {
    auto t0 = Clock::now();
    uint64_t n = e.Len();
    double secs = Since(t0);
    // The keys of the write phases that ran before this one (--phases may leave some out).
    uint64_t expected = cfg.entries;
    if (PhaseSelected(cfg, "individual_writes")) expected += cfg.individual;
    if (PhaseSelected(cfg, "batch_writes")) expected += cfg.batches * kBatchKeys;
    if (PhaseSelected(cfg, "nosync_writes")) expected += cfg.batches * kBatchKeys;
    if (n != expected) Fail("len() = " + std::to_string(n) + ", expected " + std::to_string(expected));
    return secs;
  }
  if (phase == "random_reads") {
    auto t0 = Clock::now();
    size_t found = ReadRandom(e, w, 0, cfg.entries);
    double secs = Since(t0);
    if (found != cfg.entries) Fail("random reads: a key is missing");
    return secs;
  }
  if (phase == "random_reads_2t") {
    std::atomic<size_t> found{0};
    std::atomic<bool> failed{false};
    std::string error;
    auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (uint64_t t = 0; t < 2; ++t)
      threads.emplace_back([&, t] {
        try {
          found += ReadRandom(e, w, 1 + t, cfg.entries / 2);
        } catch (const std::exception& ex) {
          if (!failed.exchange(true)) error = ex.what();
        }
      });
    for (auto& th : threads) th.join();
    double secs = Since(t0);
    if (failed) Fail(error);
    if (found != 2 * (cfg.entries / 2)) Fail("random reads (2 threads): a key is missing");
    return secs;
  }
  if (phase == "random_range_reads") {
    uint64_t scans = std::max<uint64_t>(1, cfg.entries / 10);
    char key[kKeySize];
    auto t0 = Clock::now();
    auto r = e.NewReader();
    size_t bytes = 0;
    for (uint64_t j = 0; j < scans; ++j) {
      w.Key(ReadIndex(7, j, cfg.entries), key);
      bytes += r->Scan({key, kKeySize}, 10);
    }
    double secs = Since(t0);
    if (bytes < scans * (kKeySize + kValueSize)) Fail("range reads read too little");
    return secs;
  }
  if (phase == "removals") {
    auto t0 = Clock::now();
    e.Remove(w, w.bulk_first(), cfg.entries / 2);
    return Since(t0);
  }
  if (phase == "compaction") {
    Record(cfg, "uncompacted_size", engine, round, static_cast<double>(e.SizeBytes()));
    auto t0 = Clock::now();
    e.Compact();
    double secs = Since(t0);
    Record(cfg, "compacted_size", engine, round, static_cast<double>(e.SizeBytes()));
    return secs;
  }
  if (phase == "crash_open") return CrashAndReopen(e, w, engine, dir, round);
  Fail("unknown phase " + phase);
}

// Flushes the file system holding dir, so that one engine's dirty pages are not written back during the next
// engine's phase (not measured).
void FlushFileSystem(const fs::path& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)syncfs(fd);
  close(fd);
}

void RunEngineRound(const Config& cfg, const Workload& w, int round) {
  std::vector<std::string> order = cfg.engines;
  if (round % 2 == 1) std::reverse(order.begin(), order.end());
  std::map<std::string, std::unique_ptr<Engine>> engines;
  std::set<std::string> broken;  // an engine whose phase failed skips the rest of this round
  for (const auto& name : order) engines[name] = MakeEngine(cfg, name);
  const fs::path base = fs::path(cfg.dir) / "engines";
  for (const Metric& phase : EnginePhases()) {
    // The bulk load opens and fills the engine every other phase works on: it runs even when not measured.
    const bool measured = PhaseSelected(cfg, phase.id);
    if (phase.unit != "ms" || (!measured && phase.id != "bulk_load")) continue;
    for (const auto& name : order) {
      if (broken.count(name) > 0) continue;
      Engine& e = *engines[name];
      const fs::path dir = base / name;
      try {
        const double secs = RunEnginePhase(phase.id, e, name, w, dir, round);
        if (!measured) continue;
        Record(cfg, phase.id, name, round, secs * 1e3);
        std::printf("[round %d/%d] %-26s %-15s %12s   (load %s)\n", round + 1, cfg.rounds,
                    phase.title.c_str(), name.c_str(), Human(secs * 1e3, "ms").c_str(), LoadText().c_str());
        std::fflush(stdout);
        if (phase.id != "crash_open") e.Quiesce();
        FlushFileSystem(base);
      } catch (const std::exception& ex) {
        g_errors.push_back("round " + std::to_string(round + 1) + ": " + name + "/" + phase.id + ": " +
                           ex.what());
        std::printf("[round %d/%d] %-26s %-15s FAILED: %s\n", round + 1, cfg.rounds, phase.title.c_str(),
                    name.c_str(), ex.what());
        broken.insert(name);
        try {
          e.Close();
        } catch (const std::exception&) {
          // Already failing; the error above is the one reported.
        }
      }
    }
  }
  for (auto& [name, e] : engines) {
    try {
      e->Close();
    } catch (const std::exception& ex) {
      g_errors.push_back("round " + std::to_string(round + 1) + ": " + name + "/close: " + ex.what());
    }
  }
  engines.clear();
  if (!cfg.keep) fs::remove_all(base);
}

// ---------------------------------------------------------------------------------------------------------
// The state phase: the commands people run, as whole processes started through rocky-bench-spawn.

struct ProcResult {
  int exit = -1;
  double wall_ms = 0, cpu_ms = 0, rss_bytes = 0;
};

std::string Quote(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Runs argv (in dir, "-" for this one) with its standard output in `out` ("-": /dev/null).
ProcResult Spawn(const Config& cfg, const std::string& out, const std::string& dir,
                 const std::vector<std::string>& argv) {
  const std::string result_path = (fs::path(cfg.dir) / "spawn.result").string();
  std::vector<std::string> args = {cfg.spawn, out, dir};
  args.insert(args.end(), argv.begin(), argv.end());
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, result_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, cfg.spawn.c_str(), &actions, nullptr, cargs.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) Fail("cannot start " + cfg.spawn + ": " + std::strerror(rc));
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) Fail(cfg.spawn + " failed running " + Quote(argv));
  std::ifstream in(result_path);
  std::string line;
  std::getline(in, line);
  ProcResult r;
  long long wall = 0, user = 0, sys = 0, rss = 0;
  if (std::sscanf(line.c_str(), "exit=%d wall_us=%lld user_us=%lld sys_us=%lld maxrss_kib=%lld", &r.exit,
                  &wall, &user, &sys, &rss) != 5) {
    Fail("unreadable result from " + cfg.spawn + ": " + line);
  }
  r.wall_ms = static_cast<double>(wall) / 1e3;
  r.cpu_ms = static_cast<double>(user + sys) / 1e3;
  r.rss_bytes = static_cast<double>(rss) * 1024;
  return r;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs argv once with its output kept, fails unless it exits 0 and its output holds `expected` rows (counted
// as occurrences of "table":); returns the output.
std::string CheckedRun(const Config& cfg, const std::string& dir, const std::vector<std::string>& argv,
                       std::optional<uint64_t> expected, const std::string& must_contain = "") {
  const fs::path out = fs::path(cfg.dir) / "state" / "check.out";
  ProcResult r = Spawn(cfg, out.string(), dir, argv);
  std::string text = ReadFile(out);
  if (r.exit != 0) {
    Fail(Quote(argv) + " exited " + std::to_string(r.exit) + ": " + text.substr(0, 300) +
         ReadFile(out.string() + ".err").substr(0, 500));
  }
  if (expected) {
    uint64_t n = 0;
    for (size_t at = text.find("\"table\":"); at != std::string::npos; at = text.find("\"table\":", at + 1))
      ++n;
    if (n != *expected) {
      Fail(Quote(argv) + " printed " + std::to_string(n) + " rows, expected " + std::to_string(*expected));
    }
  }
  if (!must_contain.empty() && text.find(must_contain) == std::string::npos) {
    Fail(Quote(argv) + " did not print " + must_contain);
  }
  return text;
}

std::string Timestamp(uint64_t i) {
  // Distinct, valid UTC timestamps: seconds after 2025-01-01 folded into a day, hour, minute, second.
  char buf[32];
  std::snprintf(buf, sizeof buf, "2025-%02d-%02dT%02d:%02d:%02dZ", static_cast<int>(1 + i % 12),
                static_cast<int>(1 + (i / 12) % 28), static_cast<int>((i / 336) % 24),
                static_cast<int>((i / 8064) % 60), static_cast<int>((i / 483840) % 60));
  return buf;
}

// n watermark names like real ones (97 schemas, random table names), sorted.
std::vector<std::string> WatermarkNames(uint64_t n) {
  std::vector<std::string> names;
  names.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "warehouse.schema_%03d.table_%016llx", static_cast<int>(i % 97),
                  static_cast<unsigned long long>(SplitMix(kSeed + i)));
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A `rocky state export` document holding `names` (and `extra`, a ready JSON object of one more watermark).
std::string ExportJson(const std::vector<std::string>& names, const std::string& extra = "") {
  std::string s = "{\"format\":\"rocky-state\",\"schema_version\":1,\"watermarks\":[";
  for (size_t i = 0; i < names.size(); ++i) {
    s += (i ? ",\n" : "\n");
    s += "{\"table\":\"" + names[i] + "\",\"last_value\":\"" + Timestamp(i) + "\",\"updated_at\":\"" +
         Timestamp(i + 1) + "\"}";
  }
  if (!extra.empty()) s += (names.empty() ? "\n" : ",\n") + extra;
  s += "],\"check_history\":[],\"run_history\":[]}\n";
  return s;
}

void WriteFile(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) Fail("cannot write " + p.string());
}

// What the state phase sets up once: the export to import, the names, the `rocky run` project.
struct StateSetup {
  fs::path dir;
  fs::path export_file;
  std::vector<std::string> names;
  std::string prefix;  // of the prefix pattern
  uint64_t prefix_count = 0;
  fs::path run_dir;
};

constexpr const char* kRunConfig = R"([adapter]
type = "sqlite"
path = "warehouse"

[pipeline.bench]
timestamp_column = "_fivetran_synced"

[pipeline.bench.source]
catalog = "fivetran_catalog"
schema_pattern = { prefix = "src__", separator = "__", components = ["tenant", "source"] }

[pipeline.bench.target]
catalog_template = "{tenant}_warehouse"
schema_template = "staging__{source}"

[pipeline.bench.checks]
enabled = false
)";

void Sqlite3Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    Fail(sql.substr(0, 80) + ": " + msg);
  }
}

StateSetup SetUpState(const Config& cfg) {
  StateSetup s;
  s.dir = fs::absolute(fs::path(cfg.dir) / "state");
  fs::remove_all(s.dir);
  fs::create_directories(s.dir);
  s.names = WatermarkNames(cfg.watermarks);
  s.export_file = s.dir / "watermarks.json";
  WriteFile(s.export_file, ExportJson(s.names));
  s.prefix = "warehouse.schema_042.";
  for (const auto& n : s.names) s.prefix_count += n.rfind(s.prefix, 0) == 0 ? 1 : 0;

  // `rocky run` on one small table, nothing new to copy: state files with one watermark and with N more.
  s.run_dir = s.dir / "run";
  fs::create_directories(s.run_dir / "warehouse" / "fivetran_catalog");
  WriteFile(s.run_dir / "rocky.toml", kRunConfig);
  {
    sqlite3* db = nullptr;
    const std::string src =
        (s.run_dir / "warehouse" / "fivetran_catalog" / "src__acme__shop.sqlite").string();
    if (sqlite3_open(src.c_str(), &db) != SQLITE_OK) Fail("cannot create " + src);
    Sqlite3Exec(
        db,
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL NOT NULL, _fivetran_synced TEXT NOT NULL)");
    Sqlite3Exec(db, "CREATE INDEX orders_synced ON orders (_fivetran_synced)");
    Sqlite3Exec(db, "BEGIN");
    for (int i = 0; i < 1000; ++i) {
      Sqlite3Exec(db, "INSERT INTO orders VALUES (" + std::to_string(i + 1) + ", " + std::to_string(i) +
                          ".5, '" + Timestamp(static_cast<uint64_t>(i)) + "')");
    }
    Sqlite3Exec(db, "COMMIT");
    sqlite3_close(db);
  }
  const std::string rd = s.run_dir.string();
  CheckedRun(cfg, rd,
             {cfg.rocky_cli, "--config", "rocky.toml", "--state-path", "few.redb", "run", "--output", "json"},
             std::nullopt, "\"rows_copied\":1000");
  const std::string exported =
      CheckedRun(cfg, rd, {cfg.rocky_cli, "--state-path", "few.redb", "state", "export"}, uint64_t{1});
  const size_t at = exported.find("{\"table\":");
  const size_t end = exported.find('}', at);
  if (at == std::string::npos || end == std::string::npos) Fail("no watermark in " + exported.substr(0, 200));
  WriteFile(s.run_dir / "many.json", ExportJson(s.names, exported.substr(at, end + 1 - at)));
  CheckedRun(cfg, rd, {cfg.rocky_cli, "--state-path", "many.redb", "state", "import", "many.json", "--yes"},
             std::nullopt);
  return s;
}

// rocky's and sqlite3's command lines for each state measurement.
std::vector<std::string> RockyState(const Config& cfg, const fs::path& file, std::vector<std::string> rest) {
  std::vector<std::string> argv = {cfg.rocky_cli, "--state-path", file.string()};
  argv.insert(argv.end(), rest.begin(), rest.end());
  return argv;
}

std::vector<std::string> Sqlite3(const Config& cfg, const fs::path& db, const std::string& sql,
                                 bool json = true) {
  std::vector<std::string> argv = {cfg.sqlite3_cli};
  if (json) argv.push_back("-json");
  argv.push_back(db.string());
  argv.push_back(sql);
  return argv;
}

constexpr const char* kSqliteColumns = "table_name AS \"table\", last_value, updated_at";

// Runs `a` and `b` alternately (a b a b ..., starting with b on odd rounds) `reps` times each; records the
// medians of the chosen measures under the metric ids given.
void Interleave(
    const Config& cfg, int round, int reps, const std::string& a_side,
    const std::function<std::vector<std::string>(int)>& a, const std::string& b_side,
    const std::function<std::vector<std::string>(int)>& b, const std::string& dir,
    const std::vector<std::pair<std::string, std::string>>& metrics /* id, "cpu"|"wall"|"rss" */) {
  std::map<std::string, std::vector<ProcResult>> got;
  for (int i = 0; i < reps; ++i) {
    for (int k = 0; k < 2; ++k) {
      const bool first_a = (round % 2 == 0);
      const bool run_a = (k == 0) == first_a;
      const std::vector<std::string> argv = run_a ? a(i) : b(i);
      ProcResult r = Spawn(cfg, "-", dir, argv);
      if (r.exit != 0) Fail(Quote(argv) + " exited " + std::to_string(r.exit));
      got[run_a ? a_side : b_side].push_back(r);
    }
  }
  for (const auto& [id, measure] : metrics) {
    for (const auto& [side, results] : got) {
      std::vector<double> v;
      for (const ProcResult& r : results)
        v.push_back(measure == "cpu" ? r.cpu_ms : measure == "wall" ? r.wall_ms : r.rss_bytes);
      Record(cfg, id, side, round, Median(v));
    }
  }
}

void RunStateRound(const Config& cfg, const StateSetup& s, int round) {
  const fs::path rocky_file = s.dir / "state.redb";
  const fs::path sqlite_file = s.dir / "state.sqlite";
  const std::string n = std::to_string(cfg.watermarks);
  auto log = [&](const std::string& what) {
    std::printf("[round %d/%d] state: %-40s (load %s)\n", round + 1, cfg.rounds, what.c_str(),
                LoadText().c_str());
    std::fflush(stdout);
  };

  // Import: rocky's `state import` of an export file into a new state file; sqlite3 reads the same file with
  // readfile() and json_each and inserts the rows into a new database, one transaction (durable: both sync).
  const std::string sqlite_import =
      std::string("CREATE TABLE watermarks (table_name TEXT PRIMARY KEY, last_value TEXT NOT NULL, ") +
      "updated_at TEXT NOT NULL) WITHOUT ROWID; INSERT INTO watermarks SELECT json_extract(value, "
      "'$.table'), " +
      "json_extract(value, '$.last_value'), json_extract(value, '$.updated_at') FROM json_each(readfile('" +
      s.export_file.string() + "'), '$.watermarks');";
  std::map<std::string, ProcResult> import;
  for (int k = 0; k < 2; ++k) {
    const bool rocky = (k == 0) == (round % 2 == 0);
    if (rocky) {
      fs::remove(rocky_file);
      FlushFileSystem(s.dir);
      import["rocky"] = Spawn(
          cfg, "-", "-", RockyState(cfg, rocky_file, {"state", "import", s.export_file.string(), "--yes"}));
      if (import["rocky"].exit != 0)
        Fail("rocky state import exited " + std::to_string(import["rocky"].exit));
    } else {
      fs::remove(sqlite_file);
      FlushFileSystem(s.dir);
      import["sqlite3"] = Spawn(cfg, "-", "-", Sqlite3(cfg, sqlite_file, sqlite_import, false));
      if (import["sqlite3"].exit != 0)
        Fail("sqlite3 import exited " + std::to_string(import["sqlite3"].exit));
    }
  }
  for (const auto& [side, r] : import) {
    Record(cfg, "state_import_wall", side, round, r.wall_ms);
    Record(cfg, "state_import_cpu", side, round, r.cpu_ms);
    Record(cfg, "state_import_rss", side, round, r.rss_bytes);
  }
  log("import " + n + " watermarks");

  // Both outputs are checked once per round (untimed), then timed with the output to /dev/null.
  const std::string list_sql =
      std::string("SELECT ") + kSqliteColumns + " FROM watermarks ORDER BY table_name";
  CheckedRun(cfg, "-", RockyState(cfg, rocky_file, {"state", "--output", "json"}), cfg.watermarks);
  CheckedRun(cfg, "-", Sqlite3(cfg, sqlite_file, list_sql), cfg.watermarks);
  Interleave(
      cfg, round, cfg.state_reps, "rocky",
      [&](int) {
        return RockyState(cfg, rocky_file, {"state", "--output", "json"});
      },
      "sqlite3", [&](int) { return Sqlite3(cfg, sqlite_file, list_sql); }, "-",
      {{"state_list_cpu", "cpu"}, {"state_list_rss", "rss"}, {"state_list_wall", "wall"}});
  log("list " + n + " watermarks");

  auto pick = [&](int i) {
    return s.names[SplitMix(kSeed + 77 * static_cast<uint64_t>(round) + static_cast<uint64_t>(i)) %
                   s.names.size()];
  };
  auto get_sql = [&](const std::string& name) {
    return std::string("SELECT ") + kSqliteColumns + " FROM watermarks WHERE table_name = '" + name + "'";
  };
  CheckedRun(cfg, "-", RockyState(cfg, rocky_file, {"state", "--table", pick(0), "--output", "json"}),
             uint64_t{1}, pick(0));
  CheckedRun(cfg, "-", Sqlite3(cfg, sqlite_file, get_sql(pick(0))), uint64_t{1}, pick(0));
  Interleave(
      cfg, round, 3 * cfg.state_reps, "rocky",
      [&](int i) {
        return RockyState(cfg, rocky_file, {"state", "--table", pick(i), "--output", "json"});
      },
      "sqlite3", [&](int i) { return Sqlite3(cfg, sqlite_file, get_sql(pick(i))); }, "-",
      {{"state_get_cpu", "cpu"}, {"state_get_rss", "rss"}});
  log("one watermark by exact name");

  const std::string pattern = s.prefix + "*";
  const std::string prefix_sql =
      std::string("SELECT ") + kSqliteColumns + " FROM watermarks WHERE table_name GLOB '" + pattern + "'";
  CheckedRun(cfg, "-", RockyState(cfg, rocky_file, {"state", "--match", pattern, "--output", "json"}),
             s.prefix_count);
  CheckedRun(cfg, "-", Sqlite3(cfg, sqlite_file, prefix_sql), s.prefix_count);
  Interleave(
      cfg, round, cfg.state_reps, "rocky",
      [&](int) {
        return RockyState(cfg, rocky_file, {"state", "--match", pattern, "--output", "json"});
      },
      "sqlite3", [&](int) { return Sqlite3(cfg, sqlite_file, prefix_sql); }, "-",
      {{"state_prefix_cpu", "cpu"}});
  log("watermarks matching " + pattern);

  // `rocky run` with nothing to copy, its state file holding 1 watermark or N + 1.
  auto run = [&](const char* state) {
    return std::vector<std::string>{cfg.rocky_cli, "--config", "rocky.toml", "--state-path",
                                    state,         "run",      "--output",   "json"};
  };
  CheckedRun(cfg, s.run_dir.string(), run("many.redb"), std::nullopt, "\"rows_copied\":0");
  Interleave(
      cfg, round, cfg.state_reps, "rocky", [&](int) { return run("many.redb"); }, "rocky (1 watermark)",
      [&](int) { return run("few.redb"); }, s.run_dir.string(),
      {{"run_startup_cpu", "cpu"}, {"run_startup_wall", "wall"}, {"run_startup_rss", "rss"}});
  log("rocky run, nothing to copy");
}

// ---------------------------------------------------------------------------------------------------------
// Targets (issue 18) and output

struct Target {
  std::string metric;
  std::string ours;
  std::string against;  // a side, "best" (the best other side), or "" for an absolute bound on ours
  double bound;
  std::string what;
};

const std::vector<Target>& Targets() {
  static const std::vector<Target> targets = {
      {"random_reads", "rocky", "lmdb", 1.0, "random reads <= 1.0x LMDB"},
      {"random_range_reads", "rocky", "lmdb", 1.2, "range reads <= 1.2x LMDB"},
      {"batch_writes", "rocky", "rocksdb", 2.0, "batch writes <= 2x RocksDB"},
      {"compaction", "rocky", "lmdb", 1.5, "compaction <= 1.5x LMDB's compacting copy"},
      {"removals", "rocky", "best", 1.2, "removals <= 1.2x the best engine"},
      {"uncompacted_size", "rocky", "lmdb", 1.1, "uncompacted size <= 1.1x LMDB"},
      {"individual_writes", "rocky", "lmdb", 0.92,
       "individual durable writes no worse (was 0.47-0.92x LMDB)"},
      {"crash_open", "rocky", "lmdb", 1.8, "open after a crash no worse (was 0.23-1.8x LMDB)"},
      {"state_list_cpu", "rocky", "sqlite3", 1.0, "list N watermarks: CPU <= 1.0x sqlite3"},
      {"state_list_rss", "rocky", "sqlite3", 2.0, "list N watermarks: peak RSS <= 2x sqlite3"},
      {"state_get_cpu", "rocky", "sqlite3", 2.0, "one watermark: CPU <= 2x sqlite3's point lookup"},
      {"state_import_wall", "rocky", "", 1000.0, "import N watermarks <= 1 s (wall, ms)"},
      {"run_startup_cpu", "rocky", "rocky (1 watermark)", 1.1,
       "`rocky run` start-up does not grow with the watermarks (CPU, N vs 1)"},
  };
  return targets;
}

struct TargetResult {
  const Target* t;
  Spread s;
  bool met = false;
};

std::vector<TargetResult> EvaluateTargets(const std::vector<Target>& targets) {
  std::vector<TargetResult> out;
  for (const Target& t : targets) {
    TargetResult r{&t, {}, false};
    if (t.against.empty()) {
      auto it = g_values[t.metric].find(t.ours);
      if (it != g_values[t.metric].end()) r.s = SpreadOf(it->second);
    } else {
      r.s = SpreadOf(RoundRatios(t.metric, t.ours, t.against));
    }
    r.met = r.s.ok() && r.s.median <= t.bound;
    if (r.s.ok()) out.push_back(r);
  }
  return out;
}

std::string Cell(const std::vector<double>& v, const std::string& unit) {
  const Spread s = SpreadOf(v);
  if (!s.ok()) return "—";
  return Human(s.median, unit);
}

std::string Markdown(const Config& cfg) {
  std::ostringstream o;
  o << "| phase |";
  for (const auto& e : cfg.engines) o << " " << e << " |";
  o << " rocky / lmdb | rocky / best other |\n|---|";
  for (size_t i = 0; i < cfg.engines.size(); ++i) o << "---:|";
  o << "---:|---:|\n";
  for (const Metric& m : EnginePhases()) {
    if (g_values.count(m.id) == 0) continue;
    o << "| " << m.title << " |";
    for (const auto& e : cfg.engines) o << " " << Cell(g_values[m.id][e], m.unit) << " |";
    o << " " << RatioText(SpreadOf(RoundRatios(m.id, "rocky", "lmdb"))) << " | "
      << RatioText(SpreadOf(RoundRatios(m.id, "rocky", "best"))) << " |\n";
  }
  if (cfg.state && g_values.count("state_list_cpu") > 0) {
    o << "\n| state (" << cfg.watermarks
      << " watermarks, whole processes) | rocky | sqlite3 | rocky / sqlite3 |\n"
      << "|---|---:|---:|---:|\n";
    for (const Metric& m : StateMetrics()) {
      if (g_values.count(m.id) == 0 || m.id.rfind("run_", 0) == 0) continue;
      o << "| " << m.title << " | " << Cell(g_values[m.id]["rocky"], m.unit) << " | "
        << Cell(g_values[m.id]["sqlite3"], m.unit) << " | "
        << RatioText(SpreadOf(RoundRatios(m.id, "rocky", "sqlite3"))) << " |\n";
    }
    o << "\n| `rocky run`, nothing to copy | state with " << cfg.watermarks + 1
      << " watermarks | with 1 | ratio |\n|---|---:|---:|---:|\n";
    for (const Metric& m : StateMetrics()) {
      if (g_values.count(m.id) == 0 || m.id.rfind("run_", 0) != 0) continue;
      o << "| " << m.title.substr(m.title.find(':') + 2) << " | " << Cell(g_values[m.id]["rocky"], m.unit)
        << " | " << Cell(g_values[m.id]["rocky (1 watermark)"], m.unit) << " | "
        << RatioText(SpreadOf(RoundRatios(m.id, "rocky", "rocky (1 watermark)"))) << " |\n";
    }
  }
  o << "\n| target (issue 18) | median (min–max) over rounds | verdict |\n|---|---:|---|\n";
  for (const TargetResult& r : EvaluateTargets(Targets())) {
    std::string value;
    if (r.t->against.empty()) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%.0f ms (%.0f–%.0f)", r.s.median, r.s.min, r.s.max);
      value = buf;
    } else {
      value = RatioText(r.s);
    }
    o << "| " << r.t->what << " | " << value << " | " << (r.met ? "met" : "**missed**") << " |\n";
  }
  return o.str();
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else
      out += c;
  }
  return out;
}

std::string JsonNumber(double v) {
  if (std::isnan(v)) return "null";
  std::ostringstream o;
  o.precision(10);
  o << v;
  return o.str();
}

std::string Json(const Config& cfg, const std::map<std::string, std::string>& durability, double total_secs,
                 const std::vector<std::pair<double, double>>& loads) {
  std::ostringstream o;
  o << "{\n  \"entries\": " << cfg.entries << ",\n  \"individual_writes\": " << cfg.individual
    << ",\n  \"batch_commits\": " << cfg.batches << ",\n  \"keys_per_batch\": " << kBatchKeys
    << ",\n  \"key_bytes\": " << kKeySize << ",\n  \"value_bytes\": " << kValueSize
    << ",\n  \"rounds\": " << cfg.rounds << ",\n  \"watermarks\": " << cfg.watermarks
    << ",\n  \"cpus\": " << std::thread::hardware_concurrency() << ",\n  \"total_seconds\": " << total_secs
    << ",\n  \"load_average_1min\": [";
  for (size_t i = 0; i < loads.size(); ++i)
    o << (i ? ", " : "") << "{\"round_start\": " << JsonNumber(loads[i].first)
      << ", \"round_end\": " << JsonNumber(loads[i].second) << "}";
  o << "],\n  \"engines\": [";
  for (size_t i = 0; i < cfg.engines.size(); ++i) o << (i ? ", " : "") << "\"" << cfg.engines[i] << "\"";
  o << "],\n  \"durability\": {";
  bool first = true;
  for (const auto& [e, d] : durability) {
    o << (first ? "\n" : ",\n") << "    \"" << e << "\": \"" << JsonEscape(d) << "\"";
    first = false;
  }
  o << "\n  },\n  \"errors\": [";
  for (size_t i = 0; i < g_errors.size(); ++i)
    o << (i ? ", " : "") << "\"" << JsonEscape(g_errors[i]) << "\"";
  o << "],\n  \"metrics\": [";
  std::vector<Metric> all = EnginePhases();
  for (const Metric& m : StateMetrics()) all.push_back(m);
  bool first_metric = true;
  for (const Metric& m : all) {
    if (g_values.count(m.id) == 0) continue;
    o << (first_metric ? "\n" : ",\n") << "    {\"id\": \"" << m.id << "\", \"title\": \""
      << JsonEscape(m.title) << "\", \"unit\": \"" << m.unit << "\", \"rounds\": {";
    first_metric = false;
    bool f = true;
    for (const auto& [side, vals] : g_values[m.id]) {
      o << (f ? "" : ", ") << "\"" << JsonEscape(side) << "\": [";
      for (size_t r = 0; r < vals.size(); ++r) o << (r ? ", " : "") << JsonNumber(vals[r]);
      o << "]";
      f = false;
    }
    o << "}, \"median\": {";
    f = true;
    for (const auto& [side, vals] : g_values[m.id]) {
      o << (f ? "" : ", ") << "\"" << JsonEscape(side) << "\": " << JsonNumber(Median(vals));
      f = false;
    }
    o << "}}";
  }
  o << "\n  ],\n  \"targets\": [";
  bool ft = true;
  for (const TargetResult& r : EvaluateTargets(Targets())) {
    o << (ft ? "\n" : ",\n") << "    {\"target\": \"" << JsonEscape(r.t->what) << "\", \"metric\": \""
      << r.t->metric << "\", \"against\": \"" << JsonEscape(r.t->against) << "\", \"bound\": " << r.t->bound
      << ", \"median\": " << JsonNumber(r.s.median) << ", \"min\": " << JsonNumber(r.s.min)
      << ", \"max\": " << JsonNumber(r.s.max) << ", \"met\": " << (r.met ? "true" : "false") << "}";
    ft = false;
  }
  o << "\n  ]\n}\n";
  return o.str();
}

void Usage() {
  std::cerr
      << "usage: rocky-bench [--quick] [--rounds N] [--entries N] [--individual N] [--batches N] [--dir "
         "DIR]\n"
         "                   [--json FILE] [--engines a,b,...] [--phases a,b,...] [--keep] "
         "[--rocky-cache-mib N]\n"
         "                   [--no-state] [--watermarks N] [--state-reps N] [--rocky-cli PATH] [--sqlite3 "
         "PATH]\n"
         "                   [--spawn PATH]\n"
         "engines: rocky, lmdb, rocksdb, sqlite-wal, sqlite-journal (default: all)\n"
         "--quick: rocky, lmdb, rocksdb; 250,000 entries, 200 individual writes, 20 batches, 3 rounds\n";
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  g_self = fs::read_symlink("/proc/self/exe").string();
  const fs::path here = fs::path(g_self).parent_path();
  cfg.rocky_cli = (here.parent_path() / "cli" / "rocky").string();
  cfg.spawn = (here / "rocky-bench-spawn").string();
  std::string crash_engine, crash_dir;
  try {
    // --quick first, so that explicit flags after it override its choices.
    for (int i = 1; i < argc; ++i) {
      if (std::string(argv[i]) == "--quick") {
        cfg.quick = true;
        cfg.entries = 250'000;
        cfg.individual = 200;
        cfg.batches = 20;
        cfg.rounds = 3;
        cfg.engines = {"rocky", "lmdb", "rocksdb"};
      }
    }
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) Fail(a + " needs a value");
        return argv[++i];
      };
      auto list = [&](const std::string& v) {
        std::vector<std::string> out;
        std::stringstream ss(v);
        for (std::string e; std::getline(ss, e, ',');) out.push_back(e);
        return out;
      };
      if (a == "--quick")
        continue;
      else if (a == "--entries")
        cfg.entries = std::stoull(next());
      else if (a == "--individual")
        cfg.individual = std::stoull(next());
      else if (a == "--batches")
        cfg.batches = std::stoull(next());
      else if (a == "--rounds")
        cfg.rounds = std::stoi(next());
      else if (a == "--dir")
        cfg.dir = next();
      else if (a == "--json")
        cfg.json = next();
      else if (a == "--keep")
        cfg.keep = true;
      else if (a == "--rocky-cache-mib")
        cfg.rocky_cache_bytes = std::stoull(next()) << 20;
      else if (a == "--engines")
        cfg.engines = list(next());
      else if (a == "--phases") {
        for (const auto& p : list(next())) cfg.phases.insert(p);
      } else if (a == "--no-state")
        cfg.state = false;
      else if (a == "--watermarks")
        cfg.watermarks = std::stoull(next());
      else if (a == "--state-reps")
        cfg.state_reps = std::stoi(next());
      else if (a == "--rocky-cli")
        cfg.rocky_cli = fs::absolute(next()).string();
      else if (a == "--sqlite3")
        cfg.sqlite3_cli = next();
      else if (a == "--spawn")
        cfg.spawn = fs::absolute(next()).string();
      else if (a == "--crash-child") {
        crash_engine = next();
        crash_dir = next();
      } else if (a == "--help" || a == "-h") {
        Usage();
        return 0;
      } else {
        Fail("unknown argument " + a);
      }
    }
    if (cfg.entries < 2) Fail("--entries must be at least 2");
    if (cfg.rounds < 1) Fail("--rounds must be at least 1");
    if (cfg.state_reps < 1) Fail("--state-reps must be at least 1");
    if (!crash_engine.empty()) return CrashChild(cfg, crash_engine, crash_dir);
    for (const auto& e : cfg.engines) MakeEngine(cfg, e);  // rejects unknown names up front
    std::set<std::string> known;
    for (const Metric& m : EnginePhases()) known.insert(m.id);
    known.insert("state");
    for (const auto& p : cfg.phases)
      if (known.count(p) == 0) Fail("unknown phase " + p);
    if (!cfg.phases.empty() && cfg.phases.count("state") == 0) cfg.state = false;
    if (cfg.state && !fs::exists(cfg.rocky_cli))
      Fail("no rocky binary at " + cfg.rocky_cli + " (--rocky-cli)");
    if (cfg.state && !fs::exists(cfg.spawn)) Fail("no rocky-bench-spawn at " + cfg.spawn + " (--spawn)");
  } catch (const std::exception& ex) {
    std::cerr << "rocky-bench: " << ex.what() << "\n";
    Usage();
    return 2;
  }

  fs::create_directories(cfg.dir);
  Workload w(cfg);
  std::map<std::string, std::string> durability;
  for (const auto& name : cfg.engines) durability[name] = MakeEngine(cfg, name)->Durability();
  std::cout << "rocky-bench: " << cfg.rounds << " rounds, engines interleaved phase by phase; " << cfg.entries
            << " entries (keys " << kKeySize << " B, values " << kValueSize << " B, random order, seed "
            << kSeed << "), individual writes " << cfg.individual
            << " commits of 1 key, batch and no-sync writes " << cfg.batches << " commits of " << kBatchKeys
            << " keys";
  if (cfg.state) std::cout << "; state phase with " << cfg.watermarks << " watermarks";
  std::cout << "; data in " << cfg.dir << "; load average " << LoadText() << " on "
            << std::thread::hardware_concurrency() << " CPUs\n";
  std::cout.flush();

  auto t0 = Clock::now();
  std::optional<StateSetup> setup;
  if (cfg.state) {
    try {
      setup = SetUpState(cfg);
    } catch (const std::exception& ex) {
      g_errors.push_back(std::string("state setup: ") + ex.what());
      std::printf("state setup FAILED: %s\n", ex.what());
    }
  }
  std::vector<std::pair<double, double>> loads;
  for (int round = 0; round < cfg.rounds; ++round) {
    const double load_start = Load1();
    RunEngineRound(cfg, w, round);
    if (setup) {
      try {
        RunStateRound(cfg, *setup, round);
      } catch (const std::exception& ex) {
        g_errors.push_back("round " + std::to_string(round + 1) + ": state: " + ex.what());
        std::printf("[round %d/%d] state FAILED: %s\n", round + 1, cfg.rounds, ex.what());
      }
    }
    loads.emplace_back(load_start, Load1());
  }
  if (setup && !cfg.keep) fs::remove_all(setup->dir);
  const double total = Since(t0);

  std::cout << "\nDurability:\n";
  for (const auto& [e, d] : durability) std::cout << "- " << e << ": " << d << "\n";
  std::cout << "\nMedians over " << cfg.rounds
            << " rounds; ratios are computed within each round, then the median "
            << "(min–max) over the rounds.\n\n"
            << Markdown(cfg) << "\nLoad average (1 min) at the start and end of each round:";
  for (size_t i = 0; i < loads.size(); ++i)
    std::printf(" %s%.2f→%.2f", i ? ", " : "", loads[i].first, loads[i].second);
  std::cout << "\nTotal: " << total << " s\n";
  if (!cfg.json.empty()) {
    std::ofstream f(cfg.json);
    f << Json(cfg, durability, total, loads);
    if (!f) {
      std::cerr << "rocky-bench: cannot write " << cfg.json << "\n";
      return 1;
    }
  }
  for (const auto& e : g_errors) std::cerr << "rocky-bench: FAILED " << e << "\n";
  return g_errors.empty() ? 0 : 1;
}
