#include "transport_node.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "frames.h"
#include "tunnel.h"
#include "tunnel_frames.h"

#include "bandwidth_scheduler.h"
#include "level_controller.h"
#include "partial_store.h"
#include "receiver_session.h"
#include "safe_path.h"
#include "sender_session.h"
#include "transfer_entry.h"
#include "tree_fs.h"
#include "tree_sender.h"
#include "worker_pool.h"

namespace novacron::transport {

namespace {

using sdk::Status;
using sdk::StatusCode;
using sdk::TransferState;

constexpr auto kProgressEventEvery = std::chrono::seconds(1);

// Client-side codes that another attempt may cure.
bool retryable(const SessionOutcome& o) {
  if (o.error_code == "connect_failed" || o.error_code == "timeout" || o.error_code == "connection_lost") return true;
  return !o.final;
}

Priority to_priority(sdk::TransferPriority p) {
  switch (p) {
    case sdk::TransferPriority::kLive:
      return Priority::kLive;
    case sdk::TransferPriority::kBackground:
      return Priority::kBackground;
    case sdk::TransferPriority::kCold:
      break;
  }
  return Priority::kCold;
}

Status validate(const sdk::SendRequest& r) {
  if (!valid_transfer_id(r.id)) {
    return {StatusCode::kInvalidArgument, "id: '" + r.id + "' is not [a-z0-9][a-z0-9-]{0,63}"};
  }
  if (r.kind == sdk::TransferKind::kTunnel) return {StatusCode::kInvalidArgument, "kind: tunnels are opened, not sent"};
  if (r.kind == sdk::TransferKind::kDirectory && (!r.base.empty() || r.in_place)) {
    return {StatusCode::kInvalidArgument, "a directory tree has no base and is never updated in place"};
  }
  if (r.source.empty() || r.source.front() != '/') return {StatusCode::kInvalidArgument, "source: must be absolute"};
  if (r.kind == sdk::TransferKind::kBlockDevice) {
    if (r.target.empty() || r.target.front() != '/' || r.target.size() > kMaxPathText) {
      return {StatusCode::kInvalidArgument, "target: a block device is named by its absolute path on the peer"};
    }
    if (!r.base.empty()) return {StatusCode::kInvalidArgument, "base: a block device is its own base"};
  } else if (auto bad = check_relative_path(r.target)) {
    return {StatusCode::kInvalidArgument, "target: " + bad->message};
  }
  if (!r.base.empty()) {
    if (auto bad = check_relative_path(r.base)) return {StatusCode::kInvalidArgument, "base: " + bad->message};
  }
  if (r.compression < -1 || r.compression > 19) {
    return {StatusCode::kInvalidArgument, "compression: -1 (adaptive), 0 (off) or a zstd level 1..19"};
  }
  if (r.block_size != 0 &&
      (r.block_size < kMinBlockSize || r.block_size > kMaxBlockSize || (r.block_size & (r.block_size - 1)) != 0)) {
    return {StatusCode::kInvalidArgument, "block_size: a power of two from 4096 to 1048576"};
  }
  if (r.bwlimit_bytes_per_second < 0) return {StatusCode::kInvalidArgument, "bwlimit: must not be negative"};
  return Status::ok();
}

}  // namespace

TransportNode::TransportNode(TransportOptions options) : opt_(std::move(options)) {}

TransportNode::~TransportNode() { stop(); }

sdk::Status TransportNode::start() {
  partials_ = std::make_unique<PartialStore>(opt_.data_dir + "/transport/partials");
  std::string error;
  if (!partials_->open(error)) return {StatusCode::kUnavailable, error};
  const std::string index_dir = opt_.data_dir + "/transport/index";
  if (opt_.index_cache && make_private_dirs(index_dir, error)) index_dir_ = index_dir;
  if (opt_.log) {
    auto log = opt_.log;
    opt_.net.log_refusal = [log](const std::string& message) { log(true, message); };
  }
  net_ = NetService::create(opt_.identity, opt_.net, error);
  if (!net_) return {StatusCode::kInvalidArgument, error};
  workers_ = std::make_unique<WorkerPool>(std::max(1, opt_.workers));
  gate_ = std::make_unique<BandwidthGate>();
  gate_->set_node_rate(opt_.node_bwlimit_bytes_per_second);
  node_limit_ = opt_.node_bwlimit_bytes_per_second;
  const std::uint16_t port = net_->listen(
      opt_.listen_address, [this](const std::string& name) { return peer_allowed(name); },
      [this](std::unique_ptr<FrameConnection> conn) { on_connection(std::move(conn)); }, error);
  if (port == 0) {
    net_->stop();
    return {StatusCode::kUnavailable, error};
  }
  std::string host;
  std::uint16_t ignored = 0;
  split_host_port(opt_.listen_address, host, ignored);
  bound_address_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  janitor_ = std::thread([this] { janitor_loop(); });
  return Status::ok();
}

void TransportNode::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, entry] : transfers_) entry->request_cancel();
  }
  stop_cv_.notify_all();
  if (net_) net_->stop();  // closes every connection: blocked sessions return
  if (janitor_.joinable()) janitor_.join();
  std::vector<SessionThread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.thread.join();
  workers_.reset();
  root_.reset();
}

