#include "common/value_codec.h"

#include <cmath>
#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/checked_math.h"
#include "common/error_reason.h"
#include "common/limits.h"
#include "common/status_macros.h"
#include "common/literal.h"
#include "common/types.h"

namespace ffibroker {
namespace {

std::string RangeText(const ScalarInfo& info) {
  if (info.klass == ScalarClass::kSigned) {
    return absl::StrCat(info.min, "..", static_cast<int64_t>(info.max));
  }
  return absl::StrCat("0..", info.max);
}

absl::Status WrongMember(const ScalarInfo& info, const v1::Value& value,
                         absl::string_view expected) {
  return WithReason(absl::InvalidArgumentError(absl::StrCat(
                        "expected ", expected, " for ", info.name, ", got ", ValueCaseName(value))),
                    "ARGUMENT_TYPE_MISMATCH", {{"type", info.name}});
}

// Reads an integer Value as sign + magnitude and checks it against the
// range of `info`; on success stores the two's-complement bits in `*bits`.
absl::Status CheckInteger(const ScalarInfo& info, const v1::Value& value,
                          uint64_t* bits) {
  bool in_range = false;
  std::string shown;
  if (value.value_case() == v1::Value::kIntValue) {
    int64_t v = value.int_value();
    shown = absl::StrCat(v);
    if (info.klass == ScalarClass::kSigned) {
      in_range = v >= info.min && (v < 0 || static_cast<uint64_t>(v) <= info.max);
    } else {
      in_range = v >= 0 && static_cast<uint64_t>(v) <= info.max;
    }
    *bits = static_cast<uint64_t>(v);
  } else if (value.value_case() == v1::Value::kUintValue) {
    uint64_t v = value.uint_value();
    shown = absl::StrCat(v);
    in_range = v <= info.max;
    *bits = v;
  } else {
    return WrongMember(info, value, "int_value or uint_value");
  }
  if (!in_range) {
    return WithReason(absl::InvalidArgumentError(absl::StrCat(
                          shown, " is out of range for ", info.name, " (", RangeText(info), ")")),
                      "ARGUMENT_OUT_OF_RANGE", {{"type", info.name}, {"value", shown}});
  }
  return absl::OkStatus();
}

template <typename T>
void AppendBytes(const T& v, size_t size, std::string* out) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, size);  // little-endian: the low `size` bytes
}

}  // namespace

std::string ValueCaseName(const v1::Value& value) {
  switch (value.value_case()) {
    case v1::Value::kIntValue: return "int_value";
    case v1::Value::kUintValue: return "uint_value";
    case v1::Value::kF32Value: return "f32_value";
    case v1::Value::kF64Value: return "f64_value";
    case v1::Value::kBoolValue: return "bool_value";
    case v1::Value::kStructValue: return "struct_value";
    case v1::Value::kHandleValue: return "handle_value";
    case v1::Value::kBytesValue: return "bytes_value";
    case v1::Value::kStringValue: return "string_value";
    case v1::Value::kArrayValue: return "array_value";
    case v1::Value::kNullValue: return "null_value";
    case v1::Value::VALUE_NOT_SET: return "no value";
  }
  return "an unknown value member";
}

