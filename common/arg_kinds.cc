#include "common/arg_kinds.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/checked_math.h"
#include "common/limits.h"
#include "common/value_codec.h"

namespace ffibroker {
namespace {

uint64_t ReadU64(absl::string_view bytes) {
  uint64_t v = 0;
  std::memcpy(&v, bytes.data(), std::min(bytes.size(), sizeof v));
  return v;
}

std::string U64Bytes(uint64_t v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

absl::Status NotEightBytes(size_t size) {
  return absl::InvalidArgumentError(absl::StrCat("has ", size, " bytes, expected 8"));
}

}  // namespace

ArgKind ArgKindOf(const TypeDesc& type) {
  switch (type.kind) {
    case TypeKind::kHandle:
      return ArgKind::kHandle;
    case TypeKind::kString:
      return ArgKind::kString;
    case TypeKind::kBuffer:
      switch (type.buffer.direction()) {
        case v1::BufferType::DIRECTION_OUT:
          return ArgKind::kBufferOut;
        case v1::BufferType::DIRECTION_INOUT:
          return ArgKind::kBufferInOut;
        default:
          return ArgKind::kBufferIn;
      }
    case TypeKind::kCallback:
      return ArgKind::kCallback;
    default:
      return ArgKind::kInline;
  }
}

bool IsBuffer(ArgKind kind) {
  return kind == ArgKind::kBufferIn || kind == ArgKind::kBufferOut ||
         kind == ArgKind::kBufferInOut;
}

bool IsOutput(ArgKind kind) {
  return kind == ArgKind::kBufferOut || kind == ArgKind::kBufferInOut;
}

std::string InstanceIdBytes(uint64_t id) { return U64Bytes(id); }

absl::StatusOr<uint64_t> ReadInstanceId(absl::string_view bytes) {
  if (bytes.size() != sizeof(uint64_t)) return NotEightBytes(bytes.size());
  return ReadU64(bytes);
}

std::string OutBufferArg(uint64_t length) { return U64Bytes(length); }

std::string CallbackIdArg(uint64_t id) { return U64Bytes(id); }

absl::StatusOr<uint64_t> ReadCallbackId(absl::string_view bytes) {
  if (bytes.size() != sizeof(uint64_t)) return NotEightBytes(bytes.size());
  return ReadU64(bytes);
}

absl::StatusOr<uint64_t> BufferSize(const TypeDesc& type, absl::string_view arg) {
  if (ArgKindOf(type) != ArgKind::kBufferOut) return arg.size();
  if (arg.size() != sizeof(uint64_t)) return NotEightBytes(arg.size());
  return ReadU64(arg);
}

absl::StatusOr<uint64_t> ReplyBytes(const ResolvedSignature& sig,
                                    const google::protobuf::RepeatedPtrField<std::string>& args) {
  if (static_cast<size_t>(args.size()) < sig.params.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        sig.params.size(), " arguments expected, got ", args.size()));
  }
  uint64_t total = ArgKindOf(*sig.result) == ArgKind::kString
                       ? uint64_t{sig.result->max_length} + 1
                       : uint64_t{sig.result->size};
  bool overflow = false;
  for (size_t i = 0; i < sig.params.size(); ++i) {
    const TypeDesc& type = *sig.params[i];
    if (!IsOutput(ArgKindOf(type))) continue;
    absl::StatusOr<uint64_t> size = BufferSize(type, args[static_cast<int>(i)]);
    if (!size.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("argument ", i + 1, " ", size.status().message()));
    }
    overflow |= *size > kMaxBufferLength || !CheckedAdd<uint64_t>(total, *size, &total);
  }
  return overflow ? UINT64_MAX : total;
}

