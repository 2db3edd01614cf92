// ShmTransport and its rings: messages of every size in order, the
// wake-ups each side sends, and a hostile worker end (positions and lengths
// that lie, a ring rewritten while the daemon reads it, wake-ups without
// data, a peer that never reads).
#include "common/shm_transport.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "ffibroker/worker/v1/worker.pb.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

using Msg = worker::v1::WorkerToDaemon;
using Available = Transport::Available;

Msg Sized(size_t bytes, int tag) {
  Msg m;
  m.mutable_result()->set_value(std::string(bytes, static_cast<char>('a' + tag % 26)));
  m.mutable_result()->set_errno_value(tag);
  return m;
}

bool Readable(int fd, int timeout_ms) {
  pollfd p = {fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

class ShmTransportTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(kMinRingBytes); }

  void Make(uint32_t ring_bytes) {
    auto region = ShmRegion::Create(ring_bytes);
    ASSERT_TRUE(region.ok()) << region.status();
    auto worker_region = ShmRegion::Map((*region)->fd());
    ASSERT_TRUE(worker_region.ok()) << worker_region.status();
    auto raw = ShmRegion::Map((*region)->fd());
    ASSERT_TRUE(raw.ok()) << raw.status();
    raw_ = *std::move(raw);
    auto pair = SeqpacketTransport::Pair();
    ASSERT_TRUE(pair.ok()) << pair.status();
    daemon_ = std::make_unique<ShmTransport>(ShmTransport::End::kDaemon, *std::move(region),
                                             std::move(pair->first));
    worker_ = std::make_unique<ShmTransport>(ShmTransport::End::kWorker,
                                             *std::move(worker_region), std::move(pair->second));
  }

  // What the daemon's epoll loop does: read on readiness until kNothing.
  absl::StatusOr<Msg> DaemonReads(absl::Duration wait = absl::Seconds(10)) {
    absl::Time deadline = absl::Now() + wait;
    while (true) {
      Msg m;
      absl::StatusOr<Available> got = daemon_->ReceiveAvailable(&m);
      if (!got.ok()) return got.status();
      if (*got == Available::kMessage) return m;
      if (*got == Available::kClosed) return absl::UnavailableError("closed");
      if (absl::Now() > deadline) return absl::DeadlineExceededError("nothing came");
      Readable(daemon_->fd(), 100);
    }
  }

  absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

  std::unique_ptr<ShmRegion> raw_;  // a third mapping: the worker's pen
  std::unique_ptr<ShmTransport> daemon_;
  std::unique_ptr<ShmTransport> worker_;
};

TEST_F(ShmTransportTest, MessagesOfEverySizeArriveInOrderBothWays) {
  // Up to a ring's size through the ring; larger through the socket behind
  // a marker, in order with the rest.
  const size_t sizes[] = {0, 1, 100, 60000, kMinRingBytes - 64, kMinRingBytes + 1, 300000, 5};
  std::thread worker([&] {
    for (int i = 0; i < static_cast<int>(std::size(sizes)); ++i) {
      Msg request;
      ASSERT_TRUE(worker_->Receive(&request, Soon(), -1).ok());
      ASSERT_EQ(request.result().errno_value(), i);
      ASSERT_TRUE(worker_->Send(Sized(sizes[i], i)).ok());
    }
  });
  for (int i = 0; i < static_cast<int>(std::size(sizes)); ++i) {
    auto units = daemon_->Packets(Sized(sizes[i], i));
    ASSERT_TRUE(units.ok()) << units.status();
    for (const std::string& unit : *units) {
      while (true) {
        auto sent = daemon_->TrySendPacket(unit);
        ASSERT_TRUE(sent.ok()) << sent.status();
        if (*sent) break;
        Readable(daemon_->fd(), 10);
      }
    }
    absl::StatusOr<Msg> reply = DaemonReads();
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->result().errno_value(), i);
    EXPECT_EQ(reply->result().value().size(), sizes[i]);
  }
  worker.join();
}

TEST_F(ShmTransportTest, ManyMessagesQueuedAreReadAsTheRingFillsAndDrains) {
  // The worker writes faster than the daemon reads: it waits for room, and
  // the daemon's reads wake it.
  constexpr int kCount = 2000;
  std::thread worker([&] {
    for (int i = 0; i < kCount; ++i) ASSERT_TRUE(worker_->Send(Sized(1000, i)).ok());
  });
  for (int i = 0; i < kCount; ++i) {
    absl::StatusOr<Msg> m = DaemonReads();
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_EQ(m->result().errno_value(), i);
  }
  worker.join();
}

