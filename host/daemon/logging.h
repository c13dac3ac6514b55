#pragma once

#include <string>

namespace novacron {

// Configures spdlog's default logger ("host") for the daemon: stderr, `level`
// (trace|debug|info|warn|error), `format` "text" (timestamp level logger message key=value...)
// or "json" (one JSON object per line, message escaped).
void setup_logging(const std::string& level, const std::string& format);

}  // namespace novacron
