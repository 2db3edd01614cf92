#include "common/literal.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
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
  std::string scratch;  // the range check
  RETURN_IF_ERROR(EncodeInline(*ScalarDesc(*info), value, &scratch));
  return value;
}

namespace {

// Splits the inside of `{...}` or `[...]` at top-level commas.
absl::StatusOr<std::vector<absl::string_view>> SplitItems(absl::string_view text,
                                                          char open, char close) {
  text = absl::StripAsciiWhitespace(text);
  if (text.size() < 2 || text.front() != open || text.back() != close) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a ", open == '{' ? "{field=value, ...}" : "[value, ...]",
        " literal"));
  }
  text = text.substr(1, text.size() - 2);
  std::vector<absl::string_view> items;
  if (absl::StripAsciiWhitespace(text).empty()) return items;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    char c = i < text.size() ? text[i] : ',';
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    if (c == ',' && depth == 0) {
      items.push_back(absl::StripAsciiWhitespace(text.substr(start, i - start)));
      start = i + 1;
    }
  }
  return items;
}

}  // namespace

absl::StatusOr<v1::Value> ParseInlineLiteral(const TypeDesc& type,
                                             absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  v1::Value value;
  switch (type.kind) {
    case TypeKind::kScalar:
    case TypeKind::kEnum: {
      ASSIGN_OR_RETURN(value, ParseLiteral(MakeScalarType(type.scalar->scalar), text));
      std::string scratch;
      RETURN_IF_ERROR(EncodeInline(type, value, &scratch));  // enum set
      return value;
    }
    case TypeKind::kClass: {
      ASSIGN_OR_RETURN(std::vector<absl::string_view> items, SplitItems(text, '{', '}'));
      for (absl::string_view item : items) {
        size_t eq = item.find('=');
        if (eq == absl::string_view::npos) {
          return absl::InvalidArgumentError(
              absl::StrCat("'", item, "' in ", type.name, " literal is not field=value"));
        }
        std::string name(absl::StripAsciiWhitespace(item.substr(0, eq)));
        const FieldDesc* field = type.FindField(name);
        if (field == nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat("class ", type.name, " has no field '", name, "'"));
        }
        v1::FieldValue* fv = value.mutable_struct_value()->add_fields();
        fv->set_name(name);
        ASSIGN_OR_RETURN(*fv->mutable_value(),
                         ParseInlineLiteral(*field->type, item.substr(eq + 1)));
      }
      value.mutable_struct_value();
      return value;
    }
    case TypeKind::kArray: {
      ASSIGN_OR_RETURN(std::vector<absl::string_view> items, SplitItems(text, '[', ']'));
      value.mutable_array_value();
      for (absl::string_view item : items) {
        ASSIGN_OR_RETURN(*value.mutable_array_value()->add_elements(),
                         ParseInlineLiteral(*type.element, item));
      }
      return value;
    }
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(type.name, " has no inline literal"));
}

std::string FormatValue(const v1::Value& value) {
  switch (value.value_case()) {
    case v1::Value::kIntValue: return absl::StrCat(value.int_value());
    case v1::Value::kUintValue: return absl::StrCat(value.uint_value());
    case v1::Value::kF32Value: return ShortestFloat(value.f32_value());
    case v1::Value::kF64Value: return ShortestFloat(value.f64_value());
    case v1::Value::kBoolValue: return value.bool_value() ? "true" : "false";
    case v1::Value::kStructValue: {
      std::string out = "{";
      for (const v1::FieldValue& f : value.struct_value().fields()) {
        absl::StrAppend(&out, out.size() > 1 ? ", " : "", f.name(), "=",
                        FormatValue(f.value()));
      }
      return out + "}";
    }
    case v1::Value::kArrayValue: {
      std::string out = "[";
      for (const v1::Value& e : value.array_value().elements()) {
        absl::StrAppend(&out, out.size() > 1 ? ", " : "", FormatValue(e));
      }
      return out + "]";
    }
    case v1::Value::kHandleValue: return absl::StrCat("#", value.handle_value());
    case v1::Value::kNullValue: return "null";
    case v1::Value::kStringValue: return absl::StrCat("\"", absl::CEscape(value.string_value()), "\"");
    case v1::Value::kBytesValue: return absl::StrCat("hex:", absl::BytesToHexString(value.bytes_value()));
    case v1::Value::VALUE_NOT_SET: return "";
  }
  return "";
}

}  // namespace ffibroker
