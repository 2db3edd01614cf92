#include "daemon/call_stream.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "common/grpc_status.h"
#include "common/limits.h"
#include "daemon/answer_once.h"

namespace ffibroker {

CallStreamReactor::CallStreamReactor(SessionManager* sessions, Caller caller,
                                     absl::Time deadline, PrincipalQuota::Reservation held)
    : sessions_(sessions),
      caller_(std::move(caller)),
      deadline_(deadline),
      max_running_(sessions->CallsInFlightLimit(caller_)),
      stream_quota_(std::move(held)),
      callbacks_(std::make_shared<StreamCallbacks>(
          [this](v1::StreamResponse response) { Respond(std::move(response)); })) {
  StartRead(&read_);
}

void CallStreamReactor::CloseCallbacks(const char* why) { callbacks_->Close(why); }

void CallStreamReactor::ReadMore() {
  if (finished_ || reading_ || read_ended_) return;
  // An invocation waiting for its answer lets the stream read past the
  // calls-in-flight limit: the answer (or a nested call) must get through.
  // (Past it, calls are held, and past the held bounds refused: reading
  // never stops while an answer may be behind them.)
  const bool at_limit =
      outstanding_.size() >= max_running_ && !callbacks_->HasOutstandingInvocations();
  if (at_limit || queue_.size() >= kStreamMaxQueuedResponses) {
    paused_ = true;  // Ended or OnWriteDone reads on
    return;
  }
  paused_ = false;
  reading_ = true;
  StartRead(&read_);
}

void CallStreamReactor::OnReadDone(bool ok) {
  if (!ok) {  // the client half-closed, or is gone
    CloseCallbacks("the client closed its side of the stream");
    absl::MutexLock lock(&mu_);
    reading_ = false;
    read_ended_ = true;
    Settle();
    return;
  }
  v1::StreamRequest request = std::move(read_);
  read_.Clear();
  Admission admission;
  {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    admission = AdmitLocked(request);
  }
  if (admission == Admission::kNow) {
    Handle(std::move(request));
  } else if (admission == Admission::kRefused) {
    Reject(request.id(),
           absl::ResourceExhaustedError(absl::StrCat(
               "the stream already holds ", kStreamMaxHeldCalls, " requests or ",
               kStreamMaxHeldCallBytes >> 20, " MiB of them, read past its calls-in-flight "
               "limit while a callback invocation waits for its answer; send fewer calls "
               "before answering")));
  }
  absl::MutexLock lock(&mu_);
  ReadMore();
  Settle();
}

CallStreamReactor::Admission CallStreamReactor::AdmitLocked(v1::StreamRequest& request) {
  // Answers, calls made within an invocation (which must get through) and
  // registrations (which such a call may use) never wait.
  const bool starts_call = request.within_invocation() == 0 &&
                           (request.msg_case() == v1::StreamRequest::kCall ||
                            request.msg_case() == v1::StreamRequest::kBatch);
  if (!starts_call && request.msg_case() != v1::StreamRequest::kReleaseCallback) {
    return Admission::kNow;
  }
  // A new call waits at the limit; a call or release keeps its place
  // behind calls held or being started (a release after the call that
  // uses its callback).
  const bool wait = !held_.empty() || draining_ ||
                    (starts_call && outstanding_.size() >= max_running_);
  if (!wait) return Admission::kNow;
  const size_t bytes = request.ByteSizeLong();
  if (held_.size() >= kStreamMaxHeldCalls ||
      (!held_.empty() && held_bytes_ + bytes > kStreamMaxHeldCallBytes)) {
    return Admission::kRefused;
  }
  held_bytes_ += bytes;
  held_.push_back(Held{std::move(request), absl::Now()});
  return Admission::kHeld;
}

void CallStreamReactor::StartHeld() {
  {
    absl::MutexLock lock(&mu_);
    // One thread drains at a time, in order; it sees any slot another
    // frees meanwhile (a call that fails at once ends inside Handle).
    if (draining_) return;
    draining_ = true;
  }
  for (;;) {
    Held next;
    {
      absl::MutexLock lock(&mu_);
      if (held_.empty() || outstanding_.size() >= max_running_ || finished_ || cancelled_) {
        draining_ = false;
        return;
      }
      next = std::move(held_.front());
      held_.pop_front();
      held_bytes_ -= std::min(held_bytes_, next.request.ByteSizeLong());
    }
    // The time it was held counts in its own timeout.
    const int64_t timeout = next.request.timeout_millis();
    if (timeout > 0) {
      const int64_t held_ms = absl::ToInt64Milliseconds(absl::Now() - next.read_at);
      if (held_ms >= timeout) {
        Reject(next.request.id(),
               absl::DeadlineExceededError(absl::StrCat(
                   "timeout_millis ", timeout, " passed while the request waited behind the "
                   "stream's calls-in-flight limit; it was not started")));
        continue;
      }
      next.request.set_timeout_millis(timeout - held_ms);
    }
    Handle(std::move(next.request));
  }
}

void CallStreamReactor::Handle(v1::StreamRequest request) {
  const uint64_t id = request.id();
  if (request.msg_case() == v1::StreamRequest::kCallbackAnswer) {
    // Answers run nothing: no id bookkeeping, a response only if refused.
    absl::Status answered = callbacks_->Answer(request.callback_answer());
    if (!answered.ok()) Reject(id, answered);
    return;
  }
  if (id == 0) {
    // Callback invocations come with id 0: an answer about this request
    // could not be told from them.
    return Reject(id, WithReason(absl::InvalidArgumentError(
                                     "request id 0 is reserved (callback invocations carry it); "
                                     "give every request an id from 1"),
                                 "REQUEST_ID_RESERVED"));
  }
  std::string session;
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (!request.session_id().empty() && session_id_.empty()) session_id_ = request.session_id();
    if (!request.session_id().empty() && request.session_id() != session_id_) {
      refused = absl::InvalidArgumentError(
          "this stream is bound to another session (the one its first request named)");
    } else if (outstanding_.count(id) != 0) {
      // The reason tells this refusal from the running request's answer,
      // which carries the same id.
      refused = WithReason(absl::InvalidArgumentError(absl::StrCat(
                               "request id ", id, " is already in use by a request still running "
                               "(this answer is about the new request; the running one goes on)")),
                           "REQUEST_ID_IN_USE");
    } else {
      outstanding_.insert(id);
      session = session_id_;
    }
  }
  if (!refused.ok()) return Reject(id, refused);
  absl::Time deadline = deadline_;
  if (request.timeout_millis() > 0) {
    deadline = std::min(deadline, absl::Now() + absl::Milliseconds(request.timeout_millis()));
  }
  auto mismatch = [&](const std::string& named) {
    return !named.empty() && named != session;
  };
  if (request.within_invocation() != 0 && request.msg_case() != v1::StreamRequest::kCall) {
    Reject(id, absl::InvalidArgumentError(
                   "only a call can be sent within a callback invocation (within_invocation)"));
    return Ended(id);
  }
  switch (request.msg_case()) {
    case v1::StreamRequest::kCall: {
      v1::CallRequest* call = request.mutable_call();
      if (mismatch(call->session_id())) {
        Reject(id, absl::InvalidArgumentError(
                       "call.session_id names another session than the stream's"));
        return Ended(id);
      }
      call->set_session_id(session);
      absl::StatusOr<CallbackContext> context =
          request.within_invocation() == 0 ? callbacks_->ForCall(id)
                                           : callbacks_->Nested(request.within_invocation(), id);
      if (!context.ok()) {
        Reject(id, context.status());
        return Ended(id);
      }
      sessions_->Call(
          *call, caller_, deadline,
          AnswerOnce<absl::StatusOr<v1::CallResponse>>(
              "a CallStream call", [this, id](absl::StatusOr<v1::CallResponse> response) {
                // A callback that failed during the call decides its status.
                absl::Status status = callbacks_->CallEnded(id, response.status());
                v1::StreamResponse out;
                out.set_id(id);
                *out.mutable_status() = ToCallStatus(status);
                if (status.ok()) *out.mutable_call() = std::move(*response);
                Respond(std::move(out));
                Ended(id);
              }),
          *std::move(context));
      return;
    }
    case v1::StreamRequest::kRegisterCallback: {
      absl::StatusOr<SessionManager::CallbackGrant> grant =
          sessions_->AuthorizeCallback(session, caller_, request.register_callback());
      absl::Status registered =
          grant.ok() ? callbacks_->Register(request.register_callback(),
                                            std::move(grant->signature), std::move(grant->allowed))
                     : grant.status();
      Reject(id, registered);  // OK: the registration's own answer
      return Ended(id);
    }
    case v1::StreamRequest::kReleaseCallback:
      Reject(id, callbacks_->Release(request.release_callback().callback_id()));
      return Ended(id);
    case v1::StreamRequest::kBatch: {
      v1::CallBatchRequest* batch = request.mutable_batch();
      if (mismatch(batch->session_id())) {
        Reject(id, absl::InvalidArgumentError(
                       "batch.session_id names another session than the stream's"));
        return Ended(id);
      }
      batch->set_session_id(session);
      sessions_->CallBatch(
          *batch, caller_, deadline,
          AnswerOnce<absl::StatusOr<v1::CallBatchResponse>>(
              "a CallStream batch", [this, id](absl::StatusOr<v1::CallBatchResponse> response) {
                v1::StreamResponse out;
                out.set_id(id);
                *out.mutable_status() = ToCallStatus(response.status());
                if (response.ok()) *out.mutable_batch() = std::move(*response);
                Respond(std::move(out));
                Ended(id);
              }));
      return;
    }
    default:
      Reject(id, absl::InvalidArgumentError(
                     "stream request carries no call, batch or callback message"));
      return Ended(id);
  }
}

