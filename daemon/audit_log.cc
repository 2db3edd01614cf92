#include "daemon/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/utf8.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace ffibroker {

std::string SessionField(uint64_t serial) { return absl::StrCat("s", serial); }

std::string ValidUtf8(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  while (!bytes.empty()) {
    const size_t length = Utf8CharLength(bytes);
    if (length == 0) {
      out.append("\xEF\xBF\xBD");  // U+FFFD for the one byte, then resync
      bytes.remove_prefix(1);
    } else {
      out.append(bytes.data(), length);
      bytes.remove_prefix(length);
    }
  }
  return out;
}

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

std::string AuditLog::FormatLine(v1::AuditRecord record) {
  // Every string field made valid UTF-8 first: the printer would otherwise
  // drop the bytes it cannot print (and complain on stderr). Fields quote
  // what clients sent (a token id, a library path), which gRPC lets be
  // megabytes long: each is cut as status messages are, so a line stays
  // small.
  const google::protobuf::Reflection* reflection = record.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(record, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    if (field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) continue;
    std::string value = ValidUtf8(reflection->GetString(record, field));
    if (value.size() > kMaxAuditFieldBytes) value = BoundedStatusText(value, kMaxAuditFieldBytes);
    reflection->SetString(&record, field, std::move(value));
  }
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string line;
  auto printed = google::protobuf::util::MessageToJsonString(record, &line, options);
  if (!printed.ok()) {  // not expected for valid UTF-8; still one valid line
    line = absl::StrCat("{\"event\":\"audit_record_not_printable\"}");
  }
  line.push_back('\n');
  return line;
}

void AuditLog::Record(v1::AuditRecord record) {
  if (!record.has_time()) {
    *record.mutable_time() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
        absl::ToUnixMillis(absl::Now()));
  }
  std::string line = FormatLine(std::move(record));
  if (to_stderr_) line.insert(0, "AUDIT ");
  int fd = to_stderr_ ? STDERR_FILENO : fd_.get();
  // One write: O_APPEND makes it atomic with respect to other lines.
  ssize_t ignored = ::write(fd, line.data(), line.size());
  (void)ignored;
}

void AuditLog::Record(absl::string_view event, std::initializer_list<Field> fields) {
  v1::AuditRecord record;
  record.set_event(std::string(event));
  const google::protobuf::Descriptor* descriptor = record.GetDescriptor();
  const google::protobuf::Reflection* reflection = record.GetReflection();
  for (const Field& field : fields) {
    if (field.second.empty()) continue;
    const google::protobuf::FieldDescriptor* target =
        descriptor->FindFieldByName(std::string(field.first));
    if (target == nullptr || target->type() != google::protobuf::FieldDescriptor::TYPE_STRING) {
      LOG_ERROR("audit: event %s has a field %s that ffibroker.v1.AuditRecord lacks; left out",
                event, field.first);
      continue;
    }
    reflection->SetString(&record, target, field.second);
  }
  Record(std::move(record));
}

}  // namespace ffibroker
