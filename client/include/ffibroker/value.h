// Conversions between C++ values and ffibroker.v1.Value.
//
// ToValue picks the Value member for a C++ type (the daemon then checks it
// against the declared parameter type, range included). FromValue converts
// a result back, failing with INVALID_ARGUMENT if the result does not fit
// the requested C++ type exactly (an i64 result asked for as int8_t, say).
//
//   v1::Value v = ffibroker::ToValue(uint64_t{18446744073709551615u});
//   absl::StatusOr<uint64_t> back = ffibroker::FromValue<uint64_t>(v);
#ifndef FFIBROKER_CLIENT_VALUE_H_
#define FFIBROKER_CLIENT_VALUE_H_

#include <cstdint>
#include <limits>
#include <initializer_list>
#include <string>
#include <utility>
#include <type_traits>

#include "absl/status/statusor.h"
#include "ffibroker/v1/types.pb.h"

namespace ffibroker {

// A Value passes through unchanged (struct values, strings, bytes, null).
inline v1::Value ToValue(const v1::Value& v) { return v; }

template <typename T>
v1::Value ToValue(T v) {
  static_assert(std::is_arithmetic_v<T>, "only C++ arithmetic types map to scalars");
  v1::Value value;
  if constexpr (std::is_same_v<T, bool>) {
    value.set_bool_value(v);
  } else if constexpr (std::is_same_v<T, float>) {
    value.set_f32_value(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    static_assert(sizeof(T) == sizeof(double), "long double has no scalar kind");
    value.set_f64_value(v);
  } else if constexpr (std::is_signed_v<T>) {
    value.set_int_value(static_cast<int64_t>(v));
  } else {
    value.set_uint_value(static_cast<uint64_t>(v));
  }
  return value;
}

// A class value from named fields: StructOf({{"x", ToValue(1.0)}, ...}).
inline v1::Value StructOf(
    std::initializer_list<std::pair<std::string, v1::Value>> fields) {
  v1::Value value;
  for (const auto& [name, field] : fields) {
    v1::FieldValue* f = value.mutable_struct_value()->add_fields();
    f->set_name(name);
    *f->mutable_value() = field;
  }
  value.mutable_struct_value();
  return value;
}

// A string, bytes or null-pointer argument.
inline v1::Value StringValue(std::string s) {
  v1::Value value;
  value.set_string_value(std::move(s));
  return value;
}
inline v1::Value BytesValue(std::string b) {
  v1::Value value;
  value.set_bytes_value(std::move(b));
  return value;
}
inline v1::Value NullValue() {
  v1::Value value;
  value.set_null_value(true);
  return value;
}

// The value of field `name` of a struct value, or nullptr.
inline const v1::Value* FieldOf(const v1::Value& value, const std::string& name) {
  for (const v1::FieldValue& f : value.struct_value().fields()) {
    if (f.name() == name) return &f.value();
  }
  return nullptr;
}

namespace internal {
// "result f64_value cannot be read as int": the shared failure of FromValue.
absl::Status ResultTypeMismatch(const v1::Value& value, const char* wanted);
}  // namespace internal

template <typename T>
absl::StatusOr<T> FromValue(const v1::Value& value) {
  static_assert(std::is_arithmetic_v<T>, "only C++ arithmetic types map to scalars");
  if constexpr (std::is_same_v<T, bool>) {
    if (value.value_case() == v1::Value::kBoolValue) return value.bool_value();
    return internal::ResultTypeMismatch(value, "bool");
  } else if constexpr (std::is_same_v<T, float>) {
    if (value.value_case() == v1::Value::kF32Value) return value.f32_value();
    return internal::ResultTypeMismatch(value, "float");
  } else if constexpr (std::is_floating_point_v<T>) {
    if (value.value_case() == v1::Value::kF64Value) return value.f64_value();
    if (value.value_case() == v1::Value::kF32Value) return value.f32_value();
    return internal::ResultTypeMismatch(value, "double");
  } else {
    using Limits = std::numeric_limits<T>;
    if (value.value_case() == v1::Value::kIntValue) {
      int64_t v = value.int_value();
      bool fits = std::is_signed_v<T>
                      ? (v >= static_cast<int64_t>(Limits::min()) &&
                         v <= static_cast<int64_t>(Limits::max()))
                      : (v >= 0 && static_cast<uint64_t>(v) <= Limits::max());
      if (fits) return static_cast<T>(v);
    } else if (value.value_case() == v1::Value::kUintValue) {
      uint64_t v = value.uint_value();
      if (v <= static_cast<uint64_t>(Limits::max())) return static_cast<T>(v);
    }
    return internal::ResultTypeMismatch(value, "the requested integer type");
  }
}

}  // namespace ffibroker

#endif  // FFIBROKER_CLIENT_VALUE_H_
