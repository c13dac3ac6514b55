#include "partial_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace novacron::transport {

namespace {

constexpr const char* kSuffix = ".json";

std::optional<std::string> read_small_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || out.size() > size_t{64} * 1024) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

std::string partial_key(const std::string& peer, const std::string& id) { return peer + "/" + id; }

bool PartialStore::safe_component(const std::string& text) {
  if (text.empty() || text.size() > 128 || text.front() == '.') return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

bool PartialStore::open(std::string& error) { return make_private_dirs(dir_, error); }

bool make_private_dirs(const std::string& dir, std::string& error) {
  std::string path;
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = dir.find('/', pos + 1);
    path = dir.substr(0, pos);
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      error = "cannot create " + path + ": " + std::strerror(errno);
      return false;
    }
  }
  return true;
}

std::string PartialStore::path_for(const std::string& peer, const std::string& id) const {
  return dir_ + "/" + peer + "+" + id + kSuffix;
}

bool PartialStore::put(const PartialRecord& r, std::string& error) {
  if (!safe_component(r.peer) || !safe_component(r.id)) {
    error = "peer or transfer id not usable as a file name";
    return false;
  }
  const nlohmann::json j = {{"id", r.id},
                            {"peer", r.peer},
                            {"target", r.target},
                            {"temp_name", r.temp_name},
                            {"base", r.base},
                            {"total_bytes", r.total_bytes},
                            {"block_size", r.block_size},
                            {"fingerprint", r.fingerprint},
                            {"acked_blocks", r.acked_blocks},
                            {"created_ms", r.created_ms},
                            {"updated_ms", r.updated_ms},
                            {"in_place", r.in_place},
                            {"tree", r.tree}};
  const std::string text = j.dump();
  const std::string final_path = path_for(r.peer, r.id);
  const std::string tmp = final_path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    error = "cannot write " + tmp + ": " + std::strerror(errno);
    return false;
  }
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!written || ::rename(tmp.c_str(), final_path.c_str()) != 0) {
    error = "cannot write " + final_path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::optional<PartialRecord> PartialStore::get(const std::string& peer, const std::string& id) const {
  if (!safe_component(peer) || !safe_component(id)) return std::nullopt;
  const auto text = read_small_file(path_for(peer, id));
  if (!text) return std::nullopt;
  const auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  try {
    PartialRecord r;
    r.id = j.at("id").get<std::string>();
    r.peer = j.at("peer").get<std::string>();
    r.target = j.at("target").get<std::string>();
    r.temp_name = j.at("temp_name").get<std::string>();
    r.base = j.at("base").get<std::string>();
    r.total_bytes = j.at("total_bytes").get<std::uint64_t>();
    r.block_size = j.at("block_size").get<std::uint32_t>();
    r.fingerprint = j.at("fingerprint").get<std::string>();
    r.acked_blocks = j.at("acked_blocks").get<std::uint64_t>();
    r.created_ms = j.at("created_ms").get<std::int64_t>();
    r.updated_ms = j.at("updated_ms").get<std::int64_t>();
    r.in_place = j.value("in_place", false);
    r.tree = j.value("tree", false);
    if (r.peer != peer || r.id != id) return std::nullopt;
    return r;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

void PartialStore::remove(const std::string& peer, const std::string& id) {
  if (!safe_component(peer) || !safe_component(id)) return;
  ::unlink(path_for(peer, id).c_str());
}

std::vector<PartialRecord> PartialStore::list() const {
  std::vector<PartialRecord> out;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    const auto sep = name.find('+');
    if (sep == std::string::npos || name.size() <= std::strlen(kSuffix) ||
        name.compare(name.size() - std::strlen(kSuffix), std::string::npos, kSuffix) != 0) {
      continue;
    }
    const std::string peer = name.substr(0, sep);
    const std::string id = name.substr(sep + 1, name.size() - sep - 1 - std::strlen(kSuffix));
    if (auto r = get(peer, id)) out.push_back(std::move(*r));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.updated_ms < b.updated_ms; });
  return out;
}

std::vector<PartialRecord> plan_cleanup(const std::vector<PartialRecord>& records, std::int64_t now_ms,
                                        std::int64_t retention_ms, const std::vector<std::string>& active_keys) {
  std::vector<PartialRecord> stale;
  for (const auto& r : records) {
    const bool active =
        std::find(active_keys.begin(), active_keys.end(), partial_key(r.peer, r.id)) != active_keys.end();
    if (!active && now_ms - r.updated_ms >= retention_ms) stale.push_back(r);
  }
  return stale;
}

std::string temp_name_for(const std::string& name, const std::string& id, const std::string& suffix) {
  const std::string tail = suffix + id;
  const size_t room = 255 - 1 - tail.size();
  return "." + name.substr(0, room) + tail;
}

}  // namespace novacron::transport