// Answers request `id` with `status` (OK for a registration or release that
// worked).
void CallStreamReactor::Reject(uint64_t id, const absl::Status& status) {
  v1::StreamResponse out;
  out.set_id(id);
  *out.mutable_status() = ToCallStatus(status);
  Respond(std::move(out));
}

void CallStreamReactor::Respond(v1::StreamResponse response) {
  // A call's or batch's answer counts in the principal's unread answers
  // until written; one that does not fit is replaced by that error (a
  // status alone, which counts nothing). A callback invocation does not
  // count: the library waits for its answer, and its arguments are bounded
  // by the callback's declaration.
  PrincipalQuota::Reservation held;
  if (response.has_call() || response.has_batch()) {
    absl::StatusOr<PrincipalQuota::Reservation> reserved =
        sessions_->ReserveAnswer(caller_, response.ByteSizeLong());
    if (!reserved.ok()) return Reject(response.id(), reserved.status());
    held = *std::move(reserved);
  }
  absl::MutexLock lock(&mu_);
  if (finished_) return;  // the client is gone: nobody to answer
  queue_.push_back(Queued{std::move(response), std::move(held)});
  if (!writing_) {
    writing_ = true;
    StartWrite(&queue_.front().response);
  }
  if (paused_) ReadMore();  // an invocation: its answer must be read
}

