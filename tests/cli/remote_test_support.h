// Shared by the CLI's remote-state tests (remote_state_test.cc, remote_valkey_test.cc): environment variables
// set for the programs a test runs, the S3 fixture's credentials, SQL on the shared warehouse, JSON lookups,
// the rocky.toml rewrite that points a project at a remote backend, and --events files.
#pragma once

#include <doctest/doctest.h>
#include <simdjson.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../sync/s3_fixture.h"
#include "program_runner.h"

namespace rocky::cli::testing {

inline const std::string kShopify = "fivetran_catalog/src__acme__us_west__shopify.sqlite";
inline const std::string kShopifyTarget = "acme_warehouse/staging__us_west__shopify.sqlite";

// Sets environment variables for the programs the test runs (they inherit them) and restores them after.
class ScopedEnv {
 public:
  ScopedEnv() = default;
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  void Set(const std::string& name, const std::string& value) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(name, old != nullptr ? std::optional<std::string>(old) : std::nullopt);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Credentials for the S3 fixture, as a pod would have them (IMDS off, so nothing waits on 169.254.169.254).
inline void UseFixtureCredentials(ScopedEnv& env, const std::string& secret = rocky_sync_test::kSecret) {
  env.Set("AWS_ACCESS_KEY_ID", rocky_sync_test::kAccessKey);
  env.Set("AWS_SECRET_ACCESS_KEY", secret);
  env.Set("AWS_REGION", rocky_sync_test::kRegion);
  env.Set("AWS_EC2_METADATA_DISABLED", "true");
}

// Runs SQL on `file` of the warehouse folder; returns the first column of the last row, if any.
inline std::string Sql(const std::string& warehouse, const std::string& file, const std::string& sql) {
  const std::string path = warehouse + "/" + file;
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  std::string last;
  char* error = nullptr;
  const int rc = sqlite3_exec(
      db, sql.c_str(),
      [](void* out, int columns, char** values, char**) {
        if (columns > 0) *static_cast<std::string*>(out) = values[0] != nullptr ? values[0] : "NULL";
        return 0;
      },
      &last, &error);
  INFO(sql << ": " << (error != nullptr ? error : ""));
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
  return last;
}

// Two new source orders, so the next run has something to copy incrementally.
inline void AddOrders(const std::string& warehouse) {
  Sql(warehouse, kShopify,
      "INSERT INTO orders (id, customer_id, total, _fivetran_synced) VALUES "
      "(9001, 1, 1.0, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')), (9002, 2, 2.0, strftime('%Y-%m-%dT%H:%M:%SZ', "
      "'now'))");
}

inline simdjson::dom::element ParseJson(simdjson::dom::parser& parser, const std::string& text) {
  simdjson::dom::element doc;
  const auto error = parser.parse(text).get(doc);
  REQUIRE_MESSAGE(error == simdjson::SUCCESS, "not JSON: " << text);
  return doc;
}

// A string field of a JSON object (an element, or a lookup result that holds one).
template <typename Json>
std::string_view Str(Json e, const char* key) {
  std::string_view out;
  REQUIRE_MESSAGE(e[key].get_string().get(out) == simdjson::SUCCESS, "no string field " << key);
  return out;
}

// Replaces the `backend = "local"` line `rocky init` wrote with `state` (the rest of the [state] section,
// each line ending in \n) plus a short timeout and quick retries, and points the warehouse at `warehouse`.
inline void UseRemoteState(const Sandbox& box, const std::string& state, const std::string& warehouse) {
  std::string text = ReadBytes(box.File("rocky.toml"));
  const std::string local = "backend = \"local\"";
  auto at = text.find(local);
  REQUIRE(at != std::string::npos);
  text.replace(at, text.find('\n', at) - at,
               state +
                   "transfer_timeout_seconds = 20\n"
                   "[state.retry]\nmax_retries = 1\ninitial_backoff_ms = 10\nmax_backoff_ms = 20\n");
  const std::string adapter = "path = \"warehouse\"";
  at = text.find(adapter);
  REQUIRE(at != std::string::npos);
  text.replace(at, text.find('\n', at) - at, "path = \"" + warehouse + "\"");
  WriteBytes(box.File("rocky.toml"), text);
}

// The JSON lines of an --events file.
inline std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The lines of `lines` whose "event" is `name` ("state.lease"), or, with name "transfers", the state.download
// and state.upload ones: a test of transfers is not about the lease's steps around them.
inline std::vector<std::string> EventsNamed(const std::vector<std::string>& lines, const std::string& name) {
  std::vector<std::string> out;
  for (const std::string& line : lines) {
    const bool transfer = line.find("\"event\":\"state.download\"") != std::string::npos ||
                          line.find("\"event\":\"state.upload\"") != std::string::npos;
    if (name == "transfers" ? transfer : line.find("\"event\":\"" + name + "\"") != std::string::npos) {
      out.push_back(line);
    }
  }
  return out;
}

}  // namespace rocky::cli::testing
