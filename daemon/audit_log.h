// AuditLog: one JSON line per security-relevant event.
//
// Events: session creation, library open (and its denial), token grant,
// exchange, revocation and use denials, permission revocation, policy
// reload, and — only when the policy's audit.log_calls is set — every call.
// Each line names the principal, the session (by serial, never its id) and
// the token id; token values, API keys and session ids are never written.
//
//   {"time":"2026-01-02T03:04:05.678Z","event":"grant_token","principal":"host",
//    "session":3,"token_id":"9f…","result":"ok"}
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
#include "ffibroker/v1/policy.pb.h"

namespace ffibroker {

class AuditLog {
 public:
  // Opens `config.path` for appending (created 0600), or the daemon's
  // stderr when empty. UNAVAILABLE with the errno if it cannot be opened.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const v1::AuditConfig& config);

  using Field = std::pair<absl::string_view, std::string>;
  // Writes {"time":…,"event":event, fields…}. Empty field values are left out.
  void Record(absl::string_view event, std::initializer_list<Field> fields);

  bool log_calls() const { return log_calls_; }

 private:
  AuditLog(UniqueFd fd, bool to_stderr, bool log_calls)
      : fd_(std::move(fd)), to_stderr_(to_stderr), log_calls_(log_calls) {}
  UniqueFd fd_;
  bool to_stderr_;
  bool log_calls_;
};

// "s<serial>" as in the daemon's log, for audit fields.
std::string SessionField(uint64_t serial);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_AUDIT_LOG_H_
