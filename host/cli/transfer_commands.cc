// novacron transfer ...: send (a file from this node to a peer, waiting with a progress bar
// unless --no-wait), list, show, cancel, limit (one transfer's bandwidth) and node-limit (the
// node's). Through /v1/transfers and /v1/transport (docs/cli.md, "novacron transfer").
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

#include "host/cli/api_client.h"
#include "host/cli/commands.h"
#include "host/cli/progress.h"

namespace novacron::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Transfer objects are read defensively: a missing or null field is "-" or 0, never an exception.
std::string str(const json& j, const char* key, const std::string& fallback = "-") {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

double num(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return 0;
  return j[key].get<double>();
}

std::int64_t integer(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return 0;
  return j[key].is_number_integer() ? j[key].get<std::int64_t>() : static_cast<std::int64_t>(j[key].get<double>());
}

const json& stats_of(const json& t) {
  static const json kEmpty = json::object();
  return t.is_object() && t.contains("stats") && t["stats"].is_object() ? t["stats"] : kEmpty;
}

std::string format_time_ms(const json& t, const char* key) {
  if (!t.contains(key) || !t[key].is_number()) return "-";
  std::time_t s = static_cast<std::time_t>(integer(t, key) / 1000);
  std::tm tm{};
  ::gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

// "N B", then one decimal below 10 and none above, in 1024-steps: "1.0 GiB", "312 MiB".
std::string human_bytes(double b) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (std::fabs(b) >= 1024 && u < 5) {
    b /= 1024;
    ++u;
  }
  char buf[48];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%.0f B", b);
  } else {
    std::snprintf(buf, sizeof buf, std::fabs(b) < 10 ? "%.1f %s" : "%.0f %s", b, kUnits[u]);
  }
  return buf;
}

