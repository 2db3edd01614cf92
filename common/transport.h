// The daemon<->worker message transport.
//
// Transport is the one seam between the call engine and how bytes move; the
// first implementation frames one protobuf message per SOCK_SEQPACKET packet
// (a frame byte 'F' followed by the serialized message)
// over a socketpair. (A shared-memory ring can replace it without touching
// callers.) Not thread-safe: one exchange at a time per transport.
//
//   ASSIGN_OR_RETURN(auto pair, SeqpacketTransport::Pair());
//   pair.first->Send(request);
//   RETURN_IF_ERROR(pair.second->Receive(&reply, absl::InfiniteFuture(), -1));
#ifndef FFIBROKER_COMMON_TRANSPORT_H_
#define FFIBROKER_COMMON_TRANSPORT_H_

#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "google/protobuf/message_lite.h"

namespace ffibroker {

// The first byte of every packet (see SeqpacketTransport::Send). Exposed for
// the worker's fatal-signal reporter, which writes a packet by hand.
inline constexpr char kTransportFrameByte = 'F';

// Largest message either side accepts. Bigger packets are rejected whole.
inline constexpr size_t kMaxMessageBytes = 1 << 20;

class Transport {
 public:
  virtual ~Transport() = default;

  // Sends one message, waiting at most until `deadline` for room in the
  // channel. UNAVAILABLE if the peer is gone, INVALID_ARGUMENT if the
  // message exceeds kMaxMessageBytes, DEADLINE_EXCEEDED if the peer did not
  // make room in time (it is not reading).
  virtual absl::Status Send(const google::protobuf::MessageLite& message,
                            absl::Time deadline) = 0;
  // Sends without a deadline (for the worker, whose daemon always reads).
  absl::Status Send(const google::protobuf::MessageLite& message) {
    return Send(message, absl::InfiniteFuture());
  }

  // Waits for one message and parses it into `*message`. Returns
  //   OK                 a message arrived and parsed;
  //   UNAVAILABLE        the peer closed the channel;
  //   DEADLINE_EXCEEDED  `deadline` passed first;
  //   ABORTED            `watch_fd` (if >= 0) became readable first;
  //   DATA_LOSS          the packet was too large, truncated or unparsable.
  virtual absl::Status Receive(google::protobuf::MessageLite* message,
                               absl::Time deadline, int watch_fd) = 0;

  // The descriptor a process must keep to stay connected (for handing the
  // worker's end across exec).
  virtual int fd() const = 0;
};

class SeqpacketTransport : public Transport {
 public:
  // Adopts a connected SOCK_SEQPACKET socket.
  explicit SeqpacketTransport(UniqueFd fd) : fd_(std::move(fd)) {}

  // A connected pair (both ends close-on-exec).
  static absl::StatusOr<std::pair<std::unique_ptr<SeqpacketTransport>,
                                  std::unique_ptr<SeqpacketTransport>>>
  Pair();

  using Transport::Send;
  absl::Status Send(const google::protobuf::MessageLite& message,
                    absl::Time deadline) override;
  absl::Status Receive(google::protobuf::MessageLite* message,
                       absl::Time deadline, int watch_fd) override;
  int fd() const override { return fd_.get(); }

 private:
  UniqueFd fd_;
  // Receive buffer, allocated on first use and never initialized, so only
  // the pages a message touches are committed.
  std::unique_ptr<char[]> buffer_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_TRANSPORT_H_
