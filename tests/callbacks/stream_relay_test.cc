// Callbacks on a stream whose client misbehaves or leaves (issue 12): a
// half-close or a disconnect while an invocation waits for its answer, and
// calls pipelined past the calls-in-flight limit before the answer.
#include <cstdint>
#include <memory>

#include "absl/time/clock.h"
#include "common/limits.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/callbacks/callbacks_fixture.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

// A CallStream driven by hand (raw gRPC, no C++ client wrapper), waiting
// on an invocation: callback 7 (i32 -> i32) is registered, request 2,
// cb_apply(7, 3), is sent, and the invocation it makes is in `invocation`.
struct RawStream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StreamRequest, v1::StreamResponse>> raw;
  v1::StreamResponse invocation;
};
void AwaitApplyInvocation(Fixture& f, RawStream* s) {
  f.client->Prepare(&s->context);
  s->raw = f.client->stub()->CallStream(&s->context);
  v1::StreamRequest reg;
  reg.set_id(1);
  reg.set_session_id(f.session->id());
  reg.mutable_register_callback()->set_callback_id(7);
  v1::Signature* sig = reg.mutable_register_callback()->mutable_signature();
  sig->mutable_result()->set_scalar(v1::SCALAR_I32);
  sig->add_params()->mutable_type()->set_scalar(v1::SCALAR_I32);
  ASSERT_TRUE(s->raw->Write(reg));
  v1::StreamResponse response;
  ASSERT_TRUE(s->raw->Read(&response));
  ASSERT_EQ(response.status().code(), 0) << response.status().message();
  v1::StreamRequest call;
  call.set_id(2);
  call.mutable_call()->set_library_handle(f.lib->handle());
  call.mutable_call()->set_symbol("cb_apply");
  *call.mutable_call()->add_args() = CallbackValue(7);
  *call.mutable_call()->add_args() = ToValue(int32_t{3});
  ASSERT_TRUE(s->raw->Write(call));
  ASSERT_TRUE(s->raw->Read(&s->invocation));
  ASSERT_TRUE(s->invocation.has_callback_invocation());
}

// Raw gRPC: a client that half-closes while its callback is being invoked
// can never answer; the call still gets an answer saying so.
TEST(CallbacksTest, HalfClosingMidCallbackFailsTheCallWithWhy) {
  auto f = Open({kApply});
  ASSERT_TRUE(f.ok()) << f.status();
  RawStream s;
  AwaitApplyInvocation(*f, &s);
  if (HasFatalFailure()) return;
  EXPECT_EQ(s.invocation.callback_invocation().call_id(), 2u);
  EXPECT_EQ(s.invocation.callback_invocation().args(0).int_value(), 3);
  ASSERT_TRUE(s.raw->WritesDone());
  v1::StreamResponse response;
  ASSERT_TRUE(s.raw->Read(&response));
  EXPECT_EQ(response.id(), 2u);
  EXPECT_EQ(response.status().code(), static_cast<int>(absl::StatusCode::kCancelled));
  EXPECT_THAT(response.status().message(),
              HasSubstr("was not answered: the client closed its side of the stream"));
  EXPECT_TRUE(s.raw->Finish().ok());
}

