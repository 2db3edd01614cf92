#include "common/literal.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/types.h"
#include "common/value_codec.h"

namespace ffibroker {
namespace {

// Parses an optionally signed decimal or 0x-hex integer into `*value`.
bool ParseInteger(absl::string_view text, v1::Value* value) {
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  if (text.empty()) return false;
  uint64_t magnitude = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(),
                                   magnitude, base);
  if (ec != std::errc() || end != text.data() + text.size()) {
    // Out of the 64-bit range is reported as a range error by the caller.
    return false;
  }
  if (!negative) {
    value->set_uint_value(magnitude);
  } else if (magnitude <= static_cast<uint64_t>(INT64_MAX) + 1) {
    value->set_int_value(static_cast<int64_t>(0 - magnitude));
  } else {
    return false;
  }
  return true;
}

// Parses a float literal of `info`'s width; false if malformed or if a
// finite literal overflows to infinity.
bool ParseFloat(const ScalarInfo& info, absl::string_view text,
                v1::Value* value) {
  std::string s(text);
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  char* end = nullptr;
  errno = 0;
  if (info.size == sizeof(float)) {
    float f = std::strtof(s.c_str(), &end);
    if (end != s.c_str() + s.size() || (errno == ERANGE && std::isinf(f))) return false;
    value->set_f32_value(f);
  } else {
    double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || (errno == ERANGE && std::isinf(d))) return false;
    value->set_f64_value(d);
  }
  return true;
}

template <typename T>
std::string ShortestFloat(T v) {
  if (std::isnan(v)) {
    // Keep the payload so the text reads back to the same bits ("nan(0x1)").
    using Bits = std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t>;
    Bits bits;
    std::memcpy(&bits, &v, sizeof v);
    Bits payload = bits & ((Bits{1} << (sizeof(T) == 8 ? 51 : 22)) - 1);
    std::string text = payload ? absl::StrCat("nan(0x", absl::Hex(payload), ")") : "nan";
    return std::signbit(v) ? "-" + text : text;
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

}  // namespace

absl::StatusOr<v1::Value> ParseLiteral(const v1::Type& type,
                                       absl::string_view text) {
  ASSIGN_OR_RETURN(const ScalarInfo* info, ScalarOf(type));
  v1::Value value;
  bool parsed = false;
  switch (info->klass) {
    case ScalarClass::kVoid:
      return absl::InvalidArgumentError("void has no values");
    case ScalarClass::kBool:
      parsed = text == "true" || text == "false";
      value.set_bool_value(text == "true");
      break;
    case ScalarClass::kSigned:
    case ScalarClass::kUnsigned:
      parsed = ParseInteger(text, &value);
      break;
    case ScalarClass::kFloat:
      parsed = ParseFloat(*info, text, &value);
      break;
  }
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a valid ", info->name, " literal"));
  }
  std::string scratch;
  RETURN_IF_ERROR(EncodeValue(type, value, &scratch));
  return value;
}

std::string FormatValue(const v1::Value& value) {
  switch (value.value_case()) {
    case v1::Value::kIntValue: return absl::StrCat(value.int_value());
    case v1::Value::kUintValue: return absl::StrCat(value.uint_value());
    case v1::Value::kF32Value: return ShortestFloat(value.f32_value());
    case v1::Value::kF64Value: return ShortestFloat(value.f64_value());
    case v1::Value::kBoolValue: return value.bool_value() ? "true" : "false";
    case v1::Value::VALUE_NOT_SET: return "";
  }
  return "";
}

}  // namespace ffibroker
