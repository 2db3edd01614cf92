// The one marshalling path between typed protobuf values and native bytes.
//
// The daemon encodes client values with EncodeInline (which is also the
// validation: kind, range, exact representability, enum sets) and decodes
// worker results with DecodeInline (which validates them again: the worker
// is untrusted). The worker only copies the bytes into place. The native
// encoding of a scalar is its in-memory representation on this host,
// exactly ScalarInfo::size bytes; how the other kinds of argument travel is
// common/arg_kinds.h.
#ifndef FFIBROKER_COMMON_VALUE_CODEC_H_
#define FFIBROKER_COMMON_VALUE_CODEC_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/type_desc.h"
#include "ffibroker/v1/types.pb.h"
#include "google/protobuf/repeated_field.h"

namespace ffibroker {

// The walker over resolved types (scalars, enums, classes by value,
// arrays): validates `value` against `type` and appends exactly type.size
// native bytes (padding zeroed). INVALID_ARGUMENT naming the field path
// ("field 'origin.x': 300 is out of range for u8 (0..255)").
absl::Status EncodeInline(const TypeDesc& type, const v1::Value& value,
                          std::string* out);

// Writes the given fields of class `klass` into `*bytes` (exactly
// klass.size bytes, other fields untouched). With `require_all` every field
// must be given. Validation as EncodeInline; on failure `*bytes` may be
// partly written (callers encode into a copy).
absl::Status EncodeFields(const TypeDesc& klass, const v1::StructValue& fields,
                          bool require_all, std::string* bytes);

// Decodes and validates type.size native bytes: bools 0/1, enum values
// from the declared set, recursively through classes and arrays.
// INVALID_ARGUMENT naming the field path otherwise (callers reading worker
// memory report it as DATA_LOSS).
absl::StatusOr<v1::Value> DecodeInline(const TypeDesc& type, absl::string_view bytes);

// "argument 2 (count: u8)" — 1-based, as users count. For messages.
std::string DescribeArgument(int index, const v1::Parameter& param);

// Which member of `value` is set, e.g. "f64_value", or "no value".
std::string ValueCaseName(const v1::Value& value);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_VALUE_CODEC_H_
