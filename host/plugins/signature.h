// Detached Ed25519 signatures of plugins (OpenSSL).
//
// A signature file `lib<name>.so.sig` next to the library holds the base64 (or raw 64-byte)
// Ed25519 signature of the message
//     "novacron-plugin-signature-v1\n<id>\n<version>\n<sha256 hex of the library>\n"
// which binds the library's content to its identity: a valid signature for one plugin cannot
// be replayed for another. Keys are PEM files (openssl genpkey -algorithm ed25519).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "host/common/error.h"

namespace novacron {

std::string plugin_signature_message(const std::string& id, const std::string& version, const std::string& sha256_hex);

class TrustedKeys {
 public:
  // Loads Ed25519 public keys from PEM files; an unreadable or non-Ed25519 key is an error
  // naming the file (a typo in the trust config must not silently weaken it).
  static Expected<TrustedKeys> load(const std::vector<std::filesystem::path>& files);

  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }
  // Verifies `signature` (raw 64 bytes) over `message` against every key; returns the file
  // name of the key that verified, or an error.
  Expected<std::string> verify(const std::string& message, const std::string& signature) const;

 private:
  struct Key {
    std::string name;
    std::shared_ptr<void> pkey;  // EVP_PKEY*, freed with EVP_PKEY_free
  };
  std::vector<Key> keys_;
};

// Reads a signature file (raw 64 bytes, or base64 text of them).
Expected<std::string> read_signature_file(const std::filesystem::path& file);
// Decodes signature file content already read (raw 64 bytes, or base64); `origin` names it.
Expected<std::string> decode_signature(const std::string& content, const std::string& origin);

// Signs `message` with the Ed25519 private key in PEM file `key_file`; returns base64 text.
Expected<std::string> sign_with_key_file(const std::filesystem::path& key_file, const std::string& message);

}  // namespace novacron
