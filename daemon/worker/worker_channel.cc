#include "daemon/worker/worker_channel.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/limits.h"

namespace ffibroker {

absl::Status WorkerChannel::Send(const worker::v1::WorkerToDaemon& message) {
  std::lock_guard<std::mutex> lock(send_mu_);
  return transport_->Send(message);
}

absl::StatusOr<worker::v1::DaemonToWorker> WorkerChannel::NextRequest() { return Next(0); }

uint64_t WorkerChannel::Expect() {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t id = next_invocation_++;
  if (id == 0) id = next_invocation_++;  // after 2^64 invocations
  inboxes_[id];
  return id;
}

absl::StatusOr<worker::v1::DaemonToWorker> WorkerChannel::NextFor(uint64_t id) {
  return Next(id);
}

void WorkerChannel::Forget(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (id != 0) inboxes_.erase(id);
}

void WorkerChannel::Route(worker::v1::DaemonToWorker message) {
  uint64_t owner = message.within_invocation();
  if (message.has_callback_answer()) owner = message.callback_answer().invocation_id();
  auto it = inboxes_.find(owner);
  if (owner != 0 && it == inboxes_.end()) {
    if (message.has_callback_answer()) return;  // for no outstanding invocation: dropped
    worker::v1::WorkerToDaemon error;
    error.set_request_id(message.request_id());
    error.mutable_error()->set_code(worker::v1::Error::CODE_BAD_REQUEST);
    error.mutable_error()->set_message(absl::StrCat(
        "the request names callback invocation ", owner,
        " (within_invocation), which is not outstanding in this worker"));
    strays_.push_back(std::move(error));
    return;
  }
  if (it->second.size() >= kMaxWorkerQueuedRequests) {
    failed_ = absl::ResourceExhaustedError(absl::StrCat(
        "the daemon sent more than ", kMaxWorkerQueuedRequests,
        " requests the worker could not run yet"));
    return;
  }
  it->second.push_back(std::move(message));
}

absl::StatusOr<worker::v1::DaemonToWorker> WorkerChannel::Next(uint64_t owner) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    auto it = inboxes_.find(owner);
    if (it != inboxes_.end() && !it->second.empty()) {
      worker::v1::DaemonToWorker message = std::move(it->second.front());
      it->second.pop_front();
      return message;
    }
    if (!failed_.ok()) return failed_;
    if (reading_) {
      changed_.wait(lock);
      continue;
    }
    // Lead: read one message without the lock, route it, wake the others
    // to look at their inboxes (one of them may read next).
    reading_ = true;
    worker::v1::DaemonToWorker message;
    lock.unlock();
    absl::Status status = transport_->Receive(&message, absl::InfiniteFuture(), -1);
    lock.lock();
    reading_ = false;
    if (status.ok()) {
      Route(std::move(message));
    } else {
      failed_ = status;
    }
    changed_.notify_all();
    while (!strays_.empty()) {
      worker::v1::WorkerToDaemon error = std::move(strays_.front());
      strays_.pop_front();
      lock.unlock();
      absl::Status sent = Send(error);
      lock.lock();
      if (!sent.ok() && failed_.ok()) failed_ = sent;
    }
  }
}

}  // namespace ffibroker