std::string TransportNode::listen_address() const { return bound_address_; }

void TransportNode::set_event_sink(TransferEventSink sink) {
  std::lock_guard lock(mu_);
  sink_ = std::move(sink);
}

bool TransportNode::peer_allowed(const std::string& name) const {
  std::lock_guard lock(mu_);
  if (!opt_.peers.contains(name)) return false;
  return allowed_peers_.empty() ||
         std::find(allowed_peers_.begin(), allowed_peers_.end(), name) != allowed_peers_.end();
}

sdk::Status TransportNode::set_receive_policy(const sdk::ReceivePolicy& policy) {
  if (policy.root.empty() || policy.root.front() != '/') {
    return {StatusCode::kInvalidArgument, "root: must be an absolute folder"};
  }
  auto root = open_root(policy.root);
  if (!root) return {StatusCode::kInvalidArgument, "root: " + root.error().message};
  for (size_t i = 0; i < policy.tunnel_targets.size(); ++i) {
    if (!valid_cidr(policy.tunnel_targets[i])) {
      return {StatusCode::kInvalidArgument, "tunnel_targets/" + std::to_string(i) + ": '" + policy.tunnel_targets[i] +
                                                "' is not a CIDR such as 10.0.0.0/8"};
    }
  }
  // Devices by number: a path may be a link (/dev/vg0/x), what counts is the device.
  std::vector<dev_t> devices;
  for (size_t i = 0; i < policy.block_devices.size(); ++i) {
    struct stat st {};
    const std::string& path = policy.block_devices[i];
    if (::stat(path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) {
      return {StatusCode::kInvalidArgument,
              "block_devices/" + std::to_string(i) + ": " + path + " is not a block device"};
    }
    devices.push_back(st.st_rdev);
  }
  auto shared = std::make_shared<const Fd>(std::move(*root));
  std::lock_guard lock(mu_);
  root_ = std::move(shared);
  block_devices_ = std::move(devices);
  allowed_peers_ = policy.allowed_peers;
  if (!policy.tunnel_targets.empty()) tunnel_targets_ = policy.tunnel_targets;
  return Status::ok();
}

void TransportNode::spawn(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  // Finished session threads are joined here, so the list holds only running ones.
  std::erase_if(threads_, [](SessionThread& t) {
    if (!t.done->load()) return false;
    t.thread.join();
    return true;
  });
  auto done = std::make_shared<std::atomic<bool>>(false);
  threads_.push_back(SessionThread{std::thread([fn = std::move(fn), done] {
                                     fn();
                                     done->store(true);
                                   }),
                                   done});
}

sdk::Result<sdk::TransferStatus> TransportNode::send(const sdk::SendRequest& request) {
  if (Status s = validate(request); !s.is_ok()) return s;
  sdk::TransferStatus initial;
  initial.id = request.id;
  initial.peer = request.peer;
  initial.source = request.source;
  initial.target = request.target;
  initial.kind = request.kind;
  initial.direction = sdk::TransferDirection::kSend;
  initial.state = TransferState::kQueued;
  initial.priority = request.priority;
  initial.bwlimit_bytes_per_second = request.bwlimit_bytes_per_second;
  initial.compression = request.compression;
  auto entry = std::make_shared<TransferEntry>(initial);
  std::uint64_t key = 0;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Status{StatusCode::kUnavailable, "the transport is stopping"};
    if (!opt_.peers.contains(request.peer)) {
      return Status{StatusCode::kFailedPrecondition, "peer: '" + request.peer + "' is not a cluster peer of this node"};
    }
    if (auto it = transfers_.find(request.id); it != transfers_.end() && !it->second->finished()) {
      return Status{StatusCode::kAlreadyExists, "id: transfer '" + request.id + "' is running"};
    }
    transfers_[request.id] = entry;
    key = next_key_++;
    gate_keys_[request.id] = key;
    trim_finished();
  }
  gate_->add_transfer(key, to_priority(request.priority), request.bwlimit_bytes_per_second);
  spawn([this, entry, request, key] { run_send(entry, request, key); });
  return entry->snapshot();
}

