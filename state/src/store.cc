#include "rocky/state/store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>
#include <thread>
#include <utility>

#include "rocky/engine/db.h"
#include "rocky/state/json_writer.h"
#include "rocky/state/timestamp.h"
#include "record_json.h"

namespace rocky::state {
namespace {

using engine::Database;
using engine::ReadableTable;
using engine::ReadTransaction;
using engine::WritableTable;
using engine::WriteTransaction;

constexpr std::string_view kWatermarks = "watermarks";
constexpr std::string_view kCheckHistory = "check_history";
constexpr std::string_view kRunHistory = "run_history";
constexpr std::string_view kPlans = "plans";
constexpr std::string_view kMetadata = "metadata";
constexpr std::string_view kSchemaVersionKey = "schema_version";

using internal::Quoted;

std::string EncodeU32(uint32_t v) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return out;
}

Result<uint32_t> DecodeU32(std::string_view bytes, const std::string& path) {
  if (bytes.size() != 4) {
    return Status::Corruption("state file " + Quoted(path) + ": metadata.schema_version is " +
                              std::to_string(bytes.size()) + " bytes, expected 4");
  }
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  return v;
}

Status NewerVersionError(uint32_t on_disk) {
  return Status::NotSupported("state file schema version " + std::to_string(on_disk) +
                              " is newer than this rocky supports (" + std::to_string(kSchemaVersion) + ")");
}

// The table in the snapshot, or nullptr when it was never created.
Result<const ReadableTable*> OpenIfExists(ReadTransaction& txn, std::string_view name) {
  auto table = txn.OpenTable(name);
  if (table.ok()) return *table;
  if (table.status().IsNotFound()) return static_cast<const ReadableTable*>(nullptr);
  return table.status();
}

Result<std::optional<uint32_t>> ReadSchemaVersion(ReadTransaction& txn, const std::string& path) {
  ROCKY_ASSIGN_OR_RETURN(const ReadableTable* meta, OpenIfExists(txn, kMetadata));
  if (meta == nullptr) return std::optional<uint32_t>();
  std::string value;
  ROCKY_ASSIGN_OR_RETURN(bool found, meta->Get(kSchemaVersionKey, &value));
  if (!found) return std::optional<uint32_t>();
  ROCKY_ASSIGN_OR_RETURN(uint32_t version, DecodeU32(value, path));
  return std::optional<uint32_t>(version);
}

// Every key/value of a table in order; an absent table is empty.
Result<std::vector<std::pair<std::string, std::string>>> ReadAll(ReadTransaction& txn, std::string_view name) {
  std::vector<std::pair<std::string, std::string>> rows;
  ROCKY_ASSIGN_OR_RETURN(const ReadableTable* table, OpenIfExists(txn, name));
  if (table == nullptr) return rows;
  auto cursor = table->NewCursor();
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    rows.emplace_back(std::string(cursor->key()), std::string(cursor->value()));
  }
  ROCKY_RETURN_IF_ERROR(cursor->status());
  return rows;
}

Status CheckVersion(Database& db, const std::string& path) {
  ROCKY_ASSIGN_OR_RETURN(auto txn, db.BeginRead());
  ROCKY_ASSIGN_OR_RETURN(std::optional<uint32_t> version, ReadSchemaVersion(*txn, path));
  if (version && *version > kSchemaVersion) return NewerVersionError(*version);
  return Status::OK();
}

Status OpenError(const std::string& path, const Status& status) {
  if (status.IsCorruption() || status.code() == Status::Code::kInvalidArgument ||
      status.code() == Status::Code::kNotSupported) {
    return Status(status).WithContext("state file " + Quoted(path) + " is corrupt or not a rocky state file");
  }
  return Status(status).WithContext("cannot open state file " + Quoted(path));
}

Result<std::vector<Watermark>> ParseWatermarks(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::vector<Watermark> out;
  for (const auto& [key, value] : rows) {
    ROCKY_ASSIGN_OR_RETURN(Watermark w, internal::ParseWatermarkValue(key, value));
    out.push_back(std::move(w));
  }
  return out;
}

