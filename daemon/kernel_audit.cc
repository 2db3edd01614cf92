#include "daemon/kernel_audit.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_split.h"
#include "common/unique_fd.h"

namespace ffibroker {
namespace {

// The kernel keeps at most a few MiB of log; this bounds the scan whatever
// the device returns.
constexpr int kMaxRecords = 200000;
constexpr size_t kMaxRecordBytes = 8192;  // a kmsg record is at most ~1 KiB

// The value of " key=" in `message` (up to the next space), or empty.
absl::string_view Field(absl::string_view message, absl::string_view key) {
  std::string needle = " " + std::string(key) + "=";
  size_t at = message.find(needle);
  if (at == absl::string_view::npos) return {};
  absl::string_view rest = message.substr(at + needle.size());
  return rest.substr(0, rest.find(' '));
}

}  // namespace

uint64_t KernelLogClockMicros() {
  timespec now = {};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000u + static_cast<uint64_t>(now.tv_nsec) / 1000u;
}

std::optional<SeccompAuditRecord> ParseSeccompAuditRecord(absl::string_view record, pid_t pid,
                                                          uint64_t not_before_us) {
  size_t semicolon = record.find(';');
  if (semicolon == absl::string_view::npos) return std::nullopt;
  std::vector<absl::string_view> prefix = absl::StrSplit(record.substr(0, semicolon), ',');
  uint32_t priority = 0;
  uint64_t stamp_us = 0;
  if (prefix.size() < 3 || !absl::SimpleAtoi(prefix[0], &priority) ||
      !absl::SimpleAtoi(prefix[2], &stamp_us)) {
    return std::nullopt;
  }
  if ((priority >> 3) != 0 || stamp_us < not_before_us) return std::nullopt;  // kernel only
  absl::string_view message = record.substr(semicolon + 1);
  message = message.substr(0, message.find('\n'));  // continuation lines follow
  if (message.find("audit: type=1326 ") != 0) return std::nullopt;
  int64_t record_pid = 0;
  SeccompAuditRecord out;
  if (!absl::SimpleAtoi(Field(message, "pid"), &record_pid) || record_pid != pid ||
      !absl::SimpleHexAtoi(Field(message, "arch"), &out.arch) ||
      !absl::SimpleAtoi(Field(message, "syscall"), &out.syscall) || out.syscall < 0) {
    return std::nullopt;
  }
  // Only a trap or a kill stops a worker; the records of calls a profile
  // answers with an error (fail_with_errno, also logged) name no violation.
  uint32_t code = 0;
  absl::string_view code_text = Field(message, "code");
  if (!absl::ConsumePrefix(&code_text, "0x") || !absl::SimpleHexAtoi(code_text, &code)) {
    return std::nullopt;
  }
  constexpr uint32_t kActionMask = 0xffff0000u;  // SECCOMP_RET_ACTION_FULL
  constexpr uint32_t kTrap = 0x00030000u, kKillThread = 0, kKillProcess = 0x80000000u;
  uint32_t action = code & kActionMask;
  if (action != kTrap && action != kKillThread && action != kKillProcess) return std::nullopt;
  return out;
}

std::optional<SeccompAuditRecord> FindSeccompAuditRecord(pid_t pid, uint64_t not_before_us) {
  UniqueFd kmsg(::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!kmsg.valid()) return std::nullopt;
  std::optional<SeccompAuditRecord> newest;
  std::string buffer(kMaxRecordBytes, '\0');
  for (int i = 0; i < kMaxRecords; ++i) {
    ssize_t n = ::read(kmsg.get(), buffer.data(), buffer.size());
    if (n < 0 && (errno == EINTR || errno == EPIPE)) continue;  // EPIPE: overwritten, go on
    if (n <= 0) break;  // EAGAIN: the end of the log
    std::optional<SeccompAuditRecord> r = ParseSeccompAuditRecord(
        absl::string_view(buffer.data(), static_cast<size_t>(n)), pid, not_before_us);
    if (r.has_value()) newest = r;
  }
  return newest;
}

}  // namespace ffibroker
