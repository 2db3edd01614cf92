#include "common/signature.h"

#include <cctype>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "common/error_reason.h"
#include "common/status_macros.h"
#include "common/type_table.h"
#include "common/types.h"
#include "common/value_codec.h"

namespace ffibroker {
namespace {

bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// A cursor over the declaration text that reports errors with columns.
class Scanner {
 public:
  explicit Scanner(absl::string_view text) : text_(text) {}

  void SkipSpace() {
    while (pos_ < text_.size() &&
           absl::ascii_isspace(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
    }
  }
  // The identifier-like word at the cursor (may be empty).
  absl::string_view Word() {
    SkipSpace();
    size_t start = pos_;
    while (pos_ < text_.size() && IsIdentChar(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ == text_.size();
  }
  absl::Status Error(absl::string_view expected) const {
    std::string found = pos_ < text_.size()
                            ? absl::StrCat("'", text_.substr(pos_, 1), "'")
                            : "the end";
    return WithReason(absl::InvalidArgumentError(absl::StrCat(
                          "expected ", expected, " at column ", pos_ + 1, " of '", text_,
                          "', found ", found)),
                      "DECLARATION_SYNTAX", {{"column", absl::StrCat(pos_ + 1)}});
  }
  size_t pos() const { return pos_; }
  void Rewind(size_t pos) { pos_ = pos; }

 private:
  absl::string_view text_;
  size_t pos_ = 0;
};

absl::StatusOr<int64_t> ParseInt(Scanner& s) {
  s.SkipSpace();
  size_t start = s.pos();
  bool negative = s.Consume('-');
  absl::string_view digits = s.Word();
  uint64_t magnitude = 0;
  if (digits.empty() || !absl::SimpleAtoi(digits, &magnitude) ||
      magnitude > static_cast<uint64_t>(INT64_MAX)) {
    s.Rewind(start);
    return s.Error("an integer");
  }
  return negative ? -static_cast<int64_t>(magnitude) : static_cast<int64_t>(magnitude);
}

absl::StatusOr<v1::Type> ParseType(Scanner& s, const std::set<std::string>& classes);

// A parameter list after its '(' up to and including the ')': `TYPE [NAME],
// ...`, or nothing, or `void`.
absl::Status ParseParams(Scanner& s, const std::set<std::string>& classes,
                         v1::Signature* signature) {
  if (s.Consume(')')) return absl::OkStatus();
  size_t void_pos = s.pos();
  if (s.Word() == "void" && s.Consume(')')) return absl::OkStatus();  // "f(void)"
  s.Rewind(void_pos);
  while (true) {
    v1::Parameter* param = signature->add_params();
    ASSIGN_OR_RETURN(*param->mutable_type(), ParseType(s, classes));
    s.SkipSpace();
    size_t pname_pos = s.pos();
    absl::string_view pname = s.Word();
    if (!pname.empty()) {
      if (!IsIdentifier(pname)) {
        s.Rewind(pname_pos);
        return s.Error("a parameter name");
      }
      param->set_name(std::string(pname));
    }
    if (s.Consume(')')) return absl::OkStatus();
    if (!s.Consume(',')) return s.Error("',' or ')'");
  }
}

// A callback type after its `fn`: `(PARAMS)[?][ -> RESULT]`.
absl::StatusOr<v1::Type> ParseCallbackType(Scanner& s, const std::set<std::string>& classes) {
  v1::Type type;
  v1::CallbackType* callback = type.mutable_callback();
  if (!s.Consume('(')) return s.Error("'(' and the callback's parameters ('fn(i32 a) -> i32')");
  RETURN_IF_ERROR(ParseParams(s, classes, callback->mutable_signature()));
  if (s.Consume('?')) callback->set_nullable(true);
  s.SkipSpace();
  size_t arrow = s.pos();
  if (s.Consume('-')) {
    if (!s.Consume('>')) {
      s.Rewind(arrow);
      s.SkipSpace();
      return s.Error("'->' and the callback's result type");
    }
    ASSIGN_OR_RETURN(*callback->mutable_signature()->mutable_result(), ParseType(s, classes));
    if (s.Consume('?')) {
      return s.Error(
          "a parameter name (a nullable callback is written 'fn(...)? -> T': the '?' "
          "follows the parameter list)");
    }
  } else {
    callback->mutable_signature()->mutable_result()->set_scalar(v1::SCALAR_VOID);
  }
  return type;
}

absl::StatusOr<v1::Type> ParseBaseType(Scanner& s, bool borrowed,
                                       const std::set<std::string>& classes) {
  s.SkipSpace();
  size_t start = s.pos();
  absl::string_view word = s.Word();
  v1::Type type;
  auto type_error = [&]() {
    s.Rewind(start);
    s.SkipSpace();
    return s.Error(absl::StrCat("a type (", ScalarNames(),
                                ", enum, cstr, in/out/inout u8[N], fn(...)",
                                classes.empty() ? "" : ", or a registered class", ")"));
  };
  if (word.empty()) return type_error();
  if (word == "enum") {
    size_t at = s.pos();
    const ScalarInfo* info = FindScalarByName(s.Word());
    if (info == nullptr) {
      s.Rewind(at);
      s.SkipSpace();
      return s.Error("the enum's integer type");
    }
    type.mutable_enum_type()->set_underlying(info->scalar);
    if (!s.Consume('{')) return s.Error("'{'");
    do {
      ASSIGN_OR_RETURN(int64_t v, ParseInt(s));
      type.mutable_enum_type()->add_values(v);
    } while (s.Consume(','));
    if (!s.Consume('}')) return s.Error("',' or '}'");
  } else if (word == "fn") {
    ASSIGN_OR_RETURN(type, ParseCallbackType(s, classes));
  } else if (word == "cstr") {
    if (s.Consume('?')) type.mutable_string()->set_nullable(true);
    if (s.Consume('[')) {
      ASSIGN_OR_RETURN(int64_t max, ParseInt(s));
      if (max <= 0 || max > UINT32_MAX) return s.Error("a positive maximum length");
      type.mutable_string()->set_max_length(static_cast<uint32_t>(max));
      if (!s.Consume(']')) return s.Error("']'");
    } else {
      type.mutable_string();
    }
  } else if (word == "in" || word == "out" || word == "inout") {
    v1::BufferType* b = type.mutable_buffer();
    b->set_direction(word == "in"    ? v1::BufferType::DIRECTION_IN
                     : word == "out" ? v1::BufferType::DIRECTION_OUT
                                     : v1::BufferType::DIRECTION_INOUT);
    size_t at = s.pos();
    if (s.Word() != "u8") {
      s.Rewind(at);
      s.SkipSpace();
      return s.Error("'u8' (buffers are bytes)");
    }
    if (!s.Consume('[')) return s.Error("'[' and the buffer's length");
    s.SkipSpace();
    size_t len_at = s.pos();
    absl::string_view len = s.Word();
    uint32_t fixed = 0;
    if (absl::SimpleAtoi(len, &fixed)) {
      b->set_fixed_length(fixed);
    } else if (IsIdentifier(len)) {
      b->set_length_param(std::string(len));
    } else {
      s.Rewind(len_at);
      return s.Error("a length (a number or a parameter name)");
    }
    if (!s.Consume(']')) return s.Error("']'");
  } else if (const ScalarInfo* info = FindScalarByName(word)) {
    type.set_scalar(info->scalar);
  } else if (classes.count(std::string(word))) {
    if (s.Consume('*')) {
      v1::HandleType* h = type.mutable_handle();
      h->set_class_name(std::string(word));
      if (borrowed) h->set_ownership(v1::HandleType::OWNERSHIP_BORROWED);
      if (s.Consume('?')) h->set_nullable(true);
      return type;
    }
    type.set_class_name(std::string(word));
  } else {
    return type_error();
  }
  if (borrowed) {
    s.Rewind(start);
    return s.Error("a class pointer after 'borrowed' ('borrowed Name*')");
  }
  return type;
}

// A type with optional array suffixes: `f64[3]`, `u8[2][4]`.
absl::StatusOr<v1::Type> ParseType(Scanner& s, const std::set<std::string>& classes) {
  size_t start = s.pos();
  bool borrowed = s.Word() == "borrowed";
  if (!borrowed) s.Rewind(start);
  ASSIGN_OR_RETURN(v1::Type type, ParseBaseType(s, borrowed, classes));
  if (type.type_case() == v1::Type::kBuffer || type.type_case() == v1::Type::kCallback) {
    return type;
  }
  std::vector<uint32_t> lengths;
  while (s.Consume('[')) {
    ASSIGN_OR_RETURN(int64_t n, ParseInt(s));
    if (n <= 0 || n > UINT32_MAX) return s.Error("a positive array length");
    lengths.push_back(static_cast<uint32_t>(n));
    if (!s.Consume(']')) return s.Error("']'");
  }
  // `T[2][4]` is an array of 2 arrays of 4 T, as in C.
  for (auto it = lengths.rbegin(); it != lengths.rend(); ++it) {
    v1::Type outer;
    *outer.mutable_array()->mutable_element() = std::move(type);
    outer.mutable_array()->set_length(*it);
    type = std::move(outer);
  }
  return type;
}

bool MentionsClass(const v1::Type& type) {
  switch (type.type_case()) {
    case v1::Type::kClassName:
    case v1::Type::kHandle: return true;
    case v1::Type::kArray: return MentionsClass(type.array().element());
    case v1::Type::kCallback: {
      const v1::Signature& sig = type.callback().signature();
      if (MentionsClass(sig.result())) return true;
      for (const v1::Parameter& p : sig.params()) {
        if (MentionsClass(p.type())) return true;
      }
      return false;
    }
    default: return false;
  }
}

}  // namespace

bool IsIdentifier(absl::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (char c : name) {
    if (!IsIdentChar(c)) return false;
  }
  return true;
}

absl::StatusOr<Declaration> ParseDeclaration(absl::string_view text,
                                             const std::set<std::string>& classes) {
  Scanner s(text);
  Declaration decl;
  while (true) {
    size_t at = s.pos();
    absl::string_view word = s.Word();
    if (word == "optional") {
      decl.optional = true;
    } else if (word == "errno") {
      decl.capture_errno = true;
    } else if (word == "ffireturn") {
      decl.signature.set_convention(v1::Signature::CONVENTION_FFI_RETURN);
    } else {
      s.Rewind(at);
      break;
    }
  }
  ASSIGN_OR_RETURN(*decl.signature.mutable_result(), ParseType(s, classes));
  s.SkipSpace();
  size_t name_pos = s.pos();
  decl.name = std::string(s.Word());
  if (!IsIdentifier(decl.name)) {
    s.Rewind(name_pos);
    return s.Error("a function name");
  }
  if (!s.Consume('(')) return s.Error("'('");
  RETURN_IF_ERROR(ParseParams(s, classes, &decl.signature));
  if (!s.AtEnd()) return s.Error("the end of the declaration");
  // Class names are resolved by the daemon against the session's classes;
  // everything else is checked here.
  bool mentions_class = MentionsClass(decl.signature.result());
  for (const v1::Parameter& p : decl.signature.params()) {
    mentions_class = mentions_class || MentionsClass(p.type());
  }
  if (!mentions_class) {
    RETURN_IF_ERROR(WithReason(ValidateSignature(decl.signature), "INVALID_DECLARATION"));
  }
  return decl;
}

absl::StatusOr<v1::ClassDefinition> ParseClass(absl::string_view text,
                                              const std::set<std::string>& classes) {
  Scanner s(text);
  v1::ClassDefinition def;
  size_t at = s.pos();
  if (s.Word() == "opaque") {
    def.set_opaque(true);
  } else {
    s.Rewind(at);
  }
  s.SkipSpace();
  at = s.pos();
  def.set_name(std::string(s.Word()));
  if (!IsIdentifier(def.name())) {
    s.Rewind(at);
    return s.Error("a class name");
  }
  if (!def.opaque()) {
    if (!s.Consume('{')) return s.Error("'{' and the fields");
    while (!s.Consume('}')) {
      v1::FieldDefinition* field = def.add_fields();
      size_t mut_at = s.pos();
      if (s.Word() == "mut") {
        field->set_mutable_(true);
      } else {
        s.Rewind(mut_at);
      }
      ASSIGN_OR_RETURN(*field->mutable_type(), ParseType(s, classes));
      s.SkipSpace();
      size_t name_at = s.pos();
      field->set_name(std::string(s.Word()));
      if (!IsIdentifier(field->name())) {
        s.Rewind(name_at);
        return s.Error("a field name");
      }
      if (!s.Consume(';')) return s.Error("';'");
    }
  }
  if (s.Consume('~')) {
    s.SkipSpace();
    size_t d_at = s.pos();
    def.set_destructor(std::string(s.Word()));
    if (!IsIdentifier(def.destructor())) {
      s.Rewind(d_at);
      return s.Error("a destructor symbol name");
    }
  }
  if (!s.AtEnd()) return s.Error("the end of the class");
  return def;
}

absl::StatusOr<v1::StaticDeclaration> ParseStatic(absl::string_view text,
                                                  const std::set<std::string>& classes) {
  Scanner s(text);
  v1::StaticDeclaration decl;
  while (true) {
    size_t at = s.pos();
    absl::string_view word = s.Word();
    if (word == "optional") {
      decl.set_optional(true);
    } else if (word == "mut") {
      decl.set_mutable_(true);
    } else {
      s.Rewind(at);
      break;
    }
  }
  ASSIGN_OR_RETURN(*decl.mutable_type(), ParseType(s, classes));
  s.SkipSpace();
  size_t at = s.pos();
  decl.set_name(std::string(s.Word()));
  if (!IsIdentifier(decl.name())) {
    s.Rewind(at);
    return s.Error("the variable's name");
  }
  if (!s.AtEnd()) return s.Error("the end of the static");
  return decl;
}

std::string FormatDeclaration(absl::string_view name,
                              const v1::Signature& signature) {
  std::string out = absl::StrCat(
      signature.convention() == v1::Signature::CONVENTION_FFI_RETURN ? "ffireturn " : "",
      TypeName(signature.result()), " ", name, "(");
  for (int i = 0; i < signature.params_size(); ++i) {
    const v1::Parameter& p = signature.params(i);
    absl::StrAppend(&out, i ? ", " : "", TypeName(p.type()),
                    p.name().empty() ? "" : " ", p.name());
  }
  absl::StrAppend(&out, ")");
  return out;
}

absl::Status ValidateSignature(const v1::Signature& signature) {
  return ResolveSignature(signature, ClassTable()).status();
}

}  // namespace ffibroker
