// The transport's wire format: frames split and joined at any byte, and every header rule
// of docs/design/migration-transport.md 3.2/3.7 refusing the frame before its payload is
// buffered; the connection-level payloads round-trip and refuse trailing or short bytes.
#include "frame_reader.h"

#include <gtest/gtest.h>

#include "frames.h"

namespace novacron::transport {
namespace {

std::vector<std::uint8_t> ping_frame(std::uint32_t seq, std::uint64_t nonce) {
  return encode_frame(FrameType::kPing, 0, seq, Ping{nonce, 42}.encode());
}

TEST(FrameReaderTest, FramesSurviveAnySplitOfTheStream) {
  std::vector<std::uint8_t> stream;
  for (std::uint32_t i = 0; i < 5; ++i) {
    auto f = ping_frame(i, 1000 + i);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  for (size_t chunk : {1u, 3u, 16u, 17u, 1000u}) {
    FrameReader reader;
    std::vector<std::uint64_t> nonces;
    for (size_t at = 0; at < stream.size(); at += chunk) {
      reader.feed({stream.data() + at, std::min(chunk, stream.size() - at)});
      for (;;) {
        auto next = reader.next();
        if (std::holds_alternative<NeedMore>(next)) break;
        ASSERT_TRUE(std::holds_alternative<Frame>(next)) << std::get<FrameError>(next).reason;
        auto ping = Ping::decode(std::get<Frame>(next).payload);
        ASSERT_TRUE(ping.has_value());
        nonces.push_back(ping->nonce);
      }
    }
    EXPECT_EQ(nonces, (std::vector<std::uint64_t>{1000, 1001, 1002, 1003, 1004})) << "chunk " << chunk;
    EXPECT_EQ(reader.buffered(), 0u);
  }
}

// Feeds `bytes` and returns the error it ends with (fails the test if none).
FrameError error_of(std::vector<std::uint8_t> bytes, std::uint32_t max_frame = kMaxFrame) {
  FrameReader reader(max_frame);
  reader.feed(bytes);
  auto next = reader.next();
  EXPECT_TRUE(std::holds_alternative<FrameError>(next));
  return std::holds_alternative<FrameError>(next) ? std::get<FrameError>(next) : FrameError{};
}

TEST(FrameReaderTest, BadHeadersAreRefusedBeforeThePayloadArrives) {
  auto good = ping_frame(0, 1);
  auto bad = good;
  bad[0] = 'X';
  EXPECT_EQ(error_of(bad).code, WireError::kBadMagic);
  bad = good;
  bad[2] = 2;
  EXPECT_EQ(error_of(bad).code, WireError::kBadVersion);
  bad = good;
  bad[3] = 0x7f;
  EXPECT_EQ(error_of(bad).code, WireError::kUnknownType);
  bad = good;
  bad[4] = 0x02;  // a flag bit no type defines
  EXPECT_EQ(error_of(bad).code, WireError::kBadFlags);
  bad = good;
  bad[6] = 1;  // reserved
  EXPECT_EQ(error_of(bad).code, WireError::kBadFlags);
  bad = good;
  bad[12] = 5;  // seq 5 where 0 is due
  EXPECT_EQ(error_of(bad).code, WireError::kOutOfOrder);

  // Only the header of a frame claiming 3 MiB: refused at once, nothing buffered for it.
  FrameHeader huge{kProtocolVersion, FrameType::kBlocks, 0, 3u << 20, 0};
  auto header = encode_header(huge);
  FrameError e = error_of({header.begin(), header.end()});
  EXPECT_EQ(e.code, WireError::kTooLarge);
  EXPECT_NE(e.reason.find("BLOCKS"), std::string::npos) << e.reason;
  // Each type has its own cap: a 17-byte PING is too large, and so is a frame over the
  // connection's negotiated max.
  FrameHeader long_ping{kProtocolVersion, FrameType::kPing, 0, 17, 0};
  header = encode_header(long_ping);
  EXPECT_EQ(error_of({header.begin(), header.end()}).code, WireError::kTooLarge);
  FrameHeader blocks{kProtocolVersion, FrameType::kBlocks, 0, 70000, 0};
  header = encode_header(blocks);
  EXPECT_EQ(error_of({header.begin(), header.end()}, 65536).code, WireError::kTooLarge);
}

TEST(FrameReaderTest, AnErrorIsFinalAndReportsWhereTheFrameStarted) {
  FrameReader reader;
  auto first = ping_frame(0, 1), second = ping_frame(7, 2);  // wrong seq
  reader.feed(first);
  reader.feed(second);
  ASSERT_TRUE(std::holds_alternative<Frame>(reader.next()));
  auto err = reader.next();
  ASSERT_TRUE(std::holds_alternative<FrameError>(err));
  EXPECT_EQ(std::get<FrameError>(err).offset, first.size());
  reader.feed(ping_frame(1, 3));  // too late: the connection is over
  EXPECT_TRUE(std::holds_alternative<FrameError>(reader.next()));
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(FrameReaderTest, NegotiatedVersionIsEnforced) {
  FrameReader reader;
  reader.set_version(2);
  reader.feed(ping_frame(0, 1));  // still version 1
  auto next = reader.next();
  ASSERT_TRUE(std::holds_alternative<FrameError>(next));
  EXPECT_EQ(std::get<FrameError>(next).code, WireError::kBadVersion);
}

TEST(FramesTest, ConnectionFramesRoundTripAndRefuseBadPayloads) {
  Hello hello{1, 3, kCapZstd | kCapTunnel, 1u << 20, Purpose::kTunnel, "node-a"};
  auto h = Hello::decode(hello.encode());
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->node, "node-a");
  EXPECT_EQ(h->caps, kCapZstd | kCapTunnel);
  EXPECT_EQ(h->purpose, Purpose::kTunnel);
  EXPECT_EQ(negotiate_version(*h, 1, 1), std::optional<std::uint16_t>(1));
  EXPECT_EQ(negotiate_version(*h, 2, 5), std::optional<std::uint16_t>(3));
  EXPECT_FALSE(negotiate_version(*h, 4, 5).has_value());

  auto bytes = hello.encode();
  bytes.push_back(0);  // trailing byte
  EXPECT_FALSE(Hello::decode(bytes).has_value());
  bytes = hello.encode();
  bytes.pop_back();  // short
  EXPECT_FALSE(Hello::decode(bytes).has_value());
  Hello nul = hello;
  nul.node = std::string("a\0b", 3);
  EXPECT_FALSE(Hello::decode(nul.encode()).has_value()) << "NUL in a string";
  Hello long_name = hello;
  long_name.node = std::string(64, 'n');
  EXPECT_FALSE(Hello::decode(long_name.encode()).has_value());
  Hello inverted = hello;
  inverted.min_version = 3;
  inverted.max_version = 1;
  EXPECT_FALSE(Hello::decode(inverted.encode()).has_value());

  ErrorFrame err{16, 99, std::string(5000, 'm')};
  auto e = ErrorFrame::decode(err.encode());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message.size(), kMaxErrorMessage) << "a long message is cut, not refused on the way out";
  EXPECT_EQ(e->context, 99u);

  Ack ack{12345678901ull, 42};
  auto a = Ack::decode(ack.encode());
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->applied_through, 12345678901ull);
  HelloOk ok{1, kCapTrees, 2u << 20, "node-b"};
  auto o = HelloOk::decode(ok.encode());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->node, "node-b");
  EXPECT_FALSE(HelloOk::decode({}).has_value());
}

}  // namespace
}  // namespace novacron::transport
