#include "common/transport.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/checked_math.h"
#include "common/status_macros.h"

namespace ffibroker {
namespace {

// Wake-up packets ReceiveAvailable skips before it lets its caller go, and
// ReceiveWaiting before it gives up on the peer.
constexpr int kWakesPerRead = 64;
constexpr int kMaxWakesInARow = 4096;

// Bytes of a fragmented message's first-packet header: frame byte + total.
constexpr size_t kFirstHeaderBytes = 1 + sizeof(uint64_t);

}  // namespace

int PollTimeout(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1 << 30));
}

absl::Status MessageTooLarge(size_t size) {
  return absl::ResourceExhaustedError(absl::StrCat("message of ", size,
                                                   " bytes exceeds the worker channel limit of ",
                                                   kMaxMessageBytes, " bytes"));
}

absl::StatusOr<std::pair<std::unique_ptr<SeqpacketTransport>,
                         std::unique_ptr<SeqpacketTransport>>>
SeqpacketTransport::Pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return ErrnoStatus("socketpair", errno);
  }
  // Room for a few packets in flight in each direction (the kernel caps it
  // at net.core.wmem_max; one packet fits the default either way).
  int size = static_cast<int>(4 * kChannelPacketBytes);
  for (int fd : fds) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  return std::make_pair(std::make_unique<SeqpacketTransport>(UniqueFd(fds[0])),
                        std::make_unique<SeqpacketTransport>(UniqueFd(fds[1])));
}

absl::StatusOr<bool> SeqpacketTransport::TrySendPacket(const std::string& packet) {
  while (true) {
    ssize_t n = ::send(fd_.get(), packet.data(), packet.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(packet.size())) return true;
    if (n >= 0) return absl::InternalError("short send on a SOCK_SEQPACKET channel");
    if (errno == EINTR) continue;
    if (errno == EPIPE || errno == ECONNRESET) {
      return absl::UnavailableError("channel closed by peer");
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    return absl::InternalError(ErrnoStatus("send on channel", errno).message());
  }
}

absl::Status SeqpacketTransport::SendPacket(const std::string& packet, absl::Time deadline) {
  while (true) {
    ASSIGN_OR_RETURN(bool sent, TrySendPacket(packet));
    if (sent) return absl::OkStatus();
    // No room: the peer is not reading. Wait for room until `deadline`.
    pollfd pfd = {fd_.get(), POLLOUT, 0};
    int timeout_ms = PollTimeout(deadline);
    if (timeout_ms == 0) {
      return absl::DeadlineExceededError(
          "the deadline passed waiting for room in the channel (the peer is not reading)");
    }
    if (::poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR) {
      return absl::InternalError(ErrnoStatus("poll on channel", errno).message());
    }
    if (pfd.revents & (POLLHUP | POLLERR)) {
      return absl::UnavailableError("channel closed by peer");
    }
  }
}

absl::StatusOr<std::vector<std::string>> SeqpacketTransport::Packets(
    const google::protobuf::MessageLite& message) const {
  // Every packet starts with a frame byte, so an empty message is never a
  // zero-length packet (which recv() cannot tell from a closed peer).
  size_t size = message.ByteSizeLong();
  if (size > kMaxMessageBytes) return MessageTooLarge(size);
  std::vector<std::string> packets;
  if (size < kChannelPacketBytes) {
    packets.emplace_back(1, kTransportFrameByte);
    if (!message.AppendToString(&packets.back())) {
      return absl::InternalError("could not serialize a channel message");
    }
    return packets;
  }
  // Fragmented: a header (frame byte and total size), then the message,
  // in packets of at most kChannelPacketBytes, each after a frame byte.
  std::string bytes;
  if (!message.SerializeToString(&bytes) || bytes.size() != size) {
    return absl::InternalError("could not serialize a channel message");
  }
  std::string first(kFirstHeaderBytes, kTransportFirstFragmentByte);
  uint64_t total = size;
  std::memcpy(&first[1], &total, sizeof total);
  size_t offset = std::min(bytes.size(), kChannelPacketBytes - kFirstHeaderBytes);
  first.append(bytes, 0, offset);
  packets.push_back(std::move(first));
  while (offset < bytes.size()) {
    size_t chunk = std::min(bytes.size() - offset, kChannelPacketBytes - 1);
    std::string next(1, kTransportNextFragmentByte);
    next.append(bytes, offset, chunk);
    packets.push_back(std::move(next));
    offset += chunk;
  }
  return packets;
}

absl::Status SeqpacketTransport::Send(const google::protobuf::MessageLite& message,
                                      absl::Time deadline) {
  ASSIGN_OR_RETURN(std::vector<std::string> packets, Packets(message));
  deadline = std::min(deadline, absl::Now() + send_timeout_);
  for (const std::string& packet : packets) RETURN_IF_ERROR(SendPacket(packet, deadline));
  return absl::OkStatus();
}

absl::Status SeqpacketTransport::WaitReadable(absl::Time deadline, int watch_fd) {
  while (true) {
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {watch_fd, POLLIN, 0}};
    int timeout_ms = PollTimeout(deadline);
    if (timeout_ms == 0) {
      return absl::DeadlineExceededError("deadline passed waiting for the channel");
    }
    int n = ::poll(fds, watch_fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("poll on channel", errno);
    }
    if (n == 0) continue;  // re-checks the deadline above
    if (fds[0].revents != 0) return absl::OkStatus();  // data or hang-up: read it first
    if (watch_fd >= 0 && fds[1].revents != 0) {
      return absl::AbortedError("watched descriptor became ready");
    }
  }
}

