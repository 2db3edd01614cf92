// call_core: the asynchronous call core's figures, each a ratio against a
// baseline measured in the same run (docs/streams.md quotes them).
//
//   unary     Call(cos 0.5) through the daemon ÷ a bare unary gRPC echo of
//             the same messages (bench/echo_server: callback API, unix
//             socket, a server process of its own as the daemon is: no work
//             at all); also ÷ the same echo served from the benchmark's own
//             process (the baseline of figures before 2026-12-07)
//   stream    one call at a time on a CallStream ÷ the same on a bare
//             bidirectional echo stream
//   buffer    a 1 MiB inout buffer call ÷ a bare echo of the same request
//             (1 MiB each way)
//   batch     1,000 cos calls in one CallBatch: calls per second, and the
//             cost per call ÷ an in-process ffi_call
//   pool      16 concurrent clients on one library, pool 2 ÷ pool 1 calls
//             per second (cos, CPU-bound; and sleep_ms(1), a call that waits)
//   starve    an unrelated Whoami while as many calls hang as the daemon
//             has threads
// Medians and p99 of interleaved rounds (broker and baseline alternate, so
// both see the same machine). Starts its own daemon and echo server.
// Usage: build/bench/call_core [--iterations=N] [--seconds=S]
//                              [--channel-ring-kib=K (0: the socket alone)]
//                              [--only=SECTION,... (default: every section)]
#include <ffi.h>
#include <math.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench/echo_server.h"
#include "bench/median.h"
#include "absl/strings/str_cat.h"
#include "common/cli_flags.h"
#include "common/shm_ring.h"
#include "ffibroker/bench/v1/echo.grpc.pb.h"
#include "ffibroker/call_stream.h"
#include "ffibroker/client.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker {
namespace {

using Clock = std::chrono::steady_clock;

double Micros(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// Runs `a` and `b` in alternating rounds of 100, `iterations` each.
void Interleaved(int iterations, const std::function<bool()>& a, const std::function<bool()>& b,
                 std::vector<double>* a_us, std::vector<double>* b_us) {
  for (int i = 0; i < 200; ++i) {  // warm up both
    a();
    b();
  }
  for (int done = 0; done < iterations; done += 100) {
    for (int i = 0; i < 100; ++i) {
      auto start = Clock::now();
      if (!a()) std::abort();
      a_us->push_back(Micros(start));
    }
    for (int i = 0; i < 100; ++i) {
      auto start = Clock::now();
      if (!b()) std::abort();
      b_us->push_back(Micros(start));
    }
  }
}

// On-CPU nanoseconds so far of every thread of `pid` and of its
// descendants (the daemon and its workers), from /proc/*/schedstat.
uint64_t CpuNanos(pid_t pid) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream schedstat(task.path() / "schedstat");
    uint64_t ns = 0;
    if (schedstat >> ns) total += ns;
    std::ifstream children(task.path() / "children");
    for (pid_t child; children >> child;) total += CpuNanos(child);
  }
  return total;
}

// CPU the daemon and its workers spend per call of `call`, over `n` calls.
double CpuMicrosPerCall(pid_t daemon, int n, const std::function<bool()>& call) {
  uint64_t before = CpuNanos(daemon);
  for (int i = 0; i < n; ++i) {
    if (!call()) std::abort();
  }
  return static_cast<double>(CpuNanos(daemon) - before) / 1000.0 / n;
}

void Ratio(const char* name, const char* subject, const char* baseline, Stats broker, Stats bare) {
  std::printf(
      "%-8s %s median %8.1f us  p99 %8.1f us | %s median %8.1f us  p99 %8.1f us"
      " | ratio median %.2fx  p99 %.2fx\n",
      name, subject, broker.median_us, broker.p99_us, baseline, bare.median_us, bare.p99_us,
      broker.median_us / bare.median_us, broker.p99_us / bare.p99_us);
}

// On-CPU time per call of the daemon and its workers ÷ the echo server's.
void CpuRatio(const char* name, double broker_us, double echo_us) {
  std::printf("cpu      %s: daemon + worker %.1f us per call | echo server %.1f us | ratio %.2fx\n",
              name, broker_us, echo_us, broker_us / echo_us);
}

