#include "common/shm_transport.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace ffibroker {
namespace {

// Units Packets hands to TrySendPacket besides the socket's own packets
// (whose frame bytes are 'F', 'P' and 'C').
constexpr char kRingRecordUnit = 'R';
constexpr char kRingMarkerUnit = 'M';

// The worker spins this long for the next request when the last one came
// within it (a stream or a pipelining client), and not at all otherwise:
// on two cores a spinning worker takes the CPU the daemon needs to answer.
constexpr absl::Duration kMaxSpin = absl::Microseconds(30);

// How long a waiting worker sleeps before it looks at the socket (for the
// daemon's end) again; shorter while a watched descriptor must be seen.
constexpr absl::Duration kWorkerSleepSlice = absl::Seconds(1);
constexpr absl::Duration kWatchedSleepSlice = absl::Milliseconds(10);

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

ShmTransport::ShmTransport(End end, std::unique_ptr<ShmRegion> region,
                           std::unique_ptr<SeqpacketTransport> socket)
    : end_(end),
      region_(std::move(region)),
      socket_(std::move(socket)),
      out_(region_->control(end == End::kDaemon ? ShmRegion::kToWorker : ShmRegion::kToDaemon),
           region_->data(end == End::kDaemon ? ShmRegion::kToWorker : ShmRegion::kToDaemon),
           region_->ring_bytes(), static_cast<uint32_t>(kMaxWorkerMessageBytes)),
      in_(region_->control(end == End::kDaemon ? ShmRegion::kToDaemon : ShmRegion::kToWorker),
          region_->data(end == End::kDaemon ? ShmRegion::kToDaemon : ShmRegion::kToWorker),
          region_->ring_bytes(), static_cast<uint32_t>(kMaxWorkerMessageBytes)) {}

void ShmTransport::SendWake() {
  static const std::string kWake(1, kTransportWakeByte);
  // No room means the peer has packets to read anyway: it will look.
  (void)socket_->TrySendPacket(kWake);
}

void ShmTransport::WakePeerReader() {
  if (!out_.TakeReaderAsleep()) return;
  if (end_ == End::kDaemon) {
    out_.WakeReader();
  } else {
    SendWake();
  }
}

void ShmTransport::AfterConsume() {
  if (in_.TakeWriterWaiting()) {
    if (end_ == End::kDaemon) {
      in_.WakeWriter();
    } else {
      SendWake();
    }
  }
}

absl::Status ShmTransport::TakeRecord(google::protobuf::MessageLite* message) {
  if (!message->ParseFromArray(record_.data(), static_cast<int>(record_.size()))) {
    return absl::DataLossError(
        absl::StrCat("unparsable message of ", record_.size(), " bytes in the channel's ring"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ShmTransport::Packets(
    const google::protobuf::MessageLite& message) const {
  const size_t size = message.ByteSizeLong();
  if (size > kMaxMessageBytes) return MessageTooLarge(size);
  std::vector<std::string> units;
  if (size <= out_.max_record()) {
    units.emplace_back(1, kRingRecordUnit);
    if (!message.AppendToString(&units.back()) || units.back().size() != size + 1) {
      return absl::InternalError("could not serialize a channel message");
    }
    return units;
  }
  ASSIGN_OR_RETURN(units, socket_->Packets(message));
  units.insert(units.begin(), std::string(1, kRingMarkerUnit));
  return units;
}

absl::StatusOr<bool> ShmTransport::TrySendPacket(const std::string& packet) {
  if (packet.empty()) return absl::InternalError("an empty channel unit");
  if (packet[0] != kRingRecordUnit && packet[0] != kRingMarkerUnit) {
    room_on_readable_ = false;
    return socket_->TrySendPacket(packet);
  }
  const bool record = packet[0] == kRingRecordUnit;
  const char* bytes = record ? packet.data() + 1 : nullptr;
  const auto length = static_cast<uint32_t>(packet.size() - 1);
  ASSIGN_OR_RETURN(bool written, out_.TryWriteOrAskForRoom(bytes, length));
  room_on_readable_ = !written;
  if (written) WakePeerReader();
  return written;
}

absl::Status ShmTransport::Send(const google::protobuf::MessageLite& message,
                                absl::Time deadline) {
  deadline = std::min(deadline, absl::Now() + send_timeout_);
  const size_t size = message.ByteSizeLong();
  if (size > kMaxMessageBytes) return MessageTooLarge(size);
  const bool on_socket = size > out_.max_record();
  std::string bytes;
  if (!on_socket && (!message.SerializeToString(&bytes) || bytes.size() != size)) {
    return absl::InternalError("could not serialize a channel message");
  }
  const char* record = on_socket ? nullptr : bytes.data();
  const auto length = static_cast<uint32_t>(bytes.size());
  while (true) {
    ASSIGN_OR_RETURN(bool written, out_.TryWriteOrAskForRoom(record, length));
    if (written) break;
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          "the deadline passed waiting for room in the channel (the peer is not reading)");
    }
    if (end_ == End::kWorker) {
      out_.WaitForRoom(std::min(deadline - now, kWatchedSleepSlice));
      RETURN_IF_ERROR(CheckSocket(-1));
    } else {
      // The daemon sends with TrySendPacket; this blocking form is for
      // tests, and the worker's wake-ups cannot be told from its messages
      // without reading them.
      absl::SleepFor(absl::Microseconds(100));
    }
  }
  WakePeerReader();
  if (on_socket) return socket_->Send(message, deadline);
  return absl::OkStatus();
}

absl::StatusOr<Transport::Available> ShmTransport::ReadOne(
    google::protobuf::MessageLite* message, bool keep_partial) {
  bool announced = false;
  bool looked_again = false;
  while (true) {
    if (!on_socket_) {
      ASSIGN_OR_RETURN(ShmRing::Read read, in_.TryRead(&record_));
      if (read != ShmRing::Read::kEmpty) AfterConsume();
      if (read == ShmRing::Read::kRecord) {
        RETURN_IF_ERROR(TakeRecord(message));
        buffered_ = true;  // the ring may have more, and no wake-up was asked for
        return Available::kMessage;
      }
      if (read == ShmRing::Read::kMarker) {
        if (holding_) return TakeHeld(message);  // the marker of the message held
        on_socket_ = true;
        continue;
      }
      if (holding_) return TakeHeld(message);  // it came out of band
      if (end_ == End::kDaemon && !announced) {
        // Empty: ask for a wake-up, then look once more.
        in_.AnnounceReaderAsleep();
        announced = true;
        continue;
      }
    }
    // The socket: the message a marker announced; or, the ring being empty,
    // what the worker sends out of band (its fatal report, wake-ups, its
    // end), which is read after every record written before the ring was
    // looked at.
    ASSIGN_OR_RETURN(Available got, ReadSocket(message, keep_partial));
    if (got == Available::kMessage) {
      if (!on_socket_) {
        // A message sent behind a marker written after the ring was looked
        // at: the marker is there now (it is written before the message
        // is sent), and is this message's.
        ASSIGN_OR_RETURN(bool marker, in_.TakeMarkerIfFirst());
        if (marker) {
          AfterConsume();
        } else if (in_.HasData()) {
          // Records written before its marker (or before it, if it came
          // out of band) are in the ring: it waits until they are read.
          if (!message->SerializeToString(&held_)) {
            return absl::InternalError("could not keep a channel message");
          }
          holding_ = true;
          continue;
        }
      }
      on_socket_ = false;
      buffered_ = true;
      return got;
    }
    if (on_socket_ && got == Available::kClosed) {
      on_socket_ = false;
      return absl::DataLossError("the channel closed before the message its ring announced");
    }
    // Once more at most (a worker moving its position back and forth
    // cannot keep the reader here):
    //  - the wake-up just read (and dropped) may be the one for a record
    //    written since the ring was looked at; nothing else would announce
    //    it;
    //  - records written before the worker ended are read before its end.
    if (!on_socket_ && got != Available::kMessage && !looked_again && in_.HasData()) {
      looked_again = true;
      continue;
    }
    buffered_ = false;
    return got;
  }
}

absl::StatusOr<Transport::Available> ShmTransport::TakeHeld(
    google::protobuf::MessageLite* message) {
  holding_ = false;
  const bool parsed = message->ParseFromString(held_);
  std::string().swap(held_);
  if (!parsed) return absl::InternalError("could not restore a channel message");
  buffered_ = true;
  return Available::kMessage;
}

absl::StatusOr<Transport::Available> ShmTransport::ReadSocket(
    google::protobuf::MessageLite* message, bool keep_partial) {
  if (keep_partial) return socket_->ReceiveAvailable(message);
  ASSIGN_OR_RETURN(bool whole, socket_->ReceiveWaiting(message));
  return whole ? Available::kMessage : Available::kNothing;
}

absl::StatusOr<bool> ShmTransport::ReceiveWaiting(google::protobuf::MessageLite* message) {
  ASSIGN_OR_RETURN(Available got, ReadOne(message, /*keep_partial=*/false));
  return got == Available::kMessage;
}

absl::StatusOr<Transport::Available> ShmTransport::ReceiveAvailable(
    google::protobuf::MessageLite* message) {
  return ReadOne(message, /*keep_partial=*/true);
}

absl::Status ShmTransport::CheckSocket(int watch_fd) {
  pollfd fds[2] = {{socket_->fd(), 0, 0}, {watch_fd, POLLIN, 0}};
  int n;
  do {
    n = ::poll(fds, watch_fd >= 0 ? 2 : 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus("poll on channel", errno);
  if (fds[0].revents & (POLLHUP | POLLERR)) return absl::UnavailableError("channel closed by peer");
  if (watch_fd >= 0 && fds[1].revents != 0) {
    return absl::AbortedError("watched descriptor became ready");
  }
  return absl::OkStatus();
}

absl::Status ShmTransport::WaitForData(absl::Time deadline, int watch_fd) {
  const absl::Time start = absl::Now();
  if (spin_ > absl::ZeroDuration()) {
    for (int i = 0; !in_.HasData(); ++i) {
      CpuRelax();
      if (i % 64 == 63 && absl::Now() - start >= spin_) break;
    }
  }
  if (!in_.HasData()) {
    in_.AnnounceReaderAsleep();
    while (!in_.HasData()) {
      const absl::Time now = absl::Now();
      if (now >= deadline) return absl::DeadlineExceededError("deadline passed waiting for the channel");
      in_.WaitForData(
          std::min(deadline - now, watch_fd >= 0 ? kWatchedSleepSlice : kWorkerSleepSlice));
      if (!in_.HasData()) RETURN_IF_ERROR(CheckSocket(watch_fd));
    }
    in_.TakeReaderAsleep();  // awake again: the daemon need not wake us
  }
  spin_ = absl::Now() - start <= kMaxSpin ? kMaxSpin : absl::ZeroDuration();
  return absl::OkStatus();
}

absl::Status ShmTransport::Receive(google::protobuf::MessageLite* message, absl::Time deadline,
                                   int watch_fd) {
  if (end_ == End::kDaemon) {
    // The daemon's end waits in poll for the worker's wake-up packets (the
    // real daemon reads with ReceiveAvailable from its epoll loop).
    while (true) {
      ASSIGN_OR_RETURN(Available got, ReadOne(message, /*keep_partial=*/true));
      if (got == Available::kMessage) return absl::OkStatus();
      if (got == Available::kClosed) return absl::UnavailableError("channel closed by peer");
      pollfd fds[2] = {{socket_->fd(), POLLIN, 0}, {watch_fd, POLLIN, 0}};
      const int timeout_ms = PollTimeout(deadline);
      if (timeout_ms == 0) {
        return absl::DeadlineExceededError("deadline passed waiting for the channel");
      }
      if (::poll(fds, watch_fd >= 0 ? 2 : 1, timeout_ms) < 0 && errno != EINTR) {
        return ErrnoStatus("poll on channel", errno);
      }
      if (fds[0].revents == 0 && watch_fd >= 0 && fds[1].revents != 0) {
        return absl::AbortedError("watched descriptor became ready");
      }
    }
  }
  while (true) {
    if (on_socket_) {
      absl::Status received = socket_->Receive(message, deadline, watch_fd);
      if (received.ok()) on_socket_ = false;
      return received;
    }
    ASSIGN_OR_RETURN(ShmRing::Read read, in_.TryRead(&record_));
    if (read != ShmRing::Read::kEmpty) AfterConsume();
    if (read == ShmRing::Read::kRecord) return TakeRecord(message);
    if (read == ShmRing::Read::kMarker) {
      on_socket_ = true;
      continue;
    }
    RETURN_IF_ERROR(WaitForData(deadline, watch_fd));
  }
}

}  // namespace ffibroker
