// Node identity: a cluster certificate authority and one certificate per node, for mutual
// TLS between hosts (and optionally TLS on the public API). ECDSA P-256 keys, written with
// mode 0600; certificates name the node in the subject CN and a DNS subjectAltName, with
// both server and client authentication usages, so that one certificate serves a node's
// listener and its outgoing calls.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "host/common/error.h"

typedef struct x509_st X509;  // OpenSSL's, without its headers

namespace novacron {

struct CaFiles {
  std::filesystem::path cert;  // ca.crt
  std::filesystem::path key;   // ca.key (0600)
};

struct NodeCertFiles {
  std::filesystem::path cert;  // <node>.crt
  std::filesystem::path key;   // <node>.key (0600)
};

// Creates DIR/ca.crt and DIR/ca.key. Refuses to overwrite an existing CA ("exists").
Expected<CaFiles> create_cluster_ca(const std::filesystem::path& dir, const std::string& common_name, int days);

// Issues a certificate for `node` signed by the CA in `ca_dir`, into `out_dir`
// (<node>.crt, <node>.key). `ip_addresses` become IP subjectAltNames. Refuses to overwrite.
Expected<NodeCertFiles> issue_node_certificate(const std::filesystem::path& ca_dir, const std::string& node,
                                               const std::filesystem::path& out_dir,
                                               const std::vector<std::string>& ip_addresses, int days);

// Checks that `cert` was issued by the CA and names `node` (CN or DNS SAN). Error
// "untrusted_certificate" or "name_mismatch" with the reason.
Expected<void> verify_node_certificate(const std::filesystem::path& ca_cert, const std::filesystem::path& cert,
                                       const std::string& node);

// The identity a certificate asserts: its subject (one line, RFC 2253) and its names (DNS
// subjectAltNames, or the subject CN when it has none), for AuthRequest::tls_peer_*.
struct CertificateIdentity {
  std::string subject;
  std::vector<std::string> names;
};
CertificateIdentity certificate_identity(X509* cert);

}  // namespace novacron
