#include "state_commands.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "command_support.h"
#include "output.h"
#include "remote_state_session.h"
#include "rocky/base/strings.h"
#include "rocky/base/temp_file.h"
#include "rocky/base/timestamp.h"
#include "rocky/engine/db.h"
#include "rocky/replication/plan.h"
#include "rocky/state/store.h"
#include "rocky/sync/remote_state_factory.h"
#include "rocky/sync/state_lease.h"
#include "rocky/sync/state_sync.h"

namespace rocky::cli {
namespace {

using state::OpenMode;
using state::StateStore;
using state::Status;
using state::StoreOptions;

Status ValidateTableName(std::string_view table) {
  if (state::IsQualifiedTableName(table)) return Status::OK();
  return Status::InvalidArgument("invalid table name '" + std::string(table) +
                                 "': expected catalog.schema.table (catalog and schema without dots)");
}

StoreOptions ReadOnly() { return StoreOptions{.mode = OpenMode::kReadOnly}; }

// The one answer of every command that reads the local state file when there is none: an error naming the
// path, so that a mistyped --state-path (or the wrong folder) is never shown as an empty state.
int NoStateFile(const CommandContext& ctx, const std::string& path) {
  return Fail(ctx,
              "no state file at " + path +
                  " (nothing was stored there: `rocky run` or `rocky state set` creates it; --state-path "
                  "names another file)");
}

// How much listing output is gathered before it is written out: a listing of any size runs in this much
// memory (plus one page of the state file at a time).
constexpr size_t kListingChunk = size_t{64} << 10;

// The part of a --match pattern before its first wildcard: every matching name starts with it, so only that
// range of the watermarks table is read. The whole pattern when it has no wildcard.
std::string_view LiteralPrefix(std::string_view pattern) {
  return pattern.substr(0, std::min(pattern.find_first_of("*?"), pattern.size()));
}

// Shows the state file at `path`; `remote_location` is where it was fetched from (empty: the local file,
// which must exist; a fetched remote state that is absent shows as empty).
//
// A pattern without wildcards names one table: one point lookup. Otherwise only the range of names starting
// with the pattern's literal prefix is read, record by record, and the JSON is written out in pieces as it
// goes, so neither time nor memory depends on the watermarks the pattern leaves out, and memory does not grow
// with the ones it shows. (A listing cut short by an unreadable page has then already written part of its
// document: it stops without closing it, says why on stderr and exits 1, so no reader takes it as complete.)
int ShowState(const CommandContext& ctx, const std::string& path, const std::string& remote_location) {
  const Invocation& inv = ctx.invocation;
  if (remote_location.empty() && !FileExists(path)) return NoStateFile(ctx, path);
  // A fetched remote state is verified in full before it is shown: only the local file has notices.
  auto store =
      remote_location.empty() ? OpenStateStore(ctx, path, ReadOnly()) : StateStore::Open(path, ReadOnly());
  if (!store.ok()) return Fail(ctx, store.status());
  auto version = (*store)->SchemaVersionOnDisk();
  if (!version.ok()) return Fail(ctx, version.status());
  // --table's exact name or --match's pattern (checked in RunShow); a pattern without wildcards names one
  // table.
  const std::string filter = TableFilterOf(inv).value_or("");
  const std::optional<std::string_view> pattern =
      filter.empty() ? std::nullopt : std::optional<std::string_view>(filter);
  const bool exact = pattern && LiteralPrefix(*pattern).size() == pattern->size();

  // Calls visit for each watermark shown, in table order.
  auto for_each_shown = [&](const std::function<Status(const StateStore::WatermarkView&)>& visit) -> Status {
    if (exact) {
      auto one = (*store)->GetWatermark(*pattern);
      if (!one.ok()) return one.status();
      if (!*one) return Status::OK();
      return visit(StateStore::WatermarkView{(*one)->table, (*one)->last_value, (*one)->updated_at});
    }
    return (*store)->ForEachWatermark(pattern ? LiteralPrefix(*pattern) : std::string_view(),
                                      [&](const StateStore::WatermarkView& w) {
                                        if (pattern && !replication::GlobMatch(*pattern, w.table))
                                          return Status::OK();
                                        return visit(w);
                                      });
  };

  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter json = BeginJson("state");
    json.Key("source").String(remote_location.empty() ? "local" : "remote");
    json.Key("location").String(remote_location.empty() ? path : remote_location);
    json.Key("schema_version_supported").UInt(state::kSchemaVersion).Key("schema_version_on_disk");
    if (*version) {
      json.UInt(**version);
    } else {
      json.Null();
    }
    json.Key("watermarks").BeginArray();
    const Status listed = for_each_shown([&](const StateStore::WatermarkView& w) {
      state::WriteWatermarkJson(json, w.table, w.last_value, w.updated_at);
      if (json.str().size() >= kListingChunk) ctx.out << json.TakeOutput();
      return Status::OK();
    });
    if (!listed.ok()) {
      ctx.out << json.TakeOutput();
      ctx.out.flush();
      return Fail(ctx, listed);
    }
    json.EndArray().EndObject();
    ctx.out << json.TakeOutput() << '\n';
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  const Status listed = for_each_shown([&](const StateStore::WatermarkView& w) {
    rows.push_back({std::string(w.table), std::string(w.last_value), std::string(w.updated_at)});
    return Status::OK();
  });
  if (!listed.ok()) return Fail(ctx, listed);
  if (!remote_location.empty()) ctx.out << "Remote state " << remote_location << ":\n";
  if (rows.empty()) {
    ctx.out << (pattern ? "No watermarks match " + base::Quoted(*pattern) + ".\n"
                        : "No watermarks stored.\n");
    return kExitOk;
  }
  Table table({"table", "last_value", "updated_at"});
  for (auto& row : rows) table.AddRow(std::move(row));
  ctx.out << table.Render();
  return kExitOk;
}

int RunShow(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  if (auto filter = TableFilterOf(inv); !filter.ok()) return Usage(ctx, filter.status().message());
  if (!inv.Has("remote")) return ShowState(ctx, StatePath(inv), "");
  // --remote: what the configured backend holds now, fetched into a temporary file (the local one is left
  // alone), so people on ephemeral pods can see the state every runner shares.
  auto config = LoadConfigIfPresent(inv);
  if (!config.ok()) return Fail(ctx, config.status());
  if (!config->has_value() || (*config)->state.backend == config::StateBackend::kLocal) {
    return Usage(ctx, "--remote needs a rocky.toml whose [state] backend is s3, valkey or tiered");
  }
  auto remote = RemoteStateSession::Connect(ctx, &**config, StatePath(inv));
  if (!remote.ok()) return Fail(ctx, remote.status());
  auto folder = base::TempFolder::Create("remote-state");
  if (!folder.ok()) return Fail(ctx, folder.status());
  const std::string fetched = folder->path() + "/state.redb";
  auto report = (*remote)->Fetch(fetched);
  if (!report.ok()) return Fail(ctx, report.status());
  // Nothing stored yet shows as an empty state (a missing file opens as one).
  return ShowState(ctx, fetched, (*remote)->Location());
}

int RunSet(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  const auto table = inv.Get("table");
  const auto value = inv.Get("value");
  if (!table || !value) return Usage(ctx, "state set needs --table TABLE and --value VALUE");
  // Validate before opening, so a bad argument never creates or touches the state file.
  if (Status s = ValidateTableName(*table); !s.ok()) return Fail(ctx, s);
  if (auto normalized = base::NormalizeWatermarkValue(*value); !normalized.ok())
    return Fail(ctx, normalized.status());

  auto remote = BeginRemoteState(ctx, StatePath(inv));
  if (!remote.ok()) return FailOpen(ctx, remote.status());
  if ((*remote)->busy()) return (*remote)->RefuseBusy();
  auto store = OpenStateStoreForWriting(ctx, StatePath(inv));
  if (!store.ok()) return FailOpen(ctx, store.status());
  auto written = (*store)->SetWatermark(*table, *value);
  if (!written.ok()) return Fail(ctx, written.status());
  store->reset();
  const Status upload = (*remote)->Finish();

  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter json = BeginJson("state set");
    json.Key("watermark");
    state::WriteWatermarkJson(json, written->table, written->last_value, written->updated_at);
    (*remote)->WriteJson(json);
    json.EndObject();
    ctx.out << json.str() << '\n';
  } else {
    ctx.out << "Watermark of " << written->table << " set to " << written->last_value << ".\n";
    if (std::string line = (*remote)->Summary(); !line.empty()) ctx.out << line << '\n';
  }
  return WithUploadStatus(ctx, kExitOk, upload);
}

int RunDelete(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  const auto table = inv.Get("table");
  const bool all = inv.Has("all");
  if (table && all) return Usage(ctx, "give either --table TABLE or --all, not both");
  if (!table && !all) return Usage(ctx, "state delete needs --table TABLE (or --all --yes)");
  if (all && !inv.Has("yes")) {
    return Usage(
        ctx,
        "--all deletes every watermark, so every table gets a full refresh on its next run; add --yes "
        "to confirm");
  }
  const std::string path = StatePath(inv);
  if (table) {
    if (Status s = ValidateTableName(*table); !s.ok()) return Fail(ctx, s);
  }
  // The remote state first: the watermark to delete may exist only there.
  auto remote = BeginRemoteState(ctx, path);
  if (!remote.ok()) return FailOpen(ctx, remote.status());
  if ((*remote)->busy()) return (*remote)->RefuseBusy();
  if (table) {
    // A missing file holds no watermark; opening it for writing would create it.
    if (!FileExists(path)) {
      return Fail(ctx, "no watermark stored for table '" + std::string(*table) + "' (state file '" + path +
                           "' does not exist)");
    }
  }
  uint64_t removed = 0;
  if (FileExists(path)) {
    auto store = OpenStateStoreForWriting(ctx, path);
    if (!store.ok()) return FailOpen(ctx, store.status());
    if (table) {
      if (Status s = (*store)->DeleteWatermark(*table); !s.ok()) return Fail(ctx, s);
      removed = 1;
    } else {
      auto count = (*store)->DeleteAllWatermarks();
      if (!count.ok()) return Fail(ctx, count.status());
      removed = *count;
    }
  }
  const Status upload = (*remote)->Finish();

  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter json = BeginJson("state delete");
    json.Key("deleted").UInt(removed);
    if (table) json.Key("table").String(*table);
    (*remote)->WriteJson(json);
    json.EndObject();
    ctx.out << json.str() << '\n';
  } else {
    if (table) {
      ctx.out << "Deleted the watermark of " << *table << "; its next run will be a full refresh.\n";
    } else {
      ctx.out << "Deleted " << removed << " watermark" << (removed == 1 ? "" : "s")
              << "; every table's next run will be a full refresh.\n";
    }
    if (std::string line = (*remote)->Summary(); !line.empty()) ctx.out << line << '\n';
  }
  return WithUploadStatus(ctx, kExitOk, upload);
}

