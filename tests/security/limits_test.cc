// Finding 7 of issue 9: per-principal limits. One principal may not hold
// every session, worker, call slot, instance handle or class the daemon
// has: exceeding its own limit is RESOURCE_EXHAUSTED naming the limit and
// its value, and another principal is unaffected. Instance handles also
// have a daemon-wide cap.
//
// The test runs as one uid; the second principal is an API-key principal.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/limits.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "ffibroker/call_stream.h"
#include "ffibroker/instance.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kOtherKey[] = "k-limits-test-other-principal-key";
constexpr char kPoint[] = "Point { mut f64 x; f64 y; } ~point_free";

// A second principal "other" (API key kOtherKey) allowed the same test
// libraries, with `limits` inside its own limits {} block.
std::string OtherPrincipal(const std::string& limits = "") {
  return absl::StrCat("principals { name: \"other\" api_keys { id: \"other\" sha256: \"",
                      Sha256Hex(kOtherKey), "\" } permission { libraries { library: \"crashy\" }",
                      " libraries { library: \"classes\" } }",
                      limits.empty() ? "" : absl::StrCat(" limits { ", limits, " }"), " }\n");
}

void ExpectExhausted(const absl::Status& status, const std::string& limit,
                     const std::string& value) {
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()), AllOf(HasSubstr(limit), HasSubstr(value)))
      << status;
}

class LimitsTest : public ::testing::Test {
 protected:
  // A daemon with `extra` policy text after the test-user principal and
  // principal "other"; clients for both.
  void Start(const std::string& extra, const std::string& other_limits = "") {
    auto daemon = TestDaemon::Start(OtherPrincipal(other_limits) + extra);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = std::move(*daemon);
    auto mine = daemon_->Connect();
    ASSERT_TRUE(mine.ok()) << mine.status();
    mine_ = std::move(*mine);
    ConnectOptions options;
    options.api_key = kOtherKey;
    auto other = Client::Connect(daemon_->address(), options);
    ASSERT_TRUE(other.ok()) << other.status();
    other_ = std::move(*other);
    auto who = other_->Whoami();
    ASSERT_TRUE(who.ok()) << who.status();
    ASSERT_EQ(who->principal(), "other");
  }

  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<Client> mine_;
  std::unique_ptr<Client> other_;
};

