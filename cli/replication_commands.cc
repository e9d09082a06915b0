#include "replication_commands.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>

#include "command_support.h"
#include "output.h"
#include "remote_state_session.h"
#include "rocky/replication/plan.h"
#include "rocky/replication/runner.h"
#include "rocky/state/store.h"
#include "rocky/warehouse/open.h"
#include "rocky/warehouse/postgres_warehouse.h"
#include "rocky/warehouse/sample_warehouse.h"
#include "rocky/warehouse/sqlite_warehouse.h"
#include "stop_signals.h"

namespace rocky::cli {
namespace {

using base::Result;
using base::Status;
using replication::Plan;
using replication::RunReport;
using replication::TableOutcome;

// What plan, apply and run all need open: the configuration, the remote state (downloaded into the local file
// first when [state] names a remote backend), the warehouse and the state file (for writing: plans are saved
// into it, runs advance its watermarks).
struct Session {
  config::Config config;
  std::unique_ptr<RemoteStateSession> remote;
  // One per adapter pair the pipelines use, in pipeline order; `warehouses` maps each pipeline to its own.
  std::vector<std::unique_ptr<warehouse::Warehouse>> opened;
  replication::PipelineWarehouses warehouses;
  std::unique_ptr<state::StateStore> store;
};

// The configuration, the remote state (lease and download) and the state file, without the warehouses
// (OpenWarehouses): apply refuses a stale plan in between, before a warehouse is opened (opening a SQLite
// warehouse creates its folder). The session is returned with remote->busy() (and nothing else open) when
// another runner holds the lease.
Result<Session> OpenSession(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  Session session;
  ROCKY_ASSIGN_OR_RETURN(session.config, LoadConfig(inv));
  // Before the store opens it: the lease, then the download, which replaces the local file.
  ROCKY_ASSIGN_OR_RETURN(session.remote, RemoteStateSession::Begin(ctx, &session.config, StatePath(inv)));
  if (session.remote->busy()) return session;  // another runner holds the lease: the caller refuses
  ROCKY_ASSIGN_OR_RETURN(session.store, OpenStateStoreForWriting(ctx, StatePath(inv)));
  return session;
}

// Opens the warehouses of an open session. Each adapter pair the pipelines name is opened once (all of them
// before anything runs: a server that cannot be reached stops the command, as with one pair); without
// pipelines, the configured adapter.
Status OpenWarehouses(Session& session) {
  const config::Config& config = session.config;
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const config::PipelineConfig& p : config.pipelines) {
    const std::pair<std::string, std::string> pair{p.source_adapter, p.target_adapter};
    auto at = std::find(pairs.begin(), pairs.end(), pair);
    if (at == pairs.end()) {
      const config::AdapterConfig* source = config::FindAdapter(config, pair.first);
      const config::AdapterConfig* target = config::FindAdapter(config, pair.second);
      if (source == nullptr || target == nullptr) {  // resolved at load; never expected
        return Status::InvalidArgument("pipeline " + p.name + " names an adapter that is not defined");
      }
      ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<warehouse::Warehouse> opened,
                             warehouse::OpenWarehouse(*source, *target));
      session.opened.push_back(std::move(opened));
      at = pairs.insert(pairs.end(), pair);
    }
    session.warehouses.by_pipeline[p.name] = session.opened[static_cast<size_t>(at - pairs.begin())].get();
  }
  if (session.opened.empty()) {
    ROCKY_ASSIGN_OR_RETURN(std::unique_ptr<warehouse::Warehouse> opened,
                           warehouse::OpenWarehouse(config.adapter, config.adapter));
    session.opened.push_back(std::move(opened));
  }
  // A stored plan's pipeline since removed from rocky.toml still has a warehouse when there is only one.
  if (session.opened.size() == 1) session.warehouses.fallback = session.opened.front().get();
  return Status::OK();
}

// Closes the state file and uploads it (a no-op for "local"). The upload's failure under on_upload_failure =
// "fail"; OK otherwise.
Status CloseSession(Session& session) {
  session.store.reset();
  return session.remote->Finish();
}

