// FakeDaemon: the daemon's end of one real ffibroker-worker's channel, for
// worker-level callback tests (no WorkerWatcher, which does not relay
// callbacks: the test plays the daemon and the client).
//
// Spawns FFIBROKER_WORKER_PATH with its channel on fd 3 (no namespaces; the
// worker's own lockdown with a real profile), opens a library and drives
// requests, answering CallbackInvoke events with a handler.
//
// Not thread-safe.
//
//   auto d = FakeDaemon::Start();
//   ASSERT_TRUE(d->Open(lib, {"i32 cb_apply(fn(i32 x) -> i32 f, i32 x)"}, "strict", 4).ok());
//   auto reply = d->Run(d->Call(0, {CallbackIdArg(1), I32(5)}), handler);
#ifndef FFIBROKER_TESTS_CALLBACKS_FAKE_DAEMON_H_
#define FFIBROKER_TESTS_CALLBACKS_FAKE_DAEMON_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/transport.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

class FakeDaemon {
 public:
  // The answer's value bytes for one invocation; may run nested requests.
  using Handler = std::function<std::string(const worker::v1::CallbackInvoke&)>;

  static absl::StatusOr<std::unique_ptr<FakeDaemon>> Start();
  ~FakeDaemon();  // closes the channel, kills and reaps the worker

  // Opens `library` with `declarations` (the class Point {f64 x; f64 y;}
  // is registered), the named profile's real filters and `closures`
  // callback closures. The Opened or Error reply.
  absl::StatusOr<worker::v1::WorkerToDaemon> Open(const std::string& library,
                                                  const std::vector<std::string>& declarations,
                                                  const std::string& profile, uint32_t closures);

  // A Call request of symbol `index` (a fresh request id).
  worker::v1::DaemonToWorker Call(uint32_t index, std::vector<std::string> args,
                                  std::vector<uint64_t> persistent = {});

  // Sends `request` and returns its reply, answering every CallbackInvoke
  // that arrives meanwhile with `handler` (which may Run nested requests).
  // An invocation for another handler is an error. A Fatal report is
  // returned as the reply.
  absl::StatusOr<worker::v1::WorkerToDaemon> Run(worker::v1::DaemonToWorker request,
                                                 const Handler& handler);

  absl::Status Send(const worker::v1::DaemonToWorker& request);
  absl::Status Receive(worker::v1::WorkerToDaemon* message);
  absl::Status Answer(uint64_t invocation_id, const std::string& value);

  // Waits for the worker to end; its wait status.
  int Wait();
  pid_t pid() const { return pid_; }

 private:
  FakeDaemon(pid_t pid, std::unique_ptr<Transport> channel)
      : pid_(pid), channel_(std::move(channel)) {}
  pid_t pid_;
  bool reaped_ = false;
  int status_ = 0;
  std::unique_ptr<Transport> channel_;
};

// Native encodings of small values.
std::string I32(int32_t v);
std::string U64(uint64_t v);
std::string F64(double v);
int32_t AsI32(const std::string& bytes);
double AsF64(const std::string& bytes);

}  // namespace ffibroker

#endif  // FFIBROKER_TESTS_CALLBACKS_FAKE_DAEMON_H_
