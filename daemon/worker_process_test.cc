#include "daemon/worker_process.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>


#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/error_reason.h"
#include "common/limits.h"
#include "common/log_event.h"
#include "common/shm_ring.h"
#include "common/signature.h"
#include "daemon/answer_once.h"
#include "daemon/worker_process_test_util.h"
#include "daemon/worker_watcher.h"
#include "ffibroker/worker/v1/worker.pb.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

// Soon, PlanFor, TestWatcher, Spawn, SpawnWorker, OpenRequest, CallRequest,
// Reaped: worker_process_test_util.h.

// Spawns a worker and opens `decl` in `lib`; null on failure.
std::unique_ptr<WorkerProcess> OpenedWorker(const std::string& lib, const std::string& decl,
                                            uint32_t ring_bytes = 0) {
  std::unique_ptr<WorkerProcess> w = SpawnWorker(ring_bytes);
  if (w == nullptr) return nullptr;
  absl::StatusOr<worker::v1::WorkerToDaemon> r = w->Exchange(OpenRequest(lib, decl), Soon());
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return nullptr;
  EXPECT_TRUE(r->has_opened()) << r->ShortDebugString();
  return r->has_opened() ? std::move(w) : nullptr;
}


// A completion that throws ends neither the daemon nor the completions
// after it (they run on the watcher's thread, one after the other).
// ... and the request whose completion threw is still answered: the
// AnswerOnce its chain carries answers when RunAll drops the chain.
TEST(WorkerProcessTest, ACompletionThatThrowsLeavesTheOthersToRun) {
  int ran = 0;
  absl::Status lost;
  AnswerOnce<absl::Status> answer("Call", [&](absl::Status s) { lost = std::move(s); });
  WorkerProcess::Completions completions;
  completions.push_back({[answer = std::move(answer)](
                             absl::StatusOr<worker::v1::WorkerToDaemon>) mutable {
                           throw std::runtime_error("decoding failed");
                           answer(absl::OkStatus());  // never reached
                         },
                         absl::UnavailableError("x")});
  completions.push_back({[&](absl::StatusOr<worker::v1::WorkerToDaemon>) { ++ran; },
                         absl::UnavailableError("y")});
  WorkerProcess::RunAll(std::move(completions));
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(lost.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(lost.message(), "the daemon lost the answer to Call (an internal error: see its log)");
}

TEST(WorkerProcessTest, CallsShareTheWorkersState) {
  std::unique_ptr<WorkerProcess> w =
      OpenedWorker(FFIBROKER_SCALARS_LIB, "i32 counter_next()");
  ASSERT_NE(w, nullptr);
  for (int32_t expected : {1, 2}) {
    absl::StatusOr<worker::v1::WorkerToDaemon> r = w->Exchange(CallRequest(0), Soon());
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->has_result()) << r->ShortDebugString();
    ASSERT_EQ(r->result().value().size(), sizeof(int32_t));
    int32_t got;
    std::memcpy(&got, r->result().value().data(), sizeof got);
    EXPECT_EQ(got, expected);
  }
  EXPECT_TRUE(w->alive());
}

TEST(WorkerProcessTest, OpenFailureIsAnErrorReplyNotADeath) {
  std::unique_ptr<WorkerProcess> w = SpawnWorker();
  ASSERT_NE(w, nullptr);
  absl::StatusOr<worker::v1::WorkerToDaemon> r =
      w->Exchange(OpenRequest(FFIBROKER_SCALARS_LIB, "i32 not_exported()"), Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->has_error()) << r->ShortDebugString();
  EXPECT_EQ(r->error().code(), worker::v1::Error::CODE_SYMBOL_NOT_FOUND);
  EXPECT_TRUE(absl::StrContains(r->error().message(), "not_exported"));
  EXPECT_TRUE(w->alive());
}

TEST(WorkerProcessTest, SegfaultIsUnavailableAndReaped) {
  std::unique_ptr<WorkerProcess> w =
      OpenedWorker(FFIBROKER_CRASHY_LIB, "i32 crash_segv()");
  ASSERT_NE(w, nullptr);
  const pid_t pid = w->pid();
  absl::StatusOr<worker::v1::WorkerToDaemon> r = w->Exchange(CallRequest(0), Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "SIGSEGV")) << r.status();
  WorkerOutcome outcome = w->outcome();
  EXPECT_EQ(outcome.kind, WorkerOutcome::Kind::kSignaled) << outcome.message;
  EXPECT_EQ(outcome.code, SIGSEGV);
  EXPECT_TRUE(absl::StrContains(outcome.message, "SIGSEGV")) << outcome.message;
  EXPECT_FALSE(w->alive());
  EXPECT_TRUE(Reaped(pid));
  // Dead for good: the next exchange fails without waiting.
  r = w->Exchange(CallRequest(0), Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(w->outcome().kind, WorkerOutcome::Kind::kSignaled);
}

