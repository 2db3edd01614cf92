// WorkerWatcher (worker_watcher.h) with real workers: a worker's end is
// seen when it happens, reaped, logged, and handed to its owner (the end
// hook); what is submitted after it fails as not started.
#include "daemon/worker_watcher.h"

#include <signal.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/error_reason.h"
#include "common/log.h"
#include "common/log_event.h"
#include "daemon/worker_process.h"
#include "daemon/worker_process_test_util.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

TEST(WorkerWatcherTest, ReapsAnIdleWorkerWhenItDiesAndKillsAllAtShutdown) {
  absl::StatusOr<std::unique_ptr<WorkerWatcher>> watcher = WorkerWatcher::Create();
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  SandboxError error;
  worker::v1::Hello hello;
  auto idle = WorkerProcess::Spawn(PlanFor(FFIBROKER_WORKER_PATH), Soon(), &error, &hello,
                                   watcher->get());
  ASSERT_TRUE(idle.ok()) << idle.status();
  auto other = WorkerProcess::Spawn(PlanFor(FFIBROKER_WORKER_PATH), Soon(), &error, &hello,
                                    watcher->get());
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ((*watcher)->watched(), 2);
  // Killed from outside while no exchange runs: reaped without anyone asking.
  const pid_t pid = (*idle)->pid();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while ((*idle)->alive() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_FALSE((*idle)->alive());
  EXPECT_EQ((*idle)->outcome().kind, WorkerOutcome::Kind::kSignaled);
  EXPECT_EQ((*idle)->outcome().message, "killed by signal SIGKILL (Killed)");
  EXPECT_TRUE(Reaped(pid));
  idle->reset();
  EXPECT_EQ((*watcher)->watched(), 1);
  // Shutdown kills what is left and refuses new workers.
  (*watcher)->Shutdown();
  EXPECT_EQ((*other)->outcome().kind, WorkerOutcome::Kind::kStopped);
  auto late = WorkerProcess::Spawn(PlanFor(FFIBROKER_WORKER_PATH), Soon(), &error, &hello,
                                   watcher->get());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnavailable) << late.status();
  other->reset();
  EXPECT_EQ((*watcher)->watched(), 0);
}

// A worker's end is a log event whose journal fields name its library,
// pid and signal (FFIBROKER_LIBRARY, _WORKER_PID, _SIGNAL; docs/systemd.md).
TEST(WorkerWatcherTest, AWorkersEndIsALogEventNamingItsLibraryAndSignal) {
  struct Seen {
    absl::Mutex mu;
    std::vector<std::string> fields;  // "NAME=value" of worker_ended events
  };
  auto seen = std::make_shared<Seen>();
  SetLogSink([seen](LogLevel, const LogFields& event, const std::string&) {
    std::vector<std::string> fields;
    for (const auto& [name, value] : event.list()) fields.push_back(absl::StrCat(name, "=", value));
    if (std::find(fields.begin(), fields.end(), "EVENT=worker_ended") == fields.end()) return;
    absl::MutexLock lock(&seen->mu);
    seen->fields = std::move(fields);
  });
  {
    absl::StatusOr<std::unique_ptr<WorkerWatcher>> watcher = WorkerWatcher::Create();
    ASSERT_TRUE(watcher.ok()) << watcher.status();
    SandboxError error;
    worker::v1::Hello hello;
    auto worker = WorkerProcess::Spawn(PlanFor(FFIBROKER_WORKER_PATH), Soon(), &error, &hello,
                                       watcher->get());
    ASSERT_TRUE(worker.ok()) << worker.status();
    (*worker)->set_label("/lib/libx.so for session s1", "/lib/libx.so");
    const pid_t pid = (*worker)->pid();
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while ((*worker)->alive() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
    ASSERT_FALSE((*worker)->alive());
    worker->reset();
    (*watcher)->Shutdown();
    absl::MutexLock lock(&seen->mu);
    EXPECT_NE(std::find(seen->fields.begin(), seen->fields.end(), "LIBRARY=/lib/libx.so"),
              seen->fields.end());
    EXPECT_NE(std::find(seen->fields.begin(), seen->fields.end(), absl::StrCat("WORKER_PID=", pid)),
              seen->fields.end());
    EXPECT_NE(std::find(seen->fields.begin(), seen->fields.end(), "SIGNAL=SIGKILL"),
              seen->fields.end());
  }
  SetLogSink(nullptr);
}

// A worker that dies right after sending a reply: the reply still answers
// its request, the watcher sees the death at once, and the next request
// fails with how the worker ended instead of being sent to a dead worker.
TEST(WorkerWatcherTest, AReplyBeforeADeathCountsAndTheDeathIsSeenAtOnce) {
  absl::StatusOr<std::unique_ptr<WorkerWatcher>> watcher = WorkerWatcher::Create();
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  SandboxError error;
  worker::v1::Hello hello;
  auto worker = WorkerProcess::Spawn(PlanFor(FFIBROKER_WORKER_PATH), Soon(), &error, &hello,
                                     watcher->get());
  ASSERT_TRUE(worker.ok()) << worker.status();
  const pid_t pid = (*worker)->pid();
  (*worker)->set_reply_hook_for_testing([&] { ASSERT_EQ(::kill(pid, SIGKILL), 0); });
  absl::StatusOr<worker::v1::WorkerToDaemon> opened = (*worker)->Exchange(
      OpenRequest(FFIBROKER_SCALARS_LIB, "i32 counter_next()"), Soon());
  ASSERT_TRUE(opened.ok()) << opened.status();  // the reply came before the death
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while ((*worker)->alive() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(2));
  EXPECT_FALSE((*worker)->alive());
  EXPECT_EQ((*worker)->outcome().message, "killed by signal SIGKILL (Killed)");
  EXPECT_TRUE(Reaped(pid));
  absl::StatusOr<worker::v1::WorkerToDaemon> next = (*worker)->Exchange(CallRequest(0), Soon());
  EXPECT_EQ(next.status().code(), absl::StatusCode::kUnavailable) << next.status();
  EXPECT_TRUE(absl::StrContains(next.status().message(), "killed by signal SIGKILL"))
      << next.status();
  worker->reset();
}

// The end hook runs on the watcher once a worker's end is handled; a
// request submitted after that never ran there, so it fails as not started
// (its sender may send it again), and a hook set too late is refused.
TEST(WorkerWatcherTest, AfterItsEndHookAWorkerRefusesRequestsAsNotStarted) {
  std::unique_ptr<WorkerProcess> worker = SpawnWorker();
  ASSERT_NE(worker, nullptr);
  absl::Mutex mu;
  bool ended = false;
  ASSERT_TRUE(worker->set_end_hook([&] {
    absl::MutexLock lock(&mu);
    ended = true;
  }));
  EXPECT_TRUE(worker->TakesRequests());
  ASSERT_EQ(::kill(worker->pid(), SIGKILL), 0);
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&ended), absl::Seconds(10)));
  }
  EXPECT_FALSE(worker->TakesRequests());
  EXPECT_FALSE(worker->set_end_hook([] {}));
  absl::StatusOr<worker::v1::WorkerToDaemon> late = worker->Exchange(CallRequest(0), Soon());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnavailable) << late.status();
  EXPECT_EQ(ErrorReason(late.status()), kNotStartedReason) << late.status();
  EXPECT_TRUE(absl::StrContains(late.status().message(),
                                "had ended before this request reached it (worker killed by "
                                "signal SIGKILL"))
      << late.status();
}

}  // namespace
}  // namespace ffibroker
