// The watermark lifecycle end to end on a real SQLite warehouse (the sample `rocky init` writes) and a real
// state file: full refresh, incremental copies, failures that keep the old watermark, stored plans, lost
// state, anomalies and interruption.
#include "rocky/replication/runner.h"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "rocky/base/timestamp.h"
#include "rocky/replication/plan.h"
#include "rocky/state/store.h"
#include "rocky/warehouse/sample_warehouse.h"
#include "rocky/warehouse/sqlite_warehouse.h"

namespace {

using namespace rocky;
using replication::CopyMode;
using replication::Plan;
using replication::RunReport;
using replication::TableOutcome;

constexpr const char* kOrders = "acme_warehouse.staging__us_west__shopify.orders";
constexpr const char* kCharges = "acme_warehouse.staging__eu_central__stripe.charges";

// A fixed "now" for the sample data; the sample's newest row is five minutes before it.
const auto kNow =
    std::chrono::system_clock::time_point(std::chrono::seconds(1742049000));  // 2025-03-15T14:30:00Z

class Project {
 public:
  Project() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/rocky-repl-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
    auto sample = warehouse::CreateSampleWarehouse(dir_ + "/warehouse", false, kNow);
    REQUIRE_MESSAGE(sample.ok(), sample.status().message());
    auto wh = warehouse::OpenSqliteWarehouse(dir_ + "/warehouse");
    REQUIRE_MESSAGE(wh.ok(), wh.status().message());
    warehouse_ = std::move(*wh);