// Calls per second of `clients` threads, each with its own connection,
// calling `symbol(arg)` for `seconds`.
double Throughput(const testing::TestDaemon& daemon, int clients, uint32_t pool,
                  const std::string& library, const std::string& decl, const std::string& symbol,
                  const v1::Value& arg, double seconds) {
  std::vector<std::unique_ptr<Client>> connections;
  auto client = daemon.Connect();
  if (!client.ok()) std::abort();
  auto session = (*client)->CreateSession();
  if (!session.ok()) std::abort();
  Session::OpenOptions options;
  options.pool_size = pool;
  auto lib = (*session)->OpenLibrary(library, {decl}, options);
  if (!lib.ok()) {
    std::fprintf(stderr, "open: %s\n", lib.status().ToString().c_str());
    std::abort();
  }
  std::atomic<bool> stop{false};
  std::atomic<long> calls{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    connections.push_back(*daemon.Connect());
  }
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      v1::CallRequest request;
      request.set_session_id((*session)->id());
      request.set_library_handle((*lib)->handle());
      request.set_symbol(symbol);
      *request.add_args() = arg;
      while (!stop) {
        v1::CallResponse response;
        grpc::ClientContext context;
        connections[c]->Prepare(&context);
        if (connections[c]->stub()->Call(&context, request, &response).ok()) ++calls;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& t : threads) t.join();
  return calls / seconds;
}

