// WorkerProcess::Spawn and the sandboxed spawn under it: the handshake,
// spawning without clone3, and how a spawn fails (a missing or
// non-executable binary, a deadline already past, no deadline at all).
#include <dirent.h>
#include <fcntl.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/worker_process_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

TEST(WorkerProcessTest, SpawnCompletesHandshake) {
  std::unique_ptr<WorkerProcess> w = SpawnWorker();
  ASSERT_NE(w, nullptr);
  EXPECT_GT(w->pid(), 0);
  EXPECT_NE(w->pid(), ::getpid());
  EXPECT_TRUE(w->alive());
  EXPECT_EQ(w->outcome().kind, WorkerOutcome::Kind::kRunning);
  EXPECT_EQ(::kill(w->pid(), 0), 0);
}

// Container runtimes often make clone3 fail with ENOSYS; spawning uses
// clone, namespaces included. Run in a child whose filter does that.
TEST(WorkerProcessTest, SpawnWorksWithoutClone3) {
  pid_t pid = ::fork();
  if (pid == 0) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == nullptr || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0 ||
        seccomp_load(ctx) != 0) {
      ::_exit(10);
    }
    SandboxPlan plan = PlanFor(FFIBROKER_WORKER_PATH);
    plan.argv = {"ffibroker-worker", "--parent-pid=0"};
    plan.user_ns = plan.mount_ns = plan.pid_ns = plan.net_ns = plan.ipc_ns = plan.uts_ns = true;
    SandboxError error;
    worker::v1::Hello hello;
    // A watcher of the child's own: threads do not survive fork.
    absl::StatusOr<std::unique_ptr<WorkerWatcher>> watcher = WorkerWatcher::Create();
    if (!watcher.ok()) ::_exit(11);
    absl::StatusOr<std::unique_ptr<WorkerProcess>> w =
        WorkerProcess::Spawn(plan, Soon(), &error, &hello, watcher->get());
    if (w.ok()) ::_exit(0);
    // Without namespaces (a kernel that refuses them) it must still work.
    plan = PlanFor(FFIBROKER_WORKER_PATH);
    w = WorkerProcess::Spawn(plan, Soon(), &error, &hello, watcher->get());
    ::_exit(w.ok() ? 1 : 2);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  // 0: with namespaces; 1: only without (this kernel refuses them).
  EXPECT_LE(WEXITSTATUS(status), 1);
}

TEST(WorkerProcessTest, SpawnOfMissingBinaryIsUnavailable) {
  std::string dir = ::testing::TempDir() + "worker_process_test.XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);  // searchable by the uid a root daemon's child takes
  absl::StatusOr<std::unique_ptr<WorkerProcess>> w =
      Spawn(dir + "/no-such-worker");
  EXPECT_EQ(w.status().code(), absl::StatusCode::kUnavailable) << w.status();
  // The child's step and errno, as it reported them from its raw system
  // call (it shares the daemon's memory, not its errno).
  EXPECT_THAT(std::string(w.status().message()),
              ::testing::HasSubstr("at 'execve': No such file or directory"));
  ::rmdir(dir.c_str());
}

// The daemon's children, from /proc (the test's own threads' lists).
std::vector<std::string> Children() {
  std::vector<std::string> out;
  const std::string tasks = absl::StrCat("/proc/", ::getpid(), "/task");
  if (DIR* dir = ::opendir(tasks.c_str())) {
    while (dirent* e = ::readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream in(absl::StrCat(tasks, "/", e->d_name, "/children"));
      for (std::string pid; in >> pid;) out.push_back(pid);
    }
    ::closedir(dir);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The wait for the child's exec has the start's deadline: past it the
// child is killed and reaped, with the reason.
TEST(WorkerProcessTest, ASpawnPastItsDeadlineLeavesNoChild) {
  const std::vector<std::string> before = Children();
  SandboxError error;
  worker::v1::Hello hello;
  absl::StatusOr<std::unique_ptr<WorkerProcess>> w =
      WorkerProcess::Spawn(PlanFor(FFIBROKER_WORKER_PATH), absl::Now() - absl::Seconds(1),
                           &error, &hello, TestWatcher());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kUnavailable) << w.status();
  EXPECT_THAT(std::string(w.status().message()),
              ::testing::HasSubstr("the worker's sandbox was not set up by the deadline"));
  for (const std::string& pid : Children()) {  // none new: an earlier one may be gone
    EXPECT_TRUE(std::binary_search(before.begin(), before.end(), pid)) << "child " << pid;
  }
}

// No deadline (a client that sets none): the wait for the exec polls a
// second at a time (its timeout once overflowed; the sanitizer build
// aborts on that).
TEST(WorkerProcessTest, ASpawnWithoutADeadlineWaitsForTheExec) {
  SandboxError error;
  worker::v1::Hello hello;
  absl::StatusOr<std::unique_ptr<WorkerProcess>> w = WorkerProcess::Spawn(
      PlanFor(FFIBROKER_WORKER_PATH), absl::InfiniteFuture(), &error, &hello, TestWatcher());
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE((*w)->alive());
}

TEST(WorkerProcessTest, SpawnOfANonExecutableFormatIsUnavailable) {
  // An empty file with the execute bit: exec fails with ENOEXEC.
  std::string dir = ::testing::TempDir() + "worker_process_test.XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  std::string path = dir + "/empty-worker";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
  ASSERT_GE(fd, 0);
  ::close(fd);
  absl::StatusOr<std::unique_ptr<WorkerProcess>> w =
      Spawn(path);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kUnavailable) << w.status();
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace ffibroker
