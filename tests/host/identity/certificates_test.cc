#include "host/identity/certificates.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/support/test_env.h"

namespace novacron {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

TEST(CertificatesTest, CaIssuesNodeCertificatesThatVerify) {
  TempDir dir;
  auto ca = create_cluster_ca(dir / "ca", "Test CA", 30);
  ASSERT_TRUE(ca.has_value()) << ca.error().message;
  EXPECT_EQ(mode_of(ca->key), 0600u);
  auto node = issue_node_certificate(dir / "ca", "node-1", dir / "node-1", {"127.0.0.1"}, 30);
  ASSERT_TRUE(node.has_value()) << node.error().message;
  EXPECT_EQ(mode_of(node->key), 0600u);
  EXPECT_TRUE(verify_node_certificate(ca->cert, node->cert, "node-1").has_value());
  auto wrong_name = verify_node_certificate(ca->cert, node->cert, "node-2");
  ASSERT_FALSE(wrong_name.has_value());
  EXPECT_EQ(wrong_name.error().code, "name_mismatch");
  // The same tool verifies it: openssl verify against the CA.
  auto r = testing::run(
      {"/usr/bin/openssl", "verify", "-CAfile", ca->cert.string(), "-purpose", "sslclient", node->cert.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(CertificatesTest, ACertificateFromAnotherCaIsRefused) {
  TempDir dir;
  ASSERT_TRUE(create_cluster_ca(dir / "ours", "Ours", 30).has_value());
  ASSERT_TRUE(create_cluster_ca(dir / "theirs", "Theirs", 30).has_value());
  auto foreign = issue_node_certificate(dir / "theirs", "node-1", dir / "foreign", {}, 30);
  ASSERT_TRUE(foreign.has_value());
  auto r = verify_node_certificate(dir / "ours/ca.crt", foreign->cert, "node-1");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "untrusted_certificate");
}

TEST(CertificatesTest, RefusesOverwritesAndBadInput) {
  TempDir dir;
  ASSERT_TRUE(create_cluster_ca(dir / "ca", "CA", 30).has_value());
  std::string before = testing::read_file(dir / "ca/ca.key");
  auto again = create_cluster_ca(dir / "ca", "CA", 30);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, "exists");
  EXPECT_EQ(testing::read_file(dir / "ca/ca.key"), before);  // untouched
  ASSERT_TRUE(issue_node_certificate(dir / "ca", "n1", dir / "out", {}, 30).has_value());
  EXPECT_EQ(issue_node_certificate(dir / "ca", "n1", dir / "out", {}, 30).error().code, "exists");
  EXPECT_EQ(issue_node_certificate(dir / "ca", "bad name", dir / "out", {}, 30).error().code, "invalid_argument");
  EXPECT_EQ(issue_node_certificate(dir / "ca", "n2", dir / "out", {"not-an-ip"}, 30).error().code, "invalid_argument");
  EXPECT_EQ(issue_node_certificate(dir / "missing", "n3", dir / "out", {}, 30).error().code, "io");
}

}  // namespace
}  // namespace novacron
