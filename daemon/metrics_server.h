// MetricsServer: serves metrics::Render() over HTTP (GET /metrics, the
// Prometheus text format) on its own listener, with libmicrohttpd. Only
// started when configured (--metrics-listen, or a socket-activated socket
// named "metrics"); any other path is 404, any other method 405.
//
// Thread-safety: libmicrohttpd's own thread serves; Start/destructor from
// the owner's thread.
//
//   ASSIGN_OR_RETURN(auto server, MetricsServer::Listen("127.0.0.1:9464"));
//   server->address();   // "127.0.0.1:9464" (the port chosen, for port 0)
#ifndef FFIBROKER_DAEMON_METRICS_SERVER_H_
#define FFIBROKER_DAEMON_METRICS_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

struct MHD_Daemon;

namespace ffibroker {

class MetricsServer {
 public:
  // Listens on `address`: "HOST:PORT" (an IPv4 or bracketed IPv6 literal) or
  // just "PORT" for 127.0.0.1:PORT. INVALID_ARGUMENT naming the address;
  // UNAVAILABLE if it cannot listen.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Listen(const std::string& address);
  // Serves on a listening socket someone else bound (socket activation).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Adopt(UniqueFd listener,
                                                               std::string address);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  const std::string& address() const { return address_; }

 private:
  MetricsServer(MHD_Daemon* daemon, std::string address)
      : daemon_(daemon), address_(std::move(address)) {}
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Serve(UniqueFd listener,
                                                              std::string address);
  MHD_Daemon* daemon_;
  std::string address_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_METRICS_SERVER_H_
