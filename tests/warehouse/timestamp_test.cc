// CanonicalTimestamp: the fixed-width UTC form behind rocky_ts().
#include <doctest/doctest.h>

#include "rocky/warehouse/sqlite_warehouse.h"

namespace rocky::warehouse {
namespace {

TEST_CASE("CanonicalTimestamp: every accepted spelling of an instant maps to one fixed-width UTC text") {
  const std::string expected = "2025-03-15T14:30:00.000000000Z";
  for (const char* text :
       {"2025-03-15T14:30:00Z", "2025-03-15 14:30:00", "2025-03-15t14:30:00z", "2025-03-15 16:30:00+02:00",
        "2025-03-15T16:30:00+0200", "2025-03-15T16:30:00+02", "2025-03-15T09:00:00-05:30",
        "2025-03-15T14:30:00.000Z", "2025-03-15T14:30:00+00:00"}) {
    CHECK_MESSAGE(CanonicalTimestamp(text) == expected, text);
  }
  CHECK(CanonicalTimestamp("2025-03-15 14:30:00.5") == "2025-03-15T14:30:00.500000000Z");
  CHECK(CanonicalTimestamp("2025-03-15T14:30:00,5Z") == "2025-03-15T14:30:00.500000000Z");
  CHECK(CanonicalTimestamp("2025-03-15T14:30:00.123456789Z") == "2025-03-15T14:30:00.123456789Z");
  // Offsets move across days, months and years, including into a leap day.
  CHECK(CanonicalTimestamp("2025-01-01T01:00:00+02:00") == "2024-12-31T23:00:00.000000000Z");
  CHECK(CanonicalTimestamp("2024-02-28T23:30:00-01:00") == "2024-02-29T00:30:00.000000000Z");
  CHECK(CanonicalTimestamp("2023-02-28T23:30:00-01:00") == "2023-03-01T00:30:00.000000000Z");
  CHECK(CanonicalTimestamp("2000-02-29T00:00:00Z") == "2000-02-29T00:00:00.000000000Z");
  CHECK(CanonicalTimestamp("0000-01-01T00:00:00Z") == "0000-01-01T00:00:00.000000000Z");
  CHECK(CanonicalTimestamp("9999-12-31T23:59:59.999999999Z") == "9999-12-31T23:59:59.999999999Z");
}

TEST_CASE("CanonicalTimestamp: garbage and out-of-range values are rejected") {
  for (const char* text : {"",
                           "garbage",
                           "2025-03-15",
                           "2025-03-15T14:30",
                           "2025-03-15T14:30:00ZZ",
                           " 2025-03-15T14:30:00Z",
                           "2025-03-15T14:30:00Z ",
                           "2025-3-15T14:30:00Z",
                           "2025-03-15X14:30:00Z",
                           "2025-13-01T00:00:00Z",
                           "2025-00-01T00:00:00Z",
                           "2025-04-31T00:00:00Z",
                           "2025-02-29T00:00:00Z",
                           "1900-02-29T00:00:00Z",
                           "2025-03-00T00:00:00Z",
                           "2025-03-15T24:00:00Z",
                           "2025-03-15T14:60:00Z",
                           "2025-03-15T14:30:60Z",
                           "2025-03-15T14:30:00.Z",
                           "2025-03-15T14:30:00.1234567890Z",
                           "2025-03-15T14:30:00+24:00",
                           "2025-03-15T14:30:00+02:60",
                           "2025-03-15T14:30:00+2",
                           "2025-03-15T14:30:00+02:",
                           "2025-03-15T14:30:00+02:0",
                           "2025-03-15T14:30:00 +02:00",
                           "0000-01-01T00:00:00+01:00",
                           "9999-12-31T23:59:59-01:00",
                           "+2025-03-15T14:30:00Z",
                           "1741999800"}) {
    CHECK_MESSAGE(!CanonicalTimestamp(text).has_value(), text);
  }
}

TEST_CASE("CanonicalTimestamp: the text orders as the instants do") {
  const std::vector<std::string> ascending = {"2025-03-15T14:29:59.999999999Z", "2025-03-15 16:30:00+02:00",
                                              "2025-03-15T14:30:00.123456789Z", "2025-03-15 14:30:00.5",
                                              "2025-03-15T10:31:00-04:00",      "2025-03-16T00:00:00+09:00"};
  for (size_t i = 0; i + 1 < ascending.size(); ++i) {
    CHECK_MESSAGE(*CanonicalTimestamp(ascending[i]) < *CanonicalTimestamp(ascending[i + 1]), ascending[i]);
  }
}

}  // namespace
}  // namespace rocky::warehouse
