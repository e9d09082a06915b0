#include "rocky/warehouse/open.h"

#include "rocky/warehouse/postgres_warehouse.h"
#include "rocky/warehouse/sqlite_warehouse.h"

namespace rocky::warehouse {

Result<std::unique_ptr<Warehouse>> OpenWarehouse(const config::AdapterConfig& source,
                                                 const config::AdapterConfig& target) {
  if (source.type == "sqlite" && target.type == "sqlite" && source.path == target.path) {
    return OpenSqliteWarehouse(target.path);
  }
  if (source.type == "postgres" && target.type == "postgres") {
    return OpenPostgresWarehouse(source.url, target.url,
                                 PostgresOptions{.mark_source_changes = source.mark_source_changes});
  }
  return Status::NotSupported("adapters '" + source.name + "' (" + source.type + ") and '" + target.name +
                              "' (" + target.type +
                              "): a pipeline copies within one SQLite folder, or between PostgreSQL servers");
}

std::string DescribeAdapter(const config::AdapterConfig& adapter) {
  if (adapter.type == "postgres") return DescribePostgresUrl(adapter.url);
  return adapter.type + ":" + adapter.path;
}

}  // namespace rocky::warehouse