// A worker's peak resident size starts at the daemon's (ru_maxrss survives
// fork and exec): a crash after the daemon once held more than half the
// worker's address-space limit is still a crash, not "out of memory".
TEST(WorkerProcessTest, ACrashAfterTheDaemonsOwnPeakIsNotOutOfMemory) {
  {
    std::vector<char> peak(96 << 20);
    std::memset(peak.data(), 1, peak.size());  // resident, then given back
    ASSERT_EQ(peak[12345], 1);
  }
  // In a user namespace, as the daemon starts workers: the child shares
  // this process's memory until exec (CLONE_VM), and so its peak.
  SandboxPlan plan = PlanFor(FFIBROKER_WORKER_PATH);
  plan.user_ns = true;
  SandboxError error;
  worker::v1::Hello hello;
  absl::StatusOr<std::unique_ptr<WorkerProcess>> spawned =
      WorkerProcess::Spawn(plan, Soon(), &error, &hello, TestWatcher());
  ASSERT_TRUE(spawned.ok()) << spawned.status();
  std::unique_ptr<WorkerProcess> w = *std::move(spawned);
  absl::StatusOr<worker::v1::WorkerToDaemon> opened =
      w->Exchange(OpenRequest(FFIBROKER_CRASHY_LIB, "i32 crash_segv()"), Soon());
  ASSERT_TRUE(opened.ok() && opened->has_opened()) << opened.status();
  w->set_address_space_limit(64 << 20);  // half of it is below this process's peak
  absl::StatusOr<worker::v1::WorkerToDaemon> r = w->Exchange(CallRequest(0), Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(w->outcome().kind, WorkerOutcome::Kind::kSignaled) << w->outcome().message;
  EXPECT_EQ(w->outcome().code, SIGSEGV);
}

TEST(WorkerProcessTest, AbortIsSignaled) {
  std::unique_ptr<WorkerProcess> w = OpenedWorker(FFIBROKER_CRASHY_LIB, "void crash_abort()");
  ASSERT_NE(w, nullptr);
  absl::StatusOr<worker::v1::WorkerToDaemon> r = w->Exchange(CallRequest(0), Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "SIGABRT")) << r.status();
  EXPECT_EQ(w->outcome().kind, WorkerOutcome::Kind::kSignaled);
  EXPECT_EQ(w->outcome().code, SIGABRT);
}

TEST(WorkerProcessTest, ExitMidCallIsExited) {
  std::unique_ptr<WorkerProcess> w = OpenedWorker(FFIBROKER_CRASHY_LIB, "i32 exit_midcall()");
  ASSERT_NE(w, nullptr);
  const pid_t pid = w->pid();
  absl::StatusOr<worker::v1::WorkerToDaemon> r = w->Exchange(CallRequest(0), Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(w->outcome().kind, WorkerOutcome::Kind::kExited) << w->outcome().message;
  EXPECT_EQ(w->outcome().code, 7);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "7")) << r.status();
  EXPECT_TRUE(Reaped(pid));
}

TEST(WorkerProcessTest, MissedDeadlineIsTimedOut) {
  std::unique_ptr<WorkerProcess> w = OpenedWorker(FFIBROKER_CRASHY_LIB, "void hang()");
  ASSERT_NE(w, nullptr);
  const pid_t pid = w->pid();
  absl::Time start = absl::Now();
  absl::StatusOr<worker::v1::WorkerToDaemon> r =
      w->Exchange(CallRequest(0), start + absl::Milliseconds(200));
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_EQ(w->outcome().kind, WorkerOutcome::Kind::kTimedOut) << w->outcome().message;
  EXPECT_FALSE(w->alive());
  EXPECT_GE(took, absl::Milliseconds(190));
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_TRUE(Reaped(pid));
}

TEST(WorkerProcessTest, KillFromAnotherThreadStopsAHungCall) {
  std::unique_ptr<WorkerProcess> w = OpenedWorker(FFIBROKER_CRASHY_LIB, "void hang()");
  ASSERT_NE(w, nullptr);
  const pid_t pid = w->pid();
  WorkerProcess* raw = w.get();
  std::thread killer([raw] {
    absl::SleepFor(absl::Milliseconds(150));
    raw->Kill();
  });
  absl::Time start = absl::Now();
  absl::StatusOr<worker::v1::WorkerToDaemon> r =
      w->Exchange(CallRequest(0), start + absl::Seconds(30));
  absl::Duration took = absl::Now() - start;
  killer.join();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(w->outcome().kind, WorkerOutcome::Kind::kStopped) << w->outcome().message;
  EXPECT_EQ(ErrorReason(r.status()), "WORKER_STOPPED");
  EXPECT_FALSE(w->alive());
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_TRUE(Reaped(pid));
}