    config_.source_path = dir_ + "/rocky.toml";
    config_.adapter.path = dir_ + "/warehouse";
    config::PipelineConfig p;
    p.name = "bronze";
    p.source_catalog = "fivetran_catalog";
    p.schema_pattern = config::SchemaPattern{"src__", "__", {"tenant", "regions...", "source"}};
    p.catalog_template = "{tenant}_warehouse";
    p.schema_template = "staging__{regions}__{source}";
    p.metadata_columns = {config::MetadataColumn{"_loaded_by", "STRING", "NULL"}};
    p.checks.enabled = true;
    p.checks.row_count = true;
    p.checks.freshness = config::FreshnessCheck{86400};
    config_.pipelines.push_back(p);
    OpenStore();
  }
  ~Project() {
    store_.reset();
    warehouse_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void OpenStore() {
    store_.reset();
    state::StoreOptions options{.mode = state::OpenMode::kReadWrite};
    options.clock = [this] { return clock_; };
    auto store = state::StateStore::Open(dir_ + "/state.redb", options);
    REQUIRE_MESSAGE(store.ok(), store.status().message());
    store_ = std::move(*store);
  }

  Plan MakePlan(replication::PlanOptions options = {}) {
    auto plan = replication::BuildPlan(config_, *warehouse_, *store_, options);
    REQUIRE_MESSAGE(plan.ok(), plan.status().message());
    return *plan;
  }

  RunReport Run(replication::PlanOptions plan_options = {}, const std::atomic<bool>* stop = nullptr) {
    clock_ += std::chrono::minutes(1);
    Plan plan = MakePlan(plan_options);
    replication::RunOptions options;
    options.stop = stop;
    options.clock = [this] { return clock_; };
    auto report = replication::ApplyPlan(plan, config_, *warehouse_, *store_, options);
    REQUIRE_MESSAGE(report.ok(), report.status().message());
    return *report;
  }

  // Runs SQL on a schema's file (source or target), as a connector or a person would.
  void Sql(const std::string& catalog, const std::string& schema, const std::string& sql) {
    const std::string file = dir_ + "/warehouse/" + catalog + "/" + schema + ".sqlite";
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    INFO(sql << ": " << (error != nullptr ? error : ""));
    sqlite3_free(error);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
  }
  void SourceSql(const std::string& schema, const std::string& sql) { Sql("fivetran_catalog", schema, sql); }

  uint64_t Count(const std::string& qualified) {
    auto ref = warehouse::ParseTableRef(qualified);
    REQUIRE(ref.ok());
    auto n = warehouse_->CountRows(*ref);
    REQUIRE_MESSAGE(n.ok(), n.status().message());
    return *n;
  }

  std::optional<std::string> Watermark(const std::string& table) {
    auto w = store_->GetWatermark(table);
    REQUIRE(w.ok());
    return *w ? std::optional<std::string>((*w)->last_value) : std::nullopt;
  }

  config::Config& config() { return config_; }
  state::StateStore& store() { return *store_; }
  warehouse::Warehouse& wh() { return *warehouse_; }
  std::chrono::system_clock::time_point clock_ = kNow;

 private:
  std::string dir_;
  config::Config config_;
  std::unique_ptr<warehouse::Warehouse> warehouse_;
  std::unique_ptr<state::StateStore> store_;
};

const TableOutcome& Outcome(const RunReport& report, const std::string& target) {
  for (const TableOutcome& t : report.tables) {
    if (t.target == target) return t;
  }
  FAIL("no outcome for " << target);
  return report.tables.front();
}

TEST_CASE("discovery maps every sample schema to its target; the documented example holds") {
  Project p;
  Plan plan = p.MakePlan();
  REQUIRE(plan.tables.size() == 4);
  std::map<std::string, std::string> targets;
  for (const auto& t : plan.tables) targets[t.target.Qualified()] = t.source.Qualified();
  CHECK(targets.at(kOrders) == "fivetran_catalog.src__acme__us_west__shopify.orders");
  CHECK(targets.at("acme_warehouse.staging__us_west__shopify.customers") ==
        "fivetran_catalog.src__acme__us_west__shopify.customers");
  CHECK(targets.at(kCharges) == "fivetran_catalog.src__acme__eu_central__stripe.charges");
  CHECK(targets.at("globex_warehouse.staging__us_east__shopify.orders") ==
        "fivetran_catalog.src__globex__us_east__shopify.orders");
  for (const auto& t : plan.tables) {
    CHECK(t.mode == CopyMode::kFull);
    CHECK(!t.start_watermark.has_value());
  }
  // The id is a content hash: the same inputs plan the same id; a filter plans fewer tables.
  CHECK(p.MakePlan().plan_id == plan.plan_id);
  CHECK(plan.plan_id.size() == 32);
  Plan filtered = p.MakePlan({.table_pattern = "acme_warehouse.*.orders"});
  REQUIRE(filtered.tables.size() == 1);
  CHECK(filtered.plan_id != plan.plan_id);
}

TEST_CASE("first run is a full refresh; the next copies only new rows and advances the watermark") {
  Project p;
  RunReport first = p.Run();
  CHECK(first.status == "success");
  CHECK(first.tables_copied() == 4);
  const TableOutcome& orders = Outcome(first, kOrders);
  CHECK(orders.mode == CopyMode::kFull);
  CHECK(orders.rows_copied == 2000);
  CHECK(!orders.watermark_before.has_value());
  // The watermark is the newest timestamp in the target (five minutes before the sample's "now"), not the
  // time of the run.
  CHECK(orders.watermark_after == std::optional<std::string>("2025-03-15T14:25:00Z"));
  CHECK(p.Watermark(kOrders) == orders.watermark_after);
  CHECK(p.Count(kOrders) == 2000);
  for (const auto& c : first.check_results)
    CHECK_MESSAGE(c.passed, c.table << " " << c.check << ": " << c.detail);

  // Three new rows, stamped in two other ISO-8601 spellings.
  p.SourceSql("src__acme__us_west__shopify",
              "INSERT INTO orders VALUES (2001, 1, 10.0, '2025-03-15 16:40:00+02:00');"
              "INSERT INTO orders VALUES (2002, 2, 20.0, '2025-03-15T14:41:00.5Z');"
              "INSERT INTO orders VALUES (2003, 3, 30.0, '2025-03-15 14:42:00');");
  RunReport second = p.Run();
  CHECK(second.status == "success");
  const TableOutcome& inc = Outcome(second, kOrders);
  CHECK(inc.mode == CopyMode::kIncremental);
  // The three new rows; the row exactly at the watermark is read again but already there. Two of the new
  // spellings sort below the watermark's text, which the count guard sees: this run compares instants.
  CHECK(inc.rows_copied == 3);
  CHECK(inc.rows_replaced == 0);
  CHECK(inc.cursor_compare == "instant");
  CHECK(inc.watermark_before == std::optional<std::string>("2025-03-15T14:25:00Z"));
  CHECK(inc.watermark_after == std::optional<std::string>("2025-03-15T14:42:00Z"));
  CHECK(p.Count(kOrders) == 2003);
  CHECK(Outcome(second, kCharges).rows_copied == 0);
  CHECK(Outcome(second, kCharges).rows_replaced == 0);
  CHECK(Outcome(second, kCharges).mode == CopyMode::kIncremental);
  CHECK(Outcome(second, kCharges).cursor_compare == "text");

  // Nothing new: nothing copied, nothing duplicated, watermark unchanged.
  RunReport third = p.Run();
  CHECK(Outcome(third, kOrders).rows_copied == 0);
  CHECK(Outcome(third, kOrders).rows_replaced == 0);
  CHECK(third.rows_new() == 0);
  CHECK(p.Count(kOrders) == 2003);
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("2025-03-15T14:42:00Z"));

