#include "daemon/private_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/unique_fd.h"

namespace ffibroker {

absl::StatusOr<std::string> ReadPrivateFile(const std::string& path, absl::string_view what,
                                            size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", what, " ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0 || st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " ", path, " must be owned by uid ", ::geteuid(),
        " with mode 0600 or stricter (it is mode ",
        absl::StrFormat("%04o", st.st_mode & 07777), " owned by uid ", st.st_uid, ")"));
  }
  std::string text;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(absl::StrCat("read ", path), errno);
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > max_bytes) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, " ", path, " holds more than ", max_bytes, " bytes"));
    }
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

}  // namespace ffibroker
