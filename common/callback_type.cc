#include "common/callback_type.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/types.h"
#include "google/protobuf/util/message_differencer.h"

namespace ffibroker {
namespace {

// The position of the parameter named `name` in `sig`, or -1.
int IndexOf(const v1::Signature& sig, const std::string& name) {
  for (int i = 0; i < sig.params_size(); ++i) {
    if (sig.params(i).name() == name) return i;
  }
  return -1;
}

// Whether parameter types `a` (of `sa`) and `b` (of `sb`) are the same; a
// buffer's length parameter is compared by position, not by name.
bool SameParamType(const v1::Type& a, const v1::Signature& sa, const v1::Type& b,
                   const v1::Signature& sb) {
  if (a.type_case() == v1::Type::kBuffer && b.type_case() == v1::Type::kBuffer &&
      a.buffer().length_case() == v1::BufferType::kLengthParam &&
      b.buffer().length_case() == v1::BufferType::kLengthParam) {
    return a.buffer().direction() == b.buffer().direction() &&
           IndexOf(sa, a.buffer().length_param()) == IndexOf(sb, b.buffer().length_param());
  }
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

std::string ParamName(const v1::Signature& sig, int i) {
  const std::string& name = sig.params(i).name();
  return name.empty() ? absl::StrCat(i + 1) : absl::StrCat(i + 1, " ('", name, "')");
}

}  // namespace

absl::Status CallbackSignatureMatches(const TypeDesc& declared, const v1::Signature& registered) {
  if (declared.kind != TypeKind::kCallback || declared.callback == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(declared.name, " is not a callback type"));
  }
  const v1::Signature& want = declared.callback->sig.proto;
  const std::string& what = declared.name;
  if (registered.convention() != want.convention()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the callback does not use the plain calling convention of the declared type ", what));
  }
  if (!google::protobuf::util::MessageDifferencer::Equals(registered.result(), want.result())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the callback returns ", TypeName(registered.result()), ", the declared type ", what,
        " returns ", TypeName(want.result())));
  }
  if (registered.params_size() != want.params_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the callback has ", registered.params_size(), " parameters, the declared type ", what,
        " has ", want.params_size()));
  }
  for (int i = 0; i < want.params_size(); ++i) {
    if (!SameParamType(registered.params(i).type(), registered, want.params(i).type(), want)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "callback parameter ", ParamName(registered, i), " is ",
          TypeName(registered.params(i).type()), ", the declared type ", what, " has ",
          TypeName(want.params(i).type())));
    }
  }
  return absl::OkStatus();
}

}  // namespace ffibroker
