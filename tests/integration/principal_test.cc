// Who the daemon lets in, end to end: principals by uid and by API key,
// refusals and their log, pinned libraries, `ffibrokerd --check` of a
// policy, and mTLS client certificates. Label `tokens` (with
// token_test.cc, which covers the tokens themselves).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAdd[] = "i64 i64_plus_one(i64 v)";
constexpr char kCos[] = "f64 cos(f64 x)";

TEST(PrincipalTest, UidNotInPolicyIsRefused) {
  uid_t other = ::getuid() + 4242;
  auto daemon = TestDaemon::StartWithPolicy(absl::StrCat(
      TestDaemon::Catalogue(), "principals { name: \"someone-else\" uids: ", other,
      " permission { libraries { library: \"scalars\" } } }\n"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok());
  auto session = (*client)->CreateSession();
  EXPECT_EQ(session.status().code(), absl::StatusCode::kPermissionDenied) << session.status();
  EXPECT_THAT(std::string(session.status().message()),
              HasSubstr(absl::StrCat("uid ", ::getuid())));
  EXPECT_EQ((*client)->Whoami().status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(PrincipalTest, ApiKeysSelectTheirPrincipalAndBadKeysAreRefused) {
  const std::string key = "k-0123456789abcdef-test-key";
  // Not the daemon's own rule (that would be circular): OpenSSL directly.
  std::string hash = Sha256Hex(key);
  auto daemon = TestDaemon::Start(absl::StrCat(
      "principals { name: \"plugin\" api_keys { id: \"ci\" sha256: \"", hash,
      "\" } permission { libraries { library: \"libm.so.6\" allow_symbols: \"cos\" } } }\n"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ConnectOptions options;
  options.api_key = key;
  auto client = Client::Connect((*daemon)->address(), options);
  ASSERT_TRUE(client.ok());
  auto who = (*client)->Whoami();
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->principal(), "plugin");
  EXPECT_EQ(who->authenticated_by(), "api key ci");
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok());
  EXPECT_TRUE((*session)->OpenLibrary("libm.so.6", {kCos}).ok());
  EXPECT_EQ((*session)->OpenLibrary("libm.so.6", {"f64 sin(f64 x)"}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*session)->OpenLibrary("scalars", {kAdd}).status().code(),
            absl::StatusCode::kPermissionDenied);
  options.api_key = key + "x";
  auto bad = Client::Connect((*daemon)->address(), options);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ((*bad)->CreateSession().status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT((*daemon)->ReadLog(), Not(HasSubstr(key)));
}

// Refusals come as fast as a peer sends them (a review logged 125,500
// lines in 10 s): they are logged at most once a second, and the next line
// counts those that were not.
TEST(PrincipalTest, RefusalsAreLoggedAtMostOnceASecond) {
  auto daemon = TestDaemon::Start("");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ConnectOptions options;
  options.api_key = "k-no-such-key";
  auto bad = Client::Connect((*daemon)->address(), options);
  ASSERT_TRUE(bad.ok());
  const absl::Time start = absl::Now();
  int refused = 0;
  while (absl::Now() - start < absl::Milliseconds(1500)) {
    ASSERT_EQ((*bad)->Whoami().status().code(), absl::StatusCode::kUnauthenticated);
    ++refused;
  }
  ASSERT_GT(refused, 20);
  const std::string log = (*daemon)->ReadLog();
  int lines = 0;
  for (size_t at = log.find("refused a connection"); at != std::string::npos;
       at = log.find("refused a connection", at + 1)) {
    ++lines;
  }
  EXPECT_GE(lines, 1);
  EXPECT_LE(lines, 3) << refused << " refusals";
  EXPECT_THAT(log, HasSubstr("refusals not logged since the last line"));
}

TEST(PrincipalTest, PinnedLibrariesLoadOnlyTheHashedBytes) {
  std::string dir = ::testing::TempDir();
  std::string cmd = absl::StrCat("openssl dgst -sha256 -r ", FFIBROKER_SCALARS_LIB, " > ", dir,
                                 "/libhash");
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string hash = ReadAll(dir + "/libhash").substr(0, 64);
  std::string wrong = std::string(64, '0');
  auto daemon = TestDaemon::StartWithPolicy(absl::StrCat(
      TestDaemon::Catalogue(), "principals { name: \"pinned\" uids: ", ::getuid(),
      " permission { libraries { library: \"scalars\" sha256: \"", hash,
      "\" } libraries { library: \"crashy\" sha256: \"", wrong, "\" } } }\n"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok());
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok());
  auto lib = (*session)->OpenLibrary("scalars", {kAdd});
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_EQ(*(*lib)->Call<int64_t>("i64_plus_one", int64_t{1}), 2);
  auto bad = (*session)->OpenLibrary("crashy", {"void crash_segv()"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kPermissionDenied) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("pins"));
}

TEST(PolicyCheckTest, ReportsEveryMistakeWithLineAndColumnAndDaemonRefusesIt) {
  std::string dir = ::testing::TempDir();
  std::string path = dir + "/bad-policy.textproto";
  std::ofstream(path) << "principals {\n  name: \"ok\"\n  uids: 1\n}\n"
                         "principals {\n  name: \"ok\"\n"
                         "  permission { libraries { library: \"relative.so\" } }\n}\n";
  CliResult check = RunCli({"policy", "check", path});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_THAT(check.err, HasSubstr(path + ":6:3: principals[1].name: 'ok' is listed twice"));
  EXPECT_THAT(check.err, HasSubstr(path + ":7:28: principals[1].permission.libraries[0].library"));
  CliResult good = RunCli({"policy", "check", std::string(FFIBROKER_SOURCE_DIR) +
                                                  "/policy/default.textproto"});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  // The daemon refuses to start on it (exit status 1, the mistakes logged).
  std::string cmd = absl::StrCat(FFIBROKERD_PATH, " --policy=", path, " --listen=unix:", dir,
                                 "/never.sock 2>", dir, "/refused.log");
  int status = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
  EXPECT_THAT(ReadAll(dir + "/refused.log"), HasSubstr(path + ":6:3:"));
}

// A confinement profile the daemon does not have: `policy check` refused
// nothing, and the daemon refused the policy without a position.
TEST(PolicyCheckTest, AnUnknownProfileIsAMistakeForTheCheckAndTheDaemon) {
  const std::string dir = ::testing::TempDir();
  const std::string profiles = std::string(FFIBROKER_SOURCE_DIR) + "/policy/profiles";
  const std::string path = dir + "/unknown-profile.textproto";
  auto write = [&](const std::string& profile) {
    std::ofstream(path) << "principals {\n  name: \"p\"\n  uids: 1\n"
                           "  permission {\n    confinement_profile: \"" << profile
                        << "\"\n  }\n}\n";
  };
  write("nosuch");
  CliResult check = RunCli({"policy", "check", path, "--profiles=" + profiles});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_THAT(check.err, HasSubstr(path + ":5:5: principals[0].permission.confinement_profile: "
                                          "no confinement profile named 'nosuch' (loaded: "));
  // Without --profiles, the directory ffibrokerd would read: beside the file.
  CliResult nowhere = RunCli({"policy", "check", path});
  EXPECT_EQ(nowhere.exit_code, 1);
  EXPECT_THAT(nowhere.err, HasSubstr("cannot read the profile directory " + dir + "/profiles"));
  std::string cmd = absl::StrCat(FFIBROKERD_PATH, " --policy=", path, " --profiles=", profiles,
                                 " --listen=unix:", dir, "/never.sock 2>", dir, "/profile.log");
  int status = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
  EXPECT_THAT(ReadAll(dir + "/profile.log"), HasSubstr(path + ":5:5:"));

  write("threads");
  CliResult good = RunCli({"policy", "check", path, "--profiles=" + profiles});
  EXPECT_EQ(good.exit_code, 0) << good.err;
}

// mTLS: a throwaway CA, server and client certificates made with openssl.
class MtlsTest : public ::testing::Test {
 protected:
  static void Run(const std::string& cmd) {
    ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
  }
  void MakeCert(const std::string& ca, const std::string& name, const std::string& cn) {
    Run(absl::StrCat("cd ", dir_, " && openssl req -newkey rsa:2048 -nodes -keyout ", name,
                     ".key -subj /CN=", cn, " -out ", name, ".csr"));
    Run(absl::StrCat("cd ", dir_, " && printf 'subjectAltName=DNS:", cn, ",IP:127.0.0.1' > ",
                     name, ".ext && openssl x509 -req -in ", name, ".csr -CA ", ca,
                     ".pem -CAkey ", ca, ".key -CAcreateserial -days 1 -extfile ", name,
                     ".ext -out ", name, ".pem"));
  }
  void MakeCa(const std::string& ca) {
    Run(absl::StrCat("cd ", dir_, " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ",
                     ca, ".key -subj /CN=", ca, " -days 1 -out ", ca, ".pem"));
  }
  void SetUp() override {
    char templ[] = "/tmp/ffibroker-mtls-XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
    MakeCa("ca");
    MakeCa("evilca");
    MakeCert("ca", "server", "localhost");
    MakeCert("ca", "client", "billing.test");
    MakeCert("evilca", "evil", "billing.test");
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  ConnectOptions Options(const std::string& cert) {
    ConnectOptions o;
    o.tls_root_certs = ReadAll(dir_ + "/ca.pem");
    o.tls_server_name = "localhost";
    if (!cert.empty()) {
      o.tls_cert_chain = ReadAll(dir_ + "/" + cert + ".pem");
      o.tls_private_key = ReadAll(dir_ + "/" + cert + ".key");
    }
    return o;
  }
  std::string dir_;
};

TEST_F(MtlsTest, ClientCertificatesAuthenticateAndOthersAreRefused) {
  // A port free right now (the daemon's listen address needs a number).
  int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&sin), &len), 0);
  int port = ntohs(sin.sin_port);
  ::close(probe);
  auto daemon = TestDaemon::Start(absl::StrCat(
      "tls { listen: \"tcp:127.0.0.1:", port, "\" cert_file: \"", dir_, "/server.pem\" key_file: \"",
      dir_, "/server.key\" client_ca_file: \"", dir_, "/ca.pem\" }\n",
      "principals { name: \"billing\" tls_identities: \"billing.test\""
      " permission { libraries { library: \"libm.so.6\" } } }\n"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  std::string log = (*daemon)->ReadLog();
  size_t at = log.find("mTLS listener on tcp:");
  ASSERT_NE(at, std::string::npos) << log;
  std::string address = log.substr(at + 17, log.find('\n', at) - at - 17);

  auto client = Client::Connect(address, Options("client"));
  ASSERT_TRUE(client.ok()) << client.status();
  auto who = (*client)->Whoami();
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->principal(), "billing");
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok());
  auto libm = (*session)->OpenLibrary("libm.so.6", {kCos});
  ASSERT_TRUE(libm.ok()) << libm.status();
  EXPECT_EQ(*(*libm)->Call<double>("cos", 0.0), 1.0);

  // No client certificate, or one from another CA: the handshake fails.
  for (const char* cert : {"", "evil"}) {
    auto refused = Client::Connect(address, Options(cert), absl::Seconds(1));
    if (refused.ok()) {
      EXPECT_FALSE((*refused)->Whoami().ok()) << cert;
    } else {
      EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << cert;
    }
  }
}

}  // namespace
}  // namespace ffibroker::testing
