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
  switch (type.type_case()) {
    case v1::Type::kScalar: {
      absl::StatusOr<const ScalarInfo*> info = ScalarOf(type);
      return info.ok() ? (*info)->name : "<invalid type>";
    }
    case v1::Type::kClassName:
      return type.class_name();
    case v1::Type::kHandle:
      return absl::StrCat(
          type.handle().ownership() == v1::HandleType::OWNERSHIP_BORROWED ? "borrowed " : "",
          type.handle().class_name(), "*", type.handle().nullable() ? "?" : "");
    case v1::Type::kArray: {
      // As declared, outermost length first: an array of 2 arrays of 4 u8
      // is "u8[2][4]" (common/signature.cc reads it back the same way).
      const v1::Type* element = &type;
      std::string lengths;
      while (element->type_case() == v1::Type::kArray) {
        absl::StrAppend(&lengths, "[", element->array().length(), "]");
        element = &element->array().element();
      }
      return absl::StrCat(TypeName(*element), lengths);
    }
    case v1::Type::kEnumType: {
      const ScalarInfo* info = FindScalar(type.enum_type().underlying());
      std::string out = absl::StrCat("enum ", info ? info->name : "<invalid>", "{");
      for (int i = 0; i < type.enum_type().values_size(); ++i) {
        absl::StrAppend(&out, i ? "," : "", type.enum_type().values(i));
      }
      return out + "}";
    }
    case v1::Type::kString:
      return absl::StrCat("cstr", type.string().nullable() ? "?" : "",
                          type.string().max_length()
                              ? absl::StrCat("[", type.string().max_length(), "]")
                              : "");
    case v1::Type::kBuffer: {
      const v1::BufferType& b = type.buffer();
      const char* dir = b.direction() == v1::BufferType::DIRECTION_IN      ? "in"
                        : b.direction() == v1::BufferType::DIRECTION_OUT   ? "out"
                        : b.direction() == v1::BufferType::DIRECTION_INOUT ? "inout"
                                                                           : "<no direction>";
      return absl::StrCat(dir, " u8[",
                          b.length_case() == v1::BufferType::kFixedLength
                              ? absl::StrCat(b.fixed_length())
                              : b.length_param(),
                          "]");
    }
    case v1::Type::kCallback: {
      // As declared: "fn(usize a, usize b)? -> i32"; a void result is left
      // out (common/signature.cc reads it back the same way).
      const v1::Signature& sig = type.callback().signature();
      std::string out = "fn(";
      for (int i = 0; i < sig.params_size(); ++i) {
        const v1::Parameter& p = sig.params(i);
        absl::StrAppend(&out, i ? ", " : "", TypeName(p.type()), p.name().empty() ? "" : " ",
                        p.name());
      }
      absl::StrAppend(&out, ")", type.callback().nullable() ? "?" : "");
      const bool is_void = sig.result().type_case() == v1::Type::kScalar &&
                           sig.result().scalar() == v1::SCALAR_VOID;
      if (!is_void) absl::StrAppend(&out, " -> ", TypeName(sig.result()));
      return out;
    }
    case v1::Type::TYPE_NOT_SET:
      break;
  }
  return "<invalid type>";
}

v1::Type MakeScalarType(v1::Scalar scalar) {
  v1::Type type;
  type.set_scalar(scalar);
  return type;
}

}  // namespace ffibroker
