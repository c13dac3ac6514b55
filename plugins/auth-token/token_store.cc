#include "token_store.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

namespace novacron::auth_token {
namespace {

std::string hex(const unsigned char* data, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[data[i] >> 4];
    out += kHex[data[i] & 0xf];
  }
  return out;
}

std::string base64url(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  return hex(raw.data(), raw.size());
}

}  // namespace

std::string sha256_hex(const std::string& data) {
  unsigned char digest[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return hex(digest, sizeof digest);
}

std::string random_token() {
  unsigned char raw[32];  // 256 bits
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  return kTokenPrefix + base64url(raw, sizeof raw);
}

sdk::Status TokenStore::load() {
  auto keys = host_.kv_list("token/");
  if (!keys) return keys.status();
  std::unique_lock lock(mutex_);
  for (const auto& key : keys.value()) {
    auto value = host_.kv_get(key);
    if (!value) return value.status();
    if (!value.value()) continue;
    sdk::CredentialInfo info;
    std::string hash;
    try {
      auto j = nlohmann::json::parse(*value.value());
      info = {j.at("id").get<std::string>(), j.at("name").get<std::string>(),
              j.at("roles").get<std::vector<std::string>>(), j.at("created_at").get<std::int64_t>()};
      hash = j.at("sha256").get<std::string>();
    } catch (const nlohmann::json::exception&) {
      host_.log(sdk::LogLevel::kWarn, "ignoring an unreadable token record", {{"key", key}});
      continue;
    }
    hash_by_id_[info.id] = hash;
    by_hash_[hash] = std::move(info);
  }
  return sdk::Status::ok();
}

sdk::Result<sdk::IssuedCredential> TokenStore::create(const std::string& name, const std::vector<std::string>& roles) {
  sdk::IssuedCredential issued;
  issued.secret = random_token();
  issued.info = {random_hex(8), name, roles, static_cast<std::int64_t>(std::time(nullptr))};
  std::string hash = sha256_hex(issued.secret);
  nlohmann::json record = {{"id", issued.info.id},
                           {"name", name},
                           {"roles", roles},
                           {"created_at", issued.info.created_at},
                           {"sha256", hash}};
  // Persist first: a token that is not stored must not work.
  if (sdk::Status s = host_.kv_put("token/" + issued.info.id, record.dump()); !s) return s;
  std::unique_lock lock(mutex_);
  hash_by_id_[issued.info.id] = hash;
  by_hash_[hash] = issued.info;
  return issued;
}

sdk::Status TokenStore::revoke(const std::string& id) {
  {
    std::shared_lock lock(mutex_);
    if (hash_by_id_.count(id) == 0) return {sdk::StatusCode::kNotFound, "no token with id " + id};
  }
  // Delete the stored hash first: if that fails the token stays valid everywhere, rather than
  // being refused now and coming back after a restart.
  if (sdk::Status s = host_.kv_delete("token/" + id); !s) return s;
  std::unique_lock lock(mutex_);
  auto it = hash_by_id_.find(id);
  if (it != hash_by_id_.end()) {
    by_hash_.erase(it->second);
    hash_by_id_.erase(it);
  }
  return sdk::Status::ok();
}

std::vector<sdk::CredentialInfo> TokenStore::list() const {
  std::shared_lock lock(mutex_);
  std::vector<sdk::CredentialInfo> out;
  for (const auto& [id, hash] : hash_by_id_) out.push_back(by_hash_.at(hash));
  return out;
}

std::optional<sdk::CredentialInfo> TokenStore::find(const std::string& secret) const {
  std::string hash = sha256_hex(secret);
  std::shared_lock lock(mutex_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

bool TokenStore::empty() const {
  std::shared_lock lock(mutex_);
  return by_hash_.empty();
}

}  // namespace novacron::auth_token
