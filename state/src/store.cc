#include "rocky/state/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>
#include <thread>
#include <utility>

#include "record_json.h"
#include "rocky/base/json_writer.h"
#include "rocky/base/strings.h"
#include "rocky/base/timestamp.h"
#include "rocky/engine/db.h"

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
constexpr std::string_view kRowCounts = "row_counts";
constexpr std::string_view kSchemaVersionKey = "schema_version";
// Below this many free pages, StateStore::Compact leaves the file alone.
constexpr uint64_t kCompactMinFreePages = 16;

using base::FormatUtc;
using base::NormalizeTimestamp;
using base::NormalizeWatermarkValue;
using base::Quoted;

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

// The value stored under `key` in table `name` of the snapshot; nullopt when the table or the key is absent.
Result<std::optional<std::string>> ReadValue(ReadTransaction& txn, std::string_view name,
                                             std::string_view key) {
  ROCKY_ASSIGN_OR_RETURN(const ReadableTable* table, OpenIfExists(txn, name));
  if (table == nullptr) return std::optional<std::string>();
  std::string value;
  ROCKY_ASSIGN_OR_RETURN(bool found, table->Get(key, &value));
  if (!found) return std::optional<std::string>();
  return std::optional<std::string>(std::move(value));
}

// The same from a snapshot of the last commit of `db`, which is null for a read-only store of a file that
// does not exist (an empty state).
Result<std::optional<std::string>> ReadValue(Database* db, std::string_view name, std::string_view key) {
  if (db == nullptr) return std::optional<std::string>();
  ROCKY_ASSIGN_OR_RETURN(auto txn, db->BeginRead());
  return ReadValue(*txn, name, key);
}

Result<std::optional<uint32_t>> ReadSchemaVersion(ReadTransaction& txn, const std::string& path) {
  ROCKY_ASSIGN_OR_RETURN(std::optional<std::string> value, ReadValue(txn, kMetadata, kSchemaVersionKey));
  if (!value) return std::optional<uint32_t>();
  ROCKY_ASSIGN_OR_RETURN(uint32_t version, DecodeU32(*value, path));
  return std::optional<uint32_t>(version);
}

// Every key/value of a table in order; an absent table is empty.
Result<std::vector<std::pair<std::string, std::string>>> ReadAll(ReadTransaction& txn,
                                                                 std::string_view name) {
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

// `run` validated, with its timestamps in their stored (normalized) form.
Result<RunRecord> NormalizedRun(const RunRecord& run) {
  ROCKY_RETURN_IF_ERROR(internal::ValidateRun(run));
  RunRecord normalized = run;
  ROCKY_ASSIGN_OR_RETURN(normalized.started_at, NormalizeTimestamp(run.started_at));
  if (!run.finished_at.empty()) {
    ROCKY_ASSIGN_OR_RETURN(normalized.finished_at, NormalizeTimestamp(run.finished_at));
  }
  return normalized;
}

Status CheckVersion(Database& db, const std::string& path) {
  ROCKY_ASSIGN_OR_RETURN(auto txn, db.BeginRead());
  ROCKY_ASSIGN_OR_RETURN(std::optional<uint32_t> version, ReadSchemaVersion(*txn, path));
  if (version && *version > kSchemaVersion) return NewerVersionError(*version);
  return Status::OK();
}

// Says what kind of problem keeps the file from opening, so the user looks in the right place: damage is not
// a read error (the disk's), nor a permission problem, nor a file from a newer rocky.
Status OpenError(const std::string& path, const Status& status) {
  switch (status.code()) {
    case Status::Code::kCorruption:
      return Status(status).WithContext("state file " + Quoted(path) + " is damaged");
    case Status::Code::kInvalidArgument:
      return Status(status).WithContext("state file " + Quoted(path) + " is not a rocky state file");
    case Status::Code::kNotSupported:
      return Status(status).WithContext("state file " + Quoted(path) + " was written by a newer rocky");
    default: return Status(status).WithContext("cannot open state file " + Quoted(path));
  }
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

// The sequence number a run_history key holds (RunKey's 20 digits); kCorruption naming the key when it is not
// one (std::stoull would throw on it, and exceptions must not cross the module boundary).
Result<uint64_t> RunSequence(std::string_view key, const std::string& path) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), value);
  if (key.empty() || error != std::errc() || end != key.data() + key.size()) {
    return Status::Corruption("state file " + Quoted(path) + ": run_history key " + Quoted(key) +
                              " is not a run sequence number (20 digits)");
  }
  if (value == std::numeric_limits<uint64_t>::max()) {
    return Status::Corruption("state file " + Quoted(path) + ": run_history key " + Quoted(key) +
                              " is the largest sequence number: no run can follow it");
  }
  return value;
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
    // A file holding no commit (zero length, a creation cut short) opens as an empty state: the engine's
    // rule (OpenReport::uncommitted), the same for readers and writers.
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
      return Status::Busy("state file " + Quoted(path) + " is in use by another rocky (" +
                          db.status().message() + "); gave up after " + std::to_string(waited) + " ms");
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