void TransportNode::run_send(const std::shared_ptr<TransferEntry>& entry, const sdk::SendRequest& request,
                             std::uint64_t key) {
  std::string address;
  {
    std::lock_guard lock(mu_);
    address = opt_.peers.at(request.peer);
  }
  emit("transfer.started", entry->snapshot());
  SendParams params;
  params.id = request.id;
  params.local_node = opt_.node_name;
  params.source = request.source;
  params.target = request.target;
  params.base = request.base;
  params.block_size = request.block_size != 0 ? request.block_size : opt_.default_block_size;
  params.in_place = request.in_place;
  params.block_device = request.kind == sdk::TransferKind::kBlockDevice;
  params.corrupt_literals = opt_.corrupt_literals;
  SteadyClock clock;
  LevelController levels(request.compression, opt_.max_compression_level, clock);
  SendServices services{*workers_, levels, gate_.get(), key};
  auto backoff = opt_.retry_initial_backoff;
  SessionOutcome outcome;
  int source_changes = 0;
  for (int attempt = 1;; ++attempt) {
    entry->update([&](sdk::TransferStatus& st) {
      st.state = TransferState::kConnecting;
      st.stats.attempts = attempt;
    });
    params.resume = attempt > 1;
    ConnectError connect_error;
    auto conn = net_->connect(address, request.peer, connect_error);
    if (!conn) {
      const bool final = connect_error.code != "connect_failed" && connect_error.code != "timeout";
      outcome = SessionOutcome::failure(connect_error.code, connect_error.message, final);
    } else {
      outcome = request.kind == sdk::TransferKind::kDirectory ? run_tree_send_session(*conn, params, services, *entry)
                                                              : run_send_session(*conn, params, services, *entry);
    }
    // A source that changed while it was read gets one more attempt, not the whole budget.
    if (outcome.error_code == "source_changed" && ++source_changes > 1) break;
    if (!outcome.ok() && opt_.log) {
      opt_.log(true, "transport send attempt failed id=" + request.id + " peer=" + request.peer + " attempt=" +
                         std::to_string(attempt) + " reason=\"" + outcome.error_code + ": " + outcome.message + "\"");
    }
    if (outcome.ok() || !retryable(outcome) || attempt > opt_.retries || entry->cancelled().load()) break;
    entry->update([&](sdk::TransferStatus& st) {
      st.state = TransferState::kRetrying;
      st.error_code = outcome.error_code;
      st.error_message = outcome.message;
    });
    emit("transfer.retrying", entry->snapshot());
    std::unique_lock lock(mu_);
    if (stop_cv_.wait_for(lock, backoff, [&] { return stopping_ || entry->cancelled().load(); })) break;
    backoff = std::min(backoff * 2, opt_.retry_max_backoff);
  }
  gate_->remove_transfer(key);
  if (!outcome.ok() && entry->cancelled().load()) {
    outcome = SessionOutcome::failure("cancelled", "the transfer was cancelled", true);
  }
  entry->update([&](sdk::TransferStatus& st) {
    if (outcome.ok()) {
      st.state = TransferState::kSucceeded;
      st.digest = outcome.digest;
      st.error_code.clear();
      st.error_message.clear();
      st.stats.eta_ms = 0;
    } else if (outcome.error_code == "cancelled") {
      st.state = TransferState::kCancelled;
      st.error_code = outcome.error_code;
      st.error_message = outcome.message;
    } else {
      st.state = TransferState::kFailed;
      const bool gave_up = retryable(outcome) && st.stats.attempts > opt_.retries;
      st.error_code = gave_up ? "retries_exhausted" : outcome.error_code;
      st.error_message = gave_up ? "gave up after " + std::to_string(st.stats.attempts) +
                                       " attempts; last: " + outcome.error_code + ": " + outcome.message
                                 : outcome.message;
    }
  });
  const auto final_status = entry->snapshot();
  emit(std::string("transfer.") + sdk::transfer_state_name(final_status.state), final_status);
}