  // Each run appended the source's count to the history and a run record.
  auto history = p.store().CheckHistory(kOrders);
  REQUIRE(history.ok());
  REQUIRE(history->size() == 3);
  CHECK((*history)[0].count == 2000);
  CHECK((*history)[2].count == 2003);
  auto runs = p.store().ListRuns();
  REQUIRE(runs->size() == 3);
  CHECK((*runs)[2].status == "success");
  CHECK((*runs)[2].tables_copied == 4);
}

TEST_CASE("deleting a watermark means a full refresh, with no duplicates") {
  Project p;
  p.Run();
  REQUIRE(p.store().DeleteWatermark(kOrders).ok());
  RunReport again = p.Run();
  CHECK(Outcome(again, kOrders).mode == CopyMode::kFull);
  CHECK(Outcome(again, kOrders).rows_copied == 2000);
  CHECK(p.Count(kOrders) == 2000);
}

TEST_CASE("a watermark moved back re-reads the window without duplicating it") {
  Project p;
  p.Run();
  REQUIRE(p.store().SetWatermark(kOrders, "2025-03-14T14:25:00Z").ok());  // a day back: ~67 rows
  RunReport again = p.Run();
  const TableOutcome& t = Outcome(again, kOrders);
  CHECK(t.mode == CopyMode::kIncremental);
  CHECK(t.rows_copied == 0);  // every row of that day is already in the target
  CHECK(p.Count(kOrders) == 2000);
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("2025-03-15T14:25:00Z"));
}

TEST_CASE("a failed table keeps its watermark; the others go on") {
  Project p;
  p.Run();
  const auto before = p.Watermark(kOrders);
  // A value that is not a timestamp makes the orders copy fail; a missing source table fails charges.
  p.SourceSql("src__acme__us_west__shopify", "INSERT INTO orders VALUES (9001, 1, 1.0, 'not a time');");
  Plan plan = p.MakePlan();
  p.SourceSql("src__acme__eu_central__stripe", "DROP TABLE charges;");
  p.SourceSql("src__acme__us_west__shopify",
              "INSERT INTO customers VALUES (501, 'x@example.com', 'US', '2025-03-15T15:00:00Z');");
  auto report = replication::ApplyPlan(plan, p.config(), p.wh(), p.store(), {});
  REQUIRE(report.ok());
  CHECK(report->status == "partial_failure");
  CHECK(report->tables_failed() == 2);
  const TableOutcome& orders = Outcome(*report, kOrders);
  CHECK(orders.status == TableOutcome::Status::kFailed);
  CHECK(orders.error.find("not a time") != std::string::npos);
  CHECK(orders.watermark_after == before);
  CHECK(p.Watermark(kOrders) == before);
  CHECK(p.Count(kOrders) == 2000);  // the failed copy rolled back as a whole
  const TableOutcome& charges = Outcome(*report, kCharges);
  CHECK(charges.status == TableOutcome::Status::kFailed);
  CHECK(charges.error.find("charges") != std::string::npos);
  const TableOutcome& customers = Outcome(*report, "acme_warehouse.staging__us_west__shopify.customers");
  CHECK(customers.status == TableOutcome::Status::kCopied);
  CHECK(customers.rows_copied == 1);  // the new row; the one at the watermark is already there
  CHECK(customers.rows_replaced == 0);
  CHECK(p.store().ListRuns()->back().status == "partial_failure");
}