// Decimal units, as link speeds are given: "671 MB/s", "100 Mbit/s".
std::string human_decimal(double v, const char* const* units) {
  int u = 0;
  while (std::fabs(v) >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  // Three significant digits without trailing zeros: "12.5 MB/s", "1.25 GB/s", "671 MB/s".
  char buf[48];
  const int decimals = u == 0 || std::fabs(v) >= 100 ? 0 : std::fabs(v) >= 10 ? 1 : 2;
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string text = buf;
  if (text.find('.') != std::string::npos) {
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
  }
  return text + " " + units[u];
}

std::string human_rate(double bytes_per_second) {
  static const char* kUnits[] = {"B/s", "kB/s", "MB/s", "GB/s", "TB/s"};
  return human_decimal(bytes_per_second, kUnits);
}

std::string human_bits(double bytes_per_second) {
  static const char* kUnits[] = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
  return human_decimal(bytes_per_second * 8, kUnits);
}

// A bandwidth limit: "unlimited" or "12.5 MB/s (100 Mbit/s, 12500000 bytes/s)".
std::string limit_text(std::int64_t bytes_per_second) {
  if (bytes_per_second <= 0) return "unlimited";
  return human_rate(static_cast<double>(bytes_per_second)) + " (" + human_bits(static_cast<double>(bytes_per_second)) +
         ", " + std::to_string(bytes_per_second) + " bytes/s)";
}

// "0.8 s", "4 min 12 s", "1 h 4 min"; "-" when unknown (negative).
std::string human_duration(double ms) {
  if (ms < 0) return "-";
  char buf[48];
  if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1f s", ms / 1000);
  } else if (ms < 3'600'000) {
    auto s = static_cast<long>(ms / 1000);
    std::snprintf(buf, sizeof buf, "%ld min %ld s", s / 60, s % 60);
  } else {
    auto m = static_cast<long>(ms / 60'000);
    std::snprintf(buf, sizeof buf, "%ld h %ld min", m / 60, m % 60);
  }
  return buf;
}

// Bytes per second from a plain number or a number with a unit: "12500000", "500k", "12.5MB",
// "100Mbit", "1Gbit", "64MiB" (k/K, M, G, T are powers of 1000; Ki, Mi, Gi, Ti of 1024; "B" or
// nothing is bytes, "bit" divides by 8; an optional "/s" and a space before the unit). "0",
// "none" and "unlimited" are 0, no limit. The error names neither flag nor value: callers do.
tl::expected<std::int64_t, std::string> parse_rate(std::string_view text) {
  if (text == "none" || text == "unlimited") return 0;
  std::string_view s = text;
  if (s.size() > 2 && s.substr(s.size() - 2) == "/s") s.remove_suffix(2);
  size_t i = 0;
  bool dot = false, digits = false;
  for (; i < s.size(); ++i) {
    if (s[i] >= '0' && s[i] <= '9') {
      digits = true;
    } else if (s[i] == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!digits) return tl::unexpected(std::string("expected a number of bytes per second"));
  const std::string number(s.substr(0, i));
  std::string_view rest = s.substr(i);
  if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  double multiplier = 1;
  static constexpr std::string_view kPrefixes = "KMGT";
  if (rest.size() >= 2 && rest[1] == 'i' && kPrefixes.find(rest[0]) != std::string_view::npos) {
    multiplier = std::pow(1024.0, static_cast<double>(kPrefixes.find(rest[0]) + 1));
    rest.remove_prefix(2);
  } else if (!rest.empty() && rest[0] == 'k') {
    multiplier = 1000;
    rest.remove_prefix(1);
  } else if (!rest.empty() && kPrefixes.find(rest[0]) != std::string_view::npos) {
    multiplier = std::pow(1000.0, static_cast<double>(kPrefixes.find(rest[0]) + 1));
    rest.remove_prefix(1);
  }
  if (rest == "bit" || rest == "bits") {
    multiplier /= 8;
  } else if (!rest.empty() && rest != "B") {
    return tl::unexpected("unknown unit \"" + std::string(rest) + "\"");
  }
  const double value = std::strtod(number.c_str(), nullptr) * multiplier;
  if (!(value < 9.0e18)) return tl::unexpected(std::string("too large"));
  const auto bytes = static_cast<std::int64_t>(std::llround(value));
  if (bytes == 0 && value > 0) return tl::unexpected(std::string("below 1 byte per second"));
  return bytes;
}

// A rate argument, or a one-line usage error naming the flag (`what`) that carried it.
tl::expected<std::int64_t, int> rate_argument(const Output& out, const std::string& what, const std::string& text,
                                              const std::string& help) {
  auto rate = parse_rate(text);
  if (rate) return *rate;
  return tl::unexpected(out.error("usage",
                                  what + " " + text + ": " + rate.error() +
                                      " (bytes/s, or units: 500k, 12.5MB, 100Mbit, 1Gbit, 64MiB; 0 or none: unlimited)",
                                  help));
}

// Transfer-specific hints over the API client's generic ones.
ApiFailure with_hint(ApiFailure f) {
  if (f.http_status == 404 && f.hint.empty()) {
    f.hint = "novacron transfer list shows them";
  } else if (f.code == "transport_unavailable" && f.hint.empty()) {
    f.hint = "is the node's transport plugin running? novacron plugin list shows it";
  } else if (f.code == "conflict" && f.message.find("operation ") == std::string::npos) {
    f.hint = "novacron transfer list shows the transfers";  // not the client's hint about an operation
  }
  return f;
}

// A call whose answer is {"transfer": T}; an answer without that object is a protocol error.
tl::expected<json, ApiFailure> transfer_call(ApiClient& api, const std::string& method, const std::string& path,
                                             const std::string& body = "") {
  auto r = api.call(method, path, body);
  if (!r) return tl::unexpected(with_hint(r.error()));
  if (!r->contains("transfer") || !(*r)["transfer"].is_object()) {
    return tl::unexpected(ApiFailure{"protocol_error", method + " " + path + ": the answer has no transfer object",
                                     "does the host's version have /v1/transfers? novacron version", 0});
  }
  return r;
}

std::string transfer_path(const std::string& id) { return "/v1/transfers/" + url_encode(id); }

bool transfer_ended(const json& t) {
  const std::string state = str(t, "state", "");
  // partial: the receive side of an interrupted transfer, at rest until it is resumed.
  // closed: a tunnel that ended cleanly.
  return state == "succeeded" || state == "failed" || state == "cancelled" || state == "partial" || state == "closed";
}

// bytes_done / bytes_total, or -1 when the size is not known yet.
double fraction_of(const json& t) {
  const json& s = stats_of(t);
  const double total = num(s, "bytes_total");
  if (total > 0) return std::clamp(num(s, "bytes_done") / total, 0.0, 1.0);
  return str(t, "state", "") == "succeeded" ? 1.0 : -1;
}

double wire_bytes(const json& s) { return num(s, "wire_bytes_sent") + num(s, "wire_bytes_received"); }

// Raw bytes per wire byte ("3.3x"), or "-" before anything crossed the wire.
std::string ratio_text(const json& s) {
  const double wire = wire_bytes(s);
  if (wire <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fx", num(s, "bytes_done") / wire);
  return buf;
}

std::string percent(double part, double whole) {
  return std::to_string(whole > 0 ? std::llround(100.0 * part / whole) : 0) + "%";
}

std::string progress_label(const json& t) {
  const json& s = stats_of(t);
  std::string label = str(t, "state", "?");
  if (str(t, "state", "") == "retrying" && integer(s, "attempts") > 0) {
    label += " (attempt " + std::to_string(integer(s, "attempts")) + ")";
  }
  label += " " + human_bytes(num(s, "bytes_done"));
  if (num(s, "bytes_total") > 0) label += "/" + human_bytes(num(s, "bytes_total"));
  if (num(s, "throughput_bytes_per_second") > 0) label += " " + human_rate(num(s, "throughput_bytes_per_second"));
  if (integer(s, "eta_ms") > 0) label += " ETA " + human_duration(num(s, "eta_ms"));
  return label;
}

// "sent disk.img to node-b:vms/disk.img: 1.0 GiB in 1.6 s (671 MB/s), 312 MiB on the wire
// (3.3x), 40% zero, 58% delta, 2% literal, digest xxh3-128:..."
std::string summary_line(const std::string& file, const json& t) {
  const json& s = stats_of(t);
  const double done = num(s, "bytes_done"), elapsed = num(s, "elapsed_ms");
  std::string line = "sent " + file + " to " + str(t, "peer") + ":" + str(t, "target") + ": " + human_bytes(done) +
                     " in " + human_duration(elapsed);
  if (elapsed > 0) line += " (" + human_rate(done * 1000 / elapsed) + ")";
  line += ", " + human_bytes(wire_bytes(s)) + " on the wire";
  if (wire_bytes(s) > 0) line += " (" + ratio_text(s) + ")";
  const double blocks = num(s, "blocks_total");
  if (blocks > 0) {
    line += ", " + percent(num(s, "blocks_zero"), blocks) + " zero, " + percent(num(s, "blocks_delta"), blocks) +
            " delta, " + percent(num(s, "blocks_literal"), blocks) + " literal";
    if (num(s, "blocks_dedup") > 0) line += ", " + percent(num(s, "blocks_dedup"), blocks) + " dedup";
    if (num(s, "blocks_resumed") > 0) line += ", " + percent(num(s, "blocks_resumed"), blocks) + " resumed";
  }
  if (!str(t, "digest", "").empty()) line += ", digest " + str(t, "digest");
  return line;
}

// Polls the transfer every 200 ms until it ends (progress bar on a terminal, not with
// --json), then prints the summary, the error, or (--json) the API's last answer. 0 when it
// succeeded.
int wait_for_transfer(ApiClient& api, const Output& out, json answer, const std::string& file) {
  const std::string id = str(answer["transfer"], "id", "");
  {
    ProgressBar bar(!out.json);
    while (!transfer_ended(answer["transfer"])) {
      bar.update(std::max(0.0, fraction_of(answer["transfer"])), progress_label(answer["transfer"]));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      auto next = transfer_call(api, "GET", transfer_path(id));
      if (!next) {
        bar.finish();
        ApiFailure f = next.error();
        // The transfer runs on the node whatever happens to the CLI.
        f.hint = (f.hint.empty() ? "" : f.hint + "; ") +
                 "the transfer goes on without the CLI: novacron transfer show " + id;
        return ApiClient::fail(out, f);
      }
      answer = std::move(*next);
    }
    if (str(answer["transfer"], "state", "") == "succeeded") bar.update(1.0, progress_label(answer["transfer"]));
  }
  const json& t = answer["transfer"];
  const std::string state = str(t, "state", "");
  const int code = state == "succeeded" ? 0 : 1;
  if (out.json) return out.emit_json(answer, code);
  if (code == 0) {
    std::cout << summary_line(file, t) << "\n";
    return 0;
  }
  const std::string error_code = str(t, "error_code", "");
  const std::string message = str(t, "error_message", "");
  std::string text = "transfer " + id + " " + state;
  if (!error_code.empty() && error_code != state) text += ": " + error_code;
  if (!message.empty()) text += ": " + message;
  std::string hint;
  if (state == "partial") {
    hint = "what arrived is kept for a resume: novacron transfer show " + id;
  } else if (state == "failed") {
    hint = "its stats and error: novacron transfer show " + id;
  }
  return out.error(error_code.empty() ? state : error_code, text, hint);
}

struct SendFlags {
  std::string file, to, base, bwlimit, compression, priority, id;
  std::int64_t block_size = 0;
  bool in_place = false;
  bool block_device = false;
  bool no_wait = false;
};

void add_send(CLI::App* transfer, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto f = std::make_shared<SendFlags>();
  auto* cmd = transfer->add_subcommand(
      "send",
      "Send a file, a folder (a directory tree, e.g. a container's root file system) or a block device of this "
      "node to a peer (delta against what the peer has); waits unless --no-wait");
  cmd->add_option("FILE", f->file,
                  "File or folder on the node, beneath its transfers root (a relative path is made absolute "
                  "against the current folder). A folder keeps owners, modes, times, xattrs, hard links, symlinks "
                  "and device nodes; unchanged files are not sent again")
      ->required();
  cmd->add_option("--to", f->to, "NODE:PATH: the peer and the path beneath its receive root")->required();
  cmd->add_option("--base", f->base, "A file on the peer to take unchanged blocks from");
  cmd->add_option("--bwlimit", f->bwlimit,
                  "Bandwidth limit: bytes/s, or 500k, 12.5MB, 100Mbit, 1Gbit (powers of 1000), 64MiB (of 1024); "
                  "0 or none: no limit");
  cmd->add_option("--compression", f->compression, "adaptive, off, or a zstd level 1 to 19");
  cmd->add_option("--priority", f->priority, "live, cold or background")
      ->check(CLI::IsMember({"live", "cold", "background"}));
  cmd->add_option("--id", f->id, "Transfer id (default: the host makes one)");
  cmd->add_option("--block-size", f->block_size, "Block size in bytes")->check(CLI::PositiveNumber);
  cmd->add_flag("--no-wait", f->no_wait, "Print the transfer and return at once");
  cmd->add_flag("--block-device", f->block_device,
                "FILE is a block device on transfers.block_devices, the target an absolute device path on the "
                "peer (on its list): written in place, marked incomplete until verified");
  cmd->add_flag("--in-place", f->in_place,
                "Update the peer's existing file in place (only changed blocks are written; it is marked "
                "incomplete until verified) instead of writing a new file and renaming it");
  cmd->callback([&out, &exit_code, &flags, f] {
    const std::string help = "novacron transfer send --help";
    const auto colon = f->to.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == f->to.size()) {
      exit_code = out.error("usage", "--to " + f->to + ": expected NODE:PATH, e.g. node-b:vms/disk.img", help);
      return;
    }
    json body = {{"source", fs::absolute(f->file).lexically_normal().string()},
                 {"peer", f->to.substr(0, colon)},
                 {"target", f->to.substr(colon + 1)}};
    if (!f->id.empty()) body["id"] = f->id;
    if (!f->base.empty()) body["base"] = f->base;
    if (!f->priority.empty()) body["priority"] = f->priority;
    if (f->block_size > 0) body["block_size"] = f->block_size;
    if (f->in_place) body["in_place"] = true;
    if (f->block_device) body["kind"] = "block_device";
    if (!f->bwlimit.empty()) {
      auto rate = rate_argument(out, "--bwlimit", f->bwlimit, help);
      if (!rate) {
        exit_code = rate.error();
        return;
      }
      body["bwlimit_bytes_per_second"] = *rate;
    }
    if (f->compression == "adaptive" || f->compression == "off") {
      body["compression"] = f->compression;
    } else if (!f->compression.empty()) {
      char* end = nullptr;
      long level = std::strtol(f->compression.c_str(), &end, 10);
      if (end == f->compression.c_str() || *end != '\0' || level < 1 || level > 19) {
        exit_code =
            out.error("usage", "--compression " + f->compression + ": expected adaptive, off or a level 1 to 19", help);
        return;
      }
      body["compression"] = level;
    }
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto r = transfer_call(api, "POST", "/v1/transfers", body.dump());
      if (!r) return ApiClient::fail(out, r.error());
      const json& t = (*r)["transfer"];
      if (f->no_wait) {
        if (out.json) return out.emit_json(*r);
        std::cout << "transfer " << str(t, "id") << " started: " << f->file << " to " << str(t, "peer") << ":"
                  << str(t, "target") << " (" << str(t, "state") << "); follow it with: novacron transfer show "
                  << str(t, "id") << "\n";
        return 0;
      }
      return wait_for_transfer(api, out, std::move(*r), f->file);
    });
  });
}

