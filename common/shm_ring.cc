#include "common/shm_ring.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace ffibroker {
namespace {

constexpr uint32_t kRegionMagic = 0x46464252;  // "RBFF"
constexpr uint32_t kRegionVersion = 1;
constexpr size_t kPage = 4096;
// Records up to this size leave the reader's buffer as it is.
constexpr size_t kKeptRecordBytes = 1 << 20;

struct RegionHeader {
  uint32_t magic;
  uint32_t version;
  uint32_t ring_bytes;
};

static_assert(sizeof(RingControl) <= kPage, "one page of control words per ring");

size_t RegionSize(uint32_t ring_bytes) { return 3 * kPage + 2 * size_t{ring_bytes}; }

bool ValidRingBytes(uint32_t ring_bytes) {
  return ring_bytes >= kMinRingBytes && ring_bytes <= kMaxRingBytes &&
         (ring_bytes & (ring_bytes - 1)) == 0;
}

uint32_t Load(const uint32_t* word) { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }

long Futex(uint32_t* word, int op, uint32_t value, const timespec* timeout) {
  // Not FUTEX_PRIVATE: the word is shared with another process.
  return ::syscall(SYS_futex, word, op, value, timeout, nullptr, 0);
}

void FutexWait(uint32_t* word, uint32_t expected, absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) return;
  timespec ts = absl::ToTimespec(timeout);
  Futex(word, FUTEX_WAIT, expected, &ts);  // EAGAIN, EINTR, ETIMEDOUT: the caller looks again
}

}  // namespace

absl::StatusOr<std::unique_ptr<ShmRegion>> ShmRegion::Create(uint32_t ring_bytes) {
  if (!ValidRingBytes(ring_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a channel ring of ", ring_bytes, " bytes: it must be a power of two from ",
        kMinRingBytes, " to ", kMaxRingBytes));
  }
  UniqueFd fd(static_cast<int>(::syscall(SYS_memfd_create, "ffibroker-channel",
                                         MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  if (!fd.valid()) return ErrnoStatus("memfd_create", errno);
  const size_t size = RegionSize(ring_bytes);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return ErrnoStatus("ftruncate of the channel's memfd", errno);
  }
  // Its size can no longer change: a worker cannot shrink it under the
  // daemon's mapping (which would turn the daemon's reads into SIGBUS).
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return ErrnoStatus("sealing the channel's memfd", errno);
  }
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) return ErrnoStatus("mmap of the channel", errno);
  auto* header = static_cast<RegionHeader*>(base);
  header->magic = kRegionMagic;
  header->version = kRegionVersion;
  header->ring_bytes = ring_bytes;
  // Both readers start asleep: the first message wakes its reader (which
  // has not looked yet).
  auto region = std::unique_ptr<ShmRegion>(
      new ShmRegion(std::move(fd), static_cast<char*>(base), size, ring_bytes));
  region->control(kToWorker)->reader_asleep = 1;
  region->control(kToDaemon)->reader_asleep = 1;
  return region;
}

absl::StatusOr<std::unique_ptr<ShmRegion>> ShmRegion::Map(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("fstat of the channel's memfd", errno);
  RegionHeader header;
  if (::pread(fd, &header, sizeof header, 0) != static_cast<ssize_t>(sizeof header)) {
    return absl::DataLossError("the channel's memfd has no header");
  }
  if (header.magic != kRegionMagic || header.version != kRegionVersion ||
      !ValidRingBytes(header.ring_bytes) ||
      static_cast<uint64_t>(st.st_size) != RegionSize(header.ring_bytes)) {
    return absl::DataLossError("the channel's memfd has a bad header or size");
  }
  const size_t size = RegionSize(header.ring_bytes);
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return ErrnoStatus("mmap of the channel", errno);
  return std::unique_ptr<ShmRegion>(
      new ShmRegion(UniqueFd(), static_cast<char*>(base), size, header.ring_bytes));
}

ShmRegion::~ShmRegion() { ::munmap(base_, size_); }

RingControl* ShmRegion::control(int ring) const {
  return reinterpret_cast<RingControl*>(base_ + kPage * (1 + ring));
}

char* ShmRegion::data(int ring) const { return base_ + 3 * kPage + size_t{ring_bytes_} * ring; }

void ShmRing::CopyIn(uint32_t position, const char* bytes, uint32_t length) {
  uint32_t at = position & (size_ - 1);
  uint32_t first = std::min(length, size_ - at);
  std::memcpy(data_ + at, bytes, first);
  std::memcpy(data_, bytes + first, length - first);
}

void ShmRing::CopyOut(uint32_t position, char* bytes, uint32_t length) const {
  uint32_t at = position & (size_ - 1);
  uint32_t first = std::min(length, size_ - at);
  std::memcpy(bytes, data_ + at, first);
  std::memcpy(bytes + first, data_, length - first);
}

absl::StatusOr<bool> ShmRing::TryWrite(const char* bytes, uint32_t length) {
  const uint32_t tail = Load(&control_->tail);
  seen_tail_ = tail;
  uint32_t used = head_ - tail;
  if (used > size_) {
    return absl::DataLossError(absl::StrCat("the peer moved its read position to ", tail,
                                            ", ahead of what was written (", head_, ")"));
  }
  const uint64_t need = sizeof(uint32_t) + (bytes == nullptr ? 0 : Padded(length));
  const uint32_t offset = head_ & (size_ - 1);
  if (used == 0 && offset != 0 && need <= offset) {
    // Empty: go on at the ring's start (a skip record to its end), so a
    // ring carrying a message at a time keeps using its first pages, not
    // every page in turn. Only if the record ends before the skip word,
    // which it must not overwrite.
    CopyIn(head_, reinterpret_cast<const char*>(&kRingSkip), sizeof kRingSkip);
    head_ += size_ - offset;
    used = size_ - offset;
  }
  if (need > size_ - used) return false;
  const uint32_t word = bytes == nullptr ? kRingMarker : length;
  CopyIn(head_, reinterpret_cast<const char*>(&word), sizeof word);
  if (bytes != nullptr) CopyIn(head_ + sizeof word, bytes, length);
  head_ += static_cast<uint32_t>(need);
  __atomic_store_n(&control_->head, head_, __ATOMIC_SEQ_CST);
  return true;
}

