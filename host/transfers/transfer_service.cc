#include "host/transfers/transfer_service.h"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <set>

#include "host/common/path_beneath.h"

namespace novacron {
using nlohmann::json;

namespace {

std::string error_code_for(sdk::StatusCode code) {
  switch (code) {
    case sdk::StatusCode::kInvalidArgument:
      return "invalid_argument";
    case sdk::StatusCode::kNotFound:
      return "not_found";
    case sdk::StatusCode::kAlreadyExists:
      return "already_exists";
    case sdk::StatusCode::kFailedPrecondition:
      return "failed_precondition";
    case sdk::StatusCode::kUnimplemented:
      return "unimplemented";
    case sdk::StatusCode::kInternal:
      return "internal";
    default:
      return "transport_unavailable";
  }
}

template <typename T>
Expected<T> from_result(sdk::Result<T> r) {
  if (!r.is_ok()) return make_error(error_code_for(r.status().code()), r.status().message());
  return std::move(r).value();
}

std::string new_transfer_id() {
  unsigned char bytes[8];
  RAND_bytes(bytes, sizeof bytes);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "t-";
  for (const unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

const char* direction_name(sdk::TransferDirection d) { return d == sdk::TransferDirection::kSend ? "send" : "receive"; }

json compression_json(int c) {
  if (c < 0) return "adaptive";
  if (c == 0) return "off";
  return c;
}

Expected<sdk::TransferPriority> parse_priority(const json& v) {
  if (!v.is_string()) return make_error("invalid_argument", "priority: expected \"live\", \"cold\" or \"background\"");
  const auto s = v.get<std::string>();
  if (s == "live") return sdk::TransferPriority::kLive;
  if (s == "cold") return sdk::TransferPriority::kCold;
  if (s == "background") return sdk::TransferPriority::kBackground;
  return make_error("invalid_argument", "priority: expected \"live\", \"cold\" or \"background\", got \"" + s + "\"");
}

Expected<int> parse_compression(const json& v) {
  if (v.is_string() && v.get<std::string>() == "adaptive") return -1;
  if (v.is_string() && v.get<std::string>() == "off") return 0;
  if (v.is_number_integer() && v.get<int>() >= 1 && v.get<int>() <= 19) return v.get<int>();
  return make_error("invalid_argument",
                    "compression: expected \"adaptive\", \"off\" or a zstd level 1..19, got " + v.dump());
}

// Fields sends and tunnels share: id (minted when absent), priority, compression, bwlimit.
template <typename Request>
std::optional<Error> parse_shared_fields(const json& body, Request& r) {
  if (body.contains("id") && !body["id"].is_string()) return Error{"invalid_argument", "id: expected a string"};
  r.id = body.contains("id") ? body["id"].get<std::string>() : new_transfer_id();
  if (body.contains("priority")) {
    auto p = parse_priority(body["priority"]);
    if (!p) return p.error();
    r.priority = *p;
  }
  if (body.contains("compression")) {
    auto c = parse_compression(body["compression"]);
    if (!c) return c.error();
    r.compression = *c;
  }
  if (body.contains("bwlimit_bytes_per_second")) {
    const json& v = body["bwlimit_bytes_per_second"];
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0) {
      return Error{"invalid_argument", "bwlimit_bytes_per_second: expected an integer >= 0"};
    }
    r.bwlimit_bytes_per_second = v.get<std::int64_t>();
  }
  return std::nullopt;
}

Expected<std::string> required_string(const json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || !it->is_string() || it->get<std::string>().empty()) {
    return make_error("invalid_argument", std::string(key) + ": a non-empty string is required");
  }
  return it->get<std::string>();
}

}  // namespace

TransferService::TransferService(const HostConfig& config, PluginManager& plugins)
    : config_(config), plugins_(plugins) {}

TransferService::~TransferService() { stop(); }

void TransferService::start() {
  keeper_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      ensure_policy();
      lock.lock();
      cv_.wait_for(lock, std::chrono::seconds(2), [&] { return stopping_; });
    }
  });
}