void TransportNode::on_connection(std::unique_ptr<FrameConnection> conn) {
  std::shared_ptr<FrameConnection> shared(std::move(conn));
  spawn([this, shared] {
    ReceiveContext ctx;
    {
      std::lock_guard lock(mu_);
      if (active_receives_ >= opt_.max_incoming) {
        send_error_and_close(*shared, ErrorCode::kBusy, "this node is receiving too many transfers; try again");
        return;
      }
      ++active_receives_;
      ctx.root = root_;
    }
    struct Done {
      TransportNode* node;
      ~Done() {
        std::lock_guard lock(node->mu_);
        --node->active_receives_;
      }
    } done{this};
    ctx.local_node = opt_.node_name;
    ctx.partials = partials_.get();
    ctx.index_dir = index_dir_;
    if (opt_.log) ctx.log_info = [log = opt_.log](const std::string& m) { log(false, m); };
    ctx.fsync = opt_.fsync;
    ctx.begin = [this](const Offer& offer, const std::string& peer, std::string& error) {
      return begin_receive(offer, peer, error);
    };
    {
      std::lock_guard lock(mu_);
      ctx.tunnel_targets = tunnel_targets_;
      ctx.block_devices = block_devices_;
    }
    ctx.begin_tunnel = [this](const std::string& id, const std::string& peer, const std::string& target,
                              std::string& error) { return begin_tunnel(id, peer, target, error); };
    ReceiveResult result = run_receive_session(*shared, ctx);
    if (!result.outcome.ok() && opt_.log) {
      opt_.log(true, "transport connection closed peer=" + shared->peer_name() +
                         " id=" + (result.entry ? result.entry->snapshot().id : std::string("-")) + " reason=\"" +
                         result.outcome.error_code + ": " + result.outcome.message + "\"");
    }
    if (!result.entry) return;
    result.entry->update([&](sdk::TransferStatus& st) {
      if (result.outcome.ok()) {
        st.state = result.tunnel ? TransferState::kClosed : TransferState::kSucceeded;
        st.digest = result.outcome.digest;
      } else if (result.tunnel) {
        st.state = TransferState::kFailed;
        st.error_code = result.outcome.error_code;
        st.error_message = result.outcome.message;
      } else {
        st.state = result.partial_kept                        ? TransferState::kPartial
                   : result.outcome.error_code == "cancelled" ? TransferState::kCancelled
                                                              : TransferState::kFailed;
        st.error_code = result.outcome.error_code;
        st.error_message = result.outcome.message;
      }
      st.stats.wire_bytes_sent = shared->wire_bytes_sent();
      st.stats.wire_bytes_received = shared->wire_bytes_received();
    });
    const auto final_status = result.entry->snapshot();
    emit(std::string("transfer.") + sdk::transfer_state_name(final_status.state), final_status);
  });
}

std::shared_ptr<TransferEntry> TransportNode::begin_receive(const Offer& offer, const std::string& peer,
                                                            std::string& error) {
  sdk::TransferStatus initial;
  initial.id = offer.id;
  initial.peer = peer;
  initial.target = offer.target;
  initial.kind = static_cast<sdk::TransferKind>(offer.kind);  // the codes are the SDK's
  initial.direction = sdk::TransferDirection::kReceive;
  initial.state = TransferState::kRunning;
  auto entry = std::make_shared<TransferEntry>(initial);
  std::lock_guard lock(mu_);
  if (auto it = transfers_.find(offer.id); it != transfers_.end() && !it->second->finished()) {
    error = "transfer id '" + offer.id + "' is in use on this node";
    return nullptr;
  }
  transfers_[offer.id] = entry;
  trim_finished();
  return entry;
}