int RunHistory(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  const auto table = inv.Get("table");
  if (!table) return Usage(ctx, "state history needs --table TABLE");
  if (Status s = ValidateTableName(*table); !s.ok()) return Fail(ctx, s);
  if (!FileExists(StatePath(inv))) return NoStateFile(ctx, StatePath(inv));
  auto store = OpenStateStore(ctx, StatePath(inv), ReadOnly());
  if (!store.ok()) return Fail(ctx, store.status());
  auto entries = (*store)->CheckHistory(*table);
  if (!entries.ok()) return Fail(ctx, entries.status());

  // What the anomaly check compares each count with: the mean of the counts BEFORE it (the current one is
  // never part of its own baseline). The top-level moving_average is what the next run will be judged by.
  std::vector<std::optional<double>> baselines;
  double sum = 0;
  for (size_t i = 0; i < entries->size(); ++i) {
    baselines.push_back(i == 0 ? std::nullopt : std::optional<double>(sum / static_cast<double>(i)));
    sum += static_cast<double>((*entries)[i].count);
  }
  const std::optional<double> next_baseline =
      entries->empty() ? std::nullopt : std::optional<double>(sum / static_cast<double>(entries->size()));

  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter json = BeginJson("state history");
    json.Key("table").String(*table).Key("entries").BeginArray();
    for (size_t i = 0; i < entries->size(); ++i) {
      json.BeginObject()
          .Key("count")
          .UInt((*entries)[i].count)
          .Key("timestamp")
          .String((*entries)[i].timestamp)
          .Key("baseline_avg");
      if (baselines[i]) {
        json.Double(*baselines[i]);
      } else {
        json.Null();
      }
      json.EndObject();
    }
    json.EndArray().Key("moving_average");
    if (next_baseline) {
      json.Double(*next_baseline);
    } else {
      json.Null();
    }
    json.EndObject();
    ctx.out << json.str() << '\n';
    return kExitOk;
  }
  if (entries->empty()) {
    ctx.out << "No row-count history stored for " << *table << ".\n";
    return kExitOk;
  }
  auto fixed = [](double v) {
    std::ostringstream text;
    text.setf(std::ios::fixed);
    text.precision(1);
    text << v;
    return text.str();
  };
  Table out({"timestamp", "count", "baseline_avg", "deviation"});
  out.SetAlign(1, Table::Align::kRight);
  out.SetAlign(2, Table::Align::kRight);
  out.SetAlign(3, Table::Align::kRight);
  for (size_t i = 0; i < entries->size(); ++i) {
    const double count = static_cast<double>((*entries)[i].count);
    std::string deviation = "-";
    if (baselines[i] && *baselines[i] > 0) {
      const double pct = (count - *baselines[i]) / *baselines[i] * 100.0;
      deviation = (pct >= 0 ? "+" : "") + fixed(pct) + "%";
    }
    out.AddRow({(*entries)[i].timestamp, std::to_string((*entries)[i].count),
                baselines[i] ? fixed(*baselines[i]) : "-", deviation});
  }
  ctx.out << out.Render();
  ctx.out << "Moving average for the next run: " << fixed(*next_baseline) << " over " << entries->size()
          << (entries->size() == 1 ? " run" : " runs") << ".\n";
  return kExitOk;
}

