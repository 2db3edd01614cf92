// Stable, machine-readable error reasons carried on an absl::Status.
//
// The place an error is detected tags it with a reason from docs/errors.md
// and facts about it; common/grpc_status.cc turns them into the
// google.rpc.Status details (an ErrorInfo, a BadRequest) of the gRPC error,
// and back again in the client library:
//
//   return WithReason(absl::InvalidArgumentError("300 is out of range for u8"),
//                     "ARGUMENT_OUT_OF_RANGE", {{"argument", "1"}});
//   ErrorReason(status) == "ARGUMENT_OUT_OF_RANGE"
//
// A status nobody tagged has the default reason of its code (the code's
// name, e.g. "NOT_FOUND"). The reason and metadata are absl::Status payloads
// (serialized google.rpc.ErrorInfo / BadRequest under their type URLs), so
// they survive being returned through RETURN_IF_ERROR and copied, but not a
// new status built from another's message (use WithMessagePrefix for that).
// Thread-safe: pure functions.
#ifndef FFIBROKER_COMMON_ERROR_REASON_H_
#define FFIBROKER_COMMON_ERROR_REASON_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ffibroker {

// google.rpc.ErrorInfo.domain of every ffibrokerd error.
inline constexpr char kErrorDomain[] = "ffibroker.v1";
inline constexpr char kErrorInfoTypeUrl[] = "type.googleapis.com/google.rpc.ErrorInfo";
inline constexpr char kBadRequestTypeUrl[] = "type.googleapis.com/google.rpc.BadRequest";

using ErrorMetadata = std::map<std::string, std::string>;

// `status` (unchanged if OK) with its reason set to `reason` (replacing an
// earlier one) and `metadata` added to what it carried (a key given again
// is replaced).
absl::Status WithReason(absl::Status status, absl::string_view reason,
                        const ErrorMetadata& metadata = {});

// `status` (unchanged if OK) with metadata added, keeping its reason.
absl::Status WithMetadata(absl::Status status, const ErrorMetadata& metadata);

// `status` (unchanged if OK) with a google.rpc.BadRequest field violation
// added: `field` is a path into the request ("args[1]", "symbols[0].text").
absl::Status WithFieldViolation(absl::Status status, absl::string_view field,
                                absl::string_view description);

// A status of the same code, reason, metadata and violations whose message
// is `prefix` followed by the original message.
absl::Status WithMessagePrefix(const absl::Status& status, absl::string_view prefix);
// The same, with `message` as the whole message: for adding context to an
// error without losing its reason (instead of absl::Status(s.code(), ...)).
absl::Status WithNewMessage(const absl::Status& status, absl::string_view message);

// The reason: the one set with WithReason, or DefaultReason(code). "" for OK.
std::string ErrorReason(const absl::Status& status);
// The metadata (empty if none).
ErrorMetadata ErrorMetadataOf(const absl::Status& status);
// The field violations as (field, description), in the order added.
std::vector<std::pair<std::string, std::string>> FieldViolationsOf(const absl::Status& status);

// The reason of an untagged error: the code's canonical name, e.g.
// "INVALID_ARGUMENT".
std::string DefaultReason(absl::StatusCode code);

// "NOT_FOUND: message" ("OK" for OK): how a status is shown to people, in
// logs and by the CLI. Never absl::Status::ToString(), which appends the
// reason and metadata payloads as serialized protobuf bytes.
std::string StatusText(const absl::Status& status);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_ERROR_REASON_H_
