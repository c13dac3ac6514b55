// The sending side of one directory-tree transfer attempt (docs/transport-protocol.md, "A
// directory tree"): the source folder is walked into entries; HELLO, OFFER (kind 3), ENTRY
// per object and ENTRIES_END; the receiver answers WANT per regular file (send, or skip: it
// already holds an identical one); the content of the wanted files then streams as BLOCKS
// over the tree's block space (zero blocks never sent, repeated blocks deduplicated across
// files, zstd on the worker pool), and END carries the tree digest.
#pragma once

#include "blocks_pipeline.h"
#include "frame_connection.h"
#include "sender_session.h"
#include "session_common.h"
#include "transfer_entry.h"

namespace novacron::transport {

// `params.source` is the source folder (absolute), `params.target` the folder on the peer.
SessionOutcome run_tree_send_session(FrameConnection& conn, const SendParams& params, SendServices services,
                                     TransferEntry& entry);

}  // namespace novacron::transport
