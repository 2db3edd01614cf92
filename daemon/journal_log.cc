#include "daemon/journal_log.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ffibroker {
namespace {

int Priority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return 7;    // LOG_DEBUG
    case LogLevel::kInfo: return 6;     // LOG_INFO
    case LogLevel::kWarning: return 4;  // LOG_WARNING
    case LogLevel::kError: return 3;    // LOG_ERR
  }
  return 6;
}

}  // namespace

bool JournalStreamMatches(const char* journal_stream, int fd) {
  if (journal_stream == nullptr) return false;
  std::vector<absl::string_view> parts = absl::StrSplit(journal_stream, ':');
  uint64_t dev = 0, ino = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &dev) ||
      !absl::SimpleAtoi(parts[1], &ino)) {
    return false;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) return false;
  return static_cast<uint64_t>(st.st_dev) == dev && static_cast<uint64_t>(st.st_ino) == ino;
}

bool ChooseJournal(LogTarget target, const char* journal_stream, int stderr_fd) {
  switch (target) {
    case LogTarget::kJournal: return true;
    case LogTarget::kStderr: return false;
    case LogTarget::kAuto: return JournalStreamMatches(journal_stream, stderr_fd);
  }
  return false;
}

std::vector<std::string> JournalFields(LogLevel level, const LogFields& fields,
                                       const std::string& message, const char* program) {
  std::vector<std::string> out;
  out.push_back(absl::StrCat("MESSAGE=", message));
  out.push_back(absl::StrCat("PRIORITY=", Priority(level)));
  out.push_back(absl::StrCat("SYSLOG_IDENTIFIER=", program));
  for (const auto& [name, value] : fields.list()) {
    out.push_back(absl::StrCat("FFIBROKER_", name, "=", value));
  }
  return out;
}

bool InstallLogTarget(LogTarget target, const char* program) {
  if (!ChooseJournal(target, std::getenv("JOURNAL_STREAM"), STDERR_FILENO)) return false;
  SetLogSink([program](LogLevel level, const LogFields& fields, const std::string& message) {
    std::vector<std::string> entry = JournalFields(level, fields, message, program);
    std::vector<iovec> iov(entry.size());
    for (size_t i = 0; i < entry.size(); ++i) {
      iov[i].iov_base = entry[i].data();
      iov[i].iov_len = entry[i].size();
    }
    // Logging must never fail the caller; a lost entry is all that can happen.
    (void)sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  });
  return true;
}

}  // namespace ffibroker
