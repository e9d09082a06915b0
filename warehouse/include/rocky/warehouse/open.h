// Opens the warehouse a configuration's adapters name, so that callers need not know the adapter types.
#pragma once

#include <memory>
#include <string>

#include "rocky/config/config.h"
#include "warehouse.h"

namespace rocky::warehouse {

// The warehouse for a pipeline that reads through `source` and writes through `target` (config::Config checks
// at load that the pair is one SQLite adapter or two PostgreSQL ones). kNotSupported for any other pair.
Result<std::unique_ptr<Warehouse>> OpenWarehouse(const config::AdapterConfig& source,
                                                 const config::AdapterConfig& target);

// A printable, secret-free name of an adapter's warehouse: "sqlite:<folder>" or
// "postgres:user@host:port/db".
std::string DescribeAdapter(const config::AdapterConfig& adapter);

}  // namespace rocky::warehouse