TEST_F(ShmTransportTest, AnEmptyRingAsksTheWorkerForAWakeUpAndOnlyThen) {
  Msg m;
  auto got = daemon_->ReceiveAvailable(&m);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, Available::kNothing);
  EXPECT_FALSE(daemon_->HasBuffered());
  ASSERT_TRUE(worker_->Send(Sized(10, 1)).ok());
  EXPECT_TRUE(Readable(daemon_->fd(), 1000)) << "the worker must wake a daemon that asked";
  got = daemon_->ReceiveAvailable(&m);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(*got, Available::kMessage);
  EXPECT_TRUE(daemon_->HasBuffered());  // it did not ask again: it must look again
  // Not having asked, the daemon gets no wake-up for the next message...
  ASSERT_TRUE(worker_->Send(Sized(10, 2)).ok());
  got = daemon_->ReceiveAvailable(&m);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(*got, Available::kMessage);
  EXPECT_EQ(m.result().errno_value(), 2);
  got = daemon_->ReceiveAvailable(&m);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, Available::kNothing);
  // The one wake-up it had asked for was read with that look; no other was owed.
  EXPECT_FALSE(Readable(daemon_->fd(), 0)) << "no wake-up was owed";
}

TEST_F(ShmTransportTest, ARecordAMarkedMessageAndARecordKeepTheirOrder) {
  // The large message's packets are on the socket before the daemon reads
  // the record ahead of its marker: they still come second.
  const Msg large = Sized(100000, 2);
  ASSERT_TRUE(worker_->Send(Sized(3, 1)).ok());
  std::thread sender([&] { ASSERT_TRUE(worker_->Send(large).ok()); });
  absl::SleepFor(absl::Milliseconds(50));  // its packets are queued (what the socket holds)
  for (int expected : {1, 2, 3}) {
    if (expected == 3) {
      sender.join();
      ASSERT_TRUE(worker_->Send(Sized(3, 3)).ok());
    }
    absl::StatusOr<Msg> m = DaemonReads();
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->result().errno_value(), expected);
  }
}

TEST_F(ShmTransportTest, OutOfBandMessagesComeAfterTheRecordsTheWorkerWroteFirst) {
  // A fatal report (written by hand on the socket) after a reply in the
  // ring: the reply is read first, so a finished call keeps its answer.
  SeqpacketTransport raw_socket{UniqueFd(::dup(worker_->fd()))};
  ASSERT_TRUE(worker_->Send(Sized(3, 8)).ok());
  ASSERT_TRUE(raw_socket.Send(Sized(3, 7)).ok());
  for (int expected : {8, 7}) {
    absl::StatusOr<Msg> m = DaemonReads();
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->result().errno_value(), expected);
  }
  // Garbage on the socket is DATA_LOSS once the ring is read.
  ASSERT_EQ(::send(worker_->fd(), "garbage", 7, 0), 7);
  ASSERT_TRUE(worker_->Send(Sized(3, 9)).ok());
  absl::StatusOr<Msg> before_garbage = DaemonReads();
  ASSERT_TRUE(before_garbage.ok()) << before_garbage.status();
  absl::StatusOr<Msg> garbage = DaemonReads();
  ASSERT_FALSE(garbage.ok());
  EXPECT_TRUE(absl::IsDataLoss(garbage.status())) << garbage.status();
}

TEST(ShmRingTest, ARecordLongerThanTheConsumerTakesIsDataLossBeforeAnyCopy) {
  alignas(64) RingControl control = {};
  std::vector<char> data(kMinRingBytes);
  ShmRing producer(&control, data.data(), kMinRingBytes, kMinRingBytes);
  ShmRing consumer(&control, data.data(), kMinRingBytes, /*max_message=*/100);
  const std::string record(200, 'x');
  ASSERT_TRUE(*producer.TryWrite(record.data(), record.size()));
  std::string out;
  auto read = consumer.TryRead(&out);
  ASSERT_FALSE(read.ok());
  EXPECT_TRUE(absl::IsDataLoss(read.status())) << read.status();
  EXPECT_TRUE(out.empty()) << "it was copied";
}

