// The novacron CLI against a real novacrond through the REST API: where the URL, token and
// CA come from (flags, environment, ~/.config/novacron/cli.json, login), tokens, plugins,
// operations with waiting, events until the replay bookmark and --follow, nodes, --json for
// scripts, and one-line errors with hints. Every CLI run gets a clean environment (env -i)
// with a private HOME, so nothing of the machine's own configuration leaks in.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/support/archive_writer.h"
#include "tests/support/test_env.h"

namespace novacron {
namespace {

using namespace novacron::testing;  // NOLINT(google-build-using-namespace)
using nlohmann::json;

class CliApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "home");
    fs::path cfg = dir_ / "novacrond.json";
    write_file(cfg, R"({"node": {"name": "cli-node"}, "data_dir": ")" + (dir_ / "data").string() + R"(",
      "listen": {"port": 0},
      "plugins": {"load": [{"id": "io.novacron.auth.token", "required": true},
                           {"id": "io.novacron.policy.spread"}]}})");
    daemon_ = std::make_unique<Process>(
        std::vector<std::string>{(bin_dir() / "novacrond").string(), "--config", cfg.string()}, dir_.path());
    ASSERT_TRUE(daemon_->wait_for_output("novacrond ready")) << daemon_->err();
    url_ = "http://127.0.0.1:" + std::to_string(ready_port(daemon_->out()));
    admin_ = read_file(dir_ / "data/admin.token");
    while (!admin_.empty() && admin_.back() == '\n') admin_.pop_back();
  }

  // Runs novacron with only HOME (and `env`) in its environment.
  SubprocessResult nc(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv{"/usr/bin/env", "-i", "HOME=" + (dir_ / "home").string()};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back((bin_dir() / "novacron").string());
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
  // As admin, with the URL from the environment.
  SubprocessResult admin(const std::vector<std::string>& args) {
    return nc(args, {"NOVACRON_URL=" + url_, "NOVACRON_TOKEN=" + admin_});
  }
  static json parse(const SubprocessResult& r) {
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out << r.err;
    return j;
  }

  TempDir dir_;
  std::unique_ptr<Process> daemon_;
  std::string url_;
  std::string admin_;
};

TEST_F(CliApiTest, NoTokenIsOneErrorLineWithAHint) {
  auto r = nc({"plugin", "list"}, {"NOVACRON_URL=" + url_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: no credentials"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint: no token: set NOVACRON_TOKEN or run novacron login"), std::string::npos) << r.err;

  auto j = nc({"plugin", "list", "--json"}, {"NOVACRON_URL=" + url_});
  EXPECT_EQ(j.exit_code, 1);
  json e = parse(j);
  EXPECT_EQ(e["error"]["code"], "unauthenticated");
  EXPECT_EQ(e["error"]["hint"], "no token: set NOVACRON_TOKEN or run novacron login");
}

