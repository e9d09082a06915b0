// rocky-bench: the same workload on our engine, LMDB, RocksDB and SQLite (WAL and rollback journal), one
// Google Benchmark per (engine, phase), run once each in registration order; see bench/README.md.
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "rocky/engine/db.h"
#include "rocky/state/store.h"

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
  std::string dir = "build/bench-data";
  std::string json;
  std::vector<std::string> engines = {"rocky", "lmdb", "rocksdb", "sqlite-wal", "sqlite-journal"};
  bool keep = false;
  // Our engine's Options::cache_bytes; the other engines keep kCacheBytes. For measuring how much of our read
  // time is cache misses (a tuning experiment), not for the published table.
  size_t rocky_cache_bytes = kCacheBytes;
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
  uint64_t total_written() const { return crash_first(); }

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
  virtual void Write(const Workload& w, uint64_t first, uint64_t count, uint64_t per_commit, bool durable) = 0;
  virtual std::unique_ptr<Reader> NewReader() = 0;
  virtual uint64_t Len() = 0;
  // Removes keys [first, first+count) in one durable commit.
  virtual void Remove(const Workload& w, uint64_t first, uint64_t count) = 0;
  virtual uint64_t SizeBytes() = 0;
  virtual void Compact() = 0;
  virtual std::string Durability() const = 0;
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
    rocksdb::Status s = db_->Get(ro_, db_->DefaultColumnFamily(), rocksdb::Slice(key.data(), key.size()), &buf_);
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
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) Fail("sqlite3_open: " + std::string(sqlite3_errmsg(db_)));
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
// Phases. Each is one Google Benchmark run with Iterations(1) and manual time, so it runs exactly once, in
// order, on the state the previous phase left.

struct Phase {
  std::string id;
  std::string title;
  std::string unit;  // "ms" or "bytes"
  bool state_level = false;
};

std::vector<Phase> AllPhases() {
  return {
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
      {"state_write_watermarks", "state: write watermarks (1 commit)", "ms", true},
      {"state_read_watermarks", "state: read each watermark", "ms", true},
      {"state_open_list", "state: open + list watermarks", "ms", true},
  };
}

// results[phase id][engine] = ms or bytes.
std::map<std::string, std::map<std::string, double>> g_results;
std::vector<std::string> g_errors;

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Random key indices in [0, live), one stream per reader thread.
uint64_t ReadIndex(uint64_t stream, uint64_t j, uint64_t live) { return SplitMix(kSeed * 31 + stream * 1'000'003 + j) % live; }

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

