#include "host/plugins/signature.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

namespace novacron {
namespace {

std::string base64_encode(const std::string& raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string text) {
  std::erase_if(text, [](char c) { return c == '\n' || c == '\r' || c == ' '; });
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t padding = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

Expected<std::string> read_file(const std::filesystem::path& file, size_t limit) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error("io", file.string() + ": cannot open");
  std::string data(limit + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > limit) return make_error("io", file.string() + ": larger than " + std::to_string(limit) + " bytes");
  return data;
}

}  // namespace

std::string plugin_signature_message(const std::string& id, const std::string& version, const std::string& sha256_hex) {
  return "novacron-plugin-signature-v1\n" + id + "\n" + version + "\n" + sha256_hex + "\n";
}

Expected<TrustedKeys> TrustedKeys::load(const std::vector<std::filesystem::path>& files) {
  TrustedKeys keys;
  for (const auto& file : files) {
    FILE* f = std::fopen(file.c_str(), "rb");
    if (f == nullptr) return make_error("trusted_key", file.string() + ": cannot open trusted key");
    EVP_PKEY* pkey = PEM_read_PUBKEY(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (pkey == nullptr) return make_error("trusted_key", file.string() + ": not a PEM public key");
    if (EVP_PKEY_id(pkey) != EVP_PKEY_ED25519) {
      EVP_PKEY_free(pkey);
      return make_error("trusted_key", file.string() + ": not an Ed25519 key");
    }
    keys.keys_.push_back(Key{file.filename().string(),
                             std::shared_ptr<void>(pkey, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); })});
  }
  return keys;
}

Expected<std::string> TrustedKeys::verify(const std::string& message, const std::string& signature) const {
  if (signature.size() != 64) {
    return make_error("signature_invalid",
                      "signature is " + std::to_string(signature.size()) + " bytes, an Ed25519 signature has 64");
  }
  for (const Key& key : keys_) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, static_cast<EVP_PKEY*>(key.pkey.get())) == 1 &&
              EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                               reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (ok) return key.name;
  }
  return make_error("signature_invalid",
                    "signature does not verify against any of the " + std::to_string(keys_.size()) + " trusted keys");
}

Expected<std::string> decode_signature(const std::string& content, const std::string& origin) {
  if (content.size() == 64) return content;
  auto decoded = base64_decode(content);
  if (!decoded) return make_error("signature_invalid", origin + ": neither 64 raw bytes nor base64");
  return *decoded;
}

Expected<std::string> read_signature_file(const std::filesystem::path& file) {
  auto data = read_file(file, 4096);
  if (!data) return data;
  return decode_signature(*data, file.string());
}

Expected<std::string> sign_with_key_file(const std::filesystem::path& key_file, const std::string& message) {
  FILE* f = std::fopen(key_file.c_str(), "rb");
  if (f == nullptr) return make_error("signing_key", key_file.string() + ": cannot open private key");
  EVP_PKEY* pkey = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (pkey == nullptr || EVP_PKEY_id(pkey) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(pkey);
    return make_error("signing_key", key_file.string() + ": not an Ed25519 private key in PEM format");
  }
  std::string sig(64, '\0');
  size_t len = sig.size();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, pkey) == 1 &&
            EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  if (!ok) return make_error("signing_key", "signing failed");
  return base64_encode(sig);
}

}  // namespace novacron