void SeqpacketTransport::DropPartial() {
  partial_total_ = 0;
  std::string().swap(partial_);  // a large buffer is not kept for the next message
}

absl::StatusOr<bool> SeqpacketTransport::TakePacket(size_t size,
                                                    google::protobuf::MessageLite* message) {
  const char* data = packet_.get();
  if (size > kChannelPacketBytes) {
    DropPartial();
    return absl::DataLossError(absl::StrCat("packet of ", size,
                                            " bytes exceeds the channel's packet limit of ",
                                            kChannelPacketBytes));
  }
  switch (data[0]) {
    case kTransportWakeByte:
      if (size != 1) return absl::DataLossError(absl::StrCat("a wake-up packet of ", size, " bytes"));
      return false;  // no message; a partial one stays
    case kTransportFrameByte:
      DropPartial();  // abandons a partial message, if any
      if (!message->ParseFromArray(data + 1, static_cast<int>(size - 1))) {
        return absl::DataLossError(absl::StrCat("unparsable packet of ", size, " bytes"));
      }
      return true;
    case kTransportFirstFragmentByte: {
      uint64_t total = 0;
      if (partial_total_ != 0 || size < kFirstHeaderBytes) {
        DropPartial();
        return absl::DataLossError("a fragmented message started inside another");
      }
      std::memcpy(&total, data + 1, sizeof total);
      if (total < kChannelPacketBytes || total > kMaxMessageBytes ||
          size - kFirstHeaderBytes > total) {
        return absl::DataLossError(absl::StrCat(
            "fragmented message of ", total, " bytes is outside ", kChannelPacketBytes,
            "..", kMaxMessageBytes));
      }
      partial_.clear();
      partial_.reserve(total);
      partial_.append(data + kFirstHeaderBytes, size - kFirstHeaderBytes);
      partial_total_ = total;
      break;
    }
    case kTransportNextFragmentByte: {
      uint64_t have = 0;
      if (partial_total_ == 0 || !CheckedAdd<uint64_t>(partial_.size(), size - 1, &have) ||
          have > partial_total_) {
        DropPartial();
        return absl::DataLossError("a message fragment out of order or past its length");
      }
      partial_.append(data + 1, size - 1);
      break;
    }
    default:
      return absl::DataLossError(absl::StrCat("packet of ", size, " bytes without a frame byte"));
  }
  if (partial_total_ != 0 && partial_.size() == partial_total_) {
    const uint64_t total = partial_total_;
    bool parsed = message->ParseFromArray(partial_.data(), static_cast<int>(partial_.size()));
    DropPartial();
    if (!parsed) {
      return absl::DataLossError(absl::StrCat("unparsable message of ", total, " bytes"));
    }
    return true;
  }
  return false;
}