// The default limits: one principal gets 32 of the daemon's 256 sessions.
TEST_F(LimitsTest, OnePrincipalCannotHoldEverySession) {
  Start("");
  if (HasFatalFailure()) return;
  std::vector<std::unique_ptr<Session>> sessions;
  for (int i = 0; i < 32; ++i) {
    auto s = mine_->CreateSession();
    ASSERT_TRUE(s.ok()) << i << ": " << s.status();
    sessions.push_back(std::move(*s));
  }
  ExpectExhausted(mine_->CreateSession().status(), "max_sessions", "is 32");
  // Another principal still gets sessions, and can use them.
  auto theirs = other_->CreateSession();
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  auto lib = (*theirs)->OpenLibrary("crashy", {"i32 healthy(i32)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_EQ(*(*lib)->Call<int32_t>("healthy", 1), 2);
  // A session given back is a session to take again.
  ASSERT_TRUE(sessions.back()->Close().ok());
  EXPECT_TRUE(mine_->CreateSession().ok());
}

TEST_F(LimitsTest, APrincipalsOwnLimitsReplaceTheDefault) {
  Start("", "max_sessions: 1");
  if (HasFatalFailure()) return;
  auto first = other_->CreateSession();
  ASSERT_TRUE(first.ok()) << first.status();
  ExpectExhausted(other_->CreateSession().status(), "max_sessions", "is 1");
  EXPECT_TRUE(mine_->CreateSession().ok());
}

TEST_F(LimitsTest, WorkersArePerPrincipal) {
  Start("limits { per_principal { max_workers: 2 } }\n");
  if (HasFatalFailure()) return;
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<std::unique_ptr<Library>> libs;
  for (int i = 0; i < 2; ++i) {
    auto s = mine_->CreateSession();
    ASSERT_TRUE(s.ok());
    auto lib = (*s)->OpenLibrary("crashy", {"i32 healthy(i32)"});
    ASSERT_TRUE(lib.ok()) << lib.status();
    sessions.push_back(std::move(*s));
    libs.push_back(std::move(*lib));
  }
  ExpectExhausted(sessions[0]->OpenLibrary("crashy", {"i32 healthy(i32)"}).status(),
                  "max_workers", "is 2");
  auto theirs = other_->CreateSession();
  ASSERT_TRUE(theirs.ok());
  EXPECT_TRUE((*theirs)->OpenLibrary("crashy", {"i32 healthy(i32)"}).ok());
  // Closing a library gives its worker back once the worker is gone.
  ASSERT_TRUE(libs.back()->Close().ok());
  EXPECT_TRUE(sessions[0]->OpenLibrary("crashy", {"i32 healthy(i32)"}).ok());
}

TEST_F(LimitsTest, CallsInFlightArePerPrincipal) {
  Start("limits { per_principal { max_calls_in_flight: 1 } }\n");
  if (HasFatalFailure()) return;
  auto session = mine_->CreateSession();
  ASSERT_TRUE(session.ok());
  auto sleeper = (*session)->OpenLibrary("crashy", {"i32 sleep_ms(u32)"});
  auto quick = (*session)->OpenLibrary("crashy", {"i32 healthy(i32)"});
  ASSERT_TRUE(sleeper.ok() && quick.ok());
  // One long call holds the principal's only slot (until its library is
  // closed below; the deadline is only a backstop). It retries while one of
  // the quick calls below has the slot.
  absl::StatusOr<v1::CallResponse> slow;
  std::thread hold([&] {
    do {
      slow = (*sleeper)->CallValues("sleep_ms", {ToValue(uint32_t{60000})}, absl::Seconds(60));
    } while (absl::IsResourceExhausted(slow.status()));
  });
  absl::Status refused;
  EXPECT_TRUE(Eventually([&] {
    refused = (*quick)->Call<int32_t>("healthy", 1).status();
    return absl::IsResourceExhausted(refused);
  })) << "a second call never hit the limit; last: " << refused;
  ExpectExhausted(refused, "max_calls_in_flight", "is 1");
  // Another principal's calls run meanwhile.
  auto theirs = other_->CreateSession();
  ASSERT_TRUE(theirs.ok());
  auto lib = (*theirs)->OpenLibrary("crashy", {"i32 healthy(i32)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_EQ(*(*lib)->Call<int32_t>("healthy", 1), 2);
  ASSERT_TRUE((*sleeper)->Close().ok());  // kills the sleeping worker
  hold.join();
  EXPECT_FALSE(slow.ok());
  // The slot came back with the call.
  EXPECT_EQ(*(*quick)->Call<int32_t>("healthy", 1), 2);
}

TEST_F(LimitsTest, InstanceHandlesHaveAPrincipalAndADaemonLimit) {
  Start("limits { max_instances: 5 per_principal { max_instances: 3 } }\n");
  if (HasFatalFailure()) return;
  auto session = mine_->CreateSession();
  ASSERT_TRUE(session.ok());
  ASSERT_TRUE((*session)->RegisterClass(kPoint).ok());
  auto lib = (*session)->OpenLibrary("classes", {"Point* point_new(f64, f64)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  std::vector<std::unique_ptr<Instance>> points;
  for (int i = 0; i < 3; ++i) {
    auto p = (*lib)->NewInstance("Point");
    ASSERT_TRUE(p.ok()) << p.status();
    points.push_back(std::move(*p));
  }
  ExpectExhausted((*lib)->NewInstance("Point").status(), "max_instances", "is 3");
  // A handle returned by the library counts too: refused before it runs.
  ExpectExhausted((*lib)->CallInstance("point_new", 1.0, 2.0).status(), "max_instances",
                  "is 3");
  // The other principal has its own 3 of the daemon's 5 ...
  auto theirs = other_->CreateSession();
  ASSERT_TRUE(theirs.ok());
  auto registered = (*theirs)->RegisterClass(kPoint);
  ASSERT_TRUE(registered.ok()) << registered.status();
  auto their_lib = (*theirs)->OpenLibrary("classes", {"Point* point_new(f64, f64)"});
  ASSERT_TRUE(their_lib.ok()) << their_lib.status();
  std::vector<std::unique_ptr<Instance>> their_points;
  for (int i = 0; i < 2; ++i) {
    auto p = (*their_lib)->CallInstance("point_new", 1.0, 2.0);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_NE(*p, nullptr);
    their_points.push_back(std::move(*p));
  }
  // ... but all together hold at most 5.
  ExpectExhausted((*their_lib)->NewInstance("Point").status(), "limits.max_instances", "is 5");
  // Freeing one gives its place back.
  ASSERT_TRUE(points.back()->Free().ok());
  points.pop_back();
  EXPECT_TRUE((*their_lib)->NewInstance("Point").ok());
}

// An instance result that arrives after its library was closed (the
// close waits for a slow destructor queued behind the call) is released
// at once: it keeps no place in the instance limit, and its handle says
// what happened.
TEST_F(LimitsTest, AnInstanceMadeWhileItsLibraryClosesHoldsNoSlot) {
  Start("limits { per_principal { max_instances: 2 } }\n");
  if (HasFatalFailure()) return;
  auto session = mine_->CreateSession();
  ASSERT_TRUE(session.ok());
  ASSERT_TRUE((*session)->RegisterClass(kPoint).ok());
  ASSERT_TRUE((*session)->RegisterClass("Slow { f64 x; f64 y; } ~point_free_slowly").ok());
  auto lib = (*session)->OpenLibrary(
      "classes", {"Slow* point_new(f64, f64)", "Point* point_new_slowly(f64, f64)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  auto slow = (*lib)->CallInstance("point_new", 1.0, 2.0);  // 1 of 2
  ASSERT_TRUE(slow.ok()) << slow.status();
  (*slow)->Release();  // left to the close
  absl::StatusOr<std::unique_ptr<Instance>> late;
  std::thread making([&] { late = (*lib)->CallInstance("point_new_slowly", 3.0, 4.0); });  // 2
  absl::SleepFor(absl::Milliseconds(100));  // the call runs; the close queues behind it
  ASSERT_TRUE((*lib)->Close().ok());
  making.join();
  ASSERT_TRUE(late.ok()) << late.status();
  ASSERT_NE(*late, nullptr);
  absl::StatusOr<v1::Value> read = (*late)->Read();
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition) << read.status();
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("closed")) << read.status();
  (*late)->Release();
  // Both places are free again.
  auto again = (*session)->OpenLibrary("classes", {"Point* point_new(f64, f64)"});
  ASSERT_TRUE(again.ok()) << again.status();
  for (int i = 0; i < 2; ++i) {
    auto p = (*again)->NewInstance("Point");
    ASSERT_TRUE(p.ok()) << "instance " << i + 1 << ": " << p.status();
    (*p)->Release();
  }
}

TEST_F(LimitsTest, ClassesArePerPrincipalAndComeBackWithTheSession) {
  Start("limits { per_principal { max_classes: 2 } }\n");
  if (HasFatalFailure()) return;
  auto s1 = mine_->CreateSession();
  auto s2 = mine_->CreateSession();
  ASSERT_TRUE(s1.ok() && s2.ok());
  ASSERT_TRUE((*s1)->RegisterClass("A { i32 a; }").ok());
  ASSERT_TRUE((*s2)->RegisterClass("B { i32 b; }").ok());
  ExpectExhausted((*s2)->RegisterClass("C { i32 c; }").status(), "max_classes", "is 2");
  auto theirs = other_->CreateSession();
  ASSERT_TRUE(theirs.ok());
  auto registered = (*theirs)->RegisterClass("C { i32 c; }");
  EXPECT_TRUE(registered.ok()) << registered.status();
  ASSERT_TRUE((*s1)->Close().ok());
  EXPECT_TRUE((*s2)->RegisterClass("C { i32 c; }").ok());
}

// Answers its client has not read count against the principal's
// max_unread_answers_mib: a review found that calls whose answers carry
// 16 MiB, sent and never read, grew the root daemon without bound.
constexpr char kFill[] = "void fill(out u8[n] buf, u64 n, u8 v)";

absl::StatusOr<v1::CallResponse> Fill(Library& lib, uint64_t bytes) {
  return lib.CallValues("fill", {BytesValue(""), ToValue(bytes), ToValue(uint8_t{7})});
}

TEST_F(LimitsTest, AnAnswerPastTheUnreadAnswersLimitIsRefused) {
  Start("limits { per_principal { max_unread_answers_mib: 4 } }\n", "max_unread_answers_mib: 8");
  if (HasFatalFailure()) return;
  auto session = mine_->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto lib = (*session)->OpenLibrary("classes", {kFill});
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::Status big = Fill(**lib, 5 << 20).status();
  ExpectExhausted(big, "max_unread_answers_mib", "is 4 MiB");
  EXPECT_THAT(std::string(big.message()), HasSubstr("the operation ran, but its answer of"));
  // Each answer is given back once gRPC is done with its RPC, which may be
  // a little after the client has it: many smaller ones, 15 MiB in all,
  // pass, with room for a dozen answers not yet given back.
  for (int i = 0; i < 60; ++i) {
    auto small = Fill(**lib, 256 << 10);
    ASSERT_TRUE(small.ok()) << i << ": " << small.status();
    EXPECT_EQ(small->outputs(0).value().bytes_value().size(), 256u << 10);
  }
  // Another principal's own limit.
  auto theirs = other_->CreateSession();
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  auto their_lib = (*theirs)->OpenLibrary("classes", {kFill});
  ASSERT_TRUE(their_lib.ok()) << their_lib.status();
  EXPECT_TRUE(Fill(**their_lib, 5 << 20).ok());
}

TEST_F(LimitsTest, StreamAnswersNobodyReadsAreBounded) {
  Start("limits { per_principal { max_unread_answers_mib: 4 } }\n");
  if (HasFatalFailure()) return;
  auto session = mine_->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto lib = (*session)->OpenLibrary("classes", {kFill});
  ASSERT_TRUE(lib.ok()) << lib.status();
  auto stream = (*session)->OpenStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  // 128 answers of 1 MiB, more than gRPC's windows take in: the rest waits
  // in the daemon, which may hold only 4 MiB of them.
  constexpr int kCalls = 128;
  const std::vector<v1::Value> args = {BytesValue(""), ToValue(uint64_t{1} << 20),
                                       ToValue(uint8_t{7})};
  for (int i = 0; i < kCalls; ++i) ASSERT_TRUE((*stream)->Send(**lib, "fill", args).ok());
  std::this_thread::sleep_for(std::chrono::seconds(1));  // nobody reads
  int answered = 0, refused = 0;
  for (int i = 0; i < kCalls; ++i) {
    auto r = (*stream)->Receive();
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->status().code() == 0) {
      ++answered;
      EXPECT_EQ(r->call().outputs(0).value().bytes_value().size(), 1u << 20);
    } else {
      ++refused;
      EXPECT_EQ(r->status().code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
      EXPECT_THAT(r->status().message(), HasSubstr("max_unread_answers_mib"));
    }
  }
  EXPECT_GE(answered, 3);  // 3 of 1 MiB and a little fit in 4 MiB
  EXPECT_GE(refused, 1);
  // All read: the room is back.
  ASSERT_TRUE((*stream)->Send(**lib, "fill", args).ok());
  auto last = (*stream)->Receive();
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->status().code(), 0) << last->status().message();
  EXPECT_TRUE((*stream)->Close().ok());
}

// max_streams: every CallStream holds the daemon's state and gRPC's buffers
// until it ends, so one principal may not open them without bound. One
// past the limit is refused when it starts; one that ends gives its place
// back; another principal is unaffected.
TEST_F(LimitsTest, StreamsPastTheLimitAreRefused) {
  Start("limits { per_principal { max_streams: 2 } }\n");
  if (HasFatalFailure()) return;
  auto session = mine_->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  // A stream is known to be open once it answered something.
  auto open_one = [](Session& on) -> absl::StatusOr<std::unique_ptr<CallStream>> {
    ASSIGN_OR_RETURN(std::unique_ptr<CallStream> stream, on.OpenStream());
    v1::StreamRequest nothing;  // no call: refused, and the stream goes on
    nothing.set_id(1);
    RETURN_IF_ERROR(stream->SendRaw(nothing));
    ASSIGN_OR_RETURN(v1::StreamResponse answer, stream->Receive());
    if (answer.id() != 1) return absl::InternalError("answer to another request");
    return stream;
  };
  auto first = open_one(**session);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = open_one(**session);
  ASSERT_TRUE(second.ok()) << second.status();
  auto third = open_one(**session);
  ExpectExhausted(third.status(), "max_streams", "is 2");
  EXPECT_THAT(std::string(third.status().message()),
              HasSubstr("CallStream: principal '"));
  auto theirs_session = other_->CreateSession();
  ASSERT_TRUE(theirs_session.ok()) << theirs_session.status();
  auto theirs = open_one(**theirs_session);
  EXPECT_TRUE(theirs.ok()) << theirs.status();
  // A stream that ends gives its place back.
  EXPECT_TRUE((*first)->Close().ok());
  first->reset();
  absl::StatusOr<std::unique_ptr<CallStream>> again;
  for (int i = 0; i < 100; ++i) {  // the daemon learns of the end a little later
    again = open_one(**session);
    if (again.ok() || !absl::IsResourceExhausted(again.status())) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(again.ok()) << again.status();
}

// Streams per connection: a client gets kMaxStreamsPerConnection RPCs open
// on one connection at once (HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS);
// one more waits for a place (here until its deadline), so a peer cannot
// hold the daemon's memory with streams it never finishes.
TEST_F(LimitsTest, OneConnectionHoldsAtMostItsStreams) {
  Start(absl::StrCat("limits { per_principal { max_streams: ", 2 * kMaxStreamsPerConnection,
                     " } }\n"));
  if (HasFatalFailure()) return;
  struct Open {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<v1::StreamRequest, v1::StreamResponse>> stream;
  };
  auto start = [&](absl::Duration timeout) {
    auto open = std::make_unique<Open>();
    mine_->Prepare(&open->context);
    open->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    open->stream = mine_->stub()->CallStream(&open->context);
    v1::StreamRequest nothing;  // answered with an error: the stream is open
    nothing.set_id(1);
    open->stream->Write(nothing);
    return open;
  };
  std::vector<std::unique_ptr<Open>> held;
  for (uint32_t i = 0; i < kMaxStreamsPerConnection; ++i) {
    held.push_back(start(absl::Seconds(60)));
    v1::StreamResponse answer;
    ASSERT_TRUE(held.back()->stream->Read(&answer)) << i;
  }
  auto one_more = start(absl::Milliseconds(500));
  v1::StreamResponse answer;
  EXPECT_FALSE(one_more->stream->Read(&answer));
  EXPECT_EQ(one_more->stream->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // One ends: the next gets its place.
  held.front()->stream->WritesDone();
  EXPECT_TRUE(held.front()->stream->Finish().ok());
  auto next = start(absl::Seconds(10));
  EXPECT_TRUE(next->stream->Read(&answer));
  for (auto& open : held) open->context.TryCancel();
  next->context.TryCancel();
}

// Connections per local user: idle connections (not even HTTP/2) took
// every file descriptor of a daemon with 1,024, and with them everyone
// else's connections and worker starts. One past the user's limit is
// closed as it arrives; one that ends gives its place back.
TEST(ConnectionLimitTest, AUserPastItsConnectionsIsClosedUntilOneEnds) {
  auto daemon = TestDaemon::Start("", {"--max-connections-per-user=8"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ASSERT_TRUE(absl::StartsWith((*daemon)->address(), "unix:"));
  const std::string path = (*daemon)->address().substr(5);
  auto connect = [&] {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return fd;
  };
  // Closed by the daemon: EOF within `wait` (gRPC's own first bytes are read
  // past).
  auto closed = [](const UniqueFd& fd, int wait_ms) {
    char buf[4096];
    for (absl::Time until = absl::Now() + absl::Milliseconds(wait_ms); absl::Now() < until;) {
      pollfd p = {fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) == 1 && ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT) == 0) {
        return true;
      }
    }
    return false;
  };
  std::vector<UniqueFd> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(connect());
  UniqueFd ninth = connect();
  EXPECT_TRUE(closed(ninth, 5000));
  for (const UniqueFd& fd : idle) EXPECT_FALSE(closed(fd, 20));
  // The log says why, once.
  EXPECT_THAT((*daemon)->ReadLog(), HasSubstr("(--max-connections-per-user)"));
  // One ends: a client of the same user connects again.
  idle.pop_back();
  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->Whoami().ok());
}

}  // namespace
}  // namespace ffibroker::testing
