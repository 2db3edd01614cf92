// PinnedLibraries: loads of SHA-256-pinned libraries without a
// check-then-load race.
//
// Hashing a path and then letting the worker dlopen the same path would let
// anyone who can write the file swap it in between. Instead the daemon reads
// the file once, hashes exactly those bytes, and writes them to a private
// directory (mode 0700, created at start, removed at exit) under the name of
// their hash; the worker loads that copy. Nobody but the daemon's user can
// change it, so what is loaded is what was hashed.
//
// Caveat: the copy lives elsewhere, so a library that finds its own
// dependencies through $ORIGIN must not be pinned.
//
// Thread-safe.
//
//   ASSIGN_OR_RETURN(auto pins, PinnedLibraries::Create());
//   ASSIGN_OR_RETURN(std::string load_path, pins->Materialize(path, sha256));
#ifndef FFIBROKER_DAEMON_PINNED_LIBRARY_H_
#define FFIBROKER_DAEMON_PINNED_LIBRARY_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace ffibroker {

class PinnedLibraries {
 public:
  // Creates the private directory under $TMPDIR (default /tmp).
  // UNAVAILABLE if it cannot.
  static absl::StatusOr<std::unique_ptr<PinnedLibraries>> Create();
  ~PinnedLibraries();  // removes the directory and the copies
  PinnedLibraries(const PinnedLibraries&) = delete;
  PinnedLibraries& operator=(const PinnedLibraries&) = delete;

  // The path of a private copy of `path` whose bytes hash to `sha256`
  // (lowercase hex). PERMISSION_DENIED naming the actual hash if they do
  // not; NOT_FOUND / UNAVAILABLE if the file cannot be read or copied.
  absl::StatusOr<std::string> Materialize(const std::string& path,
                                          const std::string& sha256);

 private:
  explicit PinnedLibraries(std::string dir) : dir_(std::move(dir)) {}
  const std::string dir_;
  absl::Mutex mu_;  // serializes writers of the same copy
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_PINNED_LIBRARY_H_