TEST(WorkerProcessTest, KillBeforeExchange) {
  std::unique_ptr<WorkerProcess> w = SpawnWorker();
  ASSERT_NE(w, nullptr);
  w->Kill();
  EXPECT_FALSE(w->alive());
  EXPECT_EQ(w->outcome().kind, WorkerOutcome::Kind::kStopped);
  absl::StatusOr<worker::v1::WorkerToDaemon> r =
      w->Exchange(OpenRequest(FFIBROKER_SCALARS_LIB, "i32 counter_next()"), Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST(WorkerProcessTest, AbandonRecordsProtocolViolation) {
  std::unique_ptr<WorkerProcess> w = SpawnWorker();
  ASSERT_NE(w, nullptr);
  const pid_t pid = w->pid();
  w->Abandon("replied with the wrong kind");
  EXPECT_FALSE(w->alive());
  EXPECT_EQ(w->outcome().kind, WorkerOutcome::Kind::kProtocolViolation);
  EXPECT_TRUE(absl::StrContains(w->outcome().message, "replied with the wrong kind"));
  EXPECT_EQ(ErrorReason(w->OutcomeStatus()), "WORKER_PROTOCOL_VIOLATION");
  // Killed at once; the watcher reaps it.
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!Reaped(pid) && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(2));
  EXPECT_TRUE(Reaped(pid));
}

TEST(WorkerProcessTest, DestructorKillsAndReaps) {
  std::unique_ptr<WorkerProcess> w = SpawnWorker();
  ASSERT_NE(w, nullptr);
  const pid_t pid = w->pid();
  ASSERT_EQ(::kill(pid, 0), 0);
  w.reset();
  errno = 0;
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_TRUE(Reaped(pid));
}

TEST(WorkerProcessTest, SignalName) {
  EXPECT_TRUE(absl::StartsWith(SignalName(SIGSEGV), "SIGSEGV")) << SignalName(SIGSEGV);
  EXPECT_TRUE(absl::StartsWith(SignalName(SIGKILL), "SIGKILL")) << SignalName(SIGKILL);
  EXPECT_FALSE(absl::StartsWith(SignalName(SIGABRT), "SIGSEGV"));
}

// Requests are pipelined: several sent before any reply is read are all
// answered, each by the reply with its own id.
TEST(WorkerProcessTest, PipelinedRequestsAreEachAnswered) {
  std::unique_ptr<WorkerProcess> w = OpenedWorker(FFIBROKER_SCALARS_LIB, "i32 counter_next()");
  ASSERT_NE(w, nullptr);
  constexpr int kRequests = 50;
  absl::Mutex mu;
  std::vector<int32_t> seen;
  int answered = 0;
  std::vector<worker::v1::DaemonToWorker> requests(kRequests, CallRequest(0));
  for (int i = 0; i < kRequests; ++i) {
    w->Submit(&requests[i], Soon(), [&, i](absl::StatusOr<worker::v1::WorkerToDaemon> r) {
      absl::MutexLock lock(&mu);
      ++answered;
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) return;
      EXPECT_EQ(r->request_id(), requests[i].request_id());
      int32_t value = 0;
      std::memcpy(&value, r->result().value().data(),
                  std::min<size_t>(sizeof value, r->result().value().size()));
      seen.push_back(value);
    });
  }
  absl::MutexLock lock(&mu);
  mu.AwaitWithTimeout(absl::Condition(+[](int* n) { return *n == kRequests; }, &answered),
                      absl::Seconds(20));
  ASSERT_EQ(answered, kRequests);
  // counter_next counts up: the worker ran them in the order sent.
  for (int i = 1; i < kRequests; ++i) EXPECT_EQ(seen[i], seen[i - 1] + 1) << i;
}

