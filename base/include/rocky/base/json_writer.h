// JSON text writing for every layer: the state store (export), the sync layer's transfer events and the
// programs (--output json). It lives in the base library, below all of them, so there is one escaping routine
// (with its UTF-8 check) rather than one per layer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rocky::base {

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
  // The string, or null when there is none (a watermark not yet set).
  JsonWriter& OptionalString(const std::optional<std::string>& value);

  // True once one whole value has been written and every object and array closed.
  bool complete() const { return wrote_top_level_value_ && frames_.empty(); }
  // The text written so far (all of it, unless TakeOutput took a part).
  const std::string& str() const { return out_; }
  // Hands out the text written since the last call and forgets it, keeping the writer's place in the
  // document: a large document (a listing of 100,000 watermarks) can be written out in pieces instead of held
  // whole.
  std::string TakeOutput();

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

}  // namespace rocky::base
