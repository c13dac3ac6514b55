// The REST API of a real novacrond: authentication through an AuthProvider plugin (the test
// provider fixture: "Test <name>" = reader, "Test admin:<name>" = admin), roles, JSON errors
// with request ids, body limits, pagination, metrics, OpenAPI, plugin enable/disable.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/support/archive_writer.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

using namespace novacron::testing;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

const std::vector<std::pair<std::string, std::string>> kReader = {{"Authorization", "Test alice"}};
const std::vector<std::pair<std::string, std::string>> kAdmin = {{"Authorization", "Test admin:root"}};

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto cli = [](const std::string& fixture_id) {
      auto r = run({(bin_dir() / "novacron").string(), "plugin", "install", "--data-dir", (*dir_ / "data").string(),
                    fixture(fixture_id).string()});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    };
    cli("io.novacron.test.auth");
    cli("io.novacron.test.slow-start");
    std::string extra;
    for (int i = 1; i <= 20; ++i) {
      cli("io.novacron.bench.bulky-" + std::to_string(i));
      if (i <= 5) extra += R"(, {"id": "io.novacron.bench.bulky-)" + std::to_string(i) + R"("})";
    }
    fs::path cfg = *dir_ / "novacrond.json";
    write_file(cfg, R"({"node": {"name": "api-node"}, "data_dir": ")" + (*dir_ / "data").string() + R"(",
      "listen": {"port": 0}, "api": {"body_limit_bytes": 65536, "upload_limit_bytes": 16777216},
      "events": {"retention": 50},
      "plugins": {"load": [{"id": "io.novacron.test.auth", "required": true},
        {"id": "io.novacron.policy.resource-fit"}, {"id": "io.novacron.policy.spread"})" +
                        extra + "]}}");
    daemon_ = new Process({(bin_dir() / "novacrond").string(), "--config", cfg.string()}, dir_->path());
    ASSERT_TRUE(daemon_->wait_for_output("novacrond ready")) << daemon_->err();
    port_ = ready_port(daemon_->out());
  }
  static void TearDownTestSuite() {
    if (daemon_ != nullptr) EXPECT_EQ(daemon_->stop(SIGTERM), 0) << daemon_->err();
    delete daemon_;
    delete dir_;
  }

  static HttpResult call(const std::string& method, const std::string& target,
                         const std::vector<std::pair<std::string, std::string>>& headers = kReader,
                         const std::string& body = "") {
    return http_request(port_, method, target, headers, body);
  }
  static void expect_error(const HttpResult& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["error"]["code"], code) << r.body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
    EXPECT_EQ(j["error"]["request_id"], r.headers.at("x-request-id"));
  }

  static TempDir* dir_;
  static Process* daemon_;
  static int port_;
};
TempDir* ApiTest::dir_ = nullptr;
Process* ApiTest::daemon_ = nullptr;
int ApiTest::port_ = 0;

TEST_F(ApiTest, HealthIsPublicEverythingElseNeedsCredentials) {
  EXPECT_EQ(call("GET", "/v1/health", {}).status, 200);
  auto none = call("GET", "/v1/plugins", {});
  expect_error(none, 401, "unauthenticated");
  EXPECT_NE(none.body.find("Authorization: Bearer"), std::string::npos) << none.body;
  expect_error(call("GET", "/v1/plugins", {{"Authorization", "Test"}}), 401, "unauthenticated");
  expect_error(call("GET", "/metrics", {}), 401, "unauthenticated");
  expect_error(call("GET", "/v1/openapi.json", {}), 401, "unauthenticated");
  EXPECT_EQ(call("GET", "/v1/plugins").status, 200);
}

TEST_F(ApiTest, ReadOnlyPrincipalsCannotMutate) {
  auto r = call("POST", "/v1/plugins/io.novacron.policy.spread/disable");
  expect_error(r, 403, "permission_denied");
  EXPECT_NE(r.body.find("test:alice"), std::string::npos) << r.body;
  EXPECT_EQ(json::parse(call("GET", "/v1/plugins/io.novacron.policy.spread").body)["state"], "running");
}

