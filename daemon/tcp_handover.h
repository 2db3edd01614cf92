// TcpHandover: serves the Broker on a TCP socket the daemon did not bind
// (socket activation), accepting connections itself and handing each to
// the gRPC server through grpc's ExternalConnectionAcceptor, which applies
// the server credentials (TLS) given when it was created.
//
// (A unix socket from systemd goes to PeerAcceptor instead, which also
// reads the peer's credentials.)
//
// Thread-safety: Start/Stop from the owner's thread.
//
//   auto acceptor = builder.experimental().AddExternalConnectionAcceptor(
//       grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD, creds);
//   ASSIGN_OR_RETURN(auto handover, TcpHandover::Create(std::move(fd), std::move(acceptor)));
//   server = builder.BuildAndStart();  handover->Start();
#ifndef FFIBROKER_DAEMON_TCP_HANDOVER_H_
#define FFIBROKER_DAEMON_TCP_HANDOVER_H_

#include <grpcpp/server_builder.h>

#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace ffibroker {

class TcpHandover {
 public:
  // Takes the listening socket (made non-blocking) and the acceptor.
  // UNAVAILABLE with errno.
  static absl::StatusOr<std::unique_ptr<TcpHandover>> Create(
      UniqueFd listener, std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor);
  ~TcpHandover();  // Stop()
  TcpHandover(const TcpHandover&) = delete;
  TcpHandover& operator=(const TcpHandover&) = delete;

  // Starts accepting on a thread; call after the server started.
  void Start();
  // Stops accepting (connections handed over are the server's).
  void Stop();

 private:
  TcpHandover(UniqueFd listener, UniqueFd wake,
              std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor)
      : listener_(std::move(listener)), wake_(std::move(wake)), acceptor_(std::move(acceptor)) {}
  void Loop();

  const UniqueFd listener_;
  const UniqueFd wake_;  // eventfd: Stop() wakes the loop
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::thread thread_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_TCP_HANDOVER_H_
