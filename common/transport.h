// The daemon<->worker message transport.
//
// Transport is the one seam between the call engine and how bytes move; the
// first implementation sends protobuf messages over a SOCK_SEQPACKET
// socketpair. (A shared-memory ring can replace it without touching
// callers.) Not thread-safe: one exchange at a time per transport.
//
// Framing: a message of at most kChannelPacketBytes - 1 bytes is one
// packet, the frame byte 'F' followed by the serialized message. A larger
// one (up to kMaxWorkerMessageBytes, common/limits.h) is fragmented, since
// one packet may not exceed the socket's send buffer (which
// net.core.wmem_max caps): a packet 'P' + the total length (8 bytes,
// little-endian) + the first bytes, then packets 'C' + the next bytes until
// the total is reached. An 'F' packet between fragments abandons the
// partial message (the worker's fatal-signal reporter writes one by hand);
// any other deviation is DATA_LOSS. A one-byte 'K' packet (a wake-up, see
// kTransportWakeByte) may come between any two packets and is skipped.
//
//   ASSIGN_OR_RETURN(auto pair, SeqpacketTransport::Pair());
//   pair.first->Send(request);
//   RETURN_IF_ERROR(pair.second->Receive(&reply, absl::InfiniteFuture(), -1));
#ifndef FFIBROKER_COMMON_TRANSPORT_H_
#define FFIBROKER_COMMON_TRANSPORT_H_

#include <memory>
#include <string>
#include <vector>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/limits.h"
#include "common/unique_fd.h"
#include "google/protobuf/message_lite.h"

namespace ffibroker {

// The first byte of every packet (see SeqpacketTransport::Send). Exposed for
// the worker's fatal-signal reporter, which writes a packet by hand.
inline constexpr char kTransportFrameByte = 'F';

// Frame bytes of a fragmented message's first and following packets.
inline constexpr char kTransportFirstFragmentByte = 'P';
inline constexpr char kTransportNextFragmentByte = 'C';

// A one-byte packet that carries no message: a wake-up (ShmTransport's
// worker end sends them; every receiver skips them).
inline constexpr char kTransportWakeByte = 'K';

// Largest message either side accepts (common/limits.h).
inline constexpr size_t kMaxMessageBytes = kMaxWorkerMessageBytes;

// How long Send waits, in total, for the peer to make room for a message.
inline constexpr absl::Duration kChannelSendTimeout = absl::Seconds(10);

// RESOURCE_EXHAUSTED for a message of `size` bytes, over kMaxMessageBytes.
absl::Status MessageTooLarge(size_t size);

// Milliseconds until `deadline` for poll(): -1 for none, at least 1 so a
// sub-millisecond remainder is never a busy loop; 0 if it has passed.
int PollTimeout(absl::Time deadline);

class Transport {
 public:
  virtual ~Transport() = default;

  // Sends one message, waiting at most until `deadline` (and at most
  // kChannelSendTimeout) for the peer to take it. UNAVAILABLE if the peer
  // is gone; RESOURCE_EXHAUSTED (nothing sent) if the message exceeds
  // kMaxMessageBytes; DEADLINE_EXCEEDED if the peer did not make room in
  // time (it is not reading); INTERNAL for a local failure (serialization,
  // a socket error). After DEADLINE_EXCEEDED or INTERNAL part of a message
  // may have been sent: the channel must be abandoned.
  virtual absl::Status Send(const google::protobuf::MessageLite& message,
                            absl::Time deadline) = 0;
  // Sends with only kChannelSendTimeout as the bound (for the worker, whose
  // daemon always reads).
  absl::Status Send(const google::protobuf::MessageLite& message) {
    return Send(message, absl::InfiniteFuture());
  }

  // For a sender driven by readiness events (the daemon, which must never
  // wait for a worker): `message` framed into the packets Send sends, each
  // whole and in order (RESOURCE_EXHAUSTED past kMaxMessageBytes, INTERNAL
  // if it cannot be serialized), and one packet sent without waiting:
  // true if sent, false if the channel has no room now (send it again
  // once fd() is writable). UNAVAILABLE if the peer is gone; INTERNAL for
  // a socket error.
  virtual absl::StatusOr<std::vector<std::string>> Packets(
      const google::protobuf::MessageLite& message) const = 0;
  virtual absl::StatusOr<bool> TrySendPacket(const std::string& packet) = 0;