Result<std::vector<TableChecks>> ParseChecks(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::vector<TableChecks> out;
  for (const auto& [key, value] : rows) {
    ROCKY_ASSIGN_OR_RETURN(std::vector<CheckEntry> entries, internal::ParseCheckList(key, value));
    out.push_back(TableChecks{key, std::move(entries)});
  }
  return out;
}

Result<std::vector<RunRecord>> ParseRuns(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::vector<RunRecord> out;
  for (const auto& [key, value] : rows) {
    ROCKY_ASSIGN_OR_RETURN(RunRecord run, internal::ParseRunValue(key, value));
    out.push_back(std::move(run));
  }
  return out;
}

std::string RunKey(uint64_t sequence) {
  std::string digits = std::to_string(sequence);
  return std::string(20 - digits.size(), '0') + digits;
}

Status ValidateTable(std::string_view table) {
  if (IsQualifiedTableName(table)) return Status::OK();
  return Status::InvalidArgument(
      "invalid table name " + Quoted(table) +
      ": expected catalog.schema.table (non-empty catalog and schema without dots, then a "
      "non-empty table name)");
}

}  // namespace

bool IsQualifiedTableName(std::string_view table) {
  // The first two dots end the catalog and the schema; the table name is the rest and may hold dots itself
  // (a source table "weird.a.b" is a real SQLite table name), so "c.s.weird.a.b" is table "weird.a.b".
  const size_t first = table.find('.');
  if (first == std::string_view::npos || first == 0) return false;
  const size_t second = table.find('.', first + 1);
  if (second == std::string_view::npos || second == first + 1) return false;
  return second + 1 < table.size();
}

StateStore::StateStore(std::string path, StoreOptions options, std::unique_ptr<Database> db)
    : path_(std::move(path)), options_(std::move(options)), db_(std::move(db)) {}

StateStore::~StateStore() = default;

Result<std::unique_ptr<StateStore>> StateStore::Open(const std::string& path, const StoreOptions& options) {
  if (path.empty()) return Status::InvalidArgument("state path is empty");
  struct stat st {};
  bool exists = ::stat(path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) {
    return Status::IOError("cannot open state file " + Quoted(path) + ": " + std::strerror(errno));
  }
  if (exists && S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("state path " + Quoted(path) + " is a directory, not a state file");
  }

  engine::Options engine_options;
  engine_options.read_only = true;
  if (options.mode == OpenMode::kReadOnly) {
    if (!exists) return std::unique_ptr<StateStore>(new StateStore(path, options, nullptr));
    auto db = Database::Open(path, engine_options);
    if (!db.ok()) return OpenError(path, db.status());
    ROCKY_RETURN_IF_ERROR(CheckVersion(**db, path));
    return std::unique_ptr<StateStore>(new StateStore(path, options, std::move(*db)));
  }

  if (exists && st.st_size > 0) {
    // Look before opening for writing: a writer may recover or initialize the file, and a file from a newer
    // rocky must be refused without a single byte changing.
    auto probe = Database::Open(path, engine_options);
    if (!probe.ok()) return OpenError(path, probe.status());
    ROCKY_RETURN_IF_ERROR(CheckVersion(**probe, path));
  }
  if (!exists) {
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) {
      return Status::IOError("cannot create the folder " + Quoted(parent.string()) + " of state file " +
                             Quoted(path) + ": " + ec.message());
    }
  }

  engine_options.read_only = false;
  const auto deadline = std::chrono::steady_clock::now() + options.busy_timeout;
  for (;;) {
    auto db = Database::Open(path, engine_options);
    if (db.ok()) {
      ROCKY_RETURN_IF_ERROR(CheckVersion(**db, path));
      return std::unique_ptr<StateStore>(new StateStore(path, options, std::move(*db)));
    }
    if (!db.status().IsBusy()) return OpenError(path, db.status());
    if (std::chrono::steady_clock::now() >= deadline) {
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(options.busy_timeout).count();
      return Status::Busy("state file " + Quoted(path) + " is in use by another rocky (" + db.status().message() +
                          "); gave up after " + std::to_string(waited) + " ms");
    }
    std::this_thread::sleep_for(options.busy_retry_interval);
  }
}