// Requires: TableFilterOf(inv) is OK (checked before the session was opened).
replication::PlanOptions PlanOptionsOf(const Invocation& inv, const Session& session) {
  return replication::PlanOptions{.table_pattern = TableFilterOf(inv).value_or(""),
                                  .state_lost = session.remote->state_lost(),
                                  .full_refresh = inv.Has("full-refresh")};
}

// `--table TABLE` or `--match PATTERN` that selected no table is a mistake in the command line (exit 2),
// named with the closest names, and nothing is saved or run. nullopt when the plan is fine.
std::optional<int> RefuseEmptyMatch(const CommandContext& ctx, const Plan& plan) {
  const std::string pattern = TableFilterOf(ctx.invocation).value_or("");
  if (pattern.empty() || !plan.tables.empty()) return std::nullopt;
  std::string message = TableFilterText(ctx.invocation) + " matches no table";
  const std::vector<std::string> closest = replication::ClosestNames(pattern, plan.unmatched_targets);
  if (closest.empty()) {
    message += " (the pipelines found no source tables at all)";
  } else {
    message += "; closest: ";
    for (size_t i = 0; i < closest.size(); ++i) message += (i > 0 ? ", " : "") + closest[i];
  }
  return Usage(ctx, message);
}

std::string OrNone(const std::optional<std::string>& value) { return value ? *value : "-"; }

std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n);
  for (size_t i = digits.size(); i > 3; i -= 3) digits.insert(i - 3, ",");
  return digits;
}

void WritePlanTables(JsonWriter& json, const Plan& plan) {
  json.Key("tables").BeginArray();
  for (const replication::TablePlan& t : plan.tables) {
    json.BeginObject()
        .Key("pipeline")
        .String(t.pipeline)
        .Key("source")
        .String(t.source.Qualified())
        .Key("target")
        .String(t.target.Qualified())
        .Key("mode")
        .String(replication::ToString(t.mode))
        .Key("strategy")
        .String(config::ToString(t.strategy))
        .Key("cursor_type")
        .String(config::ToString(t.cursor_type));
    json.Key("watermark").OptionalString(t.state_watermark);
    json.Key("start_from").OptionalString(t.start_watermark);
    json.Key("sql").String(t.sql).Key("index_advice");
    if (t.index_advice) {
      json.BeginObject()
          .Key("create_index")
          .String(t.index_advice->create_index)
          .Key("location")
          .String(t.index_advice->location)
          .EndObject();
    } else {
      json.Null();
    }
    json.EndObject();
  }
  json.EndArray();
}

int PrintPlan(const CommandContext& ctx, const Plan& plan, const RemoteStateSession& remote) {
  if (FormatOf(ctx.invocation) == OutputFormat::kJson) {
    JsonWriter json = BeginJson("plan");
    json.Key("plan_id").String(plan.plan_id);
    WritePlanTables(json, plan);
    remote.WriteJson(json);
    json.EndObject();
    ctx.out << json.str() << '\n';
    return kExitOk;
  }
  if (plan.tables.empty()) {
    ctx.out << "No source tables match the pipelines in the configuration.\n";
  } else {
    Table table({"target", "mode", "strategy", "start_from", "source"});
    for (const replication::TablePlan& t : plan.tables) {
      table.AddRow({t.target.Qualified(), std::string(replication::ToString(t.mode)),
                    std::string(config::ToString(t.strategy)), OrNone(t.start_watermark),
                    t.source.Qualified()});
    }
    ctx.out << table.Render() << '\n';
    for (const replication::TablePlan& t : plan.tables)
      ctx.out << t.target.Qualified() << ":\n  " << t.sql << "\n";
    ctx.out << '\n';
    // A source without an index on its cursor column makes every incremental read a full scan: say so, with
    // the statement that fixes it. The run still works.
    for (const replication::TablePlan& t : plan.tables) {
      if (!t.index_advice) continue;
      ctx.out << "NO INDEX on " << t.source.Qualified() << " (" << t.timestamp_column
              << "): every incremental run reads the whole source table. Fix, in " << t.index_advice->location
              << ":\n  " << t.index_advice->create_index << ";\n";
    }
  }
  ctx.out << "Plan " << plan.plan_id << " (" << plan.tables.size()
          << (plan.tables.size() == 1 ? " table" : " tables") << "); apply it with: rocky apply "
          << plan.plan_id << '\n';
  if (std::string line = remote.Summary(); !line.empty()) ctx.out << line << '\n';
  return kExitOk;
}

