// AuditLog: one JSON line per security-relevant event.
//
// Events: session creation, library open (and its denial), token grant,
// exchange, revocation and use denials, permission revocation, policy
// reload, and — only when the policy's audit.log_calls is set — every call.
// Each line names the principal, the session (by serial, never its id) and
// the token id; token values, API keys and session ids are never written.
//
// A line is an ffibroker.v1.AuditRecord (proto/ffibroker/v1/audit.proto:
// the field names and their meaning) printed by protobuf's JSON printer, so
// it is valid JSON whatever bytes a field held (bytes that are not UTF-8
// become U+FFFD):
//
//   {"time":"2026-01-02T03:04:05.678Z","event":"grant_token","principal":"host",
//    "session":"s3","token_id":"9f…","result":"ok"}
//
// Thread-safe: each line is one write(2) (O_APPEND), so lines never
// interleave.
//
//   ASSIGN_OR_RETURN(auto audit, AuditLog::Open(policy.audit()));
//   audit->Record("revoke_token", {{"principal", "host"}, {"token_id", id}});
#ifndef FFIBROKER_DAEMON_AUDIT_LOG_H_
#define FFIBROKER_DAEMON_AUDIT_LOG_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"
#include "ffibroker/v1/audit.pb.h"
#include "ffibroker/v1/policy.pb.h"

namespace ffibroker {

// Each field of a record holds at most this many bytes, then a note of
// what was cut (BoundedStatusText).
inline constexpr size_t kMaxAuditFieldBytes = 4096;

class AuditLog {
 public:
  // Opens `config.path` for appending (created 0600), or the daemon's
  // stderr when empty. UNAVAILABLE with the errno if it cannot be opened.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const v1::AuditConfig& config);

  // Writes `record` as one line, its time set to now if unset.
  void Record(v1::AuditRecord record);

  // A field of AuditRecord by its name ("principal") and its value.
  using Field = std::pair<absl::string_view, std::string>;
  // Writes the AuditRecord with `event` and `fields`; empty values are left
  // out. A name AuditRecord does not have is our own bug: it is logged as
  // an error and the rest of the line is still written.
  void Record(absl::string_view event, std::initializer_list<Field> fields);

  bool log_calls() const { return log_calls_; }

  // The JSON line (with "\n") that Record writes for `record` as it is.
  static std::string FormatLine(v1::AuditRecord record);

 private:
  AuditLog(UniqueFd fd, bool to_stderr, bool log_calls)
      : fd_(std::move(fd)), to_stderr_(to_stderr), log_calls_(log_calls) {}
  UniqueFd fd_;
  bool to_stderr_;
  bool log_calls_;
};

// "s<serial>" as in the daemon's log, for audit fields.
std::string SessionField(uint64_t serial);

// `bytes` with every byte that is not part of a well-formed UTF-8 sequence
// (RFC 3629: no overlong forms, surrogates or values past U+10FFFF)
// replaced by U+FFFD.
std::string ValidUtf8(absl::string_view bytes);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_AUDIT_LOG_H_
