// What the end-to-end callback tests share: a daemon whose test user may
// open the in-tree callbacks library, and a fixture up to an open stream.
#ifndef FFIBROKER_TESTS_CALLBACKS_CALLBACKS_FIXTURE_H_
#define FFIBROKER_TESTS_CALLBACKS_CALLBACKS_FIXTURE_H_

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ffibroker/call_stream.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {

inline constexpr char kApply[] = "i32 cb_apply(fn(i32 x) -> i32 f, i32 x)";
inline constexpr char kKinds[] =
    "f64 cb_kinds(fn(Point* p, Point q, cstr? s, in u8[n] data, usize n, u8 tag) -> f64 f)";
inline constexpr char kIntFn[] = "i32 f(i32 x)";

// A daemon whose test user may open the callbacks library with `operations`
// under `profile`.
inline absl::StatusOr<std::unique_ptr<TestDaemon>> StartDaemon(
    const std::string& operations = "OPEN_LIBRARY, GRANT_TOKEN, CALLBACKS",
    const std::string& profile = "strict") {
  return TestDaemon::StartWithPolicy(absl::StrCat(
      TestDaemon::Catalogue(), "libraries { name: \"callbacks\" path: \"",
      FFIBROKER_CALLBACKS_LIB, "\" }\n", "principals { name: \"test-user\" uids: ", ::getuid(),
      // Room for a top call and 8 nested ones.
      " limits { max_calls_in_flight: 16 }",
      " permission { libraries { library: \"callbacks\" } operations: [", operations,
      "] confinement_profile: \"", profile, "\" } }\n"));
}

struct Fixture {
  std::unique_ptr<TestDaemon> daemon;
  std::unique_ptr<Client> client;
  std::unique_ptr<Session> session;
  std::unique_ptr<Library> lib;
  std::unique_ptr<CallStream> stream;
};

// Everything up to an open stream, or the first failure.
inline absl::StatusOr<Fixture> Open(const std::vector<std::string>& declarations,
                             const std::string& operations = "OPEN_LIBRARY, GRANT_TOKEN, CALLBACKS",
                             const std::string& profile = "strict") {
  Fixture f;
  ASSIGN_OR_RETURN(f.daemon, StartDaemon(operations, profile));
  ASSIGN_OR_RETURN(f.client, f.daemon->Connect());
  ASSIGN_OR_RETURN(f.session, f.client->CreateSession());
  if (declarations.end() != std::find_if(declarations.begin(), declarations.end(),
                                         [](const std::string& d) { return d == kKinds; })) {
    RETURN_IF_ERROR(f.session->RegisterClass("Point { f64 x; f64 y; }").status());
  }
  ASSIGN_OR_RETURN(f.lib, f.session->OpenLibrary("callbacks", declarations));
  ASSIGN_OR_RETURN(f.stream, f.session->OpenStream());
  return f;
}

inline Callback<int32_t(int32_t)> Doubler() {
  return Callback<int32_t(int32_t)>(kIntFn, [](int32_t x) { return 2 * x; });
}

}  // namespace ffibroker::testing

#endif  // FFIBROKER_TESTS_CALLBACKS_CALLBACKS_FIXTURE_H_
