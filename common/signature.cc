#include "common/signature.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
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
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", expected, " at column ", pos_ + 1, " of '",
                     text_, "', found ", found));
  }
  size_t pos() const { return pos_; }
  void Rewind(size_t pos) { pos_ = pos; }

 private:
  absl::string_view text_;
  size_t pos_ = 0;
};

absl::StatusOr<v1::Type> ParseType(Scanner& s) {
  size_t start = s.pos();
  absl::string_view word = s.Word();
  const ScalarInfo* info = FindScalarByName(word);
  if (info == nullptr) {
    s.Rewind(start);
    s.SkipSpace();
    return s.Error(absl::StrCat("a type (", ScalarNames(), ")"));
  }
  return MakeScalarType(info->scalar);
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

absl::StatusOr<Declaration> ParseDeclaration(absl::string_view text) {
  Scanner s(text);
  Declaration decl;
  ASSIGN_OR_RETURN(*decl.signature.mutable_result(), ParseType(s));
  s.SkipSpace();
  size_t name_pos = s.pos();
  decl.name = std::string(s.Word());
  if (!IsIdentifier(decl.name)) {
    s.Rewind(name_pos);
    return s.Error("a function name");
  }
  if (!s.Consume('(')) return s.Error("'('");
  if (!s.Consume(')')) {
    size_t void_pos = s.pos();
    if (s.Word() == "void" && s.Consume(')')) {
      // "f(void)": no parameters.
    } else {
      s.Rewind(void_pos);
      while (true) {
        v1::Parameter* param = decl.signature.add_params();
        ASSIGN_OR_RETURN(*param->mutable_type(), ParseType(s));
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
        if (s.Consume(')')) break;
        if (!s.Consume(',')) return s.Error("',' or ')'");
      }
    }
  }
  if (!s.AtEnd()) return s.Error("the end of the declaration");
  RETURN_IF_ERROR(ValidateSignature(decl.signature));
  return decl;
}

std::string FormatDeclaration(absl::string_view name,
                              const v1::Signature& signature) {
  std::string out =
      absl::StrCat(TypeName(signature.result()), " ", name, "(");
  for (int i = 0; i < signature.params_size(); ++i) {
    const v1::Parameter& p = signature.params(i);
    absl::StrAppend(&out, i ? ", " : "", TypeName(p.type()),
                    p.name().empty() ? "" : " ", p.name());
  }
  absl::StrAppend(&out, ")");
  return out;
}

absl::Status ValidateSignature(const v1::Signature& signature) {
  absl::StatusOr<const ScalarInfo*> result = ScalarOf(signature.result());
  if (!result.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("result: ", result.status().message()));
  }
  if (signature.params_size() > kMaxParams) {
    return absl::InvalidArgumentError(
        absl::StrCat("too many parameters: ", signature.params_size(),
                     " (at most ", kMaxParams, ")"));
  }
  for (int i = 0; i < signature.params_size(); ++i) {
    const v1::Parameter& p = signature.params(i);
    if (!p.name().empty() && !IsIdentifier(p.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter ", i + 1, ": name '", p.name(),
                       "' is not a C identifier"));
    }
    absl::StatusOr<const ScalarInfo*> info = ScalarOf(p.type());
    if (!info.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(DescribeArgument(i, p), ": ", info.status().message()));
    }
    if ((*info)->klass == ScalarClass::kVoid) {
      return absl::InvalidArgumentError(absl::StrCat(
          DescribeArgument(i, p), ": void is only valid as a result type"));
    }
  }
  return absl::OkStatus();
}

}  // namespace ffibroker