Status StateStore::Compact() {
  ROCKY_RETURN_IF_ERROR(RequireWritable());
  ROCKY_ASSIGN_OR_RETURN(const engine::Stats stats, db_->GetStats());
  // Too little free space to be worth a commit: the commit itself needs a few new pages, which a packed file
  // can only append, and Compact could not move them back before the commit after it.
  if (stats.free_pages < kCompactMinFreePages) return Status::OK();
  {
    ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
    ROCKY_ASSIGN_OR_RETURN(WritableTable * meta, txn->OpenTable(kMetadata));
    ROCKY_ASSIGN_OR_RETURN(bool replaced, meta->Insert(kSchemaVersionKey, EncodeU32(kSchemaVersion)));
    (void)replaced;
    ROCKY_RETURN_IF_ERROR(txn->Commit());
  }
  return db_->Compact();
}

Result<std::optional<uint32_t>> StateStore::SchemaVersionOnDisk() {
  if (db_ == nullptr) return std::optional<uint32_t>();
  ROCKY_ASSIGN_OR_RETURN(auto txn, db_->BeginRead());
  return ReadSchemaVersion(*txn, path_);
}

Result<std::vector<Watermark>> StateStore::ListWatermarks() {
  std::vector<Watermark> out;
  ROCKY_RETURN_IF_ERROR(ForEachWatermark("", [&](const WatermarkView& w) {
    out.push_back(Watermark{std::string(w.table), std::string(w.last_value), std::string(w.updated_at)});
    return Status::OK();
  }));
  return out;
}

Status StateStore::ForEachWatermark(std::string_view prefix,
                                    const std::function<Status(const WatermarkView&)>& visit) {
  if (db_ == nullptr) return Status::OK();
  ROCKY_ASSIGN_OR_RETURN(auto txn, db_->BeginRead());
  ROCKY_ASSIGN_OR_RETURN(const ReadableTable* table, OpenIfExists(*txn, kWatermarks));
  if (table == nullptr) return Status::OK();
  auto cursor = table->NewCursor(prefix.empty() ? engine::KeyRange::All() : engine::KeyRange::Prefix(prefix));
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    WatermarkView view{cursor->key(), {}, {}};
    if (internal::ParseWatermarkValueFast(cursor->value(), &view.last_value, &view.updated_at)) {
      ROCKY_RETURN_IF_ERROR(visit(view));
      continue;
    }
    // Anything but the common form (escapes, non-ASCII, another layout) goes through the full parser.
    ROCKY_ASSIGN_OR_RETURN(Watermark parsed, internal::ParseWatermarkValue(cursor->key(), cursor->value()));
    ROCKY_RETURN_IF_ERROR(visit(WatermarkView{parsed.table, parsed.last_value, parsed.updated_at}));
  }
  return cursor->status();
}

