// JSON string escaping, the JSON writer and the table renderer.
#include "output.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"

namespace rocky::cli {
namespace {

std::string Json(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

TEST_CASE("JSON strings: quotes and backslashes are escaped") {
  CHECK(Json("plain") == R"("plain")");
  CHECK(Json("") == R"("")");
  CHECK(Json(R"(say "hi")") == R"("say \"hi\"")");
  CHECK(Json(R"(C:\state\db)") == R"("C:\\state\\db")");
  CHECK(Json("/slash/") == R"("/slash/")");
}

TEST_CASE("JSON strings: every control character is escaped, DEL is not") {
  CHECK(Json("a\nb\tc\rd") == R"("a\nb\tc\rd")");
  CHECK(Json("\b\f") == R"("\b\f")");
  CHECK(Json(std::string_view("\0", 1)) == R"("\u0000")");
  CHECK(Json("\x01\x1f") == R"("\u0001\u001f")");
  CHECK(Json("\x7f") == "\"\x7f\"");
  for (int c = 0; c < 0x20; ++c) {
    const std::string escaped = Json(std::string(1, static_cast<char>(c)));
    INFO("control character " << c);
    CHECK(escaped.size() > 3);
    CHECK(escaped[1] == '\\');
  }
}

TEST_CASE("JSON strings: valid UTF-8 passes through unchanged") {
  CHECK(Json("caf\xc3\xa9") == "\"caf\xc3\xa9\"");            // é, 2 bytes
  CHECK(Json("\xe2\x82\xac") == "\"\xe2\x82\xac\"");          // €, 3 bytes
  CHECK(Json("\xf0\x9f\x98\x80") == "\"\xf0\x9f\x98\x80\"");  // U+1F600, 4 bytes
  CHECK(Json("\xef\xbf\xbf") == "\"\xef\xbf\xbf\"");          // U+FFFF
  CHECK(Json("\xf4\x8f\xbf\xbf") == "\"\xf4\x8f\xbf\xbf\"");  // U+10FFFF, the last code point
}

// Plain printable ASCII is copied eight bytes at a time: a byte that needs escaping (or a UTF-8 check) must
// be caught at every position of a word, and the result must be what escaping byte by byte gives.
TEST_CASE("JSON strings: a byte needing care is escaped wherever it sits in a long plain string") {
  auto body = [](std::string_view s) {
    const std::string quoted = Json(s);
    return quoted.substr(1, quoted.size() - 2);
  };
  const std::string plain = "abcdefghijklmnopqrstuvwxyz0123456789ABCD";  // 40 bytes: five words
  const std::vector<std::string> specials = {
      "\"",   "\\",       "\n",           std::string(1, '\0'), "\x1f", "\x7f", "\x80",
      "\xff", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",   " ",    "~"};
  for (const std::string& special : specials) {
    for (size_t at = 0; at <= plain.size(); ++at) {
      const std::string text = plain.substr(0, at) + special + plain.substr(at);
      INFO("special byte(s) " << body(special) << " at " << at);
      CHECK(Json(text) == "\"" + plain.substr(0, at) + body(special) + plain.substr(at) + "\"");
    }
  }
}

TEST_CASE("JsonWriter::TakeOutput hands out the document in pieces that add up to it") {
  JsonWriter whole;
  JsonWriter pieces;
  std::string taken;
  for (JsonWriter* w : {&whole, &pieces}) w->BeginObject().Key("rows").BeginArray();
  for (int i = 0; i < 50; ++i) {
    for (JsonWriter* w : {&whole, &pieces}) w->BeginObject().Key("i").Int(i).EndObject();
    if (i % 7 == 0) taken += pieces.TakeOutput();
  }
  for (JsonWriter* w : {&whole, &pieces}) w->EndArray().EndObject();
  taken += pieces.TakeOutput();
  CHECK(pieces.complete());
  CHECK(pieces.str().empty());
  CHECK(taken == whole.str());
}

TEST_CASE("JSON strings: each byte of invalid UTF-8 becomes \\ufffd") {
  CHECK(Json("a\x80z") == R"("a\ufffdz")");                            // stray continuation byte
  CHECK(Json("\xc0\xaf") == R"("\ufffd\ufffd")");                      // overlong '/'
  CHECK(Json("\xe0\x80\xaf") == R"("\ufffd\ufffd\ufffd")");            // overlong 3-byte form
  CHECK(Json("\xed\xa0\x80") == R"("\ufffd\ufffd\ufffd")");            // UTF-16 surrogate U+D800
  CHECK(Json("\xf4\x90\x80\x80") == R"("\ufffd\ufffd\ufffd\ufffd")");  // above U+10FFFF
  CHECK(Json("\xe2\x82") == R"("\ufffd\ufffd")");                      // truncated at the end
  CHECK(Json("\xe2\x82x") == R"("\ufffd\ufffdx")");                    // truncated before ASCII
  CHECK(Json("\xff") == R"("\ufffd")");
}

TEST_CASE("JsonWriter places commas and colons in nested values") {
  JsonWriter json;
  CHECK_FALSE(json.complete());
  json.BeginObject()
      .Key("tables")
      .BeginArray()
      .String("watermarks")
      .String("runs")
      .BeginObject()
      .EndObject()
      .EndArray()
      .Key("count")
      .UInt(2)
      .Key("empty")
      .BeginArray()
      .EndArray()
      .Key("ok")
      .Bool(true)
      .Key("none")
      .Null()
      .EndObject();
  CHECK(json.str() == R"({"tables":["watermarks","runs",{}],"count":2,"empty":[],"ok":true,"none":null})");
  CHECK(json.complete());
}

TEST_CASE("JsonWriter escapes keys and writes numbers exactly") {
  JsonWriter json;
  json.BeginObject()
      .Key("a\"b")
      .Int(-42)
      .Key("max")
      .UInt(std::numeric_limits<uint64_t>::max())
      .Key("min")
      .Int(std::numeric_limits<int64_t>::min())
      .Key("tenth")
      .Double(0.1)
      .Key("nan")
      .Double(std::nan(""))
      .Key("inf")
      .Double(std::numeric_limits<double>::infinity())
      .EndObject();
  CHECK(json.str() == R"({"a\"b":-42,"max":18446744073709551615,"min":-9223372036854775808,)"
                      R"("tenth":0.1,"nan":null,"inf":null})");
}

TEST_CASE("JsonWriter::OptionalString writes the string, or null when there is none") {
  JsonWriter json;
  json.BeginObject()
      .Key("set")
      .OptionalString(std::optional<std::string>("2026-01-01T00:00:00Z"))
      .Key("empty")
      .OptionalString(std::optional<std::string>(""))
      .Key("unset")
      .OptionalString(std::nullopt)
      .EndObject();
  CHECK(json.str() == R"({"set":"2026-01-01T00:00:00Z","empty":"","unset":null})");
}

TEST_CASE("JsonWriter: a lone scalar is a whole document") {
  JsonWriter json;
  json.String("x");
  CHECK(json.complete());
  CHECK(json.str() == R"("x")");
}

TEST_CASE("Table aligns columns, counts UTF-8 code points and leaves no trailing spaces") {
  Table table({"TABLE", "KEYS", "NOTE"});
  table.SetAlign(1, Table::Align::kRight);
  table.AddRow({"watermarks", "12", "ok"});
  table.AddRow({"caf\xc3\xa9", "1234"});
  CHECK(table.rows() == 2);
  CHECK(table.Render() ==
        "TABLE       KEYS  NOTE\n"
        "watermarks    12  ok\n"
        "caf\xc3\xa9        1234\n");
}

TEST_CASE("Table without headers renders only its rows, indented") {
  Table table;
  table.AddRow({"--a", "first"});
  table.AddRow({"--longer", "second"});
  CHECK(table.Render(2) == "  --a       first\n  --longer  second\n");
  CHECK(Table().Render() == "");
}

TEST_CASE("DisplayWidth counts code points, not bytes") {
  CHECK(DisplayWidth("") == 0);
  CHECK(DisplayWidth("abc") == 3);
  CHECK(DisplayWidth("\xe2\x82\xac\xf0\x9f\x98\x80") == 2);
}

TEST_CASE("--output: table unless json was asked for") {
  const CommandSpec root{
      .name = "prog", .flags = {OutputFlag()}, .handler = [](const CommandContext&) { return 0; }};
  auto format_of = [&](std::vector<std::string_view> args) {
    const ParseResult result = ParseCommandLine(root, args);
    REQUIRE(std::holds_alternative<Invocation>(result));
    return OutputFormatOf(std::get<Invocation>(result));
  };
  CHECK(format_of({}) == OutputFormat::kTable);
  CHECK(format_of({"--output", "table"}) == OutputFormat::kTable);
  CHECK(format_of({"--output=json"}) == OutputFormat::kJson);
}

}  // namespace
}  // namespace rocky::cli
