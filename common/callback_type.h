// Callback types: whether a callback the client registered fits a declared
// function-pointer parameter.
//
// A client registers a callback on its CallStream with a v1::Signature
// (RegisterCallback.signature); it may be passed to a parameter declared
// `fn(...) -> T` only if the two signatures are the same function type:
// the same result, the same parameter types in order, the same calling
// convention. Parameter names do not count, except that an `in u8[len]`
// buffer's length parameter is compared by position.
//
// Stateless; thread-safe.
//
//   const TypeDesc& declared = *sig.params[i];           // kind kCallback
//   RETURN_IF_ERROR(CallbackSignatureMatches(declared, registration.signature()));
#ifndef FFIBROKER_COMMON_CALLBACK_TYPE_H_
#define FFIBROKER_COMMON_CALLBACK_TYPE_H_

#include "absl/status/status.h"
#include "common/type_desc.h"
#include "ffibroker/v1/types.pb.h"

namespace ffibroker {

// OK if `registered` is the function type of `declared` (a kCallback
// TypeDesc). Otherwise INVALID_ARGUMENT naming the first difference, e.g.
// "callback parameter 2 ('b') is i64, the declared type fn(i32 a, i32 b) ->
// i32 has i32", "the callback returns void, the declared type ... returns
// i32", "the callback has 3 parameters, the declared type ... has 2".
// INVALID_ARGUMENT too if `declared` is not a callback type.
absl::Status CallbackSignatureMatches(const TypeDesc& declared, const v1::Signature& registered);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_CALLBACK_TYPE_H_