int RunExport(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  const std::string path = StatePath(inv);
  if (!FileExists(path)) return NoStateFile(ctx, path);
  auto store = OpenStateStore(ctx, path, ReadOnly());
  if (!store.ok()) return Fail(ctx, store.status());
  const bool salvage = inv.Has("salvage");
  state::StateSnapshot snapshot;
  std::vector<std::string> unreadable;
  uint64_t entries_lost = 0;
  if (salvage) {
    auto report = (*store)->ExportSalvage();
    if (!report.ok()) return Fail(ctx, report.status());
    snapshot = std::move(report->snapshot);
    unreadable = std::move(report->unreadable);
    entries_lost = report->entries_lost;
  } else {
    auto exported = (*store)->Export();
    if (!exported.ok()) {
      return Fail(
          ctx, exported.status().message() +
                   " (nothing was written; `rocky state export --salvage FILE` writes every entry that can "
                   "still be read and lists the rest)");
    }
    snapshot = std::move(*exported);
  }
  const std::string json = state::SnapshotToJson(snapshot) + "\n";
  const bool to_stdout = inv.positionals.empty() || inv.positionals[0] == "-";
  // What could not be salvaged goes to stderr whatever the output, one line each.
  for (const std::string& line : unreadable) ctx.err << "rocky: not salvaged: " << line << '\n';
  if (to_stdout) {
    ctx.out << json;
    return unreadable.empty() ? kExitOk : kExitFailure;
  }
  const std::string& file = inv.positionals[0];
  // Replaced atomically and created 0600: an export holds the whole state.
  if (Status s = WriteFileAtomically(file, json, "export file"); !s.ok()) return Fail(ctx, s);
  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter result = BeginJson("state export");
    result.Key("file")
        .String(file)
        .Key("watermarks")
        .UInt(snapshot.watermarks.size())
        .Key("check_history")
        .UInt(snapshot.check_history.size())
        .Key("run_history")
        .UInt(snapshot.run_history.size());
    if (salvage) {
      result.Key("salvage")
          .BeginObject()
          .Key("entries_lost")
          .UInt(entries_lost)
          .Key("unreadable")
          .BeginArray();
      for (const std::string& line : unreadable) result.String(line);
      result.EndArray().EndObject();
    }
    result.EndObject();
    ctx.out << result.str() << '\n';
  } else {
    ctx.out << "Exported " << snapshot.watermarks.size() << " watermarks, " << snapshot.check_history.size()
            << " check histories and " << snapshot.run_history.size() << " runs to " << file << ".\n";
    if (salvage) {
      ctx.out << (unreadable.empty()
                      ? "Salvage: every entry was readable.\n"
                      : "Salvage: " + std::to_string(entries_lost) +
                            " entries could not be read (listed on stderr); import the file to "
                            "start over from what was saved.\n");
    }
  }
  // A salvage that lost entries wrote what it could, and says with its exit code that it is not everything.
  return unreadable.empty() ? kExitOk : kExitFailure;
}