TEST_CASE("a stored plan applies only while its watermarks are unchanged") {
  Project p;
  Plan plan = p.MakePlan();
  REQUIRE(p.store().SavePlan(plan.plan_id, replication::PlanToJson(plan)).ok());
  auto loaded = p.store().LoadPlan(plan.plan_id);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->has_value());
  auto parsed = replication::PlanFromJson(**loaded);
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
  CHECK(parsed->plan_id == plan.plan_id);
  CHECK(parsed->tables.size() == plan.tables.size());
  CHECK(replication::VerifyPlanIsCurrent(*parsed, p.config(), p.store()).ok());

  REQUIRE(p.store().SetWatermark(kOrders, "2025-01-01T00:00:00Z").ok());
  base::Status stale = replication::VerifyPlanIsCurrent(*parsed, p.config(), p.store());
  CHECK(!stale.ok());
  CHECK(stale.message().find(kOrders) != std::string::npos);
  CHECK(stale.message().find("2025-01-01T00:00:00Z") != std::string::npos);

  // A plan made for another warehouse is refused, naming both.
  config::Config moved = p.config();
  moved.adapter.path += "-elsewhere";
  REQUIRE(p.store().DeleteWatermark(kOrders).ok());
  CHECK(replication::VerifyPlanIsCurrent(*parsed, p.config(), p.store()).ok());
  base::Status elsewhere = replication::VerifyPlanIsCurrent(*parsed, moved, p.store());
  CHECK(!elsewhere.ok());
  CHECK(elsewhere.message().find("-elsewhere") != std::string::npos);

  // A stored plan whose content was altered no longer matches its id.
  std::string tampered = **loaded;
  tampered.replace(tampered.find("\"full\""), 6, "\"incremental\"");
  CHECK(replication::PlanFromJson(tampered).status().IsCorruption());
}

TEST_CASE("lost state: a target that exists re-derives its watermark instead of reloading") {
  Project p;
  p.Run();
  REQUIRE(p.store().DeleteAllWatermarks().ok());
  p.SourceSql("src__acme__us_west__shopify",
              "INSERT INTO orders VALUES (2001, 1, 10.0, '2025-03-15T15:00:00Z');");
  RunReport report = p.Run({.state_lost = true});
  const TableOutcome& orders = Outcome(report, kOrders);
  CHECK(orders.mode == CopyMode::kRederived);
  CHECK(orders.rows_copied - orders.rows_replaced == 1);
  CHECK(p.Count(kOrders) == 2001);
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("2025-03-15T15:00:00Z"));
  // Without the flag, a missing watermark is a deliberate full refresh.
  REQUIRE(p.store().DeleteWatermark(kOrders).ok());
  CHECK(Outcome(p.Run(), kOrders).mode == CopyMode::kFull);
  CHECK(p.Count(kOrders) == 2001);
}

TEST_CASE("anomalies: a truncated source is reported and the run still succeeds") {
  Project p;
  for (int i = 0; i < 3; ++i) CHECK(p.Run().anomalies.empty());
  p.SourceSql("src__acme__us_west__shopify", "DELETE FROM orders WHERE id > 10;");
  RunReport report = p.Run();
  CHECK(report.status == "success");
  REQUIRE(report.anomalies.size() == 1);
  CHECK(report.anomalies[0].table == kOrders);
  CHECK(report.anomalies[0].kind == replication::Anomaly::Kind::kDrop);
  CHECK(report.anomalies[0].current_count == 10);
  CHECK(report.anomalies[0].baseline_avg == doctest::Approx(2000.0));
  // The row-count check sees the target still holding the old rows.
  bool row_count_failed = false;
  for (const auto& c : report.check_results) {
    if (c.table == kOrders && c.check == "row_count") row_count_failed = !c.passed;
  }
  CHECK(row_count_failed);
  CHECK(p.store().ListRuns()->back().anomalies == 1);
}

