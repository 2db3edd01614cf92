#include "common/transport.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "ffibroker/worker/v1/worker.pb.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

using Msg = worker::v1::WorkerToDaemon;

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pair = SeqpacketTransport::Pair();
    ASSERT_TRUE(pair.ok()) << pair.status();
    a_ = std::move(pair->first);
    b_ = std::move(pair->second);
  }

  static absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

  std::unique_ptr<SeqpacketTransport> a_;
  std::unique_ptr<SeqpacketTransport> b_;
};

Msg ResultMessage(const std::string& bytes, int err) {
  Msg m;
  m.mutable_result()->set_value(bytes);
  m.mutable_result()->set_errno_value(err);
  return m;
}

TEST_F(TransportTest, PairHasDistinctCloseOnExecDescriptors) {
  ASSERT_GE(a_->fd(), 0);
  ASSERT_GE(b_->fd(), 0);
  EXPECT_NE(a_->fd(), b_->fd());
  for (int fd : {a_->fd(), b_->fd()}) {
    int flags = ::fcntl(fd, F_GETFD);
    ASSERT_GE(flags, 0);
    EXPECT_TRUE(flags & FD_CLOEXEC) << "fd " << fd;
    int type = 0;
    socklen_t len = sizeof type;
    ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
    EXPECT_EQ(type, SOCK_SEQPACKET);
  }
}

TEST_F(TransportTest, RoundTripBothDirections) {
  const std::string bytes("\x00\x01\xff\x7f", 4);
  ASSERT_TRUE(a_->Send(ResultMessage(bytes, 34)).ok());
  Msg got;
  absl::Status status = b_->Receive(&got, Soon(), -1);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_TRUE(got.has_result());
  EXPECT_EQ(got.result().value(), bytes);
  EXPECT_EQ(got.result().errno_value(), 34);

  Msg hello;
  hello.mutable_hello()->set_protocol_version(7);
  ASSERT_TRUE(b_->Send(hello).ok());
  Msg back;
  ASSERT_TRUE(a_->Receive(&back, absl::InfiniteFuture(), -1).ok());
  ASSERT_TRUE(back.has_hello());
  EXPECT_EQ(back.hello().protocol_version(), 7u);
}

TEST_F(TransportTest, MessagesKeepTheirBoundariesAndOrder) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(a_->Send(ResultMessage(std::string(i, 'x'), i)).ok());
  }
  for (int i = 0; i < 5; ++i) {
    Msg got;
    ASSERT_TRUE(b_->Receive(&got, Soon(), -1).ok());
    EXPECT_EQ(got.result().value(), std::string(i, 'x'));
    EXPECT_EQ(got.result().errno_value(), i);
  }
}

TEST_F(TransportTest, EmptyMessageRoundTrips) {
  ASSERT_TRUE(a_->Send(Msg()).ok());
  Msg got = ResultMessage("stale", 1);
  absl::Status status = b_->Receive(&got, Soon(), -1);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(got.msg_case(), Msg::MSG_NOT_SET);
}

TEST_F(TransportTest, DeadlineInThePast) {
  Msg got;
  absl::Status status = b_->Receive(&got, absl::Now() - absl::Seconds(1), -1);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
}

TEST_F(TransportTest, DeadlineSoon) {
  Msg got;
  absl::Time start = absl::Now();
  absl::Status status = b_->Receive(&got, start + absl::Milliseconds(50), -1);
  absl::Duration waited = absl::Now() - start;
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_GE(waited, absl::Milliseconds(49));
  EXPECT_LT(waited, absl::Seconds(5));
}

TEST_F(TransportTest, PeerDestroyedIsUnavailable) {
  a_.reset();
  Msg got;
  absl::Status status = b_->Receive(&got, Soon(), -1);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  // Sending to the departed peer is UNAVAILABLE too (and raises no SIGPIPE).
  status = b_->Send(ResultMessage("x", 0));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
}

TEST_F(TransportTest, QueuedMessageIsDeliveredBeforeHangUp) {
  ASSERT_TRUE(a_->Send(ResultMessage("last words", 0)).ok());
  a_.reset();
  Msg got;
  absl::Status status = b_->Receive(&got, Soon(), -1);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(got.result().value(), "last words");
  EXPECT_EQ(b_->Receive(&got, Soon(), -1).code(), absl::StatusCode::kUnavailable);
}

