// RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status and absl::StatusOr.
//
// The abseil in Debian bookworm does not ship these; this is their one home.
//
//   RETURN_IF_ERROR(DoThing());
//   ASSIGN_OR_RETURN(auto fd, OpenThing(path));
#ifndef FFIBROKER_COMMON_STATUS_MACROS_H_
#define FFIBROKER_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FFIB_CONCAT_INNER_(a, b) a##b
#define FFIB_CONCAT_(a, b) FFIB_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the caller if not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status ffib_status_ = (expr);            \
    if (!ffib_status_.ok()) return ffib_status_;     \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); returns its status if not OK,
// otherwise moves its value into `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  FFIB_ASSIGN_OR_RETURN_IMPL_(FFIB_CONCAT_(ffib_statusor_, __LINE__), lhs, rexpr)

#define FFIB_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // FFIBROKER_COMMON_STATUS_MACROS_H_
