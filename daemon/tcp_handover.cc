#include "daemon/tcp_handover.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "common/log.h"

namespace ffibroker {

absl::StatusOr<std::unique_ptr<TcpHandover>> TcpHandover::Create(
    UniqueFd listener, std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor) {
  int flags = ::fcntl(listener.get(), F_GETFL);
  if (flags < 0 || ::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus("fcntl O_NONBLOCK on the activated TCP socket", errno);
  }
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return ErrnoStatus("eventfd", errno);
  return std::unique_ptr<TcpHandover>(
      new TcpHandover(std::move(listener), std::move(wake), std::move(acceptor)));
}

TcpHandover::~TcpHandover() { Stop(); }

void TcpHandover::Start() { thread_ = std::thread([this] { Loop(); }); }

void TcpHandover::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
  (void)ignored;
  thread_.join();
}

void TcpHandover::Loop() {
  pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
  while (true) {
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN)) return;
    if (!(fds[0].revents & POLLIN)) continue;
    while (true) {
      int conn = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (conn < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
            errno != ECONNABORTED) {
          LOG_WARNING("accept on the activated TCP socket: %s", std::strerror(errno));
          ::poll(nullptr, 0, 100);  // e.g. EMFILE: do not spin
        }
        break;
      }
      grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters params;
      params.listener_fd = listener_.get();
      params.fd = conn;  // the server owns it now
      acceptor_->HandleNewConnection(&params);
    }
  }
}

}  // namespace ffibroker