void WriteReportJson(JsonWriter& json, const RunReport& report) {
  json.Key("run_id")
      .String(report.run_id)
      .Key("plan_id")
      .String(report.plan_id)
      .Key("status")
      .String(report.status)
      .Key("started_at")
      .String(report.started_at)
      .Key("finished_at")
      .String(report.finished_at)
      .Key("tables_copied")
      .UInt(report.tables_copied());
  json.Key("tables_failed").BeginArray();
  for (const TableOutcome& t : report.tables) {
    if (t.status == TableOutcome::Status::kFailed) {
      json.BeginObject().Key("table").String(t.target).Key("error").String(t.error).EndObject();
    }
  }
  json.EndArray();
  json.Key("tables").BeginArray();
  for (const TableOutcome& t : report.tables) {
    json.BeginObject()
        .Key("table")
        .String(t.target)
        .Key("source")
        .String(t.source)
        .Key("pipeline")
        .String(t.pipeline)
        .Key("status")
        .String(replication::ToString(t.status))
        .Key("mode")
        .String(replication::ToString(t.mode))
        .Key("rows_copied")
        .UInt(t.rows_copied)
        .Key("rows_replaced")
        .UInt(t.rows_replaced)
        .Key("cursor_compare")
        .String(t.cursor_compare);
    json.Key("watermark_before").OptionalString(t.watermark_before);
    json.Key("watermark_after").OptionalString(t.watermark_after);
    if (!t.error.empty()) json.Key("error").String(t.error);
    if (!t.warnings.empty()) {
      json.Key("warnings").BeginArray();
      for (const std::string& w : t.warnings) json.String(w);
      json.EndArray();
    }
    json.Key("duration_ms").Int(t.duration_ms).EndObject();
  }
  json.EndArray();
  json.Key("check_results").BeginArray();
  for (const replication::CheckResult& c : report.check_results) {
    json.BeginObject()
        .Key("table")
        .String(c.table)
        .Key("check")
        .String(c.check)
        .Key("passed")
        .Bool(c.passed)
        .Key("detail")
        .String(c.detail)
        .EndObject();
  }
  json.EndArray();
  json.Key("anomalies").BeginArray();
  for (const replication::Anomaly& a : report.anomalies) {
    json.BeginObject()
        .Key("table")
        .String(a.table)
        .Key("kind")
        .String(replication::ToString(a.kind))
        .Key("current_count")
        .UInt(a.current_count)
        .Key("baseline_avg")
        .Double(a.baseline_avg)
        .Key("deviation_pct")
        .Double(a.deviation_pct)
        .Key("reason")
        .String(a.reason)
        .EndObject();
  }
  json.EndArray();
  json.Key("duration_ms").Int(report.duration_ms);
}

