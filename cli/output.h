// Output shared by `rocky` and `rocky-inspect`: aligned tables for people, JSON for programs
// (`--output table|json`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"

namespace rocky::cli {

enum class OutputFormat : unsigned char { kTable, kJson };

// The `--output table|json` flag, identical wherever it is accepted.
FlagSpec OutputFlag();
// The format an invocation asked for; table when --output was not given. ParseCommandLine has already
// rejected values outside the flag's choices.
OutputFormat OutputFormatOf(const Invocation& invocation);

// Appends s to out as a quoted JSON string. Escapes '"', '\\' and every control character below 0x20;
// passes valid UTF-8 through unchanged; replaces each byte of an invalid UTF-8 sequence (stray continuation
// bytes, overlong forms, surrogates, code points above U+10FFFF, truncated sequences) with \ufffd, so the
// output is always valid JSON even for arbitrary bytes.
void AppendJsonString(std::string& out, std::string_view s);

// Writes one JSON value incrementally into a string, placing the commas and colons itself:
//   JsonWriter w;
//   w.BeginObject().Key("tables").BeginArray().String("watermarks").EndArray().EndObject();
//   w.str()  // {"tables":["watermarks"]}
// Output is compact (one line); pipe it through jq to read it. Misuse (a value where a key is due, an
// unbalanced End) is a programming error caught by assertions.
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // Inside an object, precedes every value.
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& UInt(uint64_t value);
  // NaN and infinities have no JSON form and are written as null.
  JsonWriter& Double(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  // True once one whole value has been written and every object and array closed.
  bool complete() const { return wrote_top_level_value_ && frames_.empty(); }
  const std::string& str() const { return out_; }

 private:
  struct Frame {
    bool is_object;
    bool has_members = false;
    bool key_pending = false;  // objects only: Key() was written, its value not yet
  };

  // Writes the separator a new value needs at this point.
  void BeforeValue();
  void AfterValue();

  std::string out_;
  std::vector<Frame> frames_;
  bool wrote_top_level_value_ = false;
};

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