Result<std::optional<Watermark>> StateStore::GetWatermark(std::string_view table) {
  ROCKY_ASSIGN_OR_RETURN(std::optional<std::string> value, ReadValue(db_.get(), kWatermarks, table));
  if (!value) return std::optional<Watermark>();
  ROCKY_ASSIGN_OR_RETURN(Watermark w, internal::ParseWatermarkValue(table, *value));
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
  ROCKY_ASSIGN_OR_RETURN(std::optional<std::string> value, ReadValue(db_.get(), kCheckHistory, table));
  if (!value) return std::vector<CheckEntry>();
  return internal::ParseCheckList(table, *value);
}

Result<StateStore::RecordedCopy> StateStore::RecordTableCopy(
    std::string_view table, std::optional<std::string_view> last_value, std::optional<uint64_t> row_count,
    size_t history_cap, const std::vector<std::pair<std::string, RememberedRowCount>>& row_counts) {
  ROCKY_RETURN_IF_ERROR(ValidateTable(table));
  for (const auto& [name, count] : row_counts) ROCKY_RETURN_IF_ERROR(ValidateTable(name));
  std::optional<std::string> normalized;
  if (last_value) {
    ROCKY_ASSIGN_OR_RETURN(normalized, NormalizeWatermarkValue(*last_value));
  }
  const std::string now = Now();
  // The watermark's half of the commit: the stored watermark afterwards.
  auto write_watermark = [&](WriteTransaction& txn) -> Result<std::optional<Watermark>> {
    ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn.OpenTable(kWatermarks));
    if (normalized) {
      Watermark stored{std::string(table), *normalized, now};
      ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(table, internal::WatermarkValueJson(stored)));
      (void)replaced;
      return std::optional<Watermark>(std::move(stored));
    }
    std::string value;
    ROCKY_ASSIGN_OR_RETURN(bool found, t->Get(table, &value));
    if (!found) return std::optional<Watermark>();
    ROCKY_ASSIGN_OR_RETURN(Watermark w, internal::ParseWatermarkValue(table, value));
    return std::optional<Watermark>(std::move(w));
  };
  // The row count's half.
  auto append_count = [&](WriteTransaction& txn) -> Status {
    ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn.OpenTable(kCheckHistory));
    std::string value;
    std::vector<CheckEntry> entries;
    ROCKY_ASSIGN_OR_RETURN(bool found, t->Get(table, &value));
    if (found) {
      ROCKY_ASSIGN_OR_RETURN(entries, internal::ParseCheckList(table, value));
    }
    entries.push_back(CheckEntry{*row_count, now});
    const size_t cap = std::max<size_t>(history_cap != 0 ? history_cap : options_.check_history_cap, 1);
    if (entries.size() > cap)
      entries.erase(entries.begin(), entries.end() - static_cast<std::ptrdiff_t>(cap));
    ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(table, internal::CheckListJson(entries)));
    (void)replaced;
    return Status::OK();
  };

  // The remembered counts' half: a cache, so a failure here costs only them (the commit is made again
  // without them, below).
  auto remember_counts = [&](WriteTransaction& txn) -> Status {
    ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn.OpenTable(kRowCounts));
    for (const auto& [name, count] : row_counts) {
      ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(name, internal::RowCountValueJson(count)));
      (void)replaced;
    }
    return Status::OK();
  };

  RecordedCopy recorded;
  if (!row_counts.empty()) {
    ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
    ROCKY_ASSIGN_OR_RETURN(recorded.watermark, write_watermark(*txn));
    if (row_count) recorded.history_error = append_count(*txn);
    if (recorded.history_error.ok() && remember_counts(*txn).ok()) {
      ROCKY_RETURN_IF_ERROR(txn->Commit());
      return recorded;
    }
    txn->Abort();
    recorded = RecordedCopy{};
  }
  {
    ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
    ROCKY_ASSIGN_OR_RETURN(recorded.watermark, write_watermark(*txn));
    if (row_count) recorded.history_error = append_count(*txn);
    if (recorded.history_error.ok()) {
      ROCKY_RETURN_IF_ERROR(txn->Commit());
      return recorded;
    }
    txn->Abort();
  }
  // The history could not take the count: save the watermark alone.
  recorded.history_error = recorded.history_error.WithContext("the row count of " + Quoted(table) +
                                                              " was not recorded (check_history)");
  ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
  ROCKY_ASSIGN_OR_RETURN(recorded.watermark, write_watermark(*txn));
  ROCKY_RETURN_IF_ERROR(txn->Commit());
  return recorded;
}