  // Waits for one message and parses it into `*message`. Returns
  //   OK                 a message arrived and parsed;
  //   UNAVAILABLE        the peer closed the channel;
  //   DEADLINE_EXCEEDED  `deadline` passed first;
  //   ABORTED            `watch_fd` (if >= 0) became readable first;
  //   DATA_LOSS          a packet was too large, unframed, out of order,
  //                      or the message unparsable.
  // `deadline` and `watch_fd` bound every wait, also between fragments.
  virtual absl::Status Receive(google::protobuf::MessageLite* message,
                               absl::Time deadline, int watch_fd) = 0;

  // Reads what is already waiting, never waiting, for a channel that
  // should be silent (an idle worker's, or a dead one's). Returns
  //   true               a whole message was read into `*message`;
  //   false              no packet is waiting (whether or not the peer
  //                      closed the channel);
  //   DATA_LOSS          a packet arrived that is not a whole message: any
  //                      that Receive rejects, a zero-length packet (which
  //                      Receive cannot tell from a closed peer), or the
  //                      start of a fragmented message whose rest is not
  //                      waiting (the partial message is dropped, so a
  //                      later Receive starts clean).
  virtual absl::StatusOr<bool> ReceiveWaiting(google::protobuf::MessageLite* message) = 0;

  // For a reader driven by readiness events (the daemon's supervisor):
  // reads what is waiting, never waiting, and keeps the part of a
  // fragmented message received so far for the next call. Returns
  //   kMessage   a whole message was read into `*message`;
  //   kNothing   no whole message is waiting (yet);
  //   kClosed    the peer closed the channel (nothing more will come);
  //   DATA_LOSS  a packet no whole message can be made of (as
  //              ReceiveWaiting; a partial message cut off by the peer's
  //              end included).
  enum class Available { kMessage, kNothing, kClosed };
  virtual absl::StatusOr<Available> ReceiveAvailable(google::protobuf::MessageLite* message) = 0;

  // The descriptor a process must keep to stay connected (for handing the
  // worker's end across exec).
  virtual int fd() const = 0;

  // For the event-driven reader: true if, after a message, more may be
  // waiting that no readiness of fd() will announce (a ring): read again
  // until ReceiveAvailable says kNothing.
  virtual bool HasBuffered() const { return false; }
  // For the event-driven sender: true if the last TrySendPacket that found
  // no room waits for fd() to become readable (the peer's wake-up), not
  // writable.
  virtual bool RoomOnReadable() const { return false; }
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
  absl::StatusOr<std::vector<std::string>> Packets(
      const google::protobuf::MessageLite& message) const override;
  absl::StatusOr<bool> TrySendPacket(const std::string& packet) override;
  absl::Status Receive(google::protobuf::MessageLite* message,
                       absl::Time deadline, int watch_fd) override;
  // Tells a zero-length packet from a closed peer by the credentials the
  // kernel attaches to every packet (SO_PASSCRED, set on first use).
  absl::StatusOr<bool> ReceiveWaiting(google::protobuf::MessageLite* message) override;
  absl::StatusOr<Available> ReceiveAvailable(google::protobuf::MessageLite* message) override;
  int fd() const override { return fd_.get(); }

  // For tests: how long Send waits for room (default kChannelSendTimeout).
  void set_send_timeout(absl::Duration timeout) { send_timeout_ = timeout; }

 private:
  // Sends one packet, waiting for room until `deadline`.
  absl::Status SendPacket(const std::string& packet, absl::Time deadline);
  // Waits until a packet can be read, `deadline` passes or `watch_fd` is
  // ready (see Receive).
  absl::Status WaitReadable(absl::Time deadline, int watch_fd);
  // Takes the `size`-byte packet in packet_: true once it completes a
  // message (parsed into `*message`), false if more fragments must follow;
  // DATA_LOSS (with no partial message kept) for a bad packet.
  absl::StatusOr<bool> TakePacket(size_t size, google::protobuf::MessageLite* message);
  void DropPartial();
  // ReceiveWaiting and ReceiveAvailable: `keep_partial` keeps a fragmented
  // message whose rest is not waiting yet.
  absl::StatusOr<Available> ReadWaiting(google::protobuf::MessageLite* message, bool keep_partial);

  UniqueFd fd_;
  absl::Duration send_timeout_ = kChannelSendTimeout;
  // One packet, allocated on first use and never initialized.
  std::unique_ptr<char[]> packet_;
  // A fragmented message being received: its bytes so far and its total.
  std::string partial_;
  uint64_t partial_total_ = 0;
  bool passcred_ = false;  // SO_PASSCRED is set (see ReceiveWaiting)
};

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_TRANSPORT_H_
