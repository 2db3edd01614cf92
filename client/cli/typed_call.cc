#include "client/cli/cli_output.h"
#include "client/cli/typed_call.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/arg_kinds.h"
#include "common/literal.h"
#include "common/signature.h"
#include "common/type_table.h"
#include "common/value_codec.h"
#include "ffibroker/client.h"
#include "ffibroker/instance.h"

namespace ffibroker {
namespace {

// One command-line argument, parsed against its resolved parameter type.
struct CliArg {
  v1::Value value;          // what is sent (for `{...}` handles: filled later)
  bool temporary = false;   // a `{...}` literal for a class pointer
  v1::Value fields;         // its initial fields
};

absl::StatusOr<CliArg> ParseArg(const TypeDesc& type, const std::string& text) {
  CliArg arg;
  switch (ArgKindOf(type)) {
    case ArgKind::kHandle:
      if (text == "null") {
        arg.value.set_null_value(true);
        return arg;
      }
      arg.temporary = true;
      {
        absl::StatusOr<v1::Value> fields = ParseInlineLiteral(*type.element, text);
        if (!fields.ok()) return fields.status();
        arg.fields = std::move(*fields);
      }
      return arg;
    case ArgKind::kString:
      if (text == "null") {
        arg.value.set_null_value(true);
      } else {
        arg.value.set_string_value(text);
      }
      return arg;
    case ArgKind::kBufferOut:  // the daemon sends its length; the text is ignored
      arg.value.set_bytes_value("");
      return arg;
    case ArgKind::kBufferIn:
    case ArgKind::kBufferInOut:
      if (absl::StartsWith(text, "hex:")) {
        std::string hex = text.substr(4);
        if (hex.size() % 2 != 0 ||
            !std::all_of(hex.begin(), hex.end(), [](char c) { return std::isxdigit(c); })) {
          return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not valid hex"));
        }
        arg.value.set_bytes_value(absl::HexStringToBytes(hex));
      } else {
        arg.value.set_bytes_value(text);
      }
      return arg;
    case ArgKind::kCallback:
      if (text == "null" && type.nullable) {
        arg.value.set_null_value(true);
        return arg;
      }
      return absl::InvalidArgumentError(absl::StrCat(
          type.name, ": the command line cannot pass a callback (its handler runs in a client "
          "on a CallStream, see docs/callbacks.md); only 'null' for a nullable one"));
    case ArgKind::kInline:
      break;
  }
  absl::StatusOr<v1::Value> value = ParseInlineLiteral(type, text);
  if (!value.ok()) return value.status();
  arg.value = std::move(*value);
  return arg;
}

std::string Describe(Instance& instance) {
  absl::StatusOr<v1::Value> fields = instance.Read();
  return absl::StrCat("#", instance.handle(),
                      fields.ok() ? absl::StrCat(" ", FormatValue(*fields)) : "");
}

}  // namespace

absl::StatusOr<v1::Value> ParsePlainArg(const TypeDesc& type, const std::string& text) {
  absl::StatusOr<CliArg> arg = ParseArg(type, text);
  if (!arg.ok()) return arg.status();
  if (arg->temporary) {
    return absl::InvalidArgumentError(
        "a {...} literal for a class pointer needs a temporary instance: use `ffibroker call`");
  }
  return std::move(arg->value);
}

int RunTypedCall(const std::string& address, const ConnectOptions& options,
                 const std::string& token, absl::Duration timeout,
                 const std::vector<std::string>& class_texts,
                 const std::vector<std::string>& args) {
  if (args.size() < 3) return Usage("call needs LIBRARY and 'DECLARATION'");
  // Classes are parsed and laid out locally first so that literals can be
  // checked before anything is sent.
  ClassTable local;
  std::set<std::string> names;
  std::vector<v1::ClassDefinition> defs;
  for (const std::string& text : class_texts) {
    absl::StatusOr<v1::ClassDefinition> def = ParseClass(text, names);
    if (!def.ok()) return Fail(kExitUsage, def.status());
    absl::StatusOr<v1::ClassLayout> layout = local.Register(*def);
    if (!layout.ok()) return Fail(kExitUsage, layout.status());
    names.insert(def->name());
    defs.push_back(*def);
  }
  absl::StatusOr<Declaration> decl = ParseDeclaration(args[2], names);
  if (!decl.ok()) return Fail(kExitUsage, decl.status());
  absl::StatusOr<ResolvedSignature> sig = ResolveSignature(decl->signature, local);
  if (!sig.ok()) return Fail(kExitUsage, sig.status());
  size_t given = args.size() - 3;
  if (given != sig->params.size()) {
    return Usage(absl::StrCat(decl->name, " takes ", sig->params.size(),
                              " argument(s), ", given, " given"));
  }
  std::vector<CliArg> parsed;
  for (size_t i = 0; i < given; ++i) {
    absl::StatusOr<CliArg> arg = ParseArg(*sig->params[i], args[3 + i]);
    if (!arg.ok()) {
      return Usage(absl::StrCat(DescribeArgument(static_cast<int>(i),
                                                 decl->signature.params(static_cast<int>(i))),
                                ": ", arg.status().message()));
    }
    parsed.push_back(*std::move(arg));
  }

  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(address, options, std::min(timeout, absl::Seconds(5)));
  if (!client.ok()) return Fail(kExitUnreachable, client.status());
  absl::StatusOr<std::unique_ptr<Session>> session = (*client)->CreateSession();
  if (!session.ok()) return Fail(kExitFailed, session.status());
  for (const v1::ClassDefinition& def : defs) {
    absl::StatusOr<v1::ClassLayout> layout = (*session)->RegisterClass(def);
    if (!layout.ok()) return Fail(kExitFailed, layout.status());
  }
  absl::StatusOr<std::unique_ptr<Library>> lib = (*session)->OpenLibrary(args[1], {args[2]}, token);
  if (!lib.ok()) return Fail(kExitFailed, lib.status());
  std::vector<std::unique_ptr<Instance>> temporaries(given);
  std::vector<v1::Value> values;
  for (size_t i = 0; i < given; ++i) {
    if (parsed[i].temporary) {
      absl::StatusOr<std::unique_ptr<Instance>> made =
          (*lib)->NewInstance(sig->params[i]->element->name, parsed[i].fields);
      if (!made.ok()) return Fail(kExitFailed, made.status());
      temporaries[i] = std::move(*made);
      parsed[i].value.set_handle_value(temporaries[i]->handle());
    }
    values.push_back(parsed[i].value);
  }
  absl::StatusOr<v1::CallResponse> response = (*lib)->CallValues(decl->name, values, timeout);
  if (!response.ok()) return Fail(kExitFailed, response.status());
  if (response->has_result()) {
    const v1::Value& result = response->result();
    if (result.value_case() == v1::Value::kHandleValue) {
      Instance instance(lib->get(), result.handle_value());
      std::printf("%s\n", Describe(instance).c_str());
    } else {
      std::printf("%s\n", FormatValue(result).c_str());
    }
  }
  for (size_t i = 0; i < given; ++i) {
    if (temporaries[i] == nullptr) continue;
    const std::string& name = decl->signature.params(static_cast<int>(i)).name();
    std::printf("%s = %s\n", name.empty() ? absl::StrCat("argument ", i + 1).c_str() : name.c_str(),
                Describe(*temporaries[i]).c_str());
  }
  for (const v1::OutputValue& out : response->outputs()) {
    const std::string& name = decl->signature.params(static_cast<int>(out.param_index())).name();
    std::printf("%s = %s\n",
                name.empty() ? absl::StrCat("argument ", out.param_index() + 1).c_str()
                             : name.c_str(),
                FormatValue(out.value()).c_str());
  }
  if (response->has_errno_value()) std::printf("errno = %d\n", response->errno_value());
  return 0;
}

}  // namespace ffibroker