// A request that finds the worker's channel full (the worker is busy and
// reads nothing) is queued, not waited for: Submit returns at once (it
// runs on gRPC's threads), and the worker takes the queue in order once it
// reads again.
TEST(WorkerProcessTest, SubmitNeverWaitsForRoomOnTheChannel) {
  std::unique_ptr<WorkerProcess> w = OpenedWorker(FFIBROKER_CRASHY_LIB, "i32 sleep_ms(u32 ms)");
  ASSERT_NE(w, nullptr);
  constexpr int kBig = 8;
  std::vector<worker::v1::DaemonToWorker> requests(kBig + 1);
  const uint32_t ms = 1500;
  requests[0] = CallRequest(0);
  requests[0].mutable_call()->add_args(std::string(reinterpret_cast<const char*>(&ms), 4));
  for (int i = 1; i <= kBig; ++i) {  // 2 MiB each: far more than the socket holds
    requests[i].mutable_instance_write()->set_instance_id(1);
    requests[i].mutable_instance_write()->set_data(std::string(2 << 20, 'x'));
  }
  absl::Mutex mu;
  std::vector<int> order;
  const absl::Time start = absl::Now();
  for (int i = 0; i <= kBig; ++i) {
    w->Submit(&requests[i], Soon(), [&, i](absl::StatusOr<worker::v1::WorkerToDaemon> r) {
      EXPECT_TRUE(r.ok()) << i << ": " << r.status();  // an error reply for the writes
      absl::MutexLock lock(&mu);
      order.push_back(i);
    });
  }
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1000))
      << "Submit waited for the busy worker to read";
  absl::MutexLock lock(&mu);
  mu.AwaitWithTimeout(
      absl::Condition(+[](std::vector<int>* o) { return o->size() == kBig + 1; }, &order),
      absl::Seconds(20));
  ASSERT_EQ(order.size(), static_cast<size_t>(kBig + 1));
  for (int i = 0; i <= kBig; ++i) EXPECT_EQ(order[i], i);
  EXPECT_TRUE(w->alive());
}

// The same through the smallest shared-memory ring: small requests fill it
// while the worker sleeps (they wait in the backlog, and the worker's
// wake-up as it reads sends the rest), large ones go behind a marker on the
// socket; all in order.
TEST(WorkerProcessTest, AFullRingQueuesRequestsAndTheWorkersReadsSendThem) {
  std::unique_ptr<WorkerProcess> w =
      OpenedWorker(FFIBROKER_CRASHY_LIB, "i32 sleep_ms(u32 ms)", kMinRingBytes);
  ASSERT_NE(w, nullptr);
  constexpr int kRequests = 300;
  std::vector<worker::v1::DaemonToWorker> requests(kRequests + 1);
  const uint32_t ms = 500;
  requests[0] = CallRequest(0);
  requests[0].mutable_call()->add_args(std::string(reinterpret_cast<const char*>(&ms), 4));
  for (int i = 1; i <= kRequests; ++i) {  // 1 KiB each; every 100th larger than the ring
    requests[i].mutable_instance_write()->set_instance_id(1);
    requests[i].mutable_instance_write()->set_data(
        std::string(i % 100 == 0 ? 2 * kMinRingBytes : 1024, 'x'));
  }
  absl::Mutex mu;
  std::vector<int> order;
  const absl::Time start = absl::Now();
  for (int i = 0; i <= kRequests; ++i) {
    w->Submit(&requests[i], Soon(), [&, i](absl::StatusOr<worker::v1::WorkerToDaemon> r) {
      EXPECT_TRUE(r.ok()) << i << ": " << r.status();
      absl::MutexLock lock(&mu);
      order.push_back(i);
    });
  }
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(400))
      << "Submit waited for the busy worker to read";
  absl::MutexLock lock(&mu);
  mu.AwaitWithTimeout(
      absl::Condition(+[](std::vector<int>* o) { return o->size() == kRequests + 1; }, &order),
      absl::Seconds(20));
  ASSERT_EQ(order.size(), static_cast<size_t>(kRequests + 1));
  for (int i = 0; i <= kRequests; ++i) EXPECT_EQ(order[i], i);
  EXPECT_TRUE(w->alive());
}

