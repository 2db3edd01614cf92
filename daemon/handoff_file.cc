#include "daemon/handoff_file.h"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace ffibroker {
namespace {

constexpr uint64_t kMaxLibraryBytes = uint64_t{1} << 30;

}  // namespace

HandoffFile::~HandoffFile() { Remove(); }

HandoffFile::HandoffFile(HandoffFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::move(other.fd_)) {
  other.path_.clear();
}

HandoffFile& HandoffFile::operator=(HandoffFile&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::move(other.path_);
    fd_ = std::move(other.fd_);
    other.path_.clear();
  }
  return *this;
}

void HandoffFile::Remove() {
  // A worker that mapped the library keeps its pages; the name goes.
  if (!path_.empty()) ::unlink(path_.c_str());
  path_.clear();
  fd_.reset();
}

absl::Status HandoffFile::Fill(int source) {
  struct stat st;
  if (::fstat(source, &st) != 0) return ErrnoStatus("fstat of the library", errno);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError("the library is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxLibraryBytes) {
    return absl::InvalidArgumentError("the library is larger than 1 GiB");
  }
  // sendfile writes at the descriptor's offset: back to the start.
  if (::ftruncate(fd_.get(), 0) != 0 || ::lseek(fd_.get(), 0, SEEK_SET) != 0) {
    return ErrnoStatus(absl::StrCat("truncate ", path_), errno);
  }
  off_t offset = 0;
  // In the kernel: no copy through the daemon's memory.
  while (offset < st.st_size) {
    ssize_t n = ::sendfile(fd_.get(), source, &offset, static_cast<size_t>(st.st_size - offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(absl::StrCat("copy the library to ", path_), errno);
    if (n == 0) break;  // shrank meanwhile: what was read is what is loaded
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HandoffDir>> HandoffDir::Create() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = absl::StrCat(base && *base ? base : "/tmp", "/ffibrokerd-handoff-XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) {
    return absl::UnavailableError(absl::StrCat("mkdtemp ", templ, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<HandoffDir>(new HandoffDir(templ));
}

HandoffDir::~HandoffDir() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::StatusOr<HandoffFile> HandoffDir::NewFile() {
  std::string path = absl::StrCat(dir_, "/library-", next_.fetch_add(1), ".so");
  // Readable by anyone (the worker runs as an unprivileged uid; the 0700
  // directory keeps everyone but the daemon's user out), written only
  // through this descriptor.
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444));
  if (!fd.valid()) return ErrnoStatus(absl::StrCat("create ", path), errno);
  return HandoffFile(std::move(path), std::move(fd));
}

}  // namespace ffibroker