uint64_t ToldBufferLength(const ResolvedSignature& sig, int index,
                          const google::protobuf::RepeatedPtrField<std::string>& args,
                          bool* negative) {
  *negative = false;
  const TypeDesc& type = *sig.params[static_cast<size_t>(index)];
  if (type.buffer.length_case() != v1::BufferType::kLengthParam) {
    return type.buffer.fixed_length();
  }
  const int j = sig.length_param[static_cast<size_t>(index)];
  const std::string& length = args[j];
  const ScalarInfo* scalar = sig.params[static_cast<size_t>(j)]->scalar;
  *negative = scalar != nullptr && scalar->klass == ScalarClass::kSigned && !length.empty() &&
              (static_cast<unsigned char>(length.back()) & 0x80) != 0;
  return ReadU64(length);
}

}  // namespace ffibroker

namespace ffibroker {

absl::Status CheckCallbackArgs(const ResolvedSignature& sig,
                               const google::protobuf::RepeatedPtrField<std::string>& args,
                               const google::protobuf::RepeatedField<uint32_t>& arg_null) {
  const size_t n = sig.params.size();
  if (static_cast<size_t>(args.size()) != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the callback takes ", n, " arguments, the invocation carries ", args.size()));
  }
  std::vector<bool> is_null(n, false);
  for (uint32_t i : arg_null) {
    if (i >= n) {
      return absl::InvalidArgumentError(
          absl::StrCat("the invocation lists argument ", i + 1, " as NULL, beyond the ", n,
                       " the callback takes"));
    }
    is_null[i] = true;
  }
  for (size_t i = 0; i < n; ++i) {
    const TypeDesc& type = *sig.params[i];
    const std::string& bytes = args[static_cast<int>(i)];
    const std::string what =
        absl::StrCat("callback ", DescribeArgument(static_cast<int>(i), sig.proto.params(static_cast<int>(i))));
    const ArgKind kind = ArgKindOf(type);
    if (is_null[i] && kind != ArgKind::kBufferIn &&
        !(type.nullable && kind == ArgKind::kString)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": the library passed NULL, which the declaration does not allow"));
    }
    switch (kind) {
      case ArgKind::kInline:
        if (bytes.size() != type.size) {
          return absl::InvalidArgumentError(
              absl::StrCat(what, " has ", bytes.size(), " bytes, expected ", type.size));
        }
        break;
      case ArgKind::kHandle: {
        absl::StatusOr<uint64_t> id = ReadInstanceId(bytes);
        if (!id.ok()) return absl::InvalidArgumentError(absl::StrCat(what, " ", id.status().message()));
        if (*id == 0 && !type.nullable) {
          return absl::InvalidArgumentError(absl::StrCat(
              what, ": the library passed NULL, which the declaration does not allow"));
        }
        break;
      }
      case ArgKind::kString:
        if (is_null[i]) {
          if (!bytes.empty()) {
            return absl::InvalidArgumentError(absl::StrCat(what, " is NULL but carries bytes"));
          }
          break;
        }
        if (bytes.size() > type.max_length) {
          return absl::InvalidArgumentError(absl::StrCat(
              what, ": the library passed a string longer than ", type.max_length, " bytes"));
        }
        if (bytes.find('\0') != std::string::npos) {
          return absl::InvalidArgumentError(absl::StrCat(what, " contains a NUL byte"));
        }
        break;
      case ArgKind::kBufferIn: {
        bool negative = false;
        const uint64_t told = ToldBufferLength(sig, static_cast<int>(i), args, &negative);
        if (negative) {
          return absl::InvalidArgumentError(
              absl::StrCat(what, ": the library told a negative length"));
        }
        if (is_null[i] && told != 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              what, ": the library passed NULL with length ", told));
        }
        if (told > kMaxBufferLength) {
          return absl::InvalidArgumentError(absl::StrCat(
              what, ": the library told length ", told, ", more than the buffer limit of ",
              kMaxBufferLength, " bytes"));
        }
        if (bytes.size() != told) {
          return absl::InvalidArgumentError(absl::StrCat(
              what, " has ", bytes.size(), " bytes but the library told length ", told,
              bytes.empty() ? " (too much for one invocation)" : ""));
        }
        break;
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": ", type.name, " is not a valid callback parameter"));
    }
  }
  return absl::OkStatus();
}

size_t CallbackResultBytes(const ResolvedSignature& sig) { return sig.result->size; }

}  // namespace ffibroker
