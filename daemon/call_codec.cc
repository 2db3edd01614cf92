#include "daemon/call_codec.h"

#include "absl/strings/str_cat.h"
#include "common/arg_kinds.h"
#include "common/callback_type.h"
#include "common/checked_math.h"
#include "common/error_reason.h"
#include "common/limits.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "common/value_codec.h"

namespace ffibroker {
namespace {

absl::Status Invalid(const std::string& what) { return absl::InvalidArgumentError(what); }

// The integer value of a length argument (already validated as its type).
absl::StatusOr<uint64_t> LengthOf(const v1::Value& value) {
  if (value.value_case() == v1::Value::kUintValue) return value.uint_value();
  if (value.value_case() == v1::Value::kIntValue && value.int_value() >= 0) {
    return static_cast<uint64_t>(value.int_value());
  }
  return Invalid("a buffer length must not be negative");
}

// Where a call's instance arguments are mapped, and the worker generation
// they must all share.
struct Mapping {
  const InstanceHooks& hooks;
  const std::function<bool(uint64_t)>& live;
  uint64_t* generation;
  std::vector<CallbackScope::Bound>* bound;  // null: callbacks refused
};

// A callback argument: the 8-byte id the worker knows the callback by (0 =
// NULL), bound through the stream's scope.
absl::Status EncodeCallbackArg(const TypeRef& declared, const v1::Value& value,
                               const Mapping& mapping, std::string* bytes,
                               worker::v1::Call* out) {
  if (value.value_case() == v1::Value::kNullValue) {
    if (!declared->nullable) {
      return Invalid("null is not allowed (declare the parameter 'fn(...)?' if the function "
                     "accepts NULL)");
    }
    *bytes = CallbackIdArg(0);
    return absl::OkStatus();
  }
  if (value.value_case() != v1::Value::kCallbackValue) {
    return Invalid(absl::StrCat("expected callback_value (a callback registered on the stream), "
                                "got ", ValueCaseName(value)));
  }
  CallbackScope* scope = mapping.hooks.callbacks.scope.get();
  if (scope == nullptr) {
    return Invalid("callbacks can only be passed in a call sent on a CallStream, where they are "
                   "registered and answered");
  }
  if (mapping.bound == nullptr) {
    return Invalid("callbacks cannot be passed in a batch; send the call on its own");
  }
  ASSIGN_OR_RETURN(CallbackScope::Bound bound, scope->Bind(value.callback_value(), declared));
  if (bound.generation != 0) {
    if (*mapping.generation != 0 && *mapping.generation != bound.generation) {
      return Invalid(absl::StrCat(
          "persistent callback ", value.callback_value(), " is bound in another worker of the "
          "pool than the call's other instances or callbacks (one call runs on one worker)"));
    }
    *mapping.generation = bound.generation;
  }
  if (bound.persistent) out->add_persistent_callbacks(bound.wire_id);
  *bytes = CallbackIdArg(bound.wire_id);
  mapping.bound->push_back(bound);
  return absl::OkStatus();
}

absl::Status EncodeArg(const ResolvedSignature& sig, int i,
                       const google::protobuf::RepeatedPtrField<v1::Value>& args,
                       const Mapping& mapping, worker::v1::Call* out) {
  const InstanceHooks& hooks = mapping.hooks;
  const TypeDesc& type = *sig.params[i];
  const v1::Value& value = args[i];
  std::string* bytes = out->add_args();
  auto wrong = [&](const char* expected) {
    return Invalid(absl::StrCat("expected ", expected, " for ", type.name, ", got ",
                                ValueCaseName(value)));
  };
  const ArgKind kind = ArgKindOf(type);
  switch (kind) {
    case ArgKind::kHandle: {
      if (value.value_case() == v1::Value::kNullValue) {
        if (!type.nullable) {
          return Invalid(absl::StrCat("null is not allowed (declare '", type.name,
                                      "?' if the function accepts NULL)"));
        }
        *bytes = InstanceIdBytes(0);
        return absl::OkStatus();
      }
      if (value.value_case() != v1::Value::kHandleValue) return wrong("handle_value");
      const uint64_t handle = value.handle_value();
      ASSIGN_OR_RETURN(InstanceRef ref, hooks.map(*type.element, handle, mapping.live));
      if (*mapping.generation != 0 && ref.generation != *mapping.generation) {
        return Invalid(absl::StrCat(
            "instance handle ", handle, " lives in another worker of the pool than the call's "
            "other instances (one call runs on one worker)"));
      }
      *mapping.generation = ref.generation;
      *bytes = InstanceIdBytes(ref.worker_id);
      return absl::OkStatus();
    }
    case ArgKind::kString: {
      if (value.value_case() == v1::Value::kNullValue) {
        if (!type.nullable) return Invalid("null is not allowed (declare 'cstr?')");
        out->add_arg_null(static_cast<uint32_t>(i));
        return absl::OkStatus();
      }
      if (value.value_case() != v1::Value::kStringValue) return wrong("string_value");
      const std::string& s = value.string_value();
      if (s.size() > type.max_length) {
        return Invalid(absl::StrCat("string of ", s.size(), " bytes is longer than ",
                                    type.max_length));
      }
      if (s.size() > hooks.max_string_bytes) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "string of ", s.size(), " bytes is longer than the policy allows (limits.max_string_bytes ",
            hooks.max_string_bytes, ")"));
      }
      if (s.find('\0') != std::string::npos) {
        return Invalid("a C string cannot contain a NUL byte");
      }
      if (!IsValidUtf8(s)) return Invalid("string is not valid UTF-8");
      *bytes = s;
      return absl::OkStatus();
    }
    case ArgKind::kBufferIn:
    case ArgKind::kBufferOut:
    case ArgKind::kBufferInOut: {
      const v1::BufferType& b = type.buffer;
      uint64_t length = b.fixed_length();
      if (b.length_case() == v1::BufferType::kLengthParam) {
        ASSIGN_OR_RETURN(length, LengthOf(args[sig.length_param[i]]));
      }
      if (length > hooks.max_buffer_bytes) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "buffer of ", length, " bytes is larger than the policy allows (limits.max_buffer_bytes ",
            hooks.max_buffer_bytes, ")"));
      }
      if (kind == ArgKind::kBufferOut) {
        if (value.value_case() != v1::Value::kBytesValue &&
            value.value_case() != v1::Value::VALUE_NOT_SET) {
          return wrong("bytes_value (ignored) or nothing");
        }
        *bytes = OutBufferArg(length);
        return absl::OkStatus();
      }
      if (value.value_case() != v1::Value::kBytesValue) return wrong("bytes_value");
      if (value.bytes_value().size() != length) {
        return Invalid(absl::StrCat(
            value.bytes_value().size(), " bytes given but the buffer's length is ", length,
            b.length_case() == v1::BufferType::kLengthParam
                ? absl::StrCat(" (parameter '", b.length_param(), "')")
                : std::string()));
      }
      *bytes = value.bytes_value();
      return absl::OkStatus();
    }
    case ArgKind::kCallback:
      return EncodeCallbackArg(sig.params[i], value, mapping, bytes, out);
    case ArgKind::kInline:
      break;
  }
  return EncodeInline(type, value, bytes);
}