int PrintReport(const CommandContext& ctx, std::string_view command, const RunReport& report,
                const RemoteStateSession& remote) {
  if (FormatOf(ctx.invocation) == OutputFormat::kJson) {
    JsonWriter json = BeginJson(command);
    WriteReportJson(json, report);
    json.Key("rows_copied").UInt(report.rows_copied()).Key("rows_new").UInt(report.rows_new());
    // Why an interrupted run stopped: "signal" (Ctrl-C, SIGTERM) or "lease_lost" (remote_state.lease says
    // how); null when it ran to the end.
    json.Key("stop_reason");
    if (report.status != "interrupted") {
      json.Null();
    } else {
      json.String(StopSignalReceived() != 0 || !remote.lease_lost() ? "signal" : "lease_lost");
    }
    remote.WriteJson(json);
    json.EndObject();
    ctx.out << json.str() << '\n';
  } else {
    // "copied" counts every row written; "new" leaves out merge's in-place updates, which is what the target
    // gained.
    Table table({"table", "status", "mode", "copied", "new", "watermark_before", "watermark_after"});
    table.SetAlign(3, Table::Align::kRight);
    table.SetAlign(4, Table::Align::kRight);
    for (const TableOutcome& t : report.tables) {
      const uint64_t fresh = t.rows_copied > t.rows_replaced ? t.rows_copied - t.rows_replaced : 0;
      table.AddRow({t.target, std::string(replication::ToString(t.status)),
                    std::string(replication::ToString(t.mode)), Grouped(t.rows_copied), Grouped(fresh),
                    OrNone(t.watermark_before), OrNone(t.watermark_after)});
    }
    if (!report.tables.empty()) ctx.out << table.Render();
    for (const TableOutcome& t : report.tables) {
      if (t.status == TableOutcome::Status::kFailed)
        ctx.out << "FAILED " << t.target << ": " << t.error << '\n';
      for (const std::string& w : t.warnings) ctx.out << "WARNING " << t.target << ": " << w << '\n';
    }
    for (const TableOutcome& t : report.tables) {
      if (t.mode == replication::CopyMode::kRederived && t.status == TableOutcome::Status::kCopied) {
        ctx.out << "Re-derived the watermark of " << t.target
                << " from the target (the state was lost), instead of reloading it.\n";
      }
    }
    size_t checks_failed = 0;
    for (const replication::CheckResult& c : report.check_results) {
      if (c.passed) continue;
      ++checks_failed;
      ctx.out << "CHECK " << c.check << " " << c.table << ": " << c.detail << '\n';
    }
    for (const replication::Anomaly& a : report.anomalies) {
      ctx.out << "ANOMALY " << a.table << ": " << a.reason << '\n';
    }
    if (!report.check_results.empty()) {
      ctx.out << "Checks: " << report.check_results.size() - checks_failed << " passed, " << checks_failed
              << " failed; " << report.anomalies.size()
              << (report.anomalies.size() == 1 ? " anomaly" : " anomalies") << ".\n";
    }
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f", static_cast<double>(report.duration_ms) / 1000.0);
    ctx.out << "Run " << report.run_id << ": " << report.status << ", " << report.tables_copied()
            << " copied, " << report.tables_failed() << " failed, " << Grouped(report.rows_copied())
            << " rows copied (" << Grouped(report.rows_new()) << " new) in " << seconds << " s (plan "
            << report.plan_id << ").\n";
    if (std::string line = remote.Summary(); !line.empty()) ctx.out << line << '\n';
  }
  if (report.status == "interrupted") {
    // A signal exits 128 + its number; a lost lease (no signal) is a failure: the output says why.
    return StopSignalReceived() != 0 ? ExitCodeForStop() : kExitFailure;
  }
  return report.tables_failed() > 0 ? kExitFailure : kExitOk;
}

// Applies a plan with Ctrl-C handling (stop_signals.h: main() installed the handlers before anything was
// opened, so a Ctrl-C arriving while the plan is built is not lost either) and, on a terminal, a progress
// line per table on stderr.
int Execute(const CommandContext& ctx, std::string_view command, Session& session, const Plan& plan) {
  replication::RunOptions options;
  // Ctrl-C, SIGTERM, or the lease lost (its renewal thread calls RequestRunStop): no table after this one.
  options.stop = &RunStopFlag();
  const bool progress = FormatOf(ctx.invocation) == OutputFormat::kTable && isatty(STDERR_FILENO);
  options.on_table_done = [&ctx, &session, progress](const TableOutcome& t, size_t done, size_t total) {
    if (progress) {
      ctx.err << "[" << done << "/" << total << "] " << t.target << ": " << replication::ToString(t.status)
              << ", " << Grouped(t.rows_copied) << " rows copied\n";
    }
    // A long run also uploads between tables, so a crash loses little from the remote copy.
    session.remote->CheckpointIfDue(*session.store);
  };
  auto report = replication::ApplyPlan(plan, session.config, session.warehouses, *session.store, options);
  // Uploaded whatever happened: a failed or interrupted run still advanced the watermarks of the tables it
  // finished, and those must not be copied again by the next run elsewhere.
  const Status upload = CloseSession(session);
  if (!report.ok()) {
    if (!upload.ok()) Fail(ctx, upload);
    return Fail(ctx, report.status());
  }
  return WithUploadStatus(ctx, PrintReport(ctx, command, *report, *session.remote), upload);
}

