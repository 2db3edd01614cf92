#include "daemon/declaration_text.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "common/limits.h"
#include "common/signature.h"
#include "common/status_macros.h"

namespace ffibroker {
namespace {

// `status` from parsing the text at `field`, made to name it.
absl::Status TextError(const absl::Status& status, const std::string& field) {
  return WithFieldViolation(WithMetadata(WithMessagePrefix(status, absl::StrCat(field, ": ")),
                                         {{"field", field}}),
                            field, status.message());
}

absl::Status Conflict(const std::string& field, absl::string_view structured) {
  std::string message = absl::StrCat(field, ": give the declaration either as text or as ",
                                     structured, ", not both");
  return WithFieldViolation(WithReason(absl::InvalidArgumentError(message),
                                       "DECLARATION_CONFLICT", {{"field", field}}),
                            field, message);
}

absl::Status NameMismatch(const std::string& field, const std::string& name,
                          const std::string& declared, const std::string& text) {
  std::string message =
      absl::StrCat(field, ": the name '", name, "' disagrees with the name '", declared,
                   "' the text declares ('", text, "'); leave the name empty or make them equal");
  return WithFieldViolation(WithReason(absl::InvalidArgumentError(message),
                                       "DECLARATION_NAME_MISMATCH",
                                       {{"field", field}, {"name", name}, {"declared", declared}}),
                            field, message);
}

// INVALID_ARGUMENT naming `field` if a request has more than `most`
// entries in it: checked before any text is parsed, so what one request
// makes the daemon parse, and the errors it can produce, stay bounded.
absl::Status CheckCount(const std::string& field, int count, int most) {
  if (count <= most) return absl::OkStatus();
  std::string message = absl::StrCat(field, ": ", count, " declared, at most ", most);
  return WithFieldViolation(absl::InvalidArgumentError(message), field, message);
}

// INVALID_ARGUMENT if the text at `field` is longer than any declaration.
absl::Status CheckLength(const std::string& field, const std::string& text) {
  if (text.size() <= kMaxDeclarationTextBytes) return absl::OkStatus();
  std::string message = absl::StrCat(field, ": the text is ", text.size(), " bytes, at most ",
                                     kMaxDeclarationTextBytes);
  return WithFieldViolation(absl::InvalidArgumentError(message), field, message);
}

absl::Status ExpandSymbol(v1::SymbolDeclaration* symbol, const std::string& at,
                          const std::set<std::string>& classes) {
  if (symbol->text().empty()) return absl::OkStatus();
  RETURN_IF_ERROR(CheckLength(at + ".text", symbol->text()));
  if (symbol->has_signature() || symbol->capture_errno() || symbol->optional()) {
    return Conflict(at, "signature/capture_errno/optional");
  }
  absl::StatusOr<Declaration> decl = ParseDeclaration(symbol->text(), classes);
  if (!decl.ok()) return TextError(decl.status(), at + ".text");
  if (!symbol->name().empty() && symbol->name() != decl->name) {
    return NameMismatch(at + ".name", symbol->name(), decl->name, symbol->text());
  }
  symbol->set_name(decl->name);
  *symbol->mutable_signature() = std::move(decl->signature);
  symbol->set_capture_errno(decl->capture_errno);
  symbol->set_optional(decl->optional);
  symbol->clear_text();
  return absl::OkStatus();
}

absl::Status ExpandStatic(v1::StaticDeclaration* decl, const std::string& at,
                          const std::set<std::string>& classes) {
  if (decl->text().empty()) return absl::OkStatus();
  RETURN_IF_ERROR(CheckLength(at + ".text", decl->text()));
  if (decl->has_type() || decl->mutable_() || decl->optional()) {
    return Conflict(at, "type/mutable/optional");
  }
  absl::StatusOr<v1::StaticDeclaration> parsed = ParseStatic(decl->text(), classes);
  if (!parsed.ok()) return TextError(parsed.status(), at + ".text");
  if (!decl->name().empty() && decl->name() != parsed->name()) {
    return NameMismatch(at + ".name", decl->name(), parsed->name(), decl->text());
  }
  *decl = *std::move(parsed);
  return absl::OkStatus();
}

// The column the parser reported, 0 if none.
uint32_t ColumnOf(const absl::Status& status) {
  ErrorMetadata metadata = ErrorMetadataOf(status);
  auto it = metadata.find("column");
  uint32_t column = 0;
  if (it != metadata.end() && !absl::SimpleAtoi(it->second, &column)) column = 0;
  return column;
}

void AddError(v1::ParseDeclarationsResponse* response, const std::string& field,
              const absl::Status& status) {
  v1::DeclarationError* error = response->add_errors();
  error->set_field(field);
  error->set_column(ColumnOf(status));
  error->set_message(std::string(status.message()));
  error->set_reason(ErrorReason(status));
}

}  // namespace

bool HasDeclarationText(const v1::OpenLibraryRequest& request) {
  for (const v1::SymbolDeclaration& s : request.symbols()) {
    if (!s.text().empty()) return true;
  }
  for (const v1::StaticDeclaration& s : request.statics()) {
    if (!s.text().empty()) return true;
  }
  return false;
}

absl::Status ExpandDeclarationText(v1::OpenLibraryRequest* request,
                                   const std::set<std::string>& classes) {
  RETURN_IF_ERROR(CheckCount("symbols", request->symbols_size(), kMaxSymbolsPerOpen));
  RETURN_IF_ERROR(CheckCount("statics", request->statics_size(), kMaxStaticsPerOpen));
  for (int i = 0; i < request->symbols_size(); ++i) {
    RETURN_IF_ERROR(ExpandSymbol(request->mutable_symbols(i), absl::StrCat("symbols[", i, "]"),
                                 classes));
  }
  for (int i = 0; i < request->statics_size(); ++i) {
    RETURN_IF_ERROR(ExpandStatic(request->mutable_statics(i), absl::StrCat("statics[", i, "]"),
                                 classes));
  }
  return absl::OkStatus();
}

absl::Status ExpandClassText(v1::RegisterClassRequest* request,
                             const std::set<std::string>& classes) {
  if (request->text().empty()) return absl::OkStatus();
  RETURN_IF_ERROR(CheckLength("text", request->text()));
  if (request->has_definition()) return Conflict("text", "definition");
  absl::StatusOr<v1::ClassDefinition> def = ParseClass(request->text(), classes);
  if (!def.ok()) return TextError(def.status(), "text");
  *request->mutable_definition() = *std::move(def);
  request->clear_text();
  return absl::OkStatus();
}

absl::StatusOr<v1::ParseDeclarationsResponse> ParseDeclarationTexts(
    const v1::ParseDeclarationsRequest& request, std::set<std::string> classes) {
  RETURN_IF_ERROR(CheckCount("classes", request.classes_size(), kMaxClasses));
  RETURN_IF_ERROR(CheckCount("functions", request.functions_size(), kMaxSymbolsPerOpen));
  RETURN_IF_ERROR(CheckCount("statics", request.statics_size(), kMaxStaticsPerOpen));
  RETURN_IF_ERROR(CheckCount("class_names", request.class_names_size(), kMaxClasses));
  for (const auto& [field, texts] : {std::pair{"classes", &request.classes()},
                                     std::pair{"functions", &request.functions()},
                                     std::pair{"statics", &request.statics()}}) {
    for (int i = 0; i < texts->size(); ++i) {
      RETURN_IF_ERROR(CheckLength(absl::StrCat(field, "[", i, "]"), (*texts)[i]));
    }
  }
  for (int i = 0; i < request.class_names_size(); ++i) {
    if (!IsIdentifier(request.class_names(i))) {
      std::string field = absl::StrCat("class_names[", i, "]");
      std::string message = absl::StrCat(field, ": '", request.class_names(i),
                                         "' is not a C identifier");
      return WithFieldViolation(absl::InvalidArgumentError(message), field, message);
    }
    classes.insert(request.class_names(i));
  }
  v1::ParseDeclarationsResponse response;
  for (int i = 0; i < request.classes_size(); ++i) {
    absl::StatusOr<v1::ClassDefinition> def = ParseClass(request.classes(i), classes);
    if (!def.ok()) {
      AddError(&response, absl::StrCat("classes[", i, "]"), def.status());
      continue;
    }
    classes.insert(def->name());
    *response.add_classes() = *std::move(def);
  }
  for (int i = 0; i < request.functions_size(); ++i) {
    absl::StatusOr<Declaration> decl = ParseDeclaration(request.functions(i), classes);
    if (!decl.ok()) {
      AddError(&response, absl::StrCat("functions[", i, "]"), decl.status());
      continue;
    }
    v1::SymbolDeclaration* symbol = response.add_functions();
    symbol->set_name(decl->name);
    *symbol->mutable_signature() = std::move(decl->signature);
    symbol->set_capture_errno(decl->capture_errno);
    symbol->set_optional(decl->optional);
  }
  for (int i = 0; i < request.statics_size(); ++i) {
    absl::StatusOr<v1::StaticDeclaration> decl = ParseStatic(request.statics(i), classes);
    if (!decl.ok()) {
      AddError(&response, absl::StrCat("statics[", i, "]"), decl.status());
      continue;
    }
    *response.add_statics() = *std::move(decl);
  }
  if (response.errors_size() > 0) {
    response.clear_classes();
    response.clear_functions();
    response.clear_statics();
  }
  return response;
}

}  // namespace ffibroker
