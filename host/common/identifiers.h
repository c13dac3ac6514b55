// Validators for the identifiers that appear in configs, manifests and descriptors.
#pragma once

#include <string_view>

namespace novacron {

// Reverse-DNS plugin id: lower-case segments of [a-z0-9-] (the first without '-'), at least
// two, at most 128 bytes. E.g. "io.novacron.policy.binpack".
bool is_valid_plugin_id(std::string_view id);
// MAJOR.MINOR.PATCH with an optional -pre-release or +build suffix, at most 64 bytes.
bool is_valid_plugin_version(std::string_view version);
// Node name: a letter or digit, then letters, digits, '.', '-'; at most 63 bytes.
bool is_valid_node_name(std::string_view name);

}  // namespace novacron
