#include "daemon/worker/confinement.h"

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
  // The daemon may have died between spawning us and the prctl above. In
  // our own pid namespace the parent is invisible (expected_parent 0); the
  // parent-death signal was then already armed before exec.
  if (expected_parent != 0 && ::getppid() != expected_parent) {
    return absl::FailedPreconditionError(
        absl::StrCat("parent ", expected_parent, " is gone"));
  }
  if (::syscall(SYS_close_range, channel_fd + 1, ~0U, 0) != 0) {
    return ErrnoStatus("close_range", errno);
  }
  return absl::OkStatus();
}

}  // namespace ffibroker
