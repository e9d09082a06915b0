// rocky-replication-bench: what a replication run costs against what it copies (issue 17), measured the way a
// user runs it: the real `rocky run` binary, as a child process, on a generated SQLite warehouse.
//
// Per table size (--rows, default 1,000,000 and 10,000,000) and per checks setting (--checks, default on and
// off: with [pipeline.*.checks] enabled, as `rocky init` writes it, every run also counts the source's and
// the target's rows for the row_count check and the anomaly history), on a fresh warehouse folder:
//   1. generate the source: fivetran_catalog.src__bench__us__shop.orders (id INTEGER PRIMARY KEY,
//      customer_id, total, _fivetran_synced TEXT, one row every 3 s, RFC 3339 with Z) with an index on
//      _fivetran_synced, as a Fivetran destination would have it;
//   2. `rocky run`: the first run, a full refresh of the whole table;
//   3. `rocky run` again: an incremental run with nothing new to copy;
//   4. append --new-rows (10,000) newer rows to the source, `rocky run`: an incremental run copying them;
//   5. check that the target holds exactly the source's rows.
// Each run's wall time and peak resident memory (the child's ru_maxrss from wait4) are printed with the
// ratios to the full refresh; the targets are nothing-to-copy <= 2 % and 10,000 rows <= 5 % of the full
// refresh, and peak memory flat in the table's size.
//
// Usage: rocky-replication-bench --rocky PATH [--rows 1000000,10000000] [--checks on,off] [--new-rows 10000]
//                                [--dir DIR] [--json FILE] [--keep]
// Exit 0 when every run succeeded and every target holds its source's rows (a missed ratio target is printed,
// not an error: the table is the result); 1 otherwise. The last line is "[check] N passed, M failed", one
// check per size and setting, which scripts/test reads for the CI smoke run.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string rocky;
  std::vector<uint64_t> rows{1000000, 10000000};
  std::vector<bool> checks{true, false};
  uint64_t new_rows = 10000;
  std::string dir = "build/replication-bench-data";
  std::string json;
  bool keep = false;
};

struct Measure {
  double seconds = 0;
  long peak_rss_kib = 0;
  int exit_code = -1;
  std::string output;
};

struct SizeResult {
  uint64_t rows = 0;
  bool checks = true;
  Measure full, nothing, some;
  bool exact = false;
  std::string error;
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "rocky-replication-bench: %s\nusage: rocky-replication-bench --rocky PATH [--rows N[,N...]] "
               "[--checks on,off] [--new-rows N] [--dir DIR] [--json FILE] [--keep]\n",
               why.c_str());
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--rocky") {
      o.rocky = value();
    } else if (arg == "--rows") {
      o.rows.clear();
      std::stringstream list(value());
      for (std::string item; std::getline(list, item, ',');) o.rows.push_back(std::stoull(item));
    } else if (arg == "--checks") {
      o.checks.clear();
      std::stringstream list(value());
      for (std::string item; std::getline(list, item, ',');) {
        if (item != "on" && item != "off") Usage("--checks takes on and/or off");
        o.checks.push_back(item == "on");
      }
    } else if (arg == "--new-rows") {
      o.new_rows = std::stoull(value());
    } else if (arg == "--dir") {
      o.dir = value();
    } else if (arg == "--json") {
      o.json = value();
    } else if (arg == "--keep") {
      o.keep = true;
    } else {
      Usage("unknown argument " + arg);
    }
  }
  if (o.rocky.empty()) Usage("--rocky is required");
  o.rocky = std::filesystem::absolute(o.rocky).string();  // the runs start in their own folders
  if (o.rows.empty()) Usage("--rows is empty");
  if (o.checks.empty()) Usage("--checks is empty");
  return o;
}

bool Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite: %s: %s\n", sql.c_str(), error != nullptr ? error : "?");
    sqlite3_free(error);
    return false;
  }
  return true;
}

int64_t QueryInt(const std::string& file, const std::string& sql) {
  sqlite3* db = nullptr;
  int64_t value = -1;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      value = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return value;
}

