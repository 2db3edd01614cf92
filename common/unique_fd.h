// UniqueFd: the one owner type for file descriptors.
//
// Move-only; closes its descriptor when destroyed or reset. Not thread-safe
// (like any value type).
//
//   UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
//   if (!fd.valid()) return ErrnoStatus("open", errno);
//   ::read(fd.get(), buf, n);
#ifndef FFIBROKER_COMMON_UNIQUE_FD_H_
#define FFIBROKER_COMMON_UNIQUE_FD_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ffibroker {

class UniqueFd {
 public:
  UniqueFd() = default;
  // Takes ownership of `fd` (-1 for none).
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }

  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  bool valid() const { return fd_ >= 0; }
  int get() const { return fd_; }
  // Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }
  // Closes the current descriptor (if any) and owns `fd` instead.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A status for a failed system call: "what: strerror(err)" with a code
// chosen from `err` (EMFILE/ENOMEM -> RESOURCE_EXHAUSTED, EACCES/EPERM ->
// PERMISSION_DENIED, ENOENT -> NOT_FOUND, otherwise INTERNAL).
absl::Status ErrnoStatus(absl::string_view what, int err);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_UNIQUE_FD_H_