TEST_F(ShmTransportTest, AnEmptyRingStartsAgainAtItsStart) {
  // One message at a time, as unary calls go: each is written at offset 0
  // again (behind a skip), so pages past the largest record stay untouched.
  const char* data = raw_->data(ShmRegion::kToDaemon);
  for (int i = 1; i <= 100; ++i) {
    const Msg m = Sized(100, i);
    ASSERT_TRUE(worker_->Send(m).ok());
    uint32_t word;
    std::memcpy(&word, data, sizeof word);
    EXPECT_EQ(word, m.ByteSizeLong()) << "message " << i << " is not at the ring's start";
    absl::StatusOr<Msg> got = DaemonReads();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->result().errno_value(), i);
  }
  // A record longer than the room before the skip word is written where the
  // ring stands (it may not overwrite the skip), and read in order.
  const Msg big = Sized(kMinRingBytes / 2, 1), small = Sized(10, 2);
  for (const Msg* m : {&big, &small, &big, &big, &small}) {
    ASSERT_TRUE(worker_->Send(*m).ok());
    absl::StatusOr<Msg> got = DaemonReads();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->result().value().size(), m->result().value().size());
  }
}

TEST_F(ShmTransportTest, ASkipWithoutARecordAfterItIsDataLoss) {
  char* data = raw_->data(ShmRegion::kToDaemon);
  const char hello[] = {0x0a, 0x02, 0x08, 0x07};
  uint32_t length = sizeof hello;
  std::memcpy(data, &length, sizeof length);
  std::memcpy(data + sizeof length, hello, sizeof hello);
  std::memcpy(data + 8, &kRingSkip, sizeof kRingSkip);
  // The skip runs to the ring's end; head says only 8 bytes follow it.
  raw_->control(ShmRegion::kToDaemon)->head = 16;
  Msg m;
  auto got = daemon_->ReceiveAvailable(&m);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(*got, Available::kMessage);
  got = daemon_->ReceiveAvailable(&m);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
}

// Requests in bursts of random sizes (some larger than the ring), each
// echoed by a worker thread, read as the watcher reads: every one comes
// back, in order, without a stall (a lost wake-up would leave the reader
// waiting for its 10 s).
TEST_F(ShmTransportTest, BurstsOfEverySizeEchoInOrderWithoutAStall) {
  constexpr int kCount = 5000;
  std::thread worker([&] {
    for (int i = 0; i < kCount; ++i) {
      Msg request;
      absl::Status received = worker_->Receive(&request, Soon(), -1);
      ASSERT_TRUE(received.ok()) << received << " at " << i;
      ASSERT_TRUE(worker_->Send(request).ok()) << i;
    }
  });
  std::mt19937 random(7);
  int sent = 0, echoed = 0;
  auto read = [&](int wait_ms) {
    Msg m;
    absl::StatusOr<Available> got = daemon_->ReceiveAvailable(&m);
    ASSERT_TRUE(got.ok()) << got.status();
    if (*got == Available::kMessage) {
      ASSERT_EQ(m.result().errno_value(), echoed % 1000);
      ++echoed;
    } else if (wait_ms > 0) {
      ASSERT_TRUE(Readable(daemon_->fd(), wait_ms)) << "stalled at " << echoed << " of " << sent;
    }
  };
  while (echoed < kCount) {
    const int burst = static_cast<int>(random() % 20);
    for (int b = 0; b < burst && sent < kCount; ++b, ++sent) {
      const size_t size = random() % 5 == 0 ? random() % (2 * kMinRingBytes) : random() % 200;
      auto units = daemon_->Packets(Sized(size, sent % 1000));
      ASSERT_TRUE(units.ok());
      for (const std::string& unit : *units) {
        while (true) {
          auto ok = daemon_->TrySendPacket(unit);
          ASSERT_TRUE(ok.ok()) << ok.status();
          if (*ok) break;
          read(0);
          if (HasFatalFailure()) break;
        }
        if (HasFatalFailure()) break;
      }
      if (HasFatalFailure()) break;
    }
    if (HasFatalFailure()) break;
    read(sent > echoed ? 10000 : 0);
    if (HasFatalFailure()) break;
  }
  if (HasFatalFailure()) daemon_.reset();  // the worker thread sees the end and stops
  worker.join();
}

