#include "state_commands.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
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
#include "rocky/replication/plan.h"
#include "rocky/state/store.h"
#include "rocky/state/timestamp.h"

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
StoreOptions ReadWrite() { return StoreOptions{.mode = OpenMode::kReadWrite}; }

// Shows the state file at `path`; `remote_location` is where it was fetched from (empty: the local file).
int ShowState(const CommandContext& ctx, const std::string& path, const std::string& remote_location) {
  const Invocation& inv = ctx.invocation;
  auto store = StateStore::Open(path, ReadOnly());
  if (!store.ok()) return Fail(ctx, store.status());
  auto version = (*store)->SchemaVersionOnDisk();
  if (!version.ok()) return Fail(ctx, version.status());
  auto watermarks = (*store)->ListWatermarks();
  if (!watermarks.ok()) return Fail(ctx, watermarks.status());

  std::vector<state::Watermark> shown;
  const std::optional<std::string_view> pattern = inv.Get("table");
  for (state::Watermark& w : *watermarks) {
    if (!pattern || replication::GlobMatch(*pattern, w.table)) shown.push_back(std::move(w));
  }

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
    for (const state::Watermark& w : shown) {
      json.BeginObject()
          .Key("table").String(w.table)
          .Key("last_value").String(w.last_value)
          .Key("updated_at").String(w.updated_at)
          .EndObject();
    }
    json.EndArray().EndObject();
    ctx.out << json.str() << '\n';
    return kExitOk;
  }
  if (!remote_location.empty()) ctx.out << "Remote state " << remote_location << ":\n";
  if (shown.empty()) {
    ctx.out << (pattern ? "No watermarks match '" + std::string(*pattern) + "'.\n" : "No watermarks stored.\n");
    return kExitOk;
  }
  Table table({"table", "last_value", "updated_at"});
  for (const state::Watermark& w : shown) table.AddRow({w.table, w.last_value, w.updated_at});
  ctx.out << table.Render();
  return kExitOk;
}

// Removes a folder and what is in it when the scope ends.
struct TempFolder {
  std::string path;
  ~TempFolder() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

int RunShow(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
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
  std::string tmpl = (std::filesystem::temp_directory_path() / "rocky-remote-state-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return Fail(ctx, "cannot create a temporary folder: " + std::string(std::strerror(errno)));
  TempFolder folder{tmpl};
  const std::string fetched = folder.path + "/state.redb";
  auto report = (*remote)->Fetch(fetched);
  if (!report.ok()) return Fail(ctx, report.status());
  // Nothing stored yet shows as an empty state (a missing file opens as one).
  return ShowState(ctx, fetched, (*remote)->Location());
}

int RunSet(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  const auto table = inv.Get("table");
  const auto value = inv.Get("value");
  if (!table || !value) return Usage(ctx, "state set needs --table TABLE and --value TIMESTAMP");
  // Validate before opening, so a bad argument never creates or touches the state file.
  if (Status s = ValidateTableName(*table); !s.ok()) return Fail(ctx, s);
  if (auto normalized = state::NormalizeWatermarkValue(*value); !normalized.ok()) return Fail(ctx, normalized.status());

  auto remote = BeginRemoteState(ctx, StatePath(inv));
  if (!remote.ok()) return Fail(ctx, remote.status());
  auto store = StateStore::Open(StatePath(inv), ReadWrite());
  if (!store.ok()) return Fail(ctx, store.status());
  auto written = (*store)->SetWatermark(*table, *value);
  if (!written.ok()) return Fail(ctx, written.status());
  store->reset();
  const Status upload = (*remote)->Finish();

  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter json = BeginJson("state set");
    json.Key("watermark")
        .BeginObject()
        .Key("table").String(written->table)
        .Key("last_value").String(written->last_value)
        .Key("updated_at").String(written->updated_at)
        .EndObject();
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
    return Usage(ctx,
                 "--all deletes every watermark, so every table gets a full refresh on its next run; add --yes "
                 "to confirm");
  }
  const std::string path = StatePath(inv);
  if (table) {
    if (Status s = ValidateTableName(*table); !s.ok()) return Fail(ctx, s);
  }
  // The remote state first: the watermark to delete may exist only there.
  auto remote = BeginRemoteState(ctx, path);
  if (!remote.ok()) return Fail(ctx, remote.status());
  if (table) {
    // A missing file holds no watermark; opening it for writing would create it.
    if (!FileExists(path)) {
      return Fail(ctx, "no watermark stored for table '" + std::string(*table) + "' (state file '" + path +
                           "' does not exist)");
    }
  }
  uint64_t removed = 0;
  if (FileExists(path)) {
    auto store = StateStore::Open(path, ReadWrite());
    if (!store.ok()) return Fail(ctx, store.status());
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
  auto store = StateStore::Open(StatePath(inv), ReadOnly());
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
          .Key("count").UInt((*entries)[i].count)
          .Key("timestamp").String((*entries)[i].timestamp)
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
  auto store = StateStore::Open(StatePath(inv), ReadOnly());
  if (!store.ok()) return Fail(ctx, store.status());
  auto snapshot = (*store)->Export();
  if (!snapshot.ok()) return Fail(ctx, snapshot.status());
  const std::string json = state::SnapshotToJson(*snapshot) + "\n";
  if (inv.positionals.empty() || inv.positionals[0] == "-") {
    ctx.out << json;
    return kExitOk;
  }
  const std::string& file = inv.positionals[0];
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) return Fail(ctx, "cannot write export file '" + file + "': " + std::strerror(errno));
  out << json;
  out.close();
  if (!out) return Fail(ctx, "cannot write export file '" + file + "'");
  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter result = BeginJson("state export");
    result.Key("file").String(file).Key("watermarks").UInt(snapshot->watermarks.size()).EndObject();
    ctx.out << result.str() << '\n';
  } else {
    ctx.out << "Exported " << snapshot->watermarks.size() << " watermarks to " << file << ".\n";
  }
  return kExitOk;
}

