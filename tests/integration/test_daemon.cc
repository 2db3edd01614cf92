#include "tests/integration/test_daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace ffibroker::testing {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

namespace {

// Starts `args` with stdout/stderr redirected to files; returns the pid.
// The child gets SIGTERM when the spawning thread ends, so a test or
// benchmark that is killed (a ctest timeout, ^C) leaves no daemon behind.
pid_t Spawn(const std::vector<std::string>& args, const std::string& out,
            const std::string& err) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;  // -1 on failure
  // The child of a multi-threaded process: async-signal-safe calls only.
  if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent) ::_exit(127);
  int in = ::open("/dev/null", O_RDONLY);
  int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (in < 0 || o < 0 || e < 0 || ::dup2(in, STDIN_FILENO) < 0 ||
      ::dup2(o, STDOUT_FILENO) < 0 || ::dup2(e, STDERR_FILENO) < 0) {
    ::_exit(127);
  }
  ::execve(argv[0], argv.data(), environ);
  ::_exit(127);
}

// True if `log` holds a report of AddressSanitizer, LeakSanitizer or
// UndefinedBehaviorSanitizer (the sanitizer build, docs/testing.md): a
// daemon or CLI that hit one fails the test that ran it, even when the test
// itself never looks at how the process ended.
bool HasSanitizerReport(const std::string& log) {
  return absl::StrContains(log, "ERROR: AddressSanitizer") ||
         absl::StrContains(log, "ERROR: LeakSanitizer") ||
         absl::StrContains(log, ": runtime error: ");
}

std::string TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = absl::StrCat(base && *base ? base : "/tmp", "/ffibroker-test-XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) return "";
  return templ;
}

}  // namespace

std::string TestDaemon::Catalogue() {
  return absl::StrCat(
      "libraries { name: \"scalars\" path: \"", FFIBROKER_SCALARS_LIB, "\" }\n",
      "libraries { name: \"classes\" path: \"", FFIBROKER_CLASSES_LIB, "\" }\n",
      "libraries { name: \"crashy\" path: \"", FFIBROKER_CRASHY_LIB, "\" }\n",
      "libraries { name: \"libm.so.6\" path: \"/lib/x86_64-linux-gnu/libm.so.6\" }\n");
}

absl::StatusOr<std::unique_ptr<TestDaemon>> TestDaemon::Start(
    const std::string& extra_policy, const std::vector<std::string>& extra_flags) {
  return StartWithPolicy(
      absl::StrCat(Catalogue(), "principals { name: \"test-user\" uids: ", ::getuid(),
                   " permission { libraries { library: \"scalars\" }"
                   " libraries { library: \"crashy\" }"
                   " libraries { library: \"libm.so.6\" }"
                  " libraries { library: \"classes\" }"
                   " operations: [OPEN_LIBRARY, GRANT_TOKEN, WRITE_STATICS] } }\n",
                   extra_policy),
      extra_flags);
}

absl::StatusOr<std::unique_ptr<TestDaemon>> TestDaemon::StartWithPolicy(
    const std::string& policy, const std::vector<std::string>& extra_flags) {
  std::unique_ptr<TestDaemon> d(new TestDaemon());
  d->dir_ = TempDir();
  if (d->dir_.empty()) return absl::InternalError("mkdtemp failed");
  d->address_ = absl::StrCat("unix:", d->dir_, "/broker.sock");
  std::string policy_path = d->policy_path();
  std::ofstream(policy_path) << policy;
  std::vector<std::string> args = {FFIBROKERD_PATH, "--policy=" + policy_path,
                                   "--listen=" + d->address_};
  // The bundled profiles, unless the test brings its own.
  bool own_profiles = false;
  for (const std::string& flag : extra_flags) {
    own_profiles = own_profiles || absl::StartsWith(flag, "--profiles=");
  }
  if (!own_profiles) args.push_back(absl::StrCat("--profiles=", FFIBROKER_PROFILES_DIR));
  // No pre-started workers unless the test asks (tests count the daemon's
  // children and uids), or FFIBROKER_TEST_PRESTART_WORKERS sets the number
  // for the whole run (docs/testing.md).
  bool own_prestart = false;
  for (const std::string& flag : extra_flags) {
    own_prestart = own_prestart || absl::StartsWith(flag, "--prestart-workers=");
  }
  if (!own_prestart) {
    const char* env = std::getenv("FFIBROKER_TEST_PRESTART_WORKERS");
    args.push_back(absl::StrCat("--prestart-workers=", env != nullptr && *env ? env : "0"));
  }
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  d->pid_ = Spawn(args, "/dev/null", d->log_path());
  if (d->pid_ < 0) return absl::InternalError("cannot spawn ffibrokerd");
  // Connect only once the socket exists: a refused first attempt would put
  // gRPC's channel into a one-second reconnect backoff.
  std::string socket_path = d->address_.substr(5);
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  struct stat st;
  while (::stat(socket_path.c_str(), &st) != 0 && d->alive() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  if (!d->alive()) {
    return absl::UnavailableError(absl::StrCat("daemon exited at start\nlog:\n", d->ReadLog()));
  }
  absl::StatusOr<std::unique_ptr<Client>> client = d->Connect();
  if (!client.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "daemon did not come up: ", client.status().message(), "\nlog:\n", d->ReadLog()));
  }
  return d;
}

