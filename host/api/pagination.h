// Pagination for every list: `limit` (1..1000, default 100) and an opaque `cursor` that the
// previous page returned as `next_cursor` (null on the last page). Items are ordered by a
// stable key; the cursor encodes the last key returned, so a walk neither skips nor repeats
// items that existed throughout it.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include "host/common/error.h"

namespace novacron {

struct PageRequest {
  std::size_t limit = 100;
  std::string after;  // return items with key > after ("" = from the start)
};

// Errors ("invalid_parameter") name the query parameter.
Expected<PageRequest> parse_page_request(const std::map<std::string, std::string>& query);

std::string encode_cursor(const std::string& last_key);

}  // namespace novacron