absl::Status FfiReturnStatus(const std::string& symbol, int32_t status) {
  std::string message = absl::StrCat("'", symbol, "' returned FfiReturn ",
                                     FfiReturnName(status), " (", status, ")");
  switch (status) {
    case -1: return absl::InvalidArgumentError(message);     // ArgIsNull
    case -2: return absl::AbortedError(message);             // ExecutionFail
    case -3: return absl::NotFoundError(message);            // UnknownHandle
    case -4: return absl::InternalError(message);            // UnrecoverableError
    case -5: return absl::DataLossError(message);            // TrapRepresentation
    case -6: return absl::InvalidArgumentError(message);     // ConversionFailed
    default: return absl::UnknownError(message);
  }
}

}  // namespace

const char* FfiReturnName(int32_t status) {
  switch (status) {
    case 0: return "Ok";
    case -1: return "ArgIsNull";
    case -2: return "ExecutionFail";
    case -3: return "UnknownHandle";
    case -4: return "UnrecoverableError";
    case -5: return "TrapRepresentation";
    case -6: return "ConversionFailed";
    default: return "unknown";
  }
}

absl::Status EncodeCall(const ResolvedSignature& sig,
                        const google::protobuf::RepeatedPtrField<v1::Value>& args,
                        const InstanceHooks& hooks, const std::function<bool(uint64_t)>& live,
                        worker::v1::Call* out, uint64_t* generation,
                        std::vector<CallbackScope::Bound>* bound) {
  const Mapping mapping{hooks, live, generation, bound};
  if (static_cast<size_t>(args.size()) != sig.params.size()) {
    return Invalid(absl::StrCat("expected ", sig.params.size(), " argument",
                                sig.params.size() == 1 ? "" : "s", ", got ", args.size()));
  }
  for (int i = 0; i < args.size(); ++i) {
    absl::Status status = EncodeArg(sig, i, args, mapping, out);
    if (!status.ok()) {
      return WithFieldViolation(WithMetadata(WithMessagePrefix(status, absl::StrCat(DescribeArgument(i, sig.proto.params(i)), ": ")), {{"argument", absl::StrCat(i + 1)}}), absl::StrCat("args[", i, "]"), status.message());
    }
  }
  // What the request and the reply will carry, against the call payload
  // limit (so every message fits the worker channel and gRPC).
  uint64_t request_bytes = 0;
  bool overflow = false;
  for (const std::string& arg : out->args()) {
    overflow |= !CheckedAdd<uint64_t>(request_bytes, arg.size(), &request_bytes);
  }
  ASSIGN_OR_RETURN(uint64_t reply_bytes, ReplyBytes(sig, out->args()));  // we encoded them
  if (overflow || request_bytes > kMaxCallPayloadBytes || reply_bytes > kMaxCallPayloadBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the call's ", request_bytes > kMaxCallPayloadBytes ? "arguments" : "results",
        " would exceed the call payload limit of ", kMaxCallPayloadBytes,
        " bytes (all arguments together, or the result and every out/inout buffer)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::CallResponse> DecodeCallResult(const std::string& symbol,
                                                  const ResolvedSignature& sig,
                                                  const worker::v1::Call& sent,
                                                  const worker::v1::Result& result,
                                                  const InstanceHooks& hooks,
                                                  uint64_t generation, bool* violation) {
  *violation = false;
  auto protocol = [&](const std::string& what) {
    *violation = true;
    return absl::UnavailableError(what);
  };
  if (sig.proto.convention() == v1::Signature::CONVENTION_FFI_RETURN &&
      result.ffi_return() != 0) {
    if (!result.value().empty() || result.null_result()) {
      return protocol("sent a value with a failed FfiReturn status");
    }
    return WithReason(FfiReturnStatus(symbol, result.ffi_return()), "FFI_RETURN_ERROR", {{"ffi_return", FfiReturnName(result.ffi_return())}});
  }
  if (sig.proto.convention() == v1::Signature::CONVENTION_PLAIN && result.ffi_return() != 0) {
    return protocol("sent an FfiReturn status for a plain function");
  }
  v1::CallResponse response;
  const TypeDesc& type = *sig.result;
  const std::string& bytes = result.value();
  auto data_loss = [&](absl::string_view what) {
    return absl::DataLossError(
        absl::StrCat("'", symbol, "' returned an invalid result: ", what));
  };
  if (result.null_result() && type.kind != TypeKind::kString) {
    return protocol("sent a null result for a non-string type");
  }
  // An instance result becomes a handle (taking an instance slot) only
  // once the whole reply is found valid.
  uint64_t instance_id = 0;
  switch (ArgKindOf(type)) {
    case ArgKind::kHandle: {
      absl::StatusOr<uint64_t> id = ReadInstanceId(bytes);
      if (!id.ok()) return protocol(absl::StrCat("sent ", bytes.size(), " bytes for a handle"));
      if (*id == 0) response.mutable_result()->set_null_value(true);
      instance_id = *id;
      break;
    }
    case ArgKind::kString:
      if (result.null_result()) {
        if (!bytes.empty()) return protocol("sent bytes with a null string");
        response.mutable_result()->set_null_value(true);
        break;
      }
      if (bytes.size() > type.max_length) {
        return data_loss(absl::StrCat("string longer than ", type.max_length, " bytes"));
      }
      if (bytes.find('\0') != std::string::npos) {
        return protocol("sent a string containing NUL");
      }
      if (!IsValidUtf8(bytes)) return data_loss("string is not valid UTF-8");
      response.mutable_result()->set_string_value(bytes);
      break;
    default: {  // kInline (a result is never a buffer)
      if (bytes.size() != type.size) {
        return protocol(absl::StrCat("sent ", bytes.size(), " result bytes for ", type.name));
      }
      if (type.size == 0) break;  // void
      absl::StatusOr<v1::Value> value = DecodeInline(type, bytes);
      if (!value.ok()) return data_loss(value.status().message());
      *response.mutable_result() = std::move(*value);
    }
  }
  int outputs = 0;
  for (size_t i = 0; i < sig.params.size(); ++i) {
    const TypeDesc& param = *sig.params[i];
    if (!IsOutput(ArgKindOf(param))) continue;
    if (outputs >= result.outputs_size()) return protocol("sent too few output buffers");
    // `sent` is what EncodeCall made: an argument per parameter, and
    // out-buffer lengths of 8 bytes.
    if (i >= static_cast<size_t>(sent.args_size())) {
      return absl::InternalError(absl::StrCat("the call sent has no argument ", i + 1));
    }
    absl::StatusOr<uint64_t> want = BufferSize(param, sent.args(static_cast<int>(i)));
    if (!want.ok()) {
      return absl::InternalError(
          absl::StrCat("the call sent: argument ", i + 1, " ", want.status().message()));
    }
    const std::string& got = result.outputs(outputs++);
    if (got.size() != *want) return protocol("sent an output buffer of the wrong size");
    v1::OutputValue* out = response.add_outputs();
    out->set_param_index(static_cast<uint32_t>(i));
    out->mutable_value()->set_bytes_value(got);
  }
  if (outputs != result.outputs_size()) return protocol("sent too many output buffers");
  if (instance_id != 0) {
    response.mutable_result()->set_handle_value(hooks.adopt(type, {instance_id, generation}));
  }
  return response;
}

absl::StatusOr<DecodedInvocation> DecodeCallbackArgs(const std::string& callback,
                                                     const ResolvedSignature& sig,
                                                     const worker::v1::CallbackInvoke& invoke) {
  auto library_value = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("the library called ", callback, " with ", why));
  };
  absl::Status checked = CheckCallbackArgs(sig, invoke.args(), invoke.arg_null());
  if (!checked.ok()) return library_value(checked.message());
  std::vector<bool> null(sig.params.size(), false);
  for (uint32_t i : invoke.arg_null()) null[i] = true;  // checked: in range
  DecodedInvocation out;
  out.values.resize(sig.params.size());
  for (size_t i = 0; i < sig.params.size(); ++i) {
    const int at = static_cast<int>(i);
    const TypeDesc& type = *sig.params[i];
    const std::string& bytes = invoke.args(at);
    v1::Value& value = out.values[i];
    if (null[i]) {  // a nullable string or buffer (checked)
      value.set_null_value(true);
      continue;
    }
    const std::string what = DescribeArgument(at, sig.proto.params(at));
    switch (ArgKindOf(type)) {
      case ArgKind::kString:
        if (!IsValidUtf8(bytes)) return library_value(absl::StrCat(what, " not valid UTF-8"));
        value.set_string_value(bytes);
        break;
      case ArgKind::kBufferIn:
        value.set_bytes_value(bytes);
        break;
      case ArgKind::kHandle: {
        absl::StatusOr<uint64_t> id = ReadInstanceId(bytes);
        if (!id.ok()) return library_value(absl::StrCat(what, ": ", id.status().message()));
        if (*id == 0) {
          value.set_null_value(true);
        } else {
          out.instances.emplace_back(i, *id);
        }
        break;
      }
      default: {
        absl::StatusOr<v1::Value> v = DecodeInline(type, bytes);
        if (!v.ok()) return library_value(absl::StrCat(what, ": ", v.status().message()));
        value = *std::move(v);
      }
    }
  }
  return out;
}

}  // namespace ffibroker
