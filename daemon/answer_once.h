// AnswerOnce: the completion of a request the daemon accepted, called
// exactly once. A request's answer travels through a chain of completions
// (the RPC's, the session's, the library's, the worker's pending reply). If
// that chain is destroyed without answering (an exception thrown past it,
// a queue dropped), a client with no deadline would wait for ever; the
// AnswerOnce at the chain's end then answers INTERNAL "the daemon lost the
// answer to <what>" (LostAnswer) and logs it.
//
//   sessions_->Call(request, caller, deadline,
//                   AnswerOnce<absl::StatusOr<v1::CallResponse>>("Call", finish));
#ifndef FFIBROKER_DAEMON_ANSWER_ONCE_H_
#define FFIBROKER_DAEMON_ANSWER_ONCE_H_

#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"

namespace ffibroker {

// INTERNAL "the daemon lost the answer to <what> (see its log)"; logs it.
absl::Status LostAnswer(const char* what);

// `Result` is absl::Status or an absl::StatusOr<T>.
template <typename Result>
class AnswerOnce {
 public:
  using Fn = absl::AnyInvocable<void(Result)>;

  // `what` names the request in the log and the status (a literal).
  AnswerOnce(const char* what, Fn fn) : what_(what), fn_(std::move(fn)) {}
  AnswerOnce(AnswerOnce&& other) noexcept
      : what_(other.what_), fn_(std::exchange(other.fn_, nullptr)) {}
  AnswerOnce& operator=(AnswerOnce&&) = delete;
  AnswerOnce(const AnswerOnce&) = delete;
  AnswerOnce& operator=(const AnswerOnce&) = delete;

  ~AnswerOnce() {
    if (fn_ == nullptr) return;
    try {
      Take()(Result(LostAnswer(what_)));
    } catch (...) {  // nothing more can be done for this request
    }
  }

  // Answers; a second call does nothing.
  void operator()(Result result) {
    if (fn_ != nullptr) Take()(std::move(result));
  }

 private:
  // Emptied before the call: if the answer itself throws, the destructor
  // does not answer again.
  Fn Take() { return std::exchange(fn_, nullptr); }

  const char* what_;
  Fn fn_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_ANSWER_ONCE_H_
