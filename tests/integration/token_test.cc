// The bundled token provider (plugins/auth-token) in a real novacrond: the admin token made on
// first start, tokens created, used, listed and revoked through /v1/tokens, secrets never
// stored in plain text, and tokens surviving a restart.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "tests/support/test_env.h"

namespace novacron {
namespace {

using namespace novacron::testing;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_ = dir_ / "novacrond.json";
    write_file(cfg_, R"({"data_dir": ")" + (dir_ / "data").string() + R"(", "listen": {"port": 0},
      "plugins": {"load": [{"id": "io.novacron.auth.token", "required": true},
                           {"id": "io.novacron.policy.spread"}]}})");
    start();
  }
  void start() {
    daemon_ = std::make_unique<Process>(
        std::vector<std::string>{(bin_dir() / "novacrond").string(), "--config", cfg_.string()}, dir_.path());
    ASSERT_TRUE(daemon_->wait_for_output("novacrond ready")) << daemon_->err();
    port_ = ready_port(daemon_->out());
  }
  void restart() {
    ASSERT_EQ(daemon_->stop(SIGTERM), 0) << daemon_->err();
    start();
  }
  std::string admin_token() {
    std::string t = read_file(dir_ / "data/admin.token");
    while (!t.empty() && t.back() == '\n') t.pop_back();
    return t;
  }
  HttpResult call(const std::string& method, const std::string& target, const std::string& token,
                  const std::string& body = "") {
    std::vector<std::pair<std::string, std::string>> h;
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    return http_request(port_, method, target, h, body);
  }

  TempDir dir_;
  fs::path cfg_;
  std::unique_ptr<Process> daemon_;
  int port_ = 0;
};

TEST_F(TokenTest, AdminTokenIsCreatedOnceInAPrivateFileAndNeverLogged) {
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "data/admin.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string admin = admin_token();
  EXPECT_EQ(admin.rfind("nct_", 0), 0u);
  EXPECT_EQ(admin.size(), 4u + 43u);  // 256 bits in base64url
  EXPECT_NE(daemon_->err().find("admin token created"), std::string::npos);
  EXPECT_EQ(daemon_->err().find(admin), std::string::npos) << "the admin token must not be logged";
  EXPECT_EQ(call("GET", "/v1/plugins", admin).status, 200);
  restart();
  EXPECT_EQ(admin_token(), admin) << "not re-created on the next start";
  EXPECT_EQ(call("GET", "/v1/plugins", admin).status, 200);
}

TEST_F(TokenTest, NoTokenBadTokenAndForeignBearerAre401) {
  EXPECT_EQ(call("GET", "/v1/plugins", "").status, 401);
  auto bad = call("GET", "/v1/plugins", "nct_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  EXPECT_EQ(bad.status, 401);
  EXPECT_NE(bad.body.find("unknown or revoked token"), std::string::npos) << bad.body;
  EXPECT_EQ(call("GET", "/v1/plugins", "some-other-scheme-token").status, 401);
  EXPECT_EQ(call("GET", "/v1/health", "").status, 200);
}

TEST_F(TokenTest, ReaderTokensReadButCannotMutateAndRevocationIsImmediate) {
  std::string admin = admin_token();
  auto created = call("POST", "/v1/tokens", admin, R"({"name": "ci", "role": "reader"})");
  ASSERT_EQ(created.status, 201) << created.body;
  json token = json::parse(created.body);
  std::string secret = token["token"];
  EXPECT_EQ(token["roles"], json::array({"reader"}));

  EXPECT_EQ(call("GET", "/v1/plugins", secret).status, 200);
  EXPECT_EQ(call("POST", "/v1/plugins/io.novacron.policy.spread/disable", secret).status, 403);
  EXPECT_EQ(call("POST", "/v1/tokens", secret, R"({"name": "x"})").status, 403);

  auto list = json::parse(call("GET", "/v1/tokens", admin).body);
  ASSERT_EQ(list["items"].size(), 2u);  // admin + ci
  for (const auto& t : list["items"]) EXPECT_FALSE(t.contains("token")) << "secrets are never listed";

  // Stored only as SHA-256: the secret's text is nowhere in the state store.
  std::string db = read_file(dir_ / "data/state.db") + read_file(dir_ / "data/state.db-wal");
  EXPECT_EQ(db.find(secret), std::string::npos);
  EXPECT_EQ(db.find(admin), std::string::npos);

  auto revoked = call("DELETE", "/v1/tokens/" + token["id"].get<std::string>(), admin);
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_EQ(call("GET", "/v1/plugins", secret).status, 401);  // at once, same process
  EXPECT_EQ(call("DELETE", "/v1/tokens/" + token["id"].get<std::string>(), admin).status, 404);
}

TEST_F(TokenTest, TokensSurviveARestart) {
  std::string admin = admin_token();
  auto created = json::parse(call("POST", "/v1/tokens", admin, R"({"name": "ops", "role": "admin"})").body);
  restart();
  auto r = call("POST", "/v1/plugins/io.novacron.policy.spread/disable?wait=30", created["token"]);
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(TokenTest, EventNumbersAreNotReusedAfterARestart) {
  std::string admin = admin_token();
  ASSERT_EQ(call("POST", "/v1/tokens", admin, R"({"name": "before"})").status, 201);
  WsClient before(port_, "/v1/events?since=earliest&bookmark=true", {{"Authorization", "Bearer " + admin}});
  ASSERT_EQ(before.status(), 101);
  std::uint64_t last = 0;
  for (std::string m = before.next(); !m.empty(); m = before.next()) {
    json e = json::parse(m);
    if (e["type"] == "stream.bookmark") break;
    last = e["seq"];
  }
  ASSERT_GT(last, 1u);
  restart();
  // The new run numbers its events after everything the old run could have used: resuming
  // from a number of the old run is "too old" (resynchronise), never other events.
  WsClient stale(port_, "/v1/events?since=" + std::to_string(last - 1), {{"Authorization", "Bearer " + admin}});
  EXPECT_EQ(stale.status(), 410) << stale.body();
  WsClient fresh(port_, "/v1/events?since=earliest", {{"Authorization", "Bearer " + admin}});
  ASSERT_EQ(fresh.status(), 101);
  json first = json::parse(fresh.next());
  EXPECT_GT(first["seq"].get<std::uint64_t>(), last) << first.dump();
}

TEST_F(TokenTest, BadTokenRequestsNameTheField) {
  std::string admin = admin_token();
  auto no_json = call("POST", "/v1/tokens", admin, "{not json");
  EXPECT_EQ(no_json.status, 400);
  auto unknown = call("POST", "/v1/tokens", admin, R"({"name": "x", "rol": "admin"})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("/rol: unknown field"), std::string::npos) << unknown.body;
  auto role = call("POST", "/v1/tokens", admin, R"({"name": "x", "role": "root"})");
  EXPECT_EQ(role.status, 400);
  EXPECT_NE(role.body.find("/role: expected"), std::string::npos) << role.body;
  EXPECT_EQ(call("GET", "/v1/plugins", admin).status, 200);  // still serving
}

TEST_F(TokenTest, TheLastAuthProviderCannotBeDisabled) {
  auto r = call("POST", "/v1/plugins/io.novacron.auth.token/disable", admin_token());
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("lock every client out"), std::string::npos);
  EXPECT_EQ(call("GET", "/v1/plugins", admin_token()).status, 200);
}

}  // namespace
}  // namespace novacron
