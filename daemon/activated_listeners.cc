#include "daemon/activated_listeners.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ffibroker {
namespace {

// "tcp:HOST:PORT" for a bound inet socket; whether HOST is loopback.
std::string InetAddress(const sockaddr_storage& addr, bool* loopback) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    *loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    return absl::StrCat("tcp:", host, ":", port);
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
  ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
  port = ntohs(in6->sin6_port);
  *loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  return absl::StrCat("tcp:[", host, "]:", port);
}

}  // namespace

absl::StatusOr<ActivatedListeners> TakeActivatedListeners() {
  char** names = nullptr;
  int n = ::sd_listen_fds_with_names(/*unset_environment=*/1, &names);
  if (n < 0) return ErrnoStatus("sd_listen_fds", -n);
  ActivatedListeners out;
  absl::Status status;
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // never into a worker
    UniqueFd owned(fd);
    std::string name = names != nullptr && names[i] != nullptr ? names[i] : "";
    if (!status.ok()) continue;  // still take (and close) the rest
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = ErrnoStatus(absl::StrCat("getsockname of activated fd ", fd), errno);
      continue;
    }
    std::string what = absl::StrCat("activated fd ", fd, " (", name.empty() ? "unnamed" : name, ")");
    if (addr.ss_family == AF_UNIX && ::sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) > 0) {
      if (out.unix_fd.valid()) {
        status = absl::InvalidArgumentError(absl::StrCat(what, ": a second unix socket"));
        continue;
      }
      const auto* un = reinterpret_cast<const sockaddr_un*>(&addr);
      out.unix_path = std::string(un->sun_path, ::strnlen(un->sun_path, sizeof un->sun_path));
      out.unix_fd = std::move(owned);
    } else if ((addr.ss_family == AF_INET || addr.ss_family == AF_INET6) &&
               ::sd_is_socket(fd, addr.ss_family, SOCK_STREAM, 1) > 0) {
      bool loopback = false;
      std::string address = InetAddress(addr, &loopback);
      if (name == "metrics") {
        if (out.metrics_fd.valid()) {
          status = absl::InvalidArgumentError(absl::StrCat(what, ": a second metrics socket"));
          continue;
        }
        out.metrics_fd = std::move(owned);
        out.metrics_address = address;
      } else {
        if (out.tcp_fd.valid()) {
          status = absl::InvalidArgumentError(absl::StrCat(what, ": a second TCP socket"));
          continue;
        }
        out.tcp_fd = std::move(owned);
        out.tcp_address = address;
        out.tcp_loopback = loopback;
      }
    } else {
      status = absl::InvalidArgumentError(absl::StrCat(
          what, ": not a listening unix or TCP stream socket (ListenStream= in the socket unit)"));
    }
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  if (!status.ok()) return status;
  return out;
}

}  // namespace ffibroker