TEST(ShmRingTest, RandomWritesAndReadsComeOutWhole) {
  alignas(64) RingControl control = {};
  std::vector<char> data(kMinRingBytes);
  ShmRing producer(&control, data.data(), kMinRingBytes, kMinRingBytes);
  ShmRing consumer(&control, data.data(), kMinRingBytes, kMinRingBytes);
  std::mt19937 random(1);
  std::deque<std::string> expected;
  for (int step = 0; step < 50000; ++step) {
    if (random() % 2) {
      std::string record(random() % 3 == 0 ? random() % 30000 : random() % 200, '\0');
      for (char& c : record) c = static_cast<char>(random());
      auto written = producer.TryWrite(record.data(), static_cast<uint32_t>(record.size()));
      ASSERT_TRUE(written.ok()) << written.status();
      if (*written) expected.push_back(std::move(record));
    } else {
      std::string out;
      auto read = consumer.TryRead(&out);
      ASSERT_TRUE(read.ok()) << read.status() << " at " << step;
      if (*read == ShmRing::Read::kEmpty) {
        ASSERT_TRUE(expected.empty()) << step;
        continue;
      }
      ASSERT_FALSE(expected.empty());
      ASSERT_EQ(out, expected.front()) << step;
      expected.pop_front();
    }
  }
}

TEST_F(ShmTransportTest, AWakeUpWithoutDataIsNothing) {
  ASSERT_EQ(::send(worker_->fd(), "K", 1, 0), 1);
  Msg m;
  auto got = daemon_->ReceiveAvailable(&m);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Available::kNothing);
  EXPECT_FALSE(Readable(daemon_->fd(), 0)) << "the wake-up was consumed";
}

TEST_F(ShmTransportTest, AFloodOfWakeUpsCannotHoldTheReader) {
  int sent = 0;
  while (::send(worker_->fd(), "K", 1, MSG_DONTWAIT) == 1) ++sent;
  ASSERT_GT(sent, 64);
  Msg m;
  auto got = daemon_->ReceiveAvailable(&m);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Available::kNothing);
  EXPECT_TRUE(Readable(daemon_->fd(), 0)) << "it came back before reading them all";
}

TEST_F(ShmTransportTest, AWakeUpWithBytesIsDataLoss) {
  ASSERT_EQ(::send(worker_->fd(), "KK", 2, 0), 2);
  Msg m;
  auto got = daemon_->ReceiveAvailable(&m);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
}

TEST_F(ShmTransportTest, AWritePositionPastTheRingIsDataLoss) {
  RingControl* to_daemon = raw_->control(ShmRegion::kToDaemon);
  to_daemon->head = raw_->ring_bytes() + 8;
  Msg m;
  auto got = daemon_->ReceiveAvailable(&m);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
}

TEST_F(ShmTransportTest, ARecordLongerThanWhatWasWrittenIsDataLoss) {
  RingControl* to_daemon = raw_->control(ShmRegion::kToDaemon);
  uint32_t length = 1000;  // but only 10 bytes follow
  std::memcpy(raw_->data(ShmRegion::kToDaemon), &length, sizeof length);
  to_daemon->head = sizeof length + 10;
  Msg m;
  auto got = daemon_->ReceiveAvailable(&m);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
  EXPECT_NE(got.status().message().find("1000"), std::string::npos) << got.status();
}

TEST_F(ShmTransportTest, APartialRecordHeaderIsDataLoss) {
  raw_->control(ShmRegion::kToDaemon)->head = 2;
  Msg m;
  auto got = daemon_->ReceiveAvailable(&m);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
}

TEST_F(ShmTransportTest, AReadPositionAheadOfTheWritesIsDataLossForTheSender) {
  raw_->control(ShmRegion::kToWorker)->tail = 12345;
  auto units = daemon_->Packets(Sized(10, 1));
  ASSERT_TRUE(units.ok());
  auto sent = daemon_->TrySendPacket(units->front());
  ASSERT_FALSE(sent.ok());
  EXPECT_TRUE(absl::IsDataLoss(sent.status())) << sent.status();
}

TEST_F(ShmTransportTest, UnparsableRecordIsDataLoss) {
  const char junk[] = {0x0f, 0x0f, 0x0f, 0x0f};  // field 1 of wire type 7
  uint32_t length = sizeof junk;
  char* data = raw_->data(ShmRegion::kToDaemon);
  std::memcpy(data, &length, sizeof length);
  std::memcpy(data + sizeof length, junk, sizeof junk);
  raw_->control(ShmRegion::kToDaemon)->head = sizeof length + sizeof junk;
  Msg m;
  auto got = daemon_->ReceiveAvailable(&m);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
}