absl::StatusOr<bool> ShmRing::TryWriteOrAskForRoom(const char* bytes, uint32_t length) {
  ASSIGN_OR_RETURN(bool written, TryWrite(bytes, length));
  if (written) return true;
  AnnounceWriterWaiting();
  return TryWrite(bytes, length);
}

uint64_t ShmRing::Padded(uint32_t length) { return (uint64_t{length} + 3) & ~uint64_t{3}; }

absl::StatusOr<ShmRing::Read> ShmRing::NextWord(uint32_t* word, uint32_t* available_out) {
  const uint32_t head = __atomic_load_n(&control_->head, __ATOMIC_SEQ_CST);
  uint32_t available = head - tail_;
  for (bool skipped = false;; skipped = true) {
    if (available == 0) return Read::kEmpty;
    if (available > size_ || available < sizeof(uint32_t)) {
      return absl::DataLossError(absl::StrCat("the peer's write position (", head,
                                              ") is not a whole record past the read position (",
                                              tail_, ")"));
    }
    // Read once, whole: the peer may change it while we look. Our position
    // is a multiple of 4, so the word never wraps.
    *word = __atomic_load_n(reinterpret_cast<const uint32_t*>(data_ + (tail_ & (size_ - 1))),
                            __ATOMIC_RELAXED);
    if (*word != kRingSkip) break;
    // A skip is written with the record after it, at the ring's start.
    const uint32_t skip = size_ - (tail_ & (size_ - 1));
    if (skipped || skip >= available) {
      return absl::DataLossError(absl::StrCat("a skip of ", skip, " bytes with ", available,
                                              " written (a record must follow it)"));
    }
    tail_ += skip;
    available -= skip;
    __atomic_store_n(&control_->tail, tail_, __ATOMIC_SEQ_CST);
  }
  *available_out = available;
  return Read::kRecord;
}

absl::StatusOr<ShmRing::Read> ShmRing::TryRead(std::string* out) {
  uint32_t word, available;
  ASSIGN_OR_RETURN(Read next, NextWord(&word, &available));
  if (next == Read::kEmpty) return next;
  if (word == kRingMarker) {
    tail_ += sizeof word;
    __atomic_store_n(&control_->tail, tail_, __ATOMIC_SEQ_CST);
    return Read::kMarker;
  }
  if (word > max_message_ || Padded(word) > available - sizeof word) {
    return absl::DataLossError(absl::StrCat("a record of ", word, " bytes, but only ",
                                            available - sizeof word, " were written (at most ",
                                            max_message_, " may be)"));
  }
  // A buffer kept from a much larger record is not kept for small ones.
  if (out->capacity() > kKeptRecordBytes && word <= kKeptRecordBytes) std::string().swap(*out);
  out->resize(word);
  CopyOut(tail_ + sizeof word, out->data(), word);
  tail_ += static_cast<uint32_t>(sizeof word + Padded(word));
  __atomic_store_n(&control_->tail, tail_, __ATOMIC_SEQ_CST);
  return Read::kRecord;
}

absl::StatusOr<bool> ShmRing::TakeMarkerIfFirst() {
  uint32_t word, available;
  ASSIGN_OR_RETURN(Read next, NextWord(&word, &available));
  if (next == Read::kEmpty || word != kRingMarker) return false;
  tail_ += sizeof word;
  __atomic_store_n(&control_->tail, tail_, __ATOMIC_SEQ_CST);
  return true;
}

bool ShmRing::HasData() const { return Load(&control_->head) != tail_; }

void ShmRing::AnnounceReaderAsleep() {
  __atomic_store_n(&control_->reader_asleep, 1, __ATOMIC_SEQ_CST);
}

bool ShmRing::TakeReaderAsleep() {
  // A plain look first: the common case (the reader is awake) writes nothing.
  if (__atomic_load_n(&control_->reader_asleep, __ATOMIC_SEQ_CST) == 0) return false;
  return __atomic_exchange_n(&control_->reader_asleep, 0, __ATOMIC_SEQ_CST) != 0;
}

void ShmRing::AnnounceWriterWaiting() {
  __atomic_store_n(&control_->writer_waiting, 1, __ATOMIC_SEQ_CST);
}

bool ShmRing::TakeWriterWaiting() {
  if (__atomic_load_n(&control_->writer_waiting, __ATOMIC_SEQ_CST) == 0) return false;
  return __atomic_exchange_n(&control_->writer_waiting, 0, __ATOMIC_SEQ_CST) != 0;
}

void ShmRing::WaitForData(absl::Duration timeout) { FutexWait(&control_->head, tail_, timeout); }

void ShmRing::WaitForRoom(absl::Duration timeout) {
  FutexWait(&control_->tail, seen_tail_, timeout);
}

void ShmRing::WakeReader() { Futex(&control_->head, FUTEX_WAKE, 1, nullptr); }

void ShmRing::WakeWriter() { Futex(&control_->tail, FUTEX_WAKE, 1, nullptr); }

}  // namespace ffibroker
