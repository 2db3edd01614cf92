#include "daemon/pinned_library.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/unique_fd.h"
#include "daemon/policy.h"

namespace ffibroker {
namespace {

constexpr size_t kMaxLibraryBytes = size_t{1} << 30;

absl::StatusOr<std::string> ReadAll(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return absl::NotFoundError(absl::StrCat("cannot open '", path, "': ", std::strerror(errno)));
  }
  std::string bytes;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(absl::StrCat("read ", path), errno);
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
    if (bytes.size() > kMaxLibraryBytes) {
      return absl::FailedPreconditionError(absl::StrCat("'", path, "' is larger than 1 GiB"));
    }
  }
  return bytes;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PinnedLibraries>> PinnedLibraries::Create() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = absl::StrCat(base && *base ? base : "/tmp", "/ffibrokerd-pinned-XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) {
    return absl::UnavailableError(absl::StrCat("mkdtemp ", templ, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<PinnedLibraries>(new PinnedLibraries(templ));
}

PinnedLibraries::~PinnedLibraries() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::StatusOr<std::string> PinnedLibraries::Materialize(const std::string& path,
                                                         const std::string& sha256) {
  absl::StatusOr<std::string> bytes = ReadAll(path);
  if (!bytes.ok()) return bytes.status();
  std::string actual = Sha256Hex(*bytes);
  if (actual != sha256) {
    return absl::PermissionDeniedError(absl::StrCat(
        "library '", path, "' has SHA-256 ", actual, ", the permission pins ", sha256));
  }
  std::string target = absl::StrCat(dir_, "/", sha256, ".so");
  absl::MutexLock lock(&mu_);
  struct stat st;
  if (::stat(target.c_str(), &st) == 0) return target;  // ours; same bytes
  std::string temp = absl::StrCat(target, ".tmp");
  // Readable by anyone (the worker runs as an unprivileged uid); the 0700
  // directory keeps everyone but the daemon's user out.
  UniqueFd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0444));
  if (!out.valid()) return ErrnoStatus(absl::StrCat("create ", temp), errno);
  size_t done = 0;
  while (done < bytes->size()) {
    ssize_t n = ::write(out.get(), bytes->data() + done, bytes->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(absl::StrCat("write ", temp), errno);
    done += static_cast<size_t>(n);
  }
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("rename ", temp), errno);
  }
  return target;
}

}  // namespace ffibroker
