// Logging to the journal (issue 14 item 3): when the journal is chosen,
// the entry's fields, the sink plumbing, and a real sd_journal_sendv into a
// stand-in for journald's socket (in a private mount namespace, so the
// host's journald is not involved).
#include "daemon/journal_log.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/log_event.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

using ::testing::ElementsAre;

std::string DevIno(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return "";
  return absl::StrCat(st.st_dev, ":", st.st_ino);
}

TEST(JournalLogTest, TheJournalIsChosenOnlyWhenJournalStreamNamesStderr) {
  std::string path = ::testing::TempDir() + "/journal-stream";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  int other = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(other, 0);
  const std::string mine = DevIno(fd);
  EXPECT_TRUE(JournalStreamMatches(mine.c_str(), fd));
  EXPECT_FALSE(JournalStreamMatches(mine.c_str(), other));  // stderr redirected elsewhere
  EXPECT_FALSE(JournalStreamMatches(nullptr, fd));
  EXPECT_FALSE(JournalStreamMatches("", fd));
  EXPECT_FALSE(JournalStreamMatches("12", fd));
  EXPECT_FALSE(JournalStreamMatches((mine + "x").c_str(), fd));
  EXPECT_FALSE(JournalStreamMatches((mine + ":1").c_str(), fd));

  EXPECT_TRUE(ChooseJournal(LogTarget::kAuto, mine.c_str(), fd));
  EXPECT_FALSE(ChooseJournal(LogTarget::kAuto, mine.c_str(), other));
  EXPECT_FALSE(ChooseJournal(LogTarget::kAuto, nullptr, fd));
  EXPECT_FALSE(ChooseJournal(LogTarget::kStderr, mine.c_str(), fd));
  EXPECT_TRUE(ChooseJournal(LogTarget::kJournal, nullptr, other));
  ::close(fd);
  ::close(other);
  ::unlink(path.c_str());
}

TEST(JournalLogTest, EntriesCarryPriorityMessageAndTheKnownFields) {
  LogFields fields;
  fields.Event("worker_ended").Principal("alice").Session(12).Library("/usr/lib/libz.so.1")
      .Symbol("").Signal("SIGSEGV").WorkerPid(4242);
  EXPECT_THAT(JournalFields(LogLevel::kWarning, fields, "it\nended", "ffibrokerd"),
              ElementsAre("MESSAGE=it\nended", "PRIORITY=4", "SYSLOG_IDENTIFIER=ffibrokerd",
                          "FFIBROKER_EVENT=worker_ended", "FFIBROKER_PRINCIPAL=alice",
                          "FFIBROKER_SESSION=s12", "FFIBROKER_LIBRARY=/usr/lib/libz.so.1",
                          "FFIBROKER_SIGNAL=SIGSEGV", "FFIBROKER_WORKER_PID=4242"));
  EXPECT_THAT(JournalFields(LogLevel::kError, LogFields().Syscall("ptrace"), "m", "p"),
              ElementsAre("MESSAGE=m", "PRIORITY=3", "SYSLOG_IDENTIFIER=p",
                          "FFIBROKER_SYSCALL=ptrace"));
  EXPECT_EQ(JournalFields(LogLevel::kInfo, {}, "m", "p")[1], "PRIORITY=6");
  EXPECT_EQ(JournalFields(LogLevel::kDebug, {}, "m", "p")[1], "PRIORITY=7");
}

TEST(JournalLogTest, ASinkReceivesEventsAndPlainLinesAtOrAboveTheLevel) {
  struct Seen {
    LogLevel level;
    std::vector<std::pair<const char*, std::string>> fields;
    std::string message;
  };
  std::vector<Seen> seen;
  InitLogging("journal_log_test", LogLevel::kInfo);
  SetLogSink([&seen](LogLevel level, const LogFields& fields, const std::string& message) {
    seen.push_back({level, fields.list(), message});
  });
  LOG_EVENT(LogLevel::kWarning, LogFields().Library("/l").Symbol("f"), "call %d", 7);
  LOG_INFO("plain %s", "line");
  LOG_DEBUG("below the level");
  SetLogSink(nullptr);
  LOG_INFO("back on stderr");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].level, LogLevel::kWarning);
  EXPECT_EQ(seen[0].message, "call 7");
  ASSERT_EQ(seen[0].fields.size(), 2u);
  EXPECT_STREQ(seen[0].fields[1].first, "SYMBOL");
  EXPECT_EQ(seen[0].fields[1].second, "f");
  EXPECT_EQ(seen[1].message, "plain line");
  EXPECT_TRUE(seen[1].fields.empty());
}

// The journal's native protocol: "NAME=value\n", or for values with a
// newline "NAME\n" + 64-bit little-endian length + value + "\n".
std::map<std::string, std::string> ParseNative(const std::string& data) {
  std::map<std::string, std::string> out;
  size_t at = 0;
  while (at < data.size()) {
    size_t nl = data.find('\n', at);
    if (nl == std::string::npos) break;
    std::string line = data.substr(at, nl - at);
    size_t eq = line.find('=');
    if (eq != std::string::npos) {
      out[line.substr(0, eq)] = line.substr(eq + 1);
      at = nl + 1;
      continue;
    }
    uint64_t len = 0;
    if (nl + 9 > data.size()) break;
    std::memcpy(&len, data.data() + nl + 1, 8);  // little-endian host (x86-64, arm64)
    out[line] = data.substr(nl + 9, len);
    at = nl + 9 + len + 1;
  }
  return out;
}

TEST(JournalLogTest, SdJournalSendReachesTheJournalSocketWithTheFields) {
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A private /run with our own /run/systemd/journal/socket.
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(10);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(11);
    if (::mount("none", "/run", "tmpfs", 0, "mode=0755") != 0) ::_exit(12);
    if (::mkdir("/run/systemd", 0755) != 0 || ::mkdir("/run/systemd/journal", 0755) != 0) {
      ::_exit(13);
    }
    int sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, "/run/systemd/journal/socket");
    if (sock < 0 || ::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::_exit(14);
    }
    InitLogging("journal_log_test", LogLevel::kInfo);
    if (!InstallLogTarget(LogTarget::kJournal, "ffibrokerd")) ::_exit(15);
    LOG_EVENT(LogLevel::kWarning,
              LogFields().Event("worker_ended").Library("/usr/lib/libfoo.so").Syscall("ptrace"),
              "worker pid %d ended:\nviolation", 99);
    char buf[65536];
    ssize_t n = ::recv(sock, buf, sizeof buf, 0);
    if (n <= 0) ::_exit(16);
    if (::write(pipefd[1], buf, static_cast<size_t>(n)) != n) ::_exit(17);
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string data;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "child failed at step " << WEXITSTATUS(status)
                                    << " (10-13: namespace setup, 14: bind, 16: recv)";
  std::map<std::string, std::string> entry = ParseNative(data);
  EXPECT_EQ(entry["MESSAGE"], "worker pid 99 ended:\nviolation");
  EXPECT_EQ(entry["PRIORITY"], "4");
  EXPECT_EQ(entry["SYSLOG_IDENTIFIER"], "ffibrokerd");
  EXPECT_EQ(entry["FFIBROKER_EVENT"], "worker_ended");
  EXPECT_EQ(entry["FFIBROKER_LIBRARY"], "/usr/lib/libfoo.so");
  EXPECT_EQ(entry["FFIBROKER_SYSCALL"], "ptrace");
}

}  // namespace
}  // namespace ffibroker