Status StateStore::RequireWritable() const {
  if (db_ == nullptr || options_.mode != OpenMode::kReadWrite) {
    return Status::InvalidArgument("state file " + Quoted(path_) + " was opened read-only");
  }
  return Status::OK();
}

std::string StateStore::Now() const {
  return FormatUtc(options_.clock ? options_.clock() : std::chrono::system_clock::now());
}

Result<std::unique_ptr<WriteTransaction>> StateStore::BeginWrite() {
  ROCKY_RETURN_IF_ERROR(RequireWritable());
  ROCKY_ASSIGN_OR_RETURN(auto txn, db_->BeginWrite());
  ROCKY_ASSIGN_OR_RETURN(WritableTable * meta, txn->OpenTable(kMetadata));
  std::string value;
  ROCKY_ASSIGN_OR_RETURN(bool found, meta->Get(kSchemaVersionKey, &value));
  if (found) {
    ROCKY_ASSIGN_OR_RETURN(uint32_t version, DecodeU32(value, path_));
    if (version > kSchemaVersion) return NewerVersionError(version);
    // Version 1 is the only one so far; an older stamp would be migrated here.
  } else {
    ROCKY_ASSIGN_OR_RETURN(bool replaced, meta->Insert(kSchemaVersionKey, EncodeU32(kSchemaVersion)));
    (void)replaced;
  }
  return txn;
}

Result<std::optional<uint32_t>> StateStore::SchemaVersionOnDisk() {
  if (db_ == nullptr) return std::optional<uint32_t>();
  ROCKY_ASSIGN_OR_RETURN(auto txn, db_->BeginRead());
  return ReadSchemaVersion(*txn, path_);
}

Result<std::vector<Watermark>> StateStore::ListWatermarks() {
  if (db_ == nullptr) return std::vector<Watermark>();
  ROCKY_ASSIGN_OR_RETURN(auto txn, db_->BeginRead());
  ROCKY_ASSIGN_OR_RETURN(auto rows, ReadAll(*txn, kWatermarks));
  return ParseWatermarks(rows);
}

Result<std::optional<Watermark>> StateStore::GetWatermark(std::string_view table) {
  if (db_ == nullptr) return std::optional<Watermark>();
  ROCKY_ASSIGN_OR_RETURN(auto txn, db_->BeginRead());
  ROCKY_ASSIGN_OR_RETURN(const ReadableTable* t, OpenIfExists(*txn, kWatermarks));
  if (t == nullptr) return std::optional<Watermark>();
  std::string value;
  ROCKY_ASSIGN_OR_RETURN(bool found, t->Get(table, &value));
  if (!found) return std::optional<Watermark>();
  ROCKY_ASSIGN_OR_RETURN(Watermark w, internal::ParseWatermarkValue(table, value));
  return std::optional<Watermark>(std::move(w));
}

Result<Watermark> StateStore::SetWatermark(std::string_view table, std::string_view last_value) {
  ROCKY_RETURN_IF_ERROR(ValidateTable(table));
  ROCKY_ASSIGN_OR_RETURN(std::string normalized, NormalizeWatermarkValue(last_value));
  Watermark w{std::string(table), std::move(normalized), Now()};
  ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
  ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kWatermarks));
  ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(table, internal::WatermarkValueJson(w)));
  (void)replaced;
  ROCKY_RETURN_IF_ERROR(txn->Commit());
  return w;
}

Status StateStore::DeleteWatermark(std::string_view table) {
  ROCKY_RETURN_IF_ERROR(RequireWritable());
  ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
  ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kWatermarks));
  ROCKY_ASSIGN_OR_RETURN(bool existed, t->Remove(table));
  if (!existed) return Status::NotFound("no watermark stored for table " + Quoted(table));
  return txn->Commit();
}