int RunImport(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  const std::string& file = inv.positionals.at(0);
  // Read with read(2): an I/O error reading the file is reported as one, never as "invalid JSON".
  auto text = ReadWholeFile(file, "import file");
  if (!text.ok()) return Fail(ctx, text.status());
  // Everything is validated before the state file is opened; the import itself is one transaction.
  auto snapshot = state::SnapshotFromJson(*text);
  if (!snapshot.ok()) {
    return Fail(ctx, snapshot.status().WithContext(file == "-" ? "import file (stdin)"
                                                               : "import file '" + file + "'"));
  }
  // Downloaded first even though the import replaces it: the upload is conditional on the remote copy this
  // command saw, so an import never silently overwrites a state another run wrote meanwhile.
  auto remote = BeginRemoteState(ctx, StatePath(inv));
  if (!remote.ok()) return FailOpen(ctx, remote.status());
  if ((*remote)->busy()) return (*remote)->RefuseBusy();
  auto store = OpenStateStoreForWriting(ctx, StatePath(inv));
  if (!store.ok()) return FailOpen(ctx, store.status());
  if (!inv.Has("yes")) {
    // Like `delete --all`: replacing a state that holds something needs a confirmation.
    auto current = (*store)->Export();
    if (!current.ok()) return Fail(ctx, current.status());
    if (!current->watermarks.empty() || !current->check_history.empty() || !current->run_history.empty()) {
      return Usage(ctx, "the state file " + StatePath(inv) + " is not empty (" +
                            std::to_string(current->watermarks.size()) + " watermarks, " +
                            std::to_string(current->check_history.size()) + " check histories, " +
                            std::to_string(current->run_history.size()) +
                            " runs): the import replaces all of it; add --yes to confirm");
    }
  }
  const size_t imported_watermarks = snapshot->watermarks.size();
  const size_t imported_checks = snapshot->check_history.size();
  const size_t imported_runs = snapshot->run_history.size();
  if (Status s = (*store)->Import(std::move(*snapshot)); !s.ok()) return Fail(ctx, s);
  const std::string kept = (*store)->kept_damaged_file();
  store->reset();
  const Status upload = (*remote)->Finish();

  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter json = BeginJson("state import");
    json.Key("watermarks")
        .UInt(imported_watermarks)
        .Key("check_history")
        .UInt(imported_checks)
        .Key("run_history")
        .UInt(imported_runs);
    json.Key("kept_damaged_file");
    if (kept.empty()) {
      json.Null();
    } else {
      json.String(kept);
    }
    (*remote)->WriteJson(json);
    json.EndObject();
    ctx.out << json.str() << '\n';
  } else {
    ctx.out << "Imported " << imported_watermarks << " watermarks, " << imported_checks
            << " check histories and " << imported_runs << " runs; the previous state was replaced.\n";
    if (!kept.empty()) {
      ctx.out << "The previous state file was damaged: the import went to a new file, and the damaged one "
                 "was kept as "
              << kept << " (delete it once you no longer need it).\n";
    }
    if (std::string line = (*remote)->Summary(); !line.empty()) ctx.out << line << '\n';
  }
  return WithUploadStatus(ctx, kExitOk, upload);
}

