// HandoffFile: the file a pre-started worker loads its library from.
//
// A worker pre-started before any library is known (prestart_pool.h) gets
// one empty file of its own, bound read-only into its root and readable
// under its Landlock ruleset from the start. When the worker is handed a
// library, the daemon copies the library's bytes into that file (through
// a descriptor it kept: nobody else can write it) and the worker loads it.
// So the worker's view of the file system is what an on-demand worker's is
// (system library directories, the executable, the profile's paths and one
// library file), and for a pinned library the bytes loaded are the bytes
// the daemon hashed (they are copied from its private copy,
// pinned_library.h). The files live in a private directory (mode 0700)
// that HandoffDir creates and removes.
//
// HandoffDir is thread-safe; a HandoffFile is a move-only value.
//
//   ASSIGN_OR_RETURN(auto dir, HandoffDir::Create());
//   ASSIGN_OR_RETURN(HandoffFile file, dir->NewFile());   // bind file.path()
//   RETURN_IF_ERROR(file.Fill(source_fd));               // at hand-out
#ifndef FFIBROKER_DAEMON_HANDOFF_FILE_H_
#define FFIBROKER_DAEMON_HANDOFF_FILE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace ffibroker {

class HandoffFile {
 public:
  HandoffFile() = default;
  ~HandoffFile();  // removes the file
  HandoffFile(HandoffFile&& other) noexcept;
  HandoffFile& operator=(HandoffFile&& other) noexcept;
  HandoffFile(const HandoffFile&) = delete;
  HandoffFile& operator=(const HandoffFile&) = delete;

  // Where the file is (the same path inside the worker's root).
  const std::string& path() const { return path_; }
  bool valid() const { return fd_.valid(); }

  // Replaces the file's content with everything `source` (a regular file,
  // read from offset 0) holds. INVALID_ARGUMENT if `source` is not a
  // regular file or is larger than 1 GiB; INTERNAL (errno) if copying
  // fails.
  absl::Status Fill(int source);

 private:
  friend class HandoffDir;
  HandoffFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  void Remove();

  std::string path_;
  UniqueFd fd_;  // opened for writing when created; the file's mode is 0444
};

class HandoffDir {
 public:
  // Creates the directory under $TMPDIR (default /tmp). UNAVAILABLE if it
  // cannot.
  static absl::StatusOr<std::unique_ptr<HandoffDir>> Create();
  ~HandoffDir();  // removes the directory and whatever is left in it
  HandoffDir(const HandoffDir&) = delete;
  HandoffDir& operator=(const HandoffDir&) = delete;

  // A new empty file in the directory. INTERNAL (errno) if it cannot be
  // created.
  absl::StatusOr<HandoffFile> NewFile();

  const std::string& path() const { return dir_; }

 private:
  explicit HandoffDir(std::string dir) : dir_(std::move(dir)) {}
  const std::string dir_;
  std::atomic<uint64_t> next_{1};
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_HANDOFF_FILE_H_
