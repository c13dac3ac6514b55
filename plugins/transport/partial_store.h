// Resume records of interrupted receives (docs/transport-protocol.md, "Resume"): one small
// JSON file per (peer, transfer id) under DATA_DIR/transport/partials, written before the
// temp file is created (a crash leaves a record without a file, never the reverse) and
// refreshed as blocks are acknowledged. A retry of the same id finds it and continues from
// the acknowledged blocks; the janitor removes records and temp files past the retention.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace novacron::transport {

struct PartialRecord {
  std::string id;
  std::string peer;
  std::string target;     // relative to the receive root, as offered
  std::string temp_name;  // in the target's folder
  std::string base;
  std::uint64_t total_bytes = 0;
  std::uint32_t block_size = 0;
  std::string fingerprint;  // hex of the source fingerprint
  std::uint64_t acked_blocks = 0;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  // The target itself is being updated in place (temp_name is its name): it is incomplete
  // until a transfer of it succeeds; the janitor drops the record but never the file.
  bool in_place = false;
  // A directory tree: temp_name is its staging folder, removed as a whole.
  bool tree = false;
};

class PartialStore {
 public:
  explicit PartialStore(std::string dir) : dir_(std::move(dir)) {}

  // Creates the folder (0700). False with `error` when it cannot.
  bool open(std::string& error);

  // Writes atomically (temp + rename). False with `error` on an I/O failure.
  bool put(const PartialRecord& record, std::string& error);
  std::optional<PartialRecord> get(const std::string& peer, const std::string& id) const;
  void remove(const std::string& peer, const std::string& id);
  // Every readable record; unreadable files are skipped (and removed by the janitor's caller).
  std::vector<PartialRecord> list() const;

  // Node names and ids are already restricted; this refuses anything else as a file name.
  static bool safe_component(const std::string& text);

 private:
  std::string path_for(const std::string& peer, const std::string& id) const;
  std::string dir_;
};

// Creates `dir` and its missing parents with mode 0700. False with `error`.
bool make_private_dirs(const std::string& dir, std::string& error);

// Records older than `retention_ms` (by updated_ms) that no live transfer uses.
std::vector<PartialRecord> plan_cleanup(const std::vector<PartialRecord>& records, std::int64_t now_ms,
                                        std::int64_t retention_ms, const std::vector<std::string>& active_keys);

std::string partial_key(const std::string& peer, const std::string& id);

// The hidden name beside a target under which transfer `id` builds it: ".<name><suffix><id>"
// (".nctmp-" for the temp file or staging folder), cut to fit NAME_MAX (the id keeps it unique).
std::string temp_name_for(const std::string& name, const std::string& id, const std::string& suffix = ".nctmp-");

}  // namespace novacron::transport