TEST_F(ShmTransportTest, ARingRewrittenWhileTheDaemonReadsNeverHurtsIt) {
  // A worker scribbling positions, lengths and bytes at random while the
  // daemon reads: every read is a message, nothing, or DATA_LOSS (under
  // ASan: never a read outside the mapping).
  std::atomic<bool> stop{false};
  std::thread scribbler([&] {
    std::mt19937 random(42);
    RingControl* control = raw_->control(ShmRegion::kToDaemon);
    char* data = raw_->data(ShmRegion::kToDaemon);
    while (!stop.load()) {
      __atomic_store_n(&control->head, static_cast<uint32_t>(random()), __ATOMIC_RELAXED);
      uint32_t at = random() % (raw_->ring_bytes() - 8);
      uint32_t value = random() % 3 == 0 ? static_cast<uint32_t>(random()) : random() % 64;
      std::memcpy(data + at, &value, sizeof value);
    }
  });
  int losses = 0;
  for (int i = 0; i < 20000; ++i) {
    Msg m;
    auto got = daemon_->ReceiveAvailable(&m);
    if (!got.ok()) {
      EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
      ++losses;
    }
  }
  stop = true;
  scribbler.join();
  EXPECT_GT(losses, 0);
}

TEST_F(ShmTransportTest, APeerThatNeverReadsRunsTheSenderIntoItsDeadline) {
  daemon_->set_send_timeout(absl::Milliseconds(200));
  worker_->set_send_timeout(absl::Milliseconds(200));
  const Msg big = Sized(kMinRingBytes / 2, 1);
  // The daemon's non-waiting send fills the ring, then says "no room" and
  // that the worker's wake-up will announce room.
  int sent = 0;
  while (true) {
    auto units = daemon_->Packets(big);
    ASSERT_TRUE(units.ok());
    auto ok = daemon_->TrySendPacket(units->front());
    ASSERT_TRUE(ok.ok()) << ok.status();
    if (!*ok) break;
    ++sent;
  }
  EXPECT_GE(sent, 1);
  EXPECT_TRUE(daemon_->RoomOnReadable());
  // The worker reads one: it owes the daemon a wake-up.
  Msg m;
  ASSERT_TRUE(worker_->Receive(&m, Soon(), -1).ok());
  EXPECT_TRUE(Readable(daemon_->fd(), 1000));
  // The worker's blocking send to a daemon that never reads ends at its deadline.
  absl::Status status;
  for (int i = 0; i < 100 && status.ok(); ++i) status = worker_->Send(big);
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  // And a daemon waiting for a silent worker, at its own.
  Msg reply;
  absl::Status received = daemon_->Receive(&reply, absl::Now() + absl::Milliseconds(100), -1);
  EXPECT_TRUE(received.ok() || absl::IsDeadlineExceeded(received)) << received;
}

TEST_F(ShmTransportTest, AWaitingWorkerSeesTheDaemonGo) {
  std::thread worker([&] {
    Msg m;
    absl::Time start = absl::Now();
    absl::Status status = worker_->Receive(&m, absl::Now() + absl::Seconds(20), -1);
    EXPECT_TRUE(absl::IsUnavailable(status)) << status;
    EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  });
  absl::SleepFor(absl::Milliseconds(50));
  daemon_.reset();
  worker.join();
}

TEST_F(ShmTransportTest, AWorkerWaitingWithADeadlineGetsIt) {
  Msg m;
  absl::Status status = worker_->Receive(&m, absl::Now() + absl::Milliseconds(50), -1);
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
}

TEST(ShmRegionTest, SizesMustBePowersOfTwoInRange) {
  EXPECT_TRUE(absl::IsInvalidArgument(ShmRegion::Create(100000).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ShmRegion::Create(kMinRingBytes / 2).status()));
  EXPECT_TRUE(ShmRegion::Create(kMinRingBytes).ok());
}

TEST(ShmRegionTest, MapRefusesAFileThatIsNoRegion) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  EXPECT_FALSE(ShmRegion::Map(fds[0]).ok());
  ::close(fds[0]);
  ::close(fds[1]);
  auto region = ShmRegion::Create(kMinRingBytes);
  ASSERT_TRUE(region.ok());
  // Sealed: neither side can resize it under the other's mapping.
  EXPECT_NE(::ftruncate((*region)->fd(), 4096), 0);
}

}  // namespace
}  // namespace ffibroker
