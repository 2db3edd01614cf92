// WorkerProcess (worker_process.h): starting a worker, submitting requests
// and matching its replies; how its end is understood is in worker_end.cc.
#include "daemon/worker_process.h"

#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/error_reason.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/log_event.h"
#include "common/shm_transport.h"
#include "common/status_macros.h"
#include "common/worker_protocol.h"
#include "daemon/exception_status.h"
#include "daemon/metrics.h"
#include "daemon/profiles.h"
#include "daemon/worker_watcher.h"

namespace ffibroker {

void WorkerProcess::RunAll(Completions completions) {
  for (Completion& c : completions) {
    // A completion answers its own failures; one that throws anyway (out
    // of memory decoding a reply) must not end the daemon or keep the
    // completions after it from running. Its request is answered by the
    // AnswerOnce its chain carries, when `completions` is destroyed.
    try {
      c.done(std::move(c.result));
    } catch (...) {
      ExceptionStatus("in a worker reply's completion").IgnoreError();  // logged
    }
  }
}

absl::StatusOr<std::unique_ptr<WorkerProcess>> WorkerProcess::Spawn(
    SandboxPlan plan, absl::Time deadline, SandboxError* error,
    worker::v1::Hello* hello_out, WorkerWatcher* watcher) {
  if (watcher == nullptr) return absl::InternalError("a worker needs a watcher");
  ASSIGN_OR_RETURN(auto channel, SeqpacketTransport::Pair());
  std::unique_ptr<SeqpacketTransport> ours = std::move(channel.first);
  std::unique_ptr<SeqpacketTransport> theirs = std::move(channel.second);
  plan.channel_fd = theirs->fd();
  std::unique_ptr<ShmRegion> region;
  if (plan.ring_bytes > 0) {
    ASSIGN_OR_RETURN(region, ShmRegion::Create(plan.ring_bytes));
    plan.ring_fd = region->fd();
    plan.argv.push_back(absl::StrCat("--ring-fd=", kWorkerRingFd));
  }
  absl::StatusOr<SandboxedChild> child = SpawnSandboxed(plan, deadline, error);
  if (!child.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot start worker ", plan.executable, ": ", child.status().message()));
  }
  theirs.reset();
  std::unique_ptr<Transport> transport;
  if (region != nullptr) {
    region->CloseFd();  // the worker has its own; the mapping stays
    transport = std::make_unique<ShmTransport>(ShmTransport::End::kDaemon, std::move(region),
                                               std::move(ours));
  } else {
    transport = std::move(ours);
  }
  // Declared before the worker: its destructor may complete the handshake.
  absl::Notification answered;
  absl::StatusOr<worker::v1::WorkerToDaemon> hello = absl::UnknownError("no hello");
  std::unique_ptr<WorkerProcess> worker(
      new WorkerProcess(child->pid, std::move(child->pidfd), std::move(transport)));
  worker->uid_ = child->uid;
  worker->uid_in_namespace_ = child->uid_in_namespace;
  rusage self{};
  if (::getrusage(RUSAGE_SELF, &self) == 0 && self.ru_maxrss > 0) {
    worker->inherited_rss_kb_ = static_cast<uint64_t>(self.ru_maxrss);
  }
  {
    // The Hello is the answer to request 0, which no other request has.
    absl::MutexLock lock(&worker->mu_);
    worker->pending_.emplace(
        0, Pending{deadline, [&](absl::StatusOr<worker::v1::WorkerToDaemon> reply) {
                     hello = std::move(reply);
                     answered.Notify();
                   }});
  }
  worker->watcher_ = watcher;
  // From here on shutdown can see (and kill) the worker, even while it is
  // still starting or loading its library.
  absl::Status watched = watcher->Watch(worker.get());
  if (!watched.ok()) {
    worker->watcher_ = nullptr;
    worker.reset();  // kills it; fails the handshake
    return absl::UnavailableError(absl::StrCat("cannot start worker: ", watched.message()));
  }
  watcher->DeadlineAdded(deadline);
  answered.WaitForNotification();
  if (!hello.ok()) {
    return absl::UnavailableError(
        absl::StrCat("worker failed to start: ", worker->outcome().message));
  }
  if (!hello->has_hello() || hello->hello().protocol_version() != kWorkerProtocolVersion) {
    std::string why =
        hello->has_hello()
            ? absl::StrCat("speaks worker protocol v", hello->hello().protocol_version(),
                           ", the daemon needs v", kWorkerProtocolVersion)
            : "did not start with a hello";
    worker->Abandon(why);
    return absl::UnavailableError(absl::StrCat("worker failed to start: ", why));
  }
  *hello_out = hello->hello();
  return worker;
}

WorkerProcess::~WorkerProcess() {
  // Once forgotten, the watcher no longer reads the channel: we do.
  if (watcher_ != nullptr) watcher_->Forget(this);
  Completions out;
  {
    absl::MutexLock read(&read_mu_);
    KillAndReap(&out, /*owner_stops=*/true);
  }
  FailOutstanding(&out);
  RunAll(std::move(out));
}

void WorkerProcess::set_label(std::string label, std::string library) {
  absl::MutexLock lock(&mu_);
  label_ = std::move(label);
  library_ = std::move(library);
}

std::string WorkerProcess::label() const {
  absl::MutexLock lock(&mu_);
  return label_;
}

int WorkerProcess::outstanding() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(pending_.size());
}

