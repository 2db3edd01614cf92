// Constants of the internal daemon<->worker protocol (see
// proto/ffibroker/worker/v1/worker.proto for the messages and their order).
#ifndef FFIBROKER_COMMON_WORKER_PROTOCOL_H_
#define FFIBROKER_COMMON_WORKER_PROTOCOL_H_

namespace ffibroker {

// Bumped whenever the meaning of a worker message changes. The daemon
// refuses a worker whose Hello carries another version.
inline constexpr unsigned kWorkerProtocolVersion = 3;

// The descriptor number of the channel in the worker process.
inline constexpr int kWorkerChannelFd = 3;

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_WORKER_PROTOCOL_H_
