// The receiving side of a directory-tree transfer, after its OFFER (docs/transport-protocol.md,
// "A directory tree"). The tree is built in a fresh staging folder `.<name>.nctmp-<id>/` (0700)
// beside the target: every ENTRY is created by one single-component *at call in a folder this
// transfer created, so nothing that existed before is ever followed; a regular file identical
// to its counterpart in the existing target (or in an interrupted attempt's staging folder) is
// hard-linked instead of sent. Content arrives as BLOCKS over the tree's block space. At END,
// when the tree digest equals the sender's, folders get their metadata (deepest first) and the
// staging folder is exchanged with the target atomically (RENAME_EXCHANGE); the old tree is
// then removed. A broken connection keeps the staging folder for the retry; a failed
// verification removes it and leaves the target as it was.
#pragma once

#include <memory>

#include "frame_connection.h"
#include "receiver_session.h"
#include "session_common.h"
#include "transfer_entry.h"
#include "transfer_frames.h"

namespace novacron::transport {

struct TreeReceiveResult {
  SessionOutcome outcome;
  std::shared_ptr<TransferEntry> entry;  // null when the offer was refused before it was registered
  bool partial_kept = false;             // a resume record and staging folder remain
};

TreeReceiveResult run_tree_receive(FrameConnection& conn, const ReceiveContext& ctx, const Offer& offer);

}  // namespace novacron::transport