int RunPlan(const CommandContext& ctx) {
  if (auto filter = TableFilterOf(ctx.invocation); !filter.ok()) return Usage(ctx, filter.status().message());
  auto session = OpenSession(ctx);
  if (!session.ok()) return FailOpen(ctx, session.status());
  if (session->remote->busy()) return session->remote->RefuseBusy();
  if (Status s = OpenWarehouses(*session); !s.ok()) return Fail(ctx, s);
  auto plan = replication::BuildPlan(session->config, session->warehouses, *session->store,
                                     PlanOptionsOf(ctx.invocation, *session));
  if (!plan.ok()) return Fail(ctx, plan.status());
  if (std::optional<int> refused = RefuseEmptyMatch(ctx, *plan)) {
    (void)CloseSession(*session);
    return *refused;
  }
  if (Status s = session->store->SavePlan(plan->plan_id, replication::PlanToJson(*plan)); !s.ok())
    return Fail(ctx, s);
  // The saved plan goes up with the state, so `rocky apply PLAN_ID` works on another machine too.
  const Status upload = CloseSession(*session);
  return WithUploadStatus(ctx, PrintPlan(ctx, *plan, *session->remote), upload);
}

int RunApply(const CommandContext& ctx) {
  const std::string& plan_id = ctx.invocation.positionals.at(0);
  auto session = OpenSession(ctx);
  if (!session.ok()) return FailOpen(ctx, session.status());
  if (session->remote->busy()) return session->remote->RefuseBusy();
  auto stored = session->store->LoadPlan(plan_id);
  if (!stored.ok()) return Fail(ctx, stored.status());
  if (!*stored) {
    return Fail(ctx, "no plan with id '" + plan_id + "' in state file '" + StatePath(ctx.invocation) +
                         "' (plans are kept by 'rocky plan'; only the newest " +
                         std::to_string(state::kMaxStoredPlans) + " are kept)");
  }
  auto plan = replication::PlanFromJson(**stored);
  if (!plan.ok()) return Fail(ctx, plan.status());
  if (Status s = replication::VerifyPlanIsCurrent(*plan, session->config, *session->store); !s.ok())
    return Fail(ctx, s);
  if (Status s = OpenWarehouses(*session); !s.ok()) return Fail(ctx, s);
  return Execute(ctx, "apply", *session, *plan);
}

int RunRun(const CommandContext& ctx) {
  if (auto filter = TableFilterOf(ctx.invocation); !filter.ok()) return Usage(ctx, filter.status().message());
  auto session = OpenSession(ctx);
  if (!session.ok()) return FailOpen(ctx, session.status());
  if (session->remote->busy()) return session->remote->RefuseBusy();
  if (Status s = OpenWarehouses(*session); !s.ok()) return Fail(ctx, s);
  auto plan = replication::BuildPlan(session->config, session->warehouses, *session->store,
                                     PlanOptionsOf(ctx.invocation, *session));
  if (!plan.ok()) return Fail(ctx, plan.status());
  if (std::optional<int> refused = RefuseEmptyMatch(ctx, *plan)) {
    // Before Execute: no run is begun, so none is recorded.
    (void)CloseSession(*session);
    return *refused;
  }
  return Execute(ctx, "run", *session, *plan);
}