TEST_CASE("remembered row counts: reused while nothing changed; a hand edit of the target is counted again") {
  Project p;
  p.Run();
  // customers and orders share one target file: orders' commit came after customers' count, which the run
  // carried to the file's new version.
  const std::string customers = "acme_warehouse.staging__us_west__shopify.customers";
  const auto remembered = p.store().RowCountOf(kOrders);
  REQUIRE(remembered.ok());
  REQUIRE(remembered->has_value());
  CHECK((*remembered)->rows == 2000);
  const std::string version = (*remembered)->version;
  REQUIRE(p.store().RowCountOf(customers)->has_value());
  CHECK(p.store().RowCountOf(customers)->value().version == version);
  const std::string source_version =
      p.store().RowCountOf("fivetran_catalog.src__acme__us_west__shopify.orders")->value().version;
  for (int run = 0; run < 2; ++run) {
    p.Run();  // nothing to copy: no count rewritten, every version the same
    CHECK(p.store().RowCountOf(kOrders)->value().version == version);
    CHECK(p.store().RowCountOf(customers)->value().version == version);
    CHECK(p.store().RowCountOf("fivetran_catalog.src__acme__us_west__shopify.orders")->value().version ==
          source_version);
  }
  // Five target rows deleted by hand: the target's file moved, so the row_count check counts it again.
  const std::string_view target_schema = "staging__us_west__shopify";
  p.Sql("acme_warehouse", std::string(target_schema), "DELETE FROM orders WHERE id <= 5;");
  RunReport edited = p.Run();
  bool checked = false;
  for (const auto& c : edited.check_results) {
    if (c.table == kOrders && c.check == "row_count") {
      checked = true;
      CHECK_FALSE(c.passed);
      CHECK_MESSAGE(c.detail.find("Source has 2,000 rows but the target has 1,995") != std::string::npos,
                    c.detail);
    }
  }
  CHECK(checked);
  CHECK(p.store().RowCountOf(kOrders)->value().rows == 1995);
}

TEST_CASE("a truncated source: the target keeps its rows, the watermark never moves back") {
  Project p;
  p.Run();
  // The newest sync batch shares one _fivetran_synced, the watermark's instant.
  p.SourceSql("src__acme__us_west__shopify",
              "UPDATE orders SET _fivetran_synced = '2025-03-15T14:25:00Z' WHERE id > 1500;");
  REQUIRE(p.store().DeleteWatermark(kOrders).ok());
  p.Run();  // a full refresh with the batch
  REQUIRE(p.Watermark(kOrders) == std::optional<std::string>("2025-03-15T14:25:00Z"));
  p.SourceSql("src__acme__us_west__shopify", "DELETE FROM orders WHERE id > 1500;");  // the batch vanished
  for (int run = 0; run < 2; ++run) {
    RunReport report = p.Run();
    const TableOutcome& t = Outcome(report, kOrders);
    CHECK(t.status == TableOutcome::Status::kCopied);
    CHECK(t.rows_copied == 0);
    CHECK(p.Count(kOrders) == 2000);
    CHECK(t.watermark_after == std::optional<std::string>("2025-03-15T14:25:00Z"));
    for (const auto& c : report.check_results) {
      if (c.table == kOrders && c.check == "row_count") {
        CHECK_FALSE(c.passed);
        CHECK(c.detail.find("Source has 1,500 rows but the target has 2,000") != std::string::npos);
      }
    }
  }
  // Everything gone: still nothing deleted, nothing moved back.
  p.SourceSql("src__acme__us_west__shopify", "DELETE FROM orders;");
  RunReport empty = p.Run();
  CHECK(Outcome(empty, kOrders).status == TableOutcome::Status::kCopied);
  CHECK(p.Count(kOrders) == 2000);
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("2025-03-15T14:25:00Z"));
  // Only a reload the user asks for follows the source down.
  RunReport reload = p.Run({.table_pattern = kOrders, .full_refresh = true});
  REQUIRE(reload.tables.size() == 1);
  CHECK(Outcome(reload, kOrders).mode == CopyMode::kFull);
  CHECK(p.Count(kOrders) == 0);
  CHECK_FALSE(p.Watermark(kOrders).has_value());  // an empty target has no newest value: the next run reloads
}

