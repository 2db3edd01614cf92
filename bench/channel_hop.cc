// channel_hop: the daemon -> worker -> daemon hop alone (issue 15), through
// the daemon's own classes: a confined worker started by WorkerLauncher
// under the "strict" profile (every layer the machine allows), cos(0.5)
// submitted with WorkerProcess::Submit, timed until its reply's callback
// runs on the watcher's thread (the wake-up of the thread that waits for
// it is not counted, as the daemon finishes the RPC from that callback).
//
//   ring     the channel's shared-memory rings (the daemon's default)
//   socket   the same worker channel with the socket alone
//            (--channel-ring-kib=0)
//   futex    a raw futex round trip to a forked child (bench/round_trips),
//            the floor the ring's wake-ups stand on
//   buffer   a 1 MiB inout buffer each way (the in-tree classes library's
//            fill: memset in place), ring and socket
//   batch    1,000 cos calls in one exchange, ring, per call
//   protobuf the protobuf work of the cos and batch exchanges alone, in
//            this process (the request serialized and parsed, a reply with
//            its results built, serialized and parsed), and its share of
//            the hop: what a flat layout instead of protobuf could save
//
// Rounds alternate between ring and socket (each its own worker), so both
// see the same machine. Prints medians and p99, and ring ÷ futex and ring ÷
// socket. Usage: build/bench/channel_hop [--iterations=N]
#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "bench/median.h"
#include "bench/round_trips.h"
#include "common/cli_flags.h"
#include "common/error_reason.h"
#include "common/shm_ring.h"
#include "common/signature.h"
#include "daemon/profiles.h"
#include "daemon/worker_launcher.h"
#include "daemon/worker_watcher.h"