namespace {

absl::Status EncodeScalar(const ScalarInfo* info, const v1::Value& value,
                          std::string* out) {
  switch (info->klass) {
    case ScalarClass::kVoid:
      return absl::InvalidArgumentError("void has no values");
    case ScalarClass::kBool:
      if (value.value_case() != v1::Value::kBoolValue) {
        return WrongMember(*info, value, "bool_value");
      }
      out->push_back(value.bool_value() ? 1 : 0);
      return absl::OkStatus();
    case ScalarClass::kSigned:
    case ScalarClass::kUnsigned: {
      uint64_t bits = 0;
      RETURN_IF_ERROR(CheckInteger(*info, value, &bits));
      AppendBytes(bits, info->size, out);
      return absl::OkStatus();
    }
    case ScalarClass::kFloat:
      break;
  }
  // Floats: f64 accepts either member (f32 widens exactly); f32 accepts an
  // f64 only when no rounding happens, so nothing is silently changed.
  if (info->size == sizeof(double)) {
    double d;
    if (value.value_case() == v1::Value::kF64Value) {
      d = value.f64_value();
    } else if (value.value_case() == v1::Value::kF32Value) {
      d = value.f32_value();
    } else {
      return WrongMember(*info, value, "f64_value or f32_value");
    }
    AppendBytes(d, sizeof d, out);
    return absl::OkStatus();
  }
  float f;
  if (value.value_case() == v1::Value::kF32Value) {
    f = value.f32_value();
  } else if (value.value_case() == v1::Value::kF64Value) {
    double d = value.f64_value();
    f = static_cast<float>(d);
    if (!std::isnan(d) && static_cast<double>(f) != d) {
      return WithReason(absl::InvalidArgumentError(absl::StrCat(
          "f64 value ", d, " is not exactly representable as f32; send f32_value")),
                        "ARGUMENT_OUT_OF_RANGE", {{"type", "f32"}});
    }
  } else {
    return WrongMember(*info, value, "f32_value or f64_value");
  }
  AppendBytes(f, sizeof f, out);
  return absl::OkStatus();
}

absl::StatusOr<v1::Value> DecodeScalar(const ScalarInfo* info,
                                       absl::string_view bytes) {
  if (bytes.size() != info->size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected ", info->size, " bytes for ", info->name, ", got ", bytes.size()));
  }
  v1::Value value;
  switch (info->klass) {
    case ScalarClass::kVoid:
      return value;
    case ScalarClass::kBool: {
      unsigned char b = static_cast<unsigned char>(bytes[0]);
      if (b > 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid bool representation ", static_cast<int>(b),
                         " (only 0 and 1 are valid)"));
      }
      value.set_bool_value(b == 1);
      return value;
    }
    case ScalarClass::kSigned:
    case ScalarClass::kUnsigned: {
      uint64_t bits = 0;
      std::memcpy(&bits, bytes.data(), info->size);
      if (info->klass == ScalarClass::kUnsigned) {
        value.set_uint_value(bits);
        return value;
      }
      // Sign-extend from the top bit of the native width.
      unsigned shift = 64 - 8 * static_cast<unsigned>(info->size);
      value.set_int_value(static_cast<int64_t>(bits << shift) >> shift);
      return value;
    }
    case ScalarClass::kFloat:
      break;
  }
  if (info->size == sizeof(double)) {
    double d;
    std::memcpy(&d, bytes.data(), sizeof d);
    value.set_f64_value(d);
  } else {
    float f;
    std::memcpy(&f, bytes.data(), sizeof f);
    value.set_f32_value(f);
  }
  return value;
}

absl::Status InField(const std::string& path, const absl::Status& status) {
  if (path.empty() || status.ok()) return status;
  return WithMetadata(WithMessagePrefix(status, absl::StrCat("field '", path, "': ")),
                      {{"field", path}});
}

std::string Join(const std::string& path, const std::string& name) {
  return path.empty() ? name : absl::StrCat(path, ".", name);
}

std::string EnumValuesText(const TypeDesc& type) {
  std::string out;
  for (int64_t v : type.enum_values) absl::StrAppend(&out, out.empty() ? "" : ", ", v);
  return absl::StrCat("{", out, "}");
}

bool EnumAllows(const TypeDesc& type, int64_t v) {
  return std::binary_search(type.enum_values.begin(), type.enum_values.end(), v);
}

// Every native access below goes through this check: the bytes
// [offset, offset + size) must lie within the `room` bytes at hand. A
// descriptor that says otherwise is a broken invariant, reported (never a
// stray write).
absl::Status CheckRoom(const TypeDesc& type, uint64_t offset, uint64_t size, uint64_t room,
                       const std::string& path) {
  if (RangeWithin(offset, size, room)) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(
      "layout of ", type.name, " puts ", path.empty() ? "a value" : absl::StrCat("'", path, "'"),
      " at bytes ", offset, "+", size, ", outside its ", room, " bytes"));
}

absl::Status EncodeAt(const TypeDesc& type, const v1::Value& value, char* dst, size_t room,
                      const std::string& path);