// The rocky.toml `rocky init` writes: the sample warehouse's pipeline, with checks on.
constexpr std::string_view kSampleConfig =
    R"(# rocky.toml written by `rocky init`: replicate the sample warehouse's source schemas
# (fivetran_catalog.src__<tenant>__<regions...>__<source>) into <tenant>_warehouse.staging__<regions>__<source>.

[adapter]
type = "sqlite"
path = "warehouse"           # one SQLite file per catalog+schema: warehouse/<catalog>/<schema>.sqlite

[state]
backend = "local"            # the state file is --state-path (default .rocky-state.redb)

[pipeline.bronze]
type = "replication"
timestamp_column = "_fivetran_synced"
metadata_columns = [{ name = "_loaded_by", type = "STRING", value = "NULL" }]

[pipeline.bronze.source]
catalog = "fivetran_catalog"
schema_pattern = { prefix = "src__", separator = "__", components = ["tenant", "regions...", "source"] }

[pipeline.bronze.target]
catalog_template = "{tenant}_warehouse"
schema_template = "staging__{regions}__{source}"

[pipeline.bronze.checks]
enabled = true
row_count = true
freshness = { threshold_seconds = 86400 }
anomaly_threshold_pct = 50
)";

// `text` as a TOML basic string whose ${...} substitution leaves it as it is ('$' doubled).
std::string TomlString(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '$') {
      out += "$$";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// The sample's rocky.toml for a PostgreSQL database: the same pipeline, with the [adapter] replaced. A URL
// that holds a password is not written into the file: it is read from ${PG_URL} instead.
std::string PostgresSampleConfig(const std::string& url, bool from_env) {
  std::string text(kSampleConfig);
  const std::string sqlite_adapter =
      "type = \"sqlite\"\npath = \"warehouse\"           # one SQLite file per catalog+schema: "
      "warehouse/<catalog>/<schema>.sqlite\n";
  const size_t at = text.find(sqlite_adapter);
  const std::string postgres_adapter =
      "type = \"postgres\"\nurl = " + (from_env ? std::string("\"${PG_URL}\"") : TomlString(url)) +
      (from_env ? "   # a libpq URI or keyword string (it holds the password: kept out of this file)\n"
                : "   # a libpq URI or keyword string\n") +
      "# catalog.schema.table is schema \"catalog.schema\" (or \"schema\" when the catalog is the database's "
      "name)\n"
      "# mark_source_changes = true   # checks then reuse a source's row count while it is unchanged (puts a "
      "trigger on each source table; README \"PostgreSQL\")\n";
  if (at != std::string::npos) text.replace(at, sqlite_adapter.size(), postgres_adapter);
  return text;
}

int RunInit(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  const std::string config_path = ConfigPath(inv);
  const bool force = inv.Has("force");
  const bool postgres = inv.Get("adapter").value_or("sqlite") == "postgres";
  const std::string url(inv.Get("url").value_or(""));
  if (postgres && url.empty()) {
    return Usage(ctx, "--adapter postgres needs --url URL (a libpq URI or keyword string)");
  }
  if (!postgres && !url.empty()) return Usage(ctx, "--url is for --adapter postgres");
  if (FileExists(config_path) && !force) {
    return Fail(ctx,
                "'" + config_path + "' already exists; use --force to overwrite it and the sample warehouse");
  }
  if (postgres) {
    // The server first: a URL that does not connect (unreachable, wrong password, no such database) must
    // leave nothing behind, neither --config's folder nor (with --force) fewer watermarks.
    auto reached = warehouse::OpenPostgresWarehouse(url, url);
    if (!reached.ok()) return Fail(ctx, reached.status());
  }
  const std::filesystem::path base = std::filesystem::path(config_path).parent_path();
  const std::string warehouse_dir = (base / "warehouse").string();
  std::error_code ec;
  if (!base.empty()) std::filesystem::create_directories(base, ec);
  if (ec) return Fail(ctx, "cannot create the folder '" + base.string() + "': " + ec.message());

  uint64_t watermarks_removed = 0;
  if (force) {
    // A fresh sample has new timestamps: old targets and watermarks would no longer match it (the next run
    // would append to the old targets). Start the sample project over: warehouse and watermarks. (PostgreSQL:
    // the sample's source schemas are made again below; the targets are reloaded by the next run, which
    // finds no watermark.)
    if (!postgres) std::filesystem::remove_all(warehouse_dir, ec);
    if (ec)
      return Fail(ctx, "cannot remove the old sample warehouse '" + warehouse_dir + "': " + ec.message());
    if (FileExists(StatePath(inv))) {
      auto store =
          OpenStateStore(ctx, StatePath(inv), state::StoreOptions{.mode = state::OpenMode::kReadWrite});
      if (!store.ok()) return Fail(ctx, store.status());
      auto removed = (*store)->DeleteAllWatermarks();
      if (!removed.ok()) return Fail(ctx, removed.status());
      watermarks_removed = *removed;
    }
  }
  const bool url_from_env = postgres && warehouse::PostgresUrlHasPassword(url);
  auto summary = postgres ? warehouse::CreatePostgresSampleWarehouse(url, force)
                          : warehouse::CreateSampleWarehouse(warehouse_dir, force);
  if (!summary.ok()) return Fail(ctx, summary.status());
  const std::string warehouse_name = postgres ? warehouse::DescribePostgresUrl(url) : warehouse_dir;
  // Replaced atomically, created 0600 (a rocky.toml may come to hold a password).
  if (Status s = WriteFileAtomically(
          config_path, postgres ? PostgresSampleConfig(url, url_from_env) : std::string(kSampleConfig),
          "configuration file");
      !s.ok())
    return Fail(ctx, s);
  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter json = BeginJson("init");
    json.Key("config").String(config_path).Key("adapter").String(postgres ? "postgres" : "sqlite");
    json.Key("warehouse").String(warehouse_name).Key("url_from_env").Bool(url_from_env);
    json.Key("source_tables").BeginArray();
    for (const auto& t : summary->tables) {
      json.BeginObject().Key("table").String(t.table.Qualified()).Key("rows").UInt(t.rows).EndObject();
    }
    json.EndArray().Key("watermarks_deleted").UInt(watermarks_removed).EndObject();
    ctx.out << json.str() << '\n';
    return kExitOk;
  }
  ctx.out << "Wrote " << config_path << " and a sample warehouse in " << warehouse_name << ":\n";
  Table table({"source table", "rows"});
  table.SetAlign(1, Table::Align::kRight);
  for (const auto& t : summary->tables) table.AddRow({t.table.Qualified(), Grouped(t.rows)});
  ctx.out << table.Render(2);
  if (watermarks_removed > 0) {
    ctx.out << "Deleted " << watermarks_removed << " watermarks of the previous sample from "
            << StatePath(inv) << ": the next run is a full refresh.\n";
  }
  if (url_from_env) {
    ctx.out << "The URL holds a password, so rocky.toml reads it from ${PG_URL}: set PG_URL to the URL you "
               "passed to --url.\n";
  }
  ctx.out << "Next: rocky plan, then rocky run.\n";
  return kExitOk;
}

