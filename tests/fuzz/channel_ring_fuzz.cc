// Fuzz target: the daemon's end of the shared-memory channel
// (common/shm_transport.h) against a worker that writes anything into the
// ring to the daemon, its control words, and its socket. The input is laid
// into a real region (a sealed memfd of the smallest ring) and a real
// SOCK_SEQPACKET pair, and the daemon's end reads as its watcher does
// (ReceiveAvailable until it says nothing, at most 1,000 times).
//
// Input, little-endian: u32 the head of the ring to the daemon, u32 the
// tail of the ring to the worker (as the worker leaves them), u32 a length
// and that many bytes of the ring (from its start), u8 whose bit 0 closes
// the worker's socket, then packets for the socket, each a u16 length and
// its bytes.
// Invariants: every read is a message, nothing, closed, or DATA_LOSS (and
// under ASan never outside the mapping); after DATA_LOSS the channel is
// abandoned, as the daemon abandons it.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "common/shm_transport.h"
#include "ffibroker/worker/v1/worker.pb.h"
#include "tests/fuzz/fuzz_values.h"

namespace ffibroker {
namespace {

// Reads the input front to back; missing bytes read as zero.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <typename T>
  T Take() {
    T value = 0;
    const size_t n = std::min(sizeof value, size_ - at_);
    std::memcpy(&value, data_ + at_, n);
    at_ += n;
    return value;
  }
  std::string Bytes(size_t n) {
    n = std::min(n, size_ - at_);
    std::string out(reinterpret_cast<const char*>(data_ + at_), n);
    at_ += n;
    return out;
  }
  size_t left() const { return size_ - at_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

void Run(const uint8_t* data, size_t size) {
  Reader input(data, size);
  auto region = ShmRegion::Create(kMinRingBytes);
  auto worker_view = region.ok() ? ShmRegion::Map((*region)->fd()) : region.status();
  auto pair = SeqpacketTransport::Pair();
  if (!region.ok() || !worker_view.ok() || !pair.ok()) return;
  (*worker_view)->control(ShmRegion::kToDaemon)->head = input.Take<uint32_t>();
  // The worker's read position in the ring to it (the daemon's sends check it).
  (*worker_view)->control(ShmRegion::kToWorker)->tail = input.Take<uint32_t>();
  const std::string ring = input.Bytes(std::min<uint32_t>(input.Take<uint32_t>(), kMinRingBytes));
  std::memcpy((*worker_view)->data(ShmRegion::kToDaemon), ring.data(), ring.size());
  const bool close = input.Take<uint8_t>() & 1;
  std::unique_ptr<SeqpacketTransport> worker_socket = std::move(pair->second);
  while (input.left() >= 2) {
    std::string packet = input.Bytes(input.Take<uint16_t>());
    if (::send(worker_socket->fd(), packet.data(), packet.size(), MSG_DONTWAIT) < 0) break;
  }
  if (close) worker_socket.reset();  // the worker's end
  ShmTransport daemon_end(ShmTransport::End::kDaemon, *std::move(region),
                          std::move(pair->first));
  worker::v1::DaemonToWorker request;
  request.mutable_call()->set_symbol_index(1);
  auto units = daemon_end.Packets(request);
  FUZZ_CHECK(units.ok(), units.status().ToString());
  absl::StatusOr<bool> sent = daemon_end.TrySendPacket(units->front());
  if (!sent.ok()) {
    FUZZ_CHECK(sent.status().code() == absl::StatusCode::kDataLoss, sent.status().ToString());
  }
  for (int i = 0; i < 1000; ++i) {
    worker::v1::WorkerToDaemon message;
    absl::StatusOr<Transport::Available> got = daemon_end.ReceiveAvailable(&message);
    if (!got.ok()) {
      FUZZ_CHECK(got.status().code() == absl::StatusCode::kDataLoss, got.status().ToString());
      return;
    }
    if (*got != Transport::Available::kMessage) return;
  }
}

}  // namespace
}  // namespace ffibroker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ffibroker::Run(data, size);
  return 0;
}
