// Output shared by `rocky` and `rocky-inspect`: aligned tables for people, JSON for programs
// (`--output table|json`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "rocky/base/json_writer.h"

namespace rocky::cli {

enum class OutputFormat : unsigned char { kTable, kJson };

// The `--output table|json` flag, identical wherever it is accepted.
FlagSpec OutputFlag();
// The format an invocation asked for; table when --output was not given. ParseCommandLine has already
// rejected values outside the flag's choices.
OutputFormat OutputFormatOf(const Invocation& invocation);

// The JSON writer moved to the state library (below both cli and state) so it is not duplicated; these
// names keep every existing caller working.
using ::rocky::base::AppendJsonString;
using ::rocky::base::JsonWriter;

// Columns of text aligned for a terminal:
//   Table t({"TABLE", "KEYS"});
//   t.SetAlign(1, Table::Align::kRight);
//   t.AddRow({"watermarks", "12"});
//   std::cout << t.Render();
// Columns are separated by two spaces, widths count UTF-8 code points, and no line has trailing spaces.
class Table {
 public:
  enum class Align : unsigned char { kLeft, kRight };

  // Without headers there is no header row (as in --help's option list).
  explicit Table(std::vector<std::string> headers = {});

  void SetAlign(size_t column, Align align);
  // Rows may have fewer cells than others; the missing ones are blank.
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }

  // Every line is prefixed by `indent` spaces and ends with '\n'.
  std::string Render(size_t indent = 0) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<Align> aligns_;
};

// Number of code points in a UTF-8 string (bytes that are not continuation bytes): the column width of text
// without wide or combining characters, which is what rocky prints.
size_t DisplayWidth(std::string_view s);

}  // namespace rocky::cli
