// Pre-started workers (issue 15 item 3, docs/prestart.md): a real daemon
// with --prestart-workers, real workers. A pre-started worker is told from
// the outside by what the kernel shows: a child of the daemon with exactly
// one seccomp filter more than the daemon (the loading filter; a worker
// serving a library has two).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Seccomp_filters of `pid` (-1 if it cannot be read).
int SeccompFilters(pid_t pid) {
  std::istringstream in(ReadAll(absl::StrCat("/proc/", pid, "/status")));
  for (std::string line; std::getline(in, line);) {
    int n = 0;
    if (line.rfind("Seccomp_filters:", 0) == 0 &&
        absl::SimpleAtoi(line.substr(sizeof("Seccomp_filters:") - 1), &n)) {
      return n;
    }
  }
  return -1;
}

// The daemon's children that are pre-started and idle (live, and under
// the loading filter only).
std::set<pid_t> Idle(const TestDaemon& daemon) {
  const int base = SeccompFilters(daemon.pid());
  std::set<pid_t> idle;
  for (pid_t child : daemon.Children()) {
    if (ProcessState(child) != 'Z' && SeccompFilters(child) == base + 1) idle.insert(child);
  }
  return idle;
}

// A worker serving a library: under both filters.
bool Serving(const TestDaemon& daemon, pid_t pid) {
  return ProcessExists(pid) && ProcessState(pid) != 'Z' &&
         SeccompFilters(pid) == SeccompFilters(daemon.pid()) + 2;
}