// While an invocation waits for its answer the stream reads on past the
// calls-in-flight limit (the answer is behind the client's other
// requests). The new calls it reads there wait for a slot instead of
// failing with RESOURCE_EXHAUSTED, as they would without the callback;
// past the held bound they are refused, and the answer still gets through.
TEST(CallbacksTest, CallsReadPastTheLimitForAnAnswerWaitTheirTurn) {
  constexpr int kRunning = 16 - 1;  // the fixture's calls in flight, less cb_apply
  constexpr int kRefused = 20;
  constexpr int kPipelined = kRunning + static_cast<int>(kStreamMaxHeldCalls) + kRefused;
  auto f = Open({kApply, "i32 cb_maybe(fn(i32 x)? -> i32 f, i32 x)"});
  ASSERT_TRUE(f.ok()) << f.status();
  RawStream s;
  AwaitApplyInvocation(*f, &s);
  if (HasFatalFailure()) return;
  const uint64_t invocation = s.invocation.callback_invocation().invocation_id();
  // Pipelined before the answer: more calls than may run at once.
  for (int i = 0; i < kPipelined; ++i) {
    v1::StreamRequest plain;
    plain.set_id(100 + i);
    plain.mutable_call()->set_library_handle(f->lib->handle());
    plain.mutable_call()->set_symbol("cb_maybe");
    plain.mutable_call()->add_args()->set_null_value(true);
    *plain.mutable_call()->add_args() = ToValue(int32_t{i});
    if (i == kRunning) plain.set_timeout_millis(100);  // the first one held
    ASSERT_TRUE(s.raw->Write(plain));
  }
  absl::SleepFor(absl::Milliseconds(400));  // past the held call's timeout
  v1::StreamRequest answer;
  answer.mutable_callback_answer()->set_invocation_id(invocation);
  *answer.mutable_callback_answer()->mutable_result() = ToValue(int32_t{6});
  ASSERT_TRUE(s.raw->Write(answer));
  ASSERT_TRUE(s.raw->WritesDone());
  v1::StreamResponse response;
  int answered = 0, refused = 0;
  while (s.raw->Read(&response)) {
    ASSERT_FALSE(response.has_callback_invocation());
    ++answered;
    if (response.id() == 100u + kRunning) {  // its time held counted
      EXPECT_EQ(response.status().code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
      EXPECT_THAT(response.status().message(), HasSubstr("waited behind the stream's calls"));
      continue;
    }
    if (response.status().code() == static_cast<int>(absl::StatusCode::kResourceExhausted)) {
      EXPECT_THAT(response.status().message(), HasSubstr("read past its calls-in-flight limit"));
      EXPECT_GE(response.id(), 100u + kRunning + kStreamMaxHeldCalls) << "a held call refused";
      ++refused;
      continue;
    }
    ASSERT_EQ(response.status().code(), 0)
        << "request " << response.id() << ": " << response.status().message();
    const int32_t expected = response.id() == 2 ? 6 : -1;  // cb_apply's, cb_maybe's
    EXPECT_EQ(response.call().result().int_value(), expected) << "request " << response.id();
  }
  EXPECT_EQ(answered, kPipelined + 1);
  EXPECT_EQ(refused, kRefused);
  EXPECT_TRUE(s.raw->Finish().ok());
}

TEST(CallbacksTest, ClientLeavingMidCallbackReleasesTheWorkerForOthers) {
  auto f = Open({kApply});
  ASSERT_TRUE(f.ok()) << f.status();
  auto id = f->stream->RegisterCallback(Doubler());
  ASSERT_TRUE(id.ok());
  // Send the call, read the invocation by hand, and leave without answering.
  v1::StreamRequest call;
  call.set_id(500);
  call.mutable_call()->set_library_handle(f->lib->handle());
  call.mutable_call()->set_symbol("cb_apply");
  *call.mutable_call()->add_args() = CallbackValue(*id);
  *call.mutable_call()->add_args() = ToValue(int32_t{3});
  ASSERT_TRUE(f->stream->SendRaw(call).ok());
  f->stream->Cancel();
  f->stream.reset();
  // The worker got a zero answer and finished the call: a new stream's
  // call on the same library runs at once.
  auto stream = f->session->OpenStream();
  ASSERT_TRUE(stream.ok());
  auto again = (*stream)->RegisterCallback(Doubler());
  ASSERT_TRUE(again.ok()) << again.status();
  auto r = (*stream)->Call(*f->lib, "cb_apply", {CallbackValue(*again), ToValue(int32_t{6})},
                           absl::Seconds(20));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result().int_value(), 12);
}

}  // namespace
}  // namespace ffibroker::testing
