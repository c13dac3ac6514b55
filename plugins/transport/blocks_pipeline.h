// The sending half every bulk transfer shares (files, devices and trees): planned batches
// are compressed on the worker pool, up to `depth` ahead of the socket, and go out as BLOCKS
// frames in order, through the bandwidth gate, with the level controller told who waited
// (link or compressor) and the entry's stats updated per frame.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "codec.h"
#include "frame_connection.h"
#include "session_common.h"
#include "transfer_entry.h"
#include "transfer_frames.h"

namespace novacron::transport {

class BandwidthGate;
class LevelController;
class WorkerPool;

struct SendServices {
  WorkerPool& workers;
  LevelController& levels;
  BandwidthGate* gate = nullptr;  // null = no limits
  std::uint64_t gate_key = 0;
};

// What the pipeline asks of its session while it waits for the socket.
struct PipelineHooks {
  // Reads frames that arrived meanwhile (HASHES, ACK); an outcome ends the session.
  std::function<std::optional<SessionOutcome>()> drain_side_frames;
  // Sends CANCEL and returns the cancelled outcome.
  std::function<SessionOutcome()> cancel;
  // The connection refused a frame: the outcome, with the peer's reason when it sent one.
  std::function<SessionOutcome(const char* what)> closed;
};

class BlocksPipeline {
 public:
  BlocksPipeline(FrameConnection& conn, SendServices services, TransferEntry& entry, int depth, PipelineHooks hooks,
                 std::int64_t wire_base_sent, std::int64_t wire_base_received);
  ~BlocksPipeline();
  BlocksPipeline(const BlocksPipeline&) = delete;
  BlocksPipeline& operator=(const BlocksPipeline&) = delete;

  // Queues blocks [first, first + n): `ops` over them, `literal` the LITERAL blocks' bytes
  // in order (valid while `keep_alive` lives), `raw_bytes` the source bytes they cover.
  // Sends the oldest batches while `depth` are in flight.
  std::optional<SessionOutcome> push(std::uint64_t first, std::uint32_t n, std::vector<OpRun> ops,
                                     std::span<const std::uint8_t> literal, std::shared_ptr<const void> keep_alive,
                                     std::int64_t raw_bytes);
  // Sends everything queued.
  std::optional<SessionOutcome> flush();

 private:
  struct Built;
  std::optional<SessionOutcome> send_front();

  FrameConnection& conn_;
  SendServices s_;
  TransferEntry& entry_;
  size_t depth_;
  PipelineHooks hooks_;
  std::int64_t wire_base_sent_, wire_base_received_;
  std::deque<std::future<Built>> pending_;
  IncompressibleDetector detector_;
};

}  // namespace novacron::transport
