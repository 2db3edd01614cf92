#include "daemon/listen_address.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

ListenAddress ParseOk(absl::string_view text) {
  absl::StatusOr<ListenAddress> a = ParseListenAddress(text);
  EXPECT_TRUE(a.ok()) << text << ": " << a.status();
  return a.ok() ? *a : ListenAddress{};
}

void ExpectRejected(absl::string_view text) {
  absl::StatusOr<ListenAddress> a = ParseListenAddress(text);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument)
      << "'" << text << "' was accepted";
}

TEST(ListenAddressTest, UnixAbsolutePath) {
  ListenAddress a = ParseOk("unix:/run/ffibroker/ffibrokerd.sock");
  EXPECT_EQ(a.kind, ListenAddress::Kind::kUnix);
  EXPECT_EQ(a.path, "/run/ffibroker/ffibrokerd.sock");
  EXPECT_EQ(a.GrpcTarget(), "unix:/run/ffibroker/ffibrokerd.sock");
}

TEST(ListenAddressTest, UnixRelativePathRejected) {
  ExpectRejected("unix:run/ffibrokerd.sock");
  ExpectRejected("unix:./x.sock");
  ExpectRejected("unix:");
  absl::StatusOr<ListenAddress> a = ParseListenAddress("unix:x.sock");
  EXPECT_TRUE(absl::StrContains(a.status().message(), "x.sock")) << a.status();
}

TEST(ListenAddressTest, UnixPathLengthLimit) {
  // sun_path holds 108 bytes including the terminating NUL.
  std::string longest = "/" + std::string(106, 'a');
  ASSERT_EQ(longest.size(), 107u);
  EXPECT_EQ(ParseOk("unix:" + longest).path, longest);
  ExpectRejected("unix:" + longest + "a");
  ExpectRejected("unix:/" + std::string(300, 'b'));
}

TEST(ListenAddressTest, TcpIpv4Loopback) {
  ListenAddress a = ParseOk("tcp:127.0.0.1:7000");
  EXPECT_EQ(a.kind, ListenAddress::Kind::kTcp);
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 7000);
  EXPECT_TRUE(a.loopback);
  EXPECT_EQ(a.GrpcTarget(), "127.0.0.1:7000");
  EXPECT_TRUE(ParseOk("tcp:127.200.3.4:65535").loopback);  // all of 127/8
}

TEST(ListenAddressTest, TcpIpv6Loopback) {
  ListenAddress a = ParseOk("tcp:[::1]:7000");
  EXPECT_EQ(a.kind, ListenAddress::Kind::kTcp);
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 7000);
  EXPECT_TRUE(a.loopback);
  EXPECT_EQ(a.GrpcTarget(), "[::1]:7000");
}

TEST(ListenAddressTest, TcpLocalhost) {
  ListenAddress a = ParseOk("tcp:localhost:1");
  EXPECT_EQ(a.host, "localhost");
  EXPECT_EQ(a.port, 1);
  EXPECT_TRUE(a.loopback);
  EXPECT_EQ(a.GrpcTarget(), "localhost:1");
}

TEST(ListenAddressTest, TcpNonLoopback) {
  ListenAddress any = ParseOk("tcp:0.0.0.0:7000");
  EXPECT_EQ(any.host, "0.0.0.0");
  EXPECT_FALSE(any.loopback);
  EXPECT_EQ(any.GrpcTarget(), "0.0.0.0:7000");
  ListenAddress lan = ParseOk("tcp:10.0.0.1:80");
  EXPECT_EQ(lan.port, 80);
  EXPECT_FALSE(lan.loopback);
  EXPECT_FALSE(ParseOk("tcp:128.0.0.1:80").loopback);
  ListenAddress v6any = ParseOk("tcp:[::]:7000");
  EXPECT_EQ(v6any.host, "::");
  EXPECT_FALSE(v6any.loopback);
  EXPECT_EQ(v6any.GrpcTarget(), "[::]:7000");
  EXPECT_FALSE(ParseOk("tcp:[2001:db8::1]:443").loopback);
}

TEST(ListenAddressTest, BadPortRejected) {
  ExpectRejected("tcp:127.0.0.1:0");
  ExpectRejected("tcp:127.0.0.1:70000");
  ExpectRejected("tcp:127.0.0.1:65536");
  ExpectRejected("tcp:127.0.0.1:x");
  ExpectRejected("tcp:127.0.0.1:-1");
  ExpectRejected("tcp:127.0.0.1:");
  ExpectRejected("tcp:127.0.0.1");
  ExpectRejected("tcp:[::1]:0");
}

TEST(ListenAddressTest, BadHostRejected) {
  ExpectRejected("tcp::7000");
  ExpectRejected("tcp:example.com:80");
  ExpectRejected("tcp:256.0.0.1:80");
  ExpectRejected("tcp:[::1:7000");
  ExpectRejected("tcp:[127.0.0.1]x:7000");
}

TEST(ListenAddressTest, MissingSchemeRejected) {
  ExpectRejected("127.0.0.1:7000");
  ExpectRejected("/run/ffibroker.sock");
  ExpectRejected("");
  ExpectRejected("udp:127.0.0.1:7000");
  ExpectRejected("TCP:127.0.0.1:7000");
  absl::StatusOr<ListenAddress> a = ParseListenAddress("127.0.0.1:7000");
  EXPECT_TRUE(absl::StrContains(a.status().message(), "127.0.0.1:7000")) << a.status();
}

}  // namespace
}  // namespace ffibroker