TEST_F(TransportTest, GarbagePacketIsDataLoss) {
  // Field 4 (error), length-delimited, claims 16 bytes but carries 2.
  const char truncated[] = "\x22\x10zz";
  ASSERT_EQ(::send(a_->fd(), truncated, 4, 0), 4);
  // An unterminated varint.
  const std::string bad_varint(11, '\xff');
  ASSERT_EQ(::send(a_->fd(), bad_varint.data(), bad_varint.size(), 0),
            static_cast<ssize_t>(bad_varint.size()));
  Msg got;
  EXPECT_EQ(b_->Receive(&got, Soon(), -1).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(b_->Receive(&got, Soon(), -1).code(), absl::StatusCode::kDataLoss);
  // The channel stays usable: the next well-formed packet parses.
  ASSERT_TRUE(a_->Send(ResultMessage("ok", 0)).ok());
  absl::Status status = b_->Receive(&got, Soon(), -1);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(got.result().value(), "ok");
}

TEST_F(TransportTest, OversizedRawPacketIsDataLoss) {
  std::string big(kChannelPacketBytes + 1, '\0');
  big[0] = kTransportFrameByte;
  ASSERT_EQ(::send(a_->fd(), big.data(), big.size(), 0),
            static_cast<ssize_t>(big.size()))
      << "errno " << errno;
  Msg got;
  EXPECT_EQ(b_->Receive(&got, Soon(), -1).code(), absl::StatusCode::kDataLoss);
}

TEST_F(TransportTest, WatchedPipeAborts) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  Msg got;
  // Not readable yet: the deadline decides.
  EXPECT_EQ(b_->Receive(&got, absl::Now() + absl::Milliseconds(20), r.get()).code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_EQ(::write(w.get(), "x", 1), 1);
  absl::Status status = b_->Receive(&got, Soon(), r.get());
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
}

TEST_F(TransportTest, WatchedEventfdAborts) {
  UniqueFd efd(::eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(efd.valid());
  uint64_t one = 1;
  ASSERT_EQ(::write(efd.get(), &one, sizeof one), static_cast<ssize_t>(sizeof one));
  Msg got;
  absl::Status status = b_->Receive(&got, absl::InfiniteFuture(), efd.get());
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
}

TEST_F(TransportTest, WatchedPipeClosedByWriterAborts) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]);
  ::close(p[1]);  // EOF makes the read end readable
  Msg got;
  EXPECT_EQ(b_->Receive(&got, Soon(), r.get()).code(), absl::StatusCode::kAborted);
}

TEST_F(TransportTest, PendingMessageWinsOverWatchedDescriptor) {
  UniqueFd efd(::eventfd(1, EFD_CLOEXEC));
  ASSERT_TRUE(efd.valid());
  ASSERT_TRUE(a_->Send(ResultMessage("first", 0)).ok());
  Msg got;
  absl::Status status = b_->Receive(&got, Soon(), efd.get());
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(got.result().value(), "first");
  EXPECT_EQ(b_->Receive(&got, Soon(), efd.get()).code(), absl::StatusCode::kAborted);
}

TEST_F(TransportTest, OversizedSendIsResourceExhausted) {
  Msg m;
  m.mutable_error()->set_message(std::string(kMaxMessageBytes + 1, 'e'));
  absl::Status status = a_->Send(m);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("worker channel limit"), absl::string_view::npos) << status;
  // Nothing reached the peer.
  Msg got;
  EXPECT_EQ(b_->Receive(&got, absl::Now() + absl::Milliseconds(20), -1).code(),
            absl::StatusCode::kDeadlineExceeded);
}

// A message of exactly `size` serialized bytes.
Msg MessageOfSize(size_t size) {
  Msg m = ResultMessage(std::string(size, 'v'), 0);
  size_t over = m.ByteSizeLong() - size;
  m = ResultMessage(std::string(size - over, 'v'), 0);
  while (m.ByteSizeLong() < size) m.mutable_result()->mutable_value()->push_back('v');
  return m;
}

// Sizes around the fragmenting threshold and the maximum round-trip, the
// receiver reading while the sender fills the socket buffer.
TEST_F(TransportTest, MessagesOfEverySizeUpToTheMaximumRoundTrip) {
  for (size_t size : {kChannelPacketBytes - 2, kChannelPacketBytes - 1, kChannelPacketBytes,
                      kChannelPacketBytes + 1, 2 * kChannelPacketBytes - 9,
                      2 * kChannelPacketBytes, size_t{3} << 20, kMaxMessageBytes}) {
    Msg m = MessageOfSize(size);
    ASSERT_EQ(m.ByteSizeLong(), size);
    for (size_t i = 0; i < m.result().value().size(); i += 4093) {
      (*m.mutable_result()->mutable_value())[i] = static_cast<char>(i / 4093);
    }
    absl::Status sent;
    std::thread sender([&] { sent = a_->Send(m); });
    Msg got;
    absl::Status status = b_->Receive(&got, Soon(), -1);
    sender.join();
    ASSERT_TRUE(sent.ok()) << size << ": " << sent;
    ASSERT_TRUE(status.ok()) << size << ": " << status;
    EXPECT_TRUE(got.result().value() == m.result().value()) << size;
  }
}

