// ShmRegion and ShmRing: the shared memory under ShmTransport.
//
// A region is one memfd mapped by the daemon and by its worker, holding two
// single-producer single-consumer byte rings: one from the daemon to the
// worker, one back. Layout (docs/worker-protocol.md, "The shared-memory
// channel"):
//
//   page 0       RegionHeader (magic, version, ring size), written once by
//                the daemon before the worker starts
//   page 1       control words of the ring to the worker
//   page 2       control words of the ring to the daemon
//   page 3..     the ring to the worker's bytes, then the ring to the
//                daemon's bytes (ring_bytes each, a power of two)
//
// Each control word sits on its own cache line. Positions are byte counts
// that wrap at 2^32 (ring_bytes is at most 2^30, so `head - tail` is the
// number of unread bytes). A record is a 4-byte little-endian word, then
// that many bytes, padded to a multiple of 4; the word kRingMarker instead
// says "the next message is on the socket" (one too large for the ring),
// and kRingSkip "the rest of the ring is unused: the next record is at its
// start" (a producer that finds its ring empty goes back to the start when
// the record fits before the skip, so a ring carrying a message at a time
// keeps to the pages its largest record needs).
//
// The peer can write any page at any time. So each end keeps its own
// position in private memory and only reads the peer's from the region;
// the peer's position is checked against the ring size before use; a
// record's length is read once, checked, and its bytes copied out before
// anything looks at them. A violation is DATA_LOSS.
//
// Not thread-safe: one producer and one consumer per ring.
#ifndef FFIBROKER_COMMON_SHM_RING_H_
#define FFIBROKER_COMMON_SHM_RING_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"

namespace ffibroker {

inline constexpr uint32_t kRingMarker = 0xFFFFFFFFu;
inline constexpr uint32_t kRingSkip = 0xFFFFFFFEu;
inline constexpr uint32_t kMinRingBytes = 64 * 1024;
// No message is larger than this (kMaxWorkerMessageBytes, 17 MiB and its
// envelope), and the rings count in the worker's address-space limit.
inline constexpr uint32_t kMaxRingBytes = 32u << 20;
// The daemon's default: a 1 MiB buffer call and its reply each fit.
inline constexpr uint32_t kDefaultRingBytes = 2u << 20;

// The control words of one ring (each on its own cache line).
struct RingControl {
  alignas(64) uint32_t head;            // bytes ever written (the producer's)
  alignas(64) uint32_t tail;            // bytes ever read (the consumer's)
  alignas(64) uint32_t reader_asleep;   // 1: the consumer waits for a wake-up
  alignas(64) uint32_t writer_waiting;  // 1: the producer waits for room
};

// A mapped region (RAII: unmapped on destruction).
class ShmRegion {
 public:
  // The daemon's side: a new memfd of two rings of `ring_bytes` (a power of
  // two in [kMinRingBytes, kMaxRingBytes]), mapped and initialized.
  static absl::StatusOr<std::unique_ptr<ShmRegion>> Create(uint32_t ring_bytes);
  // The worker's side: maps the region the daemon created (its header
  // checked against the file's size).
  static absl::StatusOr<std::unique_ptr<ShmRegion>> Map(int fd);
  ~ShmRegion();
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;

  // The memfd (Create only; invalid once released to the child).
  int fd() const { return fd_.get(); }
  void CloseFd() { fd_.reset(); }
  uint32_t ring_bytes() const { return ring_bytes_; }
  RingControl* control(int ring) const;
  char* data(int ring) const;
  // The ring index for each direction.
  static constexpr int kToWorker = 0;
  static constexpr int kToDaemon = 1;

 private:
  ShmRegion(UniqueFd fd, char* base, size_t size, uint32_t ring_bytes)
      : fd_(std::move(fd)), base_(base), size_(size), ring_bytes_(ring_bytes) {}
  UniqueFd fd_;
  char* base_;
  size_t size_;
  uint32_t ring_bytes_;
};

// One end of one ring: a producer or a consumer.
class ShmRing {
 public:
  // `max_message`: the largest record the consumer accepts.
  ShmRing(RingControl* control, char* data, uint32_t size, uint32_t max_message)
      : control_(control), data_(data), size_(size), max_message_(max_message) {}

  // Producer. Writes a record of `length` bytes (or the marker, with
  // `bytes` null) if there is room: true if written, false if not (the
  // record fits an empty ring: the caller checked). DATA_LOSS if the
  // consumer's position is impossible.
  absl::StatusOr<bool> TryWrite(const char* bytes, uint32_t length);
  // TryWrite; if there is no room, asks the consumer to say when it has
  // read (AnnounceWriterWaiting) and looks once more, so a read between the
  // first look and the request is not missed.
  absl::StatusOr<bool> TryWriteOrAskForRoom(const char* bytes, uint32_t length);
  // Largest record a ring of this size takes.
  uint32_t max_record() const { return size_ - sizeof(uint32_t); }

  // Consumer. Reads the next record into `*out`.
  enum class Read { kRecord, kMarker, kEmpty };
  absl::StatusOr<Read> TryRead(std::string* out);
  // Takes the next record if it is a marker: true if taken.
  absl::StatusOr<bool> TakeMarkerIfFirst();
  // True if a record is waiting (a cheap look, for spinning).
  bool HasData() const;

  // Sleeping and waking (seq_cst, so no wake-up is lost between a check
  // and a sleep). The consumer announces it will sleep, then must check
  // again; the producer, after writing, takes the announcement.
  void AnnounceReaderAsleep();
  bool TakeReaderAsleep();
  void AnnounceWriterWaiting();
  bool TakeWriterWaiting();
  // Futex waits (the worker's side) until the ring has data / room or
  // `timeout` passes, and the matching wakes (the daemon's side).
  // WaitForRoom waits for the consumer to move from where the last
  // TryWrite saw it.
  void WaitForData(absl::Duration timeout);
  void WaitForRoom(absl::Duration timeout);
  void WakeReader();
  void WakeWriter();

 private:
  static uint64_t Padded(uint32_t length);
  // The word at our read position (past a skip, which it takes), read
  // once, and how many bytes are written from it; kEmpty if none yet.
  absl::StatusOr<Read> NextWord(uint32_t* word, uint32_t* available);
  void CopyIn(uint32_t position, const char* bytes, uint32_t length);
  void CopyOut(uint32_t position, char* bytes, uint32_t length) const;

  RingControl* const control_;
  char* const data_;
  const uint32_t size_;
  const uint32_t max_message_;
  uint32_t head_ = 0;  // the producer's own position
  uint32_t tail_ = 0;  // the consumer's own position
  uint32_t seen_tail_ = 0;  // the consumer's position TryWrite last saw
};

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_SHM_RING_H_
