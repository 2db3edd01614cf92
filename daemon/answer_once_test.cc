#include "daemon/answer_once.h"

#include <optional>
#include <stdexcept>
#include <utility>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

using Answer = AnswerOnce<absl::StatusOr<int>>;

TEST(AnswerOnceTest, AnswersOnceWithWhatItIsGiven) {
  int calls = 0;
  absl::StatusOr<int> got;
  {
    Answer answer("Call", [&](absl::StatusOr<int> r) {
      ++calls;
      got = std::move(r);
    });
    answer(7);
    answer(8);  // ignored
  }  // and not answered again when destroyed
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(*got, 7);
}

TEST(AnswerOnceTest, DroppedUnansweredItAnswersThatTheAnswerWasLost) {
  std::optional<absl::StatusOr<int>> got;
  { Answer answer("OpenLibrary", [&](absl::StatusOr<int> r) { got = std::move(r); }); }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(got->status().message(),
            "the daemon lost the answer to OpenLibrary (an internal error: see its log)");
}

TEST(AnswerOnceTest, OnlyTheLastOwnerAnswers) {
  int calls = 0;
  absl::Status got;
  {
    AnswerOnce<absl::Status> first("Call", [&](absl::Status s) {
      ++calls;
      got = std::move(s);
    });
    AnswerOnce<absl::Status> moved = std::move(first);
    EXPECT_EQ(calls, 0);
  }  // `first` is empty: only `moved` answers, once
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got.code(), absl::StatusCode::kInternal);
}

// The case it exists for: a completion chain that throws before it reaches
// the answer (as decoding a reply can, out of memory) still answers once
// the chain is destroyed.
TEST(AnswerOnceTest, AChainThatThrowsBeforeAnsweringStillAnswers) {
  std::optional<absl::StatusOr<int>> got;
  {
    absl::AnyInvocable<void(int)> chain =
        [answer = Answer("Call", [&](absl::StatusOr<int> r) { got = std::move(r); })](
            int reply) mutable {
          if (reply < 0) throw std::runtime_error("cannot decode");
          answer(reply);
        };
    EXPECT_THROW(chain(-1), std::runtime_error);
    EXPECT_FALSE(got.has_value());  // the chain still holds the answer
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), absl::StatusCode::kInternal);
}

TEST(AnswerOnceTest, AnAnswerThatThrowsIsNotRetriedByTheDestructor) {
  int calls = 0;
  {
    Answer answer("Call", [&](absl::StatusOr<int>) {
      ++calls;
      throw std::runtime_error("out of memory");
    });
    EXPECT_THROW(answer(1), std::runtime_error);
  }
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace ffibroker