Result<std::optional<RememberedRowCount>> StateStore::RowCountOf(std::string_view table) {
  ROCKY_ASSIGN_OR_RETURN(std::optional<std::string> value, ReadValue(db_.get(), kRowCounts, table));
  if (!value) return std::optional<RememberedRowCount>();
  ROCKY_ASSIGN_OR_RETURN(RememberedRowCount count, internal::ParseRowCountValue(table, *value));
  return std::optional<RememberedRowCount>(std::move(count));
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
      ROCKY_ASSIGN_OR_RETURN(internal::StoredPlan plan,
                             internal::ParsePlanValue(cursor->key(), cursor->value()));
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
  ROCKY_ASSIGN_OR_RETURN(std::optional<std::string> value, ReadValue(db_.get(), kPlans, plan_id));
  if (!value) return std::optional<std::string>();
  ROCKY_ASSIGN_OR_RETURN(internal::StoredPlan plan, internal::ParsePlanValue(plan_id, *value));
  return std::optional<std::string>(std::move(plan.plan_json));
}

Status StateStore::AppendRun(const RunRecord& run) {
  ROCKY_ASSIGN_OR_RETURN(const RunRecord normalized, NormalizedRun(run));
  ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
  ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kRunHistory));
  uint64_t next = 0;
  auto cursor = t->NewCursor();
  cursor->SeekToLast();
  if (cursor->Valid()) {
    ROCKY_ASSIGN_OR_RETURN(const uint64_t last, RunSequence(cursor->key(), path_));
    next = last + 1;
  }
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
      ROCKY_ASSIGN_OR_RETURN(const uint64_t sequence, RunSequence(cursor->key(), path_));
      next = sequence + 1;
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
  ROCKY_ASSIGN_OR_RETURN(const RunRecord normalized, NormalizedRun(run));
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

namespace {

using Rows = std::vector<std::pair<std::string, std::string>>;

// The rows of one table that can be read: forward from the first key to the first damage, then backward from
// the last key down to that damage. Appends a sentence to `unreadable` for what was skipped.
Rows SalvageTable(ReadTransaction& txn, std::string_view name, std::vector<std::string>& unreadable,
                  uint64_t& entries_lost) {
  Rows rows;
  auto table = txn.OpenTable(name);
  if (!table.ok()) {
    if (!table.status().IsNotFound()) {
      unreadable.push_back("table " + Quoted(name) + ": unreadable as a whole: " + table.status().message());
    }
    return rows;
  }
  auto forward = (*table)->NewCursor();
  for (forward->SeekToFirst(); forward->Valid(); forward->Next()) {
    rows.emplace_back(std::string(forward->key()), std::string(forward->value()));
  }
  const Status damage = forward->status();
  if (damage.ok()) return rows;
  Rows tail;
  auto backward = (*table)->NewCursor();
  for (backward->SeekToLast(); backward->Valid() && (rows.empty() || backward->key() > rows.back().first);
       backward->Prev()) {
    tail.emplace_back(std::string(backward->key()), std::string(backward->value()));
  }
  std::reverse(tail.begin(), tail.end());
  const std::string after = rows.empty() ? "from its first key" : "after key " + Quoted(rows.back().first);
  const std::string before = tail.empty() ? "to its last key" : "before key " + Quoted(tail.front().first);
  const uint64_t read = rows.size() + tail.size();
  const uint64_t lost = (*table)->Len() > read ? (*table)->Len() - read : 0;
  entries_lost += lost;
  unreadable.push_back("table " + Quoted(name) + ": " + std::to_string(lost) + " of " +
                       std::to_string((*table)->Len()) + " entries " + after + " " + before +
                       " could not be read: " + damage.message());
  rows.insert(rows.end(), std::make_move_iterator(tail.begin()), std::make_move_iterator(tail.end()));
  return rows;
}

// Parses each row with `parse`, leaving out (and naming) the ones that do not parse.
template <typename T, typename Parse>
std::vector<T> ParseSalvaged(std::string_view table, const Rows& rows, Parse parse,
                             std::vector<std::string>& unreadable, uint64_t& entries_lost) {
  std::vector<T> out;
  for (const auto& [key, value] : rows) {
    Result<T> parsed = parse(key, value);
    if (parsed.ok()) {
      out.push_back(std::move(*parsed));
    } else {
      ++entries_lost;
      unreadable.push_back("table " + Quoted(table) + ", key " + Quoted(key) + ": " +
                           parsed.status().message());
    }
  }
  return out;
}

}  // namespace

