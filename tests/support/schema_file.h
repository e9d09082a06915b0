// SchemaFile: one schema file of the embedded SQLite warehouse (<folder>/<catalog>/<schema>.sqlite) opened
// directly, as the connector filling the source, another tool or a person with sqlite3 would, to set up and
// look at what rocky's copies read and write. One copy for the warehouse tests that had one each.
#pragma once

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>
#include <vector>

namespace rocky_test {

class SchemaFile {
 public:
  // Creates the catalog folder and the file when missing. Waits up to 5 s for a lock another connection
  // holds.
  SchemaFile(const std::string& folder, const std::string& catalog, const std::string& schema) {
    std::filesystem::create_directories(folder + "/" + catalog);
    const std::string path = folder + "/" + catalog + "/" + schema + ".sqlite";
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~SchemaFile() { sqlite3_close(db_); }
  SchemaFile(const SchemaFile&) = delete;
  SchemaFile& operator=(const SchemaFile&) = delete;

  // Runs sql, failing the test (with the statement and SQLite's message) when it fails.
  void Exec(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    INFO(sql, ": ", error == nullptr ? "" : error);
    sqlite3_free(error);
    REQUIRE(rc == SQLITE_OK);
  }

  // The result code of a statement expected to fail (extended code).
  int ExecCode(const std::string& sql) {
    sqlite3_extended_result_codes(db_, 1);
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }

  // Every row, columns joined by '|' (NULL as "NULL").
  std::vector<std::string> Rows(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::vector<std::string> rows;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
        if (i > 0) row += '|';
        row += text == nullptr ? "NULL" : text;
      }
      rows.push_back(row);
    }
    sqlite3_finalize(stmt);
    return rows;
  }

  // The one row sql yields (requires exactly one).
  std::string One(const std::string& sql) {
    const std::vector<std::string> rows = Rows(sql);
    REQUIRE(rows.size() == 1);
    return rows[0];
  }

  sqlite3* db() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace rocky_test
