#include "daemon/worker/confinement.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/unique_fd.h"

namespace ffibroker {

absl::Status ApplyEarlyConfinement(pid_t expected_parent, int channel_fd) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    return ErrnoStatus("prctl(PR_SET_PDEATHSIG)", errno);
  }
  // The daemon may have died between spawning us and the prctl above.
  if (::getppid() != expected_parent) {
    return absl::FailedPreconditionError(
        absl::StrCat("parent ", expected_parent, " is gone"));
  }
  if (::syscall(SYS_close_range, channel_fd + 1, ~0U, 0) != 0) {
    return ErrnoStatus("close_range", errno);
  }
  // stdin/stdout point at nothing useful; keep the numbers taken so no later
  // open() lands on them.
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) return ErrnoStatus("open /dev/null", errno);
  ::dup2(devnull, STDIN_FILENO);
  ::dup2(devnull, STDOUT_FILENO);
  if (devnull > STDERR_FILENO && devnull != channel_fd) ::close(devnull);
  return absl::OkStatus();
}

}  // namespace ffibroker