// Runs `work` (which returns its own measured seconds) as the body of a one-iteration benchmark.
void RunPhase(benchmark::State& state, const std::string& engine, const std::string& phase,
              const std::function<double()>& work) {
  for (auto _ : state) {
    try {
      double secs = work();
      state.SetIterationTime(secs);
      g_results[phase][engine] = secs * 1e3;
    } catch (const std::exception& ex) {
      g_errors.push_back(engine + "/" + phase + ": " + ex.what());
      state.SkipWithError(ex.what());
      state.SetIterationTime(0);
    }
  }
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

double CrashAndReopen(Engine& e, const Workload& w, const std::string& engine, const fs::path& dir) {
  e.Close();
  int fds[2];
  if (pipe(fds) != 0) Fail("pipe");
  std::string entries = std::to_string(w.cfg().entries), individual = std::to_string(w.cfg().individual),
              batches = std::to_string(w.cfg().batches), cache = std::to_string(w.cfg().rocky_cache_bytes >> 20);
  pid_t pid = fork();
  if (pid < 0) Fail("fork");
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    execl(g_self.c_str(), g_self.c_str(), "--crash-child", engine.c_str(), dir.c_str(), "--entries",
          entries.c_str(), "--individual", individual.c_str(), "--batches", batches.c_str(),
          "--rocky-cache-mib", cache.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  char c;
  ssize_t got = read(fds[0], &c, 1);
  close(fds[0]);
  if (got != 1) {
    waitpid(pid, nullptr, 0);
    Fail("crash writer exited before its first commit");
  }
  // Let it get well into its next commits, so the kill lands mid-transaction.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFSIGNALED(status)) Fail("crash writer was not killed (exited on its own)");
  g_results["crash_file_size"][engine] = static_cast<double>(DirSize(dir));
  // Timed: open plus one read, since SQLite and RocksDB recover lazily or in Open.
  auto t0 = Clock::now();
  e.Open(dir);
  std::string last = w.Key(w.cfg().entries - 1);
  if (e.NewReader()->Get(last) != kValueSize) Fail("after crash: a committed key is missing");
  double secs = Since(t0);
  e.Close();
  return secs;
}

void RegisterEngine(const std::string& engine, const Workload& w, std::shared_ptr<Engine> e) {
  const Config& cfg = w.cfg();
  fs::path dir = fs::path(cfg.dir) / engine;
  auto reg = [&](const std::string& phase, std::function<double()> work) {
    benchmark::RegisterBenchmark((engine + "/" + phase).c_str(),
                                 [engine, phase, work](benchmark::State& st) { RunPhase(st, engine, phase, work); })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  };
  reg("bulk_load", [&w, e, dir] {
    fs::remove_all(dir);
    fs::create_directories(dir);
    e->Open(dir);
    auto t0 = Clock::now();
    e->Write(w, w.bulk_first(), w.cfg().entries, w.cfg().entries, true);
    return Since(t0);
  });
  reg("individual_writes", [&w, e] {
    auto t0 = Clock::now();
    e->Write(w, w.individual_first(), w.cfg().individual, 1, true);
    return Since(t0);
  });
  reg("batch_writes", [&w, e] {
    auto t0 = Clock::now();
    e->Write(w, w.batch_first(), w.cfg().batches * kBatchKeys, kBatchKeys, true);
    return Since(t0);
  });
  reg("nosync_writes", [&w, e] {
    auto t0 = Clock::now();
    e->Write(w, w.nosync_first(), w.cfg().batches * kBatchKeys, kBatchKeys, false);
    return Since(t0);
  });
  reg("len", [&w, e] {
    auto t0 = Clock::now();
    uint64_t n = e->Len();
    double secs = Since(t0);
    if (n != w.total_written()) Fail("len() = " + std::to_string(n) + ", expected " + std::to_string(w.total_written()));
    return secs;
  });
  reg("random_reads", [&w, e] {
    auto t0 = Clock::now();
    size_t found = ReadRandom(*e, w, 0, w.cfg().entries);
    double secs = Since(t0);
    if (found != w.cfg().entries) Fail("random reads: a key is missing");
    return secs;
  });
  reg("random_reads_2t", [&w, e] {
    std::atomic<size_t> found{0};
    std::atomic<bool> failed{false};
    std::string error;
    auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (uint64_t t = 0; t < 2; ++t)
      threads.emplace_back([&, t] {
        try {
          found += ReadRandom(*e, w, 1 + t, w.cfg().entries / 2);
        } catch (const std::exception& ex) {
          if (!failed.exchange(true)) error = ex.what();
        }
      });
    for (auto& th : threads) th.join();
    double secs = Since(t0);
    if (failed) Fail(error);
    if (found != 2 * (w.cfg().entries / 2)) Fail("random reads (2 threads): a key is missing");
    return secs;
  });
  reg("random_range_reads", [&w, e] {
    uint64_t scans = std::max<uint64_t>(1, w.cfg().entries / 10);
    char key[kKeySize];
    auto t0 = Clock::now();
    auto r = e->NewReader();
    size_t bytes = 0;
    for (uint64_t j = 0; j < scans; ++j) {
      w.Key(ReadIndex(7, j, w.cfg().entries), key);
      bytes += r->Scan({key, kKeySize}, 10);
    }
    double secs = Since(t0);
    benchmark::DoNotOptimize(bytes);
    if (bytes == 0) Fail("range reads read nothing");
    return secs;
  });
  reg("removals", [&w, e] {
    auto t0 = Clock::now();
    e->Remove(w, w.bulk_first(), w.cfg().entries / 2);
    return Since(t0);
  });
  reg("compaction", [engine, e] {
    g_results["uncompacted_size"][engine] = static_cast<double>(e->SizeBytes());
    auto t0 = Clock::now();
    e->Compact();
    double secs = Since(t0);
    g_results["compacted_size"][engine] = static_cast<double>(e->SizeBytes());
    return secs;
  });
  reg("crash_open", [&w, engine, e, dir] {
    double secs = CrashAndReopen(*e, w, engine, dir);
    if (!w.cfg().keep) fs::remove_all(dir);
    return secs;
  });
}

std::string Timestamp(uint64_t i) {
  // Distinct, valid UTC timestamps: seconds after 2025-01-01 folded into a day, hour, minute, second.
  char buf[32];
  std::snprintf(buf, sizeof buf, "2025-%02d-%02dT%02d:%02d:%02dZ", static_cast<int>(1 + i % 12),
                static_cast<int>(1 + (i / 12) % 28), static_cast<int>((i / 336) % 24), static_cast<int>((i / 8064) % 60),
                static_cast<int>((i / 483840) % 60));
  return buf;
}

rocky::state::StateSnapshot Watermarks(uint64_t n) {
  rocky::state::StateSnapshot s;
  for (uint64_t i = 0; i < n; ++i) {
    char name[64];
    // Random order of names, like real table names, yet sorted as the snapshot requires.
    std::snprintf(name, sizeof name, "warehouse.schema_%03d.table_%016llx", static_cast<int>(i % 97),
                  static_cast<unsigned long long>(SplitMix(kSeed + i)));
    s.watermarks.push_back({name, Timestamp(i), Timestamp(i + 1)});
  }
  std::sort(s.watermarks.begin(), s.watermarks.end(), [](auto& a, auto& b) { return a.table < b.table; });
  return s;
}

void RegisterStatePhases(const Config& cfg) {
  namespace st = rocky::state;
  // 10,000 and 100,000 watermarks, or entries and 10 x entries when --entries is smaller (the smoke test).
  uint64_t small = std::min<uint64_t>(10'000, cfg.entries), large = std::min<uint64_t>(100'000, 10 * cfg.entries);
  fs::path dir = fs::path(cfg.dir) / "state";
  auto snapshot = std::make_shared<st::StateSnapshot>(Watermarks(small));
  auto reg = [&](const std::string& phase, std::function<double()> work) {
    benchmark::RegisterBenchmark(("rocky/" + phase).c_str(),
                                 [phase, work](benchmark::State& s) { RunPhase(s, "rocky", phase, work); })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  };
  auto open_rw = [](const std::string& path) {
    st::StoreOptions o;
    o.mode = st::OpenMode::kReadWrite;
    return Take(st::StateStore::Open(path, o), "StateStore::Open");
  };
  reg("state_write_watermarks", [dir, snapshot, open_rw] {
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto store = open_rw((dir / "small.redb").string());
    auto t0 = Clock::now();
    Check(store->Import(*snapshot), "Import");
    return Since(t0);
  });
  reg("state_read_watermarks", [dir, snapshot, open_rw] {
    auto store = open_rw((dir / "small.redb").string());
    std::vector<size_t> order(snapshot->watermarks.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[SplitMix(kSeed + i) % i]);
    auto t0 = Clock::now();
    for (size_t i : order) {
      auto got = Take(store->GetWatermark(snapshot->watermarks[i].table), "GetWatermark");
      if (!got || got->last_value != snapshot->watermarks[i].last_value) Fail("state: watermark mismatch");
    }
    return Since(t0);
  });
  reg("state_open_list", [dir, large, keep = cfg.keep, open_rw] {
    std::string path = (dir / "large.redb").string();
    Check(open_rw(path)->Import(Watermarks(large)), "Import");
    auto t0 = Clock::now();
    st::StoreOptions o;  // read-only, what `rocky state` uses
    auto store = Take(st::StateStore::Open(path, o), "StateStore::Open");
    auto list = Take(store->ListWatermarks(), "ListWatermarks");
    double secs = Since(t0);
    if (list.size() != large) Fail("state: listed " + std::to_string(list.size()) + " watermarks");
    store.reset();
    if (!keep) fs::remove_all(dir);
    return secs;
  });
}

// ---------------------------------------------------------------------------------------------------------
// Output

std::string Human(double v, const std::string& unit) {
  char buf[64];
  if (unit == "bytes") {
    if (v >= 1 << 30) std::snprintf(buf, sizeof buf, "%.2f GiB", v / (1 << 30));
    else if (v >= 1 << 20) std::snprintf(buf, sizeof buf, "%.1f MiB", v / (1 << 20));
    else std::snprintf(buf, sizeof buf, "%.0f KiB", v / 1024);
  } else {
    std::snprintf(buf, sizeof buf, v < 10 ? "%.3f ms" : "%.1f ms", v);  // len() can take microseconds
  }
  return buf;
}

struct Row {
  const Phase* phase;
  std::map<std::string, double> values;
  std::optional<double> best_other, ratio, ratio_lmdb;
};

std::vector<Row> Rows(const Config& cfg) {
  std::vector<Row> rows;
  static const std::vector<Phase> phases = AllPhases();
  for (const Phase& p : phases) {
    Row r{&p, g_results[p.id], {}, {}, {}};
    for (const auto& [eng, v] : r.values)
      if (eng != "rocky" && (!r.best_other || v < *r.best_other)) r.best_other = v;
    auto ours = r.values.find("rocky");
    if (ours != r.values.end() && r.best_other && *r.best_other > 0) r.ratio = ours->second / *r.best_other;
    auto lm = r.values.find("lmdb");
    if (ours != r.values.end() && lm != r.values.end() && lm->second > 0) r.ratio_lmdb = ours->second / lm->second;
    (void)cfg;
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string Markdown(const Config& cfg, const std::vector<Row>& rows) {
  std::ostringstream o;
  o << "| phase |";
  for (const auto& e : cfg.engines) o << " " << e << " |";
  o << " rocky / best other | rocky / lmdb |\n|---|";
  for (size_t i = 0; i < cfg.engines.size(); ++i) o << "---:|";
  o << "---:|---:|\n";
  for (const Row& r : rows) {
    o << "| " << r.phase->title << " |";
    double best = 0;
    bool any = false;
    for (const auto& [eng, v] : r.values)
      if (!any || v < best) best = v, any = true;
    for (const auto& e : cfg.engines) {
      auto it = r.values.find(e);
      if (it == r.values.end()) {
        o << " — |";
      } else {
        bool bold = r.values.size() > 1 && it->second == best;
        o << " " << (bold ? "**" : "") << Human(it->second, r.phase->unit) << (bold ? "**" : "") << " |";
      }
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2fx", r.ratio.value_or(0));
    o << " " << (r.ratio ? buf : "—") << " |";
    std::snprintf(buf, sizeof buf, "%.2fx", r.ratio_lmdb.value_or(0));
    o << " " << (r.ratio_lmdb ? buf : "—") << " |\n";
  }
  return o.str();
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else out += c;
  }
  return out;
}

std::string Json(const Config& cfg, const std::vector<Row>& rows, const std::map<std::string, std::string>& durability,
                 double total_secs) {
  std::ostringstream o;
  o.precision(10);
  o << "{\n  \"entries\": " << cfg.entries << ",\n  \"individual_writes\": " << cfg.individual
    << ",\n  \"batch_commits\": " << cfg.batches << ",\n  \"keys_per_batch\": " << kBatchKeys
    << ",\n  \"key_bytes\": " << kKeySize << ",\n  \"value_bytes\": " << kValueSize
    << ",\n  \"cpus\": " << std::thread::hardware_concurrency() << ",\n  \"total_seconds\": " << total_secs
    << ",\n  \"engines\": [";
  for (size_t i = 0; i < cfg.engines.size(); ++i) o << (i ? ", " : "") << "\"" << cfg.engines[i] << "\"";
  o << "],\n  \"durability\": {";
  bool first = true;
  for (const auto& [e, d] : durability) {
    o << (first ? "\n" : ",\n") << "    \"" << e << "\": \"" << JsonEscape(d) << "\"";
    first = false;
  }
  o << "\n  },\n  \"errors\": [";
  for (size_t i = 0; i < g_errors.size(); ++i) o << (i ? ", " : "") << "\"" << JsonEscape(g_errors[i]) << "\"";
  o << "],\n  \"phases\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    o << (i ? ",\n" : "\n") << "    {\"id\": \"" << r.phase->id << "\", \"title\": \"" << JsonEscape(r.phase->title)
      << "\", \"unit\": \"" << r.phase->unit << "\", \"state_level\": " << (r.phase->state_level ? "true" : "false")
      << ", \"results\": {";
    bool f = true;
    for (const auto& [e, v] : r.values) {
      o << (f ? "" : ", ") << "\"" << e << "\": " << v;
      f = false;
    }
    o << "}";
    if (r.ratio) o << ", \"ratio_vs_best_other\": " << *r.ratio;
    if (r.ratio_lmdb) o << ", \"ratio_vs_lmdb\": " << *r.ratio_lmdb;
    o << "}";
  }
  o << "\n  ]\n}\n";
  return o.str();
}

void Usage() {
  std::cerr << "usage: rocky-bench [--entries N] [--individual N] [--batches N] [--dir DIR] [--json FILE]\n"
               "                   [--engines a,b,...] [--keep] [--rocky-cache-mib N] [--benchmark_* flags]\n"
               "engines: rocky, lmdb, rocksdb, sqlite-wal, sqlite-journal (default: all)\n";
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  g_self = fs::read_symlink("/proc/self/exe").string();
  std::vector<char*> rest = {argv[0]};
  std::string crash_engine, crash_dir;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) Fail(a + " needs a value");
        return argv[++i];
      };
      if (a == "--entries") cfg.entries = std::stoull(next());
      else if (a == "--individual") cfg.individual = std::stoull(next());
      else if (a == "--batches") cfg.batches = std::stoull(next());
      else if (a == "--dir") cfg.dir = next();
      else if (a == "--json") cfg.json = next();
      else if (a == "--keep") cfg.keep = true;
      else if (a == "--rocky-cache-mib") cfg.rocky_cache_bytes = std::stoull(next()) << 20;
      else if (a == "--engines") {
        cfg.engines.clear();
        std::stringstream ss(next());
        for (std::string e; std::getline(ss, e, ',');) cfg.engines.push_back(e);
      } else if (a == "--crash-child") {
        crash_engine = next();
        crash_dir = next();
      } else if (a == "--help" || a == "-h") {
        Usage();
        return 0;
      } else if (a.rfind("--benchmark_", 0) == 0) {
        rest.push_back(argv[i]);
      } else {
        Fail("unknown argument " + a);
      }
    }
    if (cfg.entries < 2) Fail("--entries must be at least 2");
    if (!crash_engine.empty()) return CrashChild(cfg, crash_engine, crash_dir);
    for (const auto& e : cfg.engines) MakeEngine(cfg, e);  // rejects unknown names up front
  } catch (const std::exception& ex) {
    std::cerr << "rocky-bench: " << ex.what() << "\n";
    Usage();
    return 2;
  }

  Workload w(cfg);
  std::map<std::string, std::string> durability;
  for (const auto& name : cfg.engines) {
    std::shared_ptr<Engine> e = MakeEngine(cfg, name);
    durability[name] = e->Durability();
    RegisterEngine(name, w, e);
  }
  bool with_state = std::find(cfg.engines.begin(), cfg.engines.end(), "rocky") != cfg.engines.end();
  if (with_state) RegisterStatePhases(cfg);

  int bargc = static_cast<int>(rest.size());
  benchmark::Initialize(&bargc, rest.data());
  std::cout << "rocky-bench: " << cfg.entries << " entries (keys " << kKeySize << " B, values " << kValueSize
            << " B, random order, seed " << kSeed << "), individual writes " << cfg.individual
            << " commits of 1 key, batch and no-sync writes " << cfg.batches << " commits of " << kBatchKeys
            << " keys, data in " << cfg.dir << "\n";
  auto t0 = Clock::now();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  double total = Since(t0);

  auto rows = Rows(cfg);
  std::cout << "\nDurability:\n";
  for (const auto& [e, d] : durability) std::cout << "- " << e << ": " << d << "\n";
  std::cout << "\n" << Markdown(cfg, rows) << "\nTotal: " << total << " s\n";
  if (!cfg.json.empty()) {
    std::ofstream f(cfg.json);
    f << Json(cfg, rows, durability, total);
    if (!f) {
      std::cerr << "rocky-bench: cannot write " << cfg.json << "\n";
      return 1;
    }
  }
  for (const auto& e : g_errors) std::cerr << "rocky-bench: FAILED " << e << "\n";
  return g_errors.empty() ? 0 : 1;
}