Result<uint64_t> StateStore::DeleteAllWatermarks() {
  ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
  ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kWatermarks));
  ROCKY_ASSIGN_OR_RETURN(uint64_t removed, t->RemoveRange(engine::KeyRange::All()));
  ROCKY_RETURN_IF_ERROR(txn->Commit());
  return removed;
}

Status StateStore::AppendCheck(std::string_view table, uint64_t count, std::string_view timestamp) {
  ROCKY_RETURN_IF_ERROR(ValidateTable(table));
  ROCKY_ASSIGN_OR_RETURN(std::string normalized, NormalizeTimestamp(timestamp));
  ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
  ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kCheckHistory));
  std::string value;
  std::vector<CheckEntry> entries;
  ROCKY_ASSIGN_OR_RETURN(bool found, t->Get(table, &value));
  if (found) {
    ROCKY_ASSIGN_OR_RETURN(entries, internal::ParseCheckList(table, value));
  }
  entries.push_back(CheckEntry{count, std::move(normalized)});
  const size_t cap = std::max<size_t>(options_.check_history_cap, 1);
  if (entries.size() > cap) entries.erase(entries.begin(), entries.end() - static_cast<std::ptrdiff_t>(cap));
  ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(table, internal::CheckListJson(entries)));
  (void)replaced;
  return txn->Commit();
}

Result<std::vector<CheckEntry>> StateStore::CheckHistory(std::string_view table) {
  if (db_ == nullptr) return std::vector<CheckEntry>();
  ROCKY_ASSIGN_OR_RETURN(auto txn, db_->BeginRead());
  ROCKY_ASSIGN_OR_RETURN(const ReadableTable* t, OpenIfExists(*txn, kCheckHistory));
  if (t == nullptr) return std::vector<CheckEntry>();
  std::string value;
  ROCKY_ASSIGN_OR_RETURN(bool found, t->Get(table, &value));
  if (!found) return std::vector<CheckEntry>();
  return internal::ParseCheckList(table, value);
}

Result<std::optional<Watermark>> StateStore::RecordTableCopy(std::string_view table,
                                                             std::optional<std::string_view> last_value,
                                                             std::optional<uint64_t> row_count, size_t history_cap) {
  ROCKY_RETURN_IF_ERROR(ValidateTable(table));
  std::optional<std::string> normalized;
  if (last_value) {
    ROCKY_ASSIGN_OR_RETURN(normalized, NormalizeWatermarkValue(*last_value));
  }
  const std::string now = Now();
  ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
  std::optional<Watermark> stored;
  {
    ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kWatermarks));
    if (normalized) {
      stored = Watermark{std::string(table), std::move(*normalized), now};
      ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(table, internal::WatermarkValueJson(*stored)));
      (void)replaced;
    } else {
      std::string value;
      ROCKY_ASSIGN_OR_RETURN(bool found, t->Get(table, &value));
      if (found) {
        ROCKY_ASSIGN_OR_RETURN(Watermark w, internal::ParseWatermarkValue(table, value));
        stored = std::move(w);
      }
    }
  }
  if (row_count) {
    ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kCheckHistory));
    std::string value;
    std::vector<CheckEntry> entries;
    ROCKY_ASSIGN_OR_RETURN(bool found, t->Get(table, &value));
    if (found) {
      ROCKY_ASSIGN_OR_RETURN(entries, internal::ParseCheckList(table, value));
    }
    entries.push_back(CheckEntry{*row_count, now});
    const size_t cap = std::max<size_t>(history_cap != 0 ? history_cap : options_.check_history_cap, 1);
    if (entries.size() > cap) entries.erase(entries.begin(), entries.end() - static_cast<std::ptrdiff_t>(cap));
    ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(table, internal::CheckListJson(entries)));
    (void)replaced;
  }
  ROCKY_RETURN_IF_ERROR(txn->Commit());
  return stored;
}

