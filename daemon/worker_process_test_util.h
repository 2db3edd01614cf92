// Helpers shared by the WorkerProcess tests (worker_process_test.cc,
// worker_spawn_test.cc): spawning a real worker without namespaces, all
// reporting to one watcher.
#ifndef FFIBROKER_DAEMON_WORKER_PROCESS_TEST_UTIL_H_
#define FFIBROKER_DAEMON_WORKER_PROCESS_TEST_UTIL_H_

#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/sandbox_spawn.h"
#include "daemon/worker_process.h"
#include "daemon/worker_watcher.h"
#include "ffibroker/worker/v1/worker.pb.h"
#include "gtest/gtest.h"

namespace ffibroker {

inline absl::Time Soon() { return absl::Now() + absl::Seconds(20); }

// A plan without namespaces: these tests are about the protocol and the
// process lifecycle (tests/integration covers the sandbox).
inline SandboxPlan PlanFor(const std::string& executable) {
  SandboxPlan plan;
  plan.executable = executable;
  plan.argv = {"ffibroker-worker", absl::StrCat("--parent-pid=", ::getpid())};
  plan.user_ns = plan.mount_ns = plan.pid_ns = false;
  plan.net_ns = plan.ipc_ns = plan.uts_ns = false;
  return plan;
}

// The watcher every worker of these tests reports to (it outlives them all).
inline WorkerWatcher* TestWatcher() {
  static WorkerWatcher* watcher = [] {
    absl::StatusOr<std::unique_ptr<WorkerWatcher>> w = WorkerWatcher::Create();
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? w->release() : nullptr;
  }();
  return watcher;
}

// `ring_bytes`: the channel's shared-memory rings (0: the socket alone).
inline absl::StatusOr<std::unique_ptr<WorkerProcess>> Spawn(const std::string& executable,
                                                            uint32_t ring_bytes = 0) {
  SandboxError error;
  worker::v1::Hello hello;
  SandboxPlan plan = PlanFor(executable);
  plan.ring_bytes = ring_bytes;
  return WorkerProcess::Spawn(plan, Soon(), &error, &hello, TestWatcher());
}

inline std::unique_ptr<WorkerProcess> SpawnWorker(uint32_t ring_bytes = 0) {
  absl::StatusOr<std::unique_ptr<WorkerProcess>> w = Spawn(FFIBROKER_WORKER_PATH, ring_bytes);
  EXPECT_TRUE(w.ok()) << w.status();
  return w.ok() ? std::move(*w) : nullptr;
}

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_PROCESS_TEST_UTIL_H_