Result<StateStore::SalvageReport> StateStore::ExportSalvage() {
  SalvageReport report;
  if (db_ == nullptr) return report;
  ROCKY_ASSIGN_OR_RETURN(auto txn, db_->BeginRead());
  auto version = ReadSchemaVersion(*txn, path_);
  if (version.ok()) {
    report.snapshot.schema_version = *version;
  } else {
    report.unreadable.push_back("table 'metadata': the schema version could not be read: " +
                                version.status().message());
  }
  auto& lost = report.entries_lost;
  auto& unreadable = report.unreadable;
  report.snapshot.watermarks = ParseSalvaged<Watermark>(
      kWatermarks, SalvageTable(*txn, kWatermarks, unreadable, lost),
      [](std::string_view k, std::string_view v) { return internal::ParseWatermarkValue(k, v); }, unreadable,
      lost);
  report.snapshot.check_history = ParseSalvaged<TableChecks>(
      kCheckHistory, SalvageTable(*txn, kCheckHistory, unreadable, lost),
      [](std::string_view k, std::string_view v) -> Result<TableChecks> {
        ROCKY_ASSIGN_OR_RETURN(std::vector<CheckEntry> entries, internal::ParseCheckList(k, v));
        return TableChecks{std::string(k), std::move(entries)};
      },
      unreadable, lost);
  report.snapshot.run_history = ParseSalvaged<RunRecord>(
      kRunHistory, SalvageTable(*txn, kRunHistory, unreadable, lost),
      [](std::string_view k, std::string_view v) { return internal::ParseRunValue(k, v); }, unreadable, lost);
  return report;
}

namespace {

// The snapshot's watermarks, check histories and runs into `txn`, after dropping those tables when `replace`.
Status WriteSnapshotTables(WriteTransaction& txn, const StateSnapshot& snapshot, bool replace) {
  if (replace) {
    for (std::string_view name : {kWatermarks, kCheckHistory, kRunHistory}) {
      ROCKY_ASSIGN_OR_RETURN(bool existed, txn.DeleteTable(name));
      (void)existed;
    }
  }
  {
    ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn.OpenTable(kWatermarks));
    for (const Watermark& w : snapshot.watermarks) {
      ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(w.table, internal::WatermarkValueJson(w)));
      (void)replaced;
    }
  }
  {
    ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn.OpenTable(kCheckHistory));
    for (const TableChecks& c : snapshot.check_history) {
      ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(c.table, internal::CheckListJson(c.entries)));
      (void)replaced;
    }
  }
  {
    ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn.OpenTable(kRunHistory));
    for (size_t i = 0; i < snapshot.run_history.size(); ++i) {
      ROCKY_ASSIGN_OR_RETURN(bool replaced,
                             t->Insert(RunKey(i), internal::RunValueJson(snapshot.run_history[i])));
      (void)replaced;
    }
  }
  return Status::OK();
}

Status SyncFolderOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return Status::IOError("opening folder " + Quoted(dir) + " to sync it: " + std::strerror(errno));
  const bool synced = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!synced) return Status::IOError("syncing folder " + Quoted(dir) + ": " + std::strerror(err));
  return Status::OK();
}

}  // namespace

