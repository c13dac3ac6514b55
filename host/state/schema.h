#pragma once

#include <vector>

#include "host/state/database.h"

namespace novacron {

// The host's schema migrations, oldest first. Append only: never edit a released entry.
const std::vector<Database::Migration>& host_schema_migrations();

// Opens DATA_DIR/state.db with the host's schema.
Expected<std::unique_ptr<Database>> open_host_database(const std::filesystem::path& data_dir);

}  // namespace novacron
