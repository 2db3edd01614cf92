// Callbacks: functions of the client the library calls during a call
// (docs/callbacks.md).
//
// A callback is registered on a CallStream with its declaration, written
// like a function's ("i32 cmp(in u8[4] a, in u8[4] b)"), and passed as an
// argument with CallbackValue(id). When the library calls it, the stream
// runs the handler on the thread that is receiving from the stream
// (CallStream::Call or Receive) and sends its result back; a handler may
// itself make calls on the same stream (they run nested, in the worker
// waiting for its answer).
//
//   Callback<int32_t(std::string, std::string)> cmp(
//       "i32 cmp(in u8[4] a, in u8[4] b)",
//       [](std::string a, std::string b) { return Compare(a, b); });
//   ASSIGN_OR_RETURN(uint64_t id, stream->RegisterCallback(cmp));
//   stream->Call(lib, "sort_u32", {BytesValue(data), ToValue(n), CallbackValue(id)});
//
// Argument and result types: C++ arithmetic types (checked like FromValue),
// std::string (a cstr's text or an `in` buffer's bytes), v1::Value (any
// kind, e.g. a class by value), and types with a ValueConverter.
#ifndef FFIBROKER_CLIENT_CALLBACK_H_
#define FFIBROKER_CLIENT_CALLBACK_H_

#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "ffibroker/v1/types.pb.h"
#include "ffibroker/value.h"

namespace ffibroker {

// A callback argument: the id RegisterCallback returned.
inline v1::Value CallbackValue(uint64_t id) {
  v1::Value value;
  value.set_callback_value(id);
  return value;
}

// What a handler gets and returns: one Value per parameter; the result
// (VALUE_NOT_SET for void), or an error the call that invoked it then
// fails with.
using CallbackHandler =
    std::function<absl::StatusOr<v1::Value>(const std::vector<v1::Value>& args)>;

// Specialize for a type of your own (e.g. a struct matching a class):
//   template <> struct ValueConverter<Point> {
//     static absl::StatusOr<Point> From(const v1::Value& v);
//     static v1::Value To(const Point& p);
//   };
template <typename T, typename = void>
struct ValueConverter;

template <typename T>
struct ValueConverter<T, std::enable_if_t<std::is_arithmetic_v<T>>> {
  static absl::StatusOr<T> From(const v1::Value& v) { return FromValue<T>(v); }
  static v1::Value To(T v) { return ToValue(v); }
};

template <>
struct ValueConverter<std::string> {
  static absl::StatusOr<std::string> From(const v1::Value& v) {
    if (v.value_case() == v1::Value::kStringValue) return v.string_value();
    if (v.value_case() == v1::Value::kBytesValue) return v.bytes_value();
    return internal::ResultTypeMismatch(v, "std::string");
  }
  static v1::Value To(const std::string& s) { return StringValue(s); }
};

template <>
struct ValueConverter<v1::Value> {
  static absl::StatusOr<v1::Value> From(const v1::Value& v) { return v; }
  static v1::Value To(const v1::Value& v) { return v; }
};

template <typename Signature>
class Callback;

template <typename R, typename... Args>
class Callback<R(Args...)> {
 public:
  Callback(std::string declaration, std::function<R(Args...)> function)
      : declaration_(std::move(declaration)), function_(std::move(function)) {}

  const std::string& declaration() const { return declaration_; }

  // The untyped handler: converts the arguments (INVALID_ARGUMENT naming
  // the first that does not convert), calls the function, converts the
  // result.
  CallbackHandler Handler() const {
    return [function = function_](const std::vector<v1::Value>& args)
               -> absl::StatusOr<v1::Value> {
      if (args.size() != sizeof...(Args)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the handler takes ", sizeof...(Args), " arguments, the invocation has ",
            args.size()));
      }
      return Invoke(function, args, std::index_sequence_for<Args...>());
    };
  }

 private:
  template <size_t... I>
  static absl::StatusOr<v1::Value> Invoke(const std::function<R(Args...)>& function,
                                          const std::vector<v1::Value>& args,
                                          std::index_sequence<I...>) {
    std::tuple<absl::StatusOr<std::decay_t<Args>>...> converted{
        ValueConverter<std::decay_t<Args>>::From(args[I])...};
    absl::Status bad;
    size_t index = 0;
    auto check = [&](const absl::Status& status, size_t i) {
      if (bad.ok() && !status.ok()) {
        bad = status;
        index = i;
      }
    };
    (check(std::get<I>(converted).status(), I), ...);
    if (!bad.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("argument ", index + 1, ": ", bad.message()));
    }
    if constexpr (std::is_void_v<R>) {
      function(*std::move(std::get<I>(converted))...);
      return v1::Value();
    } else {
      return ValueConverter<std::decay_t<R>>::To(function(*std::move(std::get<I>(converted))...));
    }
  }

  std::string declaration_;
  std::function<R(Args...)> function_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_CLIENT_CALLBACK_H_
