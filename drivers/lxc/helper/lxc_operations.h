// The helper's side of the protocol (../helper_protocol.h): one function per operation,
// each a few liblxc calls on the containers of one lxcpath. Runs only in the
// single-threaded helper process.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "container_config.h"

namespace novacron::lxc {

struct HelperContext {
  std::string lxcpath;  // absolute; every container lives in lxcpath/NAME
  CgroupLayout cgroup = CgroupLayout::kV1;
};

// Runs one request and returns its response ({"ok": true, ...} or {"ok": false, "code",
// "error"}). Never throws: a malformed request is an invalid_argument response.
nlohmann::json handle_request(const HelperContext& ctx, const nlohmann::json& request);

// The response as one line of JSON; bytes that are not UTF-8 become U+FFFD.
std::string response_text(const nlohmann::json& response);

}  // namespace novacron::lxc
