#include "common/types.h"

#include <sys/types.h>

#include <limits>

#include "absl/strings/str_cat.h"

namespace ffibroker {
namespace {

template <typename T>
constexpr ScalarInfo Int(v1::Scalar s, const char* name) {
  return ScalarInfo{s, name, sizeof(T),
                    std::numeric_limits<T>::is_signed ? ScalarClass::kSigned
                                                      : ScalarClass::kUnsigned,
                    static_cast<int64_t>(std::numeric_limits<T>::min()),
                    static_cast<uint64_t>(std::numeric_limits<T>::max())};
}

constexpr ScalarInfo kScalars[] = {
    {v1::SCALAR_VOID, "void", 0, ScalarClass::kVoid, 0, 0},
    {v1::SCALAR_BOOL, "bool", sizeof(bool), ScalarClass::kBool, 0, 1},
    Int<int8_t>(v1::SCALAR_I8, "i8"),
    Int<uint8_t>(v1::SCALAR_U8, "u8"),
    Int<int16_t>(v1::SCALAR_I16, "i16"),
    Int<uint16_t>(v1::SCALAR_U16, "u16"),
    Int<int32_t>(v1::SCALAR_I32, "i32"),
    Int<uint32_t>(v1::SCALAR_U32, "u32"),
    Int<int64_t>(v1::SCALAR_I64, "i64"),
    Int<uint64_t>(v1::SCALAR_U64, "u64"),
    Int<ssize_t>(v1::SCALAR_ISIZE, "isize"),
    Int<size_t>(v1::SCALAR_USIZE, "usize"),
    {v1::SCALAR_F32, "f32", sizeof(float), ScalarClass::kFloat, 0, 0},
    {v1::SCALAR_F64, "f64", sizeof(double), ScalarClass::kFloat, 0, 0},
};

}  // namespace

const ScalarInfo* FindScalar(v1::Scalar scalar) {
  for (const ScalarInfo& info : kScalars) {
    if (info.scalar == scalar) return &info;
  }
  return nullptr;
}

const ScalarInfo* FindScalarByName(absl::string_view name) {
  for (const ScalarInfo& info : kScalars) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

std::string ScalarNames() {
  std::string out;
  for (const ScalarInfo& info : kScalars) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", info.name);
  }
  return out;
}

absl::StatusOr<const ScalarInfo*> ScalarOf(const v1::Type& type) {
  if (type.type_case() != v1::Type::kScalar) {
    return absl::InvalidArgumentError("type is not set");
  }
  const ScalarInfo* info = FindScalar(type.scalar());
  if (info == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown scalar type number ", type.scalar()));
  }
  return info;
}

std::string TypeName(const v1::Type& type) {
  absl::StatusOr<const ScalarInfo*> info = ScalarOf(type);
  return info.ok() ? (*info)->name : "<invalid type>";
}

v1::Type MakeScalarType(v1::Scalar scalar) {
  v1::Type type;
  type.set_scalar(scalar);
  return type;
}

}  // namespace ffibroker
