#include "host/identity/certificates.h"

#include "host/common/identifiers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace novacron {
namespace fs = std::filesystem;

namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;

Error openssl_error(const std::string& what) { return Error{"crypto", what + " failed (OpenSSL)"}; }

PKey new_key() { return PKey(EVP_EC_gen("P-256")); }

// Writes PEM through `write` into a new file with `mode` (refuses to replace a file).
template <typename Fn>
Expected<void> write_pem(const fs::path& path, mode_t mode, Fn&& write) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    return make_error(errno == EEXIST ? "exists" : "io", path.string() + ": " + std::strerror(errno) +
                                                             (errno == EEXIST ? " (refusing to overwrite it)" : ""));
  }
  ::fchmod(fd, mode);  // independent of the umask
  FILE* f = ::fdopen(fd, "w");
  bool ok = f != nullptr && write(f) == 1;
  if (f != nullptr) {
    ok = std::fflush(f) == 0 && ::fsync(fd) == 0 && ok;
    std::fclose(f);
  } else {
    ::close(fd);
  }
  if (!ok) {
    ::unlink(path.c_str());
    return make_error("io", path.string() + ": could not write");
  }
  return {};
}

// The private key (0600) and then the certificate (0644); the key is removed again when
// the certificate cannot be written, so that no half of a pair is left behind.
Expected<void> write_key_and_cert(const fs::path& key_path, EVP_PKEY* key, const fs::path& cert_path, X509* cert) {
  if (auto r = write_pem(key_path, 0600,
                         [&](FILE* f) { return PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr); });
      !r) {
    return r;
  }
  if (auto r = write_pem(cert_path, 0644, [&](FILE* f) { return PEM_write_X509(f, cert); }); !r) {
    ::unlink(key_path.c_str());
    return r;
  }
  return {};
}

Expected<PKey> read_key(const fs::path& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return make_error("io", path.string() + ": " + std::strerror(errno));
  PKey key(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!key) return make_error("crypto", path.string() + ": not a PEM private key");
  return key;
}

Expected<Cert> read_cert(const fs::path& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return make_error("io", path.string() + ": " + std::strerror(errno));
  Cert cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!cert) return make_error("crypto", path.string() + ": not a PEM certificate");
  return cert;
}

bool add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate with a random 128-bit serial, valid from now (minus clock skew) for `days`.
Cert new_cert(EVP_PKEY* key, const std::string& cn, int days) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("NovaCron"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

}  // namespace

Expected<CaFiles> create_cluster_ca(const fs::path& dir, const std::string& common_name, int days) {
  if (days < 1 || days > 36500) return make_error("invalid_argument", "days: expected 1 to 36500");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("io", dir.string() + ": " + ec.message());
  CaFiles files{dir / "ca.crt", dir / "ca.key"};
  if (fs::exists(files.key, ec) || fs::exists(files.cert, ec)) {
    return make_error("exists", dir.string() + " already holds a CA; a cluster keeps its CA (refusing to overwrite)");
  }
  PKey key = new_key();
  if (!key) return tl::unexpected(openssl_error("key generation"));
  Cert cert = new_cert(key.get(), common_name, days);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  if (!add_extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !add_extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !add_extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash") ||
      X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return tl::unexpected(openssl_error("CA certificate signing"));
  }
  if (auto r = write_key_and_cert(files.key, key.get(), files.cert, cert.get()); !r) return tl::unexpected(r.error());
  return files;
}

Expected<NodeCertFiles> issue_node_certificate(const fs::path& ca_dir, const std::string& node, const fs::path& out_dir,
                                               const std::vector<std::string>& ip_addresses, int days) {
  if (!is_valid_node_name(node)) {
    return make_error("invalid_argument",
                      "\"" + node + "\" is not a valid node name (letters, digits, '.', '-'; at most 63)");
  }
  if (days < 1 || days > 3650) return make_error("invalid_argument", "days: expected 1 to 3650");
  std::string san = "DNS:" + node;
  for (const auto& ip : ip_addresses) {
    unsigned char buf[16];
    if (::inet_pton(AF_INET, ip.c_str(), buf) != 1 && ::inet_pton(AF_INET6, ip.c_str(), buf) != 1) {
      return make_error("invalid_argument", "--ip: \"" + ip + "\" is not an IPv4 or IPv6 address");
    }
    san += ",IP:" + ip;
  }
  auto ca_key = read_key(ca_dir / "ca.key");
  if (!ca_key) return tl::unexpected(ca_key.error());
  auto ca_cert = read_cert(ca_dir / "ca.crt");
  if (!ca_cert) return tl::unexpected(ca_cert.error());
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return make_error("io", out_dir.string() + ": " + ec.message());
  NodeCertFiles files{out_dir / (node + ".crt"), out_dir / (node + ".key")};

  PKey key = new_key();
  if (!key) return tl::unexpected(openssl_error("key generation"));
  Cert cert = new_cert(key.get(), node, days);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert->get()));
  if (!add_extension(cert.get(), ca_cert->get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !add_extension(cert.get(), ca_cert->get(), NID_key_usage, "critical,digitalSignature,keyAgreement") ||
      !add_extension(cert.get(), ca_cert->get(), NID_ext_key_usage, "serverAuth,clientAuth") ||
      !add_extension(cert.get(), ca_cert->get(), NID_subject_alt_name, san) ||
      !add_extension(cert.get(), ca_cert->get(), NID_authority_key_identifier, "keyid") ||
      X509_sign(cert.get(), ca_key->get(), EVP_sha256()) == 0) {
    return tl::unexpected(openssl_error("node certificate signing"));
  }
  if (auto r = write_key_and_cert(files.key, key.get(), files.cert, cert.get()); !r) return tl::unexpected(r.error());
  return files;
}

Expected<void> verify_node_certificate(const fs::path& ca_cert_path, const fs::path& cert_path,
                                       const std::string& node) {
  auto ca = read_cert(ca_cert_path);
  if (!ca) return tl::unexpected(ca.error());
  auto cert = read_cert(cert_path);
  if (!cert) return tl::unexpected(cert.error());
  std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca->get());
  std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr);
  if (X509_verify_cert(ctx.get()) != 1) {
    return make_error("untrusted_certificate", cert_path.string() + " is not issued by the cluster CA: " +
                                                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  }
  if (X509_check_host(cert->get(), node.c_str(), node.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) != 1) {
    return make_error("name_mismatch", cert_path.string() + " does not name node " + node);
  }
  return {};
}

CertificateIdentity certificate_identity(X509* cert) {
  CertificateIdentity id;
  if (cert == nullptr) return id;
  std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>> bio(BIO_new(BIO_s_mem()));
  if (bio && X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    if (len > 0) id.subject.assign(data, static_cast<size_t>(len));
  }
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const unsigned char* s = ASN1_STRING_get0_data(n->d.dNSName);
      id.names.emplace_back(reinterpret_cast<const char*>(s), static_cast<size_t>(ASN1_STRING_length(n->d.dNSName)));
    }
    GENERAL_NAMES_free(sans);
  }
  if (id.names.empty()) {
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0)
      id.names.push_back(cn);
  }
  return id;
}

}  // namespace novacron