TEST_CASE("--full-refresh reloads the matching tables whatever their watermarks, and only those") {
  Project p;
  p.Run();
  p.Sql("acme_warehouse", "staging__us_west__shopify",
        "DELETE FROM orders WHERE id <= 100;");                           // damaged target
  REQUIRE(p.store().SetWatermark(kOrders, "2025-03-16T00:00:00Z").ok());  // and a watermark too far ahead
  Plan plan = p.MakePlan({.table_pattern = "*.orders", .full_refresh = true});
  REQUIRE(plan.tables.size() == 2);
  for (const auto& t : plan.tables) {
    CHECK(t.mode == CopyMode::kFull);
    CHECK(t.full_refresh_requested);
  }
  // The option is part of the stored plan and its id.
  auto parsed = replication::PlanFromJson(replication::PlanToJson(plan));
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
  CHECK(parsed->tables[0].full_refresh_requested);
  CHECK(parsed->plan_id == plan.plan_id);
  CHECK(p.MakePlan({.table_pattern = "*.orders"}).plan_id != plan.plan_id);

  RunReport report = p.Run({.table_pattern = "*.orders", .full_refresh = true});
  CHECK(report.tables.size() == 2);
  CHECK(p.Count(kOrders) == 2000);
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("2025-03-15T14:25:00Z"));  // back, as asked
}

TEST_CASE("a pattern that matches nothing plans nothing and keeps the names to suggest") {
  Project p;
  Plan plan = p.MakePlan({.table_pattern = "acme_warehouse.*.ordrs"});
  CHECK(plan.tables.empty());
  CHECK(plan.unmatched_targets.size() == 4);
  const std::vector<std::string> closest =
      replication::ClosestNames("acme_warehouse.*.ordrs", plan.unmatched_targets);
  REQUIRE_FALSE(closest.empty());
  CHECK(closest[0] == kOrders);
}

TEST_CASE("a pipeline without checks counts nothing and records no row-count history") {
  Project p;
  p.config().pipelines[0].checks.enabled = false;
  p.Run();
  p.Run();
  CHECK(p.store().CheckHistory(kOrders)->empty());
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("2025-03-15T14:25:00Z"));
}

TEST_CASE("strategy full_refresh replaces the target on every run; the watermark still never moves back") {
  Project p;
  p.config().pipelines[0].strategy = config::Strategy::kFullRefresh;
  p.Run();
  p.SourceSql("src__acme__us_west__shopify", "DELETE FROM orders WHERE id > 1000;");
  RunReport report = p.Run();
  CHECK(Outcome(report, kOrders).mode == CopyMode::kFull);
  CHECK(p.Count(kOrders) == 1000);
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("2025-03-15T14:25:00Z"));
  // No index advice for a table that never reads a window.
  for (const auto& t : p.MakePlan().tables) CHECK_FALSE(t.index_advice.has_value());
}

