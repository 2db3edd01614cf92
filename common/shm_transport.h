// ShmTransport: the daemon<->worker channel through shared memory.
//
// Messages travel through the two rings of a ShmRegion (common/shm_ring.h);
// the SOCK_SEQPACKET socket stays for what the rings do not carry:
//   - a message too large for a ring (the ring carries a marker, the
//     socket the message, so order is kept);
//   - the worker's fatal-signal report, written by hand on the socket;
//   - the peer's end (the socket closes when the worker dies);
//   - the worker's wake-ups of the daemon: a one-byte packet
//     (kTransportWakeByte), since the daemon waits in epoll and a futex
//     cannot be polled.
// The worker waits for the daemon on a futex in the ring, after a short
// spin when requests have been coming close together; the daemon wakes it
// with FUTEX_WAKE. Neither side sends a wake-up the other does not need
// (each announces, in the ring, that it is about to sleep).
//
// The worker needs no system call beyond what every profile allows
// (futex; sendto and recvfrom on the channel): the region is mapped before
// lockdown. Everything read from a ring is as untrusted as a packet: see
// shm_ring.h.
//
// Like SeqpacketTransport, one sender and one receiver may use it at once.
//
//   ASSIGN_OR_RETURN(auto region, ShmRegion::Create(kDefaultRingBytes));
//   ShmTransport daemon_end(ShmTransport::End::kDaemon, std::move(region), std::move(socket));
#ifndef FFIBROKER_COMMON_SHM_TRANSPORT_H_
#define FFIBROKER_COMMON_SHM_TRANSPORT_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/shm_ring.h"
#include "common/transport.h"

namespace ffibroker {

class ShmTransport : public Transport {
 public:
  enum class End { kDaemon, kWorker };
  ShmTransport(End end, std::unique_ptr<ShmRegion> region,
               std::unique_ptr<SeqpacketTransport> socket);
  ~ShmTransport() override = default;

  using Transport::Send;
  absl::Status Send(const google::protobuf::MessageLite& message, absl::Time deadline) override;
  // Units for TrySendPacket: a ring record, a marker, or a socket packet.
  absl::StatusOr<std::vector<std::string>> Packets(
      const google::protobuf::MessageLite& message) const override;
  absl::StatusOr<bool> TrySendPacket(const std::string& packet) override;
  absl::Status Receive(google::protobuf::MessageLite* message, absl::Time deadline,
                       int watch_fd) override;
  absl::StatusOr<bool> ReceiveWaiting(google::protobuf::MessageLite* message) override;
  absl::StatusOr<Available> ReceiveAvailable(google::protobuf::MessageLite* message) override;
  int fd() const override { return socket_->fd(); }
  bool HasBuffered() const override { return buffered_; }
  bool RoomOnReadable() const override { return room_on_readable_.load(); }

  // For tests: how long Send waits for room (default kChannelSendTimeout).
  void set_send_timeout(absl::Duration timeout) {
    send_timeout_ = timeout;
    socket_->set_send_timeout(timeout);
  }

 private:
  // The next message, never waiting (see ReceiveAvailable).
  absl::StatusOr<Available> ReadOne(google::protobuf::MessageLite* message, bool keep_partial);
  // After a record or marker was read: wakes a producer waiting for room.
  void AfterConsume();
  // The socket's next message, never waiting (ReceiveAvailable or
  // ReceiveWaiting).
  absl::StatusOr<Available> ReadSocket(google::protobuf::MessageLite* message, bool keep_partial);
  // The socket message held back behind ring records (holding_).
  absl::StatusOr<Available> TakeHeld(google::protobuf::MessageLite* message);
  // Parses the record just read.
  absl::Status TakeRecord(google::protobuf::MessageLite* message);
  // After writing: wakes the peer if it announced it sleeps.
  void WakePeerReader();
  // Waits (the worker's end: spin, then futex) for data in the incoming ring.
  absl::Status WaitForData(absl::Time deadline, int watch_fd);
  // The peer's end, or `watch_fd`, while the worker's end waited.
  absl::Status CheckSocket(int watch_fd);
  void SendWake();

  const End end_;
  std::unique_ptr<ShmRegion> region_;
  std::unique_ptr<SeqpacketTransport> socket_;
  ShmRing out_;
  ShmRing in_;
  std::string record_;          // the last record read (the receiver's)
  bool on_socket_ = false;      // a marker said the next message is on the socket
  // A socket message read while the ring still held records written before
  // its marker: serialized here until they are read (the daemon's end).
  std::string held_;
  bool holding_ = false;
  bool buffered_ = false;       // more may be in the ring with no wake-up to come
  std::atomic<bool> room_on_readable_{false};  // the sender waits for the ring
  absl::Duration spin_ = absl::ZeroDuration();  // the worker's next spin
  absl::Duration send_timeout_ = kChannelSendTimeout;
};

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_SHM_TRANSPORT_H_
