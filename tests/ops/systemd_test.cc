// ffibrokerd under systemd, tested without systemd as PID 1: its sd_notify
// messages on a test NOTIFY_SOCKET, and socket activation through
// systemd-socket-activate (a unix and a TCP listener).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

// A temporary directory with a policy for the test's uid and an API key
// "ops-key" (for TCP), removed at the end.
class Workdir {
 public:
  Workdir() {
    char templ[] = "/tmp/ffibroker-ops-XXXXXX";
    path_ = ::mkdtemp(templ);
    std::ofstream(path_ + "/policy.textproto")
        << TestDaemon::Catalogue() << "principals { name: \"test-user\" uids: " << ::getuid()
        << " permission { libraries { library: \"scalars\" } } }\n"
        << "principals { name: \"tcp-user\" api_keys { id: \"ops\" sha256: \""
        << Sha256Hex("ops-key") << "\" } permission { libraries { library: \"scalars\" } } }\n";
  }
  ~Workdir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::vector<std::string> DaemonArgs() const {
    return {FFIBROKERD_PATH, "--policy=" + path_ + "/policy.textproto",
            std::string("--profiles=") + FFIBROKER_PROFILES_DIR};
  }

 private:
  std::string path_;
};

// A child process with `extra_env` added to ours; SIGTERM and reaped at the end.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::vector<std::string>& extra_env,
        const std::string& log) {
    std::vector<std::string> env_strings = extra_env;
    for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
    std::vector<char*> argv, envp;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const std::string& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (::posix_spawnp(&pid_, args[0].c_str(), &actions, nullptr, argv.data(), envp.data()) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Child() {
    if (pid_ > 0) Stop();
  }
  pid_t pid() const { return pid_; }
  // SIGTERM, then SIGKILL after 20 s; the wait status.
  int Stop() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    absl::Time give_up = absl::Now() + absl::Seconds(20);
    while (::waitpid(pid_, &status, WNOHANG) != pid_) {
      if (absl::Now() > give_up) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
};

// The test's NOTIFY_SOCKET: a datagram socket that collects the messages.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  std::string env() const { return "NOTIFY_SOCKET=" + path_; }
  // The next message, or "" after a generous 60 s.
  std::string Next() {
    pollfd p = {fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 60000) != 1) return "";
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  // Messages until one contains `needle` (which is returned), or "".
  std::string NextWith(const std::string& needle) {
    for (std::string m = Next(); !m.empty(); m = Next()) {
      if (absl::StrContains(m, needle)) return m;
    }
    return "";
  }

 private:
  std::string path_;
  UniqueFd fd_;
};

bool CanConnectUnix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

TEST(SystemdNotifyTest, ReadyOnlyOnceListeningThenReloadingAndStopping) {
  Workdir dir;
  NotifySocket notify(dir.path() + "/notify.sock");
  std::string socket_path = dir.path() + "/broker.sock";
  std::vector<std::string> args = dir.DaemonArgs();
  args.push_back("--listen=unix:" + socket_path);
  Child daemon(args, {notify.env()}, dir.path() + "/daemon.log");
  ASSERT_GT(daemon.pid(), 0);

  std::string ready = notify.Next();
  EXPECT_THAT(ready, HasSubstr("READY=1"));
  // The first message is READY=1, and at that moment the socket accepts.
  EXPECT_TRUE(CanConnectUnix(socket_path));
  EXPECT_THAT(ready, HasSubstr("STATUS=serving on unix:" + socket_path));
  EXPECT_THAT(ready, HasSubstr("(2 principals)"));

  ::kill(daemon.pid(), SIGHUP);
  std::string reloading = notify.Next();
  EXPECT_THAT(reloading, HasSubstr("RELOADING=1"));
  EXPECT_THAT(reloading, HasSubstr("MONOTONIC_USEC="));
  EXPECT_THAT(notify.Next(), HasSubstr("READY=1"));

  ::kill(daemon.pid(), SIGTERM);
  EXPECT_THAT(notify.NextWith("STOPPING=1"), HasSubstr("STOPPING=1"));
  int status = daemon.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// A TCP port nobody listens on now (bound and released: the test's own).
int FreePort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

TEST(SystemdSocketActivationTest, ServesTheUnixAndTcpSocketsItWasGiven) {
  Workdir dir;
  NotifySocket notify(dir.path() + "/notify.sock");
  std::string socket_path = dir.path() + "/activated.sock";
  std::string tcp = absl::StrCat("127.0.0.1:", FreePort());
  int metrics_port = FreePort();
  // The daemon is told to listen elsewhere: activation must win.
  std::vector<std::string> args = {"systemd-socket-activate", "-l", socket_path, "-l", tcp,
                                   "-l", absl::StrCat("127.0.0.1:", metrics_port),
                                   "--fdname=broker:broker:metrics", "-E", notify.env()};
  for (const std::string& a : dir.DaemonArgs()) args.push_back(a);
  args.push_back("--listen=unix:" + dir.path() + "/not-this.sock");
  Child activator(args, {}, dir.path() + "/daemon.log");
  ASSERT_GT(activator.pid(), 0);
  // systemd-socket-activate binds, then starts the daemon on the first
  // connection: wait for the socket, then connect.
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(socket_path); }));

  auto client = Client::Connect("unix:" + socket_path, absl::Seconds(60));
  ASSERT_TRUE(client.ok()) << client.status();
  // Peer credentials work on the adopted socket: the uid names the principal.
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto lib = (*session)->OpenLibrary("scalars", {"i8 neg_i8(i8)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  auto negated = (*lib)->Call<int8_t>("neg_i8", int8_t{5});
  ASSERT_TRUE(negated.ok()) << negated.status();
  EXPECT_EQ(*negated, -5);
  EXPECT_THAT(notify.NextWith("READY=1"),
              HasSubstr("STATUS=serving on unix:" + socket_path + " and tcp:" + tcp));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/not-this.sock"));

  ConnectOptions options;
  options.api_key = "ops-key";
  auto tcp_client = Client::Connect("tcp:" + tcp, options, absl::Seconds(60));
  ASSERT_TRUE(tcp_client.ok()) << tcp_client.status();
  auto whoami = (*tcp_client)->Whoami();
  ASSERT_TRUE(whoami.ok()) << whoami.status();
  EXPECT_EQ(whoami->principal(), "tcp-user");

  // The socket named "metrics" serves /metrics.
  UniqueFd http(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(metrics_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(http.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string get = "GET /metrics HTTP/1.0\r\n\r\n";
  ASSERT_EQ(::write(http.get(), get.data(), get.size()), static_cast<ssize_t>(get.size()));
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = ::read(http.get(), buf, sizeof buf)) > 0;) reply.append(buf, n);
  EXPECT_THAT(reply, HasSubstr("200 OK"));
  EXPECT_THAT(reply, HasSubstr("ffibroker_calls_total{library=\"" FFIBROKER_SCALARS_LIB
                               "\",symbol=\"neg_i8\",code=\"OK\"} 1"));
}

}  // namespace
}  // namespace ffibroker::testing