// Appends rows [first, first + count) to the source; row i is stamped 2024-01-01 + 3 i seconds.
bool AppendRows(const std::string& file, uint64_t first, uint64_t count, bool create) {
  sqlite3* db = nullptr;
  if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) return false;
  bool ok = Exec(db, "PRAGMA journal_mode=OFF") && Exec(db, "PRAGMA synchronous=OFF") && Exec(db, "BEGIN");
  if (ok && create) {
    ok =
        Exec(
            db,
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, total REAL NOT NULL, "
            "_fivetran_synced TEXT NOT NULL)") &&
        Exec(db, "CREATE INDEX orders_synced ON orders (_fivetran_synced)");
  }
  sqlite3_stmt* stmt = nullptr;
  ok = ok &&
       sqlite3_prepare_v2(db, "INSERT INTO orders VALUES (?1, ?2, ?3, ?4)", -1, &stmt, nullptr) == SQLITE_OK;
  for (uint64_t i = first; ok && i < first + count; ++i) {
    const time_t at = 1704067200 + static_cast<time_t>(3 * i);
    struct tm utc {};
    gmtime_r(&at, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
    sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(i + 1));
    sqlite3_bind_int64(stmt, 2, static_cast<sqlite3_int64>(i % 50000));
    sqlite3_bind_double(stmt, 3, static_cast<double>(i % 100000) / 100.0);
    sqlite3_bind_text(stmt, 4, stamp, -1, SQLITE_TRANSIENT);
    ok = sqlite3_step(stmt) == SQLITE_DONE;
    sqlite3_reset(stmt);
  }
  sqlite3_finalize(stmt);
  ok = ok && Exec(db, "COMMIT");
  sqlite3_close(db);
  return ok;
}

// Runs `rocky --config C --state-path S run --output json` in `dir`, timing it and reading its peak RSS.
Measure RunRocky(const Options& o, const std::string& dir) {
  Measure m;
  const std::string out_path = dir + "/run.json";
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(127);
    const int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0) _exit(127);
    execl(o.rocky.c_str(), o.rocky.c_str(), "--config", "rocky.toml", "--state-path", "state.redb", "run",
          "--output", "json", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  if (pid < 0 || wait4(pid, &status, 0, &usage) != pid) return m;
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  m.peak_rss_kib = usage.ru_maxrss;
  m.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream in(out_path);
  std::stringstream text;
  text << in.rdbuf();
  m.output = text.str();
  return m;
}

// "rows_copied":N of the run report (the top-level one, after the tables list).
int64_t RowsCopied(const std::string& json) {
  const std::string key = "\"rows_copied\":";
  const size_t at = json.rfind(key);
  if (at == std::string::npos) return -1;
  return std::atoll(json.c_str() + at + key.size());
}

constexpr const char* kConfig = R"([adapter]
type = "sqlite"
path = "warehouse"

[pipeline.bench]
timestamp_column = "_fivetran_synced"
metadata_columns = [{ name = "_loaded_by", type = "STRING", value = "NULL" }]

[pipeline.bench.source]
catalog = "fivetran_catalog"
schema_pattern = { prefix = "src__", separator = "__", components = ["tenant", "regions...", "source"] }

[pipeline.bench.target]
catalog_template = "{tenant}_warehouse"
schema_template = "staging__{regions}__{source}"

[pipeline.bench.checks]
enabled = %s
row_count = true
freshness = { threshold_seconds = 86400 }
)";

SizeResult RunSize(const Options& o, uint64_t rows, bool checks) {
  SizeResult r;
  r.rows = rows;
  r.checks = checks;
  const std::string dir =
      std::filesystem::absolute(o.dir + "/rows-" + std::to_string(rows) + (checks ? "-checks" : "-nochecks"))
          .string();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir + "/warehouse/fivetran_catalog", ec);
  {
    char config[2048];
    std::snprintf(config, sizeof config, kConfig, checks ? "true" : "false");
    std::ofstream(dir + "/rocky.toml") << config;
  }
  const std::string source = dir + "/warehouse/fivetran_catalog/src__bench__us__shop.sqlite";
  const std::string target = dir + "/warehouse/bench_warehouse/staging__us__shop.sqlite";
  const std::string tag = std::to_string(rows) + " rows, checks " + (checks ? "on" : "off");
  std::fprintf(stderr, "[%s] generating the source...\n", tag.c_str());
  if (!AppendRows(source, 0, rows, true)) {
    r.error = "cannot generate the source";
    return r;
  }
  auto check = [&](const Measure& m, const char* what, int64_t expected_rows) {
    if (m.exit_code != 0) {
      r.error = std::string(what) + ": rocky exited " + std::to_string(m.exit_code) + ": " +
                m.output.substr(0, 400);
      return false;
    }
    if (RowsCopied(m.output) != expected_rows) {
      r.error = std::string(what) + ": copied " + std::to_string(RowsCopied(m.output)) + " rows, expected " +
                std::to_string(expected_rows);
      return false;
    }
    std::fprintf(stderr, "[%s] %s: %.3f s, peak RSS %ld KiB\n", tag.c_str(), what, m.seconds, m.peak_rss_kib);
    return true;
  };
  r.full = RunRocky(o, dir);
  if (!check(r.full, "full refresh", static_cast<int64_t>(rows))) return r;
  r.nothing = RunRocky(o, dir);
  if (!check(r.nothing, "incremental, nothing new", 0)) return r;
  if (!AppendRows(source, rows, o.new_rows, false)) {
    r.error = "cannot append the new rows";
    return r;
  }
  r.some = RunRocky(o, dir);
  if (!check(r.some, "incremental, new rows", static_cast<int64_t>(o.new_rows))) return r;
  const int64_t source_rows = QueryInt(source, "SELECT count(*) FROM orders");
  const int64_t target_rows = QueryInt(target, "SELECT count(*) FROM orders");
  const int64_t target_ids = QueryInt(target, "SELECT count(DISTINCT id) FROM orders");
  r.exact = source_rows == static_cast<int64_t>(rows + o.new_rows) && target_rows == source_rows &&
            target_ids == source_rows;
  if (!r.exact) {
    r.error = "target holds " + std::to_string(target_rows) + " rows (" + std::to_string(target_ids) +
              " distinct ids), source " + std::to_string(source_rows);
  }
  if (!o.keep) std::filesystem::remove_all(dir, ec);
  return r;
}