uint64_t FileSizeOr0(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

int RunCompact(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  const std::string path = StatePath(inv);
  if (!FileExists(path)) return NoStateFile(ctx, path);
  const uint64_t before = FileSizeOr0(path);
  // Local only: the remote copy is a compact snapshot already (state_envelope.h), and compaction changes no
  // entry, so there is nothing to download or upload.
  auto store = OpenStateStoreForWriting(ctx, path);
  if (!store.ok()) return FailOpen(ctx, store.status());
  if (Status s = (*store)->Compact(); !s.ok())
    return Fail(ctx, s.WithContext("compacting state file '" + path + "'"));
  store->reset();
  const uint64_t after = FileSizeOr0(path);
  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter json = BeginJson("state compact");
    json.Key("path").String(path).Key("bytes_before").UInt(before).Key("bytes_after").UInt(after).EndObject();
    ctx.out << json.str() << '\n';
  } else {
    Table table({"state file", "before", "after"});
    table.SetAlign(1, Table::Align::kRight);
    table.SetAlign(2, Table::Align::kRight);
    table.AddRow({path, std::to_string(before) + " B", std::to_string(after) + " B"});
    ctx.out << table.Render();
  }
  return kExitOk;
}

int RunPush(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  if (!inv.Has("force")) {
    return Usage(
        ctx,
        "state push replaces the remote state with the local file, whatever the remote holds (another "
        "run's newer state included); add --force to confirm");
  }
  const std::string path = StatePath(inv);
  auto config = LoadConfigIfPresent(inv);
  if (!config.ok()) return Fail(ctx, config.status());
  if (!config->has_value() || (*config)->state.backend == config::StateBackend::kLocal) {
    return Usage(ctx, "state push needs a rocky.toml whose [state] backend is s3, valkey or tiered");
  }
  if (!FileExists(path)) return NoStateFile(ctx, path);
  {
    // Only a state that opens and passes the integrity check replaces the remote one.
    auto store = OpenStateStore(ctx, path, ReadOnly());
    if (!store.ok()) return Fail(ctx, store.status());
    if (engine::Database* db = (*store)->database(); db != nullptr) {
      auto integrity = db->CheckIntegrity();
      if (!integrity.ok()) {
        return Fail(ctx, integrity.status().WithContext("not pushing the local state file '" + path +
                                                        "': its integrity check failed"));
      }
    }
  }
  auto remote = RemoteStateSession::Connect(ctx, &**config, path);
  if (!remote.ok()) return Fail(ctx, remote.status());
  // The lease, as for every command that changes the remote state: a push never lands under a running run.
  if (Status s = (*remote)->TakeLease(); !s.ok()) return Fail(ctx, s);
  if ((*remote)->busy()) return (*remote)->RefuseBusy();
  const Status pushed = (*remote)->ForcePush();
  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter json = BeginJson("state push");
    json.Key("path").String(path);
    (*remote)->WriteJson(json);
    json.EndObject();
    ctx.out << json.str() << '\n';
  } else if (pushed.ok()) {
    ctx.out << "Replaced the remote state " << (*remote)->Location() << " with " << path << ".\n";
  }
  return WithUploadStatus(ctx, kExitOk, pushed);
}