TEST(WorkerProcessTest, PipelinedRequestsThroughTheRingAreEachAnswered) {
  std::unique_ptr<WorkerProcess> w =
      OpenedWorker(FFIBROKER_SCALARS_LIB, "i32 counter_next()", kMinRingBytes);
  ASSERT_NE(w, nullptr);
  constexpr int kRequests = 2000;  // more replies than one turn of the watcher reads
  absl::Mutex mu;
  std::vector<int32_t> seen;
  std::vector<worker::v1::DaemonToWorker> requests(kRequests, CallRequest(0));
  for (int i = 0; i < kRequests; ++i) {
    w->Submit(&requests[i], Soon(), [&](absl::StatusOr<worker::v1::WorkerToDaemon> r) {
      ASSERT_TRUE(r.ok()) << r.status();
      int32_t value = 0;
      std::memcpy(&value, r->result().value().data(),
                  std::min<size_t>(sizeof value, r->result().value().size()));
      absl::MutexLock lock(&mu);
      seen.push_back(value);
    });
  }
  absl::MutexLock lock(&mu);
  mu.AwaitWithTimeout(
      absl::Condition(+[](std::vector<int32_t>* s) { return s->size() == kRequests; }, &seen),
      absl::Seconds(20));
  ASSERT_EQ(seen.size(), static_cast<size_t>(kRequests));
  for (int i = 1; i < kRequests; ++i) EXPECT_EQ(seen[i], seen[i - 1] + 1) << i;
}

}  // namespace
// Issue 9, finding 11: a request the daemon cannot send is the daemon's
// failure (RESOURCE_EXHAUSTED, nothing sent), never the worker's.
TEST(WorkerProcessTest, ARequestTooLargeToSendIsNotBlamedOnTheWorker) {
  std::unique_ptr<WorkerProcess> w = OpenedWorker(FFIBROKER_SCALARS_LIB, "i32 counter_next()");
  ASSERT_NE(w, nullptr);
  worker::v1::DaemonToWorker big;
  big.mutable_instance_write()->set_instance_id(1);
  big.mutable_instance_write()->set_data(std::string(kMaxWorkerMessageBytes + 1, 'x'));
  absl::StatusOr<worker::v1::WorkerToDaemon> r = w->Exchange(&big, Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "exceeds the worker channel limit"))
      << r.status();
  EXPECT_FALSE(absl::StrContains(r.status().message(), "broke")) << r.status();
  EXPECT_TRUE(w->alive());
  r = w->Exchange(CallRequest(0), Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->has_result());
}

// Issue 9, finding 1: the worker answers out-of-bounds instance accesses
// and bad allocations from the daemon with an error reply and lives on.
TEST(WorkerProcessTest, OutOfBoundsInstanceRequestsAreErrorReplies) {
  std::unique_ptr<WorkerProcess> w = SpawnWorker();
  ASSERT_NE(w, nullptr);
  worker::v1::DaemonToWorker open = OpenRequest(FFIBROKER_SCALARS_LIB, "i32 counter_next()");
  v1::ClassDefinition* klass = open.mutable_open()->add_classes();
  klass->set_name("P");
  v1::FieldDefinition* field = klass->add_fields();
  field->set_name("x");
  field->mutable_type()->set_scalar(v1::SCALAR_U64);
  absl::StatusOr<worker::v1::WorkerToDaemon> r = w->Exchange(&open, Soon());
  ASSERT_TRUE(r.ok() && r->has_opened()) << r.status();
  worker::v1::DaemonToWorker made;
  made.mutable_instance_new()->set_class_index(0);
  made.mutable_instance_new()->set_init(std::string(8, '\0'));
  r = w->Exchange(&made, Soon());
  ASSERT_TRUE(r.ok() && r->has_instance_result()) << r.status();
  uint64_t id = r->instance_result().instance_id();
  std::vector<worker::v1::DaemonToWorker> bad(5);
  bad[0].mutable_instance_write()->set_instance_id(id);
  bad[0].mutable_instance_write()->set_offset(~uint64_t{0} - 3);  // wraps past 0
  bad[0].mutable_instance_write()->set_data(std::string(8, 'x'));
  bad[1].mutable_instance_write()->set_instance_id(id);
  bad[1].mutable_instance_write()->set_offset(4);  // straddles the end
  bad[1].mutable_instance_write()->set_data(std::string(8, 'x'));
  bad[2].mutable_instance_read()->set_instance_id(id);
  bad[2].mutable_instance_read()->set_offset(1);
  bad[2].mutable_instance_read()->set_size(~uint64_t{0});
  bad[3].mutable_instance_new()->set_class_index(0);
  bad[3].mutable_instance_new()->set_init(std::string(9, '\0'));  // not the class size
  bad[4].mutable_instance_new()->set_class_index(7);                // no such class
  for (worker::v1::DaemonToWorker& request : bad) {
    r = w->Exchange(&request, Soon());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->has_error()) << request.ShortDebugString() << " -> " << r->ShortDebugString();
  }
  EXPECT_TRUE(w->alive());
  worker::v1::DaemonToWorker read;
  read.mutable_instance_read()->set_instance_id(id);
  read.mutable_instance_read()->set_size(8);
  r = w->Exchange(&read, Soon());
  ASSERT_TRUE(r.ok() && r->has_instance_result()) << r.status();
  EXPECT_EQ(r->instance_result().data(), std::string(8, '\0'));
}

}  // namespace ffibroker
