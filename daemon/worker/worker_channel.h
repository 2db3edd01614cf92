// WorkerChannel: the worker's end of the daemon channel, shared by the
// main loop and every thread that waits for a callback's answer.
//
// With callbacks (docs/worker-protocol.md, protocol 6) more than one
// thread of a worker may need the next message: the main loop waits for
// requests; a thread inside a callback waits for its CallbackAnswer and
// meanwhile runs the nested requests the client's handler sends
// (DaemonToWorker.within_invocation = its invocation). One thread at a time
// reads the transport (leader/follower): whoever needs a message and finds
// nobody reading becomes the reader, and routes what it reads:
//   - a CallbackAnswer to the thread waiting for that invocation (an answer
//     for no outstanding invocation is dropped: the daemon never sends one);
//   - a request with within_invocation = N to the thread that owns N (one
//     for no outstanding invocation is answered at once with Error
//     CODE_BAD_REQUEST);
//   - any other request to the main loop's queue (at most
//     kMaxWorkerQueuedRequests; past it the channel is failed).
// Sends are serialized. A transport failure is kept and returned to every
// waiter.
//
// Thread-safe. Locks are std::mutex / std::condition_variable (futex
// only): absl::Mutex, contended, reads the CPU frequency from /sys
// (openat) and the thread's priority (sched_getparam), which no profile
// allows.
//
//   WorkerChannel channel(&transport);
//   ASSIGN_OR_RETURN(worker::v1::DaemonToWorker req, channel.NextRequest());
//   uint64_t inv = channel.Expect();  send CallbackInvoke{inv}; channel.NextFor(inv)...
#ifndef FFIBROKER_DAEMON_WORKER_WORKER_CHANNEL_H_
#define FFIBROKER_DAEMON_WORKER_WORKER_CHANNEL_H_

#include <cstdint>
#include <deque>
#include <map>

#include <condition_variable>
#include <mutex>

#include "absl/status/statusor.h"
#include "common/transport.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

class WorkerChannel {
 public:
  // `transport` must outlive the channel.
  explicit WorkerChannel(Transport* transport) : transport_(transport) {}
  WorkerChannel(const WorkerChannel&) = delete;
  WorkerChannel& operator=(const WorkerChannel&) = delete;

  // Sends one message; errors as Transport::Send.
  absl::Status Send(const worker::v1::WorkerToDaemon& message);

  // The next request for the main loop. UNAVAILABLE once the daemon closed
  // the channel; other errors as Transport::Receive, or RESOURCE_EXHAUSTED
  // when too many requests were queued.
  absl::StatusOr<worker::v1::DaemonToWorker> NextRequest();

  // Registers a new outstanding invocation and returns its id (never 0,
  // distinct among outstanding ones). Call before sending its
  // CallbackInvoke, so its answer cannot arrive unrouted.
  uint64_t Expect();
  // The next message for invocation `id`: its CallbackAnswer (msg_case
  // kCallbackAnswer) or a nested request. Errors as NextRequest.
  absl::StatusOr<worker::v1::DaemonToWorker> NextFor(uint64_t id);
  // Ends invocation `id` (after its answer).
  void Forget(uint64_t id);

 private:
  // Messages for one outstanding invocation (0: the main loop).
  using Inbox = std::deque<worker::v1::DaemonToWorker>;

  // Waits until `owner`'s inbox has a message, reading the transport when
  // nobody else does.
  absl::StatusOr<worker::v1::DaemonToWorker> Next(uint64_t owner);
  // Puts `message` where it belongs (mu_ held); an Error reply for a stray
  // nested request is queued in strays_.
  void Route(worker::v1::DaemonToWorker message);

  Transport* const transport_;
  std::mutex send_mu_;
  std::mutex mu_;  // guards everything below
  std::condition_variable changed_;  // reading_ dropped, a message routed
  bool reading_ = false;
  absl::Status failed_;
  std::map<uint64_t, Inbox> inboxes_ = {{0, Inbox()}};
  uint64_t next_invocation_ = 1;
  // Error replies to stray nested requests, sent once mu_ is released.
  std::deque<worker::v1::WorkerToDaemon> strays_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_WORKER_CHANNEL_H_
