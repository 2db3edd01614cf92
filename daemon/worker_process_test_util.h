// Helpers shared by the WorkerProcess tests (worker_process_test.cc,
// worker_watcher_test.cc, worker_spawn_test.cc): spawning a real worker
// without namespaces, all reporting to one watcher, and the requests they
// send it.
#ifndef FFIBROKER_DAEMON_WORKER_PROCESS_TEST_UTIL_H_
#define FFIBROKER_DAEMON_WORKER_PROCESS_TEST_UTIL_H_

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/signature.h"
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

inline worker::v1::DaemonToWorker OpenRequest(const std::string& path,
                                       const std::string& decl_text) {
  worker::v1::DaemonToWorker req;
  req.mutable_open()->set_path(path);
  // Limits generous enough for any test, and a seccomp program that allows
  // everything: the profiles have their own tests.
  worker::v1::Lockdown* lockdown = req.mutable_open()->mutable_lockdown();
  lockdown->set_address_space_bytes(uint64_t{4} << 30);
  lockdown->set_cpu_seconds(60);
  lockdown->set_open_files(64);
  sock_filter allow_all = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  std::string allow_all_bpf(reinterpret_cast<const char*>(&allow_all), sizeof allow_all);
  lockdown->set_seccomp_bpf(allow_all_bpf);
  lockdown->set_seccomp_bpf_loading(allow_all_bpf);
  absl::StatusOr<Declaration> decl = ParseDeclaration(decl_text);
  EXPECT_TRUE(decl.ok()) << decl.status();
  worker::v1::Symbol* sym = req.mutable_open()->add_symbols();
  sym->set_name(decl.ok() ? decl->name : "");
  if (decl.ok()) *sym->mutable_signature() = decl->signature;
  return req;
}

inline worker::v1::DaemonToWorker CallRequest(uint32_t index) {
  worker::v1::DaemonToWorker req;
  req.mutable_call()->set_symbol_index(index);
  return req;
}

// True once `pid` is no longer our child (reaped by someone).
inline bool Reaped(pid_t pid) {
  errno = 0;
  return ::waitpid(pid, nullptr, WNOHANG) == -1 && errno == ECHILD;
}

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_PROCESS_TEST_UTIL_H_
