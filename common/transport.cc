#include "common/transport.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "absl/strings/str_cat.h"

namespace ffibroker {

absl::StatusOr<std::pair<std::unique_ptr<SeqpacketTransport>,
                         std::unique_ptr<SeqpacketTransport>>>
SeqpacketTransport::Pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return ErrnoStatus("socketpair", errno);
  }
  // Room for one maximal message in flight in each direction.
  int size = static_cast<int>(kMaxMessageBytes + 4096);
  for (int fd : fds) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  return std::make_pair(std::make_unique<SeqpacketTransport>(UniqueFd(fds[0])),
                        std::make_unique<SeqpacketTransport>(UniqueFd(fds[1])));
}

absl::Status SeqpacketTransport::Send(const google::protobuf::MessageLite& message,
                                      absl::Time deadline) {
  // Every packet starts with a frame byte, so an empty message is never a
  // zero-length packet (which recv() cannot tell from a closed peer).
  std::string bytes(1, kTransportFrameByte);
  if (!message.AppendToString(&bytes)) {
    return absl::InternalError("could not serialize a channel message");
  }
  if (bytes.size() - 1 > kMaxMessageBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("message of ", bytes.size(), " bytes exceeds the channel limit of ",
                     kMaxMessageBytes));
  }
  while (true) {
    ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(bytes.size())) return absl::OkStatus();
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // No room: the peer is not reading. Wait for room until `deadline`.
      int timeout_ms = -1;
      if (deadline != absl::InfiniteFuture()) {
        absl::Duration left = deadline - absl::Now();
        if (left <= absl::ZeroDuration()) {
          return absl::DeadlineExceededError(
              "deadline passed waiting for room in the channel (the peer is not reading)");
        }
        timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
      }
      pollfd pfd = {fd_.get(), POLLOUT, 0};
      if (::poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR) {
        return ErrnoStatus("poll on channel", errno);
      }
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      return absl::UnavailableError("channel closed by peer");
    }
    return n < 0 ? ErrnoStatus("send on channel", errno)
                 : absl::InternalError("short send on a SOCK_SEQPACKET channel");
  }
}

absl::Status SeqpacketTransport::Receive(google::protobuf::MessageLite* message,
                                         absl::Time deadline, int watch_fd) {
  while (true) {
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {watch_fd, POLLIN, 0}};
    int timeout_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError("deadline passed waiting for the channel");
      }
      // Round up so we never spin on a sub-millisecond remainder.
      timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    }
    int n = ::poll(fds, watch_fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("poll on channel", errno);
    }
    if (n == 0) continue;  // re-checks the deadline above
    if (fds[0].revents != 0) break;  // data or hang-up: read it first
    if (watch_fd >= 0 && fds[1].revents != 0) {
      return absl::AbortedError("watched descriptor became ready");
    }
  }
  if (!buffer_) buffer_.reset(new char[kMaxMessageBytes + 2]);
  ssize_t n;
  do {
    n = ::recv(fd_.get(), buffer_.get(), kMaxMessageBytes + 2,
               MSG_TRUNC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return absl::UnavailableError("channel closed by peer");
  if (n < 0) {
    if (errno == ECONNRESET) return absl::UnavailableError("channel reset by peer");
    return ErrnoStatus("recv on channel", errno);
  }
  if (static_cast<size_t>(n) > kMaxMessageBytes + 1) {
    return absl::DataLossError(absl::StrCat("packet of ", n,
                                            " bytes exceeds the channel limit"));
  }
  if (buffer_[0] != kTransportFrameByte) {
    return absl::DataLossError(absl::StrCat("packet of ", n, " bytes without a frame byte"));
  }
  if (!message->ParseFromArray(buffer_.get() + 1, static_cast<int>(n - 1))) {
    return absl::DataLossError(absl::StrCat("unparsable packet of ", n, " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace ffibroker