void print_transfer(const json& t) {
  const json& s = stats_of(t);
  const double fraction = fraction_of(t);
  std::cout << "ID          " << str(t, "id") << "\n"
            << "Direction   " << str(t, "direction") << " (" << str(t, "kind") << ")\n"
            << "Peer        " << str(t, "peer") << "\n"
            << "Source      " << or_dash(str(t, "source", "")) << "\n"
            << "Target      " << str(t, "target") << "\n"
            << "State       " << str(t, "state") << "\n";
  if (!str(t, "local_address", "").empty()) std::cout << "Local       " << str(t, "local_address") << "\n";
  if (!str(t, "error_code", "").empty() || !str(t, "error_message", "").empty()) {
    std::cout << "Error       " << str(t, "error_code", "") << ": " << str(t, "error_message", "") << "\n";
  }
  std::cout << "Priority    " << str(t, "priority") << "\n"
            << "Bandwidth   " << limit_text(integer(t, "bwlimit_bytes_per_second")) << "\n"
            << "Compression " << str(t, "compression") << " (level now " << integer(s, "compression_level") << ")\n"
            << "Created     " << format_time_ms(t, "created_at_ms") << "\n"
            << "Updated     " << format_time_ms(t, "updated_at_ms") << "\n"
            << "Digest      " << or_dash(str(t, "digest", "")) << "\n"
            << "Progress    " << (fraction < 0 ? std::string("-") : percent(fraction, 1.0)) << " ("
            << human_bytes(num(s, "bytes_done")) << " of " << human_bytes(num(s, "bytes_total")) << ")\n"
            << "Rate        " << human_rate(num(s, "throughput_bytes_per_second")) << ", elapsed "
            << human_duration(num(s, "elapsed_ms")) << ", ETA "
            << (transfer_ended(t) ? std::string("-") : human_duration(num(s, "eta_ms"))) << "\n"
            << "Wire        " << human_bytes(wire_bytes(s)) << " (sent " << human_bytes(num(s, "wire_bytes_sent"))
            << ", received " << human_bytes(num(s, "wire_bytes_received")) << "), ratio " << ratio_text(s) << "\n";
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.1fx", num(s, "compression_ratio"));
  std::cout << "Literal     " << human_bytes(num(s, "literal_raw_bytes")) << " as "
            << human_bytes(num(s, "literal_wire_bytes")) << " compressed (" << ratio << ")\n"
            << "Blocks      " << integer(s, "blocks_total") << ": " << integer(s, "blocks_literal") << " literal, "
            << integer(s, "blocks_delta") << " delta, " << integer(s, "blocks_dedup") << " dedup, "
            << integer(s, "blocks_zero") << " zero, " << integer(s, "blocks_resumed") << " resumed\n"
            << "Attempts    " << integer(s, "attempts") << "\n";
}