Status StateStore::SavePlan(std::string_view plan_id, std::string_view plan_json) {
  if (plan_id.empty()) return Status::InvalidArgument("plan id is empty");
  const std::string now = Now();
  ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
  ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kPlans));
  ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(plan_id, internal::PlanValueJson(now, plan_json)));
  (void)replaced;
  // Drop the oldest plans (by creation time, then id for a stable order) beyond the cap.
  std::vector<std::pair<std::string, std::string>> by_age;  // (created_at, id)
  {
    auto cursor = t->NewCursor();
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
      ROCKY_ASSIGN_OR_RETURN(internal::StoredPlan plan, internal::ParsePlanValue(cursor->key(), cursor->value()));
      by_age.emplace_back(std::move(plan.created_at), std::string(cursor->key()));
    }
    ROCKY_RETURN_IF_ERROR(cursor->status());
  }
  if (by_age.size() > kMaxStoredPlans) {
    std::sort(by_age.begin(), by_age.end());
    for (size_t i = 0; i + kMaxStoredPlans < by_age.size(); ++i) {
      if (by_age[i].second == plan_id) continue;  // never drop the plan just saved
      ROCKY_ASSIGN_OR_RETURN(bool removed, t->Remove(by_age[i].second));
      (void)removed;
    }
  }
  return txn->Commit();
}

Result<std::optional<std::string>> StateStore::LoadPlan(std::string_view plan_id) {
  if (db_ == nullptr) return std::optional<std::string>();
  ROCKY_ASSIGN_OR_RETURN(auto txn, db_->BeginRead());
  ROCKY_ASSIGN_OR_RETURN(const ReadableTable* t, OpenIfExists(*txn, kPlans));
  if (t == nullptr) return std::optional<std::string>();
  std::string value;
  ROCKY_ASSIGN_OR_RETURN(bool found, t->Get(plan_id, &value));
  if (!found) return std::optional<std::string>();
  ROCKY_ASSIGN_OR_RETURN(internal::StoredPlan plan, internal::ParsePlanValue(plan_id, value));
  return std::optional<std::string>(std::move(plan.plan_json));
}

Status StateStore::AppendRun(const RunRecord& run) {
  ROCKY_RETURN_IF_ERROR(internal::ValidateRun(run));
  RunRecord normalized = run;
  ROCKY_ASSIGN_OR_RETURN(normalized.started_at, NormalizeTimestamp(run.started_at));
  if (!run.finished_at.empty()) {
    ROCKY_ASSIGN_OR_RETURN(normalized.finished_at, NormalizeTimestamp(run.finished_at));
  }
  ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
  ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kRunHistory));
  uint64_t next = 0;
  auto cursor = t->NewCursor();
  cursor->SeekToLast();
  if (cursor->Valid()) next = std::stoull(std::string(cursor->key())) + 1;
  ROCKY_RETURN_IF_ERROR(cursor->status());
  cursor.reset();  // a change to the table invalidates it
  ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(RunKey(next), internal::RunValueJson(normalized)));
  (void)replaced;
  return txn->Commit();
}

Result<uint64_t> StateStore::BeginRun(const RunRecord& run) {
  ROCKY_RETURN_IF_ERROR(internal::ValidateRun(run));
  RunRecord normalized = run;
  ROCKY_ASSIGN_OR_RETURN(normalized.started_at, NormalizeTimestamp(run.started_at));
  ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
  ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kRunHistory));
  uint64_t next = 0;
  std::vector<std::pair<std::string, RunRecord>> crashed;
  {
    auto cursor = t->NewCursor();
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
      next = std::stoull(std::string(cursor->key())) + 1;
      ROCKY_ASSIGN_OR_RETURN(RunRecord earlier, internal::ParseRunValue(cursor->key(), cursor->value()));
      if (earlier.status == "running") {
        earlier.status = "crashed";
        crashed.emplace_back(std::string(cursor->key()), std::move(earlier));
      }
    }
    ROCKY_RETURN_IF_ERROR(cursor->status());
  }
  for (const auto& [key, record] : crashed) {
    ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(key, internal::RunValueJson(record)));
    (void)replaced;
  }
  ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(RunKey(next), internal::RunValueJson(normalized)));
  (void)replaced;
  ROCKY_RETURN_IF_ERROR(txn->Commit());
  return next;
}

