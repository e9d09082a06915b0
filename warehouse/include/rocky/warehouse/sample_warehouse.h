// The sample source data `rocky init` writes, so the quickstart replicates something real with nothing else
// installed: a catalog "fivetran_catalog" in the SQLite warehouse layout (sqlite_warehouse.h), with schemas
// named like Fivetran's (src__<tenant>__<regions...>__<source>) and tables carrying a _fivetran_synced
// column.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "table_ref.h"

namespace rocky::warehouse {

struct SampleTable {
  TableRef table;
  uint64_t rows = 0;
};

struct SampleWarehouse {
  std::vector<SampleTable> tables;  // sorted
};

// Writes the sample catalog under `folder` (created when missing). Rows are generated from a fixed seed;
// their _fivetran_synced timestamps spread over the 30 days before `now`, the newest a few minutes before it,
// so a freshness check passes right after `rocky init`. An existing sample schema file is an error naming it
// unless `overwrite`, in which case it is replaced.
Result<SampleWarehouse> CreateSampleWarehouse(
    const std::string& folder, bool overwrite,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// The same sample (the same rows, with PostgreSQL types: bigint ids, timestamp with time zone cursors) in the
// database `url` names, each schema mapped as postgres_warehouse.h says, in one transaction. An existing
// sample schema is an error naming it unless `overwrite`, in which case it is dropped (with its tables) and
// made again. Errors never show the password.
Result<SampleWarehouse> CreatePostgresSampleWarehouse(
    const std::string& url, bool overwrite,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

}  // namespace rocky::warehouse