void add_list_show(CLI::App* transfer, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* list = transfer->add_subcommand("list", "Transfers of this node, sent and received");
  list->callback([&out, &exit_code, &flags] {
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto all = fetch_all(api, "/v1/transfers");
      if (!all) return ApiClient::fail(out, with_hint(all.error()));
      if (out.json) return out.emit_json({{"items", *all}});
      std::vector<std::vector<std::string>> rows;
      for (const auto& t : *all) {
        const json& s = stats_of(t);
        const double fraction = fraction_of(t);
        rows.push_back({str(t, "id"), str(t, "direction"), str(t, "peer"), str(t, "state"),
                        fraction < 0 ? "-" : percent(fraction, 1.0),
                        num(s, "bytes_total") < 0 ? "-" : human_bytes(num(s, "bytes_total")),
                        human_bytes(wire_bytes(s)), ratio_text(s), str(t, "target")});
      }
      print_table({"ID", "DIRECTION", "PEER", "STATE", "PROGRESS", "SIZE", "WIRE", "RATIO", "TARGET"}, rows);
      return 0;
    });
  });

  auto* show = transfer->add_subcommand("show", "A transfer with its stats and error");
  auto id = std::make_shared<std::string>();
  show->add_option("ID", *id, "Transfer id (novacron transfer list)")->required();
  show->callback([&out, &exit_code, &flags, id] {
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto r = transfer_call(api, "GET", transfer_path(*id));
      if (!r) return ApiClient::fail(out, r.error());
      if (out.json) return out.emit_json(*r);
      print_transfer((*r)["transfer"]);
      return 0;
    });
  });
}

