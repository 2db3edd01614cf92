// ffibroker-worker: serves calls into one library for ffibrokerd.
//
// Started by the daemon with exec, its channel on fd 3 (and with --ring-fd,
// the channel's shared memory on fd 4). Not meant to be run
// by hand. Order: confine (early layers) -> Hello -> [Prestart: the lockdown
// before loading, for a pre-started worker] -> Open (dlopen, callback
// closures, dlsym, ffi_prep_cif) -> serve requests until the channel
// closes. Every reply carries the request_id of the request it answers;
// callback invocations are events with id 0 (docs/worker-protocol.md).
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>

#include "common/error_reason.h"
#include "absl/status/status.h"
#include "common/cli_flags.h"
#include "common/log.h"
#include "common/shm_transport.h"
#include "common/transport.h"
#include "common/worker_protocol.h"
#include "daemon/worker/confinement.h"
#include "daemon/worker/lockdown.h"
#include "daemon/worker/request_server.h"
#include "daemon/worker/worker_channel.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {
namespace {

// Serves requests until the channel closes (exit status 0) or fails (1).
[[noreturn]] void Serve(Transport& transport) {
  WorkerChannel channel(&transport);
  worker::v1::WorkerToDaemon hello;
  hello.mutable_hello()->set_protocol_version(kWorkerProtocolVersion);
  ReportEarlyLayers(hello.mutable_hello()->mutable_layers());
  if (!channel.Send(hello).ok()) LeaveWorker(1);
  RequestServer server(&channel, hello.hello().layers());
  while (true) {
    absl::StatusOr<worker::v1::DaemonToWorker> request = channel.NextRequest();
    if (!request.ok()) LeaveWorker(absl::IsUnavailable(request.status()) ? 0 : 1);
    server.SendReply(server.Serve(*request));
  }
}

}  // namespace
}  // namespace ffibroker

namespace {
constexpr int kWorkerHeapKeepBytes = 8 << 20;
}  // namespace

int main(int argc, char** argv) {
  using namespace ffibroker;
  // Buffers up to 8 MiB stay in the heap, and up to 8 MiB of free heap
  // stays mapped between calls: glibc's defaults gave a 1 MiB inout call
  // back to the kernel after every call and faulted it in again in the
  // next (about 4 of its 18 ms, call_core's buffer line). Set before the
  // worker's own allocations; the heap's growth stays under the profile's
  // RLIMIT_AS.
  mallopt(M_MMAP_THRESHOLD, kWorkerHeapKeepBytes);
  mallopt(M_TRIM_THRESHOLD, kWorkerHeapKeepBytes);
  InitLogging("ffibroker-worker", LogLevel::kWarning);
  CLI::App app("Serves calls into one library for ffibrokerd, which starts it with its "
               "channel on fd 3; not meant to be run by hand.",
               "ffibroker-worker");
  pid_t parent_pid = 0;
  app.add_option("--parent-pid", parent_pid,
                 "pid of the daemon that started us (0: invisible, own pid namespace)")
      ->required()
      ->check(CLI::NonNegativeNumber);
  int ring_fd = -1;
  app.add_option("--ring-fd", ring_fd,
                 "the channel's shared memory (common/shm_ring.h); without it, the socket alone")
      ->check(CLI::Range(kWorkerRingFd, kWorkerRingFd));
  if (std::optional<int> exit_code = ParseFlags(app, argc, argv)) return *exit_code;
  // Mapped before any confinement, and its descriptor closed at once: the
  // region outlives it, and no later step (nor the library) can resize it.
  std::unique_ptr<ShmRegion> region;
  if (ring_fd >= 0) {
    absl::StatusOr<std::unique_ptr<ShmRegion>> mapped = ShmRegion::Map(ring_fd);
    ::close(ring_fd);
    if (!mapped.ok()) {
      LOG_ERROR("cannot map the channel: %s", StatusText(mapped.status()));
      return 1;
    }
    region = *std::move(mapped);
  }
  absl::Status confined =
      ApplyEarlyConfinement(parent_pid, kWorkerChannelFd);
  if (!confined.ok()) {
    LOG_ERROR("confinement failed: %s", StatusText(confined));
    return 1;
  }
  auto socket = std::make_unique<SeqpacketTransport>(UniqueFd(kWorkerChannelFd));
  if (region == nullptr) Serve(*socket);
  ShmTransport channel(ShmTransport::End::kWorker, std::move(region), std::move(socket));
  Serve(channel);
}