std::shared_ptr<TransferEntry> TransportNode::begin_tunnel(const std::string& id, const std::string& peer,
                                                           const std::string& target, std::string& error) {
  sdk::TransferStatus initial;
  initial.id = id;
  initial.peer = peer;
  initial.target = target;
  initial.kind = sdk::TransferKind::kTunnel;
  initial.direction = sdk::TransferDirection::kReceive;
  initial.state = TransferState::kConnecting;
  initial.priority = sdk::TransferPriority::kLive;
  initial.stats.bytes_total = -1;
  auto entry = std::make_shared<TransferEntry>(initial);
  std::lock_guard lock(mu_);
  if (auto it = transfers_.find(id); it != transfers_.end() && !it->second->finished()) {
    error = "transfer id '" + id + "' is in use on this node";
    return nullptr;
  }
  transfers_[id] = entry;
  trim_finished();
  return entry;
}

sdk::Status TransportNode::tunnel_handshake(FrameConnection& conn, const sdk::TunnelRequest& request) {
  if (auto failed = client_hello(conn, opt_.node_name, static_cast<std::uint8_t>(Purpose::kTunnel))) {
    return {StatusCode::kUnavailable, failed->error_code + ": " + failed->message};
  }
  TunnelOpen open;
  open.id = request.id;
  open.target = request.target_address;
  conn.send(FrameType::kTunnelOpen, 0, open.encode());
  const Received r = conn.receive(std::chrono::seconds(15));
  if (r.status != Received::Status::kFrame) {
    const SessionOutcome o = outcome_of_closed(r, "TUNNEL_READY");
    return {StatusCode::kUnavailable, o.error_code + ": " + o.message};
  }
  if (r.frame.header.type == FrameType::kTunnelReady) return Status::ok();
  const SessionOutcome o = outcome_of_unexpected(conn, r.frame, "TUNNEL_READY");
  const StatusCode code = o.error_code == "not_permitted" ? StatusCode::kPermissionDenied
                          : o.error_code == "busy"        ? StatusCode::kAlreadyExists
                                                          : StatusCode::kUnavailable;
  return {code, o.error_code + ": " + o.message};
}

sdk::Result<sdk::TransferStatus> TransportNode::open_tunnel(const sdk::TunnelRequest& request) {
  if (!valid_transfer_id(request.id)) {
    return Status{StatusCode::kInvalidArgument, "id: '" + request.id + "' is not [a-z0-9][a-z0-9-]{0,63}"};
  }
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(request.target_address, host, port) || port == 0) {
    return Status{StatusCode::kInvalidArgument, "target_address: expected HOST:PORT with an IP address"};
  }
  if (!is_loopback_address(request.listen_address)) {
    return Status{StatusCode::kInvalidArgument, "listen_address: must be a loopback address (127.0.0.1 or ::1)"};
  }
  if (request.compression < -1 || request.compression > 19) {
    return Status{StatusCode::kInvalidArgument, "compression: -1 (adaptive), 0 (off) or a zstd level 1..19"};
  }
  sdk::TransferStatus initial;
  initial.id = request.id;
  initial.peer = request.peer;
  initial.target = request.target_address;
  initial.kind = sdk::TransferKind::kTunnel;
  initial.direction = sdk::TransferDirection::kSend;
  initial.state = TransferState::kConnecting;
  initial.priority = request.priority;
  initial.bwlimit_bytes_per_second = request.bwlimit_bytes_per_second;
  initial.compression = request.compression;
  initial.stats.bytes_total = -1;
  auto entry = std::make_shared<TransferEntry>(initial);
  std::string address;
  std::uint64_t key = 0;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Status{StatusCode::kUnavailable, "the transport is stopping"};
    const auto peer = opt_.peers.find(request.peer);
    if (peer == opt_.peers.end()) {
      return Status{StatusCode::kFailedPrecondition, "peer: '" + request.peer + "' is not a cluster peer of this node"};
    }
    address = peer->second;
    if (auto it = transfers_.find(request.id); it != transfers_.end() && !it->second->finished()) {
      return Status{StatusCode::kAlreadyExists, "id: transfer '" + request.id + "' is running"};
    }
    transfers_[request.id] = entry;
    key = next_key_++;
    gate_keys_[request.id] = key;
  }
  auto fail = [&](Status s) {
    entry->update([&](sdk::TransferStatus& st) {
      st.state = TransferState::kFailed;
      st.error_message = s.message();
      st.error_code = s.message().substr(0, s.message().find(':'));
    });
    return s;
  };
  ConnectError connect_error;
  std::shared_ptr<FrameConnection> conn = net_->connect(address, request.peer, connect_error);
  if (!conn) return fail({StatusCode::kUnavailable, connect_error.code + ": " + connect_error.message});
  if (Status s = tunnel_handshake(*conn, request); !s.is_ok()) return fail(s);
  std::string error;
  std::uint16_t local_port = 0;
  const int listen_fd = listen_loopback(request.listen_address, local_port, error);
  if (listen_fd < 0) return fail({StatusCode::kUnavailable, "listen_failed: " + error});
  const bool v6 = request.listen_address.find(':') != std::string::npos;
  entry->update([&](sdk::TransferStatus& st) {
    st.state = TransferState::kListening;
    st.local_address =
        (v6 ? "[" + request.listen_address + "]" : request.listen_address) + ":" + std::to_string(local_port);
  });
  gate_->add_transfer(key, to_priority(request.priority), request.bwlimit_bytes_per_second);
  emit("tunnel.opened", entry->snapshot());
  spawn([this, entry, conn, listen_fd, request, key] { run_tunnel_source(entry, conn, listen_fd, request, key); });
  return entry->snapshot();
}