TEST_CASE("strategy merge: an updated source row replaces its target row; the plan carries the keys") {
  Project p;
  p.config().pipelines[0].strategy = config::Strategy::kMerge;
  p.config().pipelines[0].merge_keys = {"id"};
  p.Run();
  p.SourceSql("src__acme__us_west__shopify",
              "UPDATE orders SET total = 1.25, _fivetran_synced = '2025-03-15T15:00:00Z' WHERE id = 7;"
              "INSERT INTO orders VALUES (2001, 1, 10.0, '2025-03-15T15:00:01Z');");
  Plan plan = p.MakePlan({.table_pattern = kOrders});
  REQUIRE(plan.tables.size() == 1);
  CHECK(plan.tables[0].strategy == config::Strategy::kMerge);
  CHECK(plan.tables[0].sql.find("ON CONFLICT (\"id\")") != std::string::npos);
  auto parsed = replication::PlanFromJson(replication::PlanToJson(plan));
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
  CHECK(parsed->tables[0].merge_keys == std::vector<std::string>{"id"});
  RunReport report = p.Run();
  const TableOutcome& t = Outcome(report, kOrders);
  CHECK(t.rows_copied - t.rows_replaced == 1);  // one new row; row 7 (and the boundary row) replaced
  CHECK(p.Count(kOrders) == 2001);
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("2025-03-15T15:00:01Z"));
  for (const auto& c : report.check_results)
    CHECK_MESSAGE(c.passed, c.table << " " << c.check << ": " << c.detail);
}

TEST_CASE("integer cursors: the watermark is the exact integer; a watermark of the other kind is refused") {
  Project p;
  p.config().pipelines[0].timestamp_column = "id";
  p.config().pipelines[0].cursor_type = config::CursorType::kInteger;
  p.config().pipelines[0].checks.freshness.reset();
  p.Run();
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("2000"));
  p.SourceSql("src__acme__us_west__shopify", "INSERT INTO orders VALUES (9007199254740993, 1, 1.0, 'x');");
  RunReport report = p.Run();
  CHECK(Outcome(report, kOrders).rows_copied == 1);
  CHECK(Outcome(report, kOrders).cursor_compare == "integer");
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("9007199254740993"));

  REQUIRE(p.store().SetWatermark(kOrders, "2025-03-15T14:25:00Z").ok());
  auto plan = replication::BuildPlan(p.config(), p.wh(), p.store(), {});
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().message().find(kOrders) != std::string::npos);
  CHECK(plan.status().message().find("cursor_type = \"integer\"") != std::string::npos);
  CHECK(plan.status().message().find("--full-refresh") != std::string::npos);
  // The way out it names works.
  p.Run({.table_pattern = kOrders, .full_refresh = true});
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("9007199254740993"));
}

TEST_CASE("a source table with dots, quotes and spaces in its name gets a watermark like any other") {
  Project p;
  p.SourceSql("src__acme__us_west__shopify",
              "CREATE TABLE \"weird.a.b\" (id INTEGER PRIMARY KEY, _fivetran_synced TEXT);"
              "INSERT INTO \"weird.a.b\" VALUES (1, '2025-03-15T14:00:00Z');"
              "CREATE TABLE \"it's a \"\"t\"\"\" (id INTEGER PRIMARY KEY, _fivetran_synced TEXT);"
              "INSERT INTO \"it's a \"\"t\"\"\" VALUES (1, '2025-03-15T14:00:00Z');");
  const std::string weird = "acme_warehouse.staging__us_west__shopify.weird.a.b";
  const std::string quoted = "acme_warehouse.staging__us_west__shopify.it's a \"t\"";
  RunReport first = p.Run();
  CHECK(first.status == "success");
  CHECK(p.Watermark(weird) == std::optional<std::string>("2025-03-15T14:00:00Z"));
  CHECK(p.Watermark(quoted) == std::optional<std::string>("2025-03-15T14:00:00Z"));
  p.SourceSql("src__acme__us_west__shopify", "INSERT INTO \"weird.a.b\" VALUES (2, '2025-03-15T15:00:00Z');");
  RunReport second = p.Run();
  CHECK(second.status == "success");
  CHECK(Outcome(second, weird).mode == CopyMode::kIncremental);
  CHECK(Outcome(second, weird).rows_copied == 1);
  CHECK(p.Watermark(weird) == std::optional<std::string>("2025-03-15T15:00:00Z"));
  // The plan with those names round-trips through its stored form.
  Plan plan = p.MakePlan();
  auto parsed = replication::PlanFromJson(replication::PlanToJson(plan));
  REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
}