void CallStreamReactor::Ended(uint64_t id) {
  {
    absl::MutexLock lock(&mu_);
    outstanding_.erase(id);
    ++starting_;  // alive through StartHeld
  }
  StartHeld();
  bool unused;
  {
    absl::MutexLock lock(&mu_);
    --starting_;
    if (paused_) ReadMore();
    Settle();
    unused = UnusedLocked();
  }
  // Decided under the lock: once it is released, another thread (OnDone, or
  // a call ending on the watcher's) may delete the reactor.
  if (unused) delete this;
}

void CallStreamReactor::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  queue_.pop_front();
  if (!ok) {  // the client is gone
    queue_.clear();
    writing_ = false;
    read_ended_ = true;
    cancelled_ = true;
    Settle();
    return;  // OnDone closes the callbacks
  }
  if (!queue_.empty() && !finished_) {
    StartWrite(&queue_.front().response);
  } else {
    writing_ = false;
  }
  if (paused_) ReadMore();
  Settle();
}

void CallStreamReactor::OnCancel() {
  CloseCallbacks("the client cancelled the stream or disconnected");
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  held_.clear();  // never started: nobody is left to answer
  held_bytes_ = 0;
  read_ended_ = true;
  Settle();
}

void CallStreamReactor::Settle() {
  if (finished_ || writing_ || reading_) return;
  if (cancelled_) {
    finished_ = true;
    queue_.clear();
    held_.clear();  // never started: nobody is left to answer
    held_bytes_ = 0;
    Finish(grpc::Status::CANCELLED);
    return;
  }
  if (read_ended_ && outstanding_.empty() && queue_.empty() && held_.empty() &&
      starting_ == 0) {
    finished_ = true;
    Finish(grpc::Status::OK);
  }
}

void CallStreamReactor::OnDone() {
  CloseCallbacks("the stream ended");
  bool unused;
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
    unused = UnusedLocked();
  }
  if (unused) delete this;
}

bool CallStreamReactor::UnusedLocked() {
  if (!done_ || !outstanding_.empty() || starting_ > 0 || deleting_) return false;
  deleting_ = true;  // exactly one caller deletes
  return true;
}

}  // namespace ffibroker
