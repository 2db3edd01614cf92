// call_latency: the cost of a trivial call through the broker, against
// baselines measured in the same run.
//
//   in-process   ffi_call of cos() with a prepared cif, in this process
//   ipc          one request/reply over a SOCK_SEQPACKET pair (echo thread)
//   grpc         one unary RPC the daemon rejects without a worker
//   broker       cos(0.5) through ffibrokerd and a worker
//
// Prints the median (and p90) of each, and the broker's ratio to each.
// Usage: call_latency --address=unix:/path/to.sock [--iterations=N]
// (bench/run starts a daemon and runs this).
#include <ffi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "common/cli_flags.h"
#include "common/transport.h"
#include "ffibroker/client.h"
#include "ffibroker/worker/v1/worker.pb.h"
#include <grpcpp/grpcpp.h>

namespace ffibroker {
namespace {

struct Stats {
  double median_us;
  double p90_us;
};

Stats Measure(int iterations, const std::function<void()>& op) {
  for (int i = 0; i < iterations / 10 + 1; ++i) op();  // warm up
  std::vector<double> us;
  us.reserve(iterations);
  for (int i = 0; i < iterations; ++i) {
    auto start = std::chrono::steady_clock::now();
    op();
    auto end = std::chrono::steady_clock::now();
    us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 9 / 10]};
}

void Print(const char* name, Stats s, Stats broker) {
  std::printf("%-12s median %9.3f us   p90 %9.3f us   broker/this %8.1fx\n", name,
              s.median_us, s.p90_us, broker.median_us / s.median_us);
}

int Run(const std::string& address, int iterations) {
  // In-process libffi baseline.
  ffi_cif cif;
  ffi_type* args[] = {&ffi_type_double};
  ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_double, args);
  volatile double sink = 0;
  double x = 0.5;
  double (*cos_fn)(double) = std::cos;
  Stats in_process = Measure(iterations * 10, [&] {
    double r;
    void* values[] = {&x};
    ffi_call(&cif, reinterpret_cast<void (*)()>(cos_fn), &r, values);
    sink = r;
  });

  // Raw IPC baseline: the same transport the worker uses.
  auto pair = SeqpacketTransport::Pair();
  if (!pair.ok()) return 1;
  std::thread echo([peer = std::move(pair->second)] {
    worker::v1::DaemonToWorker request;
    worker::v1::WorkerToDaemon reply;
    reply.mutable_result()->set_value(std::string(8, '\0'));
    while (peer->Receive(&request, absl::InfiniteFuture(), -1).ok()) {
      if (!peer->Send(reply).ok()) break;
    }
  });
  worker::v1::DaemonToWorker call;
  call.mutable_call()->add_args(std::string(8, '\0'));
  Stats ipc = Measure(iterations, [&] {
    worker::v1::WorkerToDaemon reply;
    (void)pair->first->Send(call);
    (void)pair->first->Receive(&reply, absl::InfiniteFuture(), -1);
  });
  pair->first.reset();
  echo.join();

  auto client = Client::Connect(address);
  if (!client.ok()) {
    std::fprintf(stderr, "call_latency: %s\n", client.status().ToString().c_str());
    return 1;
  }
  // Raw gRPC baseline: a unary RPC answered by the daemon without a worker.
  Stats grpc_rtt = Measure(iterations, [&] {
    v1::CallRequest request;
    request.set_session_id("none");
    v1::CallResponse response;
    grpc::ClientContext context;
    (void)(*client)->stub()->Call(&context, request, &response);
  });

  auto session = (*client)->CreateSession();
  if (!session.ok()) return 1;
  auto libm = (*session)->OpenLibrary("libm.so.6", {"f64 cos(f64)"});
  if (!libm.ok()) {
    std::fprintf(stderr, "call_latency: %s\n", libm.status().ToString().c_str());
    return 1;
  }
  Stats broker = Measure(iterations, [&] {
    absl::StatusOr<double> r = (*libm)->Call<double>("cos", 0.5);
    sink = *r;
  });

  std::printf("trivial call cos(0.5), %d iterations each\n", iterations);
  Print("in-process", in_process, broker);
  Print("ipc", ipc, broker);
  Print("grpc", grpc_rtt, broker);
  Print("broker", broker, broker);
  return 0;
}

}  // namespace
}  // namespace ffibroker

int main(int argc, char** argv) {
  std::string address;
  int iterations = 2000;
  CLI::App app("Call latency through the broker against direct and gRPC baselines.",
               "call_latency");
  app.add_option("--address", address, "daemon address (unix:/path)")->required();
  app.add_option("--iterations", iterations, "calls measured per case")
      ->check(CLI::Range(10, 100000000))
      ->capture_default_str();
  if (std::optional<int> exit_code = ffibroker::ParseFlags(app, argc, argv)) return *exit_code;
  return ffibroker::Run(address, iterations);
}