// Waits (generously: the machine may be loaded) until exactly `n` workers
// are idle; returns them.
std::set<pid_t> WaitIdle(const TestDaemon& daemon, size_t n) {
  std::set<pid_t> idle;
  absl::Time give_up = absl::Now() + absl::Seconds(60);
  while ((idle = Idle(daemon)).size() != n && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  return idle;
}

std::unique_ptr<TestDaemon> StartDaemon(int pool, const std::string& policy = "") {
  std::vector<std::string> flags = {absl::StrCat("--prestart-workers=", pool)};
  auto daemon = policy.empty() ? TestDaemon::Start("", flags)
                               : TestDaemon::StartWithPolicy(policy, flags);
  EXPECT_TRUE(daemon.ok()) << daemon.status();
  return daemon.ok() ? std::move(*daemon) : nullptr;
}

std::set<int> InForce(const v1::WorkerLayers& layers) {
  return std::set<int>(layers.in_force().begin(), layers.in_force().end());
}

TEST(PrestartTest, OpenLibraryIsServedByAPrestartedWorkerWithEveryLayer) {
  // What an on-demand worker has in force here, for comparison.
  v1::WorkerLayers on_demand;
  {
    auto daemon = StartDaemon(0);
    ASSERT_NE(daemon, nullptr);
    auto client = daemon->Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    auto session = (*client)->CreateSession();
    ASSERT_TRUE(session.ok()) << session.status();
    auto libm = (*session)->OpenLibrary("libm.so.6", {"f64 cos(f64)"});
    ASSERT_TRUE(libm.ok()) << libm.status();
    on_demand = (*libm)->layers();
  }
  auto daemon = StartDaemon(2);
  ASSERT_NE(daemon, nullptr);
  const std::set<pid_t> idle = WaitIdle(*daemon, 2);
  ASSERT_EQ(idle.size(), 2u) << daemon->ReadLog();
  auto client = daemon->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();

  auto libm = (*session)->OpenLibrary("libm.so.6", {"f64 cos(f64)"});
  ASSERT_TRUE(libm.ok()) << libm.status();
  EXPECT_TRUE(idle.count((*libm)->worker_pid())) << "not a pre-started worker";
  EXPECT_EQ(*(*libm)->Call<double>("cos", 0.0), 1.0);
  const v1::WorkerLayers& layers = (*libm)->layers();
  EXPECT_EQ(InForce(layers), InForce(on_demand)) << layers.DebugString();
  EXPECT_EQ(layers.refused_size(), on_demand.refused_size()) << layers.DebugString();
  EXPECT_TRUE(InForce(layers).count(v1::LAYER_SECCOMP));
  EXPECT_TRUE(InForce(layers).count(v1::LAYER_RLIMITS));
  EXPECT_EQ(layers.landlock_abi(), on_demand.landlock_abi());
  EXPECT_EQ(layers.seccomp_profile(), "strict");
  EXPECT_TRUE(Serving(*daemon, (*libm)->worker_pid()));

  // A library outside the system directories reaches the worker through its
  // hand-off file: its own path is not in the worker's root.
  auto scalars = (*session)->OpenLibrary("scalars", {"i8 neg_i8(i8)"});
  ASSERT_TRUE(scalars.ok()) << scalars.status();
  EXPECT_TRUE(idle.count((*scalars)->worker_pid())) << "not a pre-started worker";
  EXPECT_EQ(*(*scalars)->Call<int8_t>("neg_i8", int8_t{5}), -5);
  EXPECT_EQ(InForce((*scalars)->layers()), InForce(on_demand));
  const std::string root = absl::StrCat("/proc/", (*scalars)->worker_pid(), "/root");
  struct stat st;
  if (::stat((root + "/usr").c_str(), &st) == 0) {  // we may look into it (root)
    EXPECT_NE(::stat((root + FFIBROKER_SCALARS_LIB).c_str(), &st), 0)
        << "the library's own path is in the worker's root";
  }
  EXPECT_THAT(daemon->ReadLog(), Not(HasSubstr("on demand")));
}

TEST(PrestartTest, PinnedLibraryIsTheHashedBytesAndASwappedFileIsRefused) {
  const std::string dir = ::testing::TempDir() + "/prestart-pinned";
  std::filesystem::create_directories(dir);
  const std::string lib = dir + "/libpinned.so";
  std::filesystem::copy_file(FFIBROKER_SCALARS_LIB, lib,
                             std::filesystem::copy_options::overwrite_existing);
  const std::string hash = Sha256Hex(ReadAll(lib));
  auto daemon = StartDaemon(
      2, absl::StrCat("libraries { name: \"pinned\" path: \"", lib, "\" }\n",
                      "principals { name: \"pinner\" uids: ", ::getuid(),
                      " permission { libraries { library: \"pinned\" sha256: \"", hash,
                      "\" } } }\n"));
  ASSERT_NE(daemon, nullptr);
  const std::set<pid_t> idle = WaitIdle(*daemon, 2);
  ASSERT_EQ(idle.size(), 2u) << daemon->ReadLog();
  auto client = daemon->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto pinned = (*session)->OpenLibrary("pinned", {"i8 neg_i8(i8)"});
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  const pid_t pid = (*pinned)->worker_pid();
  EXPECT_TRUE(idle.count(pid)) << "not a pre-started worker";
  EXPECT_EQ(*(*pinned)->Call<int8_t>("neg_i8", int8_t{3}), -3);

  // The file the worker mapped holds exactly the bytes the pin names (read
  // through the kernel's view of the mapping; needs root).
  std::istringstream maps(ReadAll(absl::StrCat("/proc/", pid, "/maps")));
  bool checked = false;
  for (std::string line; std::getline(maps, line) && !checked;) {
    if (line.find("ffibrokerd-handoff") == std::string::npos) continue;
    std::string range = line.substr(0, line.find(' '));
    std::ifstream mapped(absl::StrCat("/proc/", pid, "/map_files/", range), std::ios::binary);
    if (!mapped) break;  // not root: cannot look
    std::stringstream bytes;
    bytes << mapped.rdbuf();
    EXPECT_EQ(Sha256Hex(bytes.str()), hash);
    checked = true;
  }
  if (::geteuid() == 0) {
    EXPECT_TRUE(checked) << ReadAll(absl::StrCat("/proc/", pid, "/maps"));
  }

  // Swapped: other bytes at the pinned path are refused before any worker
  // sees them, and the idle workers stay idle.
  EXPECT_EQ(WaitIdle(*daemon, 2).size(), 2u);
  std::filesystem::copy_file(FFIBROKER_CRASHY_LIB, lib,
                             std::filesystem::copy_options::overwrite_existing);
  const std::set<pid_t> before = Idle(*daemon);
  auto swapped = (*session)->OpenLibrary("pinned", {"i32 healthy(i32)"});
  EXPECT_EQ(swapped.status().code(), absl::StatusCode::kPermissionDenied) << swapped.status();
  EXPECT_THAT(std::string(swapped.status().message()), HasSubstr("SHA-256"));
  EXPECT_EQ(Idle(*daemon), before);
  // The open library keeps its bytes.
  EXPECT_EQ(*(*pinned)->Call<int8_t>("neg_i8", int8_t{4}), -4);
}

TEST(PrestartTest, AnIdleWorkerThatDiesIsReplacedAndNeverHandedOut) {
  auto daemon = StartDaemon(2);
  ASSERT_NE(daemon, nullptr);
  std::set<pid_t> idle = WaitIdle(*daemon, 2);
  ASSERT_EQ(idle.size(), 2u) << daemon->ReadLog();
  std::set<pid_t> killed;
  // One dies while nothing is asked of the pool: it is replaced anyway.
  const pid_t first = *idle.begin();
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  killed.insert(first);
  ASSERT_TRUE(Eventually([&] { return !ProcessExists(first); })) << "not reaped";
  idle = WaitIdle(*daemon, 2);
  ASSERT_EQ(idle.size(), 2u) << daemon->ReadLog();
  EXPECT_FALSE(idle.count(first));
  EXPECT_THAT(daemon->ReadLog(),
              HasSubstr(absl::StrCat("pre-started worker pid ", first, " (profile strict) ended "
                                     "before it was used")));

  // Both die; an open right after their end gets neither.
  for (pid_t pid : idle) {
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    killed.insert(pid);
  }
  ASSERT_TRUE(Eventually([&] {
    for (pid_t pid : killed) {
      char state = ProcessState(pid);
      if (state != 0 && state != 'Z') return false;
    }
    return true;
  }));
  auto client = daemon->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto libm = (*session)->OpenLibrary("libm.so.6", {"f64 cos(f64)"});
  ASSERT_TRUE(libm.ok()) << libm.status();
  EXPECT_FALSE(killed.count((*libm)->worker_pid()));
  EXPECT_EQ(*(*libm)->Call<double>("cos", 0.0), 1.0);
  // No dead worker was handed out (a failed hand-out says so).
  EXPECT_THAT(daemon->ReadLog(), Not(HasSubstr("failed to take")));
  idle = WaitIdle(*daemon, 2);
  EXPECT_EQ(idle.size(), 2u) << daemon->ReadLog();
  for (pid_t pid : idle) EXPECT_FALSE(killed.count(pid));
}

TEST(PrestartTest, MoreOpensThanThePoolHoldsStillWork) {
  auto daemon = StartDaemon(1);
  ASSERT_NE(daemon, nullptr);
  const std::set<pid_t> idle = WaitIdle(*daemon, 1);
  ASSERT_EQ(idle.size(), 1u) << daemon->ReadLog();
  auto client = daemon->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  constexpr int kOpens = 4;
  std::vector<std::unique_ptr<Session>> sessions(kOpens);
  std::vector<absl::StatusOr<std::unique_ptr<Library>>> opened;
  for (int i = 0; i < kOpens; ++i) opened.emplace_back(absl::UnknownError("not run"));
  for (auto& s : sessions) {
    auto session = (*client)->CreateSession();
    ASSERT_TRUE(session.ok()) << session.status();
    s = std::move(*session);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpens; ++i) {
    threads.emplace_back([&, i] {
      opened[i] = sessions[i]->OpenLibrary("libm.so.6", {"f64 cos(f64)"});
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<pid_t> pids;
  int from_pool = 0;
  for (auto& lib : opened) {
    ASSERT_TRUE(lib.ok()) << lib.status();
    EXPECT_EQ(*(*lib)->Call<double>("cos", 0.0), 1.0);
    pids.insert((*lib)->worker_pid());
    from_pool += static_cast<int>(idle.count((*lib)->worker_pid()));
  }
  EXPECT_EQ(pids.size(), static_cast<size_t>(kOpens));
  EXPECT_EQ(from_pool, 1);
}

TEST(PrestartTest, PoolSizeZeroStartsNothingAhead) {
  auto daemon = StartDaemon(0);
  ASSERT_NE(daemon, nullptr);
  auto client = daemon->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_TRUE(daemon->Children().empty());
  {
    auto scalars = (*session)->OpenLibrary("scalars", {"i8 neg_i8(i8)"});
    ASSERT_TRUE(scalars.ok()) << scalars.status();
    EXPECT_EQ(*(*scalars)->Call<int8_t>("neg_i8", int8_t{5}), -5);
    EXPECT_EQ(daemon->Children().size(), 1u);
    // As before: the library's own file is bound into the worker's root.
    const std::string root = absl::StrCat("/proc/", (*scalars)->worker_pid(), "/root");
    struct stat st;
    if (::stat((root + "/usr").c_str(), &st) == 0) {
      EXPECT_EQ(::stat((root + FFIBROKER_SCALARS_LIB).c_str(), &st), 0);
    }
    ASSERT_TRUE((*scalars)->Close().ok());
  }
  EXPECT_TRUE(Eventually([&] { return daemon->Children().empty(); }));
  EXPECT_THAT(daemon->ReadLog(), Not(HasSubstr("pre-start")));
}

TEST(PrestartTest, IdleWorkersBelongToNoPrincipal) {
  // Two idle workers, a principal allowed one worker and the daemon two:
  // the idle ones count against neither, and a hand-out counts as a worker
  // of the principal that opened.
  auto daemon = StartDaemon(
      2, absl::StrCat(TestDaemon::Catalogue(), "principals { name: \"test-user\" uids: ",
                      ::getuid(), " permission { libraries { library: \"libm.so.6\" } } }\n",
                      "limits { max_workers: 2 per_principal { max_workers: 1 } }\n"));
  ASSERT_NE(daemon, nullptr);
  const std::set<pid_t> idle = WaitIdle(*daemon, 2);
  ASSERT_EQ(idle.size(), 2u) << daemon->ReadLog();
  auto client = daemon->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto first = (*session)->OpenLibrary("libm.so.6", {"f64 cos(f64)"});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(idle.count((*first)->worker_pid()));
  auto second = (*session)->OpenLibrary("libm.so.6", {"f64 cos(f64)"});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted) << second.status();
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("max_workers"));
  ASSERT_TRUE((*first)->Close().ok());
  EXPECT_TRUE(Eventually([&] {
    return (*session)->OpenLibrary("libm.so.6", {"f64 cos(f64)"}).ok();
  }));
}

int OpenFds(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/fd"), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

// What each descriptor of `pid` is, for a failure message.
std::string DescribeFds(pid_t pid) {
  std::string out;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/fd"), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::error_code ignored;
    absl::StrAppend(&out, it->path().filename().string(), " -> ",
                    std::filesystem::read_symlink(it->path(), ignored).string(), "\n");
  }
  return out;
}

TEST(PrestartTest, KillsDuringOpensLeaveNoLeakAndThePoolRefills) {
  auto daemon = StartDaemon(2);
  ASSERT_NE(daemon, nullptr);
  ASSERT_EQ(WaitIdle(*daemon, 2).size(), 2u) << daemon->ReadLog();
  auto client = daemon->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  {
    auto session = (*client)->CreateSession();  // the connection is up
    ASSERT_TRUE(session.ok()) << session.status();
  }
  const int fds_before = OpenFds(daemon->pid());
  const std::string fds_were = DescribeFds(daemon->pid());
  std::atomic<bool> done{false};
  std::set<pid_t> killed;
  std::thread killer([&] {
    // Every 10-50 ms, any child: idle, starting, being handed a library,
    // or serving.
    unsigned seed = 7;
    while (!done) {
      std::vector<pid_t> children = daemon->Children();
      if (!children.empty()) {
        pid_t victim = children[rand_r(&seed) % children.size()];
        if (::kill(victim, SIGKILL) == 0) killed.insert(victim);
      }
      absl::SleepFor(absl::Milliseconds(10 + rand_r(&seed) % 40));
    }
  });
  int ok = 0, failed = 0;
  const absl::Time end = absl::Now() + absl::Seconds(3);
  while (absl::Now() < end) {
    auto session = (*client)->CreateSession();
    ASSERT_TRUE(session.ok()) << session.status();
    auto libm = (*session)->OpenLibrary("libm.so.6", {"f64 cos(f64)"});
    if (!libm.ok()) {
      // A kill is the only way to fail, and it is named.
      EXPECT_EQ(libm.status().code(), absl::StatusCode::kUnavailable) << libm.status();
      ++failed;
      continue;
    }
    absl::StatusOr<double> one = (*libm)->Call<double>("cos", 0.0);
    if (one.ok()) {
      EXPECT_EQ(*one, 1.0);
      ++ok;
    }
  }
  done = true;
  killer.join();
  EXPECT_TRUE(daemon->alive());
  // However its starts failed meanwhile, the pool fills up again by itself.
  EXPECT_EQ(WaitIdle(*daemon, 2).size(), 2u) << "not refilled\n" << daemon->ReadLog();
  EXPECT_TRUE(Eventually([&] { return daemon->Children().size() == 2u; }))
      << daemon->Children().size() << " children";
  EXPECT_TRUE(Eventually([&] { return OpenFds(daemon->pid()) == fds_before; }))
      << "daemon fds before " << fds_before << ", after " << OpenFds(daemon->pid())
      << "\nbefore:\n" << fds_were << "after:\n" << DescribeFds(daemon->pid());
  for (pid_t pid : killed) EXPECT_FALSE(ProcessExists(pid)) << "not reaped: " << pid;
  std::printf("%d opens and calls, %d failed opens, %zu kills\n", ok, failed, killed.size());
}

TEST(PrestartTest, CrashReplacementUsesThePool) {
  auto daemon = StartDaemon(2);
  ASSERT_NE(daemon, nullptr);
  auto client = daemon->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto crashy = (*session)->OpenLibrary("crashy", {"i32 crash_segv()", "i32 healthy(i32)"});
  ASSERT_TRUE(crashy.ok()) << crashy.status();
  const pid_t first = (*crashy)->worker_pid();
  const std::set<pid_t> idle = WaitIdle(*daemon, 2);
  ASSERT_EQ(idle.size(), 2u) << daemon->ReadLog();
  EXPECT_FALSE((*crashy)->Call<int32_t>("crash_segv").ok());
  auto healthy = (*crashy)->Call<int32_t>("healthy", int32_t{21});
  ASSERT_TRUE(healthy.ok()) << healthy.status();
  EXPECT_EQ(*healthy, 42);
  EXPECT_TRUE(Eventually([&] { return !ProcessExists(first); }));
  // The replacement is one of the workers that were idle: it now serves.
  int serving = 0;
  for (pid_t pid : idle) serving += Serving(*daemon, pid) ? 1 : 0;
  EXPECT_EQ(serving, 1) << daemon->ReadLog();
  EXPECT_EQ(WaitIdle(*daemon, 2).size(), 2u) << "not refilled";
}

}  // namespace
}  // namespace ffibroker::testing