namespace ffibroker {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kFill[] = "void fill(inout u8[n] buf, u64 n, u8 v)";  // memset in place

// The path the loader resolves "libm.so.6" to (the daemon opens by path).
std::string LibmPath() {
  void* handle = ::dlopen("libm.so.6", RTLD_NOW);
  link_map* map = nullptr;
  if (handle == nullptr || ::dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0) return "";
  return map->l_name;
}

struct Channel {
  std::unique_ptr<WorkerLauncher> launcher;
  std::unique_ptr<WorkerProcess> worker;
};

absl::StatusOr<Channel> Start(const ProfileSet* profiles, WorkerWatcher* watcher,
                              uint32_t ring_bytes, const std::string& library,
                              const char* declaration) {
  Channel c;
  c.launcher = std::make_unique<WorkerLauncher>(FFIBROKER_WORKER_PATH, profiles);
  c.launcher->set_watcher(watcher);
  c.launcher->set_ring_bytes(ring_bytes);
  worker::v1::Open open;
  open.set_path(library);
  absl::StatusOr<Declaration> decl = ParseDeclaration(declaration);
  if (!decl.ok()) return decl.status();
  worker::v1::Symbol* symbol = open.add_symbols();
  symbol->set_name(decl->name);
  *symbol->mutable_signature() = decl->signature;
  v1::WorkerLayers layers;
  absl::StatusOr<std::unique_ptr<WorkerProcess>> worker = c.launcher->Launch(
      open, "strict", {}, absl::Now() + absl::Seconds(30), &layers);
  if (!worker.ok()) return worker.status();
  c.worker = *std::move(worker);
  return c;
}

// One request through `worker`: microseconds from Submit to its callback,
// or -1 on failure.
double Hop(WorkerProcess* worker, const worker::v1::DaemonToWorker& request, bool batch) {
  worker::v1::DaemonToWorker copy = request;
  absl::Notification done;
  Clock::time_point answered;
  bool ok = false;
  const Clock::time_point start = Clock::now();
  worker->Submit(&copy, absl::Now() + absl::Seconds(10),
                 [&](absl::StatusOr<worker::v1::WorkerToDaemon> reply) {
                   answered = Clock::now();
                   ok = reply.ok() && (batch ? reply->has_batch_result() : reply->has_result());
                   done.Notify();
                 });
  done.WaitForNotification();
  return ok ? std::chrono::duration<double, std::micro>(answered - start).count() : -1;
}

// A reply to `request` as the worker builds it: an 8-byte result per call.
worker::v1::WorkerToDaemon ReplyTo(const worker::v1::DaemonToWorker& request) {
  worker::v1::WorkerToDaemon reply;
  const std::string value(sizeof(double), '\x01');
  if (request.has_batch()) {
    for (int i = 0; i < request.batch().calls_size(); ++i) {
      reply.mutable_batch_result()->add_results()->set_value(value);
    }
  } else {
    reply.mutable_result()->set_value(value);
  }
  reply.set_request_id(request.request_id());
  return reply;
}

// Microseconds of protobuf work per exchange of `request` (median of
// `iterations`): what both ends do with the messages of one hop.
Stats ProtobufWork(const worker::v1::DaemonToWorker& request, int iterations) {
  std::vector<double> us;
  for (int i = 0; i < iterations; ++i) {
    const Clock::time_point start = Clock::now();
    worker::v1::DaemonToWorker sent = request;  // the daemon builds it
    std::string wire = sent.SerializeAsString();
    worker::v1::DaemonToWorker received;
    if (!received.ParseFromString(wire)) std::abort();
    wire = ReplyTo(received).SerializeAsString();
    worker::v1::WorkerToDaemon reply;
    if (!reply.ParseFromString(wire)) std::abort();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return Of(us);
}

void Print(const char* what, const Stats& s) {
  std::printf("%-28s median %8.1f us  p99 %8.1f us\n", what, s.median_us, s.p99_us);
}

int Run(int iterations) {
  const std::string libm = LibmPath();
  absl::StatusOr<ProfileSet> profiles = ProfileSet::LoadDirectory(FFIBROKER_PROFILES_DIR);
  absl::StatusOr<std::unique_ptr<WorkerWatcher>> watcher = WorkerWatcher::Create();
  if (libm.empty() || !profiles.ok() || !watcher.ok()) {
    std::fprintf(stderr, "set-up failed\n");
    return 1;
  }
  absl::StatusOr<Channel> channels[4] = {
      Start(&*profiles, watcher->get(), kDefaultRingBytes, libm, "f64 cos(f64 x)"),
      Start(&*profiles, watcher->get(), 0, libm, "f64 cos(f64 x)"),
      Start(&*profiles, watcher->get(), kDefaultRingBytes, FFIBROKER_CLASSES_LIB, kFill),
      Start(&*profiles, watcher->get(), 0, FFIBROKER_CLASSES_LIB, kFill)};
  for (const auto& channel : channels) {
    if (!channel.ok()) {
      std::fprintf(stderr, "worker: %s\n", StatusText(channel.status()).c_str());
      return 1;
    }
  }
  worker::v1::DaemonToWorker cos_call;
  cos_call.mutable_call()->set_symbol_index(0);
  const double x = 0.5;
  cos_call.mutable_call()->add_args(std::string(reinterpret_cast<const char*>(&x), sizeof x));
  worker::v1::DaemonToWorker buffer_call;
  buffer_call.mutable_call()->set_symbol_index(0);
  const uint64_t length = 1 << 20;
  const uint8_t fill = 7;
  buffer_call.mutable_call()->add_args(std::string(length, '\0'));
  buffer_call.mutable_call()->add_args(
      std::string(reinterpret_cast<const char*>(&length), sizeof length));
  buffer_call.mutable_call()->add_args(std::string(1, static_cast<char>(fill)));

  worker::v1::DaemonToWorker batch_call;
  constexpr int kBatch = 1000;
  for (int i = 0; i < kBatch; ++i) *batch_call.mutable_batch()->add_calls() = cos_call.call();

  struct Pair {
    const char* name;
    const worker::v1::DaemonToWorker* request;
    int iterations;
    Channel* ring;
    Channel* socket;
  } pairs[] = {{"cos", &cos_call, iterations, &*channels[0], &*channels[1]},
               {"1 MiB inout", &buffer_call, iterations / 10, &*channels[2], &*channels[3]},
               {"batch of 1000 cos", &batch_call, iterations / 20, &*channels[0], &*channels[1]}};
  Stats ring_cos, ring_batch;
  for (const Pair& p : pairs) {
    std::vector<double> ring_us, socket_us;
    // Round 0 warms up; at least one round is timed.
    for (int round = 0; round < std::max(2, p.iterations / 100 + 1); ++round) {
      for (auto [channel, out] : {std::pair{p.ring, &ring_us}, std::pair{p.socket, &socket_us}}) {
        for (int i = 0; i < 100; ++i) {
          double us = Hop(channel->worker.get(), *p.request, p.request == &batch_call);
          if (us < 0) {
            std::fprintf(stderr, "%s call failed\n", p.name);
            return 1;
          }
          if (round > 0) out->push_back(us);  // the first round warms up
        }
      }
    }
    const Stats r = Of(ring_us), s = Of(socket_us);
    Print((std::string(p.name) + " hop, ring").c_str(), r);
    Print((std::string(p.name) + " hop, socket").c_str(), s);
    std::printf("%-28s median %.2fx  p99 %.2fx\n", (std::string(p.name) + " ring ÷ socket").c_str(),
                r.median_us / s.median_us, r.p99_us / s.p99_us);
    if (p.request == &cos_call) ring_cos = r;
    if (p.request == &batch_call) ring_batch = r;
  }
  const Stats cos_protobuf = ProtobufWork(cos_call, iterations);
  const Stats batch_protobuf = ProtobufWork(batch_call, iterations / 20);
  Print("cos protobuf work", cos_protobuf);
  std::printf("%-28s median %.3f  (of the ring hop)\n", "cos protobuf ÷ hop",
              cos_protobuf.median_us / ring_cos.median_us);
  std::printf("%-28s median %8.3f us per call; protobuf %.3f us per call, %.2f of it\n",
              "batch hop, ring", ring_batch.median_us / kBatch, batch_protobuf.median_us / kBatch,
              batch_protobuf.median_us / ring_batch.median_us);
  std::optional<Stats> futex = FutexTrips(iterations, Placement::kFree, std::chrono::microseconds(0));
  if (!futex.has_value()) return 1;
  Print("raw futex round trip", *futex);
  std::printf("%-28s median %.2fx  p99 %.2fx   (target <= 3x, and <= 7 us)\n", "cos hop ring ÷ futex",
              ring_cos.median_us / futex->median_us, ring_cos.p99_us / futex->p99_us);
  return 0;
}

}  // namespace
}  // namespace ffibroker

int main(int argc, char** argv) {
  CLI::App app("The daemon -> worker -> daemon hop, ring and socket, against a futex round trip.",
               "channel_hop");
  int iterations = 5000;
  app.add_option("--iterations", iterations, "cos hops per channel")
      ->check(CLI::Range(100, 10000000))
      ->capture_default_str();
  if (std::optional<int> exit_code = ffibroker::ParseFlags(app, argc, argv)) return *exit_code;
  return ffibroker::Run(iterations);
}
