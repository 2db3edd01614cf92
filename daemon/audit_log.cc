#include "daemon/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace ffibroker {
namespace {

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

}  // namespace

std::string SessionField(uint64_t serial) { return absl::StrCat("s", serial); }

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const v1::AuditConfig& config) {
  if (config.path().empty()) {
    return std::unique_ptr<AuditLog>(new AuditLog(UniqueFd(), true, config.log_calls()));
  }
  UniqueFd fd(::open(config.path().c_str(),
                     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) {
    return absl::UnavailableError(absl::StrCat("cannot open audit log ", config.path(),
                                               ": ", std::strerror(errno)));
  }
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(fd), false, config.log_calls()));
}

void AuditLog::Record(absl::string_view event, std::initializer_list<Field> fields) {
  std::string line = to_stderr_ ? "AUDIT " : "";
  line += "{\"time\":";
  AppendJsonString(&line, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                           absl::UTCTimeZone()));
  line += ",\"event\":";
  AppendJsonString(&line, event);
  for (const Field& field : fields) {
    if (field.second.empty()) continue;
    line += ",";
    AppendJsonString(&line, field.first);
    line += ":";
    AppendJsonString(&line, field.second);
  }
  line += "}\n";
  int fd = to_stderr_ ? STDERR_FILENO : fd_.get();
  // One write: O_APPEND makes it atomic with respect to other lines.
  ssize_t ignored = ::write(fd, line.data(), line.size());
  (void)ignored;
}

}  // namespace ffibroker