void WorkerProcess::BindCallback(uint64_t id, std::shared_ptr<CallbackRoute> route) {
  absl::MutexLock lock(&mu_);
  BoundCallback& bound = callbacks_[id];
  if (bound.count++ == 0) bound.route = std::move(route);
}

void WorkerProcess::UnbindCallback(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = callbacks_.find(id);
  if (it != callbacks_.end() && --it->second.count <= 0) callbacks_.erase(it);
}

absl::Status WorkerProcess::Post(worker::v1::DaemonToWorker* message, absl::Time deadline) {
  (void)deadline;  // a worker that never takes it is ended by its call's deadline
  message->set_request_id(0);
  absl::Status sent;
  bool wants_room = false;
  {
    absl::MutexLock send(&send_mu_);
    bool dead;
    {
      absl::MutexLock lock(&mu_);
      dead = outcome_.kind != WorkerOutcome::Kind::kRunning || end_handled_;
    }
    if (dead) return OutcomeStatus();
    // Not capped by the backlog limit: an answer is what lets the busy
    // worker go on (and read its backlog); refused, it would wait forever.
    sent = Enqueue(*message, /*capped=*/false, &wants_room);
    if (!sent.ok() && !absl::IsUnavailable(sent) && !absl::IsResourceExhausted(sent)) {
      // Part of it may be on the channel: the worker cannot read on.
      Record(WorkerOutcome::Kind::kStopped, SIGKILL,
             absl::StrCat("stopped because the daemon failed to send it a callback's answer: ",
                          sent.message()));
      SignalKill();
    }
  }
  if (wants_room) watcher_->WantRoom(this);
  return sent;
}

absl::Status WorkerProcess::Enqueue(const google::protobuf::MessageLite& message, bool capped,
                                    bool* wants_room) {
  *wants_room = false;
  ASSIGN_OR_RETURN(std::vector<std::string> packets, channel_->Packets(message));
  uint64_t bytes = 0;
  for (const std::string& packet : packets) bytes += packet.size();
  if (capped && !backlog_.empty() && backlog_bytes_ + bytes > kMaxChannelBacklogBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the worker is busy and its channel already holds ", backlog_bytes_ >> 20,
        " MiB of requests it has not read (the limit is ", kMaxChannelBacklogBytes >> 20,
        " MiB); try again once it has answered some"));
  }
  const bool was_empty = backlog_.empty();
  for (std::string& packet : packets) {
    if (backlog_.empty()) {
      ASSIGN_OR_RETURN(bool sent, channel_->TrySendPacket(packet));
      if (sent) continue;
    }
    backlog_bytes_ += packet.size();
    backlog_.push_back(std::move(packet));
  }
  *wants_room = was_empty && !backlog_.empty();
  has_backlog_ = !backlog_.empty();
  return absl::OkStatus();
}

bool WorkerProcess::OnWritable() {
  absl::MutexLock send(&send_mu_);
  while (!backlog_.empty()) {
    absl::StatusOr<bool> sent = channel_->TrySendPacket(backlog_.front());
    if (!sent.ok()) {
      // Gone (its end fails what it had outstanding), or the socket failed.
      if (!absl::IsUnavailable(sent.status())) {
        Record(WorkerOutcome::Kind::kStopped, SIGKILL,
               absl::StrCat("stopped because the daemon failed to send it a request: ",
                            sent.status().message()));
        SignalKill();
      }
      backlog_.clear();
      backlog_bytes_ = 0;
      has_backlog_ = false;
      return false;
    }
    if (!*sent) return true;  // no room yet
    backlog_bytes_ -= backlog_.front().size();
    backlog_.pop_front();
  }
  has_backlog_ = false;
  return false;
}