TEST_F(ApiTest, AdminDisablesAndEnablesAPlugin) {
  auto off = call("POST", "/v1/plugins/io.novacron.policy.spread/disable?wait=30", kAdmin);
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_EQ(json::parse(off.body)["operation"]["state"], "succeeded") << off.body;
  auto p = json::parse(call("GET", "/v1/plugins/io.novacron.policy.spread").body);
  EXPECT_EQ(p["state"], "disabled");
  EXPECT_EQ(p["catalog_state"], "disabled");
  EXPECT_NE(p["catalog_reason"].get<std::string>().find("test:root"), std::string::npos);
  auto on = call("POST", "/v1/plugins/io.novacron.policy.spread/enable", kAdmin);
  ASSERT_EQ(on.status, 202) << on.body;  // no ?wait: accepted, with the operation to follow
  std::string op_id = json::parse(on.body)["operation"]["id"];
  auto done = call("GET", "/v1/operations/" + op_id + "?wait=30");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(json::parse(done.body)["state"], "succeeded") << done.body;
  EXPECT_EQ(json::parse(done.body)["result"]["state"], "running") << done.body;
  EXPECT_EQ(json::parse(call("GET", "/v1/plugins/io.novacron.policy.spread").body)["state"], "running");
  expect_error(call("POST", "/v1/plugins/io.novacron.nope/enable", kAdmin), 404, "not_found");
}

TEST_F(ApiTest, ErrorsAreJsonWithTheRightStatus) {
  expect_error(call("GET", "/v1/nothing-here"), 404, "not_found");
  auto wrong = call("DELETE", "/v1/health");
  expect_error(wrong, 405, "method_not_allowed");
  EXPECT_EQ(wrong.headers["allow"], "GET");
  expect_error(call("GET", "/v1/plugins?limit=0"), 400, "invalid_parameter");
  expect_error(call("GET", "/v1/plugins?cursor=%%%"), 400, "invalid_query");
  expect_error(call("GET", "/v1/plugins?cursor=bm90LWEtY3Vyc29y"), 400, "invalid_parameter");
  expect_error(call("GET", "/v1/plugins/io.novacron.nope"), 404, "not_found");
  auto big = call("POST", "/v1/plugins/io.novacron.policy.spread/enable",
                  {{"Authorization", "Test admin:root"}, {"Content-Length", "10000000"}});
  EXPECT_EQ(big.status, 413) << big.body;
  // ... and the daemon keeps serving.
  EXPECT_EQ(call("GET", "/v1/health", {}).status, 200);
}

TEST_F(ApiTest, RequestIdsAreEchoedOrMinted) {
  auto mine =
      call("GET", "/v1/plugins/io.novacron.nope", {{"Authorization", "Test alice"}, {"X-Request-Id", "req-12345678"}});
  EXPECT_EQ(mine.headers["x-request-id"], "req-12345678");
  EXPECT_EQ(json::parse(mine.body)["error"]["request_id"], "req-12345678");
  auto minted = call("GET", "/v1/health", {{"X-Request-Id", "bad id with spaces"}});
  EXPECT_EQ(minted.headers["x-request-id"].size(), 16u);
}

TEST_F(ApiTest, PaginationWalksEveryPluginOnceInOrder) {
  std::vector<std::string> ids;
  std::string cursor;
  int pages = 0;
  do {
    auto r = call("GET", "/v1/plugins?limit=7" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200) << r.body;
    json page = json::parse(r.body);
    EXPECT_LE(page["items"].size(), 7u);
    for (const auto& item : page["items"]) ids.push_back(item["id"]);
    cursor = page["next_cursor"].is_null() ? "" : page["next_cursor"].get<std::string>();
    ASSERT_LT(++pages, 20);
  } while (!cursor.empty());
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size()) << "duplicates across pages";
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  // 20 bulky + test auth + 3 bundled that are pinned (2 loaded + binpack not configured is absent).
  EXPECT_GE(ids.size(), 23u);
  for (int i = 1; i <= 20; ++i) EXPECT_TRUE(unique.count("io.novacron.bench.bulky-" + std::to_string(i))) << i;
  json all = json::parse(call("GET", "/v1/plugins?limit=1000").body);
  EXPECT_EQ(all["items"].size(), ids.size());
  EXPECT_TRUE(all["next_cursor"].is_null());
}