absl::Status EncodeStructAt(const TypeDesc& type, const v1::StructValue& value,
                            bool require_all, char* dst, size_t room, const std::string& path) {
  RETURN_IF_ERROR(CheckRoom(type, 0, type.size, room, path));
  std::vector<bool> given(type.fields.size(), false);
  for (const v1::FieldValue& fv : value.fields()) {
    const FieldDesc* field = type.FindField(fv.name());
    if (field == nullptr) {
      std::string names;
      for (const FieldDesc& f : type.fields) {
        absl::StrAppend(&names, names.empty() ? "" : ", ", f.name);
      }
      return absl::InvalidArgumentError(
          absl::StrCat("class ", type.name, " has no field '", Join(path, fv.name()),
                       "' (fields: ", names, ")"));
    }
    size_t index = static_cast<size_t>(field - type.fields.data());
    if (given[index]) {
      return absl::InvalidArgumentError(
          absl::StrCat("field '", Join(path, fv.name()), "' is given twice"));
    }
    given[index] = true;
    std::string field_path = Join(path, field->name);
    RETURN_IF_ERROR(CheckRoom(type, field->offset, field->type->size, type.size, field_path));
    RETURN_IF_ERROR(EncodeAt(*field->type, fv.value(), dst + field->offset,
                             type.size - field->offset, field_path));
  }
  if (require_all) {
    for (size_t i = 0; i < given.size(); ++i) {
      if (!given[i]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "field '", Join(path, type.fields[i].name), "' of ", type.name,
            " is missing (a class value needs every field)"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status EncodeAt(const TypeDesc& type, const v1::Value& value, char* dst, size_t room,
                      const std::string& path) {
  RETURN_IF_ERROR(CheckRoom(type, 0, type.size, room, path));
  switch (type.kind) {
    case TypeKind::kScalar:
    case TypeKind::kEnum: {
      std::string bytes;
      RETURN_IF_ERROR(InField(path, EncodeScalar(type.scalar, value, &bytes)));
      if (type.kind == TypeKind::kEnum) {
        int64_t v = value.value_case() == v1::Value::kIntValue
                        ? value.int_value()
                        : static_cast<int64_t>(value.uint_value());
        bool ok = EnumAllows(type, v) &&
                  (value.value_case() == v1::Value::kIntValue || value.uint_value() <= INT64_MAX);
        if (!ok) {
          return InField(path, absl::InvalidArgumentError(absl::StrCat(
                                   FormatValue(value), " is not a value of ",
                                   type.name, " (allowed: ", EnumValuesText(type), ")")));
        }
      }
      RETURN_IF_ERROR(CheckRoom(type, 0, bytes.size(), room, path));
      std::memcpy(dst, bytes.data(), bytes.size());
      return absl::OkStatus();
    }
    case TypeKind::kClass:
      if (value.value_case() != v1::Value::kStructValue) {
        return InField(path, absl::InvalidArgumentError(absl::StrCat(
                                 "expected struct_value for ", type.name, ", got ",
                                 ValueCaseName(value))));
      }
      return EncodeStructAt(type, value.struct_value(), true, dst, room, path);
    case TypeKind::kArray: {
      if (value.value_case() != v1::Value::kArrayValue ||
          static_cast<uint32_t>(value.array_value().elements_size()) != type.length) {
        return InField(path, absl::InvalidArgumentError(absl::StrCat(
                                 "expected array_value with ", type.length,
                                 " elements for ", type.name, ", got ",
                                 value.value_case() == v1::Value::kArrayValue
                                     ? absl::StrCat(value.array_value().elements_size(),
                                                    " elements")
                                     : ValueCaseName(value))));
      }
      for (uint32_t i = 0; i < type.length; ++i) {
        std::string element_path = absl::StrCat(path, "[", i, "]");
        uint64_t offset = 0;
        if (!CheckedMul<uint64_t>(i, type.element->size, &offset)) offset = UINT64_MAX;
        RETURN_IF_ERROR(CheckRoom(type, offset, type.element->size, type.size, element_path));
        RETURN_IF_ERROR(EncodeAt(*type.element, value.array_value().elements(i), dst + offset,
                                 type.size - offset, element_path));
      }
      return absl::OkStatus();
    }
    default:
      break;
  }
  return InField(path, absl::InvalidArgumentError(
                           absl::StrCat(type.name, " has no inline representation")));
}

absl::StatusOr<v1::Value> DecodeAt(const TypeDesc& type, const char* src, size_t room,
                                   const std::string& path) {
  RETURN_IF_ERROR(CheckRoom(type, 0, type.size, room, path));
  switch (type.kind) {
    case TypeKind::kScalar:
    case TypeKind::kEnum: {
      absl::StatusOr<v1::Value> value =
          DecodeScalar(type.scalar, absl::string_view(src, type.size));
      if (!value.ok()) return InField(path, value.status());
      if (type.kind == TypeKind::kEnum) {
        int64_t v = value->value_case() == v1::Value::kIntValue
                        ? value->int_value()
                        : static_cast<int64_t>(value->uint_value());
        if (!EnumAllows(type, v) || (value->value_case() == v1::Value::kUintValue &&
                                     value->uint_value() > INT64_MAX)) {
          return InField(path, absl::InvalidArgumentError(absl::StrCat(
                                   FormatValue(*value),
                                   " is not a declared value of ", type.name)));
        }
      }
      return value;
    }
    case TypeKind::kClass: {
      v1::Value value;
      v1::StructValue* out = value.mutable_struct_value();
      for (const FieldDesc& f : type.fields) {
        std::string field_path = Join(path, f.name);
        RETURN_IF_ERROR(CheckRoom(type, f.offset, f.type->size, type.size, field_path));
        ASSIGN_OR_RETURN(v1::Value fv, DecodeAt(*f.type, src + f.offset, type.size - f.offset,
                                                field_path));
        v1::FieldValue* field = out->add_fields();
        field->set_name(f.name);
        *field->mutable_value() = std::move(fv);
      }
      return value;
    }
    case TypeKind::kArray: {
      v1::Value value;
      v1::ArrayValue* out = value.mutable_array_value();
      for (uint32_t i = 0; i < type.length; ++i) {
        std::string element_path = absl::StrCat(path, "[", i, "]");
        uint64_t offset = 0;
        if (!CheckedMul<uint64_t>(i, type.element->size, &offset)) offset = UINT64_MAX;
        RETURN_IF_ERROR(CheckRoom(type, offset, type.element->size, type.size, element_path));
        ASSIGN_OR_RETURN(*out->add_elements(), DecodeAt(*type.element, src + offset,
                                                        type.size - offset, element_path));
      }
      return value;
    }
    default:
      break;
  }
  return InField(path, absl::InvalidArgumentError(
                           absl::StrCat(type.name, " has no inline representation")));
}

}  // namespace

absl::Status EncodeInline(const TypeDesc& type, const v1::Value& value,
                          std::string* out) {
  if (type.size > kMaxClassBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        type.name, " is larger than the class size limit of ", kMaxClassBytes, " bytes"));
  }
  std::string bytes(type.size, '\0');
  RETURN_IF_ERROR(EncodeAt(type, value, bytes.data(), bytes.size(), ""));
  out->append(bytes);
  return absl::OkStatus();
}

absl::Status EncodeFields(const TypeDesc& klass, const v1::StructValue& fields,
                          bool require_all, std::string* bytes) {
  if (bytes->size() != klass.size) {
    return absl::InternalError("EncodeFields: buffer is not the class size");
  }
  return EncodeStructAt(klass, fields, require_all, bytes->data(), bytes->size(), "");
}

absl::StatusOr<v1::Value> DecodeInline(const TypeDesc& type, absl::string_view bytes) {
  if (bytes.size() != type.size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected ", type.size, " bytes for ", type.name, ", got ", bytes.size()));
  }
  return DecodeAt(type, bytes.data(), bytes.size(), "");
}

std::string DescribeArgument(int index, const v1::Parameter& param) {
  if (param.name().empty()) {
    return absl::StrCat("argument ", index + 1, " (", TypeName(param.type()), ")");
  }
  return absl::StrCat("argument ", index + 1, " (", param.name(), ": ",
                      TypeName(param.type()), ")");
}

}  // namespace ffibroker
