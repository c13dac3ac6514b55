// The sending side of one file transfer attempt over an established connection
// (docs/transport-protocol.md, "A file transfer"): HELLO, OFFER, then BLOCKS planned
// against the receiver's HASHES as they arrive, END with the file digest, and RESULT.
// Runs on its own thread; compression runs on the worker pool, up to `pipeline_depth`
// batches ahead of the socket.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "blocks_pipeline.h"
#include "frame_connection.h"
#include "session_common.h"
#include "transfer_entry.h"

namespace novacron::transport {

struct SendParams {
  std::string id;
  std::string local_node;
  std::string source;  // absolute path, opened O_NOFOLLOW
  std::string target;  // relative, on the peer
  std::string base;    // relative, on the peer; "" = the target
  std::uint32_t block_size = 4096;
  bool resume = false;  // a retry of this id: the receiver may hold a partial
  bool allow_delta = true;
  bool in_place = false;
  bool block_device = false;  // the target is a block device on the peer (written in place)
  int pipeline_depth = 4;
  // Test hook: runs on each batch's literal bytes after they were hashed, before they are
  // compressed (simulates corruption the TLS channel cannot see, e.g. bad memory).
  std::function<void(std::vector<std::uint8_t>&)> corrupt_literals;
};

// Runs one attempt; the entry's stats are updated as batches go out.
SessionOutcome run_send_session(FrameConnection& conn, const SendParams& params, SendServices services,
                                TransferEntry& entry);

}  // namespace novacron::transport
