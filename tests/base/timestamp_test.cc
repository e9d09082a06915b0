#include "rocky/base/timestamp.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

namespace {

using rocky::base::NormalizeTimestamp;

std::string Norm(const char* text) {
  auto r = NormalizeTimestamp(text);
  REQUIRE_MESSAGE(r.ok(), text << ": " << r.status().message());
  return *r;
}

TEST_CASE("timestamps are normalized to UTC with Z") {
  CHECK(Norm("2025-03-15T14:30:00Z") == "2025-03-15T14:30:00Z");
  CHECK(Norm("2025-03-15t14:30:00z") == "2025-03-15T14:30:00Z");
  CHECK(Norm("2025-03-15T16:30:00+02:00") == "2025-03-15T14:30:00Z");
  CHECK(Norm("2025-03-15T09:00:00-0530") == "2025-03-15T14:30:00Z");
  CHECK(Norm("2025-03-15T16:30:00+02") == "2025-03-15T14:30:00Z");
  CHECK(Norm("2025-03-15 14:30:00Z") == "2025-03-15T14:30:00Z");
  // Fractions are kept (trailing zeros dropped) and offsets cross day, month and year boundaries.
  CHECK(Norm("2025-03-15T14:30:00.123456Z") == "2025-03-15T14:30:00.123456Z");
  CHECK(Norm("2025-03-15T14:30:00.500+01:00") == "2025-03-15T13:30:00.5Z");
  CHECK(Norm("2025-03-15T14:30:00.000Z") == "2025-03-15T14:30:00Z");
  CHECK(Norm("2025-01-01T00:30:00+01:00") == "2024-12-31T23:30:00Z");
  CHECK(Norm("2024-02-28T23:00:00-02:00") == "2024-02-29T01:00:00Z");
  // Every digit of the fixed-width form, at both ends of the four-digit years.
  CHECK(Norm("0000-01-01T00:00:00Z") == "0000-01-01T00:00:00Z");
  CHECK(Norm("0099-03-01T00:00:00+01:00") == "0099-02-28T23:00:00Z");
  CHECK(Norm("1987-10-09T08:07:06Z") == "1987-10-09T08:07:06Z");
  CHECK(Norm("9999-12-31T23:59:59.999999999Z") == "9999-12-31T23:59:59.999999999Z");
  CHECK(Norm("9999-12-31T23:59:59-00:00") == "9999-12-31T23:59:59Z");
}

TEST_CASE("bad timestamps are refused with a message naming the value") {
  for (const char* bad :
       {"", "yesterday", "2025-03-15", "2025-03-15T14:30:00", "2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
        "2025-03-15T24:00:00Z", "2025-03-15T14:60:00Z", "2025-03-15T14:30:00ZZ", "2025-03-15T14:30:00+2:00",
        "2025-03-15T14:30:00.Z", "2025-03-15T14:30:00.1234567890Z", "2025-03-15T14:30:00+24:00",
        "0000-01-01T00:00:00+01:00", "2025-3-15T14:30:00Z"}) {
    auto r = NormalizeTimestamp(bad);
    CHECK_MESSAGE(!r.ok(), bad);
    if (!r.ok()) {
      CHECK(r.status().message().find("invalid timestamp '" + std::string(bad) + "'") != std::string::npos);
    }
  }
}

TEST_CASE("FormatUtc writes whole seconds with Z") {
  using namespace std::chrono;
  CHECK(rocky::base::FormatUtc(system_clock::time_point(seconds(0))) == "1970-01-01T00:00:00Z");
  CHECK(rocky::base::FormatUtc(system_clock::time_point(seconds(1742049000) + milliseconds(999))) ==
        "2025-03-15T14:30:00Z");
}

}  // namespace

TEST_CASE("ParseTimestamp gives the instant in whole seconds") {
  auto t = rocky::base::ParseTimestamp("2025-03-15T16:30:00.75+02:00");
  REQUIRE(t.ok());
  CHECK(std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count() == 1742049000);
  CHECK(rocky::base::FormatUtc(*t) == "2025-03-15T14:30:00Z");
  CHECK(!rocky::base::ParseTimestamp("2025-02-30T00:00:00Z").ok());
}
