// RequestServer: runs one daemon request in the worker and makes its reply.
//
// The worker's main loop (main.cc) takes requests from the WorkerChannel
// and serves them here one after the other; a thread waiting for a
// callback's answer serves the nested requests of its invocation here too
// (daemon/worker/callback_relay.h). Open is served once, by the main loop:
// it applies the lockdown around loading (rlimits, Landlock, the loading
// filter, dlopen and the callback closures, then the profile's filter).
//
// Thread-safe after Open (CallEngine is); Open itself runs before any other
// thread of ours exists.
//
//   RequestServer server(&channel, layers);
//   worker::v1::WorkerToDaemon reply = server.Serve(request);
//   server.SendReply(request.request_id(), std::move(reply));
#ifndef FFIBROKER_DAEMON_WORKER_REQUEST_SERVER_H_
#define FFIBROKER_DAEMON_WORKER_REQUEST_SERVER_H_

#include <atomic>
#include <memory>
#include <optional>

#include "daemon/worker/call_engine.h"
#include "daemon/worker/callback_relay.h"
#include "daemon/worker/worker_channel.h"
#include "ffibroker/v1/confinement.pb.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

// Ends the worker at once with `code`. After lockdown nothing may run on the
// way out (atexit handlers, static and library destructors, stdio flushing
// could make syscalls the profile forbids and be reported as a violation),
// so the worker always leaves with _exit.
[[noreturn]] void LeaveWorker(int code);

class RequestServer {
 public:
  // `channel` must outlive the server; `layers` are the early layers the
  // Hello reported (Open adds the rest).
  RequestServer(WorkerChannel* channel, v1::WorkerLayers layers);
  RequestServer(const RequestServer&) = delete;
  RequestServer& operator=(const RequestServer&) = delete;

  // Runs `request` on the calling thread and returns its reply, with the
  // request's id. A request the worker cannot serve (no library opened, a
  // second Open, a malformed call) gets Error CODE_BAD_REQUEST. If the
  // library ends the thread (pthread_exit), reports it and exits.
  worker::v1::WorkerToDaemon Serve(const worker::v1::DaemonToWorker& request);

  // Sends `reply`; one too large for the channel is replaced by an Error
  // saying so. Exits the worker if the channel fails.
  void SendReply(worker::v1::WorkerToDaemon reply);

  // The opened library, or null before Open.
  CallEngine* engine() const { return engine_.load(std::memory_order_acquire); }

 private:
  worker::v1::WorkerToDaemon ServeOpen(const worker::v1::Open& open);

  WorkerChannel* const channel_;
  v1::WorkerLayers layers_;
  CallbackRelay relay_;
  std::atomic<bool> opened_once_{false};
  // Set by a Prestart (main loop only, before Open): the lockdown applied
  // before the library was known.
  std::optional<worker::v1::Lockdown> prestarted_;
  std::unique_ptr<CallEngine> owned_engine_;
  std::atomic<CallEngine*> engine_{nullptr};
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_REQUEST_SERVER_H_