TEST_F(CliApiTest, UnreachableHostAndBadUrlSayWhatToDo) {
  auto down = nc({"plugin", "list", "--url", "http://127.0.0.1:1", "--token", "x"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.err.find("is novacrond running at http://127.0.0.1:1?"), std::string::npos) << down.err;
  auto bad = nc({"node", "list", "--url", "ftp://host"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("not an http:// or https:// URL"), std::string::npos) << bad.err;
}

TEST_F(CliApiTest, TokenComesFromFlagsEnvironmentOrTheConfigFile) {
  // The config file: refused while others can read the token in it, used once it is 0600.
  fs::path conf = dir_ / "home/.config/novacron/cli.json";
  fs::create_directories(conf.parent_path());
  write_file(conf, json{{"url", url_}, {"token", admin_}}.dump());
  ::chmod(conf.c_str(), 0644);
  auto loose = nc({"node", "list"});
  EXPECT_EQ(loose.exit_code, 1);
  EXPECT_NE(loose.err.find("readable by group or others; run chmod 600"), std::string::npos) << loose.err;
  ::chmod(conf.c_str(), 0600);
  auto from_file = nc({"node", "list", "--json"});
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(parse(from_file)["items"][0]["name"], "cli-node");

  // The environment wins over the file, a flag over the environment.
  auto env_wins = nc({"node", "list"}, {"NOVACRON_TOKEN=nct_wrong"});
  EXPECT_EQ(env_wins.exit_code, 1);
  EXPECT_NE(env_wins.err.find("the token from NOVACRON_TOKEN was refused"), std::string::npos) << env_wins.err;
  auto flag_wins = nc({"node", "list", "--token", admin_}, {"NOVACRON_TOKEN=nct_wrong"});
  EXPECT_EQ(flag_wins.exit_code, 0) << flag_wins.err;

  // --token-file.
  write_file(dir_ / "tok", admin_ + "\n");
  fs::remove(conf);
  auto loose_file = nc({"node", "list", "--url", url_, "--token-file", (dir_ / "tok").string()});
  EXPECT_EQ(loose_file.exit_code, 1);
  EXPECT_NE(loose_file.err.find("run chmod 600"), std::string::npos) << loose_file.err;
  ::chmod((dir_ / "tok").c_str(), 0600);
  auto token_file = nc({"node", "list", "--url", url_, "--token-file", (dir_ / "tok").string()});
  EXPECT_EQ(token_file.exit_code, 0) << token_file.err;
}

TEST_F(CliApiTest, LoginChecksTheTokenAndSavesAPrivateConfig) {
  auto bad = nc({"login", "--url", url_, "--token", "nct_wrong"});
  EXPECT_EQ(bad.exit_code, 1);
  fs::path conf = dir_ / "home/.config/novacron/cli.json";
  EXPECT_FALSE(fs::exists(conf)) << "a refused login must not be saved";

  auto ok = nc({"login", "--url", url_, "--token", admin_});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("logged in to node cli-node"), std::string::npos) << ok.out;
  struct stat st {};
  ASSERT_EQ(::stat(conf.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(read_file(conf).find(admin_), std::string::npos);

  // A token given as a file stays in that file: the config refers to it.
  write_file(dir_ / "tok", admin_ + "\n");
  ::chmod((dir_ / "tok").c_str(), 0600);
  ASSERT_EQ(nc({"login", "--url", url_, "--token-file", (dir_ / "tok").string()}).exit_code, 0);
  json saved = json::parse(read_file(conf));
  EXPECT_FALSE(saved.contains("token")) << saved.dump();
  EXPECT_EQ(saved["token_file"], (dir_ / "tok").string());
  auto after = nc({"version", "--json"});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  json v = parse(after);
  EXPECT_EQ(v["client"]["version"], NOVACRON_VERSION);
  EXPECT_EQ(v["server"]["name"], "cli-node");
}

TEST_F(CliApiTest, TokensCreateListRevoke) {
  auto created = admin({"token", "create", "ci", "--role", "reader", "--json"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  json t = parse(created);
  std::string reader = t["token"];
  std::string id = t["id"];

  auto listed = admin({"token", "list"});
  ASSERT_EQ(listed.exit_code, 0);
  EXPECT_NE(listed.out.find("ID"), std::string::npos);
  EXPECT_NE(listed.out.find(id), std::string::npos);
  EXPECT_EQ(listed.out.find(reader), std::string::npos) << "list must never show a secret";

  // A reader may read but not mutate; the hint says what is needed.
  auto as_reader = nc({"token", "create", "x"}, {"NOVACRON_URL=" + url_, "NOVACRON_TOKEN=" + reader});
  EXPECT_EQ(as_reader.exit_code, 1);
  EXPECT_NE(as_reader.err.find("hint: this needs an admin token"), std::string::npos) << as_reader.err;
  EXPECT_EQ(nc({"plugin", "list"}, {"NOVACRON_URL=" + url_, "NOVACRON_TOKEN=" + reader}).exit_code, 0);

  ASSERT_EQ(admin({"token", "revoke", id}).exit_code, 0);
  auto revoked = nc({"plugin", "list"}, {"NOVACRON_URL=" + url_, "NOVACRON_TOKEN=" + reader});
  EXPECT_EQ(revoked.exit_code, 1);
  EXPECT_NE(revoked.err.find("was refused"), std::string::npos) << revoked.err;
  auto again = admin({"token", "revoke", id, "--json"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(parse(again)["error"]["code"], "not_found");
}

TEST_F(CliApiTest, PluginDisableAndEnableWaitForTheirOperations) {
  const std::string id = "io.novacron.policy.spread";
  auto disabled = admin({"plugin", "disable", id, "--json"});
  ASSERT_EQ(disabled.exit_code, 0) << disabled.out << disabled.err;
  json op = parse(disabled);
  EXPECT_EQ(op["state"], "succeeded");
  EXPECT_EQ(op["kind"], "plugin.disable");
  EXPECT_EQ(parse(admin({"plugin", "inspect", id, "--json"}))["state"], "disabled");

  auto started = admin({"plugin", "enable", id, "--no-wait", "--json"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  std::string op_id = parse(started)["operation"]["id"];
  auto waited = admin({"operation", "wait", op_id, "--json"});
  ASSERT_EQ(waited.exit_code, 0) << waited.err;
  EXPECT_EQ(parse(waited)["state"], "succeeded");
  auto shown = admin({"operation", "show", op_id});
  EXPECT_NE(shown.out.find("State       succeeded"), std::string::npos) << shown.out;
  auto listed = admin({"operation", "list"});
  EXPECT_NE(listed.out.find(op_id), std::string::npos);
  auto cancel_done = admin({"operation", "cancel", op_id});
  EXPECT_EQ(cancel_done.exit_code, 1);
  EXPECT_NE(cancel_done.err.find("already finished"), std::string::npos) << cancel_done.err;

  auto table = admin({"plugin", "list"});
  ASSERT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("io.novacron.policy.spread  2.0.0"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("running"), std::string::npos);

  auto unknown = admin({"plugin", "inspect", "io.example.nope"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("error: "), std::string::npos);
}

TEST_F(CliApiTest, PluginInstallAndRemoveThroughTheApi) {
  fs::path pkg = dir_ / "good.tar.zst";
  write_archive(pkg, entries_of_folder(fixture("io.novacron.test.good"), "1.0.0"));
  auto installed = admin({"plugin", "install", pkg.string(), "--json"});
  ASSERT_EQ(installed.exit_code, 0) << installed.out << installed.err;
  EXPECT_EQ(parse(installed)["id"], "io.novacron.test.good");
  EXPECT_EQ(parse(admin({"plugin", "inspect", "io.novacron.test.good", "--json"}))["state"], "installed");

  auto twice = admin({"plugin", "install", pkg.string()});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_NE(twice.err.find("error: "), std::string::npos) << twice.err;

  auto folder = admin({"plugin", "install", fixture("io.novacron.test.good").string()});
  EXPECT_EQ(folder.exit_code, 1);
  EXPECT_NE(folder.err.find("hint: pack it: tar --zstd"), std::string::npos) << folder.err;

  auto removed = admin({"plugin", "remove", "io.novacron.test.good", "1.0.0"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  auto bundled = admin({"plugin", "remove", "io.novacron.policy.spread", "2.0.0", "--json"});
  EXPECT_EQ(bundled.exit_code, 1);
  EXPECT_EQ(parse(bundled)["error"]["code"], "bundled");
}

TEST_F(CliApiTest, EventsReplayUntilTheBookmarkAndFilter) {
  ASSERT_EQ(admin({"token", "create", "e1"}).exit_code, 0);
  auto all = admin({"events", "--json"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  std::istringstream lines(all.out);
  std::string line;
  std::vector<json> events;
  while (std::getline(lines, line)) events.push_back(json::parse(line));
  ASSERT_GE(events.size(), 3u) << all.out;
  EXPECT_EQ(events.front()["seq"], 1);
  EXPECT_EQ(events.front()["type"], "plugin.loaded");
  EXPECT_EQ(events.back()["type"], "token.created");
  for (size_t i = 1; i < events.size(); ++i) EXPECT_EQ(events[i]["seq"], events[i - 1]["seq"].get<int>() + 1);

  auto tokens_only = admin({"events", "--type", "token.", "--json"});
  ASSERT_EQ(tokens_only.exit_code, 0);
  EXPECT_EQ(tokens_only.out.find("plugin.loaded"), std::string::npos);
  EXPECT_NE(tokens_only.out.find("token.created"), std::string::npos);

  auto since = admin({"events", "--since", std::to_string(events.back()["seq"].get<int>() - 1)});
  ASSERT_EQ(since.exit_code, 0);
  EXPECT_EQ(since.out.find("plugin.loaded"), std::string::npos) << since.out;
  EXPECT_NE(since.out.find("token.created"), std::string::npos) << since.out;

  auto bad = admin({"events", "--since", "abc"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("since"), std::string::npos) << bad.err;
}

TEST_F(CliApiTest, EventsFollowStreamsNewEvents) {
  Process follow({"/usr/bin/env", "-i", "HOME=" + (dir_ / "home").string(), "NOVACRON_URL=" + url_,
                  "NOVACRON_TOKEN=" + admin_, (bin_dir() / "novacron").string(), "events", "--follow", "--json"},
                 dir_.path());
  // Once the stream is open, a new event arrives on it (retry: the stream may not be open yet).
  bool seen = false;
  for (int i = 0; i < 50 && !seen; ++i) {
    ASSERT_EQ(admin({"token", "create", "f" + std::to_string(i)}).exit_code, 0);
    seen = follow.wait_for_output("token.created", std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(seen) << follow.out() << follow.err();
  EXPECT_TRUE(follow.running()) << "--follow keeps streaming";
  follow.stop(SIGTERM);
}

TEST_F(CliApiTest, NodeListShowsThisNode) {
  auto table = admin({"node", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("cli-node (this node)  ready"), std::string::npos) << table.out;
}

// A host with TLS on its API (a node certificate with an IP SAN): the CLI must be given the
// CA, and connects only to a host whose certificate names what it dials.
TEST(CliTlsTest, TheHostCertificateMustBeTrustedAndNamed) {
  TempDir dir;
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/env", "-i", "HOME=" + dir.path().string(),
                                  (bin_dir() / "novacron").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  ASSERT_EQ(cli({"cert", "init", "--dir", (dir / "ca").string()}).exit_code, 0);
  ASSERT_EQ(cli({"cert", "issue", "tls-node", "--ca-dir", (dir / "ca").string(), "--out", (dir / "certs").string(),
                 "--ip", "127.0.0.1"})
                .exit_code,
            0);
  write_file(
      dir / "cfg.json",
      json{{"node", {{"name", "tls-node"}}},
           {"data_dir", (dir / "data").string()},
           {"listen", {{"port", 0}}},
           {"tls", {{"cert", (dir / "certs/tls-node.crt").string()}, {"key", (dir / "certs/tls-node.key").string()}}},
           {"plugins", {{"load", {{{"id", "io.novacron.auth.token"}, {"required", true}}}}}}}
          .dump());
  Process daemon({(bin_dir() / "novacrond").string(), "--config", (dir / "cfg.json").string()}, dir.path());
  ASSERT_TRUE(daemon.wait_for_output("novacrond ready")) << daemon.err();
  const std::string url = "https://127.0.0.1:" + std::to_string(ready_port(daemon.out()));
  const std::string token_file = (dir / "data/admin.token").string();

  auto untrusted = cli({"node", "list", "--url", url, "--token-file", token_file});
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_NE(untrusted.err.find("certificate is not trusted"), std::string::npos) << untrusted.err;
  EXPECT_NE(untrusted.err.find("hint: give the CA that issued the host's certificate: --ca"), std::string::npos);

  auto trusted = cli({"node", "list", "--url", url, "--token-file", token_file, "--ca", (dir / "ca/ca.crt").string()});
  ASSERT_EQ(trusted.exit_code, 0) << trusted.err;
  EXPECT_NE(trusted.out.find("tls-node (this node)"), std::string::npos) << trusted.out;
  EXPECT_NE(trusted.out.find(url), std::string::npos) << "the API URL is https: " << trusted.out;

  // By node name: the certificate carries it as a DNS name.
  auto by_name = cli({"node", "list", "--url", url, "--token-file", token_file, "--ca", (dir / "ca/ca.crt").string(),
                      "--server-name", "tls-node"});
  EXPECT_EQ(by_name.exit_code, 0) << by_name.err;
  auto wrong_name = cli({"node", "list", "--url", url, "--token-file", token_file, "--ca", (dir / "ca/ca.crt").string(),
                         "--server-name", "other-node", "--json"});
  EXPECT_EQ(wrong_name.exit_code, 1);
  json e = json::parse(wrong_name.out);
  EXPECT_EQ(e["error"]["code"], "name_mismatch");
  EXPECT_NE(e["error"]["hint"].get<std::string>().find("--server-name"), std::string::npos);

  // Plain HTTP against the TLS listener.
  auto plain = cli({"node", "list", "--url", "http" + url.substr(5), "--token-file", token_file});
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_NE(plain.err.find("use https://"), std::string::npos) << plain.err;
  EXPECT_TRUE(daemon.running());
}

}  // namespace
}  // namespace novacron