Status StateStore::Import(StateSnapshot snapshot) {
  ROCKY_RETURN_IF_ERROR(RequireWritable());
  ROCKY_RETURN_IF_ERROR(internal::NormalizeSnapshot(snapshot));
  Status in_place;
  {
    ROCKY_ASSIGN_OR_RETURN(auto txn, BeginWrite());
    in_place = WriteSnapshotTables(*txn, snapshot, /*replace=*/true);
    if (in_place.ok()) return txn->Commit();
    txn->Abort();
  }
  if (!in_place.IsCorruption()) return in_place;
  return ImportIntoNewFile(snapshot, in_place);
}

Status StateStore::ImportIntoNewFile(const StateSnapshot& snapshot, const Status& damage) {
  // Dropping the old tables needs their pages, and a damaged page refuses: the import then builds a new
  // file beside the state, with the plans that can still be read, and moves it into place. The damaged file
  // is kept (a hard link), never deleted: it is the evidence of what happened.
  const std::string temp = path_ + ".import-" + std::to_string(::getpid());
  ::unlink(temp.c_str());  // a leftover of an import killed half way
  {
    engine::Options options;
    auto fresh = Database::Open(temp, options);
    if (!fresh.ok())
      return fresh.status().WithContext("importing into a new state file beside " + Quoted(path_));
    Status written = [&]() -> Status {
      ROCKY_ASSIGN_OR_RETURN(auto txn, (*fresh)->BeginWrite());
      ROCKY_ASSIGN_OR_RETURN(WritableTable * meta, txn->OpenTable(kMetadata));
      ROCKY_ASSIGN_OR_RETURN(bool stamped, meta->Insert(kSchemaVersionKey, EncodeU32(kSchemaVersion)));
      (void)stamped;
      ROCKY_RETURN_IF_ERROR(WriteSnapshotTables(*txn, snapshot, /*replace=*/false));
      // Saved plans are not part of an export; keep the ones that can still be read.
      if (auto read = db_->BeginRead(); read.ok()) {
        if (auto plans = ReadAll(**read, kPlans); plans.ok() && !plans->empty()) {
          ROCKY_ASSIGN_OR_RETURN(WritableTable * t, txn->OpenTable(kPlans));
          for (const auto& [id, value] : *plans) {
            ROCKY_ASSIGN_OR_RETURN(bool replaced, t->Insert(id, value));
            (void)replaced;
          }
        }
      }
      ROCKY_RETURN_IF_ERROR(txn->Commit());
      return (*fresh)->Close();
    }();
    if (!written.ok()) {
      fresh->reset();
      ::unlink(temp.c_str());
      return written.WithContext("importing into a new state file beside " + Quoted(path_));
    }
  }
  std::string stamp = FormatUtc(std::chrono::system_clock::now());
  stamp.erase(std::remove(stamp.begin(), stamp.end(), ':'), stamp.end());
  const std::string kept = path_ + ".damaged-" + stamp;
  if (::link(path_.c_str(), kept.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return Status::IOError("the state file " + Quoted(path_) + " is damaged (" + damage.message() +
                           ") and keeping it as " + Quoted(kept) +
                           " before replacing it failed: " + std::strerror(err) + "; nothing was changed");
  }
  // One rename: the path holds the damaged file, then the imported one, never nothing.
  if (::rename(temp.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    ::unlink(kept.c_str());
    return Status::IOError("moving the imported state into place at " + Quoted(path_) +
                           " failed: " + std::strerror(err) + "; nothing was changed");
  }
  ROCKY_RETURN_IF_ERROR(SyncFolderOf(path_));
  kept_damaged_file_ = kept;
  // This store still holds the damaged file (now only under `kept`): hold the new one instead.
  db_.reset();
  engine::Options options;
  options.create_if_missing = false;
  auto reopened = Database::Open(path_, options);
  if (!reopened.ok()) {
    return reopened.status().WithContext("the import was written to " + Quoted(path_) +
                                         ", but reopening it failed");
  }
  db_ = std::move(*reopened);
  return Status::OK();
}

}  // namespace rocky::state
