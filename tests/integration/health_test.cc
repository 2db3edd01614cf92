// gRPC health checking by service name (issue 13 item 3): the broker
// service answers SERVING while the daemon runs and NOT_SERVING as soon as
// it begins shutting down.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <signal.h>

#include <chrono>

#include "gtest/gtest.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

constexpr char kBroker[] = "ffibroker.v1.Broker";

class HealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto daemon = TestDaemon::Start();
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = std::move(*daemon);
    stub_ = Health::NewStub(
        grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials()));
  }
  grpc::Status Check(const std::string& service, HealthCheckResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    HealthCheckRequest request;
    request.set_service(service);
    return stub_->Check(&context, request, response);
  }
  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<Health::Stub> stub_;
};

TEST_F(HealthTest, BrokerServiceIsServing) {
  HealthCheckResponse response;
  grpc::Status status = Check(kBroker, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  status = Check("", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  status = Check("ffibroker.v1.Nothing", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(HealthTest, BrokerServiceIsNotServingWhileShuttingDown) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  HealthCheckRequest request;
  request.set_service(kBroker);
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> watch =
      stub_->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  ASSERT_EQ(::kill(daemon_->pid(), SIGTERM), 0);
  ASSERT_TRUE(watch->Read(&response)) << "the watch ended without a NOT_SERVING update";
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  context.TryCancel();
}

}  // namespace
}  // namespace ffibroker::testing