void TransferService::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (keeper_.joinable()) keeper_.join();
}

std::filesystem::path TransferService::root() const {
  if (!config_.transfer_root.empty()) return config_.transfer_root;
  return config_.image_root.empty() ? config_.data_dir / "images" : config_.image_root;
}

void TransferService::ensure_policy() {
  const std::uint64_t generation = plugins_.generation();
  std::string id;
  auto t = plugins_.migration_transport(&id);
  if (!t) return;
  {
    std::lock_guard lock(mu_);
    if (policy_for_ == t.get() && policy_generation_ == generation) return;
  }
  std::error_code ec;
  std::filesystem::create_directories(root(), ec);
  sdk::ReceivePolicy policy;
  policy.root = root().string();
  policy.allowed_peers = config_.transfer_allowed_peers;
  policy.tunnel_targets = config_.transfer_tunnel_targets;
  policy.block_devices = config_.transfer_block_devices;
  const sdk::Status s = t->set_receive_policy(policy);
  if (!s.is_ok()) {
    // Tried again every 2 s (a listed device may appear later), logged once per reason.
    std::lock_guard lock(mu_);
    if (s.message() != policy_error_) {
      spdlog::error("transport {}: cannot set the receive policy (root {}): {}", id, policy.root, s.message());
      policy_error_ = s.message();
    }
    return;
  }
  std::lock_guard lock(mu_);
  policy_for_ = t.get();
  policy_generation_ = generation;
}

BorrowedPlugin<sdk::MigrationTransport> TransferService::transport(std::string* id) {
  ensure_policy();
  return plugins_.migration_transport(id);
}

Expected<std::string> TransferService::resolve_source(const std::string& source) const {
  const std::filesystem::path base = root();
  std::filesystem::path rel(source);
  if (rel.is_absolute()) {
    rel = rel.lexically_normal().lexically_relative(base.lexically_normal());
    if (rel.empty() || *rel.begin() == "..") {
      return make_error("path_escapes_root",
                        "source: " + source + " is not beneath the transfers root " + base.string());
    }
  }
  auto resolved = resolve_beneath(base, rel.string());
  if (!resolved) return make_error(resolved.error().code, "source: " + resolved.error().message);
  return resolved->string();
}

