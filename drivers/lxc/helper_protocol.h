// The wire between the LXC driver and its helper process (novacron-lxc-helper).
//
// liblxc forks (and runs template scripts) and is not safe to call from a multithreaded
// process (lxc/lxc#2245), so the driver never links it: every liblxc call runs in a
// single-threaded helper the driver starts with a socketpair as its stdin and stdout.
//
// Protocol version 1 (docs/drivers.md has the full list of operations):
//   - One request, then one response; never more than one request in flight per helper.
//   - Each message is one line: a JSON object followed by '\n', at most kMaxMessageBytes.
//   - Request:  {"op": "start", "name": "web-1", ...operation fields}
//   - Response: {"ok": true, ...result fields}
//             | {"ok": false, "code": "not_found", "error": "container web-1 does not exist"}
//     where code is an sdk::StatusCode name (status_code_from_name below).
//   - The first request on a new helper is {"op": "hello"}; the answer carries "protocol"
//     (this version), "lxc_version" and "cgroup" ("v1" or "v2").
//   - The helper exits when its stdin closes; a helper that dies or overruns a deadline is
//     killed and replaced by the driver, and the request fails with kUnavailable.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "novacron/sdk/status.hpp"

namespace novacron::lxc {

inline constexpr int kHelperProtocolVersion = 1;
inline constexpr size_t kMaxMessageBytes = 1 << 20;

// Buffered reader of '\n'-terminated messages from a file descriptor.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}

  // The next message without its '\n'. Errors: kUnavailable when the peer closed
  // ("closed") or on a read error, kDeadlineExceeded at `deadline`, kInvalidArgument for a
  // message longer than kMaxMessageBytes.
  sdk::Result<std::string> next(std::chrono::steady_clock::time_point deadline);
  sdk::Result<std::string> next() { return next(std::chrono::steady_clock::time_point::max()); }

 private:
  int fd_;
  std::string buffer_;
};

// Writes `message` and a '\n' (no SIGPIPE on a closed socket).
sdk::Status write_message(int fd, std::string_view message);

// "not_found" -> kNotFound ...; unknown names (and "ok", which is no error) -> kInternal.
sdk::StatusCode status_code_from_name(std::string_view name);

}  // namespace novacron::lxc
