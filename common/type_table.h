// ClassTable: the classes registered in one session, and type resolution.
//
// RegisterClass validates a v1::ClassDefinition (names, field types, no
// recursion by value, non-zero size), computes its C layout with libffi
// (ffi_get_struct_offsets) and returns it as a v1::ClassLayout. Resolve
// turns a v1::Type into a TypeDesc where the type is used (a field, a
// parameter, a result, a static), rejecting what is not valid there.
// ResolveSignature does that for a whole signature.
//
// The daemon keeps one table per session; the worker rebuilds the same
// table from Open.classes (same code, same layouts).
//
// Thread-safety: not thread-safe; a table is cheap to copy (it shares the
// immutable descriptors), so readers take a snapshot.
//
//   ClassTable classes;
//   ASSIGN_OR_RETURN(v1::ClassLayout layout, classes.Register(definition));
//   ASSIGN_OR_RETURN(ResolvedSignature sig, ResolveSignature(proto, classes));
#ifndef FFIBROKER_COMMON_TYPE_TABLE_H_
#define FFIBROKER_COMMON_TYPE_TABLE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/limits.h"
#include "common/type_desc.h"
#include "ffibroker/v1/types.pb.h"

namespace ffibroker {

// Where a type is used; decides which kinds are valid.
// kCallbackParam / kCallbackResult: inside a callback type's own signature
// (`fn(i32 a) -> i32`), where fewer kinds are valid (see Resolve).
enum class TypeUse { kField, kParam, kResult, kStatic, kCallbackParam, kCallbackResult };

class ClassTable {
 public:
  // Adds a class. INVALID_ARGUMENT naming the problem (bad name, unknown or
  // invalid field type, duplicate field, no fields, zero size) or the limit
  // of common/limits.h it exceeds (array length and nesting, class size,
  // values per class, fields, enum values); ALREADY_EXISTS for a name
  // already registered; RESOURCE_EXHAUSTED past kMaxClasses or when the
  // table's descriptors would use more than kMaxDescriptorBytesPerSession.
  // Every size and offset is computed with checked arithmetic. A class can
  // only use classes registered before it, so recursion by value is
  // impossible (a self reference is reported as such). On failure the
  // table is unchanged.
  absl::StatusOr<v1::ClassLayout> Register(const v1::ClassDefinition& def);

  // The descriptor of `type` used as `use`, or INVALID_ARGUMENT (also for
  // an array past the limits above). Valid where:
  //   void: results; arrays: fields and statics; handles and cstr:
  //   parameters and results (and callback parameters); buffers:
  //   parameters (callback parameters: `in` only); callback types
  //   (`fn(...) -> T`): parameters of declared functions only, never
  //   nested. A callback's own signature has the plain convention, its
  //   parameters are scalars, enums, classes by value, class handles,
  //   cstr and `in` buffers, its result void, a scalar, an enum or a class
  //   by value.
  absl::StatusOr<TypeRef> Resolve(const v1::Type& type, TypeUse use) const;

  // The class named `name`, or nullptr.
  TypeRef FindClass(const std::string& name) const;
  // Definitions in registration order (what the worker is sent).
  const std::vector<v1::ClassDefinition>& definitions() const { return definitions_; }
  // Classes in registration order (index = TypeDesc::class_index).
  const std::vector<TypeRef>& classes() const { return classes_; }
  // Memory the registered classes' descriptors use (see DescriptorBytes).
  uint64_t descriptor_bytes() const { return descriptor_bytes_; }

 private:
  // Resolve for a type inside `nesting` arrays; adds the bytes of every
  // descriptor it creates to `*cost`.
  absl::StatusOr<TypeRef> ResolveAt(const v1::Type& type, TypeUse use, int nesting,
                                    uint64_t* cost) const;

  uint64_t descriptor_bytes_ = 0;
  std::vector<v1::ClassDefinition> definitions_;
  std::vector<TypeRef> classes_;
  std::map<std::string, TypeRef> by_name_;
};

// Validates and resolves `signature` against `classes`: result and
// parameter kinds valid where they are used, names C identifiers, at most
// kMaxParams, buffer length parameters exist and are integers.
// INVALID_ARGUMENT naming the offending part otherwise.
absl::StatusOr<ResolvedSignature> ResolveSignature(const v1::Signature& signature,
                                                   const ClassTable& classes);
// ResolveSignature with its parameters and result resolved as `param_use`
// and `result_use` (a callback type's signature: kCallbackParam and
// kCallbackResult).
absl::StatusOr<ResolvedSignature> ResolveSignatureAs(const v1::Signature& signature,
                                                     const ClassTable& classes,
                                                     TypeUse param_use, TypeUse result_use);

// The C layout of a registered class.
v1::ClassLayout LayoutOf(const TypeDesc& klass);

// True for words that cannot name a class (scalars and declaration
// keywords).
bool IsReservedTypeWord(const std::string& word);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_TYPE_TABLE_H_