// A device source must be on transfers.block_devices (compared by device number).
Expected<std::string> TransferService::listed_device(const std::string& source) const {
  struct stat st {};
  if (source.empty() || source.front() != '/' || ::stat(source.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) {
    return make_error("invalid_argument", "source: " + source + " is not a block device");
  }
  for (const auto& listed : config_.transfer_block_devices) {
    struct stat l {};
    if (::stat(listed.c_str(), &l) == 0 && S_ISBLK(l.st_mode) && l.st_rdev == st.st_rdev) return source;
  }
  return make_error("not_permitted", "source: " + source + " is not on transfers.block_devices");
}

Expected<json> TransferService::send(const json& body) {
  if (!body.is_object()) return make_error("invalid_argument", "the body must be a JSON object");
  static const std::set<std::string> kKnown = {
      "id",          "source",     "peer",     "target", "base", "priority", "bwlimit_bytes_per_second",
      "compression", "block_size", "in_place", "kind"};
  for (const auto& [key, value] : body.items()) {
    if (!kKnown.contains(key)) return make_error("invalid_argument", key + ": unknown field");
  }
  sdk::SendRequest r;
  auto source = required_string(body, "source");
  if (!source) return tl::unexpected(source.error());
  auto peer = required_string(body, "peer");
  if (!peer) return tl::unexpected(peer.error());
  auto target = required_string(body, "target");
  if (!target) return tl::unexpected(target.error());
  r.peer = *peer;
  r.target = *target;
  if (body.contains("base")) {
    if (!body["base"].is_string()) return make_error("invalid_argument", "base: expected a path");
    r.base = body["base"].get<std::string>();
  }
  if (auto bad = parse_shared_fields(body, r)) return tl::unexpected(*bad);
  if (body.contains("block_size")) {
    const json& v = body["block_size"];
    if (!v.is_number_unsigned() || v.get<std::uint64_t>() > (1u << 20)) {
      return make_error("invalid_argument", "block_size: expected a power of two from 4096 to 1048576");
    }
    r.block_size = v.get<std::uint32_t>();
  }
  if (body.contains("in_place")) {
    if (!body["in_place"].is_boolean()) return make_error("invalid_argument", "in_place: expected true or false");
    r.in_place = body["in_place"].get<bool>();
  }
  if (body.contains("kind")) {
    const json& k = body["kind"];
    if (k == "block_device") {
      r.kind = sdk::TransferKind::kBlockDevice;
    } else if (k == "directory") {
      r.kind = sdk::TransferKind::kDirectory;
    } else if (k != "file") {
      return make_error("invalid_argument",
                        "kind: expected \"file\", \"directory\" or \"block_device\", got " + k.dump());
    }
  }
  auto resolved = r.kind == sdk::TransferKind::kBlockDevice ? listed_device(*source) : resolve_source(*source);
  if (!resolved) return tl::unexpected(resolved.error());
  r.source = *resolved;
  // Without a kind, a folder is sent as a directory tree.
  if (!body.contains("kind") && std::filesystem::is_directory(std::filesystem::symlink_status(r.source))) {
    r.kind = sdk::TransferKind::kDirectory;
  }
  auto t = transport();
  if (!t) return make_error("transport_unavailable", "no migration transport plugin is running on this node");
  auto started = from_result(t->send(r));
  if (!started) return tl::unexpected(started.error());
  return to_json(*started);
}

Expected<json> TransferService::open_tunnel(const json& body) {
  if (!body.is_object()) return make_error("invalid_argument", "the body must be a JSON object");
  static const std::set<std::string> kKnown = {
      "id",       "peer",        "target_address",           "listen_address",
      "priority", "compression", "bwlimit_bytes_per_second", "accept_timeout_seconds"};
  for (const auto& [key, value] : body.items()) {
    if (!kKnown.contains(key)) return make_error("invalid_argument", key + ": unknown field");
  }
  sdk::TunnelRequest r;
  auto peer = required_string(body, "peer");
  if (!peer) return tl::unexpected(peer.error());
  auto target = required_string(body, "target_address");
  if (!target) return tl::unexpected(target.error());
  r.peer = *peer;
  r.target_address = *target;
  if (body.contains("listen_address")) {
    if (!body["listen_address"].is_string()) return make_error("invalid_argument", "listen_address: expected a string");
    r.listen_address = body["listen_address"].get<std::string>();
  }
  if (auto bad = parse_shared_fields(body, r)) return tl::unexpected(*bad);
  if (body.contains("accept_timeout_seconds")) {
    const json& v = body["accept_timeout_seconds"];
    if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > 86400) {
      return make_error("invalid_argument", "accept_timeout_seconds: expected 1..86400");
    }
    r.accept_timeout = std::chrono::seconds(v.get<std::int64_t>());
  }
  auto t = transport();
  if (!t) return make_error("transport_unavailable", "no migration transport plugin is running on this node");
  auto opened = t->open_tunnel(r);
  if (!opened.is_ok()) {
    const auto& s = opened.status();
    return make_error(s.code() == sdk::StatusCode::kPermissionDenied ? "not_permitted" : error_code_for(s.code()),
                      s.message());
  }
  return to_json(opened.value());
}

Expected<json> TransferService::get(const std::string& id) {
  auto t = transport();
  if (!t) return make_error("transport_unavailable", "no migration transport plugin is running on this node");
  auto st = from_result(t->transfer_status(id));
  if (!st) return tl::unexpected(st.error());
  return to_json(*st);
}