void TransportNode::run_tunnel_source(const std::shared_ptr<TransferEntry>& entry,
                                      const std::shared_ptr<FrameConnection>& conn, int listen_fd,
                                      const sdk::TunnelRequest& request, std::uint64_t key) {
  // Exactly one local connection, then the listener closes (a second connect is refused).
  const auto deadline = std::chrono::steady_clock::now() + request.accept_timeout;
  int client = -1;
  while (client < 0 && std::chrono::steady_clock::now() < deadline && !entry->cancelled().load()) {
    pollfd p{listen_fd, POLLIN, 0};
    if (::poll(&p, 1, 100) == 1) client = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  }
  ::close(listen_fd);
  TunnelEnd end;
  if (client < 0) {
    end.error_code = entry->cancelled().load() ? "cancelled" : "timeout";
    end.message = entry->cancelled().load() ? "the tunnel was closed before a connection came"
                                            : "no local connection within the accept timeout";
    TunnelReset reset;
    reset.code = static_cast<std::uint16_t>(ErrorCode::kTimeout);
    conn->send(FrameType::kTunnelReset, 0, reset.encode());
    conn->close(std::chrono::seconds(2));
  } else {
    entry->update([&](sdk::TransferStatus& st) { st.state = TransferState::kRunning; });
    end = pump_tunnel(*conn, client, request.compression, gate_.get(), key, *entry);
    ::close(client);
  }
  gate_->remove_transfer(key);
  entry->update([&](sdk::TransferStatus& st) {
    st.state = end.error_code.empty() ? TransferState::kClosed : TransferState::kFailed;
    st.error_code = end.error_code;
    st.error_message = end.message;
  });
  emit("tunnel.closed", entry->snapshot());
}

void TransportNode::trim_finished() {
  if (transfers_.size() <= opt_.max_transfers_kept) return;
  // Drop the oldest finished transfers beyond the cap.
  std::vector<std::pair<std::int64_t, std::string>> finished;
  for (const auto& [id, entry] : transfers_) {
    if (entry->finished()) finished.emplace_back(entry->snapshot().updated_at_ms, id);
  }
  std::sort(finished.begin(), finished.end());
  for (size_t i = 0; i < finished.size() && transfers_.size() > opt_.max_transfers_kept; ++i) {
    transfers_.erase(finished[i].second);
    gate_keys_.erase(finished[i].second);
  }
}

void TransportNode::emit(const std::string& type, const sdk::TransferStatus& status) {
  TransferEventSink sink;
  {
    std::lock_guard lock(mu_);
    sink = sink_;
  }
  if (sink) sink(type, status);
}

sdk::Result<sdk::TransferStatus> TransportNode::status(std::string_view id) const {
  std::lock_guard lock(mu_);
  const auto it = transfers_.find(id);
  if (it == transfers_.end()) return Status{StatusCode::kNotFound, "no transfer '" + std::string(id) + "'"};
  return it->second->snapshot();
}

