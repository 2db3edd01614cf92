// The fixture of the call-core tests (issue 11, label `streams`): a
// daemon and session per test, and helpers to open libraries, build batch
// calls, wait for a condition and make instances with slow destructors.
#ifndef FFIBROKER_TESTS_STREAMS_STREAMS_FIXTURE_H_
#define FFIBROKER_TESTS_STREAMS_STREAMS_FIXTURE_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ffibroker/call_stream.h"
#include "ffibroker/client.h"
#include "ffibroker/instance.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {

inline v1::BatchCall BatchOf(const std::string& symbol, std::vector<v1::Value> args) {
  v1::BatchCall call;
  call.set_symbol(symbol);
  for (v1::Value& v : args) *call.add_args() = std::move(v);
  return call;
}

// Waits up to `limit` for `predicate`.
template <typename Predicate>
inline bool Within(absl::Duration limit, Predicate predicate) {
  absl::Time give_up = absl::Now() + limit;
  while (!predicate()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

class StreamsTest : public DaemonSessionTest {
 protected:
  std::unique_ptr<Library> Open(const std::string& library, const std::vector<std::string>& decls,
                                uint32_t pool_size = 1, Session* session = nullptr) {
    Session::OpenOptions options;
    options.pool_size = pool_size;
    auto lib = (session ? session : session_.get())->OpenLibrary(library, decls, options);
    EXPECT_TRUE(lib.ok()) << lib.status();
    return lib.ok() ? std::move(*lib) : nullptr;
  }

  // A session of its own with the classes library open and one instance
  // of Slow, whose destructor (point_free_slowly) takes 3 s; `instance` is
  // null if any step failed (reported).
  struct SlowOwner {
    std::unique_ptr<Session> session;
    std::unique_ptr<Library> lib;
    std::unique_ptr<Instance> instance;
  };
  SlowOwner NewSlowOwner() {
    SlowOwner owner;
    owner.session = NewSession();
    if (owner.session == nullptr) return owner;
    absl::Status registered =
        owner.session->RegisterClass("Slow { f64 x; f64 y; } ~point_free_slowly").status();
    EXPECT_TRUE(registered.ok()) << registered;
    owner.lib = Open("classes", {"Slow* point_new(f64 x, f64 y)"}, 1, owner.session.get());
    if (!registered.ok() || owner.lib == nullptr) return owner;
    auto made = owner.lib->CallInstance("point_new", 1.0, 2.0);
    EXPECT_TRUE(made.ok()) << made.status();
    if (made.ok()) owner.instance = *std::move(made);
    return owner;
  }
};

}  // namespace ffibroker::testing

#endif  // FFIBROKER_TESTS_STREAMS_STREAMS_FIXTURE_H_