TEST_CASE("plan names each source without an index on its cursor column, with the CREATE INDEX") {
  Project p;
  p.SourceSql("src__acme__us_west__shopify", "CREATE INDEX orders_synced ON orders (_fivetran_synced);");
  for (const auto& t : p.MakePlan().tables) {
    if (t.target.Qualified() == kOrders) {
      CHECK_FALSE(t.index_advice.has_value());
    } else {
      REQUIRE(t.index_advice.has_value());
      CHECK(t.index_advice->create_index.find("CREATE INDEX") == 0);
      CHECK(t.index_advice->create_index.find("(\"_fivetran_synced\")") != std::string::npos);
    }
  }
}

TEST_CASE("freshness flags a table whose newest row is older than the threshold") {
  Project p;
  p.clock_ = kNow + std::chrono::hours(48);
  RunReport report = p.Run();
  int stale = 0;
  for (const auto& c : report.check_results) {
    if (c.check == "freshness" && !c.passed) ++stale;
  }
  CHECK(stale == 4);
}

TEST_CASE("a stop request skips the remaining tables and ends the run as interrupted") {
  Project p;
  std::atomic<bool> stop{true};
  RunReport report = p.Run({}, &stop);
  CHECK(report.status == "interrupted");
  CHECK(report.tables_copied() == 0);
  for (const auto& t : report.tables) CHECK(t.status == TableOutcome::Status::kSkipped);
  CHECK(!p.Watermark(kOrders).has_value());
}

TEST_CASE("a row committed after a run with exactly the watermark's timestamp is still copied") {
  Project p;
  p.Run();
  const auto watermark = p.Watermark(kOrders);
  REQUIRE(watermark == std::optional<std::string>("2025-03-15T14:25:00Z"));
  // A second connector batch in the same second as the last row copied.
  p.SourceSql("src__acme__us_west__shopify",
              "INSERT INTO orders VALUES (2001, 1, 10.0, '2025-03-15T14:25:00Z');");
  RunReport next = p.Run();
  CHECK(Outcome(next, kOrders).rows_copied == 1);  // the boundary row read again is already there
  CHECK(Outcome(next, kOrders).rows_replaced == 0);
  CHECK(p.Count(kOrders) == 2001);
  for (const auto& c : next.check_results)
    CHECK_MESSAGE(c.passed, c.table << " " << c.check << ": " << c.detail);
}

TEST_CASE(
    "crash window: the copy committed but its watermark was never saved; the next run duplicates nothing") {
  Project p;
  p.Run();
  p.SourceSql("src__acme__us_west__shopify",
              "INSERT INTO orders VALUES (2001, 1, 10.0, '2025-03-15T15:00:00Z'), (2002, 2, 20.0, "
              "'2025-03-15T15:01:00Z');");
  // What a run killed between its two commits leaves: the target has the new rows, the state does not know.
  Plan plan = p.MakePlan({.table_pattern = kOrders});
  REQUIRE(plan.tables.size() == 1);
  const replication::TablePlan& t = plan.tables[0];
  auto copied = p.wh().Copy(warehouse::CopyRequest{.source = t.source,
                                                   .target = t.target,
                                                   .timestamp_column = t.timestamp_column,
                                                   .watermark = t.start_watermark,
                                                   .metadata_columns = t.metadata_columns});
  REQUIRE_MESSAGE(copied.ok(), copied.status().message());
  CHECK(copied->rows_copied == 2);  // the boundary row read again is already there
  CHECK(p.Count(kOrders) == 2002);
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("2025-03-15T14:25:00Z"));
  // More rows arrive, then the next run starts from the old watermark again.
  p.SourceSql("src__acme__us_west__shopify",
              "INSERT INTO orders VALUES (2003, 3, 30.0, '2025-03-15T15:02:00Z');");
  RunReport next = p.Run();
  CHECK(Outcome(next, kOrders).status == TableOutcome::Status::kCopied);
  CHECK(p.Count(kOrders) == 2003);
  CHECK(p.Watermark(kOrders) == std::optional<std::string>("2025-03-15T15:02:00Z"));
  for (const auto& c : next.check_results)
    CHECK_MESSAGE(c.passed, c.table << " " << c.check << ": " << c.detail);
}

}  // namespace