void WorkerProcess::Submit(worker::v1::DaemonToWorker* request, absl::Time deadline,
                           ReplyCallback done) {
  uint64_t id = 0;
  bool dead;
  bool held = false;
  absl::Status sent;
  bool wants_room = false;
  {
    // Held from taking the id to the end of the send, so requests are
    // sent in the order of their sequence numbers.
    absl::MutexLock send(&send_mu_);
    {
      absl::MutexLock lock(&mu_);
      dead = end_handled_;
      if (!dead) {
        // Ending: it waits for the end (never sent, so it cannot run here).
        held = outcome_.kind != WorkerOutcome::Kind::kRunning;
        id = NextRequestId();
        pending_.emplace(id, Pending{deadline, std::move(done), next_sequence_++, held});
      }
    }
    if (!dead && !held) {
      request->set_request_id(id);
      watcher_->DeadlineAdded(deadline);
      sent = Enqueue(*request, /*capped=*/true, &wants_room);
    }
  }
  if (wants_room) watcher_->WantRoom(this);
  if (dead) {
    // Its end was handled after the caller chose it: it never ran here.
    done(WithReason(absl::UnavailableError(absl::StrCat(
                        "the worker had ended before this request reached it (worker ",
                        outcome().message, ")")),
                    kNotStartedReason));
    return;
  }
  if (held || sent.ok() || absl::IsUnavailable(sent)) return;  // its end fails the request
  if (absl::IsResourceExhausted(sent)) {
    // Nothing was sent: the worker is unharmed, only this request fails.
    ReplyCallback callback;
    {
      absl::MutexLock lock(&mu_);
      auto it = pending_.find(id);
      if (it == pending_.end()) return;  // already failed by the worker's end
      callback = std::move(it->second.done);
      pending_.erase(it);
    }
    callback(sent);
    return;
  }
  // The daemon's side failed (see Enqueue); part of the request may be on
  // the channel, so the worker cannot be trusted to read on.
  Record(WorkerOutcome::Kind::kStopped, SIGKILL,
         absl::StrCat("stopped because the daemon failed to send it a request: ",
                      sent.message()));
  SignalKill();
}

absl::StatusOr<worker::v1::WorkerToDaemon> WorkerProcess::Exchange(
    worker::v1::DaemonToWorker* request, absl::Time deadline) {
  absl::Notification answered;
  absl::StatusOr<worker::v1::WorkerToDaemon> reply = absl::UnknownError("no reply");
  Submit(request, deadline, [&](absl::StatusOr<worker::v1::WorkerToDaemon> r) {
    reply = std::move(r);
    answered.Notify();
  });
  answered.WaitForNotification();
  return reply;
}

absl::Time WorkerProcess::NextDeadline() const {
  absl::MutexLock lock(&mu_);
  if (outcome_.kind != WorkerOutcome::Kind::kRunning) return absl::InfiniteFuture();
  absl::Time next = fatal_grace_;
  for (const auto& [id, pending] : pending_) next = std::min(next, pending.deadline);
  return next;
}

void WorkerProcess::OnDeadline(absl::Time now) {
  std::optional<worker::v1::Fatal> lie;
  bool expired = false;
  bool hello = false;
  {
    absl::MutexLock lock(&mu_);
    if (outcome_.kind != WorkerOutcome::Kind::kRunning) return;
    for (const auto& [id, pending] : pending_) {
      if (pending.deadline <= now) {
        expired = true;
        hello = hello || id == 0;
      }
    }
    if (fatal_.has_value() && fatal_grace_ <= now) {
      lie.swap(fatal_);
      fatal_grace_ = absl::InfiniteFuture();
    }
  }
  if (lie.has_value()) {
    // The reporter ends the worker right after reporting: it lied.
    RecordContradictedFatal(*lie, "was still running a second later");
  }
  if (expired) {
    Record(WorkerOutcome::Kind::kTimedOut, SIGKILL,
           hello ? "did not say hello in time" : "killed because the call's deadline passed");
  }
  if (lie.has_value() || expired) SignalKill();
}

