// EchoServer: the bare gRPC baseline of bench/call_core (bench/proto), a
// callback-API server on a unix socket in the benchmark's own process,
// with as many threads as gRPC gives it and no work but the echo. Its
// UnaryRelay sends each request through a child process first (the
// broker's process hop, none of its work).
#ifndef FFIBROKER_BENCH_ECHO_SERVER_H_
#define FFIBROKER_BENCH_ECHO_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace ffibroker::bench {

class Relay;

class EchoServer {
 public:
  // Listens on `address` ("unix:/path"); nullptr if it cannot.
  static std::unique_ptr<EchoServer> Start(const std::string& address);
  ~EchoServer();

 private:
  EchoServer() = default;
  std::unique_ptr<Relay> relay_;  // destroyed after the server
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace ffibroker::bench

#endif  // FFIBROKER_BENCH_ECHO_SERVER_H_