void add_cancel(CLI::App* transfer, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* cmd = transfer->add_subcommand("cancel", "Stop a transfer (sent or received); what the peer got is dropped");
  auto id = std::make_shared<std::string>();
  cmd->add_option("ID", *id, "Transfer id (novacron transfer list)")->required();
  cmd->callback([&out, &exit_code, &flags, id] {
    with_api(flags, out, exit_code, [&](ApiClient& api) {
      auto r = transfer_call(api, "POST", transfer_path(*id) + "/cancel");
      if (!r) return ApiClient::fail(out, r.error());
      if (out.json) return out.emit_json(*r);
      std::cout << "cancel requested for transfer " << *id << " (state " << str((*r)["transfer"], "state")
                << "); check it with: novacron transfer show " << *id << "\n";
      return 0;
    });
  });
}

void add_limits(CLI::App* transfer, Output& out, int& exit_code, ConnectionFlags& flags) {
  {
    auto* cmd = transfer->add_subcommand("limit", "Change one transfer's bandwidth limit while it runs");
    auto id = std::make_shared<std::string>();
    auto rate = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "Transfer id (novacron transfer list)")->required();
    cmd->add_option("RATE", *rate, "Bytes/s, or 500k, 12.5MB, 100Mbit, 1Gbit, 64MiB; 0 or none: no limit")->required();
    cmd->callback([&out, &exit_code, &flags, id, rate] {
      auto bytes = rate_argument(out, "RATE", *rate, "novacron transfer limit --help");
      if (!bytes) {
        exit_code = bytes.error();
        return;
      }
      with_api(flags, out, exit_code, [&](ApiClient& api) {
        auto r = transfer_call(api, "PUT", transfer_path(*id) + "/bwlimit",
                               json{{"bwlimit_bytes_per_second", *bytes}}.dump());
        if (!r) return ApiClient::fail(out, r.error());
        if (out.json) return out.emit_json(*r);
        std::cout << "transfer " << *id << ": bandwidth limit "
                  << limit_text(integer((*r)["transfer"], "bwlimit_bytes_per_second"))
                  << "; the node's limit applies too\n";
        return 0;
      });
    });
  }
  {
    auto* cmd = transfer->add_subcommand("node-limit", "Show or set the node's bandwidth limit for all its transfers");
    auto rate = std::make_shared<std::string>();
    cmd->add_option("RATE", *rate, "New limit: bytes/s, or 500k, 12.5MB, 100Mbit, 1Gbit, 64MiB; 0 or none: no limit");
    cmd->callback([&out, &exit_code, &flags, rate] {
      std::optional<std::int64_t> bytes;
      if (!rate->empty()) {
        auto parsed = rate_argument(out, "RATE", *rate, "novacron transfer node-limit --help");
        if (!parsed) {
          exit_code = parsed.error();
          return;
        }
        bytes = *parsed;
      }
      with_api(flags, out, exit_code, [&](ApiClient& api) {
        auto r = bytes ? api.call("PUT", "/v1/transport/bwlimit", json{{"bwlimit_bytes_per_second", *bytes}}.dump())
                       : api.call("GET", "/v1/transport");
        if (!r) return ApiClient::fail(out, with_hint(r.error()));
        if (out.json) return out.emit_json(*r);
        std::cout << "node bandwidth limit: " << limit_text(integer(*r, "node_bwlimit_bytes_per_second"))
                  << " (transport " << str(*r, "plugin") << ")\n";
        return 0;
      });
    });
  }
}

}  // namespace

void add_transfer_commands(CLI::App& app, Output& out, int& exit_code, ConnectionFlags& flags) {
  auto* transfer = app.add_subcommand("transfer", "File transfers between nodes: send, list, show, cancel, limits");
  transfer->require_subcommand(1);
  add_send(transfer, out, exit_code, flags);
  add_list_show(transfer, out, exit_code, flags);
  add_cancel(transfer, out, exit_code, flags);
  add_limits(transfer, out, exit_code, flags);
}

}  // namespace novacron::cli
