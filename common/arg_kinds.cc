#include "common/arg_kinds.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/checked_math.h"
#include "common/limits.h"

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
