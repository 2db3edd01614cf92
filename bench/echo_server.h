// EchoServer: the bare gRPC baseline of bench/call_core (bench/proto), a
// callback-API server on a unix socket, with as many threads as gRPC gives
// it and no work but the echo. Its UnaryRelay sends each request through a
// child process first (the broker's process hop, none of its work).
// EchoProcess runs one in a process of its own, as a client's server is
// (the baseline); EchoServer::Start runs one in the caller's process.
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

// An EchoServer in a child process. Fork before the caller starts any
// thread (gRPC's included): the child is a fork of it.
class EchoProcess {
 public:
  // Serves `address` ("unix:/path") once it returns; nullptr (with the
  // reason on stderr) if the child could not start serving within 10 s.
  static std::unique_ptr<EchoProcess> Fork(const std::string& address);
  ~EchoProcess();  // kills and reaps the child
  EchoProcess(const EchoProcess&) = delete;
  EchoProcess& operator=(const EchoProcess&) = delete;
  int pid() const { return pid_; }

 private:
  explicit EchoProcess(int pid) : pid_(pid) {}
  const int pid_;
};

}  // namespace ffibroker::bench

#endif  // FFIBROKER_BENCH_ECHO_SERVER_H_
