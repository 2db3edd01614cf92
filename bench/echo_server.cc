#include "bench/echo_server.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include <cstring>
#include <fcntl.h>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "ffibroker/bench/v1/echo.grpc.pb.h"

namespace ffibroker::bench {
namespace {

// The relay's other end: a child process that sends every packet back.
[[noreturn]] void Reflect(int fd) {
  static char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0 || ::send(fd, buffer, static_cast<size_t>(n), MSG_NOSIGNAL) != n) ::_exit(0);
  }
}

}  // namespace

// Requests go to the child as [8-byte id][CallRequest]; the reader thread
// finishes each RPC from the packet that comes back.
class Relay {
 public:
  static std::unique_ptr<Relay> Start() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return nullptr;
    pid_t child = ::fork();
    if (child < 0) return nullptr;
    if (child == 0) {
      ::close(fds[0]);
      Reflect(fds[1]);
    }
    ::close(fds[1]);
    std::unique_ptr<Relay> relay(new Relay(fds[0], child));
    relay->reader_ = std::thread([r = relay.get()] { r->Read(); });
    return relay;
  }
  ~Relay() {
    ::shutdown(fd_, SHUT_RDWR);
    reader_.join();
    ::close(fd_);
    ::waitpid(child_, nullptr, 0);
  }

  void Send(const ffibroker::v1::CallRequest& request, ffibroker::v1::CallResponse* response,
            grpc::ServerUnaryReactor* reactor) {
    std::string packet(8, '\0');
    uint64_t id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      id = next_id_++;
      pending_[id] = {response, reactor};
    }
    std::memcpy(&packet[0], &id, sizeof id);
    request.AppendToString(&packet);
    if (::send(fd_, packet.data(), packet.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(packet.size())) {
      Take(id).second->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "relay send"));
    }
  }

 private:
  using Entry = std::pair<ffibroker::v1::CallResponse*, grpc::ServerUnaryReactor*>;
  Relay(int fd, pid_t child) : fd_(fd), child_(child) {}
  Entry Take(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(id);
    Entry entry = it->second;
    pending_.erase(it);
    return entry;
  }
  void Read() {
    std::string buffer(1 << 16, '\0');
    for (;;) {
      ssize_t n = ::recv(fd_, &buffer[0], buffer.size(), 0);
      if (n < static_cast<ssize_t>(sizeof(uint64_t))) return;
      uint64_t id;
      std::memcpy(&id, buffer.data(), sizeof id);
      ffibroker::v1::CallRequest request;
      Entry entry = Take(id);
      if (!request.ParseFromArray(buffer.data() + 8, static_cast<int>(n - 8))) {
        entry.second->Finish(grpc::Status(grpc::StatusCode::DATA_LOSS, "relay reply"));
        continue;
      }
      if (request.args_size() > 0) *entry.first->mutable_result() = request.args(0);
      entry.second->Finish(grpc::Status::OK);
    }
  }

  const int fd_;
  const pid_t child_;
  std::thread reader_;
  std::mutex mu_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Entry> pending_;
};

namespace {

class EchoService final : public v1::Echo::CallbackService {
 public:
  explicit EchoService(Relay* relay) : relay_(relay) {}

 private:
  grpc::ServerUnaryReactor* UnaryRelay(grpc::CallbackServerContext* context,
                                       const ffibroker::v1::CallRequest* request,
                                       ffibroker::v1::CallResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    relay_->Send(*request, response, reactor);
    return reactor;
  }

  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context,
                                  const ffibroker::v1::CallRequest* request,
                                  ffibroker::v1::CallResponse* response) override {
    if (request->args_size() > 0) *response->mutable_result() = request->args(0);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // Answers each request as it is read; one write in flight at a time.
  class StreamEcho final
      : public grpc::ServerBidiReactor<ffibroker::v1::StreamRequest, ffibroker::v1::StreamResponse> {
   public:
    StreamEcho() { StartRead(&request_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        std::lock_guard<std::mutex> lock(mu_);
        reading_done_ = true;
        if (!writing_) Finish(grpc::Status::OK);
        return;
      }
      ffibroker::v1::StreamResponse response;
      response.set_id(request_.id());
      if (request_.call().args_size() > 0) {
        *response.mutable_call()->mutable_result() = request_.call().args(0);
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(std::move(response));
        if (!writing_) {
          writing_ = true;
          StartWrite(&queue_.front());
        }
      }
      StartRead(&request_);
    }
    void OnWriteDone(bool ok) override {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.pop_front();
      if (ok && !queue_.empty()) {
        StartWrite(&queue_.front());
        return;
      }
      writing_ = false;
      if (reading_done_ || !ok) Finish(grpc::Status::OK);
    }
    void OnDone() override { delete this; }

   private:
    ffibroker::v1::StreamRequest request_;
    std::mutex mu_;
    std::deque<ffibroker::v1::StreamResponse> queue_;
    bool writing_ = false;
    bool reading_done_ = false;
  };

  grpc::ServerBidiReactor<ffibroker::v1::StreamRequest, ffibroker::v1::StreamResponse>* Stream(
      grpc::CallbackServerContext*) override {
    return new StreamEcho();
  }

  Relay* const relay_;
};

}  // namespace

std::unique_ptr<EchoServer> EchoServer::Start(const std::string& address) {
  std::unique_ptr<EchoServer> echo(new EchoServer());
  echo->relay_ = Relay::Start();
  if (echo->relay_ == nullptr) return nullptr;
  echo->service_ = std::make_unique<EchoService>(echo->relay_.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterService(echo->service_.get());
  echo->server_ = builder.BuildAndStart();
  if (echo->server_ == nullptr) return nullptr;
  return echo;
}

std::unique_ptr<EchoProcess> EchoProcess::Fork(const std::string& address) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return nullptr;
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(ready[0]);
    ::close(ready[1]);
    return nullptr;
  }
  if (pid == 0) {
    ::close(ready[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the benchmark
    std::unique_ptr<EchoServer> echo = EchoServer::Start(address);
    if (echo == nullptr) ::_exit(1);
    char ok = 1;
    if (::write(ready[1], &ok, 1) != 1) ::_exit(1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  std::unique_ptr<EchoProcess> child(new EchoProcess(pid));
  pollfd pfd = {ready[0], POLLIN, 0};
  char ok = 0;
  const bool started = ::poll(&pfd, 1, 10000) == 1 && ::read(ready[0], &ok, 1) == 1;
  ::close(ready[0]);
  if (!started) {
    std::fprintf(stderr, "echo server process did not start serving %s\n", address.c_str());
    return nullptr;
  }
  return child;
}

EchoProcess::~EchoProcess() {
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

EchoServer::~EchoServer() {
  if (server_ != nullptr) server_->Shutdown();
  server_.reset();  // before the relay it calls
}

}  // namespace ffibroker::bench