int RunImport(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  const std::string& file = inv.positionals.at(0);
  std::string text;
  if (file == "-") {
    std::ostringstream in;
    in << std::cin.rdbuf();
    text = in.str();
  } else {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) return Fail(ctx, "import file '" + file + "' is a directory");
    std::ifstream in(file, std::ios::binary);
    if (!in) return Fail(ctx, "cannot read import file '" + file + "': " + std::strerror(errno));
    std::ostringstream contents;
    contents << in.rdbuf();
    text = contents.str();
  }
  // Everything is validated before the state file is opened; the import itself is one transaction.
  auto snapshot = state::SnapshotFromJson(text);
  if (!snapshot.ok()) return Fail(ctx, snapshot.status().WithContext("import file '" + file + "'"));
  // Downloaded first even though the import replaces it: the upload is conditional on the remote copy this
  // command saw, so an import never silently overwrites a state another run wrote meanwhile.
  auto remote = BeginRemoteState(ctx, StatePath(inv));
  if (!remote.ok()) return Fail(ctx, remote.status());
  auto store = StateStore::Open(StatePath(inv), ReadWrite());
  if (!store.ok()) return Fail(ctx, store.status());
  if (Status s = (*store)->Import(*snapshot); !s.ok()) return Fail(ctx, s);
  store->reset();
  const Status upload = (*remote)->Finish();

  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter json = BeginJson("state import");
    json.Key("watermarks").UInt(snapshot->watermarks.size())
        .Key("check_history").UInt(snapshot->check_history.size())
        .Key("run_history").UInt(snapshot->run_history.size());
    (*remote)->WriteJson(json);
    json.EndObject();
    ctx.out << json.str() << '\n';
  } else {
    ctx.out << "Imported " << snapshot->watermarks.size() << " watermarks, " << snapshot->check_history.size()
            << " check histories and " << snapshot->run_history.size() << " runs; the previous state was replaced.\n";
    if (std::string line = (*remote)->Summary(); !line.empty()) ctx.out << line << '\n';
  }
  return WithUploadStatus(ctx, kExitOk, upload);
}

FlagSpec PatternFlag() {
  return FlagSpec{.name = "table",
                  .value_name = "PATTERN",
                  .help = "Only tables matching PATTERN (catalog.schema.table; * matches anything)"};
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
      .flags = {PatternFlag(), RemoteFlag()},
      .handler = ValidatingConfigIfPresent(RunShow),
  };
  CommandSpec set{
      .name = "set",
      .summary = "Set or move a table's watermark",
      .description =
          "Set or move the watermark of a table; the next run copies rows newer than TIMESTAMP.\n"
          "TIMESTAMP is RFC 3339 with Z or an offset (2025-03-15T14:30:00Z); it is stored in UTC.",
      .flags = {FlagSpec{.name = "table", .value_name = "TABLE", .help = "catalog.schema.table"},
                FlagSpec{.name = "value", .value_name = "TIMESTAMP", .help = "The new last_value (RFC 3339)"}},
      .handler = ValidatingConfigIfPresent(RunSet),
  };
  CommandSpec del{
      .name = "delete",
      .summary = "Delete a watermark (the table gets a full refresh)",
      .description =
          "Delete a table's watermark, so its next run copies every row (a full refresh).\n"
          "--all --yes deletes every watermark.",
      .flags = {FlagSpec{.name = "table", .value_name = "TABLE", .help = "catalog.schema.table"},
                FlagSpec{.name = "all", .help = "Delete every watermark (needs --yes)"},
                FlagSpec{.name = "yes", .help = "Confirm --all"}},
      .handler = ValidatingConfigIfPresent(RunDelete),
  };
  CommandSpec history{
      .name = "history",
      .summary = "Show a table's row-count history and moving average",
      .flags = {FlagSpec{.name = "table", .value_name = "TABLE", .help = "catalog.schema.table"}},
      .handler = ValidatingConfigIfPresent(RunHistory),
  };
  CommandSpec export_command{
      .name = "export",
      .summary = "Write the whole state as JSON",
      .description = "Write the whole state (watermarks, check history, run history, schema version) as JSON.",
      .positionals = {PositionalSpec{.name = "FILE", .help = "Where to write (default: stdout)", .required = false}},
      .handler = ValidatingConfigIfPresent(RunExport),
  };
  CommandSpec import_command{
      .name = "import",
      .summary = "Replace the whole state with an export",
      .description =
          "Replace the whole state with a file written by `rocky state export`. Everything is validated\n"
          "first and written in one transaction: on any error the state file is unchanged.",
      .positionals = {PositionalSpec{.name = "FILE", .help = "An export (- for stdin)"}},
      .handler = ValidatingConfigIfPresent(RunImport),
  };
  return CommandSpec{
      .name = "state",
      .summary = "Show and edit the replication state (watermarks)",
      .description =
          "Show and edit the replication state: the watermarks that let each run copy only what changed.\n"
          "Without a command, shows every watermark.",
      .flags = {PatternFlag(), RemoteFlag()},
      .subcommands = {show, set, del, history, export_command, import_command},
      .handler = ValidatingConfigIfPresent(RunShow),
  };
}

}  // namespace rocky::cli
