#include "rocky/base/json_writer.h"

#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>

namespace rocky::base {
namespace {

// Length of the well-formed UTF-8 sequence at the start of s, or 0 when there is none (Unicode 15, table 3-7:
// no overlong forms, no surrogates, nothing above U+10FFFF).
size_t ValidUtf8SequenceLength(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto in = [&](size_t i, unsigned char lo, unsigned char hi) {
    return i < s.size() && byte(i) >= lo && byte(i) <= hi;
  };
  const unsigned char lead = byte(0);
  if (lead <= 0x7F) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return in(1, 0x80, 0xBF) ? 2 : 0;
  if (lead >= 0xE0 && lead <= 0xEF) {
    // E0 excludes overlong forms, ED excludes the UTF-16 surrogates.
    const unsigned char lo = lead == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = lead == 0xED ? 0x9F : 0xBF;
    return in(1, lo, hi) && in(2, 0x80, 0xBF) ? 3 : 0;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    // F0 excludes overlong forms, F4 excludes code points above U+10FFFF.
    const unsigned char lo = lead == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = lead == 0xF4 ? 0x8F : 0xBF;
    return in(1, lo, hi) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

// JSON's two-character escape for c, or nullptr when it has none.
const char* ShortEscape(unsigned char c) {
  switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: return nullptr;
  }
}

// Length of the run at the start of s made of bytes that go out unchanged and need no UTF-8 check: printable
// ASCII other than '"' and '\\'. Eight bytes at a time (the common case: table names and timestamps are all
// such bytes, and this loop is most of the cost of a large listing).
size_t PlainAsciiRun(std::string_view s) {
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHigh = 0x8080808080808080ULL;
    // A byte is flagged when it has its high bit set, is below 0x20, or equals '"' or '\\' (the zero-byte
    // test (x - 1) & ~x & 0x80 on x = w XOR c).
    const uint64_t below_space = (w - kOnes * 0x20) & ~w;
    const uint64_t q = w ^ (kOnes * '"');
    const uint64_t b = w ^ (kOnes * '\\');
    const uint64_t quote = (q - kOnes) & ~q;
    const uint64_t backslash = (b - kOnes) & ~b;
    if (((below_space | quote | backslash) & kHigh) != 0 || (w & kHigh) != 0) break;
  }
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
  }
  return i;
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    if (const size_t plain = PlainAsciiRun(s.substr(i)); plain > 0) {
      out.append(s.data() + i, plain);
      i += plain;
      continue;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (const char* escape = ShortEscape(c)) {
      out += escape;
      ++i;
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
      ++i;
    } else if (const size_t length = ValidUtf8SequenceLength(s.substr(i)); length > 0) {
      out.append(s.substr(i, length));
      i += length;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
}

JsonWriter& JsonWriter::BeginObject() {
  BeforeValue();
  out_ += '{';
  frames_.push_back(Frame{.is_object = true});
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  assert(!frames_.empty() && frames_.back().is_object && !frames_.back().key_pending);
  frames_.pop_back();
  out_ += '}';
  AfterValue();
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  BeforeValue();
  out_ += '[';
  frames_.push_back(Frame{.is_object = false});
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  assert(!frames_.empty() && !frames_.back().is_object);
  frames_.pop_back();
  out_ += ']';
  AfterValue();
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  assert(!frames_.empty() && frames_.back().is_object && !frames_.back().key_pending);
  Frame& frame = frames_.back();
  if (frame.has_members) out_ += ',';
  AppendJsonString(out_, key);
  out_ += ':';
  frame.key_pending = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view value) {
  BeforeValue();
  AppendJsonString(out_, value);
  AfterValue();
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t value) {
  BeforeValue();
  out_ += std::to_string(value);
  AfterValue();
  return *this;
}

JsonWriter& JsonWriter::UInt(uint64_t value) {
  BeforeValue();
  out_ += std::to_string(value);
  AfterValue();
  return *this;
}

JsonWriter& JsonWriter::Double(double value) {
  if (!std::isfinite(value)) return Null();
  BeforeValue();
  char buffer[32];
  // Shortest text that reads back as the same double.
  auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
  assert(error == std::errc());
  out_.append(buffer, end);
  AfterValue();
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  BeforeValue();
  out_ += value ? "true" : "false";
  AfterValue();
  return *this;
}

JsonWriter& JsonWriter::Null() {
  BeforeValue();
  out_ += "null";
  AfterValue();
  return *this;
}

JsonWriter& JsonWriter::OptionalString(const std::optional<std::string>& value) {
  return value ? String(*value) : Null();
}

std::string JsonWriter::TakeOutput() {
  std::string taken;
  taken.swap(out_);
  return taken;
}

void JsonWriter::BeforeValue() {
  if (frames_.empty()) {
    assert(!wrote_top_level_value_ && "a JsonWriter holds one top-level value");
    return;
  }
  Frame& frame = frames_.back();
  if (frame.is_object) {
    assert(frame.key_pending && "a value inside an object needs a Key() first");
    return;
  }
  if (frame.has_members) out_ += ',';
}

void JsonWriter::AfterValue() {
  if (frames_.empty()) {
    wrote_top_level_value_ = true;
    return;
  }
  Frame& frame = frames_.back();
  frame.has_members = true;
  frame.key_pending = false;
}

}  // namespace rocky::base
