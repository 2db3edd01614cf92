// PeerAcceptor: the daemon's unix-socket listener, which knows who is on
// the other end of every connection.
//
// gRPC 1.51 does not expose SO_PEERCRED, so the daemon accepts unix-socket
// connections itself (accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC on a socket
// it binds), reads the peer's credentials (SO_PEERCRED: pid, uid, gid;
// SO_PEERGROUPS: supplementary groups) and only then hands the connection to
// the gRPC server.
//
// Mapping a call back to its connection. The handover must let a handler
// find the credentials of the connection its call arrived on, and a client
// must not be able to influence that mapping:
//  - grpc::ServerBuilder's ExternalConnectionAcceptor names a connection
//    after getpeername(), which is the empty "unix:" for every unnamed unix
//    client socket, so calls could not be told apart. It is not used.
//  - grpc::AddInsecureChannelFromFd (grpc_server_add_insecure_channel_from_fd)
//    names the connection's endpoint "fd:N", N being the fd number the daemon
//    handed over; ServerContext::peer() of every call on it returns exactly
//    that string. The daemon records N -> credentials *before* the handover,
//    so the record exists before any call can arrive on the connection.
//  - An fd number is unique among open fds; it is reused only after gRPC
//    closed the connection, and gRPC closes it only once the transport is
//    destroyed, i.e. after every call on it has finished. A reuse overwrites
//    the record before the new connection is handed over. As a second
//    guard each record keeps the socket's inode, and Lookup() checks that fd N
//    still refers to that very socket (a stale record whose number now names
//    another file fails with UNAUTHENTICATED instead of naming someone).
//  - The client never sends an identity: nothing in the request can select
//    a record, only the connection it arrived on.
//
// Thread-safety: Lookup() may be called from any thread; Start/Stop from
// the owner's.
//
//   ASSIGN_OR_RETURN(auto acceptor, PeerAcceptor::Listen("/run/ffibroker/ffibrokerd.sock"));
//   acceptor->Start(server.get());   // after BuildAndStart
//   ASSIGN_OR_RETURN(PeerIdentity who, acceptor->Lookup(context->peer()));
#ifndef FFIBROKER_DAEMON_PEER_ACCEPTOR_H_
#define FFIBROKER_DAEMON_PEER_ACCEPTOR_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "daemon/identity.h"

namespace grpc {
class Server;
}

namespace ffibroker {

class PeerAcceptor {
 public:
  // Binds and listens on `path` (mode 0666: the policy decides who may do
  // what). The caller has removed a stale socket. UNAVAILABLE with errno.
  static absl::StatusOr<std::unique_ptr<PeerAcceptor>> Listen(const std::string& path);
  // Takes a unix socket already listening at `path` (socket activation:
  // systemd bound it), making it non-blocking. UNAVAILABLE with errno.
  static absl::StatusOr<std::unique_ptr<PeerAcceptor>> Adopt(UniqueFd listener,
                                                             const std::string& path);
  ~PeerAcceptor();  // Stop()
  PeerAcceptor(const PeerAcceptor&) = delete;
  PeerAcceptor& operator=(const PeerAcceptor&) = delete;

  // Connections one local user (peer uid) may hold at once; one more is
  // closed as it arrives (no fd of the daemon's is held for it). All users
  // together hold at most half of RLIMIT_NOFILE's soft limit, so workers,
  // files and other users keep theirs. Call before Start.
  void set_max_connections_per_user(int most) { per_user_ = most; }

  // Starts accepting on a thread; connections go to `server` (borrowed; it
  // must be started and outlive Stop()).
  void Start(grpc::Server* server);
  // Stops accepting (connections already handed over are the server's).
  void Stop();

  // The identity of the connection gRPC calls `peer` (ServerContext::peer()).
  // NOT_FOUND if the peer is not one of ours (e.g. a TCP peer);
  // UNAUTHENTICATED if the record is stale.
  absl::StatusOr<PeerIdentity> Lookup(absl::string_view peer) const;

 private:
  struct Record {
    PeerIdentity identity;
    ino_t inode;
    dev_t dev;
  };
  PeerAcceptor(UniqueFd listener, UniqueFd wake, std::string path)
      : listener_(std::move(listener)), wake_(std::move(wake)), path_(std::move(path)) {}
  void Loop(grpc::Server* server);
  // Reads the credentials of `fd`, records them, hands `fd` to the server.
  void Admit(grpc::Server* server, UniqueFd fd);

  const UniqueFd listener_;
  const UniqueFd wake_;  // eventfd: Stop() wakes the loop
  const std::string path_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::map<int, Record> records_ ABSL_GUARDED_BY(mu_);  // by fd number
  // Whether the connection of `record`, fd `number`, is still open (gRPC
  // closes it without telling us; the number may be reused since).
  static bool StillOpen(int number, const Record& record);
  // Drops the records of closed connections; true if `uid` may have one
  // more connection.
  bool RoomFor(uid_t uid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int per_user_ = 128;
  size_t total_ = 0;  // set by Start from RLIMIT_NOFILE
  // Refusals since the last one logged (at most one line every 10 s).
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time refusal_logged_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_PEER_ACCEPTOR_H_
