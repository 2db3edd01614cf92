// Socket activation: the listening sockets systemd passes the daemon
// ($LISTEN_FDS, $LISTEN_PID, $LISTEN_FDNAMES; see sd_listen_fds(3)), read
// with libsystemd.
//
// At most one listening unix stream socket (the Broker's, served with peer
// credentials by PeerAcceptor), at most one listening TCP socket (the
// Broker's over TCP), and — named "metrics" with FileDescriptorName= — one
// TCP socket for the metrics listener. Anything else passed is refused, so
// a unit file mistake stops the start instead of leaving a socket unserved.
//
//   ASSIGN_OR_RETURN(ActivatedListeners activated, TakeActivatedListeners());
//   if (activated.unix_fd.valid()) ... PeerAcceptor::Adopt(...)
#ifndef FFIBROKER_DAEMON_ACTIVATED_LISTENERS_H_
#define FFIBROKER_DAEMON_ACTIVATED_LISTENERS_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace ffibroker {

struct ActivatedListeners {
  UniqueFd unix_fd;          // a listening AF_UNIX SOCK_STREAM socket
  std::string unix_path;     // its path (getsockname)
  UniqueFd tcp_fd;           // a listening AF_INET/AF_INET6 SOCK_STREAM socket
  std::string tcp_address;   // "tcp:HOST:PORT" (getsockname)
  bool tcp_loopback = false; // the TCP socket is bound to a loopback address
  UniqueFd metrics_fd;       // named "metrics": the metrics listener
  std::string metrics_address;

  bool broker_any() const { return unix_fd.valid() || tcp_fd.valid(); }
};

// Takes the sockets passed by socket activation (and unsets $LISTEN_* so
// workers do not see them). None passed: an empty ActivatedListeners.
// INVALID_ARGUMENT naming the fd if one is not a listening stream socket of
// a kind above, or if there are two of a kind.
absl::StatusOr<ActivatedListeners> TakeActivatedListeners();

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_ACTIVATED_LISTENERS_H_