FlagSpec TargetTableFlag() {
  return TableFlag(
      "Only the target table TABLE (catalog.schema.table, exactly); an unknown name is an error");
}

FlagSpec TargetMatchFlag() {
  return MatchFlag(
      "Only target tables matching PATTERN (catalog.schema.table; * matches any run of characters, ? one); "
      "matching none is an error");
}

FlagSpec FullRefreshFlag() {
  return FlagSpec{
      .name = "full-refresh",
      .help =
          "Reload the tables (those chosen by --table or --match) in full, whatever their watermarks; the "
          "new watermark is the reloaded target's newest value"};
}

}  // namespace

CommandSpec PlanCommand() {
  return CommandSpec{
      .name = "plan",
      .summary = "Show what a run would copy, and save the plan",
      .description =
          "Discover the source tables of every pipeline in rocky.toml and decide, per target table, a full\n"
          "refresh (no watermark) or an incremental copy (rows above the watermark), with the exact SQL,\n"
          "and name each source without an index on its cursor column, with the CREATE INDEX that fixes it.\n"
          "The plan is saved in the state file under its plan_id for `rocky apply PLAN_ID`. With a remote\n"
          "state, takes its lease first (exit 75 while another runner holds it; --wait).",
      .flags = {TargetTableFlag(), TargetMatchFlag(), FullRefreshFlag(), LeaseWaitFlag()},
      .handler = CheckingWait(RunPlan),
  };
}