WorkerProcess::Completions WorkerProcess::OnReadable() {
  Completions out;
  absl::MutexLock read(&read_mu_);
  if (!channel_closed_) ReadChannel(/*ended=*/false, &out);
  read_again_ = !channel_closed_ && channel_->HasBuffered();
  return out;
}

WorkerProcess::Completions WorkerProcess::OnEnded() {
  Completions out;
  {
    absl::MutexLock read(&read_mu_);
    KillAndReap(&out);  // it has ended: reads what it sent, reaps, records how
  }
  {
    absl::MutexLock send(&send_mu_);  // what it never read goes now, not with the object
    backlog_.clear();
    backlog_bytes_ = 0;
    has_backlog_ = false;
  }
  bool stopped;
  int outstanding;
  absl::AnyInvocable<void()> hook;
  {
    absl::MutexLock lock(&mu_);
    if (end_handled_) return out;
    end_handled_ = true;
    hook = std::move(end_hook_);  // set_end_hook refuses one from now on
    stopped = outcome_.kind == WorkerOutcome::Kind::kStopped;
    outstanding = static_cast<int>(pending_.size());
  }
  if (!stopped) {
    const WorkerOutcome ended = outcome();
    LogFields fields;
    fields.Event("worker_ended").WorkerPid(pid_);
    {
      absl::MutexLock lock(&mu_);
      if (!library_.empty()) fields.Library(library_);
    }
    if (ended.kind == WorkerOutcome::Kind::kSignaled) {
      const char* abbrev = ::sigabbrev_np(ended.code);
      fields.Signal(abbrev ? absl::StrCat("SIG", abbrev) : absl::StrCat(ended.code));
    } else if (ended.kind == WorkerOutcome::Kind::kViolation && ended.code >= 0) {
      fields.Syscall(SyscallName(ended.code));
    }
    LOG_EVENT(LogLevel::kWarning, fields, "worker pid %d serving %s ended %s: %s", pid_, label(),
              outstanding == 0 ? "between calls"
                               : absl::StrCat("with ", outstanding, " requests outstanding"),
              ended.message);
  }
  FailOutstanding(&out);
  if (hook) {
    out.push_back({[hook = std::move(hook)](absl::StatusOr<worker::v1::WorkerToDaemon>) mutable {
                     hook();
                   },
                   absl::UnavailableError("ended")});
  }
  return out;
}

void WorkerProcess::FailOutstanding(Completions* out) {
  std::map<uint64_t, Pending> pending;
  {
    absl::MutexLock lock(&mu_);
    pending.swap(pending_);
    end_handled_ = true;
  }
  if (pending.empty()) return;
  absl::Status status = OutcomeStatus();
  absl::Status not_started = WithReason(
      absl::UnavailableError(absl::StrCat("the worker ended while running an earlier request, "
                                          "before starting this one (worker ",
                                          outcome().message, ")")),
      kNotStartedReason);
  // The oldest request it was sent is the one its end is about; those sent
  // later, and those held while it was ending, never started. They are
  // failed first and in the order sent (ids are random), so they reach its
  // successor in that order, before the failed call's answer frees its
  // calls-in-flight slot for a newer request.
  std::vector<Pending*> in_order;
  in_order.reserve(pending.size());
  for (auto& [id, p] : pending) in_order.push_back(&p);
  std::sort(in_order.begin(), in_order.end(),
            [](const Pending* a, const Pending* b) { return a->sequence < b->sequence; });
  Pending* about_it = nullptr;
  for (Pending* p : in_order) {
    if (about_it == nullptr && !p->held) {
      about_it = p;
    } else {
      out->push_back(Completion{std::move(p->done), not_started});
    }
  }
  if (about_it != nullptr) out->push_back(Completion{std::move(about_it->done), status});
}

