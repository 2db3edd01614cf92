// CallStreamReactor: one CallStream RPC (ffibroker.v1.Broker.CallStream).
//
// Reads requests as they come and hands each to the SessionManager at once
// (so the client may pipeline: it need not wait for an answer to send the
// next request); each answer is written when its worker replies, in the
// order replies arrive, tagged with the request's client-chosen id. Calls
// sent to one worker run in the order they were sent. The stream is bound
// to the session named by its first request.
//
// Back-pressure: while the stream has as many calls running as the caller
// may have in flight (max_calls_in_flight), or kStreamMaxQueuedResponses
// answers wait for the client to read them, no further request is read;
// the client's writes wait (gRPC flow control) instead of failing. A request that is
// malformed (no session, another session, an id still outstanding, no
// call) is answered with its own error status; the stream goes on.
//
// Callbacks (docs/callbacks.md): the stream's StreamCallbacks holds what the
// client registered; invocations are written as responses with id 0, and
// while any waits for its answer the stream reads on even past the
// calls-in-flight limit (the answer must get through). A new call read
// there is held, not started, until a running call ends (at most
// kStreamMaxHeldCalls and kStreamMaxHeldCallBytes; a call past them is
// refused RESOURCE_EXHAUSTED, and reading goes on). When the client
// half-closes or leaves, callbacks can no longer be answered: the relay is
// closed (outstanding invocations get zeros, their calls fail, persistent
// callbacks are released).
//
// Lifetime: gRPC owns the reactor until OnDone; calls still running then
// keep it alive until they end (their answers are dropped). When the client
// half-closes, the stream finishes once every answer is written; when it
// cancels or disconnects, at once.
//
// Thread-safe (gRPC reactions and worker replies run on different threads).
#ifndef FFIBROKER_DAEMON_CALL_STREAM_H_
#define FFIBROKER_DAEMON_CALL_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/stream_callbacks.h"
#include "daemon/identity.h"
#include "daemon/session_manager.h"
#include "ffibroker/v1/broker.pb.h"

namespace ffibroker {

class CallStreamReactor final
    : public grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  // `sessions` is borrowed and outlives the stream; `deadline` is the RPC's;
  // `held` is the stream's share of its principal's max_streams, given
  // back when the stream is done.
  CallStreamReactor(SessionManager* sessions, Caller caller, absl::Time deadline,
                    PrincipalQuota::Reservation held);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  ~CallStreamReactor() override = default;

  // Starts the request just read.
  void Handle(v1::StreamRequest request);
  // Queues `response` for writing (dropped once the stream is finished).
  void Respond(v1::StreamResponse response);
  // Answers request `id` with an error of its own.
  void Reject(uint64_t id, const absl::Status& status);
  // A request started by Handle has ended (its answer is queued).
  void Ended(uint64_t id);
  // Finishes the RPC once nothing is left to do (the reactor is deleted
  // later, by whichever of Ended and OnDone finds it unused).
  void Settle() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True, once, when the reactor may be deleted (OnDone ran and no request
  // is running): the caller deletes it, in the critical section's wake.
  bool UnusedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads the next request unless back-pressure holds it (see above).
  void ReadMore() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What happens to a request just read: handled now; held (taken into
  // held_) until a running call ends, if it starts a call at the stream's
  // limit or a call or release would overtake held ones; refused if held_
  // is full. Answers, calls within an invocation and registrations never
  // wait.
  enum class Admission { kNow, kHeld, kRefused };
  Admission AdmitLocked(v1::StreamRequest& request) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts held calls while the stream is under its limit. The caller
  // keeps starting_ raised throughout (the reactor stays alive).
  void StartHeld() ABSL_LOCKS_EXCLUDED(mu_);
  // Callback requests (register, release, answer) and nested calls.
  void HandleCallback(v1::StreamRequest& request, const std::string& session);
  // Closes the relay once the client can no longer answer (never under mu_).
  void CloseCallbacks(const char* why) ABSL_LOCKS_EXCLUDED(mu_);

  SessionManager* const sessions_;
  const Caller caller_;
  const absl::Time deadline_;
  const size_t max_running_;  // the caller's max_calls_in_flight
  const PrincipalQuota::Reservation stream_quota_;  // one of the principal's max_streams
  v1::StreamRequest read_;  // filled by StartRead
  // Its sink writes on this stream; closed before the reactor is deleted.
  const std::shared_ptr<StreamCallbacks> callbacks_;

  absl::Mutex mu_;
  std::string session_id_ ABSL_GUARDED_BY(mu_);  // bound by the first request
  std::set<uint64_t> outstanding_ ABSL_GUARDED_BY(mu_);  // request ids running
  // An answer queued for writing, with its share of the principal's
  // unread answers (max_unread_answers_mib), given back once written.
  struct Queued {
    v1::StreamResponse response;
    PrincipalQuota::Reservation held;
  };
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);  // front is being written
  struct Held {
    v1::StreamRequest request;
    absl::Time read_at;  // its timeout_millis runs from here
  };
  std::deque<Held> held_ ABSL_GUARDED_BY(mu_);  // read past the limit, in order
  size_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int starting_ ABSL_GUARDED_BY(mu_) = 0;  // threads in StartHeld (see Ended)
  bool draining_ ABSL_GUARDED_BY(mu_) = false;  // a thread is in StartHeld's loop
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = true;   // a read is started
  bool read_ended_ ABSL_GUARDED_BY(mu_) = false;  // the client half-closed or left
  bool paused_ ABSL_GUARDED_BY(mu_) = false;   // reading waits for the queue to drain
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish was called
  bool done_ ABSL_GUARDED_BY(mu_) = false;      // OnDone ran
  bool deleting_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_CALL_STREAM_H_