// `rocky state unlock`: the lease as the server judges it, and with --yes, broken (conditionally on it still
// being the lease that was read, so a renewal in between is never undone by mistake).
int RunUnlock(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  const bool json_out = FormatOf(inv) == OutputFormat::kJson;
  auto config = LoadConfigIfPresent(inv);
  if (!config.ok()) return Fail(ctx, config.status());
  if (!config->has_value() || (*config)->state.backend == config::StateBackend::kLocal) {
    // The local state's lock is the state file's writer lock: the operating system drops it with its process,
    // so it can never be stale and there is nothing to break.
    const std::string path = StatePath(inv);
    const std::optional<int64_t> pid = StateFileWriterPid(path);
    if (json_out) {
      JsonWriter json = BeginJson("state unlock");
      json.Key("backend").String("local").Key("location").String(path);
      json.Key("state").String(pid ? "held" : "free").Key("holder");
      if (pid) {
        json.BeginObject().Key("pid").Int(*pid).EndObject();
      } else {
        json.Null();
      }
      json.Key("broken").Bool(false).EndObject();
      ctx.out << json.str() << '\n';
    } else {
      ctx.out << "The state is local (" << path
              << "): its lock is the state file's writer lock, which the operating system releases when the "
                 "process holding it ends, so it is never stale and there is nothing to break; "
              << (pid ? "process " + std::to_string(*pid) + " holds it now." : "nobody holds it now.")
              << '\n';
    }
    return kExitOk;
  }
  const config::StateConfig& state_config = (*config)->state;
  auto backend = sync::OpenRemoteStateBackend(state_config, sync::ProcessEnvironment());
  if (!backend.ok()) return Fail(ctx, backend.status().WithContext("[state] in " + (*config)->source_path));
  auto store = (*backend)->OpenLease();
  if (!store.ok()) return Fail(ctx, store.status());
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(state_config.transfer_timeout_seconds);
  auto seen = (*store)->Inspect(deadline);
  if (!seen.ok()) return Fail(ctx, seen.status().WithContext("reading the lease " + (*store)->Location()));
  const sync::LeaseInfo& info = *seen;
  const std::string location = ForOutput((*store)->Location());
  const bool present = info.state != sync::LeaseInfo::State::kFree;
  std::string whose = info.holder ? DescribeLeaseHolder(*info.holder)
                                  : "a holder this rocky cannot read (" + info.unreadable + ")";
  std::string status_text;
  if (info.state == sync::LeaseInfo::State::kHeld && info.unreadable.empty()) {
    status_text = "it was still live: it would have expired at " +
                  (info.expires_at.empty() ? std::string("?") : info.expires_at) + " (in " +
                  std::to_string((info.expires_in.count() + 999) / 1000) +
                  " s by the server's clock); if that runner is still going, its next renewal fails and it "
                  "stops before its next table (or, ending before that renewal, reports the lease lost)";
  } else if (info.state == sync::LeaseInfo::State::kExpired) {
    status_text = "it had expired" + (info.expires_at.empty() ? std::string() : " at " + info.expires_at) +
                  " (its holder did not renew it: it crashed or was cut off)";
  } else if (present) {
    status_text = "it is not a rocky lease";
  }
  if (!inv.Has("yes")) {
    if (!present) {
      return Usage(ctx, "there is no lease on " + location + " to break" +
                            (info.last_expired && info.holder
                                 ? " (the last one, held by " + DescribeLeaseHolder(*info.holder) +
                                       ", expired without being released; --yes clears its record)"
                                 : std::string()));
    }
    return Usage(ctx, "the lease on " + location + " is held by " + whose + "; " + status_text +
                          ". Breaking it lets another runner start; add --yes to confirm");
  }
  bool broken = false;
  if (present || info.last_expired) {
    Status s = (*store)->Break(info, deadline);
    if (!s.ok()) return Fail(ctx, s);
    broken = present;
  }
  if (json_out) {
    JsonWriter json = BeginJson("state unlock");
    json.Key("backend").String((*backend)->Kind()).Key("location").String(location);
    json.Key("state").String(sync::LeaseStateName(info.state));
    json.Key("holder");
    WriteLeaseRecordJson(json, info.holder);
    json.Key("expires_at");
    if (present && !info.expires_at.empty()) {
      json.String(info.expires_at);
    } else {
      json.Null();
    }
    json.Key("broken").Bool(broken).EndObject();
    ctx.out << json.str() << '\n';
  } else if (!present) {
    ctx.out << "No lease on " << location << ": nothing to break";
    if (info.last_expired && info.holder) {
      ctx.out << " (cleared the record of the last one, held by "
              << ForOutput(DescribeLeaseHolder(*info.holder)) << ", which expired without being released)";
    }
    ctx.out << ".\n";
  } else {
    ctx.out << "Broke the lease on " << location << " held by " << ForOutput(whose) << ": "
            << ForOutput(status_text) << ".\n";
  }
  return kExitOk;
}

