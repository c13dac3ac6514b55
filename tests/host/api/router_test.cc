#include "host/api/router.h"

#include <gtest/gtest.h>

#include "host/api/api_server.h"
#include "host/api/pagination.h"

namespace novacron {
namespace {

TEST(RouterTest, MatchesPathParametersAndReportsAllowedMethods) {
  Router r;
  r.add({"GET", "/v1/plugins/{id}", Access::kRead, "one", {}});
  r.add({"POST", "/v1/plugins/{id}/enable", Access::kAdmin, "enable", {}});
  auto m = r.match("GET", "/v1/plugins/io.x.y");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params["id"], "io.x.y");
  auto wrong = r.match("DELETE", "/v1/plugins/io.x.y");
  EXPECT_EQ(wrong.route, nullptr);
  EXPECT_EQ(wrong.allowed_methods, std::vector<std::string>{"GET"});
  EXPECT_EQ(r.match("GET", "/v1/plugins/a/b").route, nullptr);
  EXPECT_TRUE(r.match("GET", "/v1/plugins").allowed_methods.empty());
}

TEST(RouterTest, EveryRouteOfTheApiIsInTheOpenApiDocument) {
  HostConfig cfg;
  ApiServer server(ApiContext{&cfg, nullptr, nullptr, nullptr, nullptr, nullptr, {}});
  nlohmann::json doc = server.router().openapi("test");
  ASSERT_FALSE(server.router().routes().empty());
  for (const Route& route : server.router().routes()) {
    std::string method = route.method;
    std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::tolower(c); });
    EXPECT_TRUE(doc["paths"].contains(route.pattern) && doc["paths"][route.pattern].contains(method))
        << route.method << " " << route.pattern;
  }
}

TEST(QueryTest, DecodesPercentEncodingAndRefusesBrokenEscapes) {
  std::map<std::string, std::string> q;
  ASSERT_TRUE(parse_query("a=1&b=x%20y&c=%2F&flag", q));
  EXPECT_EQ(q["b"], "x y");
  EXPECT_EQ(q["c"], "/");
  EXPECT_TRUE(q.count("flag"));
  std::map<std::string, std::string> bad;
  EXPECT_FALSE(parse_query("a=%zz", bad));
  EXPECT_FALSE(parse_query("a=%2", bad));
}

TEST(PaginationTest, CursorsRoundTripAndLimitsAreChecked) {
  auto p = parse_page_request({{"limit", "5"}, {"cursor", encode_cursor("io.novacron.x")}});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->limit, 5u);
  EXPECT_EQ(p->after, "io.novacron.x");
  EXPECT_EQ(parse_page_request({}).value().limit, 100u);
  for (const char* bad : {"0", "1001", "-1", "ten", "5x"}) {
    auto r = parse_page_request({{"limit", bad}});
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_NE(r.error().message.find("limit"), std::string::npos);
  }
  EXPECT_FALSE(parse_page_request({{"cursor", "not-base64!"}}).has_value());
  EXPECT_FALSE(parse_page_request({{"cursor", "Zm9v"}}).has_value());  // "foo": not ours
}

}  // namespace
}  // namespace novacron