TEST_F(ApiTest, MetricsCoverRequestsAndPlugins) {
  call("GET", "/v1/plugins");
  auto r = call("GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("novacron_http_requests_total{route=\"/v1/plugins\",method=\"GET\",status=\"200\"}"),
            std::string::npos)
      << r.body.substr(0, 2000);
  EXPECT_NE(r.body.find("novacron_http_request_duration_seconds_bucket{route=\"/v1/plugins\""), std::string::npos);
  EXPECT_NE(r.body.find("novacron_plugin_load_seconds_count{plugin=\"io.novacron.test.auth\"}"), std::string::npos);
  EXPECT_NE(r.body.find("novacron_plugins_running"), std::string::npos);
  // The exposition is valid for Prometheus itself (promtool from Debian's prometheus package).
  fs::path file = *dir_ / "metrics.txt";
  write_file(file, r.body);
  auto check = run({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + file.string()});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

TEST_F(ApiTest, OpenApiDescribesTheRoutes) {
  auto r = call("GET", "/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  json doc = json::parse(r.body);
  EXPECT_EQ(doc["openapi"], "3.0.3");
  for (const auto& [path, method] :
       std::vector<std::pair<std::string, std::string>>{{"/v1/health", "get"},
                                                        {"/v1/plugins", "get"},
                                                        {"/v1/plugins/{id}", "get"},
                                                        {"/v1/plugins/{id}/enable", "post"},
                                                        {"/v1/plugins/{id}/disable", "post"},
                                                        {"/metrics", "get"}}) {
    EXPECT_TRUE(doc["paths"].contains(path) && doc["paths"][path].contains(method)) << method << " " << path;
  }
  EXPECT_TRUE(doc["paths"]["/v1/health"]["get"]["security"].empty());
}

TEST_F(ApiTest, UploadInstallsAPackageOnce) {
  fs::path pkg = *dir_ / "good.tar.zst";
  write_archive(pkg, entries_of_folder(fixture("io.novacron.test.good"), "1.0.0"));
  std::string body = read_file(pkg);
  expect_error(call("POST", "/v1/plugins", kReader, body), 403, "permission_denied");
  auto r = call("POST", "/v1/plugins", kAdmin, body);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(json::parse(r.body)["id"], "io.novacron.test.good");
  auto p = json::parse(call("GET", "/v1/plugins/io.novacron.test.good").body);
  EXPECT_EQ(p["installed"][0]["version"], "1.0.0");
  EXPECT_TRUE(fs::exists(*dir_ / "data/plugins/io.novacron.test.good/1.0.0/plugin.json"));
  expect_error(call("POST", "/v1/plugins", kAdmin, body), 409, "already_installed");
  EXPECT_TRUE(fs::is_empty(*dir_ / "data/tmp"));  // no upload left behind
}

TEST_F(ApiTest, UploadRefusesUnsafeAndOversizedPackages) {
  fs::path pkg = *dir_ / "evil.tar.zst";
  auto entries = entries_of_folder(fixture("io.novacron.test.good"), "1.0.0");
  entries.push_back({"1.0.0/../../../evil", ArchiveEntry::Type::kFile, "x", "", 0644});
  write_archive(pkg, entries);
  // The suite shares one data directory: another test may have installed this plugin, so
  // what must hold is that the refused upload changed nothing and wrote nothing outside.
  const fs::path installed = *dir_ / "data/plugins/io.novacron.test.good";
  const auto versions = [&] {
    std::vector<std::string> out;
    if (fs::exists(installed)) {
      for (const auto& e : fs::directory_iterator(installed)) out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  const auto before = versions();
  auto r = call("POST", "/v1/plugins", kAdmin, read_file(pkg));
  expect_error(r, 400, "archive_unsafe");
  EXPECT_EQ(versions(), before);
  for (const auto& e : fs::recursive_directory_iterator(dir_->path())) {
    EXPECT_NE(e.path().filename(), "evil") << "the archive wrote outside its folder: " << e.path();
  }
  expect_error(call("POST", "/v1/plugins", kAdmin, "not an archive"), 400, "archive_invalid");
  auto big = call("POST", "/v1/plugins", {{"Authorization", "Test admin:root"}, {"Content-Length", "20000000"}});
  EXPECT_EQ(big.status, 413) << big.body;
  // Without credentials an upload is refused from its header: its body is never buffered.
  auto anonymous = call("POST", "/v1/plugins", {{"Content-Length", "15000000"}});
  EXPECT_EQ(anonymous.status, 401) << anonymous.body;
  auto reader = call("POST", "/v1/plugins", {{"Authorization", "Test alice"}, {"Content-Length", "15000000"}});
  EXPECT_EQ(reader.status, 403) << reader.body;
  EXPECT_EQ(call("GET", "/v1/health", {}).status, 200);
}

TEST_F(ApiTest, DeleteRemovesOnlyVersionsThatAreNotRunning) {
  expect_error(call("DELETE", "/v1/plugins/io.novacron.bench.bulky-20/1.0.0", kReader), 403, "permission_denied");
  expect_error(call("DELETE", "/v1/plugins/io.novacron.bench.bulky-1/1.0.0", kAdmin), 409, "plugin_loaded");
  expect_error(call("DELETE", "/v1/plugins/io.novacron.policy.spread/2.0.0", kAdmin), 409, "bundled");
  auto r = call("DELETE", "/v1/plugins/io.novacron.bench.bulky-20/1.0.0", kAdmin);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(fs::exists(*dir_ / "data/plugins/io.novacron.bench.bulky-20/1.0.0"));
  expect_error(call("GET", "/v1/plugins/io.novacron.bench.bulky-20"), 404, "not_found");
  expect_error(call("DELETE", "/v1/plugins/io.novacron.bench.bulky-20/1.0.0", kAdmin), 404, "not_found");
}

TEST_F(ApiTest, OneMutatingOperationPerObject) {
  auto first = call("POST", "/v1/plugins/io.novacron.test.slow-start/enable", kAdmin);  // start() takes 3 s
  ASSERT_EQ(first.status, 202) << first.body;
  std::string op_id = json::parse(first.body)["operation"]["id"];
  auto second = call("POST", "/v1/plugins/io.novacron.test.slow-start/disable", kAdmin);
  expect_error(second, 409, "conflict");
  EXPECT_NE(second.body.find(op_id), std::string::npos) << "the 409 names the running operation: " << second.body;
  auto running = json::parse(call("GET", "/v1/operations/" + op_id).body);
  EXPECT_EQ(running["state"], "running");
  auto done = json::parse(call("GET", "/v1/operations/" + op_id + "?wait=30").body);
  EXPECT_EQ(done["state"], "succeeded") << done;
  // The object is free again.
  auto third = call("POST", "/v1/plugins/io.novacron.test.slow-start/disable?wait=30", kAdmin);
  EXPECT_EQ(third.status, 200) << third.body;
  auto list = json::parse(call("GET", "/v1/operations?limit=1000").body);
  EXPECT_GE(list["items"].size(), 2u);
  expect_error(call("GET", "/v1/operations/op-nope"), 404, "not_found");
  expect_error(call("POST", "/v1/operations/" + op_id + "/cancel", kAdmin), 409, "finished");
  expect_error(call("POST", "/v1/plugins/io.novacron.policy.spread/enable?wait=forever", kAdmin), 400,
               "invalid_parameter");
}

TEST_F(ApiTest, AnOperationInFlightAtACrashShowsAsInterrupted) {
  auto started = call("POST", "/v1/plugins/io.novacron.test.slow-start/enable", kAdmin);
  ASSERT_EQ(started.status, 202) << started.body;
  std::string op_id = json::parse(started.body)["operation"]["id"];
  // The host dies while the plugin is starting (no graceful stop).
  EXPECT_EQ(daemon_->stop(SIGKILL), 128 + SIGKILL);
  delete daemon_;
  daemon_ =
      new Process({(bin_dir() / "novacrond").string(), "--config", (*dir_ / "novacrond.json").string()}, dir_->path());
  ASSERT_TRUE(daemon_->wait_for_output("novacrond ready")) << daemon_->err();
  port_ = ready_port(daemon_->out());
  auto op = json::parse(call("GET", "/v1/operations/" + op_id).body);
  EXPECT_EQ(op["state"], "interrupted") << op;
  EXPECT_EQ(op["error"]["code"], "interrupted");
  EXPECT_NE(daemon_->err().find("marked interrupted"), std::string::npos);
}

TEST_F(ApiTest, EventsStreamReplaysThenFollowsWithoutGaps) {
  // Start-up published plugin.loaded events; replay them from the earliest one retained
  // (the suite may have restarted the daemon, and sequence numbers from before a restart
  // are answered 410).
  WsClient all(port_, "/v1/events?since=earliest&type=plugin.", kReader);
  ASSERT_EQ(all.status(), 101) << all.body();
  std::vector<json> seen;
  for (std::string m = all.next(); !m.empty() && seen.size() < 3; m = seen.size() < 2 ? all.next() : "") {
    seen.push_back(json::parse(m));
  }
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen[0]["type"], "plugin.loaded");
  EXPECT_LT(seen[0]["seq"].get<std::uint64_t>(), seen[1]["seq"].get<std::uint64_t>());

  // Live events: a disable publishes plugin.disabled (and operation.* which the filter drops).
  WsClient live(port_, "/v1/events?type=plugin.disabled,operation.succeeded",
                {{"Authorization", "Test alice"}, {"X-Request-Id", "ws-request-1"}});
  ASSERT_EQ(live.status(), 101);
  EXPECT_EQ(live.headers().at("x-request-id"), "ws-request-1");
  ASSERT_EQ(call("POST", "/v1/plugins/io.novacron.policy.spread/disable?wait=30", kAdmin).status, 200);
  json first = json::parse(live.next());
  json second = json::parse(live.next());
  EXPECT_EQ(first["type"], "plugin.disabled");
  EXPECT_EQ(first["object"], "plugin/io.novacron.policy.spread");
  EXPECT_EQ(second["type"], "operation.succeeded");
  EXPECT_EQ(second["seq"].get<std::uint64_t>(), first["seq"].get<std::uint64_t>() + 1) << "no gap";

  // Resuming after the first one yields exactly the events after it.
  WsClient resumed(port_, "/v1/events?since=" + std::to_string(first["seq"].get<std::uint64_t>()), kReader);
  ASSERT_EQ(resumed.status(), 101);
  EXPECT_EQ(json::parse(resumed.next())["seq"], first["seq"].get<std::uint64_t>() + 1);
}

TEST_F(ApiTest, EventsRefuseWhatCannotBeServed) {
  WsClient anonymous(port_, "/v1/events", {});
  EXPECT_EQ(anonymous.status(), 401);
  EXPECT_EQ(call("GET", "/v1/events").status, 426);  // not a WebSocket handshake
  // Retention is 50 events here: generate more, then ask for the start.
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(call("POST", "/v1/plugins/io.novacron.policy.spread/disable?wait=30", kAdmin).status, 200);
    ASSERT_EQ(call("POST", "/v1/plugins/io.novacron.policy.spread/enable?wait=30", kAdmin).status, 200);
  }
  WsClient old(port_, "/v1/events?since=1", kReader);
  EXPECT_EQ(old.status(), 410);
  EXPECT_NE(old.body().find("too_old"), std::string::npos) << old.body();

  // "earliest" replays what is still kept, never 410; the bookmark closes the replay.
  WsClient earliest(port_, "/v1/events?since=earliest&bookmark=true", kReader);
  ASSERT_EQ(earliest.status(), 101) << earliest.body();
  std::vector<json> replayed;
  for (std::string m = earliest.next(); !m.empty(); m = earliest.next()) {
    replayed.push_back(json::parse(m));
    if (replayed.back()["type"] == "stream.bookmark") break;
  }
  ASSERT_EQ(replayed.size(), 51u) << "50 retained events, then the bookmark";
  EXPECT_GT(replayed.front()["seq"].get<std::uint64_t>(), 1u);
  for (size_t i = 1; i + 1 < replayed.size(); ++i) {
    EXPECT_EQ(replayed[i]["seq"], replayed[i - 1]["seq"].get<std::uint64_t>() + 1) << "no gap";
  }
  EXPECT_EQ(replayed.back()["seq"], replayed[replayed.size() - 2]["seq"]) << "bookmark = last replayed";

  WsClient bad_bookmark(port_, "/v1/events?bookmark=yes", kReader);
  EXPECT_EQ(bad_bookmark.status(), 400);
}

// A replay larger than the WebSocket queue bound (4096 messages) is sent whole: only a peer
// that falls behind live events is closed as too slow.
TEST(ApiEventsReplayTest, ReplayLargerThanTheQueueBoundArrivesWhole) {
  TempDir dir;
  for (const char* id : {"io.novacron.test.auth", "io.novacron.test.good"}) {
    auto r = run({(bin_dir() / "novacron").string(), "plugin", "install", "--data-dir", (dir / "data").string(),
                  fixture(id).string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  write_file(dir / "cfg.json", R"({"data_dir": ")" + (dir / "data").string() + R"(", "listen": {"port": 0},
    "events": {"retention": 20000},
    "plugins": {"load": [{"id": "io.novacron.test.auth", "required": true},
                         {"id": "io.novacron.test.good", "config": {"burst_events": 6000}}]}})");
  Process daemon({(bin_dir() / "novacrond").string(), "--config", (dir / "cfg.json").string()}, dir.path());
  ASSERT_TRUE(daemon.wait_for_output("novacrond ready")) << daemon.err();
  WsClient ws(ready_port(daemon.out()), "/v1/events?since=earliest&type=test.burst&bookmark=true", kReader);
  ASSERT_EQ(ws.status(), 101) << ws.body();
  int bursts = 0;
  for (std::string m = ws.next(); !m.empty(); m = ws.next()) {
    json e = json::parse(m);
    if (e["type"] == "stream.bookmark") break;
    EXPECT_EQ(e["payload"]["n"], bursts++);
  }
  EXPECT_EQ(bursts, 6000);
}

}  // namespace
}  // namespace novacron
