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
#include "common/type_desc.h"
#include "ffibroker/v1/types.pb.h"

namespace ffibroker {

// Parses `text` as a value of `type` and checks it (range, kind) with the
// codec. INVALID_ARGUMENT naming the literal and the type on failure.
absl::StatusOr<v1::Value> ParseLiteral(const v1::Type& type,
                                       absl::string_view text);

// Parses a literal of a resolved inline type: scalars and enums as above,
// classes as `{x=1, y=2.5}` (every field, any order), arrays as `[1, 2, 3]`.
// Handles, strings and buffers have no inline literal (the CLI treats them
// itself). INVALID_ARGUMENT saying what was expected where.
absl::StatusOr<v1::Value> ParseInlineLiteral(const TypeDesc& type,
                                             absl::string_view text);

// The shortest text that ParseLiteral reads back to the same value. Class
// values print as `{x=1, y=2.5}`, arrays as `[1, 2]`, handles as `#N`,
// null pointers as `null`, strings quoted with C escapes, bytes as
// `hex:0a0b`.
std::string FormatValue(const v1::Value& value);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_LITERAL_H_
