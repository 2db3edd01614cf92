// Text <-> typed values, for the CLI and for messages.
//
// Literals: integers in decimal or 0x-hex with an optional sign; floats as
// strtod reads them (including "nan", "inf", "-0", "0x1p-1074"); bools as
// "true"/"false". Values are formatted so that parsing them back gives the
// same bits: floats use the shortest round-trip form ("0.8775825618903728").
#ifndef FFIBROKER_COMMON_LITERAL_H_
#define FFIBROKER_COMMON_LITERAL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ffibroker/v1/types.pb.h"

namespace ffibroker {

// Parses `text` as a value of `type` and checks it (range, kind) with the
// codec. INVALID_ARGUMENT naming the literal and the type on failure.
absl::StatusOr<v1::Value> ParseLiteral(const v1::Type& type,
                                       absl::string_view text);

// The shortest text that ParseLiteral reads back to the same value.
std::string FormatValue(const v1::Value& value);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_LITERAL_H_