FlagSpec ShowTableFlag() { return TableFlag("Only the watermark of TABLE (catalog.schema.table, exactly)"); }

FlagSpec ShowMatchFlag() {
  return MatchFlag(
      "Only tables matching PATTERN (catalog.schema.table; * matches any run of characters, ? one)");
}

FlagSpec RemoteFlag() {
  return FlagSpec{.name = "remote",
                  .help = "Show the remote state ([state] backend in rocky.toml) instead of the local file"};
}

}  // namespace

CommandSpec StateCommand() {
  const std::string show_description =
      "Show every stored watermark: the table, the last replicated value and when it was written.\n"
      "Opens the state file read-only; a missing state file shows no watermarks. With --remote, shows\n"
      "what the configured remote backend holds instead (the local file is not touched).";
  CommandSpec show{
      .name = "show",
      .summary = "Show stored watermarks (the default)",
      .description = show_description,
      .flags = {ShowTableFlag(), ShowMatchFlag(), RemoteFlag()},
      .handler = ValidatingConfigIfPresent(RunShow),
  };
  CommandSpec set{
      .name = "set",
      .summary = "Set or move a table's watermark",
      .description =
          "Set or move the watermark of a table; the next run copies the rows from VALUE on.\n"
          "VALUE is a timestamp, RFC 3339 with Z or an offset (2025-03-15T14:30:00Z), stored in UTC, or an\n"
          "integer for a table whose cursor_type is \"integer\".",
      .flags = {TableFlag("catalog.schema.table"),
                FlagSpec{.name = "value",
                         .value_name = "VALUE",
                         .help = "The new last_value (RFC 3339 timestamp, or an integer)"},
                LeaseWaitFlag()},
      .handler = ValidatingConfigIfPresent(CheckingWait(RunSet)),
  };
  CommandSpec del{
      .name = "delete",
      .summary = "Delete a watermark (the table gets a full refresh)",
      .description =
          "Delete a table's watermark, so its next run copies every row (a full refresh).\n"
          "--all --yes deletes every watermark.",
      .flags = {TableFlag("catalog.schema.table"),
                FlagSpec{.name = "all", .help = "Delete every watermark (needs --yes)"},
                FlagSpec{.name = "yes", .help = "Confirm --all"}, LeaseWaitFlag()},
      .handler = ValidatingConfigIfPresent(CheckingWait(RunDelete)),
  };
  CommandSpec history{
      .name = "history",
      .summary = "Show a table's row-count history and moving average",
      .flags = {TableFlag("catalog.schema.table")},
      .handler = ValidatingConfigIfPresent(RunHistory),
  };
  CommandSpec export_command{
      .name = "export",
      .summary = "Write the whole state as JSON",
      .description =
          "Write the whole state (watermarks, check history, run history, schema version) as JSON.\n"
          "FILE is replaced atomically and created 0600. With --salvage (for a damaged state file), writes\n"
          "every entry that can still be read, lists what could not be on stderr, and exits 1 when\n"
          "anything was lost.",
      .flags = {FlagSpec{.name = "salvage", .help = "Write what can be read of a damaged state file"}},
      .positionals = {PositionalSpec{
          .name = "FILE", .help = "Where to write (default: stdout)", .required = false}},
      .handler = ValidatingConfigIfPresent(RunExport),
  };
  CommandSpec import_command{
      .name = "import",
      .summary = "Replace the whole state with an export",
      .description =
          "Replace the whole state with a file written by `rocky state export`. Everything is validated\n"
          "first (unknown fields are refused; invalid JSON is reported with its line and column), then\n"
          "written in one transaction. A state file that already holds something is replaced only with "
          "--yes.",
      .flags = {FlagSpec{.name = "yes", .help = "Confirm replacing a state that is not empty"},
                LeaseWaitFlag()},
      .positionals = {PositionalSpec{.name = "FILE", .help = "An export (- for stdin)"}},
      .handler = ValidatingConfigIfPresent(CheckingWait(RunImport)),
  };
  CommandSpec compact{
      .name = "compact",
      .summary = "Shrink the state file to what it holds",
      .description =
          "Give the state file's free space back to the filesystem (after `state delete --all`, say): pages\n"
          "are moved from the end of the file into free space and the file is truncated. Prints the size\n"
          "before and after. Changes no entry; only the local file.",
      .flags = {LeaseWaitFlag()},
      .handler = ValidatingConfigIfPresent(CheckingWait(RunCompact)),
  };
  CommandSpec push{
      .name = "push",
      .summary = "Replace the remote state with the local file (--force)",
      .description =
          "Upload the local state file over the remote state whatever the remote holds: the way out when\n"
          "the remote object is corrupt and every run skips its upload (rocky doctor names it). The local\n"
          "file must pass its integrity check. Needs --force, and a [state] backend other than local.\n"
          "Takes the remote state's lease first (exit 75 while another runner holds it; --wait).",
      .flags = {FlagSpec{.name = "force", .help = "Confirm replacing the remote state"}, LeaseWaitFlag()},
      .handler = ValidatingConfigIfPresent(CheckingWait(RunPush)),
  };
  CommandSpec unlock{
      .name = "unlock",
      .summary = "Break the remote state's lease (--yes), saying whose it was",
      .description =
          "Show the lease on the remote state (free, held by whom, expired, by the server's clock) and,\n"
          "with --yes, break it: the way out when a runner that held it is gone and you will not wait\n"
          "for the lease to expire (lease_seconds). The break is conditional on the lease still being\n"
          "the one shown. A live holder's next renewal then fails, and it stops before its next table\n"
          "without uploading; one that ends before renewing again uploads as usual (conditionally on\n"
          "the remote state it downloaded) and reports the lease lost. Without --yes, exit 2 naming the\n"
          "holder. A local state has no lease: its lock is the state file's writer lock, which the\n"
          "operating system releases with its process (shown, never broken).",
      .flags = {FlagSpec{.name = "yes", .help = "Confirm breaking the lease"}},
      .handler = ValidatingConfigIfPresent(RunUnlock),
  };
  return CommandSpec{
      .name = "state",
      .summary = "Show and edit the replication state (watermarks)",
      .description =
          "Show and edit the replication state: the watermarks that let each run copy only what changed.\n"
          "Without a command, shows every watermark.",
      .flags = {ShowTableFlag(), ShowMatchFlag(), RemoteFlag()},
      .subcommands = {show, set, del, history, export_command, import_command, compact, push, unlock},
      .handler = ValidatingConfigIfPresent(RunShow),
  };
}

}  // namespace rocky::cli
