// The structured details of an ffibroker error (docs/errors.md).
//
// Every error the daemon returns carries a google.rpc.Status with an
// ErrorInfo (a stable reason and metadata) and, for a bad field of the
// request, a BadRequest. The client library keeps them on the absl::Status
// it returns:
//
//   absl::StatusOr<uint8_t> r = lib->Call<uint8_t>("id_u8", 300);
//   ffibroker::ErrorReason(r.status())    == "ARGUMENT_OUT_OF_RANGE"
//   ffibroker::ErrorMetadataOf(r.status()) == {{"argument", "1"}, {"type", "u8"}, ...}
//   ffibroker::FieldViolationsOf(r.status()) == {{"args[0]", "300 is out of range ..."}}
//
// Pure functions; thread-safe. (Defined in common/error_reason.cc, which
// declares the same functions for the daemon.)
#ifndef FFIBROKER_CLIENT_ERROR_H_
#define FFIBROKER_CLIENT_ERROR_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace ffibroker {

// The stable reason, e.g. "TOKEN_REVOKED"; for an error without details
// (e.g. the daemon could not be reached) the code's name ("UNAVAILABLE");
// "" for OK.
std::string ErrorReason(const absl::Status& status);
// The reason's metadata, e.g. {"syscall": "101"}; empty if none.
std::map<std::string, std::string> ErrorMetadataOf(const absl::Status& status);
// The BadRequest field violations as (field, description); empty if none.
std::vector<std::pair<std::string, std::string>> FieldViolationsOf(const absl::Status& status);

}  // namespace ffibroker

#endif  // FFIBROKER_CLIENT_ERROR_H_