CommandSpec ApplyCommand() {
  return CommandSpec{
      .name = "apply",
      .summary = "Run a saved plan",
      .description =
          "Run the plan `rocky plan` saved under PLAN_ID. Refused when a watermark it was planned from has\n"
          "changed since, or when rocky.toml now names another warehouse (refused before that warehouse is\n"
          "opened or its folder made; run `rocky plan` again). Exit code 1 when any table failed, 130 when\n"
          "interrupted.\n"
          "With a remote state, holds its lease throughout (exit 75 while another runner holds it; --wait);\n"
          "a lease lost mid-run stops the run before its next table (exit 1).",
      .flags = {LeaseWaitFlag()},
      .positionals = {PositionalSpec{.name = "PLAN_ID", .help = "The plan_id printed by rocky plan"}},
      .handler = CheckingWait(RunApply),
  };
}

CommandSpec RunCommand() {
  return CommandSpec{
      .name = "run",
      .summary = "Plan and apply in one step",
      .description =
          "Copy every source table to its target: a full refresh without a watermark (or with\n"
          "--full-refresh, or strategy = \"full_refresh\"), else the rows at or above it that the target\n"
          "lacks (merge: upserted on merge_keys); then advance each watermark to the largest cursor value\n"
          "copied (never back), record row counts and run the configured checks. A failed table keeps its\n"
          "watermark (its error says when a failed commit may have been kept) and the others go on.\n"
          "--table or --match selecting no table exits 2 and records no run. Ctrl-C stops after the table "
          "being\n"
          "copied. Exit code 1 when any table failed, 130 when interrupted. With a remote state, holds its\n"
          "lease throughout: exit 75 at once while another runner holds it (--wait SECONDS waits for it); a\n"
          "lease lost mid-run stops the run before its next table (exit 1, the output says why) and the\n"
          "state is not uploaded.",
      .flags = {TargetTableFlag(), TargetMatchFlag(), FullRefreshFlag(), LeaseWaitFlag()},
      .handler = CheckingWait(RunRun),
  };
}

CommandSpec InitCommand() {
  return CommandSpec{
      .name = "init",
      .summary = "Write a sample rocky.toml and warehouse",
      .description =
          "Write a working rocky.toml (at --config, default ./rocky.toml) and, beside it, a sample SQLite\n"
          "warehouse with a few source schemas and tables, so `rocky run` works with nothing else.\n"
          "With --adapter postgres --url URL, the sample's source schemas go into the database URL names\n"
          "(fivetran_catalog.src__... schemas) and rocky.toml names that database; a URL holding a password "
          "is\n"
          "not written into rocky.toml, which then reads it from ${PG_URL}. A URL that does not connect\n"
          "changes nothing (no folder, no file, no watermark).",
      .flags =
          {FlagSpec{
               .name = "force",
               .help =
                   "Start the sample over: overwrite rocky.toml, recreate the warehouse, delete watermarks"},
           FlagSpec{.name = "adapter",
                    .value_name = "TYPE",
                    .help = "The warehouse: the embedded SQLite files (default) or a PostgreSQL database",
                    .choices = {"sqlite", "postgres"}},
           FlagSpec{.name = "url",
                    .value_name = "URL",
                    .help = "--adapter postgres: the libpq URI or keyword string of the database"}},
      .handler = RunInit,
  };
}

}  // namespace rocky::cli