std::vector<sdk::TransferStatus> TransportNode::list(std::string_view after, size_t limit) const {
  std::vector<sdk::TransferStatus> out;
  std::lock_guard lock(mu_);
  for (auto it = transfers_.upper_bound(after); it != transfers_.end() && out.size() < limit; ++it) {
    out.push_back(it->second->snapshot());
  }
  return out;
}

sdk::Result<sdk::TransferStatus> TransportNode::wait(std::string_view id, std::chrono::milliseconds timeout) const {
  std::shared_ptr<TransferEntry> entry;
  {
    std::lock_guard lock(mu_);
    const auto it = transfers_.find(id);
    if (it == transfers_.end()) return Status{StatusCode::kNotFound, "no transfer '" + std::string(id) + "'"};
    entry = it->second;
  }
  return entry->wait(timeout);
}

sdk::Status TransportNode::cancel(std::string_view id) {
  std::lock_guard lock(mu_);
  const auto it = transfers_.find(id);
  if (it == transfers_.end()) return {StatusCode::kNotFound, "no transfer '" + std::string(id) + "'"};
  if (it->second->finished()) return {StatusCode::kFailedPrecondition, "transfer '" + std::string(id) + "' has ended"};
  it->second->request_cancel();
  stop_cv_.notify_all();  // a sender waiting to retry gives up now
  return Status::ok();
}

sdk::Status TransportNode::set_transfer_limit(std::string_view id, std::int64_t bytes_per_second) {
  if (bytes_per_second < 0) return {StatusCode::kInvalidArgument, "limit: must not be negative"};
  std::uint64_t key = 0;
  {
    std::lock_guard lock(mu_);
    const auto it = gate_keys_.find(id);
    const auto entry = transfers_.find(id);
    if (it == gate_keys_.end() || entry == transfers_.end()) {
      return {StatusCode::kNotFound, "no outgoing transfer '" + std::string(id) + "'"};
    }
    if (entry->second->finished()) return {StatusCode::kFailedPrecondition, "transfer has ended"};
    key = it->second;
    entry->second->update([&](sdk::TransferStatus& st) { st.bwlimit_bytes_per_second = bytes_per_second; });
  }
  gate_->set_transfer_rate(key, bytes_per_second);
  return Status::ok();
}

sdk::Status TransportNode::set_node_limit(std::int64_t bytes_per_second) {
  if (bytes_per_second < 0) return {StatusCode::kInvalidArgument, "limit: must not be negative"};
  node_limit_ = bytes_per_second;
  gate_->set_node_rate(bytes_per_second);
  return Status::ok();
}

std::int64_t TransportNode::node_limit() const { return node_limit_.load(); }

size_t TransportNode::clean_partials(std::chrono::milliseconds retention) {
  std::vector<std::string> active;
  std::shared_ptr<const Fd> root;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, entry] : transfers_) {
      if (entry->finished()) continue;
      const auto st = entry->snapshot();
      if (st.direction == sdk::TransferDirection::kReceive) active.push_back(partial_key(st.peer, st.id));
    }
    root = root_;
  }
  const auto stale = plan_cleanup(partials_->list(), unix_ms_now(), retention.count(), active);
  for (const auto& r : stale) {
    if (r.in_place) {  // the target itself: never deleted, only no longer tracked
      partials_->remove(r.peer, r.id);
      continue;
    }
    if (root) {
      if (const auto split = split_parent(r.target)) {
        if (auto dir = open_dir_beneath(root->get(), split->dir, false)) {
          if (r.tree) {  // the staging folder, and an earlier attempt's kept beside it
            remove_tree_at(dir->get(), r.temp_name);
            remove_tree_at(dir->get(), temp_name_for(split->name, r.id, ".ncprev-"));
          } else {
            ::unlinkat(dir->get(), r.temp_name.c_str(), 0);
          }
        }
      }
    }
    partials_->remove(r.peer, r.id);
  }
  return stale.size();
}

void TransportNode::janitor_loop() {
  std::unique_lock lock(mu_);
  while (!stop_cv_.wait_for(lock, opt_.janitor_interval, [&] { return stopping_; })) {
    lock.unlock();
    clean_partials(opt_.partial_retention);
    lock.lock();
  }
}

}  // namespace novacron::transport
