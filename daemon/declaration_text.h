// Declarations written as text in requests: the `text` fields of
// SymbolDeclaration, StaticDeclaration and RegisterClassRequest, and the
// ParseDeclarations RPC. Every text is read by the one parser of
// common/signature.h (the CLI and the C++ client use the same).
//
//   ASSIGN_OR_RETURN(std::set<std::string> classes, sessions->ClassNames(id, caller));
//   RETURN_IF_ERROR(ExpandDeclarationText(&open_request, classes));
//   // open_request now has only structured declarations
//
// Errors are INVALID_ARGUMENT with a google.rpc.BadRequest field violation
// naming the field ("symbols[2].text") and one of the reasons
// DECLARATION_SYNTAX (metadata "column", 1-based), INVALID_DECLARATION,
// DECLARATION_CONFLICT (text and structured form both set) or
// DECLARATION_NAME_MISMATCH (the name field names another symbol than the
// text). Pure functions; thread-safe.
#ifndef FFIBROKER_DAEMON_DECLARATION_TEXT_H_
#define FFIBROKER_DAEMON_DECLARATION_TEXT_H_

#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ffibroker/v1/broker.pb.h"

namespace ffibroker {

// True if any symbol or static of `request` is given as text.
bool HasDeclarationText(const v1::OpenLibraryRequest& request);

// Replaces every text symbol and static of `request` by its structured
// form, parsed with `classes` as the class names it may use. On failure
// `request` is partly expanded and must not be used.
absl::Status ExpandDeclarationText(v1::OpenLibraryRequest* request,
                                   const std::set<std::string>& classes);

// Replaces `request->text` (if set) by `request->definition`, parsed with
// `classes` as the class names its fields may use.
absl::Status ExpandClassText(v1::RegisterClassRequest* request,
                             const std::set<std::string>& classes);

// The ParseDeclarations RPC: parses every text of `request` with `classes`
// (the session's registered class names) plus the request's own classes
// and class_names. Fails only for a class name in class_names that is not
// an identifier; mistakes in texts are listed in the response.
absl::StatusOr<v1::ParseDeclarationsResponse> ParseDeclarationTexts(
    const v1::ParseDeclarationsRequest& request, std::set<std::string> classes);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_DECLARATION_TEXT_H_