void WorkerProcess::ReadChannel(bool ended, Completions* out) {
  // One message per readiness event while the worker runs (epoll is level
  // triggered and reports the rest again): a worker cannot keep the
  // watcher here, and the usual single reply costs one recvmsg, not a
  // second one that finds nothing. Once it has ended, what is queued is
  // finite and is read at once. A ring announces nothing more: it is read
  // until it says it is empty (which asks the worker for a wake-up), at
  // most kRingReadsPerEvent messages, and then the watcher comes back
  // (ReadAgain).
  // What an ended worker left is bounded too: a ring can hold hundreds of
  // thousands of tiny messages, which would keep the watcher from every
  // other worker.
  constexpr int kRingReadsPerEvent = 16;
  int after_end = 0;
  if (ended) {
    absl::MutexLock lock(&mu_);
    after_end = static_cast<int>(pending_.size()) + kMaxMessagesAfterEnd;
  }
  for (int messages = 0;
       ended || messages < 1 || (channel_->HasBuffered() && messages < kRingReadsPerEvent);
       ++messages) {
    if (ended && messages == after_end) {
      Violation(absl::StrCat("left more than ", after_end,
                             " messages unread when it ended (its requests and ",
                             kMaxMessagesAfterEnd, " events)"));
      channel_closed_ = true;
      return;
    }
    worker::v1::WorkerToDaemon message;
    absl::StatusOr<Transport::Available> read = channel_->ReceiveAvailable(&message);
    if (!read.ok()) {
      if (absl::IsDataLoss(read.status())) {
        Violation(absl::StrCat("sent a packet that is no message (", read.status().message(),
                               ")"));
      }
      channel_closed_ = true;  // nothing after it can be trusted
      return;
    }
    if (*read == Transport::Available::kNothing) return;
    if (*read == Transport::Available::kClosed) {
      channel_closed_ = true;
      return;
    }
    if (message.has_fatal()) {
      absl::MutexLock lock(&mu_);
      if (!fatal_.has_value()) {
        fatal_ = message.fatal();
        // The reporter ends the worker right after reporting.
        fatal_grace_ = absl::Now() + absl::Seconds(1);
        watcher_->DeadlineAdded(fatal_grace_);
      }
      continue;
    }
    if (message.has_callback_invoke()) {
      std::shared_ptr<CallbackRoute> route;
      {
        absl::MutexLock lock(&mu_);
        auto it = callbacks_.find(message.callback_invoke().callback_id());
        if (it != callbacks_.end() && message.request_id() == 0 && !fatal_.has_value()) {
          route = it->second.route;
        }
      }
      if (route == nullptr) {
        if (alive()) {
          Violation(absl::StrCat("invoked callback ", message.callback_invoke().callback_id(),
                                 ", which is not bound in it"));
        }
        channel_closed_ = true;
        return;
      }
      out->push_back(Completion{
          [route, self = weak_from_this()](
              absl::StatusOr<worker::v1::WorkerToDaemon> event) mutable {
            route->Invoked(std::move(self), std::move(*event->mutable_callback_invoke()));
          },
          std::move(message)});
      continue;
    }
    ReplyCallback done;
    bool dying = false;
    {
      absl::MutexLock lock(&mu_);
      // After a Fatal report the worker must end, not answer: its requests
      // wait for that end (or for the report to be found a lie).
      dying = fatal_.has_value();
      auto it = pending_.find(message.request_id());
      if (!dying && it != pending_.end() && outcome_.kind == WorkerOutcome::Kind::kRunning) {
        done = std::move(it->second.done);
        pending_.erase(it);
      }
    }
    if (dying) continue;
    if (!done) {
      if (alive()) {
        Violation(absl::StrCat("a reply carried request id ", message.request_id(),
                               ", which is not outstanding"));
      }
      channel_closed_ = true;
      return;
    }
    if (reply_hook_for_testing_) reply_hook_for_testing_();
    out->push_back(Completion{std::move(done), std::move(message)});
  }
}

uint64_t WorkerProcess::NextRequestId() {
  // Random, so a library cannot predict the id of a request it has not
  // seen (and forge its reply in advance); never 0 (the Hello's). Drawn
  // kRequestIdBatch at a time: one getrandom per batch, not per request.
  uint64_t id = 0;
  while (id == 0 || id == last_request_id_) {
    if (unused_request_ids_ == 0) {
      if (::getrandom(request_ids_, sizeof request_ids_, 0) ==
          static_cast<ssize_t>(sizeof request_ids_)) {
        unused_request_ids_ = kRequestIdBatch;
      } else {
        request_ids_[0] = last_request_id_ * 6364136223846793005u + 1;
        unused_request_ids_ = 1;
      }
    }
    id = request_ids_[--unused_request_ids_];
    request_ids_[unused_request_ids_] = 0;  // not kept once used
  }
  last_request_id_ = id;
  return id;
}

}  // namespace ffibroker