TEST_F(TransportTest, AFatalPacketBetweenFragmentsIsDelivered) {
  std::string first(kChannelPacketBytes, 'x');
  first[0] = kTransportFirstFragmentByte;
  uint64_t total = 2 * kChannelPacketBytes;
  std::memcpy(&first[1], &total, sizeof total);
  ASSERT_EQ(::send(a_->fd(), first.data(), first.size(), 0), static_cast<ssize_t>(first.size()));
  Msg fatal;
  fatal.mutable_fatal()->set_signal(11);
  std::string packet(1, kTransportFrameByte);
  fatal.AppendToString(&packet);
  ASSERT_EQ(::send(a_->fd(), packet.data(), packet.size(), 0), static_cast<ssize_t>(packet.size()));
  Msg got;
  absl::Status status = b_->Receive(&got, Soon(), -1);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(got.fatal().signal(), 11);
  // The abandoned message's continuation is out of order.
  std::string next(10, 'y');
  next[0] = kTransportNextFragmentByte;
  ASSERT_EQ(::send(a_->fd(), next.data(), next.size(), 0), 10);
  EXPECT_EQ(b_->Receive(&got, Soon(), -1).code(), absl::StatusCode::kDataLoss);
}

TEST_F(TransportTest, FragmentsOutOfOrderOrPastTheirLengthAreDataLoss) {
  auto send = [&](char frame, uint64_t total, size_t size) {
    std::string p(size, 'z');
    p[0] = frame;
    if (frame == kTransportFirstFragmentByte) std::memcpy(&p[1], &total, sizeof total);
    return ::send(a_->fd(), p.data(), p.size(), 0) == static_cast<ssize_t>(p.size());
  };
  Msg got;
  ASSERT_TRUE(send(kTransportFirstFragmentByte, uint64_t{1} << 40, 100));  // too large
  EXPECT_EQ(b_->Receive(&got, Soon(), -1).code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(send(kTransportFirstFragmentByte, 100, 50));  // small enough for one packet
  EXPECT_EQ(b_->Receive(&got, Soon(), -1).code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(send(kTransportFirstFragmentByte, kChannelPacketBytes, 1000));
  ASSERT_TRUE(send(kTransportNextFragmentByte, 0, kChannelPacketBytes));  // past the total
  EXPECT_EQ(b_->Receive(&got, Soon(), -1).code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(a_->Send(ResultMessage("ok", 0)).ok());
  ASSERT_TRUE(b_->Receive(&got, Soon(), -1).ok());
  EXPECT_EQ(got.result().value(), "ok");
}

TEST_F(TransportTest, ReceiveWaitingTellsNothingFromAnEmptyPacket) {
  Msg got;
  absl::StatusOr<bool> read = b_->ReceiveWaiting(&got);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_FALSE(*read);
  ASSERT_EQ(::send(a_->fd(), "", 0, 0), 0);
  read = b_->ReceiveWaiting(&got);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << read.status();
  ASSERT_TRUE(a_->Send(ResultMessage("ok", 0)).ok());
  read = b_->ReceiveWaiting(&got);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(*read);
  EXPECT_EQ(got.result().value(), "ok");
  // A closed peer with nothing queued is "nothing waiting", not a packet.
  ASSERT_EQ(::send(a_->fd(), "", 0, 0), 0);
  a_.reset();
  EXPECT_EQ(b_->ReceiveWaiting(&got).status().code(), absl::StatusCode::kDataLoss);
  read = b_->ReceiveWaiting(&got);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_FALSE(*read);
}

TEST_F(TransportTest, ReceiveWaitingRejectsAnIncompleteFragmentAndForgetsIt) {
  std::string first(100, 'x');
  first[0] = kTransportFirstFragmentByte;
  uint64_t total = 2 * kChannelPacketBytes;
  std::memcpy(&first[1], &total, sizeof total);
  ASSERT_EQ(::send(a_->fd(), first.data(), first.size(), 0), static_cast<ssize_t>(first.size()));
  Msg got;
  absl::StatusOr<bool> read = b_->ReceiveWaiting(&got);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << read.status();
  // The dropped fragment does not spoil the next fragmented message.
  Msg big = ResultMessage(std::string(2 * kChannelPacketBytes, 'b'), 0);
  std::thread sender([&] { EXPECT_TRUE(a_->Send(big).ok()); });
  absl::Status status = b_->Receive(&got, Soon(), -1);
  sender.join();
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(got.result().value().size(), 2 * kChannelPacketBytes);
}

TEST_F(TransportTest, ReceiveWaitingClosesPassedDescriptors) {
  int passed = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(passed, 0);
  char frame = kTransportFrameByte;
  iovec iov = {&frame, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr header = {};
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  header.msg_control = control;
  header.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&header);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &passed, sizeof passed);
  ASSERT_EQ(::sendmsg(a_->fd(), &header, 0), 1);
  ::close(passed);
  int probe = ::eventfd(0, EFD_CLOEXEC);  // the lowest free descriptor
  ASSERT_GE(probe, 0);
  ::close(probe);
  Msg got;
  absl::StatusOr<bool> read = b_->ReceiveWaiting(&got);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(*read);
  // Had the passed descriptor been kept it would hold the lowest free number.
  int after = ::eventfd(0, EFD_CLOEXEC);
  EXPECT_EQ(after, probe);
  ::close(after);
}

TEST_F(TransportTest, SendToAPeerThatDoesNotReadTimesOut) {
  a_->set_send_timeout(absl::Milliseconds(200));
  absl::Status status = a_->Send(MessageOfSize(kMaxMessageBytes));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
}

}  // namespace
}  // namespace ffibroker