TestDaemon::~TestDaemon() {
  if (pid_ > 0 && !reaped_) Stop();
  if (!dir_.empty()) {
    std::string log = ReadLog();
    if (HasSanitizerReport(log)) ADD_FAILURE() << "ffibrokerd hit a sanitizer report:\n" << log;
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

absl::StatusOr<std::unique_ptr<Client>> TestDaemon::Connect() const {
  return Client::Connect(address_, absl::Seconds(10));
}

int TestDaemon::Stop() {
  ::kill(pid_, SIGTERM);
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (absl::Now() > give_up) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  reaped_ = true;
  return status;
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  ::SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

bool TestDaemon::alive() const {
  return !reaped_ && ProcessExists(pid_) && ProcessState(pid_) != 'Z';
}

std::string TestDaemon::ReadLog() const { return ReadAll(log_path()); }

std::vector<pid_t> TestDaemon::Children() const {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(
           absl::StrCat("/proc/", pid_, "/task"), ec)) {
    for (absl::string_view field :
         absl::StrSplit(ReadAll(task.path().string() + "/children"), ' ',
                        absl::SkipWhitespace())) {
      pid_t pid;
      if (absl::SimpleAtoi(field, &pid)) children.push_back(pid);
    }
  }
  return children;
}

CliResult RunCli(const std::vector<std::string>& args) {
  std::vector<std::string> full = {FFIBROKER_CLI_PATH};
  full.insert(full.end(), args.begin(), args.end());
  return RunProgram(full);
}

CliResult RunProgram(const std::vector<std::string>& full) {
  std::string dir = TempDir();
  CliResult result;
  pid_t pid = Spawn(full, dir + "/out", dir + "/err");
  int status = 0;
  if (pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  result.out = ReadAll(dir + "/out");
  result.err = ReadAll(dir + "/err");
  if (HasSanitizerReport(result.err)) {
    ADD_FAILURE() << "ffibroker CLI hit a sanitizer report:\n" << result.err;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return result;
}

std::string HostilePolicy(const std::string& permission, const std::string& extra) {
  return absl::StrCat("libraries { name: \"hostile\" path: \"", FFIBROKER_HOSTILE_LIB, "\" }\n",
                      "principals { name: \"tester\" uids: ", ::getuid(),
                      " permission { libraries { library: \"hostile\" } ", permission, " } }\n",
                      extra);
}

ProfilesDir::ProfilesDir(const std::map<std::string, std::string>& extra) {
  path_ = TempDir();
  if (path_.empty()) return;
  for (const auto& entry : std::filesystem::directory_iterator(FFIBROKER_PROFILES_DIR)) {
    std::filesystem::copy_file(entry.path(), std::filesystem::path(path_) / entry.path().filename());
  }
  for (const auto& [name, text] : extra) {
    std::ofstream(absl::StrCat(path_, "/", name, ".textproto"))
        << "name: \"" << name << "\"\n" << text;
  }
}

ProfilesDir::~ProfilesDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

bool ProcessExists(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

char ProcessState(pid_t pid) {
  std::string stat = ReadAll(absl::StrCat("/proc/", pid, "/stat"));
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return 0;
  return stat[paren + 2];
}

}  // namespace ffibroker::testing