std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n);
  for (size_t i = digits.size(); i > 3; i -= 3) digits.insert(i - 3, ",");
  return digits;
}

std::string Mib(long kib) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f MiB", static_cast<double>(kib) / 1024.0);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseArgs(argc, argv);
  std::vector<SizeResult> results;
  for (const bool checks : o.checks) {
    for (const uint64_t rows : o.rows) results.push_back(RunSize(o, rows, checks));
  }

  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  std::printf(
      "| source rows | checks | full refresh | nothing to copy | ratio (target <= 2%%) | %s new rows | "
      "ratio (target <= 5%%) | peak RSS full / nothing / new |\n",
      Grouped(o.new_rows).c_str());
  std::printf("| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
  bool ok = true;
  for (const SizeResult& r : results) {
    if (!r.error.empty()) {
      std::printf("| %s | %s | failed: %s |\n", Grouped(r.rows).c_str(), r.checks ? "on" : "off",
                  r.error.c_str());
      ok = false;
      continue;
    }
    const double nothing_pct = r.nothing.seconds / r.full.seconds * 100.0;
    const double some_pct = r.some.seconds / r.full.seconds * 100.0;
    std::printf("| %s | %s | %.2f s | %.3f s | %.2f %% %s | %.3f s | %.2f %% %s | %s / %s / %s |\n",
                Grouped(r.rows).c_str(), r.checks ? "on" : "off", r.full.seconds, r.nothing.seconds,
                nothing_pct, nothing_pct <= 2.0 ? "(met)" : "(MISSED)", r.some.seconds, some_pct,
                some_pct <= 5.0 ? "(met)" : "(MISSED)", Mib(r.full.peak_rss_kib).c_str(),
                Mib(r.nothing.peak_rss_kib).c_str(), Mib(r.some.peak_rss_kib).c_str());
  }
  std::printf("\nload average at the end: %.2f %.2f %.2f (1, 5, 15 min) on %ld cores\n", load[0], load[1],
              load[2], sysconf(_SC_NPROCESSORS_ONLN));
  if (!o.json.empty()) {
    std::ofstream json(o.json);
    json << "{\"new_rows\":" << o.new_rows << ",\"load_average\":[" << load[0] << "," << load[1] << ","
         << load[2] << "],\"sizes\":[";
    for (size_t i = 0; i < results.size(); ++i) {
      const SizeResult& r = results[i];
      json << (i > 0 ? "," : "") << "{\"rows\":" << r.rows << ",\"checks\":" << (r.checks ? "true" : "false")
           << ",\"ok\":" << (r.error.empty() ? "true" : "false");
      for (const auto& [name, m] : {std::pair<const char*, const Measure*>{"full", &r.full},
                                    {"nothing", &r.nothing},
                                    {"new_rows", &r.some}}) {
        json << ",\"" << name << "\":{\"seconds\":" << m->seconds << ",\"peak_rss_kib\":" << m->peak_rss_kib
             << "}";
      }
      json << "}";
    }
    json << "]}\n";
  }
  // The line scripts/test reads for a test that is not a doctest binary: one check per size and setting
  // (every run succeeded and the target holds exactly the source's rows).
  const size_t failed = static_cast<size_t>(
      std::count_if(results.begin(), results.end(), [](const SizeResult& r) { return !r.error.empty(); }));
  std::printf("[check] %zu passed, %zu failed\n", results.size() - failed, failed);
  return ok ? 0 : 1;
}