Expected<std::vector<json>> TransferService::list(const std::string& after, std::size_t limit) {
  auto t = transport();
  if (!t) return make_error("transport_unavailable", "no migration transport plugin is running on this node");
  auto items = from_result(t->list_transfers(after, limit));
  if (!items) return tl::unexpected(items.error());
  std::vector<json> out;
  for (const auto& s : *items) out.push_back(to_json(s));
  return out;
}

Expected<json> TransferService::cancel(const std::string& id) {
  auto t = transport();
  if (!t) return make_error("transport_unavailable", "no migration transport plugin is running on this node");
  const sdk::Status s = t->cancel_transfer(id);
  if (!s.is_ok()) return make_error(error_code_for(s.code()), s.message());
  auto st = from_result(t->wait_transfer(id, std::chrono::seconds(5)));
  if (!st) return tl::unexpected(st.error());
  return to_json(*st);
}

Expected<json> TransferService::set_limit(const std::string& id, std::int64_t bytes_per_second) {
  auto t = transport();
  if (!t) return make_error("transport_unavailable", "no migration transport plugin is running on this node");
  const sdk::Status s = t->set_transfer_limit(id, bytes_per_second);
  if (!s.is_ok()) return make_error(error_code_for(s.code()), s.message());
  return get(id);
}

Expected<json> TransferService::node_limits() {
  std::string id;
  auto t = transport(&id);
  if (!t) return make_error("transport_unavailable", "no migration transport plugin is running on this node");
  auto limit = from_result(t->node_limit());
  if (!limit) return tl::unexpected(limit.error());
  return json{{"plugin", id}, {"node_bwlimit_bytes_per_second", *limit}, {"root", root().string()}};
}

Expected<json> TransferService::set_node_limit(std::int64_t bytes_per_second) {
  auto t = transport();
  if (!t) return make_error("transport_unavailable", "no migration transport plugin is running on this node");
  const sdk::Status s = t->set_node_limit(bytes_per_second);
  if (!s.is_ok()) return make_error(error_code_for(s.code()), s.message());
  return node_limits();
}

json TransferService::to_json(const sdk::TransferStatus& s) {
  const auto& st = s.stats;
  const double ratio = st.literal_wire_bytes > 0
                           ? static_cast<double>(st.literal_raw_bytes) / static_cast<double>(st.literal_wire_bytes)
                           : 1.0;
  return {{"id", s.id},
          {"peer", s.peer},
          {"source", s.source},
          {"target", s.target},
          {"kind", sdk::transfer_kind_name(s.kind)},
          {"direction", direction_name(s.direction)},
          {"state", sdk::transfer_state_name(s.state)},
          {"error_code", s.error_code},
          {"error_message", s.error_message},
          {"priority", sdk::transfer_priority_name(s.priority)},
          {"bwlimit_bytes_per_second", s.bwlimit_bytes_per_second},
          {"compression", compression_json(s.compression)},
          {"created_at_ms", s.created_at_ms},
          {"updated_at_ms", s.updated_at_ms},
          {"digest", s.digest},
          {"local_address", s.local_address},
          {"stats",
           {{"bytes_total", st.bytes_total},
            {"bytes_done", st.bytes_done},
            {"wire_bytes_sent", st.wire_bytes_sent},
            {"wire_bytes_received", st.wire_bytes_received},
            {"literal_raw_bytes", st.literal_raw_bytes},
            {"literal_wire_bytes", st.literal_wire_bytes},
            {"compression_ratio", ratio},
            {"blocks_total", st.blocks_total},
            {"blocks_literal", st.blocks_literal},
            {"blocks_delta", st.blocks_delta},
            {"blocks_dedup", st.blocks_dedup},
            {"blocks_zero", st.blocks_zero},
            {"blocks_resumed", st.blocks_resumed},
            {"throughput_bytes_per_second", st.throughput_bytes_per_second},
            {"eta_ms", st.eta_ms},
            {"elapsed_ms", st.elapsed_ms},
            {"compression_level", st.compression_level},
            {"attempts", st.attempts}}}};
}

}  // namespace novacron
