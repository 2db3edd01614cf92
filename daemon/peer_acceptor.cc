#include "daemon/peer_acceptor.h"

#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

namespace ffibroker {

absl::StatusOr<std::unique_ptr<PeerAcceptor>> PeerAcceptor::Listen(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("socket(AF_UNIX)", errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("socket path ", path, " is too long"));
  }
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoStatus(absl::StrCat("bind ", path), errno);
  }
  ::chmod(path.c_str(), 0666);
  if (::listen(fd.get(), 128) != 0) return ErrnoStatus(absl::StrCat("listen ", path), errno);
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return ErrnoStatus("eventfd", errno);
  return std::unique_ptr<PeerAcceptor>(new PeerAcceptor(std::move(fd), std::move(wake), path));
}

absl::StatusOr<std::unique_ptr<PeerAcceptor>> PeerAcceptor::Adopt(UniqueFd listener,
                                                                  const std::string& path) {
  int flags = ::fcntl(listener.get(), F_GETFL);
  if (flags < 0 || ::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus(absl::StrCat("fcntl O_NONBLOCK on the socket of ", path), errno);
  }
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return ErrnoStatus("eventfd", errno);
  return std::unique_ptr<PeerAcceptor>(
      new PeerAcceptor(std::move(listener), std::move(wake), path));
}

PeerAcceptor::~PeerAcceptor() { Stop(); }

void PeerAcceptor::Start(grpc::Server* server) {
  rlimit files{};
  const rlim_t soft = ::getrlimit(RLIMIT_NOFILE, &files) == 0 ? files.rlim_cur : 1024;
  total_ = static_cast<size_t>(std::max<rlim_t>(8, std::min<rlim_t>(soft, 1 << 20) / 2));
  thread_ = std::thread([this, server] { Loop(server); });
}

bool PeerAcceptor::StillOpen(int number, const Record& record) {
  struct stat st;
  return ::fstat(number, &st) == 0 && st.st_ino == record.inode && st.st_dev == record.dev;
}

bool PeerAcceptor::RoomFor(uid_t uid) {
  int mine = 0;
  for (auto it = records_.begin(); it != records_.end();) {
    if (!StillOpen(it->first, it->second)) {
      it = records_.erase(it);
      continue;
    }
    if (it->second.identity.uid == uid) ++mine;
    ++it;
  }
  return mine < per_user_ && records_.size() < total_;
}

void PeerAcceptor::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
  (void)ignored;
  thread_.join();
}

void PeerAcceptor::Loop(grpc::Server* server) {
  pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
  while (true) {
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN)) return;
    if (!(fds[0].revents & POLLIN)) continue;
    while (true) {
      UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!conn.valid()) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
            errno != ECONNABORTED) {
          LOG_WARNING("accept on %s: %s", path_, std::strerror(errno));
          ::poll(nullptr, 0, 100);  // e.g. EMFILE: do not spin
        }
        break;
      }
      Admit(server, std::move(conn));
    }
  }
}

void PeerAcceptor::Admit(grpc::Server* server, UniqueFd fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  struct stat st;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
      ::fstat(fd.get(), &st) != 0) {
    LOG_WARNING("dropping a connection without peer credentials: %s", std::strerror(errno));
    return;
  }
  Record record;
  record.identity.transport = PeerIdentity::Transport::kUnix;
  record.identity.pid = cred.pid;
  record.identity.uid = cred.uid;
  record.identity.gid = cred.gid;
  gid_t groups[256];
  socklen_t glen = sizeof groups;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
    record.identity.groups.assign(groups, groups + glen / sizeof(gid_t));
  }
  record.inode = st.st_ino;
  record.dev = st.st_dev;
  int number = fd.get();
  {
    absl::MutexLock lock(&mu_);
    if (!RoomFor(cred.uid)) {
      // Closed at once (fd goes): idle connections must not take every
      // file descriptor the daemon has from the users and workers it serves.
      ++refused_;
      const absl::Time now = absl::Now();
      if (now - refusal_logged_ >= absl::Seconds(10)) {
        LOG_WARNING("closed %d new connections on %s over the limit, the last from uid %d: %s",
                    refused_, path_, cred.uid,
                    records_.size() >= total_
                        ? absl::StrCat("all users together hold ", total_,
                                       " (half the daemon's file descriptor limit)")
                        : absl::StrCat("it holds ", per_user_,
                                       " (--max-connections-per-user)"));
        refused_ = 0;
        refusal_logged_ = now;
      }
      return;
    }
    records_[number] = std::move(record);
  }
  LOG_DEBUG("connection fd:%d from pid %d uid %d gid %d", number, cred.pid, cred.uid, cred.gid);
  grpc::AddInsecureChannelFromFd(server, fd.release());  // the server owns it now
}

absl::StatusOr<PeerIdentity> PeerAcceptor::Lookup(absl::string_view peer) const {
  int number;
  if (!absl::ConsumePrefix(&peer, "fd:") || !absl::SimpleAtoi(peer, &number)) {
    return absl::NotFoundError("not a unix-socket peer");
  }
  absl::MutexLock lock(&mu_);
  auto it = records_.find(number);
  if (it == records_.end() || !StillOpen(number, it->second)) {
    return absl::UnauthenticatedError("the connection's peer credentials are unknown");
  }
  return it->second.identity;
}

}  // namespace ffibroker
