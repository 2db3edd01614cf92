// ArgKind: how each kind of parameter travels to the worker, in one place.
//
// A call's arguments reach the worker as one byte string per parameter
// (worker::v1::Call.args). What the string holds depends on the
// parameter's kind, and this module is the one statement of it, used by the
// daemon's codec (daemon/call_codec: validates client Values, encodes),
// the worker's call engine (daemon/worker/call_engine: checks the request,
// builds libffi arguments) and the CLI (client/cli/typed_call: parses
// literals by kind):
//
//   kind        argument bytes                       reply carries
//   kInline     the native value, exactly type.size  -
//   kHandle     the worker's instance id, 8 bytes;   -
//               0 = NULL (only if `nullable`)
//   kString     the text, no NUL; NULL is listed     -
//               in Call.arg_null instead
//   kBufferIn   the buffer's bytes                   -
//   kBufferInOut the buffer's bytes                  the buffer afterwards
//   kBufferOut  the buffer's length, 8 bytes (the    the buffer
//               out-buffer length rule)
//   kCallback   the callback's id, 8 bytes           -
//               (RegisterCallback.callback_id; 0 =
//               NULL, only if `nullable`)
//
// A result is kInline, kHandle (8-byte id, 0 = NULL) or kString (at most
// max_length + 1 bytes, so the daemon sees "too long"; NULL is
// Result.null_result).
//
// Callback invocations (worker::v1::CallbackInvoke, the library called a
// callback): one byte string per parameter of the callback's signature, by
// the same kinds: kInline its C bytes (exactly type.size); kHandle the
// 8-byte id of a borrowed instance the worker registered for the pointer
// (0 = NULL); kString the text, at most max_length + 1 bytes (one more than
// allowed: "too long"), NULL listed in arg_null; kBufferIn (the only buffer
// a callback takes) its bytes, exactly the length the library told
// (declared, or the value of its length parameter), NULL listed in
// arg_null. A length that is negative, past kMaxBufferLength or past the
// call payload is not read: the buffer is sent empty (a mismatch). The
// daemon checks all of it with CheckCallbackArgs. The answer
// (worker::v1::CallbackAnswer.value) is the result's C bytes, exactly
// CallbackResultBytes (0 for void).
//
// Stateless; every function is thread-safe.
//
//   switch (ArgKindOf(*sig.params[i])) { case ArgKind::kBufferOut: ... }
//   ASSIGN_OR_RETURN(uint64_t size, BufferSize(*sig.params[i], call.args(i)));
#ifndef FFIBROKER_COMMON_ARG_KINDS_H_
#define FFIBROKER_COMMON_ARG_KINDS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/type_table.h"
#include "google/protobuf/repeated_field.h"

namespace ffibroker {

enum class ArgKind {
  kInline,       // scalar, enum, class by value, array
  kHandle,       // a class pointer, as an instance handle
  kString,       // cstr
  kBufferIn,     // buffer the library reads
  kBufferOut,    // buffer the library writes
  kBufferInOut,  // buffer the library reads and writes
  kCallback,     // a function pointer, as a registered callback's id
};

// The kind of a parameter or result of `type`.
ArgKind ArgKindOf(const TypeDesc& type);

// kBufferIn, kBufferOut or kBufferInOut.
bool IsBuffer(ArgKind kind);
// kBufferOut or kBufferInOut: the reply carries the buffer (Result.outputs,
// in parameter order).
bool IsOutput(ArgKind kind);

// The 8 bytes of a handle argument or result: the worker's instance id
// (0 = NULL).
std::string InstanceIdBytes(uint64_t id);
// The instance id in `bytes`; INVALID_ARGUMENT ("has N bytes, expected 8")
// unless `bytes` is exactly 8 bytes.
absl::StatusOr<uint64_t> ReadInstanceId(absl::string_view bytes);

// The 8 bytes of a callback argument: the callback's id (0 = NULL).
std::string CallbackIdArg(uint64_t id);
// The callback id in `bytes`; INVALID_ARGUMENT unless exactly 8 bytes.
absl::StatusOr<uint64_t> ReadCallbackId(absl::string_view bytes);

// The out-buffer length rule: an out buffer's argument is its length as 8
// bytes (the library gets a zeroed buffer of that size).
std::string OutBufferArg(uint64_t length);

// The size of the native buffer a buffer parameter of `type` gets from its
// argument `arg`: an out buffer's length (OutBufferArg), an in or inout
// buffer's byte count. INVALID_ARGUMENT ("has N bytes, expected 8") if an
// out buffer's argument is not 8 bytes.
absl::StatusOr<uint64_t> BufferSize(const TypeDesc& type, absl::string_view arg);

// The most bytes the reply to a call of `sig` with arguments `args` carries:
// the result (a string result: max_length + 1) plus every out and inout
// buffer. UINT64_MAX if the sum overflows or one buffer is larger than
// kMaxBufferLength, so callers compare it against kMaxCallPayloadBytes
// once. INVALID_ARGUMENT naming the argument ("argument 2 has 3 bytes,
// expected 8") for an out buffer's argument that is not 8 bytes, or if
// `args` has fewer entries than `sig` has parameters.
absl::StatusOr<uint64_t> ReplyBytes(const ResolvedSignature& sig,
                                    const google::protobuf::RepeatedPtrField<std::string>& args);

// The length the library is told for buffer parameter `index` of `sig`:
// its declared fixed length, or the value of its length parameter read
// from that parameter's native argument in `args` (already checked to be
// the integer's size). `*negative` is set if a signed length argument is
// negative (the value is then meaningless).
uint64_t ToldBufferLength(const ResolvedSignature& sig, int index,
                          const google::protobuf::RepeatedPtrField<std::string>& args,
                          bool* negative);

// Checks a callback invocation's arguments (see "Callback invocations"
// above) against the callback's signature `sig` (TypeDesc::callback->sig):
// one per parameter, inline values of their size, handles of 8 bytes, NULL
// (in `arg_null`) only for nullable handles and strings, strings within
// max_length and without NUL, buffers exactly their told length.
// INVALID_ARGUMENT naming the parameter and what the library did, e.g.
// "callback argument 1 (data: in u8[n]) has 3 bytes but the library told
// length 5".
absl::Status CheckCallbackArgs(const ResolvedSignature& sig,
                               const google::protobuf::RepeatedPtrField<std::string>& args,
                               const google::protobuf::RepeatedField<uint32_t>& arg_null);

// The size of a callback answer's value: the result's C size (0: void).
size_t CallbackResultBytes(const ResolvedSignature& sig);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_ARG_KINDS_H_
