#include "bench/echo_server.h"

#include <deque>
#include <mutex>

#include "ffibroker/bench/v1/echo.grpc.pb.h"

namespace ffibroker::bench {
namespace {

class EchoService final : public v1::Echo::CallbackService {
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
};

}  // namespace

std::unique_ptr<EchoServer> EchoServer::Start(const std::string& address) {
  std::unique_ptr<EchoServer> echo(new EchoServer());
  echo->service_ = std::make_unique<EchoService>();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterService(echo->service_.get());
  echo->server_ = builder.BuildAndStart();
  if (echo->server_ == nullptr) return nullptr;
  return echo;
}

EchoServer::~EchoServer() {
  if (server_ != nullptr) server_->Shutdown();
}

}  // namespace ffibroker::bench