Status StateStore::FinishRun(uint64_t sequence, const RunRecord& run) {
  ROCKY_RETURN_IF_ERROR(internal::ValidateRun(run));
  RunRecord normalized = run;
  ROCKY_ASSIGN_OR_RETURN(normalized.started_at, NormalizeTimestamp(run.started_at));
  if (!run.finished_at.empty()) {
    ROCKY_ASSIGN_OR_RETURN(normalized.finished_at, NormalizeTimestamp(run.finished_at));
  }
  ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
  ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kRunHistory));
  std::string existing;
  ROCKY_ASSIGN_OR_RETURN(bool found, t->Get(RunKey(sequence), &existing));
  if (!found) return Status::NotFound("no run record number " + std::to_string(sequence) + " to finish");
  ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(RunKey(sequence), internal::RunValueJson(normalized)));
  (void)replaced;
  return txn->Commit();
}

Result<std::vector<RunRecord>> StateStore::ListRuns() {
  if (db_ == nullptr) return std::vector<RunRecord>();
  ROCKY_ASSIGN_OR_RETURN(auto txn, db_->BeginRead());
  ROCKY_ASSIGN_OR_RETURN(auto rows, ReadAll(*txn, kRunHistory));
  return ParseRuns(rows);
}

Result<StateSnapshot> StateStore::Export() {
  StateSnapshot snapshot;
  if (db_ == nullptr) return snapshot;
  // One read transaction, so the export is one consistent commit.
  ROCKY_ASSIGN_OR_RETURN(auto txn, db_->BeginRead());
  ROCKY_ASSIGN_OR_RETURN(snapshot.schema_version, ReadSchemaVersion(*txn, path_));
  ROCKY_ASSIGN_OR_RETURN(auto watermarks, ReadAll(*txn, kWatermarks));
  ROCKY_ASSIGN_OR_RETURN(snapshot.watermarks, ParseWatermarks(watermarks));
  ROCKY_ASSIGN_OR_RETURN(auto checks, ReadAll(*txn, kCheckHistory));
  ROCKY_ASSIGN_OR_RETURN(snapshot.check_history, ParseChecks(checks));
  ROCKY_ASSIGN_OR_RETURN(auto runs, ReadAll(*txn, kRunHistory));
  ROCKY_ASSIGN_OR_RETURN(snapshot.run_history, ParseRuns(runs));
  return snapshot;
}

Status StateStore::Import(const StateSnapshot& input) {
  ROCKY_RETURN_IF_ERROR(RequireWritable());
  ROCKY_ASSIGN_OR_RETURN(StateSnapshot snapshot, internal::ValidateSnapshot(input));
  ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
  for (std::string_view name : {kWatermarks, kCheckHistory, kRunHistory}) {
    ROCKY_ASSIGN_OR_RETURN(bool existed, txn->DeleteTable(name));
    (void)existed;
  }
  {
    ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kWatermarks));
    for (const Watermark& w : snapshot.watermarks) {
      ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(w.table, internal::WatermarkValueJson(w)));
      (void)replaced;
    }
  }
  {
    ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kCheckHistory));
    for (const TableChecks& c : snapshot.check_history) {
      ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(c.table, internal::CheckListJson(c.entries)));
      (void)replaced;
    }
  }
  {
    ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kRunHistory));
    for (size_t i = 0; i < snapshot.run_history.size(); ++i) {
      ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(RunKey(i), internal::RunValueJson(snapshot.run_history[i])));
      (void)replaced;
    }
  }
  return txn->Commit();
}

}  // namespace rocky::state