int Run(int iterations, double seconds, int ring_kib, const std::set<std::string>& only) {
  auto wants = [&only](const char* section) { return only.empty() || only.count(section) > 0; };
  // The baseline server runs in a process of its own, as the daemon does;
  // forked first, before this process has any thread.
  const char* tmp = std::getenv("TMPDIR");
  std::string echo_dir = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/call_core.XXXXXX";
  if (::mkdtemp(&echo_dir[0]) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string echo_address = "unix:" + echo_dir + "/echo.sock";
  std::unique_ptr<bench::EchoProcess> echo_process = bench::EchoProcess::Fork(echo_address);
  if (echo_process == nullptr) return 1;
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove_echo_dir{echo_dir};
  auto daemon = testing::TestDaemon::Start(
      "limits { max_workers: 64 per_principal { max_calls_in_flight: 64 max_workers: 32 } }\n",
      {"--threads=2", "--log-level=warning", absl::StrCat("--channel-ring-kib=", ring_kib)});
  if (!daemon.ok()) {
    std::fprintf(stderr, "daemon: %s\n", daemon.status().ToString().c_str());
    return 1;
  }
  // The same echo in this process too (the baseline of earlier figures: its
  // client and server share one address space, so no call switches
  // process).
  const std::string local_address = "unix:" + (*daemon)->dir() + "/echo.sock";
  std::unique_ptr<bench::EchoServer> local_echo = bench::EchoServer::Start(local_address);
  if (local_echo == nullptr) return 1;
  grpc::ChannelArguments args;
  auto echo_stub = bench::v1::Echo::NewStub(
      grpc::CreateCustomChannel(echo_address, grpc::InsecureChannelCredentials(), args));
  auto local_stub = bench::v1::Echo::NewStub(
      grpc::CreateCustomChannel(local_address, grpc::InsecureChannelCredentials(), args));

  auto client = (*daemon)->Connect();
  auto session = (*client)->CreateSession();
  auto libm = (*session)->OpenLibrary("libm.so.6", {"f64 cos(f64 x)"});
  if (!libm.ok()) return 1;
  v1::CallRequest request;
  request.set_session_id((*session)->id());
  request.set_library_handle((*libm)->handle());
  request.set_symbol("cos");
  *request.add_args() = ToValue(0.5);

  // Unary: the broker, the bare echo, and the echo relayed through a child
  // process and finished from a reader thread (the process hop alone).
  auto broker_call = [&] {
    v1::CallResponse response;
    grpc::ClientContext context;
    (*client)->Prepare(&context);
    return (*client)->stub()->Call(&context, request, &response).ok();
  };
  auto bare_call = [&] {
    v1::CallResponse response;
    grpc::ClientContext context;
    return echo_stub->Unary(&context, request, &response).ok();
  };
  auto local_call = [&] {
    v1::CallResponse response;
    grpc::ClientContext context;
    return local_stub->Unary(&context, request, &response).ok();
  };
  auto relay_call = [&] {
    v1::CallResponse response;
    grpc::ClientContext context;
    return echo_stub->UnaryRelay(&context, request, &response).ok();
  };
  std::vector<double> broker_us, bare_us;
  if (wants("unary")) {
    Interleaved(iterations, broker_call, bare_call, &broker_us, &bare_us);
    Ratio("unary", "broker", "bare echo", Of(broker_us), Of(bare_us));
    std::vector<double> relay_us, bare_again_us;
    Interleaved(iterations, relay_call, bare_call, &relay_us, &bare_again_us);
    Ratio("relay", "relay", "bare echo", Of(relay_us), Of(bare_again_us));
    std::vector<double> broker_again_us, relay_again_us;
    Interleaved(iterations, broker_call, relay_call, &broker_again_us, &relay_again_us);
    Ratio("unary", "broker", "relay echo", Of(broker_again_us), Of(relay_again_us));
    std::vector<double> broker_local_us, local_us;
    Interleaved(iterations, broker_call, local_call, &broker_local_us, &local_us);
    Ratio("unary", "broker", "echo in bench", Of(broker_local_us), Of(local_us));
    CpuRatio("unary", CpuMicrosPerCall((*daemon)->pid(), iterations, broker_call),
             CpuMicrosPerCall(echo_process->pid(), iterations, bare_call));
  }

  // Stream, one call at a time.
  if (wants("stream")) {
    auto stream = (*session)->OpenStream();
    grpc::ClientContext echo_context;
    auto echo_stream = echo_stub->Stream(&echo_context);
    v1::StreamRequest stream_request;
    *stream_request.mutable_call() = request;
    broker_us.clear();
    bare_us.clear();
    auto stream_call = [&] {
      if (!(*stream)->Send(**libm, "cos", {ToValue(0.5)}).ok()) return false;
      auto r = (*stream)->Receive();
      return r.ok() && r->status().code() == 0;
    };
    auto echo_stream_call = [&] {
      v1::StreamResponse response;
      return echo_stream->Write(stream_request) && echo_stream->Read(&response);
    };
    Interleaved(iterations, stream_call, echo_stream_call, &broker_us, &bare_us);
    Ratio("stream", "broker", "bare echo", Of(broker_us), Of(bare_us));
    {
      grpc::ClientContext local_context;
      auto local_stream = local_stub->Stream(&local_context);
      std::vector<double> broker_local_us, local_us;
      Interleaved(
          iterations, stream_call,
          [&] {
            v1::StreamResponse response;
            return local_stream->Write(stream_request) && local_stream->Read(&response);
          },
          &broker_local_us, &local_us);
      Ratio("stream", "broker", "echo in bench", Of(broker_local_us), Of(local_us));
      local_stream->WritesDone();
      local_stream->Finish().ok();
    }
    CpuRatio("stream", CpuMicrosPerCall((*daemon)->pid(), iterations, stream_call),
             CpuMicrosPerCall(echo_process->pid(), iterations, echo_stream_call));
    (*stream)->Close().IgnoreError();
    echo_stream->WritesDone();
    echo_stream->Finish().ok();
  }

  // A 1 MiB inout buffer (classes' fill: memset in place) ÷ a bare echo of
  // the same request, whose answer carries the same 1 MiB back.
  if (wants("buffer")) {
    auto classes = (*session)->OpenLibrary("classes", {"void fill(inout u8[n] buf, u64 n, u8 v)"});
    if (!classes.ok()) {
      std::fprintf(stderr, "open classes: %s\n", classes.status().ToString().c_str());
      return 1;
    }
    constexpr uint64_t kMiB = 1 << 20;
    v1::CallRequest fill;
    fill.set_session_id((*session)->id());
    fill.set_library_handle((*classes)->handle());
    fill.set_symbol("fill");
    *fill.add_args() = BytesValue(std::string(kMiB, 'x'));
    *fill.add_args() = ToValue(kMiB);
    *fill.add_args() = ToValue(uint8_t{7});
    std::vector<double> fill_us, echo_us;
    Interleaved(
        std::max(200, iterations / 10),
        [&] {
          v1::CallResponse response;
          grpc::ClientContext context;
          (*client)->Prepare(&context);
          return (*client)->stub()->Call(&context, fill, &response).ok() &&
                 response.outputs_size() == 1 &&
                 response.outputs(0).value().bytes_value().size() == kMiB;
        },
        [&] {
          v1::CallResponse response;
          grpc::ClientContext context;
          return echo_stub->Unary(&context, fill, &response).ok() &&
                 response.result().bytes_value().size() == kMiB;
        },
        &fill_us, &echo_us);
    Ratio("buffer", "1 MiB inout", "echo of 1 MiB", Of(fill_us), Of(echo_us));
  }

  // Batches of 1,000 against in-process libffi.
  if (wants("batch")) {
    std::vector<v1::BatchCall> batch(1000);
    for (v1::BatchCall& call : batch) {
      call.set_symbol("cos");
      *call.add_args() = ToValue(0.5);
    }
    std::vector<double> batch_us;
    const int batches = std::max(20, iterations / 100);
    const uint64_t cpu_before = CpuNanos((*daemon)->pid());
    for (int i = 0; i < batches; ++i) {
      auto start = Clock::now();
      auto r = (*libm)->CallBatch(batch);
      if (!r.ok() || r->outcomes_size() != 1000) return 1;
      batch_us.push_back(Micros(start));
    }
    const double cpu_per_call_us =
        static_cast<double>(CpuNanos((*daemon)->pid()) - cpu_before) / 1000.0 / batches / 1000;
    ffi_cif cif;
    ffi_type* arg_types[] = {&ffi_type_double};
    ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 1, &ffi_type_double, arg_types);
    double x = 0.5, result = 0;
    void* values[] = {&x};
    auto start = Clock::now();
    constexpr int kInProcess = 1000000;
    for (int i = 0; i < kInProcess; ++i) {
      ffi_call(&cif, FFI_FN(static_cast<double (*)(double)>(::cos)), &result, values);
      x = 0.5 + result * 1e-9;
    }
    double ffi_us = Micros(start) / kInProcess;
    Stats b = Of(batch_us);
    std::printf(
        "batch    1000 calls: median %.1f us (%.0f calls/s), p99 %.1f us (%.0f calls/s) |"
        " per call %.3f us ÷ in-process ffi_call %.4f us = %.0fx\n",
        b.median_us, 1000 / b.median_us * 1e6, b.p99_us, 1000 / b.p99_us * 1e6, b.median_us / 1000,
        ffi_us, b.median_us / 1000 / ffi_us);
    std::printf("cpu      batch: daemon + worker %.3f us per call\n", cpu_per_call_us);
  }

  // Pools: 16 clients.
  if (wants("pool")) {
    for (const auto& [lib, decl, symbol, arg] :
         std::vector<std::tuple<std::string, std::string, std::string, v1::Value>>{
             {"libm.so.6", "f64 cos(f64 x)", "cos", ToValue(0.5)},
             {"crashy", "i32 sleep_ms(u32)", "sleep_ms", ToValue(uint32_t{1})}}) {
      double one = Throughput(**daemon, 16, 1, lib, decl, symbol, arg, seconds);
      double two = Throughput(**daemon, 16, 2, lib, decl, symbol, arg, seconds);
      std::printf(
          "pool     16 clients %-9s pool 1 %8.0f calls/s | pool 2 %8.0f calls/s | ratio %.2fx\n",
          symbol.c_str(), one, two, two / one);
    }
  }

  // Starvation: two hung calls (the daemon runs with --threads=2).
  if (!wants("starve")) return 0;
  std::vector<std::unique_ptr<Session>> hung_sessions;
  std::vector<std::unique_ptr<Library>> hung;
  std::vector<std::thread> hangers;
  for (int i = 0; i < 2; ++i) {
    hung_sessions.push_back(*(*client)->CreateSession());
    hung.push_back(*hung_sessions.back()->OpenLibrary("crashy", {"i32 sleep_ms(u32)"}));
  }
  for (auto& lib : hung) {
    hangers.emplace_back(
        [&lib] { lib->Call<int32_t>("sleep_ms", uint32_t{600000}).IgnoreError(); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<double> whoami_us;
  for (int i = 0; i < std::max(500, iterations / 4); ++i) {
    auto t = Clock::now();
    if (!(*client)->Whoami().ok()) return 1;
    whoami_us.push_back(Micros(t));
  }
  Stats w = Of(whoami_us);
  std::printf("starve   Whoami with 2 hung calls (--threads=2): median %.1f us  p99 %.1f us\n",
              w.median_us, w.p99_us);
  for (auto& lib : hung) lib->Close().IgnoreError();
  for (std::thread& t : hangers) t.join();
  return 0;
}

}  // namespace
}  // namespace ffibroker

int main(int argc, char** argv) {
  CLI::App app("The asynchronous call core against a bare gRPC echo, in one run.", "call_core");
  int iterations = 5000;
  double seconds = 3;
  app.add_option("--iterations", iterations, "calls per unary and stream measurement")
      ->check(CLI::Range(100, 10000000))
      ->capture_default_str();
  app.add_option("--seconds", seconds, "length of each pool throughput run")
      ->check(CLI::Range(0.5, 600.0))
      ->capture_default_str();
  int ring_kib = ffibroker::kDefaultRingBytes / 1024;
  app.add_option("--channel-ring-kib", ring_kib,
                 "the daemon's --channel-ring-kib (0: worker channels without rings)")
      ->capture_default_str();
  std::vector<std::string> only;
  app.add_option("--only", only, "run only these sections (comma-separated)")
      ->delimiter(',')
      ->check(CLI::IsMember({"unary", "stream", "buffer", "batch", "pool", "starve"}));
  if (std::optional<int> exit_code = ffibroker::ParseFlags(app, argc, argv)) return *exit_code;
  return ffibroker::Run(iterations, seconds, ring_kib, {only.begin(), only.end()});
}
