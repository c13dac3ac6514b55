// The receiving side of one file transfer over an accepted connection
// (docs/transport-protocol.md, "A file transfer"): checks HELLO against the peer's
// certificate, resolves the OFFER's target beneath the receive root, writes a resume record
// and a temp file, sends the hashes of what it already has (a base, the old target, or an
// interrupted attempt's blocks), applies BLOCKS in order, and on END installs the temp file
// by rename only when its digest equals the sender's. A broken connection leaves the temp
// file and record for a resume; a failed verification leaves nothing.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "frame_connection.h"
#include "partial_store.h"
#include "safe_path.h"
#include "session_common.h"
#include "transfer_entry.h"
#include "transfer_frames.h"

namespace novacron::transport {

struct ReceiveContext {
  std::string local_node;
  // The receive root (O_PATH), shared: a new policy replaces the node's pointer while
  // sessions keep using the folder they started with. Null = no policy yet (not_ready).
  std::shared_ptr<const Fd> root;
  PartialStore* partials = nullptr;
  bool fsync = true;  // durability: fsync the file and its folder before answering
  // Registers the incoming transfer with the node; null with `error` for an id in use.
  std::function<std::shared_ptr<TransferEntry>(const Offer&, const std::string& peer, std::string& error)> begin;
  // Where cached block indexes of received files live ("" = no cache).
  std::string index_dir;
  // Informational log lines (which view a receive used).
  std::function<void(const std::string&)> log_info;
  // Block devices peers may write (by device number, resolved when the policy was set).
  std::vector<dev_t> block_devices;
  // Tunnels: the CIDRs a peer's tunnel may connect to, and how its entry is registered.
  std::vector<std::string> tunnel_targets;
  std::function<std::shared_ptr<TransferEntry>(const std::string& id, const std::string& peer,
                                               const std::string& target, std::string& error)>
      begin_tunnel;
};

struct ReceiveResult {
  SessionOutcome outcome;
  std::shared_ptr<TransferEntry> entry;  // null when the session ended before OFFER
  bool partial_kept = false;             // a resume record and temp file remain
  bool tunnel = false;                   // the connection carried a stream tunnel
};

ReceiveResult run_receive_session(FrameConnection& conn, const ReceiveContext& ctx);

}  // namespace novacron::transport
