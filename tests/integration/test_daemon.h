// TestDaemon: a real ffibrokerd from the build tree, on a unix socket in a
// fresh temporary directory, for end-to-end tests.
//
// The policy names the in-tree native test libraries ("scalars", "crashy", "classes")
// and libm ("libm.so.6") in its catalogue and has a principal "test-user"
// for the test's own uid that may open all four (and write their
// statics: operation WRITE_STATICS); `extra_policy` is
// appended verbatim (e.g. a limits block). StartWithPolicy takes the whole
// policy instead (Catalogue() gives the library lines). The daemon's stderr
// goes to log_path().
//
//   auto daemon = TestDaemon::Start();
//   ASSERT_TRUE(daemon.ok()) << daemon.status();
//   auto client = (*daemon)->Connect();
#ifndef FFIBROKER_TESTS_INTEGRATION_TEST_DAEMON_H_
#define FFIBROKER_TESTS_INTEGRATION_TEST_DAEMON_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ffibroker/client.h"
#include "gtest/gtest.h"

namespace ffibroker::testing {

class TestDaemon {
 public:
  static absl::StatusOr<std::unique_ptr<TestDaemon>> Start(
      const std::string& extra_policy = "",
      const std::vector<std::string>& extra_flags = {});
  static absl::StatusOr<std::unique_ptr<TestDaemon>> StartWithPolicy(
      const std::string& policy, const std::vector<std::string>& extra_flags = {});
  // The catalogue lines ("libraries { name: ... path: ... }") of Start().
  static std::string Catalogue();
  // Stops the daemon (SIGTERM, then SIGKILL after 10 s) and removes the
  // temporary directory.
  ~TestDaemon();

  absl::StatusOr<std::unique_ptr<Client>> Connect() const;
  // Sends SIGTERM and waits; returns the raw wait status.
  int Stop();

  bool alive() const;
  pid_t pid() const { return pid_; }
  const std::string& address() const { return address_; }
  const std::string& dir() const { return dir_; }
  std::string log_path() const { return dir_ + "/daemon.log"; }
  std::string policy_path() const { return dir_ + "/policy.textproto"; }
  std::string ReadLog() const;
  // Direct children of the daemon (its workers).
  std::vector<pid_t> Children() const;

 private:
  TestDaemon() = default;
  std::string dir_;
  std::string address_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// The contents of the file at `path` ("" if it cannot be read).
std::string ReadAll(const std::string& path);

// Runs the ffibroker CLI from the build tree with `args` and collects its
// exit code and output.
CliResult RunCli(const std::vector<std::string>& args);
// Runs the program args[0] (a path) with args[1..], the same way.
CliResult RunProgram(const std::vector<std::string>& args);

// True if a process with `pid` exists (zombies included).
// A policy for the hostile test library (tests/native/hostile.c): the
// catalogue entry "hostile" and a principal "tester" (the test's uid) whose
// permission allows it plus `permission` (text inside permission {}), then
// `extra` at top level.
std::string HostilePolicy(const std::string& permission = "", const std::string& extra = "");

// The bundled confinement profiles plus `extra` (name -> text without the
// name line), in a temporary directory for --profiles (flag()).
class ProfilesDir {
 public:
  explicit ProfilesDir(const std::map<std::string, std::string>& extra = {});
  ~ProfilesDir();
  ProfilesDir(const ProfilesDir&) = delete;
  ProfilesDir& operator=(const ProfilesDir&) = delete;
  std::string flag() const { return "--profiles=" + path_; }

 private:
  std::string path_;
};

// Polls `predicate` every 10 ms for up to 5 s (worker teardown and reaping
// are asynchronous to the replies that report them).
template <typename P>
bool Eventually(P predicate) {
  absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (!predicate()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// The lowercase hex SHA-256 of `bytes` (for API key hashes in test
// policies), computed with OpenSSL directly, not with the daemon's code.
std::string Sha256Hex(const std::string& bytes);

bool ProcessExists(pid_t pid);
// The state letter from /proc/PID/stat ('Z' for a zombie), or 0 if gone.
char ProcessState(pid_t pid);

// A fixture with a fresh daemon, a client connected to it and one session:
// what most end-to-end tests start from. Derived fixtures that need more
// call DaemonSessionTest::SetUp() first and return if it failed
// (HasFatalFailure()); one that needs its own policy overrides SetUp and
// calls Adopt(TestDaemon::Start(...)) instead.
class DaemonSessionTest : public ::testing::Test {
 protected:
  void SetUp() override { Adopt(TestDaemon::Start()); }

  // Takes `daemon` (replacing any earlier one), connects to it and opens
  // session_; a fatal failure if any step fails.
  void Adopt(absl::StatusOr<std::unique_ptr<TestDaemon>> daemon) {
    session_.reset();  // before the client it uses, and the client before its daemon
    client_.reset();
    daemon_.reset();
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = std::move(*daemon);
    auto client = daemon_->Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    session_ = NewSession();
    ASSERT_NE(session_, nullptr);
  }
  // Another session of client_ (nullptr, with a failure, if refused).
  std::unique_ptr<Session> NewSession() {
    auto session = client_->CreateSession();
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? std::move(*session) : nullptr;
  }

  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Session> session_;
};

}  // namespace ffibroker::testing

#endif  // FFIBROKER_TESTS_INTEGRATION_TEST_DAEMON_H_
