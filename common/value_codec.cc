#include "common/value_codec.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
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
  return absl::InvalidArgumentError(absl::StrCat(
      "expected ", expected, " for ", info.name, ", got ", ValueCaseName(value)));
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
    return absl::InvalidArgumentError(absl::StrCat(
        shown, " is out of range for ", info.name, " (", RangeText(info), ")"));
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
    case v1::Value::VALUE_NOT_SET: return "no value";
  }
  return "an unknown value member";
}

absl::Status EncodeValue(const v1::Type& type, const v1::Value& value,
                         std::string* out) {
  ASSIGN_OR_RETURN(const ScalarInfo* info, ScalarOf(type));
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
      return absl::InvalidArgumentError(absl::StrCat(
          "f64 value ", d, " is not exactly representable as f32; send f32_value"));
    }
  } else {
    return WrongMember(*info, value, "f32_value or f64_value");
  }
  AppendBytes(f, sizeof f, out);
  return absl::OkStatus();
}

absl::StatusOr<v1::Value> DecodeValue(const v1::Type& type,
                                      absl::string_view bytes) {
  ASSIGN_OR_RETURN(const ScalarInfo* info, ScalarOf(type));
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

std::string DescribeArgument(int index, const v1::Parameter& param) {
  if (param.name().empty()) {
    return absl::StrCat("argument ", index + 1, " (", TypeName(param.type()), ")");
  }
  return absl::StrCat("argument ", index + 1, " (", param.name(), ": ",
                      TypeName(param.type()), ")");
}

absl::StatusOr<std::vector<std::string>> EncodeArguments(
    const v1::Signature& signature,
    const google::protobuf::RepeatedPtrField<v1::Value>& args) {
  if (args.size() != signature.params_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", signature.params_size(), " argument",
                     signature.params_size() == 1 ? "" : "s", ", got ",
                     args.size()));
  }
  std::vector<std::string> encoded(args.size());
  for (int i = 0; i < args.size(); ++i) {
    absl::Status status =
        EncodeValue(signature.params(i).type(), args[i], &encoded[i]);
    if (!status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat(DescribeArgument(i, signature.params(i)),
                                       ": ", status.message()));
    }
  }
  return encoded;
}

}  // namespace ffibroker