absl::Status SeqpacketTransport::Receive(google::protobuf::MessageLite* message,
                                         absl::Time deadline, int watch_fd) {
  if (!packet_) packet_.reset(new char[kChannelPacketBytes + 1]);
  while (true) {
    absl::Status ready = WaitReadable(deadline, watch_fd);
    if (!ready.ok()) return ready;
    ssize_t n;
    do {
      n = ::recv(fd_.get(), packet_.get(), kChannelPacketBytes + 1, MSG_TRUNC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n == 0) return absl::UnavailableError("channel closed by peer");
    if (n < 0) {
      if (errno == ECONNRESET) return absl::UnavailableError("channel reset by peer");
      return ErrnoStatus("recv on channel", errno);
    }
    absl::StatusOr<bool> whole = TakePacket(static_cast<size_t>(n), message);
    if (!whole.ok()) return whole.status();
    if (*whole) return absl::OkStatus();
  }
}

absl::StatusOr<bool> SeqpacketTransport::ReceiveWaiting(google::protobuf::MessageLite* message) {
  absl::StatusOr<Available> read = ReadWaiting(message, /*keep_partial=*/false);
  if (!read.ok()) return read.status();
  return *read == Available::kMessage;
}

absl::StatusOr<Transport::Available> SeqpacketTransport::ReceiveAvailable(
    google::protobuf::MessageLite* message) {
  return ReadWaiting(message, /*keep_partial=*/true);
}

absl::StatusOr<Transport::Available> SeqpacketTransport::ReadWaiting(
    google::protobuf::MessageLite* message, bool keep_partial) {
  if (!packet_) packet_.reset(new char[kChannelPacketBytes + 1]);
  if (!passcred_) {
    // The kernel then attaches the sender's credentials to every packet
    // received, a zero-length one included; a closed peer yields none.
    int one = 1;
    if (::setsockopt(fd_.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) {
      return ErrnoStatus("setsockopt(SO_PASSCRED) on channel", errno);
    }
    passcred_ = true;
  }
  int wakes = 0;
  while (true) {
    alignas(cmsghdr) char control[256];
    iovec iov = {packet_.get(), kChannelPacketBytes + 1};
    msghdr header = {};
    header.msg_iov = &iov;
    header.msg_iovlen = 1;
    header.msg_control = control;
    header.msg_controllen = sizeof control;
    ssize_t n;
    do {
      n = ::recvmsg(fd_.get(), &header, MSG_TRUNC | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    // Descriptors a peer passed along are never kept.
    for (cmsghdr* c = n >= 0 ? CMSG_FIRSTHDR(&header) : nullptr; c != nullptr;
         c = CMSG_NXTHDR(&header, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int passed;
        std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
        ::close(passed);
      }
    }
    bool empty = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    bool closed = (n < 0 && errno == ECONNRESET) ||
                  (n == 0 && header.msg_controllen == 0 && (header.msg_flags & MSG_CTRUNC) == 0);
    if (empty || closed) {
      if (partial_total_ != 0 && (closed || !keep_partial)) {
        uint64_t have = partial_.size();
        uint64_t total = partial_total_;
        DropPartial();
        return absl::DataLossError(absl::StrCat("a fragmented message of ", total,
                                                " bytes stopped after ", have, " bytes"));
      }
      return closed ? Available::kClosed : Available::kNothing;
    }
    if (n < 0) return ErrnoStatus("recvmsg on channel", errno);
    if (n == 0) {
      DropPartial();
      return absl::DataLossError("a zero-length packet");
    }
    const bool wake = n == 1 && packet_[0] == kTransportWakeByte;
    absl::StatusOr<bool> whole = TakePacket(static_cast<size_t>(n), message);
    if (!whole.ok()) return whole.status();
    if (*whole) return Available::kMessage;
    // A peer sending nothing but wake-ups cannot keep the reader here:
    // the live reader comes back on the next readiness event; one reading
    // what a silent (or ended) peer left has a bound.
    if (wake && ++wakes == (keep_partial ? kWakesPerRead : kMaxWakesInARow)) {
      if (keep_partial) return Available::kNothing;
      return absl::DataLossError(
          absl::StrCat("more than ", kMaxWakesInARow, " wake-up packets in a row"));
    }
  }
}

}  // namespace ffibroker
